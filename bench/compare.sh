#!/usr/bin/env bash
# The comparison harness ("make bench"): this module's tiers and the usual
# alternatives side by side, in one run, against the same ceiling, all
# serving the same JSON values for the same random keys.
#
#   ceiling        nginx "return 200", a body of the same size
#   snapshot       pred_snapshot hits, one snapshot per size in SNAP_KEYS
#   shm            pred_cache hits (filled through the miss path first)
#   batch, list    a 10-key pred_batch GET; a 100-item list with pred_filter
#   miss           pred_upstream on every request (no cache)
#   fallback       pred_upstream to a closed port, answered by the default
#   lua dict       content_by_lua + ngx.shared.DICT (libnginx-mod-http-lua)
#   proxy_cache    proxy_cache hits in front of the model server
#   redis          proxy_pass to a model server that reads redis-server
#
# The model server is a second nginx whose content_by_lua reads Redis over
# a keepalive cosocket; it, redis-server and wrk share core 1, the nginx
# under test has 1 worker on core 0.  Variants alternate for ROUNDS rounds;
# medians.  Writes $OUT_DIR/REPORT.md, compare.dat and compare.png.
#
#   bench/compare.sh                        # the full run (about 12 min)
#   bench/compare.sh --smoke                # seconds: keeps it working

set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --smoke ]; then
    KEYS=2000 SNAP_KEYS="2000 4000" LISTS=200 ROUNDS=1 DURATION=1 CONNS=8
    WORK=$PWD/bench/work-smoke OUT_DIR=$PWD/bench/work-smoke
    PORT=18520 MODEL_PORT=18521 REDIS_PORT=18522
fi

KEYS=${KEYS:-100000}
SNAP_KEYS=${SNAP_KEYS:-"100000 1000000 10000000"}
LISTS=${LISTS:-10000}
PORT=${PORT:-18500}
MODEL_PORT=${MODEL_PORT:-18501}
REDIS_PORT=${REDIS_PORT:-18502}
LUA_MODULES="load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;"
WORK=${WORK:-$PWD/bench/work-compare}
# proxy_cache on tmpfs: its hits are page-cache reads either way, and
# filling it on a slow overlay disk would take minutes
PCACHE=${PCACHE:-/dev/shm/pred-bench-pcache-$PORT}
OUT_DIR=${OUT_DIR:-$PWD/bench/results}

for c in wrk redis-server redis-cli gnuplot; do
    command -v $c >/dev/null || { echo "$c is not installed" >&2; exit 1; }
done
[ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] \
    || { echo "libnginx-mod-http-lua is not installed" >&2; exit 1; }

. bench/lib.sh

rm -rf "$WORK" "$PCACHE"
mkdir -p "$WORK/logs" "$WORK/model" "$OUT_DIR"

# the data: KEYS records for every variant, bigger snapshots for the
# snapshot-size variants (their first KEYS records are the same values)
echo "# generating records and snapshots"
for n in $SNAP_KEYS; do
    mkdir -p "$WORK/s$n"
    bench/gen-jsonl.pl "$n" 1 > "$WORK/s$n.jsonl"
    "$LOADER" build "$WORK/s$n" --quiet --version v1 --input "$WORK/s$n.jsonl"
    "$LOADER" publish "$WORK/s$n" v1 > /dev/null
done
# the same generator and seed: a snapshot of KEYS records already has them
if [ -f "$WORK/s$KEYS.jsonl" ]; then
    ln -s "s$KEYS.jsonl" "$WORK/data.jsonl"
else
    bench/gen-jsonl.pl "$KEYS" 1 > "$WORK/data.jsonl"
fi
bench/gen-lists.pl "$LISTS" > "$WORK/lists.jsonl"
mkdir -p "$WORK/lists"
"$LOADER" build "$WORK/lists" --quiet --version v1 --input "$WORK/lists.jsonl"
"$LOADER" publish "$WORK/lists" v1 > /dev/null
body=$(perl -ne 'if (/^\{"key":"[^"]*","value":(.*)\}$/) { print $1; exit }' \
       "$WORK/data.jsonl")

