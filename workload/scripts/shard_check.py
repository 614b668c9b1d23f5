"""What both shard checks share: the expected contents of a preprocess output, from its input.

A preprocess run of `<class>/*.jpg` writes `flowersNN-COUNT.tfrec` shards of tf.train.Example
{image: 192x192 JPEG bytes, class: int64, label: bytes}; class is the index of the label in the
sorted class-folder names. The checks read the shards with a Python reader (PyPI `tfrecord`, or
TensorFlow's tf.data) and call `verify` with what they read.
"""

import re
import sys
from collections import Counter
from pathlib import Path

SHARD_RE = re.compile(r"^flowers(\d{2,})-(\d+)\.tfrec$")


def expected(input_dir: Path):
    """Class names (sorted) and image count per label under `input_dir`."""
    classes = sorted(p.name for p in input_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    counts = Counter()
    for c in classes:
        counts[c] = sum(1 for f in (input_dir / c).iterdir() if f.is_file() and not f.name.startswith("."))
    return classes, counts


def shards(output_dir: Path):
    """Shard paths in name order; anything else in the folder (a leftover temporary) is an error."""
    found = sorted(p for p in output_dir.iterdir())
    bad = [p.name for p in found if not SHARD_RE.match(p.name)]
    if bad:
        fail(f"{output_dir}: unexpected files beside the shards: {bad}")
    if not found:
        fail(f"{output_dir}: no shards")
    return found


def fail(msg: str):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


class Tally:
    """Accumulates what a reader saw and compares it with the input folder."""

    def __init__(self, input_dir: Path, size: int):
        self.classes, self.want = expected(input_dir)
        self.size = size
        self.got = Counter()
        self.records = 0

    def record(self, where: str, cls: int, label: str, width: int, height: int, channels: int):
        if not 0 <= cls < len(self.classes):
            fail(f"{where}: class {cls} out of range for {self.classes}")
        if self.classes[cls] != label:
            fail(f"{where}: class {cls} is {self.classes[cls]!r} but label is {label!r}")
        if (width, height, channels) != (self.size, self.size, 3):
            fail(f"{where}: image is {width}x{height}x{channels}, expected {self.size}x{self.size}x3")
        self.got[label] += 1
        self.records += 1

    def shard_done(self, path: Path, n: int):
        m = SHARD_RE.match(path.name)
        if int(m.group(2)) != n:
            fail(f"{path.name}: name says {m.group(2)} records, read {n}")

    def finish(self, reader: str):
        if self.got != self.want:
            fail(f"records per label {dict(self.got)} differ from images per class folder {dict(self.want)}")
        print(
            f"OK ({reader}): {self.records} records, every image {self.size}x{self.size} RGB, "
            f"labels and classes consistent, per-label counts match the input: {dict(sorted(self.got.items()))}"
        )
