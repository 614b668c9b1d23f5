#!/usr/bin/env python3
"""Side-by-side peer benchmark: replays the Scout workloads with Python optimisers.

Each peer runs as an ask/tell loop over the finite catalogue of one workload (69 configurations),
with the same budget, metrics and cost model as `cherrypick compare` (DESIGN 4 and 5), so that
their figures can be printed beside ours (`--ours PATH/summary.json`).

Peers:
  skopt-gp        scikit-optimize's GP (the estimator gp_minimize builds: Matern 5/2 ARD x constant
                  + fitted Gaussian noise, normalize_y, 2 optimiser restarts) with skopt's EI
                  (xi=0.01), maximised exactly over the untried catalogue configurations.
  skopt-gp-snap   skopt's own Optimizer(base_estimator="GP", acq_func="EI", acq_optimizer=
                  "sampling"): its proposal is snapped to the nearest untried configuration.
  optuna-gp       optuna's GPSampler; proposal snapped to the nearest untried configuration.
  optuna-tpe      optuna's TPESampler; same snapping.
  random          a seeded permutation of the catalogue.
All model-based peers start from `--initial` (default 3) random points, as CherryPick does.

Repeats are forbidden: every evaluation is a distinct catalogue configuration (a proposal that
equals an already-tried one is snapped to the nearest untried one), as in our own strategies.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FAILED_RUNTIME_S = 7200.0  # Scout's 2-hour limit (DESIGN 4)

# DESIGN 4: USD per node-hour, vCPUs per node, RAM GiB per node.
VM_TYPES = {
    "c4.large": (0.10, 2, 3.75),
    "c4.xlarge": (0.199, 4, 7.5),
    "c4.2xlarge": (0.398, 8, 15.0),
    "m4.large": (0.10, 2, 8.0),
    "m4.xlarge": (0.20, 4, 16.0),
    "m4.2xlarge": (0.40, 8, 32.0),
    "r4.large": (0.133, 2, 15.25),
    "r4.xlarge": (0.266, 4, 30.5),
    "r4.2xlarge": (0.532, 8, 61.0),
}
FAMILIES = ["c4", "m4", "r4"]
ALL_PEERS = ["skopt-gp", "skopt-gp-snap", "optuna-gp", "optuna-tpe", "random"]
DEFAULT_PEERS = ["skopt-gp", "optuna-gp", "optuna-tpe", "random"]


class DataError(Exception):
    pass


@dataclass
class Workload:
    name: str
    nodes: np.ndarray  # int, per config
    vcpus: np.ndarray  # int, per config
    family: list  # str, per config
    cost: np.ndarray  # USD charged (failures to the 2-hour limit)
    completed: np.ndarray  # bool
    names: list

    @property
    def optimum(self) -> float:
        return float(self.cost[self.completed].min())

    @property
    def worst(self) -> float:
        return float(self.cost[self.completed].max())


def default_data_dir() -> Path:
    env = os.environ.get("CHERRYPICK_DATA_DIR")
    if env:
        return Path(env) / "scout"
    repo = Path(__file__).resolve().parents[2]
    return repo.parent / "shared" / "datasets" / "scout"


def parse_report(path: Path) -> tuple[bool, float]:
    try:
        text = path.read_text()
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: line {e.lineno}: invalid JSON: {e.msg}") from None
    if not isinstance(doc, dict):
        raise DataError(f"{path}: expected a JSON object")
    comp = doc.get("completed")
    if isinstance(comp, str) and comp.lower() in ("true", "false"):
        comp = comp.lower() == "true"
    if not isinstance(comp, bool):
        raise DataError(f"{path}: field `completed`: expected true or false, got {comp!r}")
    raw = doc.get("elapsed_time")
    try:
        elapsed = float(raw)
    except (TypeError, ValueError):
        raise DataError(f"{path}: field `elapsed_time`: expected seconds, got {raw!r}") from None
    if not math.isfinite(elapsed) or elapsed < 0 or (comp and elapsed <= 0):
        raise DataError(f"{path}: field `elapsed_time`: bad value {elapsed}")
    return comp, elapsed


def load_scout(data_dir: Path) -> list[Workload]:
    root = data_dir / "dataset" / "osr_multiple_nodes"
    if not root.is_dir():
        raise DataError(f"{root}: not a directory (set CHERRYPICK_DATA_DIR or --data-dir)")
    rows: dict[str, list] = {}
    for run in sorted(root.iterdir()):
        if not run.is_dir():
            continue
        parts = run.name.split("_")
        if len(parts) < 6:
            raise DataError(f"{run}: folder name does not match <N>_<vmtype>_<app>_<framework>_<datasize>_<rep>")
        try:
            nodes = int(parts[0])
        except ValueError:
            raise DataError(f"{run}: node count `{parts[0]}` is not an integer") from None
        vm = parts[1]
        if vm not in VM_TYPES or nodes <= 0:
            raise DataError(f"{run}: unknown instance type `{vm}` or bad node count")
        app = "_".join(parts[2:-3])
        key = f"{parts[-3]}_{app}_{parts[-2]}"
        completed, elapsed = parse_report(run / "report.json")
        price, vcpus, _ram = VM_TYPES[vm]
        charged = elapsed if completed else FAILED_RUNTIME_S
        cost = nodes * price * charged / 3600.0
        rows.setdefault(key, []).append((nodes, vm, cost, completed))
    if not rows:
        raise DataError(f"{root}: no run folders found")
    out = []
    for key in sorted(rows):
        # One run per configuration in Scout; repeated runs would be averaged here.
        by_cfg: dict[tuple, list] = {}
        for nodes, vm, cost, comp in rows[key]:
            by_cfg.setdefault((vm, nodes), []).append((cost, comp))
        cfgs = sorted(by_cfg, key=lambda c: (list(VM_TYPES).index(c[0]), c[1]))
        cost = np.array([np.mean([r[0] for r in by_cfg[c]]) for c in cfgs])
        comp = np.array([all(r[1] for r in by_cfg[c]) for c in cfgs])
        if not comp.any():
            raise DataError(f"{root}: workload {key} has no completed run")
        out.append(
            Workload(
                name=key,
                nodes=np.array([c[1] for c in cfgs]),
                vcpus=np.array([VM_TYPES[c[0]][1] for c in cfgs]),
                family=[c[0].split(".")[0] for c in cfgs],
                cost=cost,
                completed=comp,
                names=[f"{c[1]}_{c[0]}" for c in cfgs],
            )
        )
    return out


class Catalogue:
    """Encodings of one workload's configurations and nearest-untried snapping."""

    def __init__(self, w: Workload):
        self.w = w
        self.n = len(w.cost)
        self.lnodes = np.log2(w.nodes.astype(float))
        self.lvcpus = np.log2(w.vcpus.astype(float))
        self.fam = np.array([FAMILIES.index(f) for f in w.family])

        def unit(x):
            span = x.max() - x.min()
            return (x - x.min()) / span if span > 0 else np.zeros_like(x)

        self.unit_nodes = unit(self.lnodes)
        self.unit_vcpus = unit(self.lvcpus)
        # Objective told to every peer: log cost, failures charged to the 2-hour limit.
        self.y = np.log(w.cost)

    def snap(self, lnodes: float, lvcpus: float, fam: str, tried: np.ndarray) -> int:
        """Nearest untried config: log sizes scaled to [0, 1], a different family costs 1."""
        span_n = self.lnodes.max() - self.lnodes.min() or 1.0
        span_v = self.lvcpus.max() - self.lvcpus.min() or 1.0
        dn = (self.lnodes - lnodes) / span_n
        dv = (self.lvcpus - lvcpus) / span_v
        df = (self.fam != FAMILIES.index(fam)).astype(float)
        d = dn * dn + dv * dv + df
        d[tried] = np.inf
        return int(np.argmin(d))  # ties: first in catalogue order


