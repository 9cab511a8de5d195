#!/usr/bin/env python3
"""Trains the same runs in fp32 and in bf16 and compares their image quality: KID and FID at N images.

    python3 benchmarks/bf16_quality.py [--presets tiny32,sagan32] [--seeds 1,2,3] [--steps 2000]
        [--num 10000] [--precisions fp32,bf16] [--work runs/bf16-quality] [--sagan .build/release/sagan]
        [--json results.json]

For each preset, seed and precision: `sagan train` on Fashion-MNIST (the default dataset) for --steps,
then `sagan eval` of the last checkpoint against the training set (KID and FID; the generator in the
run's precision, Inception in fp32 for both). Prints a table per preset with the mean and the sample
standard deviation over seeds, and says whether bf16's mean lies within fp32's seed-to-seed spread (mean
± 2 std). A run whose checkpoint exists is not trained again, and an evaluation already in the run's
metrics.jsonl is not repeated, so an interrupted study continues where it stopped. Not a test: it takes
hours on two cores.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def run(command):
    print("+", " ".join(command), flush=True)
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def checkpoint_path(folder, steps):
    return os.path.join(folder, "checkpoints", f"step-{steps:06d}.safetensors")


def train(args, preset, seed, precision):
    folder = os.path.join(args.work, f"{preset}-{precision}-seed{seed}")
    if not os.path.exists(checkpoint_path(folder, args.steps)):
        resume = ["--resume", "auto"] if os.path.exists(os.path.join(folder, "run.json")) else []
        run([args.sagan, "train", "--preset", preset, "--seed", str(seed), "--steps", str(args.steps),
             "--precision", precision, "--run-dir", folder, "--checkpoint-every", str(min(args.steps, 1000)),
             "--sample-every", str(args.steps), "--log-every", "100"] + resume)
    return folder


def evaluate(args, folder, real, precision):
    """KID and FID of the run's last checkpoint, from its metrics.jsonl when already measured. The
    generator runs in the run's precision; Inception always runs in fp32."""
    metrics = os.path.join(folder, "metrics.jsonl")
    checkpoint = checkpoint_path(folder, args.steps)
    if os.path.exists(metrics):
        with open(metrics) as lines:
            for line in lines:
                row = json.loads(line)
                if (row.get("checkpoint_step") == args.steps and row.get("n_fake") == args.num and "kid" in row
                        and "fid" in row):
                    return row
    output = run([args.sagan, "eval", "--checkpoint", checkpoint, "--real", real, "--metrics", "kid,fid",
                  "--num", str(args.num), "--precision", precision, "--json"])
    return json.loads(output.strip().splitlines()[-1])


def spread(values):
    mean = statistics.mean(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else 0.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="tiny32,sagan32")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--precisions", default="fp32,bf16",
                        help="train and evaluate only these (the table then lists only them)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--num", type=int, default=10000)
    parser.add_argument("--work", default=os.path.join("runs", "bf16-quality"))
    parser.add_argument("--real", default=os.path.expanduser("~/.cache/sagan/fashion-mnist-train-32x32.safetensors"))
    parser.add_argument("--sagan", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "sagan"))
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    results = []
    for preset in args.presets.split(","):
        for precision in args.precisions.split(","):
            for seed in seeds:
                folder = train(args, preset, seed, precision)
                record = evaluate(args, folder, args.real, precision)
                results.append({"preset": preset, "precision": precision, "seed": seed, "steps": args.steps,
                                "num": args.num, "kid": record["kid"], "fid": record["fid"]})
                print(json.dumps(results[-1]), flush=True)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=1)
    print(f"\nKID and FID at N = {args.num} after {args.steps} steps, mean ± std over seeds {args.seeds}:")
    for preset in args.presets.split(","):
        rows = {p: [r for r in results if r["preset"] == preset and r["precision"] == p]
                for p in args.precisions.split(",")}
        print(f"\n| {preset} | KID | FID |\n|---|---|---|")
        for precision, runs in rows.items():
            kid, fid = spread([r["kid"] for r in runs]), spread([r["fid"] for r in runs])
            print(f"| {precision} | {kid[0]:.4f} ± {kid[1]:.4f} | {fid[0]:.2f} ± {fid[1]:.2f} |")
        if set(rows) != {"fp32", "bf16"}:
            continue
        for metric in ("kid", "fid"):
            mean32, std32 = spread([r[metric] for r in rows["fp32"]])
            mean16 = statistics.mean([r[metric] for r in rows["bf16"]])
            inside = abs(mean16 - mean32) <= 2 * std32
            print(f"{preset} {metric}: bf16 mean {mean16:.4f} {'within' if inside else 'OUTSIDE'} fp32's "
                  f"{mean32:.4f} ± 2·{std32:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
