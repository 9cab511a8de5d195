#!/usr/bin/env python3
"""Trains the same runs with `sagan train` and with the PyTorch trainer and compares their quality.

    python3 benchmarks/trainer_comparison.py [--presets tiny32,sagan32] [--seeds 1,2,3] [--steps 2000]
        [--eval-at 500,1000,2000] [--num 10000] [--threads 2] [--work runs/trainer-comparison]
        [--sagan .build/release/sagan] [--torch-python /usr/bin/python3] [--json results.json]

For each preset and seed: `sagan train` on Fashion-MNIST (the default dataset), then
benchmarks/torch_trainer.py with that run's resolved settings (run.json), both saving checkpoints at
--eval-at; then `sagan eval` of every checkpoint against the training set (KID and FID at N = --num,
the same Inception for both). Prints, per preset and step, KID and FID as mean ± sample standard
deviation over the seeds for each trainer, whether our mean lies within PyTorch's seed-to-seed
spread (mean ± 2 std), each trainer's images per second (training steps alone), and the comparison
at equal CPU time: the step sagan reaches in the time PyTorch takes for its last step, and its KID
there. All runs train before any evaluation, and the last step is evaluated first. Trained runs and
finished evaluations are kept in --work, so an interrupted study continues where it stopped.
Not a test: at N = 10,000 each evaluation is an hour on a 40 GFLOP/s machine.
"""
import argparse
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bf16_quality import run, spread  # noqa: E402


def sagan_run(args, preset, seed):
    """A sagan run with checkpoints at every --eval-at step; its folder."""
    folder = os.path.join(args.work, f"{preset}-sagan-seed{seed}")
    last = os.path.join(folder, "checkpoints", f"step-{args.steps:06d}.safetensors")
    if not os.path.exists(last):
        resume = ["--resume", "auto"] if os.path.exists(os.path.join(folder, "run.json")) else []
        every = args.eval_at[0]
        for step in args.eval_at:
            every = gcd(every, step)
        run([args.sagan, "train", "--preset", preset, "--seed", str(seed), "--steps", str(args.steps),
             "--run-dir", folder, "--checkpoint-every", str(every), "--keep", "1000", "--sample-every",
             str(args.steps), "--log-every", "10", "--threads", str(args.threads)] + resume)
    return folder


def gcd(a, b):
    while b:
        a, b = b, a % b
    return a


def torch_run(args, preset, seed, sagan_folder):
    """The PyTorch trainer with the sagan run's settings; its folder."""
    folder = os.path.join(args.work, f"{preset}-torch-seed{seed}")
    if not os.path.exists(os.path.join(folder, f"step-{args.steps:06d}.safetensors")):
        run([args.torch_python, os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_trainer.py"),
             "--run-json", os.path.join(sagan_folder, "run.json"), "--data", args.real, "--steps", str(args.steps),
             "--save-at", ",".join(map(str, args.eval_at)), "--out", folder, "--seed", str(seed),
             "--threads", str(args.threads)])
    return folder


def seconds_per_step(trainer, folder):
    """Mean seconds per training step: sagan's metrics.jsonl, or the PyTorch trainer's log.jsonl."""
    if trainer == "sagan":
        rows = [json.loads(line) for line in open(os.path.join(folder, "metrics.jsonl"))]
        values = [row["Time/sec_per_step"] for row in rows if "Time/sec_per_step" in row]
    else:
        values = [json.loads(line)["seconds"] for line in open(os.path.join(folder, "log.jsonl"))]
    return statistics.mean(values[1:] or values)


