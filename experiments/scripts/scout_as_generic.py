#!/usr/bin/env python3
"""Writes Scout's recorded runs as generic CSV v1, with the configuration spelled by the columns
asked for, to measure whether a strategy depends on how a catalogue is written down.

    python3 experiments/scripts/scout_as_generic.py --columns vm_type,vcpus,memory_gib \\
        --out out/scout-named.csv
    cherrypick compare --dataset out/scout-named.csv --failed-runtime 7200 --seeds 50

Reads `$CHERRYPICK_DATA_DIR/scout/scout_osr_multiple_nodes_flat.csv` (default: the datasets folder
beside the repository, `../shared/datasets`).
A failed run is written with `completed=false` and no cost; `nodes` and `price_per_node_hour` are
always written (the loader prices a configuration whose only run failed from them, and so they
are features too, as in any generic CSV).
"""

import argparse
import csv
import os
import sys

COLUMNS = {
    "vm_type": lambda r, n, v, m: r["vm_type"],
    "family": lambda r, n, v, m: r["family"],
    "size": lambda r, n, v, m: r["size"],
    "vcpus": lambda r, n, v, m: v,
    "memory_gib": lambda r, n, v, m: m,
    "memory_per_vcpu": lambda r, n, v, m: m / v,
    "total_vcpus": lambda r, n, v, m: n * v,
    "total_memory_gib": lambda r, n, v, m: n * m,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--columns",
        required=True,
        help="comma-separated feature columns besides nodes and price_per_node_hour: "
        + ", ".join(COLUMNS),
    )
    parser.add_argument("--out", required=True, help="CSV file to write (must not exist)")
    args = parser.parse_args()
    columns = [c for c in args.columns.split(",") if c]
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown:
        sys.exit(f"--columns: unknown {', '.join(unknown)} (known: {', '.join(COLUMNS)})")
    repository = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    default = os.path.join(repository, "..", "shared", "datasets")
    data = os.environ.get("CHERRYPICK_DATA_DIR", default)
    source = os.path.join(data, "scout", "scout_osr_multiple_nodes_flat.csv")
    if os.path.exists(args.out):
        sys.exit(f"{args.out}: exists; not overwritten")
    try:
        with open(source, newline="") as f:
            runs = list(csv.DictReader(f))
    except OSError as e:
        sys.exit(f"{source}: {e.strerror} (set CHERRYPICK_DATA_DIR to the datasets folder)")
    folder = os.path.dirname(args.out)
    if folder:
        os.makedirs(folder, exist_ok=True)
    with open(args.out, "x", newline="") as f:
        out = csv.writer(f)
        out.writerow(
            ["workload", "config", "runtime_s", "completed", "nodes", "price_per_node_hour"]
            + columns
        )
        for line, r in enumerate(runs, start=2):
            try:
                n = int(r["nodes"])
                v = float(r["vcpus_per_node"])
                m = float(r["mem_gib_per_node"])
                price = float(r["price_usd_per_node_hour_bboarena"])
                done = r["completed"] == "True"
                runtime = r["elapsed_time_s"] if done else ""
            except (KeyError, ValueError) as e:
                sys.exit(f"{source}: line {line}: {e}")
            out.writerow(
                [r["workload_key"], f"{n}_{r['vm_type']}", runtime, str(done).lower(), n, price]
                + [COLUMNS[c](r, n, v, m) for c in columns]
            )


if __name__ == "__main__":
    main()
