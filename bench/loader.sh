#!/usr/bin/env bash
# Loader benchmark: pred-snapshot build against mdb_load (lmdb-utils) on the
# same records, in the same run, and against the disk: records/s, wall and
# CPU time, peak memory, and dd writing a file of the snapshot's size with
# one fdatasync at the end, as the build does.
#
#   bench/loader.sh                  # 1M records, 3 rounds
#   N=10000000 ROUNDS=1 bench/loader.sh
#
# pred-snapshot runs ROUNDS times on both cores (its parser and writer
# threads on the second) and ROUNDS times pinned to one core (taskset),
# alternating, each round with a dd; the table has medians and the range.
# mdb_load runs once: it is 10x slower.  Other work on the machine moves
# wall times: the CPU time and the load average are in the table to judge
# them by, and records per CPU second (user+sys of all threads) is what one
# core does when nothing else wants it.

set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
MEMORY=${MEMORY:-512M}
ROUNDS=${ROUNDS:-3}
CPU=${CPU:-0}
LOADER=$PWD/build/pred-snapshot
WORK=$PWD/bench/work-loader
OUT=$PWD/bench/results/loader-$N.md

[ -x "$LOADER" ] || { echo "run make first" >&2; exit 1; }
command -v mdb_load >/dev/null || { echo "install lmdb-utils" >&2; exit 1; }

rm -rf "$WORK"
mkdir -p "$WORK" "$(dirname "$OUT")"

echo "# generating $N records"
bench/gen-jsonl.pl "$N" 3 > "$WORK/in.jsonl"
# the same records for mdb_load -T: a key line, then its value line
perl -ne 'print "$1\n$2\n" if /^\{"key":"([^"]*)","value":(.*)\}$/' \
    "$WORK/in.jsonl" > "$WORK/in.txt"

# measure NAME CMD...: "NAME wall user sys peak-KB" appended to $WORK/times
measure() {
    local name=$1; shift
    /usr/bin/time -f "$name %e %U %S %M" -a -o "$WORK/times" "$@" >/dev/null
}

# build NAME [taskset ...]: one pred-snapshot build into a fresh folder
build() {
    local name=$1; shift
    rm -rf "$WORK/snaps"
    mkdir "$WORK/snaps"
    measure "$name" "$@" "$LOADER" build "$WORK/snaps" --quiet --version b \
        --input "$WORK/in.jsonl" --memory "$MEMORY"
}

# the disk: the snapshot's size through the page cache, one fdatasync
disk() {
    local mb s
    mb=$(( $(stat -c %s "$WORK/snaps/snap-b.mdb") / 1048576 + 1 ))
    s=$(dd if=/dev/zero of="$WORK/dd.bin" bs=1M count="$mb" conv=fdatasync \
            2>&1 | awk '/copied/ { print $(NF - 3) }')
    rm -f "$WORK/dd.bin"
    echo "dd $s $mb" >> "$WORK/disk"
}

: > "$WORK/times"
: > "$WORK/disk"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

for r in $(seq "$ROUNDS"); do
    echo "# round $r of $ROUNDS"
    build two-cores
    disk
    build one-core taskset -c "$CPU"
done

ours=$("$LOADER" info "$WORK/snaps/snap-b.mdb" | awk '/^entries:/ { print $2 }')
file_mb=$(du -m "$WORK/snaps/snap-b.mdb" | cut -f1)

# Debian's mdb_load (LMDB 0.9.24) has no map size option and no append
# mode: a dump header creates the file with room, then -T loads the pairs
echo "# mdb_load"
printf 'VERSION=3\nformat=bytevalue\ntype=btree\nmapsize=%d\nHEADER=END\nDATA=END\n' \
    $((N * 600 + 67108864)) | mdb_load -n "$WORK/mdb_load.mdb"
measure mdb_load mdb_load -T -n -s data -f "$WORK/in.txt" "$WORK/mdb_load.mdb"

