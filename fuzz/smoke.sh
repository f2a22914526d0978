#!/usr/bin/env bash
# A short fuzzing smoke for CI: builds the AFL++ targets (cargo-afl, stable Rust) and fuzzes
# each for SECONDS (default 30) from the committed corpus; fails if AFL++ saved a crash or a
# hang. Long runs are done by hand (fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-30}"
if ! command -v cargo-afl >/dev/null 2>&1; then
    echo "fuzz smoke: installing cargo-afl"
    cargo install --locked cargo-afl --version 0.18.2 >/dev/null 2>&1
fi
cargo afl config --build >/dev/null 2>&1 || true
cargo afl build --release >/dev/null 2>&1
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
status=0
for pair in check_source:source lower_source:source checkpoint:checkpoint; do
    target="${pair%%:*}"
    corpus="corpus/${pair##*:}"
    AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1 AFL_BENCH_UNTIL_CRASH=1 \
        cargo afl fuzz -i "$corpus" -o "$out/$target" -x opt.dict -t 3000 -V "$seconds" \
        -M main "target/release/$target" >"$out/$target.log" 2>&1 || true
    stats="$out/$target/main/fuzzer_stats"
    if [ ! -f "$stats" ]; then
        echo "fuzz smoke: $target did not start"; tail -20 "$out/$target.log"; status=1; continue
    fi
    execs=$(awk -F: '/^execs_done/ {gsub(/ /, "", $2); print $2}' "$stats")
    crashes=$(find "$out/$target/main/crashes" -name 'id*' | wc -l)
    hangs=$(find "$out/$target/main/hangs" -name 'id*' | wc -l)
    echo "fuzz smoke: $target: $execs executions in ${seconds} s, $crashes crashes, $hangs hangs"
    if [ "$crashes" -gt 0 ] || [ "$hangs" -gt 0 ]; then
        for f in "$out/$target/main/crashes/"id* "$out/$target/main/hangs/"id*; do
            [ -f "$f" ] && { echo "--- $f"; head -c 2000 "$f"; echo; }
        done
        status=1
    fi
done
exit $status
