"""The project's SAGAN and DCGAN in PyTorch: the reference the Swift models are checked against.

Built from the same configuration (the JSON of Swift's `ModelConfig`), with the same state names
(`project.weight`, `blocks.2.conv.weight_u`, `blocks.3.gamma`, `head.weight`, ...) and layouts, so a
checkpoint written by `sagan` loads here with `load_state_dict` and weights saved here load in Swift.

Spectral normalisation follows docs/model.md §5: u and v are buffers; a training forward runs one power
iteration without gradients (v = l2n(Wᵀu), u = l2n(Wv)) and writes u and v; σ = uᵀWv is differentiable
in W; evaluation uses the stored u and v.
"""
import json
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

EPSILON = 1e-12


def l2n(x):
    return x / (x.norm() + EPSILON)


class SpectralNorm:
    """Mixin state for a layer whose `weight` is spectrally normalised along `output_axis`."""

    def init_spectral_norm(self, output_axis):
        self.output_axis = output_axis
        matrix = self.matrix(self.weight.detach())
        self.register_buffer("weight_u", l2n(torch.randn(matrix.shape[0])))
        self.register_buffer("weight_v", l2n(matrix.t() @ self.weight_u))
        self.last_sigma = None

    def matrix(self, weight):
        if self.output_axis != 0:
            weight = weight.transpose(0, self.output_axis)
        return weight.reshape(weight.shape[0], -1)

    def normalized_weight(self):
        w = self.matrix(self.weight)
        if self.training:
            with torch.no_grad():
                v = l2n(w.t() @ self.weight_u)
                u = l2n(w @ v)
                self.weight_v.copy_(v)
                self.weight_u.copy_(u)
        # Clones, as PyTorch's spectral_norm does: a later forward updates the buffers in place.
        sigma = self.weight_u.clone() @ (w @ self.weight_v.clone())
        self.last_sigma = sigma.detach()
        return self.weight / sigma


class Linear(nn.Linear, SpectralNorm):
    def __init__(self, inputs, outputs, spectral_norm, bias=True):
        super().__init__(inputs, outputs, bias=bias)
        self.sn = spectral_norm
        if spectral_norm:
            self.init_spectral_norm(0)

    def forward(self, x):
        return F.linear(x, self.normalized_weight() if self.sn else self.weight, self.bias)


class Conv2d(nn.Conv2d, SpectralNorm):
    def __init__(self, inputs, outputs, kernel, stride=1, padding=0, bias=True, spectral_norm=False):
        super().__init__(inputs, outputs, kernel, stride=stride, padding=padding, bias=bias)
        self.sn = spectral_norm
        if spectral_norm:
            self.init_spectral_norm(0)

    def forward(self, x):
        weight = self.normalized_weight() if self.sn else self.weight
        return F.conv2d(x, weight, self.bias, self.stride, self.padding)


class ConvTranspose2d(nn.ConvTranspose2d, SpectralNorm):
    def __init__(self, inputs, outputs, kernel, stride=1, padding=0, bias=True, spectral_norm=False):
        super().__init__(inputs, outputs, kernel, stride=stride, padding=padding, bias=bias)
        self.sn = spectral_norm
        if spectral_norm:
            self.init_spectral_norm(1)

    def forward(self, x):
        weight = self.normalized_weight() if self.sn else self.weight
        return F.conv_transpose2d(x, weight, self.bias, self.stride, self.padding)


class BatchNorm2d(nn.Module):
    """Batch norm with PyTorch's statistics; `affine` is scaleAndShift, shiftOnly or none."""

    def __init__(self, channels, affine, momentum, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels)) if affine == "scaleAndShift" else None
        self.bias = nn.Parameter(torch.zeros(channels)) if affine != "none" else None
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))
        self.momentum, self.eps = momentum, eps

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                            training=self.training, momentum=self.momentum, eps=self.eps)


