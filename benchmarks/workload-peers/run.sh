#!/usr/bin/env bash
# Side by side on the same generated photos and the same settings (fill resize to 192, centre
# crop, JPEG q95 4:4:4): our preprocess (release; 1 then 2 threads), Pillow-SIMD and TensorFlow
# (1 then 2 processes), the libjpeg-turbo decode-only rate, TFRecord read throughput (ours vs cat
# vs tf.data), and preprocess's peak memory. Each measurement is one JSON line in
# $OUT/results.jsonl; summarize.py prints medians over the runs and the ratios.
#
# usage: benchmarks/workload-peers/run.sh [--images 3670] [--runs 3] [--out out/workload-peers]
# env:   CHERRYPICK_BIN (default: builds and uses target/release/cherrypick)
#        SIMD_VENV (out/venv-pillow-simd), TF_VENV (out/venv-tf): created if missing.
# Machine shared? Quote images per CPU-second; the script prints both.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
here=$root/benchmarks/workload-peers
images=3670 runs=3 out=$root/out/workload-peers
while [ $# -gt 0 ]; do
    case $1 in
        --images) images=$2; shift 2 ;;
        --runs) runs=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
simd_venv=${SIMD_VENV:-$root/out/venv-pillow-simd}
tf_venv=${TF_VENV:-$root/out/venv-tf}
mkdir -p "$out"
results=$out/results.jsonl
: > "$results"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

if [ -z "${CHERRYPICK_BIN:-}" ]; then
    log "building the release binary"
    cargo build --release -p cherrypick >&2
    bin=$root/target/release/cherrypick
else
    bin=$CHERRYPICK_BIN
fi

# System libraries the peers need: Pillow-SIMD builds from source against libjpeg and zlib, and
# PyTurboJPEG loads the system libturbojpeg at run time (pip does not ship it). Installed here
# with apt-get where that works; otherwise the script stops and names the packages.
need_debs=()
for pair in libturbojpeg0:libturbojpeg.so.0 libjpeg-dev:jpeglib.h zlib1g-dev:zlib.h python3-venv:ensurepip; do
    deb=${pair%%:*} probe=${pair#*:}
    case $probe in
        *.so.*) ldconfig -p 2>/dev/null | grep -q "$probe" || need_debs+=("$deb") ;;
        ensurepip) python3 -c 'import ensurepip' 2>/dev/null || need_debs+=("$deb") ;;
        *) [ -e "/usr/include/$probe" ] || need_debs+=("$deb") ;;
    esac
