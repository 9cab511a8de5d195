#!/usr/bin/env bash
# `make faces` from a clean state on 200 synthetic 178x218 "faces" (CelebA's aligned size; no CelebA
# image is ever committed): packs, trains 3 steps with an evaluation, then the same command again
# resumes and finishes at 4. Run by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
mkdir "$work/faces"
python3 - "$work/faces" << 'PY'
import random, sys
random.seed(5)
for index in range(200):
    # A bright oval on a darker background, with two darker eyes, in RGB PPM.
    width, height = 178, 218
    shade = random.randint(120, 220)
    pixels = bytearray()
    for y in range(height):
        for x in range(width):
            inside = ((x - 89) / 55) ** 2 + ((y - 120) / 75) ** 2 < 1
            eye = any((x - ex) ** 2 + (y - 100) ** 2 < 36 for ex in (68, 110))
            value = 40 if eye else shade if inside else 60 + (x + y) % 30
            pixels += bytes((value, int(value * 0.8), int(value * 0.7)))
    with open(f"{sys.argv[1]}/{index + 1:06d}.ppm", "wb") as out:
        out.write(b"P6\n%d %d\n255\n" % (width, height) + pixels)
PY
settings=(CELEBA="$work/faces" RUN="$work/run" FACES_CACHE="$work/cache" EVAL_NUM=20 EVAL_EVERY=2 PRECISION=fp32)
make --no-print-directory faces "${settings[@]}" STEPS=3 > "$work/first.log" 2>&1 \
    || fail "make faces: $(tail -5 "$work/first.log")"
grep -q "this machine: .* s/step (measured)" "$work/first.log" || fail "no time estimate: $(cat "$work/first.log")"
grep -q "mpirun -np 2 on 2 such machines" "$work/first.log" || fail "no estimate for more machines"
ls "$work/cache"/celeba-*-64.safetensors > /dev/null || fail "no cached pack"
[ -f "$work/run/checkpoints/step-000003.safetensors" ] || fail "no checkpoint at step 3"
[ -f "$work/run/checkpoints/best.safetensors" ] || fail "no best checkpoint"
make --no-print-directory faces "${settings[@]}" STEPS=4 > "$work/second.log" 2>&1 \
    || fail "make faces again: $(tail -5 "$work/second.log")"
grep -q "resuming from .*step-000003.safetensors at step 3" "$work/second.log" \
    || fail "did not resume: $(cat "$work/second.log")"
grep -q "dataset check" "$work/second.log" && fail "packed again instead of using the cached pack"
python3 - "$work/run/metrics.jsonl" << 'PY' || fail "metrics of the two parts"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
assert [r["step"] for r in rows if r.get("kind") == "eval"] == [2, 3, 4], rows
PY
python3 benchmarks/kid_curve.py "$work/run/metrics.jsonl" "$work/kid.png" --floor 0.001 > "$work/curve.log" 2>&1 \
    || fail "benchmarks/kid_curve.py: $(cat "$work/curve.log")"
grep -q "3 evaluations" "$work/curve.log" \
    || fail "the KID curve did not draw the 3 evaluations: $(cat "$work/curve.log")"
python3 benchmarks/sample_progress.py "$work/run" "$work/progress.png" --steps 3,4 --tiles 2 \
    > "$work/progress.log" 2>&1 \
    || fail "benchmarks/sample_progress.py: $(cat "$work/progress.log")"
python3 - "$work/progress.png" << 'PY' || fail "the progress picture is not two corners of 2x2 tiles side by side"
import sys
from PIL import Image
width, height = Image.open(sys.argv[1]).size
side = 2 + 2 * (64 + 2)  # sagan's grids: 64-pixel tiles with 2-pixel gaps around them
assert (width, height) == (2 * side + 12, side + 22), (width, height)
PY
status=0
python3 benchmarks/sample_progress.py "$work/run" "$work/none.png" --steps 5 > "$work/none.log" 2>&1 || status=$?
[ "$status" = 64 ] && grep -q "step-000005.png: no sample grid" "$work/none.log" && [ ! -e "$work/none.png" ] \
    || fail "a step without a grid: status $status, $(cat "$work/none.log")"
/usr/bin/python3 benchmarks/attention_lattice.py "$work/run/checkpoints/best.safetensors" --count 2 \
    > "$work/lattice.log" 2>&1 || fail "benchmarks/attention_lattice.py: $(cat "$work/lattice.log")"
python3 - "$work/lattice.log" << 'PY' || fail "the attention's parity shares: $(cat "$work/lattice.log")"
import sys
rows = [line.split() for line in open(sys.argv[1]) if line[:1] in "01"]
assert len(rows) == 4 and abs(sum(float(row[2]) for row in rows) - 1) < 1e-3, rows
PY
pack=$(ls "$work/cache"/celeba-*-64.safetensors)
# spread STEP [SAGAN]: metric_spread.py on that step's checkpoint, 2 draws of 20, kept in one --work;
# then draw 0 must be the training run's own evaluation of the step (through PNG files, not the live G).
spread() {
    python3 benchmarks/metric_spread.py "$work/run/checkpoints/step-00000$1.safetensors" --real "$pack" \
        --num 20 --repeats 2 --sagan "${2:-${SAGAN:-.build/release/sagan}}" --work "$work/spread" \
        --json "$work/spread$1.json" > "$work/spread$1.log" 2>&1 \
        || fail "benchmarks/metric_spread.py, step $1: $(cat "$work/spread$1.log")"
    python3 - "$work/run/metrics.jsonl" "$work/spread$1.json" "$1" << 'PY' || fail "draws: $(cat "$work/spread$1.log")"
import json, sys
step = int(sys.argv[3])
kid = [row["kid"] for row in map(json.loads, open(sys.argv[1])) if row.get("kind") == "eval" and row["step"] == step]
spread = json.load(open(sys.argv[2]))
draws = spread["draws"]
assert abs(draws[0]["kid"] - kid[-1]) < 1e-9, (draws[0], kid)
assert draws[1]["seeds"] == "20-39" and draws[0]["fid"] != draws[1]["fid"], draws
assert spread["fid_std"] > 0 and abs(spread["kid_mean"] - (draws[0]["kid"] + draws[1]["kid"]) / 2) < 1e-12
PY
}
spread 4
spread 3            # the same --work for another checkpoint: step 4's kept draws are not reused
spread 3 /bin/false # the same checkpoint again: every draw is kept, so sagan is not run at all
status=0
python3 benchmarks/metric_spread.py "$work/none.safetensors" --real "$pack" > "$work/none.log" 2>&1 || status=$?
[ "$status" = 64 ] && grep -q "none.safetensors: no such checkpoint" "$work/none.log" \
    || fail "a missing checkpoint: status $status, $(cat "$work/none.log")"
SAGAN=${SAGAN:-.build/release/sagan} scripts/faces_pictures.sh "$work/run" "$work/pictures" \
    > "$work/pictures.log" 2>&1 \
    || fail "scripts/faces_pictures.sh: $(cat "$work/pictures.log")"
for picture in faces-grid faces-interpolation faces-attention; do
    [ -s "$work/pictures/$picture.png" ] || fail "scripts/faces_pictures.sh wrote no $picture.png"
done
echo "ok: make faces packs once, trains, evaluates, and the same command resumes; its curve, progress, metric"\
    "spread and pictures draw"
