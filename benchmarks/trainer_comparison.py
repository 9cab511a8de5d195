#!/usr/bin/env python3
"""Trains the same runs with `sagan train` and with the PyTorch trainer and compares their quality.

    python3 benchmarks/trainer_comparison.py [--presets tiny32,sagan32] [--seeds 1,2,3] [--steps N]
        [--eval-at 500,1000,2000] [--num 2000] [--data sagan32=faces32.safetensors] [--work DIR]
        [--sagan .build/release/sagan] [--torch-python /usr/bin/python3] [--json results.json]

The study sized for 2 cores in under three hours: tiny32 on Fashion-MNIST, seeds 1-3, 2,000 steps,
evaluated at 500, 1,000 and 2,000; sagan32 (on the 32x32 faces when --data gives them, else on
Fashion-MNIST), seed 1, 1,000 steps, evaluated at 500 and 1,000. --seeds, --steps and --eval-at
override every preset's plan. For each run: `sagan train` and benchmarks/torch_trainer.py with that
run's resolved settings (run.json), both reading the same batches (sagan's image order), trained at
the same time on one thread each, which halves the wall time on two cores and gives both the same
machine; then `sagan eval` of every checkpoint against the training set (KID and FID at N = --num,
the same Inception for both). KID is unbiased, so N = 2,000 with its standard deviation answers the
question; FID is biased in N, so compare it only at equal N. Prints, per preset and step, KID and
FID as mean ± sample standard deviation over the seeds for each trainer, each run's own KID ± from
its subsets, whether our mean lies within PyTorch's seed-to-seed spread (mean ± 2 std), each
trainer's images per second (training steps alone, one thread each, side by side), and the
comparison at equal CPU time: for each PyTorch step evaluated, sagan's last evaluated step reached
in no more time. While one trainer runs alone, the freed core evaluates the checkpoints written so
far (one thread); the rest are evaluated after training, the last step first. Trained runs (and the
PyTorch trainer's resume.pt) and finished evaluations are kept in --work, so an interrupted study
continues where it stopped: run it in the background at low priority (`nice -n 19`) and run it again
after an interruption. A second sagan32 seed where time allows: `--presets sagan32 --seeds 1,2`
(about 80 more minutes).
"""
import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bf16_quality import run, spread  # noqa: E402


# sagan logs its mean seconds per step over blocks of this many steps.
LOG_EVERY = 10

# Each preset's plan on 2 cores: seeds, steps, the steps evaluated.
PLANS = {
    "tiny32": {"seeds": [1, 2, 3], "steps": 2000, "eval_at": [500, 1000, 2000]},
    "sagan32": {"seeds": [1], "steps": 1000, "eval_at": [500, 1000]},
}


def plan(args, preset):
    """The preset's seeds, steps and evaluated steps, with the command line's overrides."""
    chosen = dict(PLANS.get(preset, PLANS["sagan32"]))
    if args.seeds:
        chosen["seeds"] = [int(seed) for seed in args.seeds.split(",")]
    if args.steps:
        chosen["steps"] = args.steps
        chosen["eval_at"] = [step for step in chosen["eval_at"] if step < args.steps]
    if args.eval_at:
        chosen["eval_at"] = [int(step) for step in args.eval_at.split(",")]
    chosen["eval_at"] = sorted(set(chosen["eval_at"]) | {chosen["steps"]})
    if chosen["eval_at"][-1] > chosen["steps"]:
        sys.exit(f"error: --eval-at {chosen['eval_at'][-1]} is after --steps {chosen['steps']}")
    return chosen


def sagan_command(args, preset, seed, steps, eval_at, data):
    """`sagan train` with checkpoints at every evaluated step, on one thread; its folder and command."""
    folder = os.path.join(args.work, f"{preset}-sagan-seed{seed}")
    if os.path.exists(os.path.join(folder, "checkpoints", f"step-{steps:06d}.safetensors")):
        return folder, None
    resume = ["--resume", "auto"] if os.path.exists(os.path.join(folder, "run.json")) else []
    every = eval_at[0]
    for step in eval_at:
        every = gcd(every, step)
    return folder, [args.sagan, "train", "--preset", preset, "--seed", str(seed), "--steps", str(steps),
                    "--run-dir", folder, "--checkpoint-every", str(every), "--keep", "1000", "--sample-every",
                    str(steps), "--log-every", str(LOG_EVERY), "--threads", "1", "--data", data] + resume


