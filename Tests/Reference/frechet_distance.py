#!/usr/bin/env python3
"""FID and full-set KID of two feature sets with numpy, for Tests/EvaluationTests.

    frechet_distance.py features.safetensors

input: "a" F32 [n1, d], "b" F32 [n2, d]. Prints "fid <value>" and "mmd <value>". FID goes the way
pytorch-fid does, through the eigenvalues of the (non-symmetric) product Σ_a Σ_b, a different
route from sagan's Σ_a^½ Σ_b Σ_a^½; MMD² is the unbiased estimate with the cubic kernel on the
first len(b) rows of a and all rows of b.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from sagan_reference import load_safetensors  # noqa: E402


def main():
    tensors, _ = load_safetensors(sys.argv[1])
    a, b = (tensors[name].numpy().astype(np.float64) for name in ("a", "b"))
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    sigma_a, sigma_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    eigenvalues = np.linalg.eigvals(sigma_a @ sigma_b)
    trace_root = np.sqrt(np.clip(eigenvalues.real, 0, None)).sum()
    fid = ((mu_a - mu_b) ** 2).sum() + np.trace(sigma_a) + np.trace(sigma_b) - 2 * trace_root
    d, n = a.shape[1], len(b)
    x = a[:n]
    k_xx, k_bb, k_xb = ((p @ q.T / d + 1) ** 3 for p, q in ((x, x), (b, b), (x, b)))
    within = (k_xx.sum() - np.trace(k_xx)) / (n * (n - 1)) + (k_bb.sum() - np.trace(k_bb)) / (n * (n - 1))
    mmd = within - 2 * k_xb.mean()
    print(f"fid {fid!r}")
    print(f"mmd {mmd!r}")


if __name__ == "__main__":
    main()
