#!/usr/bin/env bash
# Regenerates workload/tests/fixtures/tf_written.{tfrecord,json} with TensorFlow's own writer,
# in a scratch venv outside the repository ($TF_VENV, default /tmp/cherrypick-venv-tf).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${TF_VENV:-/tmp/cherrypick-venv-tf}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import tensorflow' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q tensorflow-cpu numpy
fi
exec "$venv/bin/python" "$here/make_tf_fixture.py" "$@"
