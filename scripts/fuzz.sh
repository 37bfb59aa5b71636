#!/usr/bin/env bash
# Builds every cargo-fuzz target (nightly toolchain, cargo-fuzz) and runs
# each for SECONDS (default 60), one after another; fails on the first
# crash, whose input is kept in fuzz/artifacts/<target>/ (tests/fuzz_corpus.rs
# then replays it on stable). New inputs the fuzzer finds go to fuzz/work/
# (not kept); the seeds in fuzz/corpus/<target>/ are only read.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#   FUZZ_SEED=N    libFuzzer's seed (CI fixes it, so that a run explores the
#                  same inputs each time and a red smoke is a finding, not luck)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-60}"
shift || true
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz.sh: needs the nightly toolchain (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz"
    cargo +nightly install cargo-fuzz --locked
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
start=$(date +%s)
cargo +nightly fuzz build
echo "fuzz.sh: built ${#targets[@]} targets in $(( $(date +%s) - start )) s"
summary=()
for t in "${targets[@]}"; do
    mkdir -p "work/$t"
    echo "fuzz.sh: $t for $seconds s"
    log="work/$t.log"
    # -max_total_time bounds the run; a crash ends it with a non-zero status.
    if ! cargo +nightly fuzz run "$t" "work/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        ${FUZZ_SEED:+-seed="$FUZZ_SEED"} \
        >"$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz.sh: $t FAILED (input in fuzz/artifacts/$t/)" >&2
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    summary+=("$t: ${seconds} s, ${runs:-?} runs, ${cov:-cov: ?}, no crash")
done
printf 'fuzz.sh: %s\n' "${summary[@]}"
