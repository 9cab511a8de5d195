#!/usr/bin/env bash
# Precision and recall at N (default 10,000) per side: sagan's blocked computation against numpy's
# full-matrix one (Tests/Reference/precision_recall.py) on the same 2048-dimensional vectors, in one
# invocation. Needs .build/release/sagan and python3 with numpy.
set -euo pipefail
cd "$(dirname "$0")/.."
num=${1:-10000}
features=$(mktemp --suffix=.safetensors)
trap 'rm -f "$features"' EXIT
.build/release/sagan bench precision-recall --num "$num" --features-out "$features"
/usr/bin/time -f "numpy: peak RSS %M KiB" /usr/bin/python3 Tests/Reference/precision_recall.py "$features" | tr '\n' ' '
echo
