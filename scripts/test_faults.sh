#!/usr/bin/env bash
# Fault injection (issue 14): repeats a hostile user's experiments against the release build and
# checks that nothing is lost. Each check prints one line; the script stops at the first failure.
#   1. kill -9 at random moments 20 times during training, resuming each time: the final checkpoint
#      equals an uninterrupted run's tensor for tensor, metrics.jsonl has each step once, no
#      temporary file is left.
#   2. kill -9 at random moments 20 times during `dataset pack`: the next pack leaves no partial
#      file and holds the same images as an uninterrupted pack.
#   3. two writers on one run folder: the second is refused with the first one's PID.
#   4. every checkpoint damaged: --resume auto refuses and deletes nothing.
#   5. a NaN stop, then a rescue with lower learning rates.
#   6. a full disk (an 8 MiB tmpfs; skipped when mounting is not allowed): exit 64 naming the file,
#      the last checkpoint still readable; and a read-only filesystem: exit 64 naming the folder.
set -euo pipefail
cd "$(dirname "$0")/.."
sagan=$PWD/.build/release/sagan
work=$(mktemp -d)
cleanup() {
    if mountpoint -q "$work/full" 2>/dev/null; then umount "$work/full"; fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

# Tensors of a safetensors file, name → SHA-256 of the bytes (metadata such as `created` left out).
tensors() {
    python3 - "$1" <<'PY'
import hashlib, json, struct, sys
data = open(sys.argv[1], "rb").read()
size = struct.unpack("<Q", data[:8])[0]
header = json.loads(data[8:8 + size])
header.pop("__metadata__", None)
for name in sorted(header):
    begin, end = header[name]["data_offsets"]
    print(name, hashlib.sha256(data[8 + size + begin:8 + size + end]).hexdigest())
PY
}
steps_logged() { python3 -c 'import json,sys; print(" ".join(str(json.loads(l)["step"]) for l in open(sys.argv[1]) if "kind" not in json.loads(l)))' "$1"; }

source=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
pack=$work/fm.safetensors
$sagan dataset pack --source "$source" --dest "$pack" --resolution 32 --channels 1 --pad 2 > /dev/null
config=$work/small.json
echo '{"model": {"baseWidth": 128, "generatorAttentionSides": [16], "discriminatorAttentionSides": [16]},
       "sampleCount": 4}' > "$config"
train=(train --data "$pack" --config "$config" --batch 8 --checkpoint-every 1 --log-every 1 --sample-every 1000
       --keep 3 --seed 3)

# 1. kill -9 during training.
$sagan "${train[@]}" --steps 60 --run-dir "$work/reference" > /dev/null
for attempt in $(seq 20); do
    "$sagan" "${train[@]}" --steps 60 --run-dir "$work/killed" --resume auto > /dev/null 2>&1 &
    pid=$!
    sleep "0.$((RANDOM % 9 + 1))"
    kill -9 "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
done
$sagan "${train[@]}" --steps 60 --run-dir "$work/killed" --resume auto > /dev/null
diff <(tensors "$work/reference/checkpoints/step-000060.safetensors") \
    <(tensors "$work/killed/checkpoints/step-000060.safetensors") > /dev/null \
    || fail "training killed 20 times does not end where an uninterrupted run does"
[ "$(steps_logged "$work/killed/metrics.jsonl")" = "$(seq -s ' ' 1 60)" ] \
    || fail "metrics.jsonl does not hold each step once: $(steps_logged "$work/killed/metrics.jsonl")"
[ -z "$(find "$work/killed" -name '*.tmp')" ] || fail "temporary files left: $(find "$work/killed" -name '*.tmp')"
echo "ok: training killed 20 times with -9 and resumed ends tensor-identical to an uninterrupted run"

# 2. kill -9 during packing.
for attempt in $(seq 20); do
    "$sagan" dataset pack --source "$source" --dest "$work/killed.safetensors" --resolution 32 --channels 1 \
        --pad 2 > /dev/null 2>&1 &
    pid=$!
    sleep "0.$((RANDOM % 9 + 1))"
    kill -9 "$pid" 2> /dev/null || true
    wait "$pid" 2> /dev/null || true
done
$sagan dataset pack --source "$source" --dest "$work/killed.safetensors" --resolution 32 --channels 1 --pad 2 \
    > /dev/null
[ -z "$(find "$work" -maxdepth 1 -name '*.partial')" ] || fail "partial packs left: $(ls -a "$work")"
diff <(tensors "$pack") <(tensors "$work/killed.safetensors") > /dev/null || fail "a pack after kills differs"
echo "ok: dataset pack killed 20 times with -9 leaves no partial file and the same pack"

