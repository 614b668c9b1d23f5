#!/usr/bin/env bash
# TensorFlow compatibility, us -> TensorFlow: generates a small photo set, preprocesses it with
# our binary and reads every shard with tf.data (TFRecordDataset, which checks both CRCs;
# parse_single_example; decode_jpeg). tensorflow-cpu goes into a scratch venv outside the
# repository ($TF_VENV, default /tmp/cherrypick-venv-tf); the first run downloads ~250 MB.
#
# usage: workload/scripts/check_with_tensorflow.sh [BINARY] [IMAGES]
#        (defaults target/debug/cherrypick, 200 images)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin=${1:-$root/target/debug/cherrypick}
images=${2:-200}
venv="${TF_VENV:-/tmp/cherrypick-venv-tf}"
work=$(mktemp -d /tmp/cherrypick-tfcheck.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [ ! -x "$bin" ]; then
    echo "check_with_tensorflow: no binary at $bin (build it first: cargo build)" >&2
    exit 2
fi
if ! "$venv/bin/python" -c 'import tensorflow' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    "$venv/bin/pip" install -q tensorflow-cpu numpy
fi
"$bin" workload gen-dataset --out "$work/photos" --images "$images" --seed 11 >/dev/null
"$bin" workload preprocess --input "$work/photos" --output "$work/shards" --shards 8 >/dev/null
TF_CPP_MIN_LOG_LEVEL=2 "$venv/bin/python" "$here/check_with_tensorflow.py" "$work/photos" "$work/shards" 192
