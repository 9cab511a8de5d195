#!/usr/bin/env python3
"""Times the same SAGAN training iteration in PyTorch and in sagan, in one invocation, same batch and threads.

    python3 benchmarks/compare_pytorch.py --preset blog128 --batch 16 --threads 2 [--iters 5] [--sagan .build/release/sagan]

The PyTorch side is Tests/Reference/sagan_reference.py (the parity-tested reference model: SN on
every layer, paper attention, BN shift-only in G, leaky ReLU 0.02 in D) trained as `sagan train` does:
hinge loss, Adam (0, 0.9), lr D 4e-4 / G 1e-4, a D step on real and detached fake images then a G
step with fresh z, synthetic data. Use whichever PyTorch the interpreter has: Debian's python3-torch
1.13 (/usr/bin/python3) or PyTorch 2.x CPU in a virtual environment
(pip install "torch==2.13.0+cpu" --index-url https://download.pytorch.org/whl/cpu). Prints both
timings, the ratio and peak memory; --json prints one object.
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
    d_sides = [s for s in (resolution // 2, resolution // 4, resolution // 8, resolution // 16, resolution // 32, resolution // 64) if s >= 4]
    g_attention = [16] if preset == "tiny32" else [max(s for s in g_sides if s <= 32)]
    d_attention = [16] if preset == "tiny32" else [max(s for s in d_sides if s <= 32)]
    return {
        "family": "sagan", "resolution": resolution, "imageChannels": channels, "latentSize": 128, "baseWidth": base,
        "generatorAttentionSides": g_attention, "discriminatorAttentionSides": d_attention, "attentionVariant": "paper",
        "leakySlope": 0.02, "spectralNorm": True, "generatorNormalization": "shiftOnly", "batchNormMomentum": 0.01,
        "batchNormEpsilon": 0.001, "initializer": {"glorotUniform": {}},
    }


def time_pytorch(config, batch, iterations, warmup):
    import torch
    from sagan_reference import Discriminator, Generator, hinge_d, hinge_g

    torch.manual_seed(0)
    G, D = Generator(config), Discriminator(config)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), lr=4e-4, betas=(0.0, 0.9))
    side, channels = config["resolution"], config["imageChannels"]
    real = torch.rand(batch, channels, side, side) * 2 - 1
    times = []
    for iteration in range(warmup + iterations):
        start = time.perf_counter()
        with torch.no_grad():
            fake = G(torch.randn(batch, 128))
        loss_d = hinge_d(D(real), D(fake))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = hinge_g(D(G(torch.randn(batch, 128))))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        if iteration >= warmup:
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"version": torch.__version__, "ms_median": 1e3 * statistics.median(times), "ms_min": 1e3 * min(times), "peak_rss_mib": peak}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="blog128")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--sagan", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "sagan"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    ours = json.loads(subprocess.run(
        [args.sagan, "bench", "--preset", args.preset, "--batch", str(args.batch), "--threads", str(args.threads),
         "--iters", str(args.iters), "--warmup", str(args.warmup), "--channels", str(args.channels), "--json"],
        check=True, capture_output=True, text=True).stdout)
    # PyTorch in a child process, so its threads and memory are its own.
    child = subprocess.run(
        [sys.executable, "-c",
         "import json, sys; sys.path.insert(0, sys.argv[1]); import torch; torch.set_num_threads(int(sys.argv[2]));"
         "import compare_pytorch as c; print(json.dumps(c.time_pytorch(json.loads(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))))",
         os.path.dirname(os.path.abspath(__file__)), str(args.threads), json.dumps(model_config(args.preset, args.channels)),
         str(args.batch), str(args.iters), str(args.warmup)],
        check=True, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
    theirs = json.loads(child.stdout)
    result = {
        "preset": args.preset, "batch": args.batch, "threads": args.threads, "sagan_ms": ours["ms_median"], "pytorch_ms": theirs["ms_median"],
        "pytorch_version": theirs["version"], "speedup": theirs["ms_median"] / ours["ms_median"], "sagan_percent_of_peak": ours["percent_of_peak"],
        "pytorch_percent_of_peak": ours["percent_of_peak"] * ours["ms_median"] / theirs["ms_median"], "peak_gflops": ours["peak_gflops"],
        "sagan_peak_rss_mib": ours["peak_rss_mib"], "pytorch_peak_rss_mib": theirs["peak_rss_mib"],
    }
    if args.json:
        print(json.dumps(result, sort_keys=True))
        return
    print(f"{args.preset} batch {args.batch}, {args.threads} threads (peak {ours['peak_gflops']:.0f} GFLOP/s)")
    print(f"  sagan          {ours['ms_median']:8.1f} ms/iteration  {result['sagan_percent_of_peak']:5.1f}% of peak  {ours['peak_rss_mib']:6.0f} MiB")
    print(f"  PyTorch {theirs['version']:<7}{theirs['ms_median']:8.1f} ms/iteration  {result['pytorch_percent_of_peak']:5.1f}% of peak  {theirs['peak_rss_mib']:6.0f} MiB")
    print(f"  speed-up {result['speedup']:.2f}x")


if __name__ == "__main__":
    main()
