"""The cherrypick workload as a PySpark application: preprocessing spread by shard over the
executors, then the read-speed grid as Spark tasks. Each task runs the cherrypick binary on its
share of the work; the driver times the whole job itself and prints one result line

    CHERRYPICK_RESULT {"runtime_s": ..., ...}

that the spark and dataproc backends read (runtime_s is the job's own timing, without the JVM
start-up and cluster scheduling before it). Spark's own figures for the application (task time,
CPU time, GC, records) come from the driver's REST API (/api/v1) and go in the same line.

usage: spark-submit ... job.py --binary PATH|NAME --input DIR|gs://.. --output DIR|gs://..
           --partitions N [--tasks preprocess,read-speed] [--size 192] [--quality 95]
           [--batch-sizes 8,16] [--batch-numbers 2,4] [--repetitions 1] [--decode]
"""

import argparse
import csv
import io
import json
import os
import stat
import subprocess
import sys
import tempfile
import time
import urllib.request

from pyspark import SparkFiles
from pyspark.sql import SparkSession

RESULT_PREFIX = "CHERRYPICK_RESULT "
# Bytes of a failed task's stderr carried into the error the driver reports.
ERR_TAIL = 2000
# Reads of the driver's REST API for the run's Spark metrics, and seconds each may wait.
REST_TRIES = 3
REST_TIMEOUT_S = 30


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary", required=True,
                   help="path of the cherrypick binary, or a file name shipped with --files")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--partitions", type=int, required=True)
    p.add_argument("--tasks", default="preprocess,read-speed")
    p.add_argument("--size", type=int, default=192)
    p.add_argument("--quality", type=int, default=95)
    p.add_argument("--batch-sizes", default="8,16")
    p.add_argument("--batch-numbers", default="2,4")
    p.add_argument("--repetitions", type=int, default=1)
    p.add_argument("--decode", action="store_true")
    a = p.parse_args(argv)
    if a.partitions < 1:
        p.error("--partitions must be at least 1")
    a.tasks = [t for t in a.tasks.split(",") if t]
    for t in a.tasks:
        if t not in ("preprocess", "read-speed"):
            p.error(f"--tasks: unknown task {t!r} (known: preprocess, read-speed)")
    return a


