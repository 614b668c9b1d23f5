#!/usr/bin/env bash
# Stops the emulator .ci/start-gcs.sh started, by the PID it recorded (SIGTERM, then SIGKILL
# after a grace period). Never matches processes by name.
set -uo pipefail
cd "$(dirname "$0")/.."
state=${GCS_STATE_DIR:-$(pwd)/out/gcs}
[ -f "$state/pid" ] || exit 0
pid=$(cat "$state/pid")
# setsid made it a session and group leader: signal the whole group.
kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
for _ in $(seq 1 20); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
done
kill -KILL -- "-$pid" 2>/dev/null
rm -f "$state/pid" "$state/env"
echo "stop-gcs: stopped the emulator (pid $pid)"
exit 0
