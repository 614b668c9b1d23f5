"""Writes workload/tests/fixtures/tf_written.tfrecord with TensorFlow's own writer.

The fixture proves our TFRecord reader and tf.train.Example decoder read what TensorFlow
writes (workload/tests/tf_compat.rs). Images are tiny JPEGs made by tf.io.encode_jpeg from
seeded arrays; a JSON sidecar lists every field so the Rust test checks exact values.

Run through make_tf_fixture.sh, which makes a scratch venv with tensorflow-cpu.
"""

import json
import sys
from pathlib import Path

import numpy as np
import tensorflow as tf

CLASSES = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
# (class index, width, height, chroma) per record: odd sizes and both subsamplings on purpose.
RECORDS = [(0, 16, 12, "444"), (1, 9, 7, "420"), (2, 24, 8, "444"), (4, 5, 17, "420")]


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20261125)
    path = out_dir / "tf_written.tfrecord"
    meta = []
    with tf.io.TFRecordWriter(str(path)) as w:
        for cls, width, height, chroma in RECORDS:
            pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
            jpeg = tf.io.encode_jpeg(
                pixels, quality=90, chroma_downsampling=(chroma == "420")
            ).numpy()
            ex = tf.train.Example(
                features=tf.train.Features(
                    feature={
                        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[jpeg])),
                        "class": tf.train.Feature(int64_list=tf.train.Int64List(value=[cls])),
                        "label": tf.train.Feature(
                            bytes_list=tf.train.BytesList(value=[CLASSES[cls].encode()])
                        ),
                    }
                )
            )
            w.write(ex.SerializeToString())
            # TF decodes with libjpeg-turbo's accurate integer IDCT and fancy upsampling, as
            # our decoder does, so the sums of decoded bytes must match exactly.
            decoded = tf.io.decode_jpeg(jpeg, channels=3, dct_method="INTEGER_ACCURATE").numpy()
            meta.append(
                {
                    "class": cls,
                    "label": CLASSES[cls],
                    "width": width,
                    "height": height,
                    "jpeg_len": len(jpeg),
                    "jpeg_head": jpeg[:16].hex(),
                    "decoded_sum": int(decoded.astype(np.uint64).sum()),
                }
            )
    (out_dir / "tf_written.json").write_text(
        json.dumps({"tensorflow": tf.__version__, "records": meta}, indent=1) + "\n"
    )
    # Read it back with TensorFlow too, so the fixture is known good on its side.
    n = sum(1 for _ in tf.data.TFRecordDataset(str(path)))
    assert n == len(RECORDS), n
    print(f"wrote {path} ({path.stat().st_size} bytes, {n} records) with TensorFlow {tf.__version__}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "tests" / "fixtures")
