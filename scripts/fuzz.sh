#!/usr/bin/env bash
# Builds the libFuzzer targets of Fuzz/ (every parser of outside data) with AddressSanitizer and
# runs each for FUZZ_SECONDS (default 600) on its seed corpus in Tests/Fuzz/<target>, FUZZ_JOBS
# at a time. New inputs go to a scratch corpus; a crash, leak or timeout is saved as
# Fuzz/findings/<target>/crash-* and fails the script (make it a regression test, then fix it).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-600}
jobs=${FUZZ_JOBS:-2}
targets=(FuzzSafeTensors FuzzImages FuzzIDX FuzzConfig FuzzRunInfo)
(cd Fuzz && swift build -c release --sanitize fuzzer --sanitize address \
    -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address)
run() {
    local target=$1 scratch
    scratch=$(mktemp -d)
    mkdir -p "Fuzz/findings/$target"
    if "Fuzz/.build/release/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="Fuzz/findings/$target/" -print_final_stats=1 "$scratch" "Tests/Fuzz/$target" \
        > "Fuzz/findings/$target/log.txt" 2>&1; then
        echo "$target: no crash, leak or timeout in ${seconds} s ($(grep -o 'stat::number_of_executed_units: *[0-9]*' \
            "Fuzz/findings/$target/log.txt" | grep -o '[0-9]*$') runs, $(grep -o 'cov: [0-9]*' \
            "Fuzz/findings/$target/log.txt" | tail -1))"
    else
        echo "$target: FAILED, see Fuzz/findings/$target/log.txt"; tail -30 "Fuzz/findings/$target/log.txt"
        rm -rf "$scratch"; return 1
    fi
    rm -rf "$scratch"
}
status=0
for ((i = 0; i < ${#targets[@]}; i += jobs)); do
    pids=()
    for target in "${targets[@]:i:jobs}"; do run "$target" & pids+=($!); done
    for pid in "${pids[@]}"; do wait "$pid" || status=1; done
done
exit $status
