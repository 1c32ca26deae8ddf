#!/usr/bin/env bash
# "make bench": the comparison run, the loader against mdb_load, snapshot
# swaps under load, the per hot path profiles, the model cascade against
# a single call, the cost of a canary and bulk writes, gathered into
# bench/results/REPORT.md.
#
# Knobs (environment; the scripts' own knobs pass through to them, see the
# top of bench/compare.sh, bench/lib.sh, bench/profile.sh and
# bench/cascade.sh):
#   LOADER_NS="1000000 10000000"   bench/loader.sh's record counts
#   SWAP_KEYS=1000000              the snapshot of bench/snapshot.sh
#   PROFILE=1                      0: skip bench/profile.sh
#
#   bench/all.sh                                   # about an hour
#   KEYS=20000 SNAP_KEYS=20000 SHM_SIZES="2000 20000" SHM_KEYS=20000 \
#       N=500 ROUNDS=2 DURATION=2 LOADER_NS=100000 SWAP_KEYS=20000 \
#       SWAP_SECONDS=5 bench/all.sh                # a few minutes

set -euo pipefail
cd "$(dirname "$0")/.."

LOADER_NS=${LOADER_NS:-"1000000 10000000"}
SWAP_KEYS=${SWAP_KEYS:-1000000}
PROFILE=${PROFILE:-1}
R=bench/results

# bench/loader.sh takes its record count from N, which is also
# bench/profile.sh's request count
profile_n=${N:-}
unset N

OUT_DIR=$PWD/$R bench/compare.sh
for n in $LOADER_NS; do N=$n bench/loader.sh; done
KEYS=$SWAP_KEYS bench/snapshot.sh
if [ "$PROFILE" = 1 ]; then
    N=${profile_n:-2000} OUT=$PWD/$R/profile.md bench/profile.sh
fi
# its keys cost nothing (no data, every request a miss), and a small key
# space would let single-flight merge requests: 10M whatever KEYS is
KEYS=10000000 OUT=$PWD/$R/cascade.md bench/cascade.sh
KEYS=$SWAP_KEYS OUT=$PWD/$R/canary.md bench/canary.sh
OUT=$PWD/$R/bulk.md bench/bulk.sh

# each report as it was written, its headings one level down
{
    for n in $LOADER_NS; do echo; sed 's/^#/##/' "$R/loader-$n.md"; done
    echo
    sed 's/^#/##/' "$R/snapshot.md"
    if [ "$PROFILE" = 1 ]; then
        echo
        sed 's/^#/##/' "$R/profile.md"
    fi
    echo
    sed 's/^#/##/' "$R/cascade.md"
    echo
    sed 's/^#/##/' "$R/canary.md"
    echo
    sed 's/^#/##/' "$R/bulk.md"
} >> "$R/REPORT.md"

echo "wrote $R/REPORT.md and $R/compare.png"
