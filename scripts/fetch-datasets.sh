#!/usr/bin/env bash
# Fetches the public recorded-run datasets replay and compare read, from their public git
# repositories, with a shallow sparse checkout of only the files used, at pinned commits; then
# checks what it got. The result is the layout $CHERRYPICK_DATA_DIR expects:
#   DIR/scout/dataset/osr_multiple_nodes/<run>/report.json  + DIR/scout/LICENSE   (MIT)
#   DIR/cherrypick/CP_<workload>.csv                                             (licence unclear)
#
# usage: scripts/fetch-datasets.sh [--into DIR] [scout] [cherrypick]     (default: both, DIR=data)
# env (for mirrors and tests): SCOUT_REPO, SCOUT_REV, CHERRYPICK_REPO, CHERRYPICK_REV
# Needs git 2.27 or newer (sparse checkout with --filter). Read README.md's "Recorded runs"
# before using the CherryPick data: its licence is unclear; do not redistribute it.
set -euo pipefail

scout_repo=${SCOUT_REPO:-https://github.com/oxhead/scout.git}
scout_rev=${SCOUT_REV:-3fcdd97674c57a373de55bfbff17fbddaf85946d}
# CherryPick's runs as flat CSVs (joins of the authors' experiments.db, in
# github.com/harvard-cns/cherrypick spearmint/examples/cherrypick/data/).
cherrypick_repo=${CHERRYPICK_REPO:-https://github.com/marialcasimiro/Lynceus-ICDCS.git}
cherrypick_rev=${CHERRYPICK_REV:-c5f83fc8d0a4fe57cc4724c1ebce725d605f0a0a}
cherrypick_workloads=(kmeans spark terasort tpcds tpch)

into=data
which=()
while [ $# -gt 0 ]; do
    case $1 in
        --into) into=${2:?--into needs a folder}; shift 2 ;;
        scout | cherrypick) which+=("$1"); shift ;;
        -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "fetch-datasets: unknown argument \`$1\`" >&2; exit 2 ;;
    esac
done
[ ${#which[@]} -eq 0 ] && which=(scout cherrypick)
command -v git >/dev/null || { echo "fetch-datasets: git is not installed" >&2; exit 2; }
mkdir -p "$into"

fail() { echo "fetch-datasets: $*" >&2; exit 1; }

# sparse_fetch REPO REV CHECKOUT_DIR PATTERN...: a shallow, blob-less clone of one commit with
# only PATTERN's files checked out.
sparse_fetch() {
    local repo=$1 rev=$2 dir=$3
    shift 3
    rm -rf "$dir"
    git init -q "$dir"
    git -C "$dir" remote add origin "$repo"
    git -C "$dir" config core.sparseCheckout true
    git -C "$dir" sparse-checkout set --no-cone "$@"
    git -C "$dir" fetch -q --depth 1 --filter=blob:none origin "$rev" ||
        fail "cannot fetch $rev from $repo"
    git -C "$dir" checkout -q FETCH_HEAD || fail "cannot check out $rev of $repo"
}

fetch_scout() {
    local tmp=$into/.scout-checkout dest=$into/scout
    echo "scout: $scout_repo at $scout_rev (report.json files and LICENSE only)"
    sparse_fetch "$scout_repo" "$scout_rev" "$tmp" \
        '/LICENSE' '/dataset/osr_multiple_nodes/*/report.json'
    local runs=$tmp/dataset/osr_multiple_nodes
    [ -f "$tmp/LICENSE" ] || fail "scout: no LICENSE in $scout_repo"
    [ -d "$runs" ] || fail "scout: no dataset/osr_multiple_nodes in $scout_repo"
    local n=0 bad=0 f
    for f in "$runs"/*/report.json; do
        [ -e "$f" ] || continue
        n=$((n + 1))
        grep -q '"completed"' "$f" && grep -q '"elapsed_time"' "$f" || {
            echo "fetch-datasets: scout: $f lacks completed/elapsed_time" >&2
            bad=$((bad + 1))
        }
    done
    [ "$n" -gt 0 ] || fail "scout: no report.json under dataset/osr_multiple_nodes"
    [ "$bad" -eq 0 ] || fail "scout: $bad of $n report.json files are not Scout reports"
    rm -rf "$dest"
    mkdir -p "$dest/dataset"
    mv "$runs" "$dest/dataset/osr_multiple_nodes"
    mv "$tmp/LICENSE" "$dest/LICENSE"
    rm -rf "$tmp"
    echo "scout: $n runs in $dest (MIT licence: $dest/LICENSE)"
}

fetch_cherrypick() {
    local tmp=$into/.cherrypick-checkout dest=$into/cherrypick w
    local patterns=()
    for w in "${cherrypick_workloads[@]}"; do patterns+=("/data/cherrypick/CP_$w.csv"); done
    echo "cherrypick: $cherrypick_repo at $cherrypick_rev (CP_*.csv only)"
    sparse_fetch "$cherrypick_repo" "$cherrypick_rev" "$tmp" "${patterns[@]}"
    rm -rf "$dest"
    mkdir -p "$dest"
    for w in "${cherrypick_workloads[@]}"; do
        local f=$tmp/data/cherrypick/CP_$w.csv
        [ -f "$f" ] || fail "cherrypick: data/cherrypick/CP_$w.csv is not in $cherrypick_repo"
        head -n 1 "$f" | grep -q 'exp_name.*num_machines.*time.*vm_name.*vm_cost' ||
            fail "cherrypick: CP_$w.csv does not have the expected header"
        [ "$(wc -l <"$f")" -gt 1 ] || fail "cherrypick: CP_$w.csv has no rows"
        mv "$f" "$dest/"
    done
    rm -rf "$tmp"
    echo "cherrypick: ${#cherrypick_workloads[@]} workloads in $dest (licence unclear: do not redistribute)"
}

for d in "${which[@]}"; do "fetch_$d"; done
echo "done: export CHERRYPICK_DATA_DIR=$(cd "$into" && pwd)"
