#!/usr/bin/env bash
# Starts a Spark standalone cluster on 127.0.0.1 from PyPI's pyspark (installed into a venv) and
# the machine's Java 17: one master and N workers as plain `spark-class` processes (the pip
# package ships no sbin/start-*.sh). Waits until every worker is registered with the master, then
# writes the cluster's settings to $SPARK_STATE_DIR/env for tests and for .ci/stop-spark.sh.
#
# usage: .ci/start-spark.sh [WORKERS]            (default 2)
# env:   SPARK_VENV (.venv-spark), SPARK_STATE_DIR (out/spark), SPARK_WORKER_CORES (2),
#        SPARK_WORKER_MEMORY (1536m), SPARK_MASTER_PORT (7077), SPARK_MASTER_WEBUI_PORT (8080)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
workers=${1:-2}
venv=${SPARK_VENV:-$root/.venv-spark}
state=${SPARK_STATE_DIR:-$root/out/spark}
cores=${SPARK_WORKER_CORES:-2}
memory=${SPARK_WORKER_MEMORY:-1536m}
port=${SPARK_MASTER_PORT:-7077}
webui=${SPARK_MASTER_WEBUI_PORT:-8080}
t0=$(date +%s%N)

if ! "$venv/bin/python" -c 'import pyspark, sys; sys.exit(0 if pyspark.__version__.startswith("4.") else 1)' 2>/dev/null; then
    echo "start-spark: installing pyspark 4.x into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'pyspark>=4,<5'
fi
spark_home=$("$venv/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
version=$("$venv/bin/python" -c 'import pyspark; print(pyspark.__version__)')
java_bin=$(readlink -f "$(command -v java)")
export JAVA_HOME=${JAVA_HOME:-$(dirname "$(dirname "$java_bin")")}
export SPARK_HOME=$spark_home
export SPARK_LOCAL_IP=127.0.0.1
export SPARK_LOCAL_HOSTNAME=127.0.0.1
# The daemons themselves need little heap; executors get theirs from the worker's budget.
export SPARK_DAEMON_MEMORY=${SPARK_DAEMON_MEMORY:-256m}
export PYSPARK_PYTHON=$venv/bin/python

if [ -f "$state/master.pid" ] && kill -0 "$(cat "$state/master.pid")" 2>/dev/null; then
    echo "start-spark: a cluster from $state is still running; stopping it first"
    "$root/.ci/stop-spark.sh"
fi
mkdir -p "$state/logs" "$state/work" "$state/local"
export SPARK_LOCAL_DIRS=$state/local

# Each daemon in its own session, so stop-spark.sh can end it and everything it started by PID.
setsid "$spark_home/bin/spark-class" org.apache.spark.deploy.master.Master \
    --host 127.0.0.1 --port "$port" --webui-port "$webui" \
    >"$state/logs/master.log" 2>&1 < /dev/null &
echo $! >"$state/master.pid"
master_url=spark://127.0.0.1:$port
for i in $(seq 1 "$workers"); do
    setsid "$spark_home/bin/spark-class" org.apache.spark.deploy.worker.Worker \
        --host 127.0.0.1 --cores "$cores" --memory "$memory" \
        --webui-port $((webui + i)) --work-dir "$state/work/worker$i" "$master_url" \
        >"$state/logs/worker$i.log" 2>&1 < /dev/null &
    echo $! >"$state/worker$i.pid"
done

# Registered when the master's JSON status lists them all as ALIVE.
alive=0
for _ in $(seq 1 240); do
    alive=$(curl -fsS "http://127.0.0.1:$webui/json/" 2>/dev/null |
        "$venv/bin/python" -c 'import json,sys; print(sum(w.get("state")=="ALIVE" for w in json.load(sys.stdin).get("workers",[])))' 2>/dev/null || echo 0)
    [ "$alive" -ge "$workers" ] && break
    if ! kill -0 "$(cat "$state/master.pid")" 2>/dev/null; then
        echo "start-spark: the master exited; its log:" >&2
        tail -n 30 "$state/logs/master.log" >&2
        exit 1
    fi
    sleep 0.5
done
if [ "$alive" -lt "$workers" ]; then
    echo "start-spark: only $alive of $workers workers registered after 120 s; logs in $state/logs" >&2
    tail -n 20 "$state"/logs/*.log >&2
    "$root/.ci/stop-spark.sh"
    exit 1
fi

cat >"$state/env" <<ENV
export SPARK_MASTER_URL=$master_url
export SPARK_MASTER_WEBUI_URL=http://127.0.0.1:$webui
export SPARK_HOME=$spark_home
export SPARK_SUBMIT=$spark_home/bin/spark-submit
export PYSPARK_PYTHON=$venv/bin/python
export JAVA_HOME=$JAVA_HOME
export SPARK_LOCAL_IP=127.0.0.1
ENV
ms=$((($(date +%s%N) - t0) / 1000000))
printf 'start-spark: pyspark %s, master %s, %s workers (%s cores, %s each) registered in %d.%03d s\n' \
    "$version" "$master_url" "$workers" "$cores" "$memory" $((ms / 1000)) $((ms % 1000))
