#!/usr/bin/env bash
# Print the flash and static RAM of three firmware images (release, thumbv7em):
#   footprint-core           core client + 16 KiB queue + async driver, in-memory transport
#   footprint-net            + amplitude-embassy-net over an embassy-net stack
#   footprint-net (tls)      + TLS 1.3 (embedded-tls)
# flash = .vector_table + .text + .rodata + .data (its load image)
# RAM   = .data + .bss + .uninit (static; the stack is the rest of RAM)
# "buffers" is the size of the image's BUFFERS static (every buffer the application
# configures: queue, request/response bodies, TCP/TLS/header buffers, socket storage);
# "overhead" = RAM - buffers.
# Needs llvm-size/llvm-nm: from `rustup component add llvm-tools`, or LLVM on PATH.
set -euo pipefail
cd "$(dirname "$0")"

tool() {
    local name=$1 sysroot host
    sysroot=$(rustc --print sysroot)
    host=$(rustc -vV | sed -n 's/^host: //p')
    if [[ -x "$sysroot/lib/rustlib/$host/bin/$name" ]]; then
        echo "$sysroot/lib/rustlib/$host/bin/$name"
    elif command -v "$name" >/dev/null; then
        command -v "$name"
    else
        echo "footprint.sh: $name not found (run: rustup component add llvm-tools)" >&2
        exit 1
    fi
}
SIZE=$(tool llvm-size)
NM=$(tool llvm-nm)
ELF_DIR=target/thumbv7em-none-eabihf/release

measure() {
    local label=$1 bin=$2 features=$3 elf
    cargo build --quiet --release --bin "$bin" ${features:+--features "$features"}
    elf=$ELF_DIR/$bin
    "$SIZE" -A "$elf" | awk -v label="$label" -v nm="$NM" -v elf="$elf" '
        $1 == ".vector_table" || $1 == ".text" || $1 == ".rodata" { flash += $2 }
        $1 == ".data" { flash += $2; ram += $2 }
        $1 == ".bss" || $1 == ".uninit" { ram += $2 }
        END {
            cmd = nm " --print-size --radix=d -C " elf
            while ((cmd | getline line) > 0) {
                n = split(line, f, " ")
                if (n >= 4 && f[4] ~ /::BUFFERS(::h[0-9a-f]+)?$/) { buffers += f[2] + 0 }
            }
            close(cmd)
            printf "%-24s %9d %9.1f %9d %9d %9d\n", label, flash, flash / 1024, ram, buffers, ram - buffers
        }'
}

printf "%-24s %9s %9s %9s %9s %9s\n" image "flash B" "flash KiB" "RAM B" "buffers B" "overhead B"
measure "core + memory transport" footprint-core ""
measure "+ embassy-net transport" footprint-net net
measure "+ TLS" footprint-net tls
