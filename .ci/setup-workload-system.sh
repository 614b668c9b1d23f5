#!/usr/bin/env bash
# System packages the workload crate needs: cmake + nasm to build the libjpeg-turbo bundled by
# turbojpeg-sys (with SIMD), DejaVu fonts for plot labels, and valgrind for .ci/check-memory.sh. Idempotent; skips apt when present.
set -euo pipefail
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v nasm >/dev/null || need+=(nasm)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
command -v valgrind >/dev/null || need+=(valgrind)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
fi
