#!/usr/bin/env bash
# The one target that sits near its bound: our preprocess (1 thread) against libjpeg-turbo's
# decode-only rate (PyTurboJPEG, full size) on the same photos, in images per CPU-second.
# Alternates the two N times so that the machine's load hits both alike, and prints each pair's
# ratio and the median. Needs run.sh to have made the photos and the Pillow-SIMD venv.
#
# usage: benchmarks/workload-peers/decode-ratio.sh [--pairs 7] [-- extra preprocess flags]
# env:   CHERRYPICK_BIN (target/release/cherrypick), OUT (out/workload-peers)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
pairs=7
while [ $# -gt 0 ]; do
    case $1 in
        --pairs) pairs=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
bin=${CHERRYPICK_BIN:-$root/target/release/cherrypick}
out=${OUT:-$root/out/workload-peers}
photos=$(ls -d "$out"/photos-* 2>/dev/null | head -1)
py=${SIMD_VENV:-$root/out/venv-pillow-simd}/bin/python
if [ -z "$photos" ] || [ ! -x "$py" ]; then
    echo "decode-ratio: run benchmarks/workload-peers/run.sh first (photos, venv)" >&2
    exit 2
fi
ratios=()
for i in $(seq "$pairs"); do
    rm -rf "$out/ratio-shards"
    ours=$("$bin" workload preprocess --input "$photos" --output "$out/ratio-shards" --threads 1 "$@" |
        sed -n 's/.* \([0-9]*\) images per CPU-second.*/\1/p')
    ref=$("$py" "$root/benchmarks/workload-peers/peer.py" --tool turbojpeg-decode --procs 1 --input "$photos" |
        python3 -c 'import json, sys; r = json.load(sys.stdin); print(round(r["images"] / r["cpu_s"]))')
    r=$(python3 -c "print(f'{$ours / $ref:.3f}')")
    ratios+=("$r")
    echo "pair $i: ours $ours, libjpeg-turbo decode-only $ref images per CPU-second, ratio $r"
done
rm -rf "$out/ratio-shards"
python3 -c "import statistics, sys; print(f'median ratio {statistics.median(map(float, sys.argv[1:])):.3f} over {len(sys.argv) - 1} pairs (target >= 0.70)')" "${ratios[@]}"