class PaperSelfAttention(nn.Module):
    def __init__(self, channels, sn):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(()))
        self.f = Conv2d(channels, channels // 8, 1, spectral_norm=sn)
        self.g = Conv2d(channels, channels // 8, 1, spectral_norm=sn)
        self.h = Conv2d(channels, channels, 1, spectral_norm=sn)

    def forward(self, x):
        b, c, height, width = x.shape
        n = height * width
        keys = self.f(x).view(b, c // 8, n)
        queries = self.g(x).view(b, c // 8, n)
        values = self.h(x).view(b, c, n)
        attention = torch.softmax(queries.transpose(1, 2) @ keys, dim=-1)   # (B, N queries, N keys)
        self.last_attention = attention.detach()
        return (values @ attention.transpose(1, 2)).view(b, c, height, width) * self.gamma + x


class BigGANSelfAttention(nn.Module):
    def __init__(self, channels, sn):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(()))
        self.theta = Conv2d(channels, channels // 8, 1, bias=False, spectral_norm=sn)
        self.phi = Conv2d(channels, channels // 8, 1, bias=False, spectral_norm=sn)
        self.g = Conv2d(channels, channels // 2, 1, bias=False, spectral_norm=sn)
        self.o = Conv2d(channels // 2, channels, 1, bias=False, spectral_norm=sn)

    def forward(self, x):
        b, c, height, width = x.shape
        n = height * width
        queries = self.theta(x).view(b, c // 8, n)
        keys = F.max_pool2d(self.phi(x), 2).view(b, c // 8, n // 4)
        values = F.max_pool2d(self.g(x), 2).view(b, c // 2, n // 4)
        attention = torch.softmax(queries.transpose(1, 2) @ keys, dim=-1)   # (B, N, N/4)
        self.last_attention = attention.detach()
        attended = (values @ attention.transpose(1, 2)).view(b, c // 2, height, width)
        return x + self.o(attended) * self.gamma


def attention(config, channels):
    sn = config["spectralNorm"]
    if config["attentionVariant"] == "paper":
        return PaperSelfAttention(channels, sn)
    return BigGANSelfAttention(channels, sn)


class UpBlock(nn.Module):
    def __init__(self, inputs, outputs, config):
        super().__init__()
        self.conv = ConvTranspose2d(inputs, outputs, 4, 2, 1, bias=False, spectral_norm=config["spectralNorm"])
        self.norm = BatchNorm2d(
            outputs, config["generatorNormalization"], config["batchNormMomentum"], config["batchNormEpsilon"])

    def forward(self, x):
        return F.relu(self.norm(self.conv(x)))


class DownBlock(nn.Module):
    def __init__(self, inputs, outputs, normalized, config):
        super().__init__()
        self.conv = Conv2d(inputs, outputs, 4, 2, 1, bias=not normalized, spectral_norm=config["spectralNorm"])
        self.norm = BatchNorm2d(
            outputs, "scaleAndShift", config["batchNormMomentum"], config["batchNormEpsilon"]) if normalized else None
        self.slope = config["leakySlope"]

    def forward(self, x):
        y = self.conv(x)
        return F.leaky_relu(self.norm(y) if self.norm is not None else y, self.slope)


def channels(config, side):
    return config["baseWidth"] // side


def generator_sides(config):
    last = config["resolution"] if config["family"] == "sagan" else config["resolution"] // 2
    sides, side = [], 8
    while side <= last:
        sides.append(side)
        side *= 2
    return sides


def discriminator_sides(config):
    sides, side = [], config["resolution"] // 2
    while side >= 4:
        sides.append(side)
        side //= 2
    return sides


class Generator(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        sn = config["spectralNorm"]
        first = channels(config, 4)
        self.project = Linear(config["latentSize"], first * 16, sn)
        if config["family"] == "dcgan":
            self.project_norm = BatchNorm2d(
                first, "scaleAndShift", config["batchNormMomentum"], config["batchNormEpsilon"])
        blocks = []
        for side in generator_sides(config):
            blocks.append(UpBlock(channels(config, side // 2), channels(config, side), config))
            if side in config["generatorAttentionSides"]:
                blocks.append(attention(config, channels(config, side)))
        self.blocks = nn.ModuleList(blocks)
        last = channels(config, generator_sides(config)[-1])
        if config["family"] == "sagan":
            self.output = Conv2d(last, config["imageChannels"], 3, 1, 1, spectral_norm=sn)
        else:
            self.output = ConvTranspose2d(last, config["imageChannels"], 4, 2, 1)

    def forward(self, z):
        h = self.project(z).view(z.shape[0], channels(self.config, 4), 4, 4)
        if hasattr(self, "project_norm"):
            h = self.project_norm(h)
        h = F.relu(h)
        for block in self.blocks:
            h = block(h)
        return torch.tanh(self.output(h))


class Discriminator(nn.Module):
    def __init__(self, config):
        super().__init__()
        blocks, inputs = [], config["imageChannels"]
        for index, side in enumerate(discriminator_sides(config)):
            outputs = channels(config, side)
            blocks.append(DownBlock(inputs, outputs, config["family"] == "dcgan" and index > 0, config))
            if side in config["discriminatorAttentionSides"]:
                blocks.append(attention(config, outputs))
            inputs = outputs
        self.blocks = nn.ModuleList(blocks)
        self.head = Linear(channels(config, 4) * 16, 1, config["spectralNorm"])

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x.flatten(1))


def hinge_d(real, fake):
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def hinge_g(fake):
    return -fake.mean()


# safetensors, written and read by hand (docs/formats.md §2) so no extra package is needed.

def save_safetensors(path, tensors, metadata):
    names = sorted(tensors, key=lambda name: name.encode())
    header, offset, blobs = {"__metadata__": metadata} if metadata else {}, 0, []
    for name in names:
        data = tensors[name].detach().contiguous().to(torch.float32).numpy().astype("<f4").tobytes()
        header[name] = {
            "dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)) + encoded + b"".join(blobs))


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    metadata = header.pop("__metadata__", {})
    buffer = data[8 + length:]
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        dtype = {"F32": torch.float32, "U8": torch.uint8, "I64": torch.int64}.get(entry["dtype"])
        assert dtype is not None, f"{name}: dtype {entry['dtype']}"
        tensors[name] = torch.frombuffer(bytearray(buffer[begin:end]), dtype=dtype).reshape(entry["shape"])
    return tensors, metadata
