#!/usr/bin/env python3
"""Where G's self-attention puts its weight by the parity of the key's row and column: a test of
whether the maps' dotted look (one key position in four lit) comes from a checkerboard in the
features, which a stride-2 transposed convolution before the attention layer tends to leave.

    /usr/bin/python3 benchmarks/attention_lattice.py CHECKPOINT.safetensors [--count 16] [--seed 0]

Loads the checkpoint's G into the PyTorch reference model (Tests/Reference/sagan_reference.py, the
parity-tested one), draws --count latent vectors (PyTorch's generator, not sagan's: any z will do),
and prints for each of the four parity classes (row mod 2, column mod 2) its share of the attention
mass (averaged over images and queries; 0.25 each when parity plays no part), the mean norm of the
keys there, and the mean norm of the features the layer reads.
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Reference"))
from sagan_reference import Generator, load_safetensors  # noqa: E402


def by_parity(grid):
    """(H, W) → {(row parity, column parity): the values there}."""
    return {(y, x): grid[y::2, x::2] for y in (0, 1) for x in (0, 1)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("checkpoint")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    tensors, metadata = load_safetensors(args.checkpoint)
    config = json.loads(metadata["model_config"])
    generator = Generator(config)
    generator.load_state_dict({name[2:]: value for name, value in tensors.items() if name.startswith("G.")})
    generator.eval()
    layers = [module for module in generator.modules() if hasattr(module, "gamma")]
    if not layers:
        sys.exit(f"{args.checkpoint}: G has no attention layer")
    layer = layers[0]
    if not hasattr(layer, "f"):
        sys.exit(f"{args.checkpoint}: only the paper's attention variant (full-resolution keys) is measured")
    inputs = []
    layer.register_forward_hook(lambda module, given, output: inputs.append(given[0]))
    torch.manual_seed(args.seed)
    with torch.no_grad():
        generator(torch.randn(args.count, config["latentSize"]))
        features = inputs[0]
        keys = layer.f(features)
    attention = layer.last_attention  # (B, queries, keys)
    side = features.shape[-1]
    mass = by_parity(attention.mean(dim=(0, 1)).view(side, side))
    key_norms = by_parity(keys.norm(dim=1).mean(0))
    feature_norms = by_parity(features.norm(dim=1).mean(0))
    print(f"G's attention at {side}x{side}, gamma {float(layer.gamma):.4f}, {args.count} images")
    print("row, column parity   attention mass   key norm   feature norm")
    for parity in mass:
        print(f"{parity[0]}, {parity[1]}                  {float(mass[parity].sum()):.3f}"
              f"            {float(key_norms[parity].mean()):.3f}      {float(feature_norms[parity].mean()):.3f}")


if __name__ == "__main__":
    main()
