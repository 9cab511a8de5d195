"""Deterministic tensors shared by the PyTorch fixture scripts and the Swift tests.

`fill(name, count)` gives `count` values in [-1, 1) from a SplitMix64-style hash of (name, index);
Tests/GANTests/ModelParityTests.swift implements the same function, so model weights and inputs need
not be committed: both sides generate them from their names.
"""
import numpy as np
import torch

MASK = (1 << 64) - 1


def fnv1a(name):
    h = 0xCBF29CE484222325
    for byte in name.encode():
        h = ((h ^ byte) * 0x100000001B3) & MASK
    return h


def fill(name, count):
    with np.errstate(over="ignore"):
        i = np.arange(1, count + 1, dtype=np.uint64)
        x = (i * np.uint64(0x9E3779B97F4A7C15)) ^ np.uint64(fnv1a(name))
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return torch.from_numpy(((x >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -23) - np.float32(1)))


def state_value(name, shape):
    """The deterministic value of the state tensor `name` (with its G./D. prefix)."""
    count = int(np.prod(shape)) if len(shape) else 1
    values = fill(name, count)
    if name.endswith("weight_u") or name.endswith("weight_v"):
        values = values / (values.norm() + 1e-12)
    elif name.endswith("running_mean"):
        values = 0.1 * values
    elif name.endswith("running_var"):
        values = 1 + 0.25 * values
    elif name.endswith("gamma"):
        values = 0.3 + 0.1 * values
    elif name.endswith("norm.bias"):
        # Batch-normalised ReLU inputs cluster around 0; shifting them keeps the ReLU kinks
        # (where two float32 implementations can disagree on the mask) away from the data.
        values = 3 + 0.1 * values
    elif name.endswith("norm.weight"):
        values = 1 + 0.1 * values
    elif name.endswith("bias"):
        values = 0.1 * values
    else:
        values = 0.05 * values
    return values.reshape(shape)


def set_deterministic_state(module, prefix):
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            tensor.copy_(state_value(prefix + name, tuple(tensor.shape)))


def gradient_summary(name, gradient):
    """[‖g‖, ⟨g, r_k⟩ for k < 4, Σ|g r_k| for k < 4] with r_k = fill(name#k): checks every element."""
    flat = gradient.reshape(-1).double()
    rows = [flat.norm()]
    directions = [fill(f"{name}#{k}", flat.numel()).double() for k in range(4)]
    rows += [(flat * r).sum() for r in directions]
    rows += [(flat * r).abs().sum() for r in directions]
    return torch.stack(rows).float()
