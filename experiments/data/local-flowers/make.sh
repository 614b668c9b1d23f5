#!/usr/bin/env bash
# Re-records ../local-flowers.csv: runs every configuration of space.toml 3 times with the local
# backend (3 full passes over the catalogue, each in a different order so that a slow spell of a
# shared machine does not land on one part of it), then exports the journals as generic CSV v1.
#   bash experiments/data/local-flowers/make.sh [path/to/cherrypick]   (default: a release build)
set -euo pipefail
cd "$(dirname "$0")/../../.."
bin="${1:-target/release/cherrypick}"
[ -x "$bin" ] || cargo build --release
work="out/local-flowers"
rm -rf "$work"
mkdir -p "$work"
space="experiments/data/local-flowers/space.toml"
n=$("$bin" search --space "$space" --backend local --dry-run | awk 'NR == 1 {print $2}')
for pass in 1 2 3; do
    # Pass 1 in catalogue order, passes 2 and 3 in seeded random orders; all visit every
    # configuration once (--no-stop: the stop rule must not cut a pass short).
    if [ "$pass" = 1 ]; then strategy=grid; else strategy=random; fi
    "$bin" search --space "$space" --backend local --strategy "$strategy" --seed "$pass" \
        --budget "$n" --no-stop --probe-timeout 300 --journal "$work/pass$pass.jsonl"
    "$bin" journal export "$work/pass$pass.jsonl" --csv "$work/pass$pass.csv" --workload flowers-600
done
{
    head -1 "$work/pass1.csv"
    for pass in 1 2 3; do tail -n +2 "$work/pass$pass.csv"; done
} > experiments/data/local-flowers.csv
echo "wrote experiments/data/local-flowers.csv ($(($(wc -l < experiments/data/local-flowers.csv) - 1)) runs)"
