#!/usr/bin/env bash
# Starts the Cloud Storage emulator from PyPI (`gcp-storage-emulator`, installed into a venv) on
# 127.0.0.1, in memory, for the gs:// tests (workload/tests/gcs_emulator.rs). Waits until it
# answers HTTP, then writes $GCS_STATE_DIR/env (STORAGE_EMULATOR_HOST) for tests and the PID for
# .ci/stop-gcs.sh.
#
# usage: .ci/start-gcs.sh
# env:   GCS_VENV (.venv-gcs), GCS_STATE_DIR (out/gcs), GCS_PORT (9023)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv=${GCS_VENV:-$root/.venv-gcs}
state=${GCS_STATE_DIR:-$root/out/gcs}
port=${GCS_PORT:-9023}
url=http://127.0.0.1:$port

if [ ! -x "$venv/bin/gcp-storage-emulator" ]; then
    echo "start-gcs: installing gcp-storage-emulator into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check gcp-storage-emulator
fi
if [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; then
    echo "start-gcs: an emulator from $state is still running; stopping it first"
    "$root/.ci/stop-gcs.sh"
fi
mkdir -p "$state"

# In its own session, so stop-gcs.sh can end it (and anything it started) by PID.
setsid "$venv/bin/gcp-storage-emulator" start --host=127.0.0.1 --port="$port" --in-memory \
    >"$state/emulator.log" 2>&1 </dev/null &
echo $! >"$state/pid"

up=0
for _ in $(seq 1 120); do
    # Any HTTP answer (even an error status) means the server is listening.
    if curl -sS -o /dev/null "$url/storage/v1/b" 2>/dev/null; then
        up=1
        break
    fi
    if ! kill -0 "$(cat "$state/pid")" 2>/dev/null; then
        echo "start-gcs: the emulator exited; its log:" >&2
        tail -n 30 "$state/emulator.log" >&2
        exit 1
    fi
    sleep 0.25
done
if [ "$up" != 1 ]; then
    echo "start-gcs: no answer from $url after 30 s; log in $state/emulator.log" >&2
    "$root/.ci/stop-gcs.sh"
    exit 1
fi
echo "export STORAGE_EMULATOR_HOST=$url" >"$state/env"
echo "start-gcs: gcp-storage-emulator listening on $url (pid $(cat "$state/pid"))"
