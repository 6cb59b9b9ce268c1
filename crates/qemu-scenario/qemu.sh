#!/usr/bin/env bash
# Builds the scenario image and runs it under QEMU (netduinoplus2: STM32F405, Cortex-M4F) with
# semihosting. Exit status: the image's (0 only when every check passed); 124 on a hang.
# With CI set, a missing qemu-system-arm or Rust target is installed; otherwise it is an error.
set -euo pipefail
cd "$(dirname "$0")"

TARGET=thumbv7em-none-eabihf
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
die() { echo "qemu.sh: $*" >&2; exit 1; }

if ! command -v qemu-system-arm >/dev/null; then
    if [ -n "${CI:-}" ]; then
        apt-get update -qq
        # Debian ships it as qemu-system-arm; some releases only as part of qemu-system-misc.
        apt-get install -y -qq --no-install-recommends qemu-system-arm >/dev/null \
            || apt-get install -y -qq --no-install-recommends qemu-system-misc >/dev/null
        command -v qemu-system-arm >/dev/null || die "qemu-system-arm still missing after apt-get"
    else
        die "qemu-system-arm missing: apt-get install qemu-system-arm (or set CI=1)"
    fi
fi
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$TARGET"; then
    if [ -n "${CI:-}" ]; then rustup target add "$TARGET"; else die "rustup target add $TARGET (or set CI=1)"; fi
fi

cargo build --release --quiet
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
timeout 120 qemu-system-arm -machine netduinoplus2 -cpu cortex-m4 -nographic -monitor none \
    -serial none -semihosting-config enable=on,target=native \
    -kernel "target/$TARGET/release/qemu-scenario" | tee "$log"
status=${PIPESTATUS[0]}
set -e
# With UPDATE_DOCS=1 and a passing run, the Device section of docs/footprint.md (between the
# markers) is rewritten from this run's output, so the numbers there are the run's.
if [ "${UPDATE_DOCS:-}" = 1 ] && [ "$status" = 0 ]; then
    doc=../../docs/footprint.md
    grep -q '<!-- qemu-device:begin -->' "$doc" || die "markers missing in $doc"
    {
        echo '<!-- qemu-device:begin -->'
        echo 'Output of `UPDATE_DOCS=1 crates/qemu-scenario/qemu.sh` (firmware buffer sizes, 2 switches):'
        echo
        grep -E '^(peak stack \(device poll|size_of: DeviceBuffers|[0-9]+ passed)' "$log" | sed 's/^/    /'
        echo '<!-- qemu-device:end -->'
    } > "$log.section"
    awk -v sec="$log.section" '
        /<!-- qemu-device:begin -->/ { while ((getline l < sec) > 0) print l; skip = 1; next }
        /<!-- qemu-device:end -->/ { skip = 0; next }
        !skip { print }' "$doc" > "$log.doc" && mv "$log.doc" "$doc"
    rm -f "$log.section"
fi
exit "$status"
