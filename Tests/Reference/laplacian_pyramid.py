#!/usr/bin/env python3
"""numpy Laplacian pyramid for the SWD test (docs/evaluation.md §3 steps 1-3), written independently of
the Swift code: a 2-D convolution with the 5x5 binomial kernel on a reflect-101 padded plane.

    laplacian_pyramid.py input.safetensors output.safetensors

input: "image" F32 [3, S, S] on the 0-255 scale; output: "level0", "level1", ... F32 [3, s, s].
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from sagan_reference import load_safetensors, save_safetensors  # noqa: E402

KERNEL = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0


def blur(plane):
    padded = np.pad(plane, 2, mode="reflect")  # numpy's "reflect" is OpenCV's BORDER_REFLECT_101
    out = np.zeros_like(plane)
    for dy in range(5):
        for dx in range(5):
            out += KERNEL[dy, dx] * padded[dy:dy + plane.shape[0], dx:dx + plane.shape[1]]
    return out


def down(planes):
    return np.stack([blur(p)[::2, ::2] for p in planes])


def up(planes):
    result = []
    for p in planes:
        spread = np.zeros((2 * p.shape[0], 2 * p.shape[1]))
        spread[::2, ::2] = p
        result.append(4 * blur(spread))
    return np.stack(result)


def main():
    tensors, _ = load_safetensors(sys.argv[1])
    image = tensors["image"].numpy().astype(np.float64)
    levels = [image]
    while levels[-1].shape[1] // 2 >= 16:
        smaller = down(levels[-1])
        levels[-1] = levels[-1] - up(smaller)
        levels.append(smaller)
    save_safetensors(sys.argv[2], {f"level{i}": torch.from_numpy(level) for i, level in enumerate(levels)}, {})
    print(f"{len(levels)} levels")


if __name__ == "__main__":
    main()