def run_seed_init(peer: str, seed: int, widx: int) -> int:
    # Distinct, reproducible seeds per (peer-independent) seed and workload.
    return (seed * 1009 + widx * 7919) % (2**31 - 1)


# ---------------------------------------------------------------- peers (ask/tell loops)
# Each returns (sequence of config indices, list of seconds spent in ask+tell per evaluation).


def peer_random(cat: Catalogue, budget: int, seed: int, initial: int):
    rng = np.random.default_rng(seed)
    order = rng.permutation(cat.n)[:budget]
    return [int(i) for i in order], [0.0] * len(order), 0


def peer_skopt_gp(cat: Catalogue, budget: int, seed: int, initial: int):
    from sklearn.base import clone
    from skopt import Optimizer
    from skopt.acquisition import _gaussian_acquisition
    from skopt.space import Categorical, Real

    dims = [
        Real(float(cat.lnodes.min()), float(cat.lnodes.max()), name="log2_nodes"),
        Real(float(cat.lvcpus.min()), float(cat.lvcpus.max()), name="log2_vcpus"),
        Categorical(FAMILIES, name="family"),
    ]
    # Only used for its space and the estimator gp_minimize would build; the loop is ours so
    # that EI is maximised over the catalogue instead of over the continuous box.
    opt = Optimizer(dims, base_estimator="GP", acq_func="EI", n_initial_points=initial, random_state=seed)
    points = [[float(cat.lnodes[i]), float(cat.lvcpus[i]), FAMILIES[cat.fam[i]]] for i in range(cat.n)]
    Xall = opt.space.transform(points)
    rng = np.random.default_rng(seed)
    tried = np.zeros(cat.n, dtype=bool)
    seq, times, ys = [], [], []
    for k in range(budget):
        t0 = time.perf_counter()
        if k < initial:
            cand = np.flatnonzero(~tried)
            i = int(rng.choice(cand))
        else:
            est = clone(opt.base_estimator_)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                est.fit(Xall[seq], np.array(ys))
                acq = _gaussian_acquisition(Xall, est, y_opt=float(np.min(ys)), acq_func="EI", acq_func_kwargs={"xi": 0.01})
            # skopt returns -EI (it minimises); untried only.
            acq = np.asarray(acq, dtype=float)
            acq[tried] = np.inf
            i = int(np.argmin(acq))
        times.append(time.perf_counter() - t0)
        tried[i] = True
        seq.append(i)
        ys.append(float(cat.y[i]))
    return seq, times, 0


