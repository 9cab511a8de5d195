#!/usr/bin/env python3
"""Projects data-parallel training to many machines from what is measured on this one.

    python3 benchmarks/distributed_scaling.py [--preset blog128] [--batch 16] [--threads 2]
        [--veth-ms 33.8] [--sagan .build/release/sagan] [--json]

Measures, in one invocation:
  * the compute time of one iteration at the per-rank batch (`sagan bench train`, one process);
  * the collectives one iteration calls (`mpirun -np 2 sagan bench train`): G's and D's gradient
    allreduces plus, per batch-norm layer of G, a gather per forward and a sum per backward;
  * allreduce times on 2 ranks from 1 float to the preset's G + D gradients (`sagan bench
    allreduce`), over shared memory and over TCP loopback. --veth-ms adds the time `make
    test-multihost` printed for the full gradients over its veth pair between two namespaces.

Then models a ring allreduce of S bytes on N ranks over a link of bandwidth B and latency a as
2(N−1)·a + 2(N−1)/N · S/B (per rank, each byte crosses the link twice: reduce-scatter, all-gather),
and a small collective (batch norm's) as ⌈log₂ N⌉·a (recursive doubling, what Open MPI picks for
small messages). The latency a is the one-float allreduce on 2 ranks over TCP loopback, measured here
(a floor: a NIC and a switch add to it; --latency-us replaces it, e.g. 50 for TCP over 10 GbE); B is
the line rate of 10 and 100 Gb/s Ethernet at 90% efficiency. Weak scaling: every rank is a machine like
this one with the per-rank batch, so the global batch grows with N. Without overlap a step is compute +
communication; with the gradient allreduces overlapped with the backward pass (buckets sent while it
runs) only what exceeds the backward's time shows, and batch norm's small collectives never overlap
(they sit on the forward and backward path). Efficiency = one machine's step time / the step time at N
ranks.
"""
import argparse
import json
import math
import os
import subprocess
import sys


def run_json(command, environment=None):
    """The JSON lines a command printed, parsed."""
    result = subprocess.run(command, check=True, capture_output=True, text=True, env=environment)
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="blog128")
    parser.add_argument("--batch", type=int, default=16, help="images per rank")
    parser.add_argument("--threads", type=int, default=2, help="threads per rank")
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--veth-ms", type=float, help="full-gradient allreduce time over the veth pair, if measured")
    parser.add_argument("--latency-us", type=float, help="link latency for the model (default: measured on loopback)")
    parser.add_argument("--sagan", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "sagan"))
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = parser.parse_args()

    environment = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    # Ranks must not yield when idle (--oversubscribe would turn that on: 8 ms per collective).
    mpirun = ["mpirun", "-np", "2", "--mca", "mpi_yield_when_idle", "0"]
    bench = [args.sagan, "bench", "train", "--preset", args.preset, "--iters", str(args.iters), "--json"]
    compute = run_json(bench + ["--batch", str(args.batch), "--threads", str(args.threads)], environment)[0]
    two_ranks = run_json(mpirun + bench + ["--batch", str(2 * args.batch)], environment)[0]
    links = {}
    for name, extra in (("shared memory", []), ("TCP loopback", ["--mca", "btl", "self,tcp"])):
        links[name] = run_json(
            mpirun + extra + [args.sagan, "bench", "allreduce", "--preset", args.preset, "--json"], environment)
    gradients = links["TCP loopback"][-1]["bytes"]
    measured_latency = links["TCP loopback"][0]["median_seconds"]  # one exchange round at N = 2
    latency = args.latency_us * 1e-6 if args.latency_us else measured_latency
    compute_seconds = compute["ms_median"] / 1e3
    # G's step and D's step each end with one gradient allreduce; the rest are batch norm's.
    small_collectives = two_ranks["collectives_per_iteration"] - 2
    # The backward passes are about two thirds of an iteration's work (the FLOP model's 2x forward).
    backward_seconds = compute_seconds * 2 / 3

    rows = []
    for gigabits in (10, 100):
        bandwidth = gigabits / 8 * 1e9 * 0.9
        for ranks in (2, 8, 32, 128):
            allreduce = 2 * (ranks - 1) * latency * 2 + 2 * (ranks - 1) / ranks * gradients / bandwidth
            small = small_collectives * math.ceil(math.log2(ranks)) * latency
            for overlap in (False, True):
                exposed = max(0.0, allreduce - backward_seconds) if overlap else allreduce
                step = compute_seconds + small + exposed
                rows.append({
                    "gbps": gigabits, "ranks": ranks, "overlap": overlap, "allreduce_ms": allreduce * 1e3,
                    "step_ms": step * 1e3, "images_per_second": ranks * args.batch / step,
                    "efficiency": compute_seconds / step})

    result = {
        "preset": args.preset, "batch_per_rank": args.batch, "threads": args.threads,
        "compute_ms": compute["ms_median"], "two_ranks": two_ranks, "gradient_bytes": gradients,
        "latency_seconds": latency, "measured_latency_seconds": measured_latency,
        "small_collectives": small_collectives,
        "allreduce": {name: timings for name, timings in links.items()}, "veth_ms": args.veth_ms,
        "projection": rows}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.preset}, {args.batch} images per rank, {args.threads} threads: {compute['ms_median']:.1f} ms per "
          f"iteration in one process ({compute['images_per_second']:.1f} images/s)")
    print(f"2 ranks x 1 thread on this machine, global batch {2 * args.batch}: {two_ranks['ms_median']:.1f} ms per "
          f"iteration, {two_ranks['images_per_second']:.1f} images/s, {two_ranks['ms_collectives']:.1f} ms in "
          f"{two_ranks['collectives_per_iteration']} collectives")
    print(f"allreduce of G + D gradients, {gradients / 1e6:.1f} MB, on 2 ranks (median):")
    for name, timings in links.items():
        print(f"  {name:14s} {timings[-1]['median_seconds'] * 1e3:7.2f} ms   (1 float: "
              f"{timings[0]['median_seconds'] * 1e6:.1f} us)")
    if args.veth_ms:
        print(f"  {'veth (TCP)':14s} {args.veth_ms:7.2f} ms   (make test-multihost)")
    print(f"model inputs: latency a = {latency * 1e6:.1f} us ({'given' if args.latency_us else 'measured'}), "
          f"{small_collectives} small collectives per iteration, backward {backward_seconds * 1e3:.0f} ms")
    print()
    print("| link | ranks | allreduce | step (no overlap) | efficiency | step (overlap) | efficiency | images/s |")
    print("|---|---|---|---|---|---|---|---|")
    for gigabits in (10, 100):
        for ranks in (2, 8, 32, 128):
            plain, overlapped = [r for r in rows if r["gbps"] == gigabits and r["ranks"] == ranks]
            print(f"| {gigabits} Gb/s | {ranks} | {plain['allreduce_ms']:.1f} ms | {plain['step_ms']:.0f} ms | "
                  f"{100 * plain['efficiency']:.0f}% | {overlapped['step_ms']:.0f} ms | "
                  f"{100 * overlapped['efficiency']:.0f}% | {plain['images_per_second']:.0f} → "
                  f"{overlapped['images_per_second']:.0f} |")


if __name__ == "__main__":
    sys.exit(main())
