#!/usr/bin/env bash
# Bulk writes benchmark: updates per second through POST PREFIX/bulk on one
# worker (10,000-line bodies, one connection, back to back), without and
# with the zone's writes journaled (state=), and snapshot lookups with and
# without a stream of 100,000 updates per second beside them (10 bodies a
# second on one connection).
#
# nginx runs one worker pinned to core 0, wrk on core 1; medians of ROUNDS.
#
#   bench/bulk.sh                 # 3 rounds of 10 s
#   bench/bulk.sh --smoke         # 1 round of 2 s

set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --smoke ]; then
    ROUNDS=${ROUNDS:-1} DURATION=${DURATION:-2}
    export ROUNDS DURATION
fi

KEYS=${KEYS:-100000}
LINES=${LINES:-10000}
PORT=${PORT:-18497}
WORK=$PWD/bench/work-bulk
OUT=${OUT:-$WORK/bulk.md}

. bench/lib.sh

rm -rf "$WORK"
mkdir -p "$WORK/snaps" "$WORK/logs" "$(dirname "$OUT")"

echo "# generating $KEYS snapshot records and a $LINES-line bulk body"
bench/gen-jsonl.pl "$KEYS" 1 > "$WORK/v1.jsonl"
"$LOADER" build "$WORK/snaps" --quiet --version v1 --input "$WORK/v1.jsonl"
"$LOADER" publish "$WORK/snaps" v1 > /dev/null
# the body: upserts of snapshot keys, with a ttl on one in ten, and deletes
# of other keys (a lookup of a deleted key would be a 404: no model here)
perl -e 'my ($n, $k) = @ARGV; srand(7);
    for my $i (1 .. $n) {
        my $key = sprintf "user_%07d", int rand $k;
        if ($i % 20 == 0) { print qq({"key":"gone_$i","delete":true}\n); next }
        printf qq({"key":"%s","value":{"score":%.6f,"clicks_1h":%d}%s}\n),
               $key, rand(), int rand 100, $i % 10 ? "" : q(,"ttl":"10m");
    }' "$LINES" "$KEYS" > "$WORK/bulk.jsonl"
rm -f "$WORK/v1.jsonl"

mkdir -p "$WORK/state"

# $1: more parameters of the zone
start_nginx() {
    cat > "$WORK/nginx.conf" <<_EOC_
load_module $MODULE;
$(nginx_main "$WORK" 01)
http {
    access_log off;
    pred_snapshot_path main $WORK/snaps;
    pred_cache_zone zone=hot:256m ttl=1h $1;
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        pred_cache hot;
        pred_snapshot main;
        location = /predict { pred_key \$arg_id; pred; }
        location /admin/ { pred_admin; }
    }
}
_EOC_

    "$NGINX" -p "$WORK/" -c "$WORK/nginx.conf"
    sleep 0.5

    curl -sf --data-binary @"$WORK/bulk.jsonl" \
        "http://127.0.0.1:$PORT/admin/bulk" > "$WORK/first.json" \
        || { echo "bulk failed" >&2; cat "$WORK/logs/error.log"; exit 1; }
    grep -q "\"applied\":$LINES," "$WORK/first.json" \
        || { echo "bulk answered: $(cat "$WORK/first.json")" >&2; exit 1; }

    worker=$(worker_of "$WORK")
}

stop_nginx() {
    "$NGINX" -p "$WORK/" -c "$WORK/nginx.conf" -s stop 2>/dev/null || true
    for _ in $(seq 50); do
        [ -f "$WORK/logs/nginx.pid" ] || break
        sleep 0.1
    done
}

trap stop_nginx EXIT
export BULK_FILE=$WORK/bulk.jsonl

# journaled: the zone's writes go to state files (checkpoints included)
start_nginx "state=$WORK/state/hot.state"
BULK_DELAY_MS=0 CONNS=1 rounds "/admin/bulk@bench/bulk-post.lua"
state_rps=$m_rps_0 state_p50=$m_p50_0 state_p99=$m_p99_0 state_cus=$m_cus_0
state_updates=$(awk -v r="$state_rps" -v n="$LINES" \
                    'BEGIN { printf "%.0f", r * n }')
state_bytes=$(du -sb "$WORK/state" | cut -f1)
stop_nginx

start_nginx ""

# bulk alone: one connection, back to back
BULK_DELAY_MS=0 CONNS=1 rounds "/admin/bulk@bench/bulk-post.lua"
bulk_rps=$m_rps_0 bulk_p50=$m_p50_0 bulk_p99=$m_p99_0 bulk_cus=$m_cus_0
updates=$(awk -v r="$bulk_rps" -v n="$LINES" 'BEGIN { printf "%.0f", r * n }')

# lookups alone, then beside 10 bodies a second (100,000 updates/s)
rounds /predict
look_rps=$m_rps_0 look_p99=$m_p99_0
BULK_DELAY_MS=100 rounds \
    "/admin/bulk@bench/bulk-post.lua mixed=/predict"
beside_rps=$m_rps_0 beside_p99=$m_p99_0

cat > "$OUT" <<_EOR_
# Bulk writes benchmark

$(machine)
nginx: 1 worker pinned to core 0; wrk on core 1.
Bodies of $LINES lines (95% upserts of 2-field values, one in ten with its
own ttl, 5% deletes) into a 256m zone; lookups of $KEYS snapshot keys at
random, $CONNS connections. $ROUNDS rounds of ${DURATION}s; medians.
Command: \`ROUNDS=$ROUNDS DURATION=$DURATION bench/bulk.sh\`

| | req/s | updates/s | p50 ms | p99 ms | worker CPU us/req |
|---|---:|---:|---:|---:|---:|
| bulk alone (1 connection) | $bulk_rps | $updates | $bulk_p50 | $bulk_p99 | $bulk_cus |
| bulk alone, state= (journaled) | $state_rps | $state_updates | $state_p50 | $state_p99 | $state_cus |
| lookups alone | $look_rps | | | $look_p99 | |
| lookups beside 100,000 updates/s | $beside_rps | | | | |

Lookups beside the stream: $(ratio "$beside_rps" "$look_rps") of their
req/s alone. Journaled (state=): $(ratio "$state_rps" "$bulk_rps") of the
updates/s without it; $state_bytes bytes of state files at the end.
Target: >= 100,000 updates/s on one worker.
_EOR_

cat "$OUT"
