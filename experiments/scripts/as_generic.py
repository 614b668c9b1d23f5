#!/usr/bin/env python3
"""Writes a shared dataset's recorded runs as generic CSV v1, with each configuration spelled by
the columns asked for, to measure whether a strategy depends on how a catalogue is written down.

    python3 experiments/scripts/as_generic.py --dataset scout --columns vm_type,vcpus,memory_gib \\
        --out out/scout-named.csv
    cherrypick compare --dataset out/scout-named.csv --failed-runtime 7200 --seeds 50

Reads `$CHERRYPICK_DATA_DIR` (default: the datasets folder beside the repository,
`../shared/datasets`): Scout's `scout/scout_osr_multiple_nodes_flat.csv`, or CherryPick's
`cherrypick/CP_*.csv` (16-core clusters dropped and disks priced as the cherrypick loader does).
A failed run is written with `completed=false` and no runtime; `nodes` and `price_per_node_hour`
are always written (the loader prices a configuration whose only run failed from them), so they
are columns of the catalogue like every other.
"""

import argparse
import csv
import glob
import os
import sys


def scout(data):
    """Scout's runs: (workload, config, runtime or None, nodes, price per node-hour, columns)."""
    source = os.path.join(data, "scout", "scout_osr_multiple_nodes_flat.csv")
    for line, r in enumerate(read(source), start=2):
        try:
            n = int(r["nodes"])
            v = float(r["vcpus_per_node"])
            m = float(r["mem_gib_per_node"])
            price = float(r["price_usd_per_node_hour_bboarena"])
            runtime = r["elapsed_time_s"] if r["completed"] == "True" else None
        except (KeyError, ValueError) as e:
            sys.exit(f"{source}: line {line}: {e}")
        yield r["workload_key"], f"{n}_{r['vm_type']}", runtime, n, price, {
            "vm_type": r["vm_type"],
            "family": r["family"],
            "size": r["size"],
            "vcpus": v,
            "memory_gib": m,
            "memory_per_vcpu": m / v,
            "total_vcpus": n * v,
            "total_memory_gib": n * m,
        }


def cherrypick(data):
    """CherryPick's runs, as the cherrypick loader reads them (16-core clusters dropped)."""
    sources = sorted(glob.glob(os.path.join(data, "cherrypick", "CP_*.csv")))
    if not sources:
        sys.exit(f"{os.path.join(data, 'cherrypick')}: no CP_*.csv files")
    for source in sources:
        for line, r in enumerate(read(source), start=2):
            try:
                n = int(r["num_machines"])
                c = int(r["cpu_count"])
                ram = float(r["ram"])
                disk = float(r["disk_cost"]) * float(r["disk_size"]) / 720.0
                price = float(r["vm_cost"]) + disk
                runtime = r["time"]
            except (KeyError, ValueError) as e:
                sys.exit(f"{source}: line {line}: {e}")
            if n * c == 16:
                continue
            config = f"{n}_{r['vm_name']}_{r['disk_name']}"
            yield r["exp_name"], config, runtime, n, price, {
                "vm_type": r["vm_name"],
                "disk": r["disk_name"],
                "vcpus": c,
                "memory_gib": ram,
                "memory_per_vcpu": ram / c,
                "vm_speed": r["vm_speed"],
                "disk_speed": r["disk_speed"],
                "total_vcpus": n * c,
                "total_memory_gib": n * ram,
            }


DATASETS = {"scout": scout, "cherrypick": cherrypick}
COLUMNS = {
    "scout": "vm_type, family, size, vcpus, memory_gib, memory_per_vcpu, total_vcpus, "
    "total_memory_gib",
    "cherrypick": "vm_type, disk, vcpus, memory_gib, memory_per_vcpu, vm_speed, disk_speed, "
    "total_vcpus, total_memory_gib",
}


def read(path):
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError as e:
        sys.exit(f"{path}: {e.strerror} (set CHERRYPICK_DATA_DIR to the datasets folder)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    parser.add_argument(
        "--columns",
        required=True,
        help="comma-separated columns besides nodes and price_per_node_hour; scout: "
        + COLUMNS["scout"]
        + "; cherrypick: "
        + COLUMNS["cherrypick"],
    )
    parser.add_argument("--out", required=True, help="CSV file to write (must not exist)")
    args = parser.parse_args()
    columns = [c for c in args.columns.split(",") if c]
    known = COLUMNS[args.dataset].split(", ")
    unknown = [c for c in columns if c not in known]
    if unknown:
        sys.exit(f"--columns: unknown {', '.join(unknown)} (known: {', '.join(known)})")
    repository = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    default = os.path.join(repository, "..", "shared", "datasets")
    data = os.environ.get("CHERRYPICK_DATA_DIR", default)
    if os.path.exists(args.out):
        sys.exit(f"{args.out}: exists; not overwritten")
    runs = list(DATASETS[args.dataset](data))
    folder = os.path.dirname(args.out)
    try:
        if folder:
            os.makedirs(folder, exist_ok=True)
        with open(args.out, "x", newline="") as f:
            out = csv.writer(f)
            out.writerow(
                ["workload", "config", "runtime_s", "completed", "nodes", "price_per_node_hour"]
                + columns
            )
            for workload, config, runtime, nodes, price, values in runs:
                done = runtime is not None
                out.writerow(
                    [workload, config, runtime if done else "", str(done).lower(), nodes, price]
                    + [values[c] for c in columns]
                )
    except OSError as e:
        sys.exit(f"{e.filename or args.out}: {e.strerror}")


if __name__ == "__main__":
    main()