# 3. Two writers on one run folder.
"$sagan" "${train[@]}" --steps 100000 --checkpoint-every 100000 --run-dir "$work/shared" > "$work/first.log" 2>&1 &
first=$!
for _ in $(seq 600); do grep -q "step 1/" "$work/first.log" 2> /dev/null && break; sleep 0.1; done
status=0
"$sagan" "${train[@]}" --steps 10 --run-dir "$work/shared" > "$work/second.log" 2>&1 || status=$?
kill -TERM "$first"
wait "$first" || fail "the first writer did not stop cleanly on SIGTERM"
[ "$status" = 64 ] && grep -q "in use by process $first" "$work/second.log" \
    || fail "a second writer was not refused: $(cat "$work/second.log")"
echo "ok: a second writer is refused with the first one's PID"

# 4. Every checkpoint damaged.
for file in "$work"/killed/checkpoints/step-*.safetensors; do truncate -s 1000 "$file"; done
before=$(ls "$work/killed/checkpoints")
status=0
$sagan "${train[@]}" --run-dir "$work/killed" --resume auto --steps 70 > "$work/damaged.log" 2>&1 || status=$?
[ "$status" = 64 ] && grep -q "none of the 3 checkpoints" "$work/damaged.log" \
    || fail "damaged checkpoints were not refused: $(cat "$work/damaged.log")"
[ "$(ls "$work/killed/checkpoints")" = "$before" ] || fail "checkpoints were deleted"
echo "ok: --resume auto refuses when every checkpoint is damaged and deletes nothing"

# 5. A NaN stop, then the rescue the message suggests: learning rates of 1e30 from step 10 blow up;
#    the run stops with the state before the failing step saved, and resuming with the original
#    rates finishes. run.json records both changes.
$sagan "${train[@]}" --steps 10 --run-dir "$work/nan" > /dev/null
status=0
$sagan "${train[@]}" --steps 30 --run-dir "$work/nan" --resume auto --lr-d 1e30 --lr-g 1e30 > "$work/nan.log" 2>&1 \
    || status=$?
[ "$status" = 64 ] && grep -q "the last good state is saved in" "$work/nan.log" \
    || fail "a NaN did not stop with a saved state: status $status, $(tail -2 "$work/nan.log")"
$sagan "${train[@]}" --steps 30 --run-dir "$work/nan" --resume auto --lr-d 4e-4 --lr-g 1e-4 > "$work/rescue.log" 2>&1 \
    || fail "the rescue failed: $(tail -3 "$work/rescue.log")"
[ "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["resumes"]))' "$work/nan/run.json")" = 2 ] \
    || fail "run.json does not record both resumes"
echo "ok: a NaN stop saves the last good state, and a resume with lower learning rates finishes"

# 6. A full disk.
mkdir "$work/full"
if mount -t tmpfs -o size=8m tmpfs "$work/full" 2> /dev/null; then
    status=0
    $sagan train --data "$pack" --config "$config" --batch 8 --checkpoint-every 1 --keep 1000 --steps 1000 \
        --run-dir "$work/full/run" > "$work/full.log" 2>&1 || status=$?
    [ "$status" = 64 ] && grep -q "$work/full/run/" "$work/full.log" \
        || fail "a full disk was not a clear error: status $status, $(tail -3 "$work/full.log")"
    newest=$(ls "$work/full/run/checkpoints"/step-*.safetensors | sort | tail -1)
    $sagan inspect model --checkpoint "$newest" > /dev/null || fail "the last checkpoint on a full disk is unreadable"
    echo "ok: a full disk stops with a message naming the file; the last checkpoint is intact"
    echo "    ($(grep '^Error' "$work/full.log"))"
    umount "$work/full"
    # A read-only folder: the run is refused before it starts, naming the folder.
    mount -t tmpfs -o size=1m,ro tmpfs "$work/full"
    status=0
    $sagan "${train[@]}" --steps 1 --run-dir "$work/full/run" > "$work/readonly.log" 2>&1 || status=$?
    [ "$status" = 64 ] && grep -q -- "--run-dir $work/full/run: cannot create it" "$work/readonly.log" \
        || fail "a read-only folder was not a clear error: status $status, $(tail -2 "$work/readonly.log")"
    echo "ok: a run folder on a read-only filesystem is refused, naming it"
else
    echo "skipped: a full disk and a read-only filesystem (mounting a tmpfs is not allowed here)"
fi