def gcd(a, b):
    while b:
        a, b = b, a % b
    return a


def torch_command(args, preset, seed, steps, eval_at, data, sagan_folder):
    """The PyTorch trainer with the sagan run's settings (its run.json), on one thread; folder and command."""
    folder = os.path.join(args.work, f"{preset}-torch-seed{seed}")
    if os.path.exists(os.path.join(folder, f"step-{steps:06d}.safetensors")):
        return folder, None
    return folder, [args.torch_python, os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_trainer.py"),
                    "--run-json", os.path.join(sagan_folder, "run.json"), "--data", data, "--steps", str(steps),
                    "--save-at", ",".join(map(str, eval_at)), "--out", folder, "--seed", str(seed), "--threads", "1",
                    "--resume"]


def train_side_by_side(args, cache, plans, trained, preset, seed, data):
    """Both trainers of one seed at the same time, one thread each (the PyTorch one reads the sagan
    run's run.json, so sagan starts first and PyTorch once that file exists). When one trainer runs
    alone, the core it leaves free evaluates, on one thread, every checkpoint written so far. Each
    trainer's output goes to WORK/<run>.log."""
    # Both read the same packed file, so the same indices are the same images.
    chosen = plans[preset]
    sagan_folder, sagan = sagan_command(args, preset, seed, chosen["steps"], chosen["eval_at"], data)
    launched = []
    if sagan:
        launched.append(("sagan", sagan_folder, launch(sagan, sagan_folder)))
        settings = os.path.join(sagan_folder, "run.json")
        while not os.path.exists(settings) and launched[0][2].poll() is None:
            time.sleep(0.2)
    torch_folder, pytorch = torch_command(args, preset, seed, chosen["steps"], chosen["eval_at"], data, sagan_folder)
    if pytorch:
        launched.append(("torch", torch_folder, launch(pytorch, torch_folder)))
    folders = {"sagan": sagan_folder, "torch": torch_folder}
    these = [(preset, seed, trainer, folder, data) for trainer, folder in folders.items()]
    while running := [process for _, _, process in launched if process.poll() is None]:
        # Every checkpoint written so far, also by the trainer still running (both write them whole, by a rename).
        waiting = [entry for entry in unevaluated(args, cache, plans, trained + these) if os.path.exists(entry[0])]
        if len(running) == 1 and waiting:
            evaluate(args, cache, waiting[0][0], waiting[0][1], threads=1)
        else:
            time.sleep(1)
    for trainer, folder, process in launched:
        if process.returncode != 0:
            with open(folder + ".log") as log:
                sys.exit(f"error: {' '.join(process.args[:3])}… failed:\n{log.read()[-3000:]}")
    return folders


def launch(command, folder):
    """Starts a trainer (at the study's own priority), its output in FOLDER.log."""
    print("+", " ".join(command), flush=True)
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    with open(folder + ".log", "a") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def checkpoint_file(trainer, folder, step):
    """Where each trainer writes its checkpoint of a step."""
    checkpoints = os.path.join(folder, "checkpoints") if trainer == "sagan" else folder
    return os.path.join(checkpoints, f"step-{step:06d}.safetensors")


def unevaluated(args, cache, plans, trained):
    """The trained runs' checkpoints (and the set each is evaluated against) still to evaluate,
    the last step first."""
    waiting = [(step, checkpoint_file(trainer, folder, step), data) for preset, _, trainer, folder, data in trained
               for step in plans[preset]["eval_at"]]
    return [(checkpoint, data) for _, checkpoint, data in sorted(waiting, key=lambda entry: -entry[0])
            if cache_key(args, checkpoint) not in cache]


