"""One peer measurement on a folder of `<class>/*.jpg`: prints one JSON line.

usage: peer.py --tool TOOL --procs N --input DIR [--size 192] [--quality 95]

Tools (each does, per image: read the file, then the work named):
  pillow           decode, fill resize (antialiased bilinear over the centred square), JPEG q95 4:4:4
  pillow-draft     the same, letting libjpeg shrink by M/8 while decoding (Image.draft, the same
                   DCT-domain scaling our preprocess uses)
  tf               tf.io.decode_jpeg, resize short side to SIZE (bilinear, antialias=True, like
                   ours), centre crop, tf.io.encode_jpeg q95 4:4:4, in one tf.function
  tf-noaa          the same with TensorFlow's default antialias=False (less work, blurrier)
  pillow-decode    decode only, full size
  turbojpeg-decode decode only, full size, PyTurboJPEG 1.x on the system libjpeg-turbo 2.1 (TJ API)
  turbojpeg-decode-fast  the same with the fast IDCT (TJFLAG_FASTDCT, tf.data's decode_jpeg default)

Every process takes every N-th file, imports and warms up first, then waits at a barrier; the
timed part is the loop only. cpu_s sums each process's CPU time over its loop (all its threads);
wall_s runs from the barrier to the last process's end. TensorFlow is held to one intra-op and
one inter-op thread per process, so N processes use N cores.
"""

import argparse
import io
import json
import multiprocessing as mp
import os
import queue
import sys
import time
from pathlib import Path


def files_of(root: Path):
    out = []
    for c in sorted(p for p in root.iterdir() if p.is_dir()):
        out += sorted(str(f) for f in c.iterdir() if f.suffix.lower() in (".jpg", ".jpeg"))
    return out


def fill_box(w, h):
    side = min(w, h)
    left, top = (w - side) / 2, (h - side) / 2
    return (left, top, left + side, top + side)


def make_work(tool, size, quality):
    """Returns (version, fn(bytes) -> int) doing one image's work."""
    if tool in ("pillow", "pillow-draft", "pillow-decode"):
        import PIL
        from PIL import Image

        version = f"{PIL.__name__} {PIL.__version__}"

        def work(data):
            img = Image.open(io.BytesIO(data))
            if tool == "pillow-decode":
                img.load()
                return img.width
            if tool == "pillow-draft":
                # Largest M/8 reduction keeping the short side >= size (as ours).
                w, h = img.size
                scale = size / min(w, h)
                img.draft("RGB", (max(size, int(w * scale + 0.999)), max(size, int(h * scale + 0.999))))
            img = img.convert("RGB")
            w, h = img.size
            out = img.resize((size, size), Image.BILINEAR, box=fill_box(w, h))
            buf = io.BytesIO()
            out.save(buf, "JPEG", quality=quality, subsampling=0)
            return len(buf.getvalue())

        return version, work
    if tool in ("turbojpeg-decode", "turbojpeg-decode-fast"):
        from turbojpeg import TJFLAG_FASTDCT, TurboJPEG

        tj = TurboJPEG()
        flags = TJFLAG_FASTDCT if tool == "turbojpeg-decode-fast" else 0

        def work(data):
            return tj.decode(data, flags=flags).shape[0]

        import turbojpeg

        return f"PyTurboJPEG {getattr(turbojpeg, '__version__', '?')} (system libturbojpeg)", work
    if tool in ("tf", "tf-noaa"):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        antialias = tool == "tf"

        @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
        def step(data):
            img = tf.io.decode_jpeg(data, channels=3)
            shape = tf.cast(tf.shape(img)[:2], tf.float32)
            scale = size / tf.reduce_min(shape)
            new = tf.cast(tf.math.ceil(shape * scale), tf.int32)
            img = tf.image.resize(img, new, method="bilinear", antialias=antialias)
            img = tf.image.resize_with_crop_or_pad(img, size, size)
            img = tf.cast(tf.clip_by_value(tf.round(img), 0, 255), tf.uint8)
            return tf.io.encode_jpeg(img, quality=quality, chroma_downsampling=False)

        def work(data):
            return len(step(tf.constant(data)).numpy())

        return f"tensorflow {tf.__version__}", work
    raise SystemExit(f"unknown tool {tool}")


def child(tool, size, quality, paths, barrier, results):
    version, work = make_work(tool, size, quality)
    # Warm-up (graph tracing, codec set-up) outside the timing, on a file read separately.
    with open(paths[0], "rb") as f:
        work(f.read())
    barrier.wait()
    t0, c0 = time.monotonic(), time.process_time()
    out_bytes = 0
    for p in paths:
        with open(p, "rb") as f:
            out_bytes += work(f.read())
    results.put((t0, time.monotonic(), time.process_time() - c0, len(paths), version))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tool", required=True)
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument("--input", required=True)
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--quality", type=int, default=95)
    a = ap.parse_args()
    paths = files_of(Path(a.input))
    if not paths:
        raise SystemExit(f"no JPEGs under {a.input}")
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(a.procs)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=child, args=(a.tool, a.size, a.quality, paths[i :: a.procs], barrier, results))
        for i in range(a.procs)
    ]
    for p in procs:
        p.start()
    got = []
    while len(got) < len(procs):
        try:
            got.append(results.get(timeout=5))
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead:
                for p in procs:
                    p.kill()
                raise SystemExit(f"{a.tool}: a worker failed (exit {dead[0]})")
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"{a.tool}: a worker failed (exit {p.exitcode})")
    start = min(g[0] for g in got)
    end = max(g[1] for g in got)
    cpu = sum(g[2] for g in got)
    n = sum(g[3] for g in got)
    print(
        json.dumps(
            {
                "tool": a.tool,
                "procs": a.procs,
                "images": n,
                "wall_s": end - start,
                "cpu_s": cpu,
                "version": got[0][4],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
