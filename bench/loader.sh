#!/usr/bin/env bash
# Loader benchmark: pred-snapshot build against mdb_load (lmdb-utils) on the
# same records, in the same run: wall time and peak memory.
#
#   bench/loader.sh                  # 1M records
#   N=10000000 bench/loader.sh       # 10M: shows the memory bound (--memory)

set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
MEMORY=${MEMORY:-512M}
LOADER=$PWD/build/pred-snapshot
WORK=$PWD/bench/work-loader
OUT=$PWD/bench/results/loader-$N.md

[ -x "$LOADER" ] || { echo "run make first" >&2; exit 1; }
command -v mdb_load >/dev/null || { echo "install lmdb-utils" >&2; exit 1; }

rm -rf "$WORK"
mkdir -p "$WORK/snaps" "$(dirname "$OUT")"

echo "# generating $N records"
bench/gen-jsonl.pl "$N" 3 > "$WORK/in.jsonl"
# the same records for mdb_load -T: a key line, then its value line
perl -ne 'print "$1\n$2\n" if /^\{"key":"([^"]*)","value":(.*)\}$/' \
    "$WORK/in.jsonl" > "$WORK/in.txt"

# measure NAME CMD...: wall seconds and peak RSS, appended to $WORK/times
measure() {
    local name=$1; shift
    /usr/bin/time -f "$name %e %M" -a -o "$WORK/times" "$@" >/dev/null
}

: > "$WORK/times"
measure pred-snapshot "$LOADER" build "$WORK/snaps" --quiet --version b \
    --input "$WORK/in.jsonl" --memory "$MEMORY"

# Debian's mdb_load (LMDB 0.9.24) has no map size option and no append
# mode: a dump header creates the file with room, then -T loads the pairs
printf 'VERSION=3\nformat=bytevalue\ntype=btree\nmapsize=%d\nHEADER=END\nDATA=END\n' \
    $((N * 600 + 67108864)) | mdb_load -n "$WORK/mdb_load.mdb"
measure mdb_load mdb_load -T -n -s data -f "$WORK/in.txt" "$WORK/mdb_load.mdb"

ours=$("$LOADER" info "$WORK/snaps/snap-b.mdb" | awk '/^entries:/ { print $2 }')
theirs=$(mdb_stat -n -s data "$WORK/mdb_load.mdb" | awk '/Entries:/ { print $2 }')
[ "$ours" = "$N" ] && [ "$theirs" = "$N" ] \
    || { echo "entry counts differ: $ours, $theirs, expected $N" >&2; exit 1; }

read -r _ p_s p_kb < <(grep '^pred-snapshot ' "$WORK/times")
read -r _ m_s m_kb < <(grep '^mdb_load ' "$WORK/times")

cat > "$OUT" <<_EOR_
# Loader benchmark: $N records

Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo).
Input: $N records in random key order, values about 110 bytes
($(du -m "$WORK/in.jsonl" | cut -f1) MB of JSON Lines).
Command: \`N=$N MEMORY=$MEMORY bench/loader.sh\`

| loader | wall s | peak RSS MB | file MB |
|---|---:|---:|---:|
| pred-snapshot build (all validation, sort, MDB_APPEND, --memory $MEMORY) | $p_s | $((p_kb / 1024)) | $(du -m "$WORK/snaps/snap-b.mdb" | cut -f1) |
| mdb_load -T (random puts; no append mode in Debian's 0.9.24) | $m_s | $((m_kb / 1024)) | $(du -m "$WORK/mdb_load.mdb" | cut -f1) |

pred-snapshot is $(awk -v a="$m_s" -v b="$p_s" 'BEGIN { printf "%.1f", a / b }')x faster.
_EOR_

cat "$OUT"
rm -rf "$WORK"
