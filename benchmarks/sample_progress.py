#!/usr/bin/env python3
"""A training run's progress as one picture: the same corner of its sample grids (the same z at every
step, samples/step-NNNNNN.png) side by side, each labelled with its step.

    python3 benchmarks/sample_progress.py RUN OUT.png --steps 1000,2000,5000,10000 [--tiles 4]

--tiles is how many tiles of each grid's top-left corner to show per side (4: 16 faces per step).
The tile size and the gap between tiles are read from run.json's resolution and the grid's width.
"""
import argparse
import json
import os
import sys

from PIL import Image, ImageDraw, ImageFont  # Pillow, which matplotlib (make test-deps) brings


def fail(message):
    print(f"sample_progress: {message}", file=sys.stderr)
    sys.exit(64)


def corner(path, resolution, tiles):
    """The top-left tiles x tiles of a grid image: sagan writes grids as tiles of `resolution` pixels
    with an equal gap before, between and after them."""
    image = Image.open(path).convert("RGB")
    width = image.width
    per_row = max(1, width // resolution)
    gap = (width - per_row * resolution) // (per_row + 1)
    if tiles > per_row:
        fail(f"{path}: the grid has {per_row} tiles per row, fewer than --tiles {tiles}")
    side = gap + tiles * (resolution + gap)
    return image.crop((0, 0, side, side))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("run")
    parser.add_argument("out")
    parser.add_argument("--steps", required=True, help="comma-separated steps whose grids exist")
    parser.add_argument("--tiles", type=int, default=4)
    args = parser.parse_args()
    try:
        steps = [int(step) for step in args.steps.split(",")]
    except ValueError:
        fail(f"--steps {args.steps}: give whole numbers separated by commas")
    if args.tiles < 1:
        fail(f"--tiles {args.tiles}: give at least 1")
    try:
        with open(os.path.join(args.run, "run.json")) as handle:
            resolution = json.load(handle)["config"]["model"]["resolution"]
    except (OSError, KeyError, ValueError) as error:
        fail(f"{args.run}/run.json: cannot read the model's resolution ({error})")
    grids = [os.path.join(args.run, "samples", f"step-{step:06d}.png") for step in steps]
    for path in grids:
        if not os.path.isfile(path):
            fail(f"{path}: no sample grid at that step (grids are written every --sample-every steps)")
    corners = [corner(path, resolution, args.tiles) for path in grids]
    # Pixel for pixel: each corner as sagan drew it, a label band above, 12 pixels between steps.
    side, band, space = corners[0].width, 22, 12
    canvas = Image.new("RGB", (len(corners) * side + (len(corners) - 1) * space, band + side), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=14)
    for index, (step, picture) in enumerate(zip(steps, corners)):
        left = index * (side + space)
        canvas.paste(picture, (left, band))
        label = f"step {step:,}"
        draw.text((left + (side - draw.textlength(label, font=font)) / 2, 3), label, fill="black", font=font)
    canvas.save(args.out, optimize=True)
    print(f"wrote {args.out}: {len(steps)} steps, {args.tiles * args.tiles} samples each")


if __name__ == "__main__":
    main()
