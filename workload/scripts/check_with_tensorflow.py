"""Reads our preprocess output with TensorFlow's own tf.data, as the coursework's training did.

usage: check_with_tensorflow.py INPUT_DIR SHARD_DIR [SIZE]

TFRecordDataset checks both CRCs of every record; parse_single_example parses the Example with
a fixed feature spec; decode_jpeg decodes the image.
"""

import sys
from pathlib import Path

import tensorflow as tf

from shard_check import Tally, fail, shards

SPEC = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "class": tf.io.FixedLenFeature([], tf.int64),
    "label": tf.io.FixedLenFeature([], tf.string),
}


def main():
    input_dir, shard_dir = Path(sys.argv[1]), Path(sys.argv[2])
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 192
    tally = Tally(input_dir, size)
    for path in shards(shard_dir):
        n = 0
        try:
            for raw in tf.data.TFRecordDataset(str(path)):
                ex = tf.io.parse_single_example(raw, SPEC)
                img = tf.io.decode_jpeg(ex["image"], channels=3)
                h, w, c = img.shape
                tally.record(f"{path.name} record {n}", int(ex["class"]), ex["label"].numpy().decode(), w, h, c)
                n += 1
        except tf.errors.DataLossError as e:
            fail(f"{path.name}: TensorFlow reports data loss: {e.message}")
        tally.shard_done(path, n)
    tally.finish(f"TensorFlow {tf.__version__} tf.data")


if __name__ == "__main__":
    main()
