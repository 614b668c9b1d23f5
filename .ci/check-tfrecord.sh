#!/usr/bin/env bash
# TensorFlow compatibility, us -> Python readers: generates a small photo set, preprocesses it
# with our binary, then reads every shard with PyPI's `tfrecord` package (Example protobuf
# parsing), checks both masked CRC32Cs of every record with `crc32c`, decodes every image with
# Pillow and compares counts, labels and classes with the input folder.
# (The check with TensorFlow's own tf.data is workload/scripts/check_with_tensorflow.sh: the
# tensorflow-cpu wheel is ~250 MB, too slow for every CI run.)
#
# usage: .ci/check-tfrecord.sh [BINARY]   (default target/debug/cherrypick)
# env:   TFRECORD_VENV (.venv-tfrecord), CHECK_DIR (out/check-tfrecord)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin=${1:-target/debug/cherrypick}
venv=${TFRECORD_VENV:-$root/.venv-tfrecord}
work=${CHECK_DIR:-$root/out/check-tfrecord}
t0=$(date +%s)

if [ ! -x "$bin" ]; then
    echo "check-tfrecord: no binary at $bin (build it first: cargo build)" >&2
    exit 2
fi
if ! "$venv/bin/python" -c 'import tfrecord, crc32c, PIL' 2>/dev/null; then
    echo "check-tfrecord: installing tfrecord, crc32c and Pillow into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'tfrecord>=1.14' crc32c pillow
fi

rm -rf "$work"
mkdir -p "$work"
"$bin" workload gen-dataset --out "$work/photos" --images 60 --seed 7 >/dev/null
"$bin" workload preprocess --input "$work/photos" --output "$work/shards" --shards 4 --threads 2 >/dev/null
"$venv/bin/python" workload/scripts/check_with_tfrecord.py "$work/photos" "$work/shards" 192

# A damaged shard must be caught: flip one byte in the middle of the first shard.
first=$(ls "$work/shards" | head -n 1)
python3 - "$work/shards/$first" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0xFF
open(p, "wb").write(bytes(b))
PY
if "$venv/bin/python" workload/scripts/check_with_tfrecord.py "$work/photos" "$work/shards" 192 2>"$work/damaged.err"; then
    echo "check-tfrecord: FAIL: a damaged shard passed the check" >&2
    exit 1
fi
echo "check-tfrecord: damaged shard caught: $(tail -n 1 "$work/damaged.err")"
rm -rf "$work"
echo "check-tfrecord: passed in $(( $(date +%s) - t0 )) s"
