#!/usr/bin/env python3
"""Loads a checkpoint written by `sagan` into the PyTorch reference models and checks their outputs.

    /usr/bin/python3 Tests/Reference/check_checkpoint.py CHECKPOINT.safetensors EXPECTED.safetensors

CHECKPOINT holds `G.*` (and, except for an export, `D.*`) tensors and the model configuration in its
metadata; EXPECTED holds `eval.G` (and `eval.D`), the Swift models' evaluation-mode outputs for
z = 1.5·fill("z") and x = fill("x") (model_fixtures_common.fill). Exits 0 when every tensor loads
(strictly: same names and shapes) and the outputs match within 1e-4 relative; otherwise prints why
and exits 1.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from model_fixtures_common import fill  # noqa: E402
from sagan_reference import Discriminator, Generator, load_safetensors  # noqa: E402


def main(checkpoint_path, expected_path):
    tensors, metadata = load_safetensors(checkpoint_path)
    config = json.loads(metadata["model_config"])
    modules = {"G.": Generator(config)}
    if any(name.startswith("D.") for name in tensors):
        modules["D."] = Discriminator(config)
    for prefix, module in modules.items():
        state = {name[len(prefix):]: value for name, value in tensors.items() if name.startswith(prefix)}
        module.load_state_dict(state, strict=True)
        module.eval()
    expected, _ = load_safetensors(expected_path)
    batch = expected["eval.G"].shape[0]
    z = 1.5 * fill("z", batch * config["latentSize"]).reshape(batch, config["latentSize"])
    side, channels = config["resolution"], config["imageChannels"]
    x = fill("x", batch * channels * side * side).reshape(batch, channels, side, side)
    with torch.no_grad():
        outputs = {"eval.G": modules["G."](z)}
        if "D." in modules:
            outputs["eval.D"] = modules["D."](x)
    failed = False
    for name, value in outputs.items():
        scale = max(float(expected[name].abs().max()), 1e-6)
        worst = float((value - expected[name]).abs().max())
        print(f"{name}: worst difference {worst:.3e} at scale {scale:.3e}")
        failed |= worst > 1e-4 * scale
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