def peer_skopt_gp_snap(cat: Catalogue, budget: int, seed: int, initial: int):
    from skopt import Optimizer
    from skopt.space import Categorical, Real

    dims = [
        Real(float(cat.lnodes.min()), float(cat.lnodes.max()), name="log2_nodes"),
        Real(float(cat.lvcpus.min()), float(cat.lvcpus.max()), name="log2_vcpus"),
        Categorical(FAMILIES, name="family"),
    ]
    opt = Optimizer(
        dims, base_estimator="GP", acq_func="EI", acq_optimizer="sampling", n_initial_points=initial, random_state=seed
    )
    tried = np.zeros(cat.n, dtype=bool)
    seq, times, snapped = [], [], 0
    for _ in range(budget):
        t0 = time.perf_counter()
        x = opt.ask()
        i = cat.snap(x[0], x[1], x[2], tried)
        snapped += not (np.isclose(x[0], cat.lnodes[i]) and np.isclose(x[1], cat.lvcpus[i]) and x[2] == FAMILIES[cat.fam[i]])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # tell() also fits the GP and optimises EI for the next ask: counted with the ask.
            opt.tell([float(cat.lnodes[i]), float(cat.lvcpus[i]), FAMILIES[cat.fam[i]]], float(cat.y[i]))
        times.append(time.perf_counter() - t0)
        tried[i] = True
        seq.append(i)
    return seq, times, snapped