theirs=$(mdb_stat -n -s data "$WORK/mdb_load.mdb" | awk '/Entries:/ { print $2 }')
[ "$ours" = "$N" ] && [ "$theirs" = "$N" ] \
    || { echo "entry counts differ: $ours, $theirs, expected $N" >&2; exit 1; }

load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# row NAME: a table row of records/s, wall and CPU seconds (median and range
# over the rounds) and peak RSS; sets ROW_S to the median wall seconds
row() {
    awk -v name="$1" -v n="$N" '
        BEGIN { k = 0 }
        $1 == name { w[k] = $2; c[k] = $3 + $4; m[k] = $5; k++ }
        function sort(a,   i, j, t) {
            for (i = 1; i < k; i++)
                for (j = i; j > 0 && a[j - 1] > a[j]; j--) {
                    t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
                }
        }
        END {
            sort(w); sort(c); sort(m)
            mid = int(k / 2)
            printf "%.0f | %.0f-%.0f | %.2f | %.2f-%.2f | %.2f | %.0f | %d\n",
                   n / w[mid], n / w[k - 1], n / w[0], w[mid], w[0],
                   w[k - 1], c[mid], n / c[mid], m[k - 1] / 1024
        }' "$WORK/times"
}

median_wall() {
    awk -v name="$1" '$1 == name { print $2 }' "$WORK/times" | sort -n \
        | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

two_s=$(median_wall two-cores)
one_s=$(median_wall one-core)
dd_s=$(awk '{ print $2 }' "$WORK/disk" | sort -n \
       | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
dd_range=$(awk '{ print $2 }' "$WORK/disk" | sort -n \
           | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "-" hi }')
dd_mb=$(awk 'END { print $3 }' "$WORK/disk")

cat > "$OUT" <<_EOR_
# Loader benchmark: $N records

Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo);
load average $load_before before, $load_after after (other work shares the cores).
Input: $N records in random key order, values about 110 bytes
($(du -m "$WORK/in.jsonl" | cut -f1) MB of JSON Lines).
Command: \`N=$N MEMORY=$MEMORY ROUNDS=$ROUNDS bench/loader.sh\`; medians of
$ROUNDS rounds, range after them; mdb_load once.

| loader | records/s | range | wall s | range | CPU s (user+sys) | records per CPU s | peak RSS MB |
|---|---:|---:|---:|---:|---:|---:|---:|
| pred-snapshot build, 2 cores (all validation, sort, MDB_APPEND, --memory $MEMORY) | $(row two-cores) |
| pred-snapshot build, 1 core (taskset -c $CPU) | $(row one-core) |
| mdb_load -T (random puts; no append mode in Debian's 0.9.24) | $(row mdb_load) |

Snapshot file: $file_mb MB; mdb_load's: $(du -m "$WORK/mdb_load.mdb" | cut -f1) MB.
The disk: dd of $dd_mb MB (the snapshot's size) with conv=fdatasync took
$dd_s s (range $dd_range s), $(awk -v m="$dd_mb" -v s="$dd_s" 'BEGIN { printf "%.0f", m / s }') MB/s: $(awk -v n="$N" -v s="$dd_s" 'BEGIN { printf "%.0f", n / s }') records/s if
writing were all the build did.  pred-snapshot takes $(awk -v a="$two_s" -v b="$dd_s" 'BEGIN { printf "%.1f", a / b }')x that time on 2
cores, $(awk -v a="$one_s" -v b="$dd_s" 'BEGIN { printf "%.1f", a / b }')x on 1.

pred-snapshot is $(awk -v a="$(median_wall mdb_load)" -v b="$two_s" 'BEGIN { printf "%.1f", a / b }')x faster than mdb_load (2 cores; $(awk -v a="$(median_wall mdb_load)" -v b="$one_s" 'BEGIN { printf "%.1f", a / b }')x on 1).
_EOR_

cat "$OUT"
rm -rf "$WORK"