def evaluate(args, cache, checkpoint):
    """KID and FID of a checkpoint, remembered in `cache` (a dict saved after each evaluation)."""
    key = f"{checkpoint} N={args.num}"
    if key not in cache:
        output = run([args.sagan, "eval", "--checkpoint", checkpoint, "--real", args.real, "--metrics", "kid,fid",
                      "--num", str(args.num), "--json", "--threads", str(args.threads)])
        record = json.loads(output.strip().splitlines()[-1])
        cache[key] = {"kid": record["kid"], "fid": record["fid"]}
        with open(os.path.join(args.work, "evaluations.json"), "w") as file:
            json.dump(cache, file, indent=1)
    return cache[key]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="tiny32,sagan32")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--eval-at", default="500,1000,2000")
    parser.add_argument("--num", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--work", default=os.path.join("runs", "trainer-comparison"))
    parser.add_argument("--real", default=os.path.expanduser("~/.cache/sagan/fashion-mnist-train-32x32.safetensors"))
    parser.add_argument("--sagan", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "sagan"))
    parser.add_argument("--torch-python", default="/usr/bin/python3")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    args.eval_at = sorted({int(step) for step in args.eval_at.split(",")} | {args.steps})
    if args.eval_at[-1] > args.steps:
        sys.exit(f"error: --eval-at {args.eval_at[-1]} is after --steps {args.steps}")
    os.makedirs(args.work, exist_ok=True)
    cache_file = os.path.join(args.work, "evaluations.json")
    cache = json.load(open(cache_file)) if os.path.exists(cache_file) else {}
    seeds = [int(seed) for seed in args.seeds.split(",")]
    # Every run trains first, then the evaluations go last step first: an interrupted study has
    # the comparison at the final step before the curves.
    runs = []
    for preset in args.presets.split(","):
        for seed in seeds:
            folders = {"sagan": sagan_run(args, preset, seed)}
            folders["torch"] = torch_run(args, preset, seed, folders["sagan"])
            batch = json.load(open(os.path.join(folders["sagan"], "run.json")))["config"]["batchSize"]
            runs += [(preset, seed, trainer, folder, batch) for trainer, folder in folders.items()]
    results = []
    for step in reversed(args.eval_at):
        for preset, seed, trainer, folder, batch in runs:
            checkpoints = os.path.join(folder, "checkpoints") if trainer == "sagan" else folder
            checkpoint = os.path.join(checkpoints, f"step-{step:06d}.safetensors")
            results.append({"preset": preset, "trainer": trainer, "seed": seed, "step": step, "batch": batch,
                            "seconds_per_step": seconds_per_step(trainer, folder), **evaluate(args, cache, checkpoint)})
            print(json.dumps(results[-1]), flush=True)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=1)
    report(args, results)
    return 0


def report(args, results):
    print(f"\nKID and FID at N = {args.num} against the training set, mean ± std over seeds {args.seeds}:")
    for preset in args.presets.split(","):
        mine = [r for r in results if r["preset"] == preset]
        print(f"\n| {preset} step | sagan KID | PyTorch KID | sagan FID | PyTorch FID |\n|---|---|---|---|---|")
        for step in args.eval_at:
            cells = []
            for metric in ("kid", "fid"):
                for trainer in ("sagan", "torch"):
                    mean, std = spread([r[metric] for r in mine if r["trainer"] == trainer and r["step"] == step])
                    cells.append(f"{mean:.4f} ± {std:.4f}" if metric == "kid" else f"{mean:.2f} ± {std:.2f}")
            print(f"| {step} | " + " | ".join(cells) + " |")
        for metric in ("kid", "fid"):
            ours = statistics.mean([r[metric] for r in mine if r["trainer"] == "sagan" and r["step"] == args.steps])
            theirs, std = spread([r[metric] for r in mine if r["trainer"] == "torch" and r["step"] == args.steps])
            inside = abs(ours - theirs) <= 2 * std
            print(f"{preset} {metric} at step {args.steps}: sagan {ours:.4f} {'within' if inside else 'OUTSIDE'} "
                  f"PyTorch's {theirs:.4f} ± 2·{std:.4f}")
        speeds = {trainer: statistics.mean([r["seconds_per_step"] for r in mine if r["trainer"] == trainer])
                  for trainer in ("sagan", "torch")}
        batch = mine[0]["batch"]
        print(f"{preset} images/s (training steps alone, batch {batch}): sagan {batch / speeds['sagan']:.1f}, "
              f"PyTorch {batch / speeds['torch']:.1f} ({speeds['torch'] / speeds['sagan']:.2f}x)")
        # Equal CPU time: in the time sagan takes for its last step, PyTorch reaches `reached` steps.
        reached = args.steps * speeds["sagan"] / speeds["torch"]
        earlier = [step for step in args.eval_at if step <= reached]
        if earlier:
            step = earlier[-1]
            theirs = spread([r["kid"] for r in mine if r["trainer"] == "torch" and r["step"] == step])
            ours = spread([r["kid"] for r in mine if r["trainer"] == "sagan" and r["step"] == args.steps])
            print(f"{preset} at equal time: sagan's {args.steps} steps take as long as {reached:.0f} of PyTorch's; "
                  f"KID sagan {ours[0]:.4f} ± {ours[1]:.4f} (step {args.steps}) vs PyTorch {theirs[0]:.4f} ± "
                  f"{theirs[1]:.4f} (step {step})")
        else:
            print(f"{preset} at equal time: PyTorch reaches {reached:.0f} steps, before the first --eval-at")

if __name__ == "__main__":
    sys.exit(main())
