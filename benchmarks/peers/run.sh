#!/usr/bin/env bash
# Peer benchmark: installs pinned Python optimisers into a venv and replays the Scout workloads
# with them (see README.md here). Arguments go to peers.py, e.g.
#   benchmarks/peers/run.sh --seeds 50 --ours out/compare/summary.json --out out/peers
# VENV overrides the venv folder (default .venv-peers at the repo root).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${VENV:-$repo/.venv-peers}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
# Pinned so that figures are comparable between runs. scikit-optimize 0.10.2 is the last
# release; scikit-learn 1.5 and numpy 2.1 are versions it is known to work with.
pins=(numpy==2.1.3 scipy==1.14.1 scikit-learn==1.5.2 scikit-optimize==0.10.2 optuna==5.0.0 torch==2.15.0)
if ! "$venv/bin/python" - "${pins[@]}" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    if version(name) != want:
        sys.exit(1)
PY
then
    # optuna's GPSampler needs torch. PyPI has no CPU-only torch wheel for x86_64 Linux: the
    # regular wheel pulls the CUDA runtime libraries (about 3 GB), unused here but required
    # for `import torch` to succeed.
    "$venv/bin/pip" install --quiet "${pins[@]}"
fi

# One thread per process: the machine is shared and our own `ask` is single-threaded too.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
exec "$venv/bin/python" "$here/peers.py" "$@"
