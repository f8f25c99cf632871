#!/usr/bin/env bash
# Runs a command as it runs on the CPUs most cheap VPS plans have: x86-64 with AVX2 and FMA but no
# AVX-512 and no VNNI (QEMU user-mode emulation of a Haswell; ONNX Runtime picks its int8 kernels
# from CPUID, so the command gets the AVX2 u8s8 kernels whatever this machine has). ~20-50x slower.
#   scripts/avx2-cpu.sh .venv/bin/python -m benchmarks.int8_portability
set -euo pipefail
if ! command -v qemu-x86_64 >/dev/null; then
    echo "installing qemu-user (Debian) for AVX2 emulation…" >&2
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"  # CI runners are not root
    ($sudo apt-get install -y -qq qemu-user >/dev/null 2>&1) \
        || ($sudo apt-get update -qq && $sudo apt-get install -y -qq qemu-user >/dev/null)
fi
exec qemu-x86_64 -cpu Haswell-noTSX,-pcid,-x2apic,-tsc-deadline,-invpcid "$@"
