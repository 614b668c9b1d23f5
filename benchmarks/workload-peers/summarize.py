"""Medians over the runs of benchmarks/workload-peers/run.sh and the ratios the targets name.

usage: summarize.py results.jsonl [photos-bytes.txt]
"""

import json
import statistics
import sys
from collections import defaultdict

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = defaultdict(list)
for r in rows:
    by[(r["tool"], r["procs"])].append(r)


def med(tool, procs, f):
    vals = [f(r) for r in by.get((tool, procs), [])]
    return statistics.median(vals) if vals else None


def per_cpu(tool, procs):
    return med(tool, procs, lambda r: r["images"] / r["cpu_s"])


def per_wall(tool, procs):
    return med(tool, procs, lambda r: r["images"] / r["wall_s"])


def fmt(x, nd=0):
    return "-" if x is None else f"{x:,.{nd}f}"


def ratio(a, b):
    return None if a is None or b is None else a / b


pillow_build = next((r.get("peer_build") for r in rows if r["tool"] == "pillow"), "?")
tf_version = next((r.get("version") for r in rows if r["tool"] == "tf"), "?")
runs = len(by.get(("ours", 1), []))
print(f"median of {runs} runs; images per CPU-second is the fair figure on a shared machine")
print(f"Pillow build: {pillow_build}; {tf_version}")
print()
print(f"{'preprocess (fill 192, q95 4:4:4)':44} {'img/CPU-s':>10} {'img/wall-s':>11}")
names = [
    ("ours", "ours, 1 thread / 2 threads"),
    ("pillow", f"{pillow_build} (full decode)"),
    ("pillow-draft", f"{pillow_build} + draft (DCT scaling)"),
    ("tf", "TensorFlow (antialias=True)"),
    ("tf-noaa", "TensorFlow (antialias=False)"),
]
for tool, label in names:
    for procs in (1, 2):
        if (tool, procs) in by:
            print(f"{label + f' x{procs}':44} {fmt(per_cpu(tool, procs)):>10} {fmt(per_wall(tool, procs)):>11}")
print()
print("decode only, full size, 1 process")
for tool, label in [("ours-decode", "ours (libjpeg-turbo 3, TurboJPEG API)"), ("turbojpeg-decode", "PyTurboJPEG (system libjpeg-turbo)"), ("pillow-decode", f"{pillow_build} decode")]:
    if (tool, 1) in by:
        # ours-decode runs single-threaded: wall ~ CPU on an idle core.
        v = per_cpu(tool, 1) if "cpu_s" in by[(tool, 1)][0] else per_wall(tool, 1)
        print(f"  {label:42} {fmt(v):>10} img/{'CPU-s' if 'cpu_s' in by[(tool, 1)][0] else 'wall-s (1 thread)'}")
print()
o1, o2 = per_cpu("ours", 1), per_cpu("ours", 2)
floor = per_cpu("turbojpeg-decode", 1)
print("ratios (per CPU-second)")
print(f"  ours / Pillow:                  {fmt(ratio(o1, per_cpu('pillow', 1)), 2)}x   (target >= 1.3)")
print(f"  ours / Pillow with draft:       {fmt(ratio(o1, per_cpu('pillow-draft', 1)), 2)}x")
print(f"  ours / TensorFlow:              {fmt(ratio(o1, per_cpu('tf', 1)), 2)}x   (target >= 2.5)")
print(f"  ours / TensorFlow antialias=F:  {fmt(ratio(o1, per_cpu('tf-noaa', 1)), 2)}x")
print(f"  ours / libjpeg-turbo decode:    {fmt(ratio(o1, floor), 2)}   (target >= 0.70)")
print(f"  ours / our own decode-only:     {fmt(ratio(o1, per_wall('ours-decode', 1)), 2)}")
print("ratios (per wall-second)")
print(f"  ours 2 threads / 1 thread:      {fmt(ratio(per_wall('ours', 2), per_wall('ours', 1)), 2)}x   (target >= 1.8)")
print(f"  Pillow 2 procs / 1 proc:        {fmt(ratio(per_wall('pillow', 2), per_wall('pillow', 1)), 2)}x")
print(f"  TensorFlow 2 procs / 1 proc:    {fmt(ratio(per_wall('tf', 2), per_wall('tf', 1)), 2)}x")
print(f"  ours 2 threads per CPU-s / 1:   {fmt(ratio(o2, o1), 2)}")
print()
print("TFRecord read from page cache (no decoding)")
gb = lambda t: med(t, 1, lambda r: r["bytes"] / r["wall_s"] / 1e9)
print(f"  ours read-speed (CRCs + Example parse, 1 thread): {fmt(gb('ours-read'), 2)} GB/s   (target >= 1)")
print(f"  cat of the shards:                                 {fmt(gb('cat-read'), 2)} GB/s")
print(f"  tf.data TFRecordDataset + parse_example (1 thread): {fmt(gb('tfdata-read'), 2)} GB/s")
print("TFRecord read with full-size decoding of the 192x192 images")
for p in (1, 2):
    print(f"  ours, {p} parallel cell(s): {fmt(per_wall('ours-read-decode', p))} images/s")
small = per_cpu("turbojpeg-decode-192", 1)
print(f"  libjpeg-turbo decode-only of the same images as files (PyTurboJPEG, fast IDCT): {fmt(small)} img/CPU-s")
print(f"  ours 1 cell / that:         {fmt(ratio(per_wall('ours-read-decode', 1), small), 2)}   (target >= 0.8)")
mem = med("ours", 1, lambda r: r["maxrss_mb"])
mem2 = med("ours", 2, lambda r: r["maxrss_mb"])
n = by[("ours", 1)][0]["images"] if ("ours", 1) in by else 0
print()
print(f"peak memory (max RSS) of preprocess on {n} images: {fmt(mem)} MB (1 thread), {fmt(mem2)} MB (2 threads)   (target < 300)")
wall_all = med("ours", 2, lambda r: r["wall_s"])
print(f"whole job end to end, 2 threads: {fmt(wall_all, 2)} s (the coursework's PySpark: 75 s)")
if len(sys.argv) > 2:
    total = int(open(sys.argv[2]).read().split()[0])
    print(f"photos: {n} images, {total / 1e6:.1f} MB on disk, mean {total / max(n, 1) / 1e3:.1f} KB")
