#!/usr/bin/env bash
# Stops the cluster .ci/start-spark.sh started: each daemon's session by the PID it recorded
# (SIGTERM, then SIGKILL after a grace period). Never matches processes by name.
set -uo pipefail
cd "$(dirname "$0")/.."
state=${SPARK_STATE_DIR:-$(pwd)/out/spark}
shopt -s nullglob
pids=()
for f in "$state"/worker*.pid "$state"/master.pid; do
    pid=$(cat "$f")
    # setsid made each daemon a session and group leader: signal the whole group.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    pids+=("$pid")
    rm -f "$f"
done
for _ in $(seq 1 20); do
    left=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && left=1; done
    [ "$left" = 0 ] && break
    sleep 0.5
done
for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null; done
rm -f "$state/env"
[ "${#pids[@]}" -gt 0 ] && echo "stop-spark: stopped ${#pids[@]} Spark daemons"
exit 0
