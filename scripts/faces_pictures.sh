#!/usr/bin/env bash
# The pictures of a faces run for the README and docs/results.md (issue 28), from its best checkpoint
# (or the newest one before the first evaluation): a grid of 64 faces (seeds 0-63), an interpolation
# strip, and where attention looks from three query points of one face. Prints each command it ran,
# for the README to show beside its picture.
#
#   scripts/faces_pictures.sh RUN OUTDIR
#
#   SEED     the face whose attention is drawn (default 0)
#   QUERIES  three query points x,y on the 64x64 image: eye, mouth, background (default: where
#            CelebA crops put them, "22,27 32,46 4,4")
#   FROM TO  the interpolation's end seeds (default 0 and 1)
#   SAGAN    the sagan executable (default .build/release/sagan)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: scripts/faces_pictures.sh RUN OUTDIR" >&2; exit 64; }
run=$1
out=$2
sagan=${SAGAN:-$PWD/.build/release/sagan}
checkpoint=$run/checkpoints/best.safetensors
if [ ! -f "$checkpoint" ]; then
    checkpoint=$(ls "$run"/checkpoints/step-*.safetensors 2> /dev/null | sort | tail -1 || true)
fi
[ -n "$checkpoint" ] && [ -f "$checkpoint" ] || { echo "faces_pictures: $run has no checkpoint" >&2; exit 64; }
mkdir -p "$out"
queries=()
for point in ${QUERIES:-22,27 32,46 4,4}; do queries+=(--query "$point"); done
show() { echo "\$ sagan ${*//$PWD\//}"; "$sagan" "$@" > /dev/null; }
show generate --checkpoint "$checkpoint" --seeds 0-63 --grid 8x8 --out "$out/faces-grid.png"
show generate --checkpoint "$checkpoint" --interpolate "${FROM:-0}" "${TO:-1}" --steps 8 \
    --out "$out/faces-interpolation.png"
show inspect attention --checkpoint "$checkpoint" --seed "${SEED:-0}" "${queries[@]}" \
    --out "$out/faces-attention.png"
echo "from $checkpoint"
