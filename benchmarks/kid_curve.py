#!/usr/bin/env python3
"""The KID curve of a training run: KID ± its standard deviation over subsets at each evaluated step,
from the run's metrics.jsonl (the rows `sagan train --eval-every` and `sagan eval` append), as a PNG.

    python3 benchmarks/kid_curve.py RUN/metrics.jsonl OUT.png [--floor KID] [--goal KID] [--title TEXT]

--floor draws a horizontal line at a real-vs-real KID (two halves of the data at the same N), the
value a generator cannot beat (named in the legend instead when it lies far below a log axis);
--goal a dotted line at a KID to reach. Rows of G-EMA and G, or of several N, are drawn as separate lines.
"""
import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("metrics")
    parser.add_argument("out")
    parser.add_argument("--floor", type=float)
    parser.add_argument("--goal", type=float, help="a KID to reach, drawn as a dotted line")
    parser.add_argument("--title", default="KID during training")
    args = parser.parse_args()
    series = {}
    with open(args.metrics) as handle:
        for line in handle:
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("kind") != "eval" or "kid" not in row:
                continue
            label = f"{'G-EMA' if '(EMA)' in row.get('fake', '') else 'G'}, N = {row['n_fake']:,}"
            series.setdefault(label, []).append((row["step"], row["kid"], row.get("kid_std", 0.0)))
    if not series:
        sys.exit(f"{args.metrics}: no evaluation rows with a KID")
    figure, axes = plt.subplots(figsize=(6, 3.5), dpi=100)
    for label, points in sorted(series.items()):
        points.sort()
        steps, values, deviations = zip(*points)
        axes.errorbar(steps, values, yerr=deviations, marker="o", markersize=3, capsize=2, label=label)
    # KID falls by an order of magnitude over a run: a log axis shows the late steps as well as the
    # early ones, unless an estimate is not positive (KID of near-equal sets can come out below zero).
    lowest = min(value - deviation for points in series.values() for _, value, deviation in points)
    logarithmic = lowest > 0
    if logarithmic:
        axes.set_yscale("log")
    bottom = axes.get_ylim()[0]
    if args.goal is not None:
        axes.axhline(args.goal, color="tab:green", linestyle=":", linewidth=1, label=f"goal ({args.goal:g})")
    if args.floor is not None:
        label = f"real vs real ({args.floor:.5f})"
        if logarithmic and args.floor < bottom:
            # A floor orders of magnitude below the curve would squash it: named, not drawn.
            axes.plot([], [], color="grey", linestyle="--", linewidth=1, label=label + ", below the axis")
        else:
            axes.axhline(args.floor, color="grey", linestyle="--", linewidth=1, label=label)
    if logarithmic and args.goal is not None:
        axes.set_ylim(bottom=min(bottom, args.goal / 2))
    axes.set_xlabel("step")
    axes.set_ylabel("KID" + (" (log scale)" if logarithmic else ""))
    axes.set_title(args.title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(args.out)
    print(f"wrote {args.out}: {sum(len(p) for p in series.values())} evaluations")


if __name__ == "__main__":
    main()
