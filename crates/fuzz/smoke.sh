#!/usr/bin/env bash
# Builds every fuzz target and runs each for a short time; exits non-zero on a crash.
#
#   crates/fuzz/smoke.sh [SECONDS_PER_TARGET]    (default 15; env FUZZ_SECONDS works too)
#
# Runs with the committed seeds (corpus/<target>, read only) and lets the corpus grow in
# corpus-run/<target> (ignored by git), so repeated runs keep their progress. A crash leaves
# its input in artifacts/<target>/; reproduce with `cargo +nightly fuzz run <target> <file>`.
set -euo pipefail

seconds="${1:-${FUZZ_SECONDS:-15}}"
cd "$(dirname "$0")"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# Safe Rust only in the code under test (the core forbids unsafe), so AddressSanitizer would
# only slow the runs down; overflow checks and debug assertions stay on (cargo-fuzz default).
flags=(--sanitizer none)

cargo +nightly fuzz build "${flags[@]}"

status=0
for target in $(cargo +nightly fuzz list); do
    mkdir -p "corpus-run/$target" "corpus/$target"
    echo "== $target: ${seconds}s"
    if ! cargo +nightly fuzz run "${flags[@]}" "$target" "corpus-run/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 2>"corpus-run/$target.log"; then
        tail -n 40 "corpus-run/$target.log"
        echo "!! $target FAILED (input saved under artifacts/$target/)"
        status=1
    else
        grep -E '^(stat::number_of_executed_units|Done )' "corpus-run/$target.log" || true
    fi
done
exit "$status"