def _optuna_loop(cat: Catalogue, budget: int, sampler):
    import optuna
    from optuna.distributions import CategoricalDistribution, IntDistribution
    from optuna.trial import TrialState, create_trial

    dists = {
        "nodes": IntDistribution(int(cat.w.nodes.min()), int(cat.w.nodes.max()), log=True),
        "vcpus": IntDistribution(int(cat.w.vcpus.min()), int(cat.w.vcpus.max()), log=True),
        "family": CategoricalDistribution(FAMILIES),
    }
    study = optuna.create_study(direction="minimize", sampler=sampler)
    tried = np.zeros(cat.n, dtype=bool)
    seq, times, snapped = [], [], 0
    for _ in range(budget):
        t0 = time.perf_counter()
        trial = study.ask(fixed_distributions=dists)
        p = trial.params
        i = cat.snap(math.log2(p["nodes"]), math.log2(p["vcpus"]), p["family"], tried)
        y = float(cat.y[i])
        params = {"nodes": int(cat.w.nodes[i]), "vcpus": int(cat.w.vcpus[i]), "family": FAMILIES[cat.fam[i]]}
        if params == p:
            study.tell(trial, y)
        else:
            # The proposal is not an untried catalogue config: record what was really run
            # and drop the proposal (FAIL trials are ignored by both samplers).
            study.tell(trial, state=TrialState.FAIL)
            study.add_trial(create_trial(params=params, distributions=dists, value=y))
            snapped += 1
        times.append(time.perf_counter() - t0)
        tried[i] = True
        seq.append(i)
    return seq, times, snapped


def peer_optuna_gp(cat: Catalogue, budget: int, seed: int, initial: int):
    import optuna

    return _optuna_loop(cat, budget, optuna.samplers.GPSampler(seed=seed, n_startup_trials=initial))


def peer_optuna_tpe(cat: Catalogue, budget: int, seed: int, initial: int):
    import optuna

    return _optuna_loop(cat, budget, optuna.samplers.TPESampler(seed=seed, n_startup_trials=initial))


PEER_FNS = {
    "skopt-gp": peer_skopt_gp,
    "skopt-gp-snap": peer_skopt_gp_snap,
    "optuna-gp": peer_optuna_gp,
    "optuna-tpe": peer_optuna_tpe,
    "random": peer_random,
}

# ---------------------------------------------------------------- replay and metrics


def normalized_trace(w: Workload, seq: list) -> list:
    """Normalised cost after k = 1..len(seq) evaluations (DESIGN 5): cheapest completed config
    seen so far over the table's cheapest completed; the worst completed ratio before any."""
    best = math.inf
    out = []
    for i in seq:
        if w.completed[i]:
            best = min(best, float(w.cost[i]))
        out.append((best if best < math.inf else w.worst) / w.optimum)
    return out


_WORKLOADS: list = []


def _init_worker(workloads):
    global _WORKLOADS
    _WORKLOADS = workloads
    _quiet()


def _quiet():
    warnings.filterwarnings("ignore")
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
    except ImportError:
        pass
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def _run_one(task):
    peer, widx, seed, budget, initial = task
    w = _WORKLOADS[widx]
    cat = Catalogue(w)
    b = min(budget, cat.n)
    seq, times, snapped = PEER_FNS[peer](cat, b, run_seed_init(peer, seed, widx), initial)
    if len(set(seq)) != len(seq):
        raise RuntimeError(f"{peer} repeated a configuration on {w.name} seed {seed}")
    return peer, widx, seed, seq, normalized_trace(w, seq), times, snapped


def percentile(xs, q):
    # numpy's default (linear interpolation between order statistics).
    return float(np.percentile(np.asarray(xs, dtype=float), q))


