#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: `fuzz/run.sh [seconds per target] [target ...]`.
# Installs cargo-fuzz when missing; uses the nightly toolchain when there is one, else the
# stable one with RUSTC_BOOTSTRAP=1 (cargo fuzz needs -Z flags). Exits non-zero when a
# target finds a crash (its input is kept under fuzz/artifacts/<target>/).
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-30}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(resp restore hll snapshot command command_batch)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
if rustup run nightly rustc --version >/dev/null 2>&1; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
"${fuzz[@]}" build -O
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "fuzzing $t for ${secs}s"
    "${fuzz[@]}" run -O "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 2>&1 \
        | grep -E "^(#[0-9]+\s+DONE|==[0-9]+== ERROR|SUMMARY|Done [0-9]+ runs)|panicked" || true
    if [ -n "$(ls -A "artifacts/$t" 2>/dev/null)" ]; then
        echo "fuzz target $t found a failing input: fuzz/artifacts/$t/" >&2
        exit 1
    fi
done
echo "fuzz: ${#targets[@]} targets, ${secs}s each, no failing input"
