"""Reads our preprocess output with PyPI's `tfrecord` package and Pillow, independently of our code.

usage: check_with_tfrecord.py INPUT_DIR SHARD_DIR [SIZE]

`tfrecord` parses the framing and the tf.train.Example protobuf but does not check CRCs, so each
record's two masked CRC32Cs are checked here with the `crc32c` package it depends on.
"""

import io
import struct
import sys
from pathlib import Path

import crc32c
from PIL import Image, JpegImagePlugin
from tfrecord.reader import example_loader

from shard_check import Tally, fail, shards


def masked(data) -> int:
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def check_crcs(path: Path) -> int:
    data = path.read_bytes()
    off, n = 0, 0
    while off < len(data):
        if off + 12 > len(data):
            fail(f"{path.name}: truncated header at byte {off}")
        (length,) = struct.unpack_from("<Q", data, off)
        (len_crc,) = struct.unpack_from("<I", data, off + 8)
        if masked(data[off : off + 8]) != len_crc:
            fail(f"{path.name}: length CRC mismatch at byte {off}")
        end = off + 12 + length
        if end + 4 > len(data):
            fail(f"{path.name}: truncated record at byte {off}")
        (data_crc,) = struct.unpack_from("<I", data, end)
        if masked(data[off + 12 : end]) != data_crc:
            fail(f"{path.name}: payload CRC mismatch at byte {off}")
        off, n = end + 4, n + 1
    return n


def main():
    input_dir, shard_dir = Path(sys.argv[1]), Path(sys.argv[2])
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 192
    tally = Tally(input_dir, size)
    for path in shards(shard_dir):
        framed = check_crcs(path)
        n = 0
        for rec in example_loader(str(path), None, {"image": "byte", "class": "int", "label": "byte"}):
            where = f"{path.name} record {n}"
            img = Image.open(io.BytesIO(bytes(rec["image"])))
            if img.format != "JPEG":
                fail(f"{where}: image is {img.format}, not JPEG")
            # 0 = 4:4:4, the preprocess default (as the coursework's tf.io.encode_jpeg call).
            if JpegImagePlugin.get_sampling(img) != 0:
                fail(f"{where}: chroma subsampling {JpegImagePlugin.get_sampling(img)}, expected 4:4:4")
            img.load()
            tally.record(where, int(rec["class"][0]), bytes(rec["label"]).decode(), img.width, img.height, len(img.getbands()))
            n += 1
        if n != framed:
            fail(f"{path.name}: tfrecord read {n} records, CRC walk found {framed}")
        tally.shard_done(path, n)
    tally.finish("PyPI tfrecord + crc32c + Pillow")


if __name__ == "__main__":
    main()
