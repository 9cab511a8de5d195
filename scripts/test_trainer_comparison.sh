#!/usr/bin/env bash
# benchmarks/trainer_comparison.py on a tiny plan (tiny32, one seed, 2 steps, N = 20): both trainers
# train side by side on the same batches, every checkpoint is evaluated, the report prints, and a
# second run of the same command trains nothing and evaluates nothing again; the PyTorch trainer
# resumes exactly. Run by `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
study=(python3 benchmarks/trainer_comparison.py --presets tiny32 --seeds 1 --steps 2 --num 20
    --work "$work/study" --sagan .build/release/sagan --torch-python /usr/bin/python3 --json "$work/results.json")
"${study[@]}" > "$work/first.log" 2>&1 || fail "the study: $(tail -20 "$work/first.log")"
grep -q "| tiny32 step | sagan KID | PyTorch KID" "$work/first.log" || fail "no table: $(tail -20 "$work/first.log")"
grep -q "images/s (training steps alone, one thread each" "$work/first.log" || fail "no speeds"
grep -q "| tiny32, minutes of one thread | PyTorch step" "$work/first.log" || fail "no table at equal CPU time"
python3 - "$work/results.json" << 'PY' || fail "results.json"
import json, sys
results = json.load(open(sys.argv[1]))
assert sorted(r["trainer"] for r in results) == ["sagan", "torch"], results
finite = lambda r: r["kid"] == r["kid"] and r["fid"] > 0 and r["kid_std"] is not None
assert all(r["step"] == 2 and finite(r) for r in results), results
PY
"${study[@]}" > "$work/second.log" 2>&1 || fail "the second run: $(tail -20 "$work/second.log")"
if grep -q "^+ " "$work/second.log"; then
    fail "the second run trained or evaluated again: $(grep '^+ ' "$work/second.log")"
fi
# The PyTorch trainer resumes exactly: 2 steps, then on to 4, equal to 4 in one go.
trainer=(/usr/bin/python3 benchmarks/torch_trainer.py --run-json "$work/study/tiny32-sagan-seed1/run.json" --seed 1
    --data "$HOME/.cache/sagan/fashion-mnist-train-32x32.safetensors" --threads 1 --save-at 2)
"${trainer[@]}" --steps 4 --out "$work/straight" || fail "the PyTorch trainer, 4 steps"
"${trainer[@]}" --steps 2 --out "$work/resumed" --resume || fail "the PyTorch trainer, 2 steps"
"${trainer[@]}" --steps 4 --out "$work/resumed" --resume || fail "the PyTorch trainer, resumed to 4 steps"
cmp -s "$work/straight/step-000002.safetensors" "$work/straight/step-000004.safetensors" && fail "steps 2 and 4 equal"
cmp -s "$work/straight/step-000004.safetensors" "$work/resumed/step-000004.safetensors" ||
    fail "the resumed PyTorch run differs from the straight one at step 4"
rows=$(wc -l < "$work/resumed/log.jsonl")
[ "$rows" = 4 ] || fail "the resumed log has $rows rows, not 4"
echo "trainer comparison: tiny plan trained, evaluated and reported; a second run resumed with nothing to do;"
echo "the PyTorch trainer resumed to the same weights"
