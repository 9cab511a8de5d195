#!/usr/bin/env python3
"""KID and FID of one checkpoint with their spread over independent draws of both sides.

    python3 benchmarks/metric_spread.py CHECKPOINT --real PACK [--num 2000] [--repeats 3]
        [--work DIR] [--sagan .build/release/sagan] [--json OUT.json]

`sagan eval --checkpoint` always draws the generator's seeds 0..N-1, so its KID ± (over subsets of
one draw) says nothing of how FID moves between draws, and FID has no ± of its own. Draw r
(0, 1, ...) here is `sagan generate --seeds rN..(r+1)N-1 --outdir` (8-bit PNGs, as the evaluation's
own images are) against the real subset of `sagan eval --seed r`: disjoint fakes and independently
drawn reals. Draw 0 is the same evaluation as `sagan eval --checkpoint --seed 0`. Prints each draw
and the mean ± sample standard deviation of KID and FID over the draws. Generated images and each
draw's result stay in --work (default: a folder beside the checkpoint), so an interrupted run
continues where it stopped; the images are deleted once their draw is evaluated. A kept draw counts
only for the same checkpoint file (by SHA-256: best.safetensors changes as a run goes on), real set
and N; any other is drawn again.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bf16_quality import spread  # noqa: E402  (mean and sample std, as the other studies report)


def fail(message):
    print(f"metric_spread: {message}", file=sys.stderr)
    sys.exit(64)


def run(command):
    """Runs a sagan command; its own error message and status on failure."""
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        print(done.stderr.strip(), file=sys.stderr)
        sys.exit(done.returncode)
    return done.stdout


def file_digest(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def draw(args, index):
    """KID, its subset std and FID of draw `index`, evaluated once and kept in --work."""
    result_path = os.path.join(args.work, f"draw-{index}.json")
    if os.path.exists(result_path):
        with open(result_path) as handle:
            kept = json.load(handle)
        if kept.get("key") == args.key:
            return kept
    images = os.path.join(args.work, f"fakes-{index}")
    generated = images + ".complete"  # beside the folder: sagan eval reads every file in it
    if not os.path.exists(generated) or open(generated).read() != args.key["checkpoint_sha256"]:
        shutil.rmtree(images, ignore_errors=True)
        first = index * args.num
        run([args.sagan, "generate", "--checkpoint", args.checkpoint, "--seeds", f"{first}-{first + args.num - 1}",
             "--outdir", images])
        with open(generated, "w") as handle:
            handle.write(args.key["checkpoint_sha256"])
    output = run([args.sagan, "eval", "--real", args.real, "--fake", images, "--num", str(args.num),
                  "--seed", str(index), "--metrics", "fid,kid", "--json"])
    record = json.loads(output.strip().splitlines()[-1])
    result = {"draw": index, "seeds": f"{index * args.num}-{(index + 1) * args.num - 1}", "real_seed": index,
              "kid": record["kid"], "kid_std": record["kid_std"], "fid": record["fid"], "key": args.key}
    with open(result_path + ".partial", "w") as handle:
        json.dump(result, handle)
    os.replace(result_path + ".partial", result_path)
    shutil.rmtree(images)
    os.remove(generated)
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("--real", required=True, help="the packed set (or image folder) to compare with")
    parser.add_argument("--num", type=int, default=2000, help="images per side")
    parser.add_argument("--repeats", type=int, default=3, help="independent draws (at least 2)")
    parser.add_argument("--work", help="where draws are kept (default: CHECKPOINT's folder/spread-N)")
    parser.add_argument("--sagan", default=".build/release/sagan")
    parser.add_argument("--json", help="also write the draws and the summary here")
    args = parser.parse_args()
    if not os.path.isfile(args.checkpoint):
        fail(f"{args.checkpoint}: no such checkpoint")
    if args.repeats < 2:
        fail(f"--repeats {args.repeats}: a spread needs at least 2 draws")
    if args.num < 2:
        fail(f"--num {args.num}: give at least 2")
    stem = os.path.splitext(os.path.basename(args.checkpoint))[0]
    args.work = args.work or os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)),
                                          f"spread-{stem}-{args.num}")
    os.makedirs(args.work, exist_ok=True)
    args.key = {"checkpoint_sha256": file_digest(args.checkpoint), "real": os.path.abspath(args.real), "num": args.num}
    draws = []
    for index in range(args.repeats):
        draws.append(draw(args, index))
        row = draws[-1]
        print(f"draw {index}: fake seeds {row['seeds']}, real seed {index}: "
              f"KID {row['kid']:.4f} ± {row['kid_std']:.4f} (subsets), FID {row['fid']:.2f}", flush=True)
    kid_mean, kid_std = spread([row["kid"] for row in draws])
    fid_mean, fid_std = spread([row["fid"] for row in draws])
    summary = {"checkpoint": args.checkpoint, "real": args.real, "num": args.num, "repeats": args.repeats,
               "kid_mean": kid_mean, "kid_std": kid_std, "fid_mean": fid_mean, "fid_std": fid_std, "draws": draws}
    print(f"N = {args.num}, {args.repeats} draws: KID {summary['kid_mean']:.4f} ± {summary['kid_std']:.4f}, "
          f"FID {summary['fid_mean']:.2f} ± {summary['fid_std']:.2f} (mean ± sample std over draws)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(summary, handle, indent=1)


if __name__ == "__main__":
    main()