taskset -c 1 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
    --appendonly no --daemonize yes --dir "$WORK" \
    --pidfile "$WORK/redis.pid" --logfile "$WORK/logs/redis.log"
stop_all() {
    "$NGINX" -p "$WORK/" -c "$WORK/nginx.conf" -s stop 2>/dev/null || true
    "$NGINX" -p "$WORK/model/" -c "$WORK/model/nginx.conf" -s stop \
        2>/dev/null || true
    redis-cli -p "$REDIS_PORT" shutdown nosave 2>/dev/null || true
    rm -rf "$PCACHE"
}
trap stop_all EXIT
for i in $(seq 50); do
    redis-cli -p "$REDIS_PORT" ping > /dev/null 2>&1 && break; sleep 0.1
done
perl -ne 'if (/^\{"key":"([^"]*)","value":(.*)\}$/) {
              printf "*3\r\n\$3\r\nSET\r\n\$%d\r\n%s\r\n\$%d\r\n%s\r\n",
                     length $1, $1, length $2, $2 }' "$WORK/data.jsonl" \
    | redis-cli -p "$REDIS_PORT" --pipe > "$WORK/logs/redis-load.log"

cat > "$WORK/model/nginx.conf" <<_EOC_
$LUA_MODULES
$(nginx_main "$WORK/model" 10)
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$MODEL_PORT backlog=4096;
        location /predict/ {
            default_type application/json;
            content_by_lua_block {
                local key = ngx.var.uri:sub(10)
                local sock = ngx.socket.tcp()
                sock:settimeout(1000)
                local ok, err = sock:connect("127.0.0.1", $REDIS_PORT)
                if not ok then
                    ngx.log(ngx.ERR, "redis: ", err)
                    return ngx.exit(502)
                end
                sock:send({"*2\r\n\$3\r\nGET\r\n\$", #key, "\r\n", key,
                           "\r\n"})
                local line = sock:receive()
                local n = line and tonumber(line:sub(2))
                if not n or n < 0 then
                    sock:setkeepalive(60000, 64)
                    return ngx.exit(404)
                end
                local data = sock:receive(n + 2)
                sock:setkeepalive(60000, 64)
                ngx.print(data:sub(1, n))
            }
        }
    }
}
_EOC_

snap_conf= snap_locs= snap_variants=
for n in $SNAP_KEYS; do
    snap_conf+="    pred_snapshot_path s$n $WORK/s$n;"$'\n'
    snap_locs+="        location = /snap$n {
            pred_key \$arg_id; pred_snapshot s$n; pred;
        }"$'\n'
    snap_variants+=" /snap$n%$n"
done
first=${SNAP_KEYS%% *}

