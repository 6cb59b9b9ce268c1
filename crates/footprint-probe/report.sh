#!/usr/bin/env bash
# Builds the footprint images for thumbv7em-none-eabihf and prints a markdown table:
#   flash       = .text + .rodata + .data (the vector table is a section of its own: left out)
#   MQTT part   = flash(image) - flash(empty); also shown without the compiler-builtins memory
#                 routines (coreMQTT's published figures leave the C library out)
#   RAM         = .bss(image) - .bss(empty), and size_of of the session state (as built for
#                 the target: read out of the `sizes` image)
# Top symbols of each image go to report/top-symbols-<image>.txt.
# With CI set, missing tools are installed (apt-get, rustup); otherwise a missing tool is an error.
set -euo pipefail
cd "$(dirname "$0")"

TARGET=thumbv7em-none-eabihf
OUT=report
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"

die() { echo "report.sh: $*" >&2; exit 1; }

pick_tools() {
    if command -v arm-none-eabi-size >/dev/null; then
        SIZE=arm-none-eabi-size NM=arm-none-eabi-nm OBJCOPY=arm-none-eabi-objcopy
    elif command -v llvm-size >/dev/null && command -v llvm-nm >/dev/null \
        && command -v llvm-objcopy >/dev/null; then
        SIZE=llvm-size NM=llvm-nm OBJCOPY=llvm-objcopy
    else
        return 1
    fi
}

if ! pick_tools; then
    if [ -n "${CI:-}" ]; then
        apt-get update -qq && apt-get install -y -qq --no-install-recommends binutils-arm-none-eabi >/dev/null
        pick_tools || die "binutils-arm-none-eabi installed but arm-none-eabi-size not found"
    else
        die "need arm-none-eabi-size/nm/objcopy (apt-get install binutils-arm-none-eabi) or llvm-size/nm/objcopy; set CI=1 to install"
    fi
fi
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$TARGET"; then
    if [ -n "${CI:-}" ]; then
        rustup target add "$TARGET"
    else
        die "Rust target $TARGET missing: rustup target add $TARGET (or set CI=1)"
    fi
fi

cargo build --release --bins --quiet
ELF=target/$TARGET/release
mkdir -p "$OUT"

# section NAME of image FILE, in bytes (0 when absent)
section() { $SIZE -A "$2" | awk -v s="$1" '$1 == s { print $2; f = 1 } END { if (!f) print 0 }'; }
flash() { echo $(( $(section .text "$1") + $(section .rodata "$1") + $(section .data "$1") )); }
# bytes of the compiler-builtins memory routines (memcpy, memmove, memset, memcmp and their
# __aeabi_ entry points) linked into an image
memfns() {
    local addr size kind name total=0
    while read -r addr size kind name; do
        case "$name" in
            __aeabi_mem* | memcpy | memmove | memset | memcmp | bcmp | compiler_builtins::mem::*)
                total=$(( total + 16#$size )) ;;
        esac
    done < <($NM -S -C "$1" | awk 'NF >= 4')
    echo "$total"
}

EMPTY_FLASH=$(flash "$ELF/empty")
EMPTY_BSS=$(section .bss "$ELF/empty")

# size_of values, as compiled for the target, from the `sizes` image's FOOTPRINT_SIZES array
sym=$($NM -S "$ELF/sizes" | awk '$4 == "FOOTPRINT_SIZES" { print $1 }')
[ -n "$sym" ] || die "FOOTPRINT_SIZES not found in the sizes image"
ro_addr=$($SIZE -A "$ELF/sizes" | awk '$1 == ".rodata" { print $3 }')
$OBJCOPY -O binary --only-section=.rodata "$ELF/sizes" "$OUT/sizes-rodata.bin"
read -r SESSION_BYTES SESSION_NOBUF_BYTES RING_BYTES < <(od -An -tu4 -v \
    -j $(( 0x$sym - ro_addr )) -N 12 "$OUT/sizes-rodata.bin")

echo "Footprint on $TARGET (opt-level=z, lto=fat, codegen-units=1), $(rustc --version)"
echo
echo "| image | flash | MQTT part (flash - empty) | of which compiler-builtins mem* | MQTT part without mem* | .bss | RAM over empty |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for image in empty session device; do
    f=$(flash "$ELF/$image")
    b=$(section .bss "$ELF/$image")
    mem=$(memfns "$ELF/$image")
    if [ "$image" = empty ]; then part="-" bare="-"; else part=$(( f - EMPTY_FLASH )) bare=$(( f - EMPTY_FLASH - mem )); fi
    echo "| $image | $f | $part | $mem | $bare | $b | $(( b - EMPTY_BSS )) |"
    $NM -S --size-sort -r -C "$ELF/$image" > "$OUT/top-symbols-$image.txt"
done
echo
echo "Session state (size_of on $TARGET): Session<256, 512, 4, 4> = $SESSION_BYTES bytes;"
echo "without buffers (Session<0, 0, 4, 4>) = $SESSION_NOBUF_BYTES bytes; receive ring RingBuffer<512> = $RING_BYTES bytes."
echo
echo "Note: the device image is the whole mqtts_core::device::Device on Alibaba Cloud IoT: driver,"
echo "backoff, identity signed with HMAC-SHA256, Alink JSON in and out, switch control (2 switches;"
echo "buffers RX 2048, TX 1024, store 2048 as the firmware's Kconfig defaults)."
echo
echo "Top symbols: $OUT/top-symbols-{empty,session,device}.txt"