def binary_path(name):
    """The binary as a local path: given directly, or fetched by Spark from --files."""
    path = name if os.path.isfile(name) else SparkFiles.get(os.path.basename(name))
    mode = os.stat(path).st_mode
    if not mode & stat.S_IXUSR:
        os.chmod(path, mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def run_binary(binary, args):
    """Runs the binary; a non-zero exit fails the task with the tail of its stderr."""
    cmd = [binary_path(binary)] + args
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace")[-ERR_TAIL:]
        raise RuntimeError(f"{' '.join(cmd[1:4])} ... exited with {proc.returncode}: {tail}")
    return proc.stdout.decode("utf-8", "replace"), seconds


def preprocess_part(a, part):
    out, seconds = run_binary(a.binary, [
        "workload", "preprocess", "--input", a.input, "--output", a.output,
        "--part", f"{part}/{a.partitions}", "--size", str(a.size),
        "--quality", str(a.quality), "--threads", "1",
    ])
    return {"part": part, "seconds": seconds, "host": os.uname().nodename, "stdout": out[-500:]}


def read_speed_cell(a, cell):
    batch_size, batch_number, rep = cell
    with tempfile.TemporaryDirectory(prefix="cherrypick-rs-") as tmp:
        csv_path = os.path.join(tmp, "results.csv")
        args = ["workload", "read-speed", "--input", a.output, "--source", "tfrecord",
                "--batch-sizes", str(batch_size), "--batch-numbers", str(batch_number),
                "--repetitions", "1", "--parallel", "1", "--out", csv_path]
        if a.decode:
            args.append("--decode")
        _, seconds = run_binary(a.binary, args)
        with open(csv_path, newline="") as f:
            rows = list(csv.DictReader(f))
    return {"batch_size": batch_size, "batch_number": batch_number, "repetition": rep,
            "seconds": seconds, "rows": rows}


def images_per_s(row):
    for key in ("images_per_s", "images_per_sec", "throughput"):
        try:
            return float(row[key])
        except (KeyError, TypeError, ValueError):
            continue
    return None


def rest_metrics(sc):
    """Totals over the application's stages and executors from the driver's REST API, and why
    they could not be read (None when they were)."""
    url = sc.uiWebUrl
    if not url:
        return {}, "no Spark metrics: the driver has no web UI (spark.ui.enabled is false)"
    base = f"{url}/api/v1/applications/{sc.applicationId}"
    problem = None
    # The listener bus updates the REST view asynchronously, and a driver on a busy machine can
    # take many seconds to answer: three tries, each waiting a little longer first.
    for attempt in range(REST_TRIES):
        time.sleep(0.5 * (attempt + 1))
        try:
            with urllib.request.urlopen(f"{base}/stages", timeout=REST_TIMEOUT_S) as r:
                stages = json.load(r)
            with urllib.request.urlopen(f"{base}/executors", timeout=REST_TIMEOUT_S) as r:
                executors = json.load(r)
            break
        except Exception as e:  # metrics are extra: never fail a finished job over them
            problem = f"no Spark metrics: the REST API at {base} did not answer in {attempt + 1} tries ({e})"
    else:
        return {}, problem
    out = {}
    out["spark_stages"] = len(stages)
    out["spark_tasks"] = sum(s.get("numCompleteTasks", 0) for s in stages)
    out["spark_failed_tasks"] = sum(s.get("numFailedTasks", 0) for s in stages)
    out["spark_executor_run_s"] = sum(s.get("executorRunTime", 0) for s in stages) / 1e3
    out["spark_executor_cpu_s"] = sum(s.get("executorCpuTime", 0) for s in stages) / 1e9
    out["spark_jvm_gc_s"] = sum(s.get("jvmGcTime", 0) for s in stages) / 1e3
    out["spark_executors"] = sum(1 for e in executors if e.get("id") != "driver")
    out["spark_cores"] = sum(e.get("totalCores", 0) for e in executors if e.get("id") != "driver")
    return out, None


def main(argv):
    a = parse_args(argv)
    spark = SparkSession.builder.appName("cherrypick-workload").getOrCreate()
    sc = spark.sparkContext
    result = {"app_id": sc.applicationId, "partitions": a.partitions}
    t0 = time.perf_counter()
    if "preprocess" in a.tasks:
        t = time.perf_counter()
        parts = (sc.parallelize(range(a.partitions), a.partitions)
                 .map(lambda i: preprocess_part(a, i)).collect())
        result["preprocess_s"] = time.perf_counter() - t
        result["preprocess_task_s_max"] = max(p["seconds"] for p in parts)
        result["preprocess_hosts"] = len({p["host"] for p in parts})
    if "read-speed" in a.tasks:
        t = time.perf_counter()
        grid = [(b, n, r) for b in map(int, a.batch_sizes.split(","))
                for n in map(int, a.batch_numbers.split(",")) for r in range(a.repetitions)]
        cells = (sc.parallelize(grid, min(len(grid), a.partitions))
                 .map(lambda c: read_speed_cell(a, c)).collect())
        result["read_speed_s"] = time.perf_counter() - t
        rates = [x for c in cells for x in map(images_per_s, c["rows"]) if x is not None]
        result["read_speed_cells"] = len(cells)
        if rates:
            result["read_images_per_s_mean"] = sum(rates) / len(rates)
            result["read_images_per_s_max"] = max(rates)
    result["runtime_s"] = time.perf_counter() - t0
    metrics, problem = rest_metrics(sc)
    result.update(metrics)
    print(RESULT_PREFIX + json.dumps(result, sort_keys=True), flush=True)
    spark.stop()
    # After Spark's own shutdown lines, so the tail of stderr that the journal keeps shows it.
    if problem:
        print(f"cherrypick: {problem}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
