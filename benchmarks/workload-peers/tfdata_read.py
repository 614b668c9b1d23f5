"""tf.data reading our shards from page cache: TFRecordDataset (CRCs checked) + parse_example in
batches of 64, no decoding, one thread; bytes are the shard files'. Prints one JSON line."""

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
