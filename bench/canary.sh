#!/usr/bin/env bash
# Canary benchmark: what a candidate version costs the snapshot tier.
# Three variants against one nginx: a snapshot with no candidate, the same
# data with a candidate at 50%, and that with pred_shadow at 100% (every
# key the live version answers is looked up in the candidate and compared,
# field score included), plus nginx's own "return 200" as the ceiling.
#
# nginx runs one worker pinned to core 0, wrk runs on core 1.  Variants
# alternate for ROUNDS rounds and the median of each is reported.
#
#   bench/canary.sh                     # 1M keys, 3 rounds of 10 s
#   bench/canary.sh --smoke             # 20k keys, 1 round of 2 s
#   KEYS=100000 ROUNDS=1 DURATION=3 bench/canary.sh
#   INDEX=on bench/canary.sh            # both snapshots with index=on

set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --smoke ]; then
    KEYS=${KEYS:-20000} ROUNDS=${ROUNDS:-1} DURATION=${DURATION:-2}
    export KEYS ROUNDS DURATION
fi

KEYS=${KEYS:-1000000}
INDEX=${INDEX:-off}
PORT=${PORT:-18490}
WORK=$PWD/bench/work-canary
OUT=${OUT:-$WORK/canary.md}

. bench/lib.sh

rm -rf "$WORK"
mkdir -p "$WORK/plain" "$WORK/canary" "$WORK/logs" "$(dirname "$OUT")"

echo "# generating $KEYS records, two versions"
bench/gen-jsonl.pl "$KEYS" 1 > "$WORK/v1.jsonl"
bench/gen-jsonl.pl "$KEYS" 2 > "$WORK/v2.jsonl"
"$LOADER" build "$WORK/canary" --quiet --version v1 --input "$WORK/v1.jsonl"
"$LOADER" build "$WORK/canary" --quiet --version v2 --input "$WORK/v2.jsonl"
"$LOADER" publish "$WORK/canary" v1 >/dev/null
"$LOADER" canary "$WORK/canary" v2 50
# the same live file, in a folder that never has a candidate
ln "$WORK/canary/snap-v1.mdb" "$WORK/plain/snap-v1.mdb"
"$LOADER" publish "$WORK/plain" v1 >/dev/null
rm -f "$WORK/v1.jsonl" "$WORK/v2.jsonl"

body=$("$LOADER" get "$WORK/plain" user_0000001)

cat > "$WORK/nginx.conf" <<_EOC_
load_module $MODULE;
$(nginx_main "$WORK" 01)
http {
    access_log off;
    default_type application/json;
    pred_snapshot_path plain $WORK/plain check=1s index=$INDEX;
    pred_snapshot_path canary $WORK/canary check=1s index=$INDEX;
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        pred_key \$arg_id;
        location = /ceiling { return 200 '$body'; }
        location = /live { pred_snapshot plain; pred; }
        location = /canary { pred_snapshot canary; pred; }
        location = /shadow {
            pred_snapshot canary;
            pred_shadow rate=100 field=score;
            pred;
        }
        location = /metrics { pred_metrics; }
    }
}
_EOC_

"$NGINX" -p "$WORK/" -c "$WORK/nginx.conf"
trap '"$NGINX" -p "$WORK/" -c "$WORK/nginx.conf" -s stop 2>/dev/null || true' EXIT
sleep 0.5

# index=on: both versions of each snapshot indexed before measuring
if [ "$INDEX" = on ]; then
    for _ in $(seq 1 600); do
        [ "$(grep -c 'indexed' "$WORK/logs/error.log")" -ge 3 ] && break
        sleep 0.1
    done
fi

for p in /live /canary /shadow; do
    curl -sf "http://127.0.0.1:$PORT$p?id=user_0000001" >/dev/null \
        || { echo "$p failed" >&2; cat "$WORK/logs/error.log"; exit 1; }
done

worker=$(worker_of "$WORK")

rounds /ceiling /live /canary /shadow

ratio_canary=$(ratio "$m_rps_2" "$m_rps_1")
ratio_shadow=$(ratio "$m_rps_3" "$m_rps_1")
cpu_canary=$(ratio "$m_cus_2" "$m_cus_1")
cpu_shadow=$(ratio "$m_cus_3" "$m_cus_1")

metrics=$(curl -sf "http://127.0.0.1:$PORT/metrics")
m() { awk -v n="$1" '$1 == n { print $2 }' <<< "$metrics"; }
live=$(m 'pred_snapshot_requests_total{snapshot="canary",role="live"}')
cand=$(m 'pred_snapshot_requests_total{snapshot="canary",role="candidate"}')
diff=$(m 'pred_shadow_total{snapshot="canary",result="different"}')
same=$(m 'pred_shadow_total{snapshot="canary",result="same"}')

cat > "$OUT" <<_EOR_
# Canary benchmark

$(machine)
nginx: 1 worker pinned to core 0; wrk: 1 thread, $CONNS connections, core 1.
Snapshots: $KEYS keys, values about 110 bytes, random keys per request,
index=$INDEX.
$ROUNDS rounds of ${DURATION}s per variant, alternating; medians.
Command: \`KEYS=$KEYS INDEX=$INDEX ROUNDS=$ROUNDS DURATION=$DURATION bench/canary.sh\`

| variant | req/s | p50 ms | p99 ms | worker CPU us/req |
|---|---:|---:|---:|---:|
| return 200, same body size (ceiling) | $m_rps_0 | $m_p50_0 | $m_p99_0 | $m_cus_0 |
| no candidate | $m_rps_1 | $m_p50_1 | $m_p99_1 | $m_cus_1 |
| candidate at 50% | $m_rps_2 | $m_p50_2 | $m_p99_2 | $m_cus_2 |
| candidate at 50%, pred_shadow 100% field=score | $m_rps_3 | $m_p50_3 | $m_p99_3 | $m_cus_3 |

Against no candidate: candidate at 50% $ratio_canary of the req/s
($cpu_canary the CPU per request); with shadow $ratio_shadow
($cpu_shadow the CPU). Target: shadow >= 0.90.

Keys the candidate answered: $cand; the live version: $live (both
canary locations). Shadow comparisons: $diff different, $same same (the
versions' scores differ for every key).
_EOR_

cat "$OUT"
