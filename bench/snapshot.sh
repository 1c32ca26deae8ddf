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
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
SWAP_SECONDS=${SWAP_SECONDS:-30}
PORT=${PORT:-18480}
NGINX=${NGINX:-/usr/sbin/nginx}
LOADER=$PWD/build/pred-snapshot
MODULE=$PWD/build/nginx/objs/ngx_http_pred_module.so
WORK=$PWD/bench/work
OUT=$PWD/bench/results/snapshot.md

[ -x "$LOADER" ] && [ -f "$MODULE" ] || { echo "run make first" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 1; }

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
worker_processes 1;
worker_cpu_affinity 01;
error_log $WORK/logs/error.log notice;
pid $WORK/nginx.pid;
events { worker_connections 4096; }
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

# wrk prints latency in us, ms or s
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 }
        else { sub(/s$/, "", v); print v * 1000 } }'
}

worker=$(pgrep -f "nginx: worker process" -P "$(cat "$WORK/nginx.pid")")

# CPU seconds the nginx worker has used
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' \
        "/proc/$worker/stat"; }

# run PATH SECONDS: prints "rps p50_ms p99_ms non2xx socket_errors cpu_us_req"
run() {
    local out rps p50 p99 non2xx sock c0 c1 reqs
    c0=$(cpu)
    out=$(BENCH_PATH=$1 KEYS=$KEYS taskset -c 1 wrk -t1 -c"$CONNS" \
          -d"${2}s" --latency -s bench/random-key.lua \
          "http://127.0.0.1:$PORT$1")
    c1=$(cpu)
    rps=$(awk '/^Requests\/sec:/ { print $2 }' <<< "$out")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' <<< "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<< "$out")")
    non2xx=$(awk '/Non-2xx/ { print $NF }' <<< "$out")
    sock=$(awk '/Socket errors/ { gsub(/[^0-9 ]/, ""); s = 0;
                for (i = 1; i <= NF; i++) s += $i; print s }' <<< "$out")
    reqs=$(awk '/requests in/ { print $1 }' <<< "$out")
    echo "$rps $p50 $p99 ${non2xx:-0} ${sock:-0}" \
         "$(awk -v c="$c1" -v b="$c0" -v n="$reqs" \
                'BEGIN { printf "%.2f", (c - b) * 1e6 / n }')"
}

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

declare -A rps p50 p99 cus
for r in $(seq 1 "$ROUNDS"); do
    for v in ceiling predict; do
        read -r a b c d e f < <(run "/$v" "$DURATION")
        echo "# round $r $v: $a req/s, p50 $b ms, p99 $c ms, non-2xx $d," \
             "socket errors $e, worker CPU $f us/req"
        [ "$d" = 0 ] && [ "$e" = 0 ] || { echo "errors in $v" >&2; exit 1; }
        rps[$v]+="$a "; p50[$v]+="$b "; p99[$v]+="$c "; cus[$v]+="$f "
    done
done

for v in ceiling predict; do
    read -r "m_rps_$v" <<< "$(tr ' ' '\n' <<< "${rps[$v]}" | grep . | median)"
    read -r "m_p50_$v" <<< "$(tr ' ' '\n' <<< "${p50[$v]}" | grep . | median)"
    read -r "m_p99_$v" <<< "$(tr ' ' '\n' <<< "${p99[$v]}" | grep . | median)"
    read -r "m_cus_$v" <<< "$(tr ' ' '\n' <<< "${cus[$v]}" | grep . | median)"
done

ratio_rps=$(awk -v a="$m_rps_predict" -v b="$m_rps_ceiling" 'BEGIN { printf "%.3f", a / b }')
ratio_p99=$(awk -v a="$m_p99_predict" -v b="$m_p99_ceiling" 'BEGIN { printf "%.3f", a / b }')
ratio_cus=$(awk -v a="$m_cus_predict" -v b="$m_cus_ceiling" 'BEGIN { printf "%.3f", a / b }')

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
read -r s_rps s_p50 s_p99 s_non2xx s_sock s_cus \
    < <(run /predict $((SWAP_SECONDS + 2)))
wait "$swapper"
swaps=$(( $(grep -c 'serving version' "$WORK/logs/error.log") - before ))

cat > "$OUT" <<_EOR_
# Snapshot tier benchmark

Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo);
$("$NGINX" -v 2>&1); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2).
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
