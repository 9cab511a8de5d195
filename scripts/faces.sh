#!/usr/bin/env bash
# `make faces`: the article's task, SAGAN on CelebA faces (issue 28). Packs the faces once (cached),
# then trains the article's setup (the sagan64 preset: attention at 32x32 in G and D, spectral norm
# everywhere, TTUR 1e-4/4e-4, hinge loss, Adam (0, 0.9), batch 64) with KID at N = 2,000 every 1,000
# steps and the best checkpoint kept. Running the same command again resumes where it stopped.
#
#   CELEBA      a folder of CelebA's aligned faces (img_align_celeba), required
#   STEPS       steps to train to (default 10000)
#   RUN         the run folder (default runs/faces-sagan64, or runs/faces-sagan32 at RESOLUTION=32)
#   RESOLUTION  64 (the sagan64 preset) or 32 (sagan32, the quick run; default 64)
#   PRECISION   fp32 or bf16; default: the faster of the two on this CPU, measured (bf16 only where
#               the CPU has AVX512_BF16 or AMX)
#   EVAL_NUM    images per side of each evaluation (default 2000, at most the number of faces)
#   EVAL_EVERY  steps between evaluations (default 1000)
#   FACES_CACHE where packs are kept (default: the faces folder of sagan's cache)
#   SAGAN       the sagan executable (default .build/release/sagan; a copy lets a long run go on
#               while the project is rebuilt)
set -euo pipefail
cd "$(dirname "$0")/.."
sagan=${SAGAN:-$PWD/.build/release/sagan}
fail() { echo "make faces: $*" >&2; exit 64; }

[ -n "${CELEBA:-}" ] || fail "give CELEBA=/path/to/img_align_celeba (a folder of CelebA's aligned faces)"
[ -d "$CELEBA" ] || fail "CELEBA=$CELEBA is not a folder"
resolution=${RESOLUTION:-64}
case "$resolution" in
    64) preset=sagan64 ;;
    32) preset=sagan32 ;;
    *) fail "RESOLUTION=$resolution: 64 (sagan64) or 32 (sagan32)" ;;
esac
steps=${STEPS:-10000}
run=${RUN:-runs/faces-$preset}
eval_every=${EVAL_EVERY:-1000}
[[ "$steps" =~ ^[1-9][0-9]*$ ]] || fail "STEPS=$steps is not a positive whole number"
[[ "$eval_every" =~ ^[1-9][0-9]*$ ]] || fail "EVAL_EVERY=$eval_every is not a positive whole number"

# 1. The pack, once per source folder and resolution, in sagan's cache folder.
cache=${FACES_CACHE:-${SAGAN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sagan}/faces}
mkdir -p "$cache"
key=$(realpath "$CELEBA" | sha256sum | cut -c1-16)
pack=$cache/celeba-$key-$resolution.safetensors
if [ ! -f "$pack" ]; then
    echo "== checking $CELEBA (sagan dataset check)"
    "$sagan" dataset check --source "$CELEBA"
    echo "== packing at ${resolution}x$resolution" \
        "(the 178x178 box of aligned 178x218 faces; other sizes centre-cropped)"
    "$sagan" dataset pack --source "$CELEBA" --dest "$pack" --resolution "$resolution" --crop celeba
fi
count=$(python3 - "$pack" << 'PY'
import json, struct, sys
head = open(sys.argv[1], "rb").read(8 + 65536)  # safetensors: a u64 length, then the JSON header
length = struct.unpack("<Q", head[:8])[0]
print(json.loads(head[8:8 + length])["__metadata__"]["count"])
PY
)
eval_num=${EVAL_NUM:-2000}
if [ "$eval_num" -gt "$count" ]; then
    echo "note: $count faces, fewer than EVAL_NUM=$eval_num: evaluating on N = $count"
    eval_num=$count
fi

# 2. Precision: bf16 only where the CPU runs it, and only when it is faster here (measured).
train=(train --preset "$preset" --data "$pack" --run-dir "$run" --batch 64 --steps "$steps"
       --eval-every "$eval_every" --eval-num "$eval_num" --sample-every 500 --checkpoint-every 250 --keep 2)
measure() { "$sagan" train --preset "$preset" --data "$pack" --batch 64 --precision "$1" --dry-run 2> /dev/null \
    | sed -n 's/^seconds per step: \([0-9.]*\).*/\1/p'; }
precision=${PRECISION:-}
fp32=$(measure fp32)
if [ -z "$precision" ]; then
    bf16=$(measure bf16 || true)
    if [ -z "$bf16" ]; then
        precision=fp32
        echo "precision: fp32 ($fp32 s/step; this CPU has neither AVX512_BF16 nor AMX for bf16)"
    elif python3 -c "import sys; sys.exit(0 if $bf16 < $fp32 else 1)"; then
        precision=bf16
        echo "precision: bf16 ($bf16 s/step against fp32's $fp32, measured)"
    else
        precision=fp32
        echo "precision: fp32 ($fp32 s/step; bf16 measured slower here, $bf16 s/step)"
    fi
fi
seconds=$([ "$precision" = bf16 ] && echo "${bf16:-$fp32}" || echo "$fp32")

# 3. How long, here and (by docs/distributed.md's model) on more machines like this one.
done_steps=$(python3 -c 'import json,sys
steps=[json.loads(l).get("step",0) for l in open(sys.argv[1]) if l.strip()]
print(max(steps) if steps else 0)' "$run/metrics.jsonl" 2> /dev/null || echo 0)
python3 - "$seconds" "$steps" "$done_steps" "$eval_every" "$eval_num" "$preset" << 'PY'
import sys
seconds, steps, done, every, num, preset = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), \
    int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
left = max(0, steps - done)
evaluations = len([s for s in range(done + 1, steps + 1) if s % every == 0 or s == steps])
# An evaluation: Inception on N generated images (about 0.1-0.2 s each on 2 cores; the real set's
# features are computed once and cached).
hours = (left * seconds + evaluations * num * 0.15) / 3600
print(f"this machine: {seconds:.2f} s/step (measured), {left} steps and {evaluations} evaluations left: "
      f"about {hours:.1f} h")
# docs/distributed.md: a ring allreduce of S bytes over N ranks costs 2(N-1)a + 2(N-1)/N S/B, a small
# collective ceil(log2 N) a; the global batch of 64 splits over the machines (strong scaling).
parameters = {"sagan64": 3848596 + 2769938, "sagan32": 3815506 + 2653218}[preset]
size, bandwidth, latency = 4 * parameters, 0.9 * 10e9 / 8, 50e-6
for ranks in (2, 4, 8):
    allreduce = 2 * (ranks - 1) * latency + 2 * (ranks - 1) / ranks * size / bandwidth
    small = 14 * (ranks - 1).bit_length() * latency
    step = seconds / ranks + allreduce + small
    print(f"mpirun -np {ranks} on {ranks} such machines (10 Gb/s): about {step:.2f} s/step, "
          f"{(left * step + evaluations * num * 0.15) / 3600:.1f} h (batch 64 split {64 // ranks} per machine)")
PY

# 4. Train, or resume; the log goes to the run folder too.
mkdir -p "$run"
resume=()
if ls "$run"/checkpoints/step-*.safetensors > /dev/null 2>&1; then resume=(--resume auto); fi
echo "== $sagan ${train[*]} --precision $precision ${resume[*]}"
"$sagan" "${train[@]}" --precision "$precision" "${resume[@]}" 2>&1 | tee -a "$run/train.log"