def row(traces: list, times: list, budget: int) -> dict:
    """The ROW of compare's summary.json (without `stop`: peers run the whole budget)."""
    nc, po = {}, {}
    for k in range(1, budget + 1):
        vals = [t[k - 1] for t in traces if len(t) >= k]
        if not vals:
            break
        nc[str(k)] = {"median": percentile(vals, 50), "p90": percentile(vals, 90)}
        po[str(k)] = float(np.mean([v <= 1.0 + 1e-12 for v in vals]))
    return {
        "normalized_cost_at": nc,
        "p_optimum_at": po,
        "stop": None,
        "ms_per_ask_median": percentile(times, 50) * 1000.0 if times else None,
        "runs": len(traces),
    }


def headline(r: dict) -> tuple:
    nc, po = r["normalized_cost_at"], r["p_optimum_at"]
    return (
        nc.get("10", {}).get("median"),
        nc.get("15", {}).get("p90"),
        po.get("15"),
        r.get("ms_per_ask_median"),
    )


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def table(rows: list) -> str:
    lines = [
        "| strategy | median norm. cost @10 | p90 norm. cost @15 | P(optimum) @15 | median ms per ask | snapped |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        m10, p15, po, ms = headline(r)
        snap = r.get("snapped_fraction")
        lines.append(
            f"| {name} | {fmt(m10, '.3f')} | {fmt(p15, '.3f')} | {fmt(po, '.2f')} | {fmt(ms, '.1f')} | {fmt(snap, '.0%')} |"
        )
    return "\n".join(lines)


def read_ours(path: Path) -> list:
    try:
        doc = json.loads(path.read_text())
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e}") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: line {e.lineno}: invalid JSON: {e.msg}") from None
    agg = doc.get("aggregate") if isinstance(doc, dict) else None
    if not isinstance(agg, list):
        raise DataError(f"{path}: field `aggregate`: expected a list (cherrypick.compare/1 summary.json)")
    out = []
    for n, a in enumerate(agg):
        if not isinstance(a, dict) or "strategy" not in a or "normalized_cost_at" not in a:
            raise DataError(f"{path}: aggregate[{n}]: expected `strategy` and `normalized_cost_at`")
        out.append((f"cherrypick {a['strategy']}", a))
    wl = sorted({r.get("workload") for r in doc.get("results", []) if isinstance(r, dict)})
    note = f"ours: {path} (seeds {doc.get('seeds')}, budget {doc.get('budget')}, {len(wl)} workloads)"
    return out, note, wl


