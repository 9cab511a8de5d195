#!/usr/bin/env python3
"""Improved precision and recall (Kynkäänniemi et al. 2019) with density and coverage (Naeem et al.
2020) of two feature sets with numpy, for Tests/EvaluationTests, and its time.

    precision_recall.py features.safetensors [k]

input: "real" F32 [n, d], "fake" F32 [m, d]. Prints "precision", "recall", "density", "coverage" and
"seconds" lines. Distances are exact (float64, full matrices): the plain reading of the papers,
against which sagan's blocked float32 computation is checked.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from sagan_reference import load_safetensors  # noqa: E402


def distances(a, b):
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.maximum(squared, 0)


def main():
    tensors, _ = load_safetensors(sys.argv[1])
    k = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    real, fake = (tensors[name].numpy().astype(np.float64) for name in ("real", "fake"))
    start = time.perf_counter()
    real_radii = np.partition(distances(real, real), k, axis=1)[:, k]  # the row itself is the 0th
    fake_radii = np.partition(distances(fake, fake), k, axis=1)[:, k]
    cross = distances(fake, real)  # (m, n)
    in_real_balls = cross <= real_radii[None, :]
    precision = in_real_balls.any(axis=1).mean()
    recall = (cross <= fake_radii[:, None]).any(axis=0).mean()
    density = in_real_balls.sum() / (k * len(fake))
    coverage = in_real_balls.any(axis=0).mean()
    seconds = time.perf_counter() - start
    print(f"precision {precision!r}\nrecall {recall!r}\ndensity {density!r}\ncoverage {coverage!r}")
    print(f"seconds {seconds!r}")


if __name__ == "__main__":
    main()
