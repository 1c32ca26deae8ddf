#!/usr/bin/env bash
# Multi-key and shaping benchmark, in one run:
#   - 10-key batch requests against single-key requests, in keys per second
#   - a filtered 100-candidate list against the same list unfiltered
#
# nginx: 1 worker on core 0; wrk on core 1.  Variants alternate; medians.
#
#   bench/shaping.sh
#   ROUNDS=1 DURATION=3 bench/shaping.sh

set -euo pipefail
cd "$(dirname "$0")/.."

KEYS=${KEYS:-100000}
LIST_KEYS=${LIST_KEYS:-10000}
PORT=${PORT:-18495}
WORK=$PWD/bench/work-shaping
OUT=$PWD/bench/results/shaping.md


. bench/lib.sh

rm -rf "$WORK"
mkdir -p "$WORK/keys" "$WORK/lists" "$WORK/logs" "$(dirname "$OUT")"

echo "# generating $KEYS values and $LIST_KEYS 100-item lists"
bench/gen-jsonl.pl "$KEYS" 1 > "$WORK/keys.jsonl"
bench/gen-lists.pl "$LIST_KEYS" 1 > "$WORK/lists.jsonl"
"$LOADER" build "$WORK/keys" --quiet --version k --input "$WORK/keys.jsonl"
"$LOADER" publish "$WORK/keys" k > /dev/null
"$LOADER" build "$WORK/lists" --quiet --version l --input "$WORK/lists.jsonl"
"$LOADER" publish "$WORK/lists" l > /dev/null

cat > "$WORK/nginx.conf" <<_EOC_
load_module $MODULE;
$(nginx_main "$WORK" 01)
http {
    access_log off;
    pred_snapshot_path keys $WORK/keys;
    pred_snapshot_path lists $WORK/lists;
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        location = /predict { pred_key \$arg_id; pred_snapshot keys; pred; }
        location = /batch {
            pred_key \$arg_keys;
            pred_snapshot keys;
            pred_batch on;
            pred;
        }
        location = /reco {
            pred_key \$arg_id;
            pred_snapshot lists;
            pred_filter on;
            pred;
        }
    }
}
_EOC_

"$NGINX" -p "$WORK/" -c "$WORK/nginx.conf"
trap '"$NGINX" -p "$WORK/" -c "$WORK/nginx.conf" -s stop 2>/dev/null || true' EXIT
sleep 0.5

worker=$(worker_of "$WORK")

filter='&where=category:c3&min_score=0.2&exclude=i00001,i00002&limit=10&fields=id,score'
curl -sf "http://127.0.0.1:$PORT/reco?id=user_0000001$filter" > /dev/null

export NBATCH=10
rounds /predict /batch@bench/batch-keys.lua
single_rps=$m_rps_0 single_p99=$m_p99_0 single_cus=$m_cus_0
batch_rps=$m_rps_1 batch_p99=$m_p99_1 batch_cus=$m_cus_1

SINGLE_KEYS=$KEYS
KEYS=$LIST_KEYS
BENCH_QUERY='' rounds /reco@bench/query-key.lua
plain_rps=$m_rps_0 plain_p99=$m_p99_0 plain_cus=$m_cus_0
BENCH_QUERY=$filter rounds /reco@bench/query-key.lua
filt_rps=$m_rps_0 filt_p99=$m_p99_0 filt_cus=$m_cus_0

cat > "$OUT" <<_EOR_
# Multi-key and shaping benchmark

$(machine)
nginx: 1 worker pinned to core 0; wrk: 1 thread, $CONNS connections, core 1.
$ROUNDS rounds of ${DURATION}s per variant; medians.
Command: \`ROUNDS=$ROUNDS DURATION=$DURATION bench/shaping.sh\`

Snapshot lookups only: a $SINGLE_KEYS-key snapshot of ~110-byte values, and
a $LIST_KEYS-key snapshot of 100-item candidate lists (~5 KB each).

| variant | req/s | keys/s | p99 ms | worker CPU us/req |
|---|---:|---:|---:|---:|
| single-key GET | $single_rps | $single_rps | $single_p99 | $single_cus |
| 10-key batch GET | $batch_rps | $(awk -v r="$batch_rps" 'BEGIN { printf "%.0f", r * 10 }') | $batch_p99 | $batch_cus |
| 100-item list, unfiltered | $plain_rps | | $plain_p99 | $plain_cus |
| same list, where+min_score+exclude+limit+fields | $filt_rps | | $filt_p99 | $filt_cus |

- 10-key batch / single requests: $(awk -v b="$batch_rps" -v s="$single_rps" 'BEGIN { printf "%.2f", b * 10 / s }')x the keys per second
- filtered / unfiltered list: $(ratio "$filt_rps" "$plain_rps") req/s, $(ratio "$filt_cus" "$plain_cus") worker CPU per request

Filter used: \`$filter\`
_EOR_

cat "$OUT"
