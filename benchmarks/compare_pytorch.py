#!/usr/bin/env python3
"""Times the same SAGAN training iteration in sagan, PyTorch and TensorFlow, in fp32 and bf16, in one invocation.

    python3 benchmarks/compare_pytorch.py --preset blog128 --batch 16 --threads 2 [--iters 5]
        [--rounds 1] [--sagan .build/release/sagan] [--tf-python /opt/bench-venv/bin/python] [--json]

The PyTorch side is Tests/Reference/sagan_reference.py (the parity-tested reference model: SN on
every layer, paper attention, BN shift-only in G, leaky ReLU 0.02 in D) trained as `sagan train` does:
hinge loss, Adam (0, 0.9), lr D 4e-4 / G 1e-4, a D step on real and detached fake images then a G
step with fresh z, synthetic data; its bf16 run puts the forward passes under
`torch.autocast("cpu", dtype=torch.bfloat16)`. The TensorFlow side is benchmarks/tf_sagan.py, the same
model in TF 2 with tf.function, fp32 and with the casts of Keras's mixed_bfloat16 policy; it runs in
the interpreter --tf-python names (pip install "tensorflow-cpu==2.21.*" in a virtual environment) and is
left out when that has no TensorFlow. PyTorch comes from --torch-python (Debian's python3-torch 1.13 by
default, or an interpreter with a PyTorch 2.x CPU wheel). Every framework runs in its own child process,
so its threads and memory are its own. bf16 rows are left out where the CPU has no bf16 instructions.
Prints ms per iteration, % of the fp32 peak, peak memory, and how much faster sagan in the same
precision is; --json prints one object. A shared virtual machine drifts by 10% over minutes: --rounds N
times every framework and precision N times in rotating order and reports medians over the rounds.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "Tests", "Reference"))


def model_config(preset, channels):
    """The presets' model configurations, as `sagan inspect`/`ModelPreset` define them."""
    resolution = {"sagan32": 32, "tiny32": 32, "sagan64": 64, "blog128": 128, "sagan256": 256}[preset]
    base = 512 if preset == "tiny32" else 2048
    g_sides = [s for s in (8, 16, 32, 64, 128, 256) if s <= resolution]
    d_sides = [resolution // 2**k for k in range(1, 7) if resolution // 2**k >= 4]
    g_attention = [16] if preset == "tiny32" else [max(s for s in g_sides if s <= 32)]
    d_attention = [16] if preset == "tiny32" else [max(s for s in d_sides if s <= 32)]
    return {
        "family": "sagan", "resolution": resolution, "imageChannels": channels, "latentSize": 128, "baseWidth": base,
        "generatorAttentionSides": g_attention, "discriminatorAttentionSides": d_attention, "attentionVariant": "paper",
        "leakySlope": 0.02, "spectralNorm": True, "generatorNormalization": "shiftOnly", "batchNormMomentum": 0.01,
        "batchNormEpsilon": 0.001, "initializer": {"glorotUniform": {}},
    }


def time_pytorch(config, batch, iterations, warmup, precision="fp32"):
    import contextlib

    import torch
    from sagan_reference import Discriminator, Generator, hinge_d, hinge_g

    def autocast():
        if precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    torch.manual_seed(0)
    G, D = Generator(config), Discriminator(config)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), lr=4e-4, betas=(0.0, 0.9))
    side, channels = config["resolution"], config["imageChannels"]
    real = torch.rand(batch, channels, side, side) * 2 - 1
    times = []
    for iteration in range(warmup + iterations):
        start = time.perf_counter()
        with torch.no_grad(), autocast():
            fake = G(torch.randn(batch, 128))
        with autocast():
            loss_d = hinge_d(D(real).float(), D(fake).float())
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        with autocast():
            loss_g = hinge_g(D(G(torch.randn(batch, 128))).float())
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        if iteration >= warmup:
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"version": torch.__version__, "ms_median": 1e3 * statistics.median(times), "ms_min": 1e3 * min(times),
            "peak_rss_mib": peak}


def time_tensorflow(config, batch, iterations, warmup, threads, precision):
    from tf_sagan import time_training

    times, version = time_training(config, batch, iterations, warmup, threads, precision)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"version": version, "ms_median": 1e3 * statistics.median(times), "ms_min": 1e3 * min(times),
            "peak_rss_mib": peak}


