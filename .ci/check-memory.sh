#!/usr/bin/env bash
# The workload crate calls libjpeg-turbo through its C API (workload/src/jpeg.rs). This runs the
# unit tests of that decoder and of the per-image transform under valgrind's memcheck, which
# fails on any invalid read or write, use after free or uninitialised jump: the one place where
# a mistake would not be caught by the compiler. About 30 s.
#
# usage: .ci/check-memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v valgrind >/dev/null; then
    echo "check-memory: valgrind missing (.ci/setup-workload-system.sh installs it)" >&2
    exit 2
fi
exe=$(cargo test -p workload --lib --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "workload":
        print(m["executable"])')
if [ -z "$exe" ]; then
    echo "check-memory: could not find the workload unit-test binary" >&2
    exit 2
fi
valgrind --error-exitcode=9 --quiet "$exe" --test-threads 1 jpeg:: transform::
echo "check-memory: passed"