cat > "$WORK/nginx.conf" <<_EOC_
load_module $MODULE;
$LUA_MODULES
$(nginx_main "$WORK" 01)
http {
    access_log off;
    default_type application/json;
$snap_conf
    pred_snapshot_path lists $WORK/lists;
    pred_cache_zone zone=hot:256m ttl=1h;
    lua_shared_dict preds 256m;
    init_by_lua_block {
        local dict = ngx.shared.preds
        for line in io.lines("$WORK/data.jsonl") do
            local k, v = line:match('^{"key":"([^"]*)","value":(.*)}\$')
            assert(dict:set(k, v))
        end
    }
    proxy_cache_path $PCACHE levels=1:2 keys_zone=pc:64m
                     max_size=4g inactive=1d use_temp_path=off;
    upstream model {
        server 127.0.0.1:$MODEL_PORT;
        keepalive 64;
    }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        location = /ceiling { return 200 '$body'; }
$snap_locs
        location = /shm { pred_key \$arg_id; pred_cache hot; pred; }
        location = /fill {
            pred_key \$arg_id; pred_cache hot;
            pred_upstream /_model timeout=1s; pred;
        }
        location = /batch {
            pred_key \$arg_keys; pred_snapshot s$first; pred_batch on; pred;
        }
        location = /list {
            pred_key \$arg_id; pred_snapshot lists; pred_filter on; pred;
        }
        location = /miss {
            pred_key \$arg_id; pred_upstream /_model timeout=1s; pred;
        }
        location = /fallback {
            pred_key \$arg_id;
            pred_upstream /_down timeout=1s;
            pred_fallback 'default={"score":0.0}';
            pred;
        }
        location /_model {
            internal;
            proxy_pass http://model/predict/\$pred_key_escaped;
        }
        location /_down { internal; proxy_pass http://127.0.0.1:1; }
        location = /lua {
            content_by_lua_block {
                local v = ngx.shared.preds:get(ngx.var.arg_id)
                if not v then return ngx.exit(404) end
                ngx.print(v)
            }
        }
        location = /pcache {
            proxy_cache pc;
            proxy_cache_key \$arg_id;
            proxy_cache_valid 200 1d;
            add_header X-Cache \$upstream_cache_status;
            proxy_pass http://model/predict/\$arg_id;
        }
        location = /redis { proxy_pass http://model/predict/\$arg_id; }
        location = /metrics { pred_metrics; }
    }
}
_EOC_

"$NGINX" -p "$WORK/model/" -c "$WORK/model/nginx.conf"
"$NGINX" -p "$WORK/" -c "$WORK/nginx.conf"
sleep 0.5

worker=$(worker_of "$WORK")

# every variant answers the same value for the same key
key=$(printf 'user_%07d' $((KEYS / 2)))
want=$(grep -F "\"key\":\"$key\"" "$WORK/data.jsonl" \
       | perl -ne 'print $1 if /"value":(.*)\}$/')
for p in /snap$first /miss /lua /pcache /redis; do
    got=$(curl -sf "http://127.0.0.1:$PORT$p?id=$key") \
        || { echo "$p failed" >&2; cat "$WORK/logs/error.log" >&2; exit 1; }
    [ "$got" = "$want" ] \
        || { echo "$p answered $got, not $want" >&2; exit 1; }
done

# warm the shm tier and proxy_cache with every key, so that they only hit
fill_s=$(( KEYS / 8000 + 2 ))
echo "# filling the shm tier and proxy_cache with $KEYS keys"
echo "# /fill: $(run /fill "$fill_s" bench/seq-key.lua)"
echo "# /pcache: $(run /pcache $((fill_s * 2)) bench/seq-key.lua)"
# (headers read whole first: grep -q exiting early would fail the pipe)
for k in 0 $((KEYS / 2)) $((KEYS - 1)); do
    key=$(printf 'user_%07d' "$k")
    h=$(curl -s -o /dev/null -D - "http://127.0.0.1:$PORT/shm?id=$key")
    grep -qi '^X-Pred-Source: cache' <<< "$h" \
        || { echo "$key is not in the shm tier: $h" >&2; exit 1; }
    h=$(curl -s -o /dev/null -D - "http://127.0.0.1:$PORT/pcache?id=$key")
    grep -qi '^X-Cache: HIT' <<< "$h" \
        || { echo "$key is not in proxy_cache: $h" >&2; exit 1; }
done

filter='&where=category:c3&min_score=0.2&exclude=i00001,i00002&limit=10&fields=id,score'
export NBATCH=10 BENCH_QUERY=$filter

names=(ceiling)
for n in $SNAP_KEYS; do names+=("snapshot-$n"); done
names+=(shm batch-10 list-filtered miss fallback lua-dict proxy_cache redis)
rounds /ceiling $snap_variants /shm "/batch@bench/batch-keys.lua%$first" \
       "/list@bench/query-key.lua%$LISTS" /miss /fallback /lua /pcache /redis

# memory, read after every variant has run
rss=$(awk '/^RssAnon|^RssFile|^RssShmem/ { printf "%s %.0f MiB, ", $1, $2 / 1024 }' \
      "/proc/$worker/status")
metrics=$(curl -sf "http://127.0.0.1:$PORT/metrics")
used=$(awk '/^pred_cache_bytes\{zone="hot",kind="used"\}/ { print $2 }' <<< "$metrics")
held=$(awk '/^pred_cache_entries\{zone="hot"\}/ { print $2 }' <<< "$metrics")

dat=$OUT_DIR/compare.dat
{
    echo "# variant req/s p50_ms p99_ms worker_cpu_us_per_req"
    for i in "${!names[@]}"; do
        r=m_rps_$i p=m_p50_$i q=m_p99_$i c=m_cus_$i
        echo "${names[$i]} ${!r} ${!p} ${!q} ${!c}"
    done
} > "$dat"

gnuplot <<_EOG_
set terminal pngcairo size 1200,800 font ",10" noenhanced
set output "$OUT_DIR/compare.png"
set multiplot layout 2,1 title "ngx_pred_module against the alternatives (same run, medians)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.8
set xtics rotate by -30 scale 0
set grid ytics
set yrange [0:*]
set key top right
set ylabel "requests/s"
plot "$dat" using 2:xtic(1) title "req/s" lc rgb "#4477aa"
set style histogram clustered gap 1
set ylabel "latency, ms"
plot "$dat" using 3:xtic(1) title "p50" lc rgb "#66ccee", \
     "" using 4 title "p99" lc rgb "#ee6677"
unset multiplot
_EOG_

ceil_rps=$m_rps_0 ceil_p99=$m_p99_0
rows=
for i in "${!names[@]}"; do
    r=m_rps_$i p=m_p50_$i q=m_p99_$i c=m_cus_$i
    rows+="| ${names[$i]} | ${!r} | ${!p} | ${!q} | ${!c} |"
    rows+=" $(ratio "${!r}" "$ceil_rps") | $(ratio "${!q}" "$ceil_p99") |"$'\n'
done

cat > "$OUT_DIR/REPORT.md" <<_EOR_
# ngx_pred_module against the alternatives

$(machine)
$(dpkg-query -W -f='${Package} ${Version}; ' libnginx-mod-http-lua redis-server 2>/dev/null)
nginx under test: 1 worker pinned to core 0.  wrk (1 thread, $CONNS
connections), the model server (nginx + Lua reading redis-server over
keepalive) and redis-server share core 1.  $ROUNDS rounds of ${DURATION}s
per variant, alternating; medians.  Values about ${#body} bytes, uniformly
random keys: $KEYS for the shm tier, Lua dict, proxy_cache, Redis and the
miss path; the snapshot's own size for each snapshot variant; $LISTS lists.
Command: \`KEYS=$KEYS SNAP_KEYS="$SNAP_KEYS" ROUNDS=$ROUNDS DURATION=$DURATION bench/compare.sh\`

| variant | req/s | p50 ms | p99 ms | worker CPU us/req | req/s / ceiling | p99 / ceiling |
|---|---:|---:|---:|---:|---:|---:|
$rows
Variants: \`ceiling\` is \`return 200\` with a body of the same size;
\`snapshot-N\` a pred_snapshot hit on an N-key snapshot; \`shm\` a
pred_cache hit; \`batch-10\` a 10-key pred_batch GET (one request, ten
keys); \`list-filtered\` a 100-item list with
\`$filter\`;
\`miss\` pred_upstream on every request, no cache; \`fallback\` the model
unreachable (connection refused), answered by \`default=\`; \`lua-dict\`
content_by_lua reading ngx.shared.DICT; \`proxy_cache\` proxy_cache hits;
\`redis\` proxy_pass to the Redis-backed model server, no cache.

Worker CPU per request is the nginx worker's user+system time over the
requests wrk completed.  When wrk (or, for miss, redis and proxy_cache
fills, the model) on core 1 is the limit, req/s ratios flatter the slower
variant and this column does not.

Worker memory after the run (all snapshots mapped and read): $rss
the shm tier held $held entries in $used bytes of its zone,
$(awk -v u="$used" -v n="$held" 'BEGIN { printf "%.0f", u / n }') bytes per
entry for ${#body}-byte values and 12-byte keys.

![requests/s and latency](compare.png)
_EOR_

cat "$OUT_DIR/REPORT.md"
