#!/usr/bin/env python3
"""Writes the PyTorch reference fixtures that the Swift tests check the engine against.

Run with Debian's PyTorch (apt-get install python3-torch), from the repository root:

    /usr/bin/python3 Tests/Reference/make_fixtures.py

Each fixture is a JSON file in Tests/AutodiffTests/Fixtures/ holding the inputs, the op's
settings, its output, and the gradients of loss = sum(output * upstream) with respect to every
input, all as {"shape": [...], "data": [...]} in row-major order. The fixtures are committed, so CI
needs no PyTorch.
"""
import json
import os

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(__file__), "..", "AutodiffTests", "Fixtures")
torch.manual_seed(20261129)
torch.set_default_dtype(torch.float32)


def tensor(t):
    t = t.detach().contiguous()
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


def case(name, inputs, settings, forward, extra=None):
    """Runs forward(**inputs), backpropagates a random upstream gradient, writes the fixture."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    output = forward(**leaves)
    upstream = torch.randn_like(output)
    (output * upstream).sum().backward()
    fixture = {
        "name": name,
        "torch": torch.__version__,
        "settings": settings,
        "inputs": {k: tensor(v) for k, v in inputs.items()},
        "upstream": tensor(upstream),
        "output": tensor(output),
        "gradients": {k: tensor(v.grad) for k, v in leaves.items()},
    }
    if extra:
        fixture["extra"] = {k: tensor(v) for k, v in extra().items()}
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(fixture, f)
    print("wrote", name, "output", list(output.shape))


def main():
    os.makedirs(OUT, exist_ok=True)
    r = torch.randn

    for name, shape, weight, stride, padding in [
        ("conv2d_3x3_s2_p1", (2, 3, 5, 7), (4, 3, 3, 3), 2, 1),
        ("conv2d_4x4_s2_p1", (3, 3, 8, 8), (5, 3, 4, 4), 2, 1),
        ("conv2d_1x1_s1_p0", (1, 6, 5, 7), (2, 6, 1, 1), 1, 0),
    ]:
        case(name, {"x": r(*shape), "weight": r(*weight), "bias": r(weight[0])},
             {"stride": stride, "padding": padding},
             lambda x, weight, bias, s=stride, p=padding: F.conv2d(x, weight, bias, stride=s, padding=p))

    for name, shape, weight, stride, padding, output_padding in [
        ("conv_transpose2d_4x4_s2_p1", (2, 3, 4, 4), (3, 2, 4, 4), 2, 1, 0),
        ("conv_transpose2d_3x3_s2_p1_op1", (2, 3, 3, 5), (3, 4, 3, 3), 2, 1, 1),
    ]:
        case(name, {"x": r(*shape), "weight": r(*weight), "bias": r(weight[1])},
             {"stride": stride, "padding": padding, "outputPadding": output_padding},
             lambda x, weight, bias, s=stride, p=padding, op=output_padding:
                 F.conv_transpose2d(x, weight, bias, stride=s, padding=p, output_padding=op))

    # Batch norm in training mode: batch statistics, and the running statistics it leaves behind.
    x = r(4, 3, 2, 3) * 2 + 1
    running = {}

    def batch_norm_train(x, scale, shift):
        mean, var = torch.zeros(3), torch.ones(3)
        y = F.batch_norm(x, mean, var, scale, shift, training=True, momentum=0.1, eps=1e-5)
        running["runningMean"], running["runningVariance"] = mean, var
        return y

    case("batch_norm_train", {"x": x, "scale": r(3), "shift": r(3)}, {"epsilon": 1e-5, "momentum": 0.1},
         batch_norm_train, extra=lambda: dict(running))
    case("batch_norm_train_shift_only", {"x": x, "shift": r(3)}, {"epsilon": 1e-3},
         lambda x, shift: F.batch_norm(x, None, None, None, shift, training=True, eps=1e-3))
    mean, var = r(3), torch.rand(3) + 0.5
    case("batch_norm_eval", {"x": x, "scale": r(3), "shift": r(3)}, {"epsilon": 1e-5},
         lambda x, scale, shift: F.batch_norm(x, mean, var, scale, shift, training=False, eps=1e-5),
         extra=lambda: {"mean": mean, "variance": var})

    case("leaky_relu_0.2", {"x": r(2, 3, 4, 5)}, {"slope": 0.2}, lambda x: F.leaky_relu(x, 0.2))
    case("leaky_relu_0.02", {"x": r(2, 3, 4, 5)}, {"slope": 0.02}, lambda x: F.leaky_relu(x, 0.02))
    case("relu", {"x": r(2, 3, 4, 5)}, {}, lambda x: F.relu(x))
    case("tanh", {"x": r(2, 3, 4, 5) * 2}, {}, lambda x: torch.tanh(x))
    case("softmax", {"x": r(3, 7, 11) * 3}, {}, lambda x: torch.softmax(x, dim=-1))
    case("bmm", {"a": r(3, 4, 5), "b": r(3, 5, 6)}, {}, lambda a, b: torch.bmm(a, b))


if __name__ == "__main__":
    main()
