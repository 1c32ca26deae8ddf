#!/usr/bin/env bash
# Snapshot-tier benchmark: a snapshot hit against the ceiling, nginx's own
# "return 200" with a body of the same size, in one run; then snapshot
# swaps under load.
#
# nginx runs one worker pinned to core 0, wrk runs on core 1.  Variants
# alternate for ROUNDS rounds and the median of each is reported.
#
#   bench/snapshot.sh              # 1M keys, 3 rounds of 10 s, 30 s of swaps
#   KEYS=100000 ROUNDS=1 DURATION=3 SWAP_SECONDS=5 bench/snapshot.sh

set -euo pipefail
cd "$(dirname "$0")/.."

KEYS=${KEYS:-1000000}
SWAP_SECONDS=${SWAP_SECONDS:-30}
PORT=${PORT:-18480}
WORK=$PWD/bench/work
OUT=$PWD/bench/results/snapshot.md


. bench/lib.sh

rm -rf "$WORK"
mkdir -p "$WORK/snaps" "$WORK/logs" "$(dirname "$OUT")"

echo "# generating $KEYS records"
bench/gen-jsonl.pl "$KEYS" 1 > "$WORK/v1.jsonl"
bench/gen-jsonl.pl "$KEYS" 2 > "$WORK/v2.jsonl"
"$LOADER" build "$WORK/snaps" --quiet --version v1 --input "$WORK/v1.jsonl"
"$LOADER" build "$WORK/snaps" --quiet --version v2 --input "$WORK/v2.jsonl"
"$LOADER" publish "$WORK/snaps" v1

# the ceiling answers a body as long as an average stored value
body=$(perl -ne 'if (/^\{"key":"[^"]*","value":(.*)\}$/) { print $1; exit }' \
       "$WORK/v1.jsonl")

cat > "$WORK/nginx.conf" <<_EOC_
load_module $MODULE;
$(nginx_main "$WORK" 01)
http {
    access_log off;
    default_type application/json;
    pred_snapshot_path main $WORK/snaps check=1s;
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        location = /ceiling { return 200 '$body'; }
        location = /predict { pred_key \$arg_id; pred_snapshot main; pred; }
    }
}
_EOC_

"$NGINX" -p "$WORK/" -c "$WORK/nginx.conf"
trap '"$NGINX" -p "$WORK/" -c "$WORK/nginx.conf" -s stop 2>/dev/null || true' EXIT
sleep 0.5

curl -sf "http://127.0.0.1:$PORT/predict?id=user_0000001" >/dev/null \
    || { echo "snapshot lookup failed" >&2; cat "$WORK/logs/error.log"; exit 1; }

worker=$(worker_of "$WORK")

rounds /ceiling /predict
m_rps_ceiling=$m_rps_0 m_p50_ceiling=$m_p50_0 m_p99_ceiling=$m_p99_0
m_cus_ceiling=$m_cus_0
m_rps_predict=$m_rps_1 m_p50_predict=$m_p50_1 m_p99_predict=$m_p99_1
m_cus_predict=$m_cus_1

ratio_rps=$(ratio "$m_rps_predict" "$m_rps_ceiling")
ratio_p99=$(ratio "$m_p99_predict" "$m_p99_ceiling")
ratio_cus=$(ratio "$m_cus_predict" "$m_cus_ceiling")

# swaps under load: both versions pass publish's full verify first; during
# the run a rollback every second flips the pointer, which is all a worker
# sees of a publish (publish's verify would only add its CPU to this box)
echo "# swaps under load for $SWAP_SECONDS s"
"$LOADER" publish "$WORK/snaps" v2 >/dev/null
"$LOADER" publish "$WORK/snaps" v1 >/dev/null
sleep 2.5   # let the worker settle on v1 before counting switches
before=$(grep -c 'serving version' "$WORK/logs/error.log" || true)
(
    end=$((SECONDS + SWAP_SECONDS))
    while [ $SECONDS -lt $end ]; do
        sleep 1
        "$LOADER" rollback "$WORK/snaps" >/dev/null
    done
) &
swapper=$!
read -r s_rps s_p50 s_p99 s_non2xx s_sock s_cus _ \
    < <(run /predict $((SWAP_SECONDS + 2)))
wait "$swapper"
swaps=$(( $(grep -c 'serving version' "$WORK/logs/error.log") - before ))

cat > "$OUT" <<_EOR_
# Snapshot tier benchmark

$(machine)
nginx: 1 worker pinned to core 0; wrk: 1 thread, $CONNS connections, core 1.
Snapshot: $KEYS keys, values about 110 bytes, random keys per request.
$ROUNDS rounds of ${DURATION}s per variant, alternating; medians.
Command: \`KEYS=$KEYS ROUNDS=$ROUNDS DURATION=$DURATION bench/snapshot.sh\`

| variant | req/s | p50 ms | p99 ms | worker CPU us/req |
|---|---:|---:|---:|---:|
| return 200, same body size (ceiling) | $m_rps_ceiling | $m_p50_ceiling | $m_p99_ceiling | $m_cus_ceiling |
| snapshot hit | $m_rps_predict | $m_p50_predict | $m_p99_predict | $m_cus_predict |
| ratio snapshot / ceiling | $ratio_rps | | $ratio_p99 | $ratio_cus |

Worker CPU per request is the nginx worker's user+system time over the
requests wrk completed: when wrk, not nginx, is the limit, req/s ratios
flatter the slower variant and this column does not.

Swaps under load: both versions published (full verify) before the run,
then a rollback every second for $SWAP_SECONDS s flips the live version
while wrk runs for $((SWAP_SECONDS + 2)) s: $s_rps req/s, p99 $s_p99 ms,
non-2xx $s_non2xx, socket errors $s_sock; version switches logged by the
worker: $swaps.
_EOR_

cat "$OUT"
[ "$s_non2xx" = 0 ] && [ "$s_sock" = 0 ]