def child(python, function, args, precision):
    """One framework's timing in a child process of `python`, as a dict."""
    here = os.path.dirname(os.path.abspath(__file__))
    call = (f"import json, sys; sys.path.insert(0, {here!r}); import compare_pytorch as c; "
            f"print('RESULT ' + json.dumps(c.{function}))")
    environment = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TF_CPP_MIN_LOG_LEVEL": "2"}
    if function.startswith("time_pytorch"):
        call = f"import torch; torch.set_num_threads({args.threads}); " + call
    completed = subprocess.run([python, "-c", call], capture_output=True, text=True, env=environment)
    if completed.returncode != 0:
        sys.exit(f"{python} failed:\n{completed.stderr}")
    line = [line for line in completed.stdout.splitlines() if line.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def has_module(python, name):
    return os.path.exists(python) and subprocess.run(
        [python, "-c", f"import {name}"], capture_output=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    ).returncode == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="blog128")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--sagan", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "sagan"))
    parser.add_argument("--torch-python", default="/usr/bin/python3", help="an interpreter with PyTorch")
    parser.add_argument("--tf-python", default="/opt/bench-venv/bin/python", help="an interpreter with TensorFlow")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--frameworks", default="pytorch,tensorflow", help="the others to time beside sagan")
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs of every framework and precision, in rotating order; rows give medians over them")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    config = model_config(args.preset, args.channels)
    rows, notes = [], []

    def sagan(precision):
        completed = subprocess.run(
            [args.sagan, "bench", "--preset", args.preset, "--batch", str(args.batch), "--threads", str(args.threads),
             "--iters", str(args.iters), "--warmup", str(args.warmup), "--channels", str(args.channels),
             "--precision", precision, "--json"], capture_output=True, text=True)
        if completed.returncode != 0:
            notes.append(f"sagan {precision}: {completed.stderr.strip()}")
            return None
        return json.loads(completed.stdout)

    frameworks = args.frameworks.split(",")
    tensorflow = "tensorflow" in frameworks and has_module(args.tf_python, "tensorflow")
    if "tensorflow" in frameworks and not tensorflow:
        notes.append(f"TensorFlow: not importable by {args.tf_python}; left out")
    arguments = f"json.loads({json.dumps(json.dumps(config))}), {args.batch}, {args.iters}, {args.warmup}"
    runs = []  # (framework, precision, a function timing one run)
    for precision in args.precisions.split(","):
        runs.append(("sagan", precision, lambda precision=precision: sagan(precision)))
        if "pytorch" in frameworks:
            runs.append(("PyTorch", precision, lambda precision=precision: child(
                args.torch_python, f"time_pytorch({arguments}, {precision!r})", args, precision)))
        if tensorflow:
            runs.append(("TensorFlow", precision, lambda precision=precision: child(
                args.tf_python, f"time_tensorflow({arguments}, {args.threads}, {precision!r})", args, precision)))
    # Round r starts at run r, so a drift of the machine over minutes falls on every run alike, not on the last.
    results = {(framework, precision): {} for framework, precision, _ in runs}  # round → result
    for round_index in range(args.rounds):
        start = round_index % len(runs)
        for framework, precision, run in runs[start:] + runs[:start]:
            result = run()
            if result is not None:
                results[(framework, precision)][round_index] = result
    peak, gflop = None, None
    for framework, precision, _ in runs:
        by_round = results[(framework, precision)]
        if not by_round:
            continue
        timed = list(by_round.values())
        medians = [run["ms_median"] for run in timed]
        row = {"framework": framework, "precision": precision, "version": timed[0].get("version", ""),
               "ms_median": statistics.median(medians), "ms_min": min(run["ms_min"] for run in timed),
               "ms_rounds": {str(r): run["ms_median"] for r, run in by_round.items()},
               "peak_rss_mib": max(run["peak_rss_mib"] for run in timed)}
        if framework == "sagan":
            peak, gflop = peak or timed[0]["peak_gflops"], gflop or timed[0]["gflop_per_iteration"]
            shares = [run["percent_of_bf16_peak"] for run in timed if run.get("percent_of_bf16_peak") is not None]
            row["percent_of_bf16_peak"] = statistics.median(shares) if shares else None
        rows.append(row)
    fastest = min((row["ms_median"] for row in rows if row["framework"] == "sagan"), default=None)
    for row in rows:
        # The same FLOP model for everyone: sagan's count of one iteration's multiply-adds.
        row["percent_of_fp32_peak"] = 100 * gflop / (row["ms_median"] / 1e3) / peak if peak else None
        row["sagan_speedup"] = row["ms_median"] / fastest if fastest else None
    result = {"preset": args.preset, "batch": args.batch, "threads": args.threads, "rounds": args.rounds,
              "peak_gflops": peak, "rows": rows, "notes": notes}
    if args.json:
        print(json.dumps(result, sort_keys=True))
        return
    rounds = f", medians of {args.rounds} rounds" if args.rounds > 1 else ""
    print(f"{args.preset} batch {args.batch}, {args.threads} threads (fp32 peak {peak or 0:.0f} GFLOP/s){rounds}")
    print("  framework            precision  ms/iteration  % of fp32 peak  peak MiB  sagan's fastest is faster by"
          + ("  rounds (ms)" if args.rounds > 1 else ""))
    for row in rows:
        name = f"{row['framework']} {row['version']}".strip()
        spread = "  " + " ".join(f"{ms:.0f}" for ms in row["ms_rounds"].values()) if args.rounds > 1 else ""
        print(f"  {name:<21}{row['precision']:<11}{row['ms_median']:>12.1f}{row['percent_of_fp32_peak'] or 0:>15.1f}"
              f"{row['peak_rss_mib']:>10.0f}  {row['sagan_speedup'] or 0:>27.2f}x{spread}")
    ours = {row["precision"]: row for row in rows if row["framework"] == "sagan"}
    if "fp32" in ours and "bf16" in ours:
        fp32, bf16 = ours["fp32"], ours["bf16"]
        each = [fp32["ms_rounds"][r] / bf16["ms_rounds"][r] for r in fp32["ms_rounds"] if r in bf16["ms_rounds"]]
        print(f"  sagan bf16 is {fp32['ms_median'] / bf16['ms_median']:.2f}x sagan fp32"
              + (f" (by round {min(each):.2f}–{max(each):.2f}x)" if len(each) > 1 else "")
              + f", {bf16['percent_of_bf16_peak'] or 0:.1f}% of the bf16 peak")
    for note in notes:
        print(f"  note: {note}")


if __name__ == "__main__":
    main()