def versions() -> dict:
    v = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("scipy", "sklearn", "skopt", "optuna", "torch"):
        try:
            v[mod] = __import__(mod).__version__
        except ImportError:
            v[mod] = None
    return v


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, help="Scout folder holding dataset/ (default $CHERRYPICK_DATA_DIR/scout)")
    ap.add_argument("--workloads", default="all", help="all, or comma-separated workload keys")
    ap.add_argument("--peers", default=",".join(DEFAULT_PEERS), help=f"comma-separated, from {','.join(ALL_PEERS)}")
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--budget", type=int, default=30)
    ap.add_argument("--initial", type=int, default=3, help="random points before the model (default 3, as CherryPick)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (each single-threaded)")
    ap.add_argument("--ours", type=Path, help="cherrypick compare summary.json to print beside the peers")
    ap.add_argument("--out", type=Path, help="write peers.json and peers.md here")
    args = ap.parse_args(argv)

    try:
        peers = [p for p in args.peers.split(",") if p]
        for p in peers:
            if p not in PEER_FNS:
                raise DataError(f"--peers: unknown peer `{p}` (known: {', '.join(ALL_PEERS)})")
        if args.seeds < 1 or args.budget < 1 or args.initial < 1 or args.jobs < 1:
            raise DataError("--seeds, --budget, --initial and --jobs must be positive")
        data_dir = args.data_dir or default_data_dir()
        workloads = load_scout(data_dir)
        if args.workloads != "all":
            want = args.workloads.split(",")
            known = {w.name for w in workloads}
            for name in want:
                if name not in known:
                    raise DataError(f"--workloads: unknown workload `{name}` (known: {', '.join(sorted(known))})")
            workloads = [w for w in workloads if w.name in want]
        ours, ours_note, ours_wl = read_ours(args.ours) if args.ours else ([], None, [])
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    tasks = [(p, wi, s, args.budget, args.initial) for p in peers for wi in range(len(workloads)) for s in range(1, args.seeds + 1)]
    print(
        f"peers: {len(workloads)} workloads x {args.seeds} seeds x {len(peers)} peers, budget {args.budget}, "
        f"{args.jobs} job(s), data {data_dir}",
        file=sys.stderr,
    )
    results = {p: {wi: [] for wi in range(len(workloads))} for p in peers}
    started = time.time()
    done = 0
    if args.jobs == 1:
        _init_worker(workloads)
        it = map(_run_one, tasks)
        pool = None
    else:
        pool = ProcessPoolExecutor(max_workers=args.jobs, initializer=_init_worker, initargs=(workloads,))
        it = pool.map(_run_one, tasks, chunksize=1)
    try:
        for peer, wi, seed, seq, trace, times, snapped in it:
            results[peer][wi].append({"seed": seed, "seq": seq, "trace": trace, "times": times, "snapped": snapped})
            done += 1
            if done % max(1, len(tasks) // 20) == 0:
                print(f"  {done}/{len(tasks)} runs, {time.time() - started:.0f} s", file=sys.stderr)
    finally:
        if pool is not None:
            pool.shutdown()

    doc = {
        "format": "cherrypick.peers/1",
        "dataset": "scout",
        "seeds": args.seeds,
        "budget": args.budget,
        "initial": args.initial,
        "workloads": [w.name for w in workloads],
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "wall_s": round(time.time() - started, 1),
        "jobs": args.jobs,
        "versions": versions(),
        "command": "peers.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "results": [],
        "aggregate": [],
    }
    peer_rows = []
    for p in peers:
        all_tr, all_t = [], []
        for wi, w in enumerate(workloads):
            runs = results[p][wi]
            tr = [r["trace"] for r in runs]
            tt = [t for r in runs for t in r["times"]]
            all_tr += tr
            all_t += tt
            doc["results"].append({"workload": w.name, "strategy": p, "optimum_cost": w.optimum, **row(tr, tt, args.budget)})
        agg = {"strategy": p, **row(all_tr, all_t, args.budget)}
        # Share of evaluations whose proposal was not an untried catalogue config.
        n_snap = sum(r["snapped"] for wi in results[p] for r in results[p][wi])
        agg["snapped_fraction"] = n_snap / max(1, sum(len(r["seq"]) for wi in results[p] for r in results[p][wi]))
        doc["aggregate"].append(agg)
        peer_rows.append((p, agg))

    md = [
        f"Scout, {len(workloads)} workloads x {args.seeds} seeds, budget {args.budget}, "
        f"{args.initial} initial random points; pooled over all runs ({doc['date_utc']} UTC).",
        "",
        table(ours + peer_rows),
    ]
    if ours_note:
        md.insert(1, ours_note)
        if ours_wl and ours_wl != sorted(w.name for w in workloads):
            md.insert(2, "WARNING: our summary covers other workloads than the peers: not comparable.")
    text = "\n".join(md)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "peers.json").write_text(json.dumps(doc, indent=1) + "\n")
        per = ["", "Per workload (median @10 / p90 @15 / P(opt) @15):", "", "| workload | " + " | ".join(peers) + " |",
               "|---|" + "---:|" * len(peers)]
        for w in workloads:
            cells = []
            for p in peers:
                r = next(x for x in doc["results"] if x["workload"] == w.name and x["strategy"] == p)
                m10, p15, po, _ = headline(r)
                cells.append(f"{fmt(m10, '.3f')} / {fmt(p15, '.3f')} / {fmt(po, '.2f')}")
            per.append(f"| {w.name} | " + " | ".join(cells) + " |")
        (args.out / "peers.md").write_text(text + "\n" + "\n".join(per) + "\n")
        print(f"wrote {args.out / 'peers.json'} and {args.out / 'peers.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