def seconds_per_step(folders):
    """Each trainer's seconds per training step while both trained side by side: the median over
    blocks of LOG_EVERY steps (sagan's metrics.jsonl logs each block's mean; the PyTorch trainer's
    log.jsonl each step, averaged here in the same blocks), counting only the blocks that ended
    before the first trainer finished. The median, so that a minute of other work on the machine
    does not count; side by side only, so that the neighbour (the other trainer, then an evaluation
    or nothing) is the same for both."""
    rows = [json.loads(line) for line in open(os.path.join(folders["sagan"], "metrics.jsonl"))]
    blocks = {"sagan": [row["Time/sec_per_step"] for row in rows if "Time/sec_per_step" in row]}
    steps = [json.loads(line)["seconds"] for line in open(os.path.join(folders["torch"], "log.jsonl"))]
    blocks["torch"] = [statistics.mean(steps[i:i + LOG_EVERY]) for i in range(0, len(steps), LOG_EVERY)]
    together = min(LOG_EVERY * sum(times) for times in blocks.values())
    speeds = {}
    for trainer, times in blocks.items():
        ends = itertools.accumulate(LOG_EVERY * seconds for seconds in times)
        # (A run shorter than one block has only its first.)
        inside = [seconds for seconds, end in zip(times, ends) if end <= together] or times[:1]
        speeds[trainer] = statistics.median(inside)
    return speeds


def cache_key(args, checkpoint):
    return f"{checkpoint} N={args.num}"


def evaluate(args, cache, checkpoint, real, threads=os.cpu_count()):
    """KID (± its subsets' std) and FID of a checkpoint, remembered in `cache` (saved after each)."""
    key = cache_key(args, checkpoint)
    if key not in cache:
        output = run([args.sagan, "eval", "--checkpoint", checkpoint, "--real", real, "--metrics", "kid,fid",
                      "--num", str(args.num), "--json", "--threads", str(threads)])
        record = json.loads(output.strip().splitlines()[-1])
        cache[key] = {"kid": record["kid"], "kid_std": record.get("kid_std"), "fid": record["fid"]}
        with open(os.path.join(args.work, "evaluations.json"), "w") as file:
            json.dump(cache, file, indent=1)
    return cache[key]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="tiny32,sagan32")
    parser.add_argument("--seeds", help="override every preset's seeds (default: tiny32 1,2,3; sagan32 1)")
    parser.add_argument("--steps", type=int, help="override every preset's steps (tiny32 2000, sagan32 1000)")
    parser.add_argument("--eval-at", help="override the evaluated steps (the last step always is)")
    parser.add_argument("--num", type=int, default=2000)
    parser.add_argument("--data", action="append", default=[], metavar="PRESET=PACK",
                        help="a packed set for a preset (default: Fashion-MNIST, the training set evaluated against)")
    parser.add_argument("--work", default=os.path.join("runs", "trainer-comparison"))
    parser.add_argument("--real", default=os.path.expanduser("~/.cache/sagan/fashion-mnist-train-32x32.safetensors"))
    parser.add_argument("--sagan", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "sagan"))
    parser.add_argument("--torch-python", default="/usr/bin/python3")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    datasets = dict(entry.split("=", 1) for entry in args.data)
    plans = {preset: plan(args, preset) for preset in args.presets.split(",")}
    os.makedirs(args.work, exist_ok=True)
    cache_file = os.path.join(args.work, "evaluations.json")
    cache = json.load(open(cache_file)) if os.path.exists(cache_file) else {}
    # Runs train one seed after another (evaluating on a freed core meanwhile), then the remaining
    # evaluations go last step first: an interrupted study has the final step before the curves.
    trained, runs = [], {}
    for preset, chosen in plans.items():
        data = datasets.get(preset, args.real)
        for seed in chosen["seeds"]:
            runs[preset, seed] = train_side_by_side(args, cache, plans, trained, preset, seed, data)
            trained += [(preset, seed, trainer, folder, data) for trainer, folder in runs[preset, seed].items()]
    for checkpoint, data in unevaluated(args, cache, plans, trained):
        evaluate(args, cache, checkpoint, data)
    # Each run's logs and settings are read once, not once per evaluated step.
    speeds = {run: seconds_per_step(folders) for run, folders in runs.items()}
    batches = {run: json.load(open(os.path.join(folders["sagan"], "run.json")))["config"]["batchSize"]
               for run, folders in runs.items()}
    results = []
    for step in sorted({step for chosen in plans.values() for step in chosen["eval_at"]}, reverse=True):
        for preset, seed, trainer, folder, data in trained:
            if step not in plans[preset]["eval_at"]:
                continue
            results.append({"preset": preset, "trainer": trainer, "seed": seed, "step": step,
                            "batch": batches[preset, seed], "seconds_per_step": speeds[preset, seed][trainer],
                            **evaluate(args, cache, checkpoint_file(trainer, folder, step), data)})
            print(json.dumps(results[-1]), flush=True)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=1)
    report(args, plans, results)
    return 0


