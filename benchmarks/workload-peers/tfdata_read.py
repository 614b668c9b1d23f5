"""tf.data reading our shards from page cache: TFRecordDataset (CRCs checked) + parse_example in
batches of 64, no decoding, one thread; bytes are the shard files'. Prints one JSON line.
With `SHARDS --extract DIR`, writes every record's image to DIR/<label>/<n>.jpg instead."""

import glob
import json
import os
import sys
import time

import tensorflow as tf

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
SPEC = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "class": tf.io.FixedLenFeature([], tf.int64),
    "label": tf.io.FixedLenFeature([], tf.string),
}
files = sorted(glob.glob(sys.argv[1] + "/*.tfrec"))
if len(sys.argv) > 3 and sys.argv[2] == "--extract":
    # Write every record's image as <label>/<n>.jpg (the reference decode-only input).
    out = sys.argv[3]
    for i, r in enumerate(tf.data.TFRecordDataset(files)):
        ex = tf.io.parse_single_example(r, SPEC)
        d = os.path.join(out, ex["label"].numpy().decode())
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"{i:05d}.jpg"), "wb") as f:
            f.write(ex["image"].numpy())
    sys.exit(0)
# Batched parsing, as a training pipeline would, so Python's per-element overhead does not dominate.
ds = tf.data.TFRecordDataset(files).batch(64).map(lambda r: tf.io.parse_example(r, SPEC))
for _ in ds.take(10):
    pass
t0, c0 = time.monotonic(), time.process_time()
n = 0
for ex in ds:
    n += int(ex["class"].shape[0])
nbytes = sum(os.path.getsize(f) for f in files)
wall = time.monotonic() - t0
print(json.dumps({"tool": "tfdata-read", "procs": 1, "images": n, "bytes": nbytes, "wall_s": wall,
                  "cpu_s": time.process_time() - c0}))
