#!/usr/bin/env bash
# Cache tier and miss path benchmark, in one run:
#   - a shared-memory hit against the ceiling ("return 200", same body size)
#   - the miss path (every request asks the model) against a plain
#     proxy_pass to the same model server, both with keepalive
#
# nginx under test: 1 worker on core 0; wrk and the model server (a second
# nginx, 1 worker) share core 1.  Variants alternate; medians.
#
#   bench/tiers.sh
#   KEYS=1000 ROUNDS=1 DURATION=3 bench/tiers.sh

set -euo pipefail
cd "$(dirname "$0")/.."

KEYS=${KEYS:-10000}
PORT=${PORT:-18490}
MODEL_PORT=${MODEL_PORT:-18491}
WORK=$PWD/bench/work-tiers
OUT=$PWD/bench/results/tiers.md


. bench/lib.sh

rm -rf "$WORK"
mkdir -p "$WORK/model" "$WORK/logs" "$(dirname "$OUT")"

body='{"score":0.461043,"segment":"s35","model":"ctr-v7","items":[568,150,978],"ts":1795300000}'

cat > "$WORK/model/nginx.conf" <<_EOC_
$(nginx_main "$WORK/model" 10)
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$MODEL_PORT backlog=4096;
        location /predict/ { default_type application/json; return 200 '$body'; }
    }
}
_EOC_

cat > "$WORK/nginx.conf" <<_EOC_
load_module $MODULE;
$(nginx_main "$WORK" 01)
http {
    access_log off;
    default_type application/json;
    pred_cache_zone zone=hot:64m ttl=1h;
    upstream model {
        server 127.0.0.1:$MODEL_PORT;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        location = /ceiling { return 200 '$body'; }
        location = /shm { pred_key \$arg_id; pred_cache hot; pred; }
        location = /fill {
            pred_key \$arg_id;
            pred_cache hot;
            pred_upstream /_model timeout=1s;
            pred;
        }
        location = /miss {
            pred_key \$arg_id;
            pred_upstream /_model timeout=1s;
            pred;
        }
        location /_model {
            internal;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://model/predict/\$pred_key_escaped;
        }
        location = /plain {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://model/predict/\$arg_id;
        }
    }
}
_EOC_

"$NGINX" -p "$WORK/model/" -c "$WORK/model/nginx.conf"
"$NGINX" -p "$WORK/" -c "$WORK/nginx.conf"
trap '"$NGINX" -p "$WORK/" -c "$WORK/nginx.conf" -s stop 2>/dev/null || true
      "$NGINX" -p "$WORK/model/" -c "$WORK/model/nginx.conf" -s stop 2>/dev/null || true' EXIT
sleep 0.5

worker=$(worker_of "$WORK")

# every key once through the miss path, so that /shm only hits
echo "# filling the cache with $KEYS keys"
run /fill 3 bench/seq-key.lua > /dev/null
for k in 0 $((KEYS / 2)) $((KEYS - 1)); do
    curl -sf "http://127.0.0.1:$PORT/shm?id=$(printf 'user_%07d' "$k")" \
        > /dev/null || { echo "key $k is not cached" >&2; exit 1; }
done

rounds /ceiling /shm /miss /plain

cat > "$OUT" <<_EOR_
# Cache tier and miss path benchmark

$(machine)
nginx under test: 1 worker pinned to core 0; wrk (1 thread, $CONNS
connections) and the model server (nginx, 1 worker) on core 1.
$KEYS keys, random per request; values ${#body} bytes.
$ROUNDS rounds of ${DURATION}s per variant, alternating; medians.
Command: \`KEYS=$KEYS ROUNDS=$ROUNDS DURATION=$DURATION bench/tiers.sh\`

| variant | req/s | p50 ms | p99 ms | worker CPU us/req |
|---|---:|---:|---:|---:|
| return 200, same body size (ceiling) | $m_rps_0 | $m_p50_0 | $m_p99_0 | $m_cus_0 |
| shared-memory hit | $m_rps_1 | $m_p50_1 | $m_p99_1 | $m_cus_1 |
| miss path: pred_upstream, no cache | $m_rps_2 | $m_p50_2 | $m_p99_2 | $m_cus_2 |
| plain proxy_pass, same model | $m_rps_3 | $m_p50_3 | $m_p99_3 | $m_cus_3 |

- shm hit / ceiling: $(ratio "$m_rps_1" "$m_rps_0") req/s, $(ratio "$m_p99_1" "$m_p99_0") p99, $(ratio "$m_cus_1" "$m_cus_0") CPU per request
- miss path / proxy_pass: $(ratio "$m_rps_2" "$m_rps_3") req/s, $(ratio "$m_p99_2" "$m_p99_3") p99, $(ratio "$m_cus_2" "$m_cus_3") CPU per request

Worker CPU per request is the nginx worker's user+system time over the
requests wrk completed; with wrk and the model sharing a core, req/s can be
limited by them, and this column is the fairer comparison.
_EOR_

cat "$OUT"