def report(args, plans, results):
    print(f"\nKID and FID at N = {args.num} against the training set, mean ± std over seeds:")
    for preset, chosen in plans.items():
        mine = [r for r in results if r["preset"] == preset]
        steps = chosen["steps"]
        print(f"\n{preset}, seeds {chosen['seeds']}; each run's KID ± its subsets' std:")
        for r in sorted(mine, key=lambda r: (r["step"], r["trainer"], r["seed"])):
            print(f"  step {r['step']} {r['trainer']} seed {r['seed']}: KID {r['kid']:.4f} ± {r['kid_std'] or 0:.4f}, "
                  f"FID {r['fid']:.2f}")
        print(f"\n| {preset} step | sagan KID | PyTorch KID | sagan FID | PyTorch FID |\n|---|---|---|---|---|")
        for step in chosen["eval_at"]:
            cells = []
            for metric in ("kid", "fid"):
                for trainer in ("sagan", "torch"):
                    mean, std = spread([r[metric] for r in mine if r["trainer"] == trainer and r["step"] == step])
                    cells.append(f"{mean:.4f} ± {std:.4f}" if metric == "kid" else f"{mean:.2f} ± {std:.2f}")
            print(f"| {step} | " + " | ".join(cells) + " |")
        for metric in ("kid", "fid"):
            ours = statistics.mean([r[metric] for r in mine if r["trainer"] == "sagan" and r["step"] == steps])
            theirs, std = spread([r[metric] for r in mine if r["trainer"] == "torch" and r["step"] == steps])
            inside = abs(ours - theirs) <= 2 * std
            print(f"{preset} {metric} at step {steps}: sagan {ours:.4f} {'within' if inside else 'OUTSIDE'} "
                  f"PyTorch's {theirs:.4f} ± 2·{std:.4f}")
        speeds = {trainer: statistics.mean([r["seconds_per_step"] for r in mine if r["trainer"] == trainer])
                  for trainer in ("sagan", "torch")}
        batch = mine[0]["batch"]
        print(f"{preset} images/s (training steps alone, one thread each, side by side, batch {batch}): "
              f"sagan {batch / speeds['sagan']:.1f}, "
              f"PyTorch {batch / speeds['torch']:.1f} ({speeds['torch'] / speeds['sagan']:.2f}x)")
        # Equal CPU time: for each PyTorch step evaluated, sagan's last evaluated step reached in no
        # more time (one thread each, seconds per step as measured).
        print(f"\n| {preset}, minutes of one thread | PyTorch step | PyTorch KID | sagan step (its minutes) "
              "| sagan KID |\n|---|---|---|---|---|")
        for step in chosen["eval_at"]:
            minutes = step * speeds["torch"] / 60
            reached = [ours for ours in chosen["eval_at"] if ours * speeds["sagan"] / 60 <= minutes]
            if not reached:
                continue
            theirs = spread([r["kid"] for r in mine if r["trainer"] == "torch" and r["step"] == step])
            ours = spread([r["kid"] for r in mine if r["trainer"] == "sagan" and r["step"] == reached[-1]])
            print(f"| {minutes:.1f} | {step} | {theirs[0]:.4f} ± {theirs[1]:.4f} | "
                  f"{reached[-1]} ({reached[-1] * speeds['sagan'] / 60:.1f}) | {ours[0]:.4f} ± {ours[1]:.4f} |")


if __name__ == "__main__":
    sys.exit(main())