done
if [ ${#need_debs[@]} -gt 0 ]; then
    log "installing system packages: ${need_debs[*]}"
    sudo_cmd=(); [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
    if ! { "${sudo_cmd[@]}" apt-get update -qq && "${sudo_cmd[@]}" apt-get install -y -qq "${need_debs[@]}"; } >&2; then
        echo "error: install these packages first (Debian/Ubuntu names): ${need_debs[*]}" >&2
        echo "       (libturbojpeg0 provides libturbojpeg.so.0, which PyTurboJPEG loads)" >&2
        exit 2
    fi
fi

# Peers. Pillow-SIMD builds from source (libjpeg-dev, zlib1g-dev); -mavx2 selects its AVX2
# paths. If it cannot build, plain Pillow stands in and every line says so.
if ! "$simd_venv/bin/python" -c 'import PIL, turbojpeg' 2>/dev/null; then
    log "installing Pillow-SIMD and PyTurboJPEG into $simd_venv"
    python3 -m venv "$simd_venv"
    "$simd_venv/bin/pip" install -q --upgrade pip
    if ! CC="cc -mavx2" "$simd_venv/bin/pip" install -q --no-binary pillow-simd pillow-simd; then
        log "WARNING: pillow-simd did not build; falling back to plain Pillow"
        "$simd_venv/bin/pip" install -q pillow
    fi
    "$simd_venv/bin/pip" install -q "PyTurboJPEG<2" numpy  # 2.x needs libjpeg-turbo 3; Debian 12 has 2.1
fi
if "$simd_venv/bin/pip" show pillow-simd >/dev/null 2>&1; then pillow_kind=pillow-simd; else pillow_kind=pillow-PLAIN-NOT-SIMD; fi
if ! "$tf_venv/bin/python" -c 'import tensorflow' 2>/dev/null; then
    log "installing tensorflow-cpu into $tf_venv"
    python3 -m venv "$tf_venv"
    "$tf_venv/bin/pip" install -q --upgrade pip
    "$tf_venv/bin/pip" install -q tensorflow-cpu numpy
fi

photos=$out/photos-$images
if [ ! -f "$photos/.complete" ]; then
    log "generating $images photos"
    rm -rf "$photos"
    "$bin" workload gen-dataset --out "$photos" --images "$images" --seed 1 | tee "$out/gen-dataset.txt" >&2
    touch "$photos/.complete"
fi
du -sb "$photos" | awk '{print $1}' > "$out/photos-bytes.txt"

# Our preprocess: the binary's own timing of the run (what the peers time too), plus
# /usr/bin/time for the whole process (start-up included) and its peak RSS.
ours() {
    local threads=$1 shards=$out/shards
    rm -rf "$shards"
    /usr/bin/time -v "$bin" workload preprocess --input "$photos" --output "$shards" \
        --threads "$threads" >"$out/pp.txt" 2>"$out/pp.time"
    python3 - "$threads" "$out/pp.txt" "$out/pp.time" >>"$results" <<'PY'
import json, re, sys
threads, txt, tim = sys.argv[1], open(sys.argv[2]).read(), open(sys.argv[3]).read()
m = re.search(r"preprocessed (\d+) of \d+ images into \d+ shards in ([\d.]+) s \(\d+ images/s, (\d+) images per CPU-second", txt)
n, wall, per_cpu = int(m.group(1)), float(m.group(2)), float(m.group(3))
g = lambda k: float(re.search(re.escape(k) + r": ([\d.]+)", tim).group(1))
print(json.dumps({"tool": "ours", "procs": int(threads), "images": n, "wall_s": wall,
    "cpu_s": n / per_cpu, "process_cpu_s": g("User time (seconds)") + g("System time (seconds)"),
    "maxrss_mb": g("Maximum resident set size (kbytes)") / 1024}))
PY
}

peer() { # venv tool procs [input folder] [name in results]
    local py=$1/bin/python tool=$2 procs=$3 input=${4:-$photos} name=${5:-$2}
    "$py" "$here/peer.py" --tool "$tool" --procs "$procs" --input "$input" \
        | python3 -c "import json,sys; d=json.loads(sys.stdin.read()); d['tool']='$name'; d['peer_build']='$pillow_kind' if d['tool'].startswith('pillow') else ''; print(json.dumps(d))" >>"$results"
}

# TFRecord reading from page cache: our read-speed (framing + both CRCs + Example parse, one
# thread) over ~1 GB by cycling the shards, cat of the shards, tf.data parsing, then ours with
# full-size decoding of the 192x192 images on 1 and 2 threads.
reads() {
    local shards=$out/shards bytes reps
    bytes=$(cat "$shards"/*.tfrec | wc -c)
    cat "$shards"/*.tfrec >/dev/null
    "$bin" workload read-speed --input "$shards" --batch-sizes 64 --batch-numbers 600 \
        --repetitions 3 --parallel 1 --out "$out/rs-nodecode.csv" >/dev/null
    python3 - "$out/rs-nodecode.csv" ours-read 1 >>"$results" <<'PY'
import csv, json, sys
for r in csv.DictReader(open(sys.argv[1])):
    print(json.dumps({"tool": sys.argv[2], "procs": int(sys.argv[3]), "images": int(r["images"]),
        "bytes": int(r["bytes"]), "wall_s": float(r["seconds"])}))
PY
    reps=$(( 1000000000 / bytes + 1 ))
    local t0 t1
    t0=$(date +%s%N)
    for _ in $(seq "$reps"); do cat "$shards"/*.tfrec; done >/dev/null
    t1=$(date +%s%N)
    python3 -c "import json; print(json.dumps({'tool': 'cat-read', 'procs': 1, 'bytes': $(( bytes * reps )), 'wall_s': ($t1 - $t0) / 1e9}))" >>"$results"
    for par in 1 2; do
        "$bin" workload read-speed --input "$shards" --decode --batch-sizes 64 \
            --batch-numbers 60 --repetitions 2 --parallel "$par" --out "$out/rs-decode.csv" >/dev/null
        python3 - "$out/rs-decode.csv" "ours-read-decode" "$par" >>"$results" <<'PY'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
# Cells run concurrently: aggregate wall = sum of cell times / parallel cells.
par = int(sys.argv[3])
n = sum(int(r["images"]) for r in rows); t = sum(float(r["seconds"]) for r in rows)
print(json.dumps({"tool": sys.argv[2], "procs": par, "images": n, "wall_s": t / par, "cell_s": t}))
PY
    done
    TF_CPP_MIN_LOG_LEVEL=2 "$tf_venv/bin/python" "$here/tfdata_read.py" "$shards" >>"$results"
    # The reference for the decoding read: libjpeg-turbo decoding the same 192x192 JPEGs as
    # plain files (taken out of the shards by tf.data), with the fast IDCT our read uses.
    local small=$out/small
    rm -rf "$small"
    TF_CPP_MIN_LOG_LEVEL=2 "$tf_venv/bin/python" "$here/tfdata_read.py" "$shards" --extract "$small"
    peer "$simd_venv" turbojpeg-decode-fast 1 "$small" turbojpeg-decode-192
}

for r in $(seq "$runs"); do
    log "run $r/$runs: ours"
    ours 1
    ours 2
    log "run $r/$runs: $pillow_kind"
    peer "$simd_venv" pillow 1
    peer "$simd_venv" pillow 2
    peer "$simd_venv" pillow-draft 1
    log "run $r/$runs: decode only"
    peer "$simd_venv" turbojpeg-decode 1
    peer "$simd_venv" pillow-decode 1
    log "run $r/$runs: TensorFlow"
    peer "$tf_venv" tf 1
    peer "$tf_venv" tf 2
    peer "$tf_venv" tf-noaa 1
    log "run $r/$runs: TFRecord reads"
    reads
done
# Our own full-size decode-only rate of the photos (libjpeg-turbo 3 as built into the binary).
log "ours: decode-only of the photos"
"$bin" workload read-speed --input "$photos" --source images --decode --batch-sizes "$images" \
    --batch-numbers 1 --repetitions "$runs" --parallel 1 --out "$out/rs-photos-decode.csv" >/dev/null
python3 - "$out/rs-photos-decode.csv" >>"$results" <<'PY'
import csv, json, sys
for r in csv.DictReader(open(sys.argv[1])):
    print(json.dumps({"tool": "ours-decode", "procs": 1, "images": int(r["images"]), "wall_s": float(r["seconds"])}))
PY
python3 "$here/summarize.py" "$results" "$out/photos-bytes.txt" | tee "$out/summary.txt"
