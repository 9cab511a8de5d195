#!/usr/bin/env python3
"""Writes the model-parity fixtures for Tests/GANTests (run with Debian's python3-torch, from the repo root):

    /usr/bin/python3 Tests/Reference/make_model_fixtures.py

For each configuration (blog128, sagan32, a narrow sagan32 with the BigGAN attention) it builds the
reference G and D, sets every parameter and buffer from its name (model_fixtures_common.fill), and
runs the protocol the Swift test repeats:

  0. warm-up: G(z) and D(x) in training mode without gradients (one power step for every SN
     layer from the name-derived u, one BN statistics update), so that σ is meaningful;
  1. evaluation mode: G(z), D(x);
  2. training mode, the D step: fake = G(z) without gradients (σ of each G layer recorded), then
     L_D = mean relu(1 − D(x)) + mean relu(1 + D(fake)) and its gradient for every D parameter;
  3. the G step: L_G = −mean D(G(z2)) and its gradient for every G parameter (no optimiser step between);
  4. every buffer afterwards (u, v, BN running statistics).

The state rules (positive BN shifts) and a discriminator slope of 1 keep every ReLU input at least
1e-4 from zero, and every logit that far from the hinge's kinks at ±1 (checked here): two float32
implementations disagree on a mask only within about 1e-6 of a kink, and one flipped mask moves gradients by percents.

Gradients are stored as projections on four named random directions plus norms (every element
contributes), and in full for tensors of at most 4096 elements. A fourth file holds a narrow model
with PyTorch's own random initialisation, saved as a sagan checkpoint, with its evaluation outputs.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from model_fixtures_common import fill, gradient_summary, set_deterministic_state  # noqa: E402
from sagan_reference import (  # noqa: E402
    BatchNorm2d, Discriminator, DownBlock, Generator, hinge_d, hinge_g, save_safetensors)

OUT = os.path.join(os.path.dirname(__file__), "..", "GANTests", "Fixtures")


def sagan_config(resolution, g_sides, d_sides, base_width=2048, variant="paper", channels=3, slope=0.02):
    return {
        "family": "sagan", "resolution": resolution, "imageChannels": channels, "latentSize": 128,
        "baseWidth": base_width,
        "generatorAttentionSides": g_sides, "discriminatorAttentionSides": d_sides, "attentionVariant": variant,
        "leakySlope": slope, "spectralNorm": True, "generatorNormalization": "shiftOnly", "batchNormMomentum": 0.01,
        "batchNormEpsilon": 0.001, "initializer": {"glorotUniform": {}},
    }


def inputs(config, batch):
    z = 1.5 * fill("z", batch * config["latentSize"]).reshape(batch, config["latentSize"])
    z2 = 1.5 * fill("z2", batch * config["latentSize"]).reshape(batch, config["latentSize"])
    side, channels = config["resolution"], config["imageChannels"]
    x = fill("x", batch * channels * side * side).reshape(batch, channels, side, side)
    return z, z2, x


def sn_layers(module):
    return [(name, layer) for name, layer in module.named_modules() if getattr(layer, "sn", False)]


KINK_MARGIN = 1e-4


def watch_kinks(G, D):
    """Records the smallest |input| of every ReLU and leaky ReLU: BN outputs in G, conv outputs in D
    (where the slope is not 1), one entry per layer per pass."""
    smallest = []

    def hook(module, inputs, output):
        smallest.append(float(output.detach().abs().min()))

    for module in G.modules():
        if isinstance(module, BatchNorm2d):
            module.register_forward_hook(hook)
    for module in D.modules():
        if isinstance(module, DownBlock) and module.slope != 1:
            module.conv.register_forward_hook(hook)
    return smallest


def check_margin(what, value):
    if value < KINK_MARGIN:
        raise SystemExit(f"{what}: {value:.2e} from a kink (< {KINK_MARGIN}); float32 rounding could flip a mask. "
                         "Change the fixture's state rules or inputs.")


def parity_fixture(name, config, batch):
    G, D = Generator(config), Discriminator(config)
    set_deterministic_state(G, "G.")
    set_deterministic_state(D, "D.")
    kinks = watch_kinks(G, D)
    z, z2, x = inputs(config, batch)
    out = {}

    with torch.no_grad():
        G(z), D(x)
    G.eval(), D.eval()
    with torch.no_grad():
        out["eval.G"], out["eval.D"] = G(z), D(x)

    G.train(), D.train()
    with torch.no_grad():
        fake = G(z)
    for layer_name, layer in sn_layers(G):
        out[f"sigma.G.{layer_name}"] = layer.last_sigma.reshape(())
    out["train.G"] = fake
    d_real, d_fake = D(x), D(fake)
    loss_d = hinge_d(d_real, d_fake)
    out["train.D_real"], out["train.D_fake"], out["loss_D"] = d_real, d_fake, loss_d.reshape(())
    for (param_name, param), grad in zip(D.named_parameters(), torch.autograd.grad(loss_d, list(D.parameters()))):
        record_gradient(out, f"D.{param_name}", grad)

    g_step_start = len(kinks)    # only differentiated passes matter: a flip in a forward moves it by < 1e-6
    d_generated = D(G(z2))
    loss_g = hinge_g(d_generated)
    out["train.D_generated"], out["loss_G"] = d_generated, loss_g.reshape(())
    for (param_name, param), grad in zip(G.named_parameters(), torch.autograd.grad(loss_g, list(G.parameters()))):
        record_gradient(out, f"G.{param_name}", grad)

    check_margin(f"{name}: a ReLU input of the G step", min(kinks[g_step_start:]))
    for logits in (d_real, d_fake, d_generated):
        check_margin(f"{name}: a logit's distance to the hinge at ±1", float((logits.detach().abs() - 1).abs().min()))
    for prefix, module in (("G.", G), ("D.", D)):
        for buffer_name, buffer in module.named_buffers():
            out[f"after.{prefix}{buffer_name}"] = buffer
    metadata = {"model_config": json.dumps(config), "batch": str(batch), "torch": torch.__version__}
    save_safetensors(os.path.join(OUT, f"parity_{name}.safetensors"), out, metadata)
    print(f"parity_{name}: L_D {loss_d.item():.6f}, L_G {loss_g.item():.6f}, {len(out)} tensors")


def record_gradient(out, name, grad):
    out[f"gradient.{name}.summary"] = gradient_summary(name, grad)
    if grad.numel() <= 4096:
        out[f"gradient.{name}"] = grad


def pytorch_checkpoint(name, config, batch):
    """A model with PyTorch's own initialisation, saved in the layout sagan reads."""
    torch.manual_seed(7)
    G, D = Generator(config), Discriminator(config)
    G.eval(), D.eval()
    z, _, x = inputs(config, batch)
    tensors = {f"G.{k}": v for k, v in G.state_dict().items()}
    tensors.update({f"D.{k}": v for k, v in D.state_dict().items()})
    with torch.no_grad():
        tensors["expected.eval.G"], tensors["expected.eval.D"] = G(z), D(x)
    metadata = {"format": "pt", "kind": "checkpoint", "model_config": json.dumps(config), "torch": torch.__version__}
    save_safetensors(os.path.join(OUT, f"{name}.safetensors"), tensors, metadata)
    print(f"{name}: {len(tensors)} tensors")


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    # The discriminator's leaky-ReLU slope is 1 in the parity fixtures: its conv outputs are not
    # normalised, so no state keeps them away from the kink; the slope itself is checked by the op
    # fixtures (0.02 and 0.2) and everything else here is the presets' architecture.
    parity_fixture("blog128", sagan_config(128, [32], [32], slope=1.0), batch=2)
    parity_fixture("sagan32", sagan_config(32, [32], [16], slope=1.0), batch=4)
    parity_fixture("sagan32_biggan_narrow",
                   sagan_config(32, [16], [8], base_width=256, variant="biggan", channels=1, slope=1.0), batch=4)
    pytorch_checkpoint("torch_saved_sagan32_narrow", sagan_config(32, [32], [16], base_width=256), batch=3)


if __name__ == "__main__":
    main()
