#!/usr/bin/env bash
# "make bench": the comparison run, the loader against mdb_load, and
# snapshot swaps under load, gathered into bench/results/REPORT.md.
#
#   bench/all.sh                                   # about 30 minutes
#   LOADER_NS=1000000 SNAP_KEYS="100000 1000000" bench/all.sh

set -euo pipefail
cd "$(dirname "$0")/.."

LOADER_NS=${LOADER_NS:-"1000000 10000000"}
R=bench/results

bench/compare.sh
for n in $LOADER_NS; do N=$n bench/loader.sh; done
KEYS=1000000 bench/snapshot.sh

{
    echo
    echo "## The loader against mdb_load"
    for n in $LOADER_NS; do sed -e 1d -e 's/^# /### /' "$R/loader-$n.md"; done
    echo
    echo "## Snapshot swaps under load (1M keys)"
    sed -e 1d -e 's/^# /### /' "$R/snapshot.md"
} >> "$R/REPORT.md"

echo "wrote $R/REPORT.md and $R/compare.png"
