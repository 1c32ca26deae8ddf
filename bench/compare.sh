#!/usr/bin/env bash
# The comparison harness ("make bench"): this module's tiers and the usual
# alternatives side by side, in one run, against the same ceiling, all
# serving the same JSON values for the same random keys.
#
#   ceiling        nginx "return 200", a body of the same size
#   snapshot       pred_snapshot hits, one snapshot per size in SNAP_KEYS,
#                  its files read into the page cache first
#   shm            pred_cache hits (filled through the miss path first)
#   shm-zone-N     pred_cache hits in a SHM_ZONE zone holding N entries,
#                  one zone per size in SHM_SIZES, filled by fill-zone.pl
#                  through the batch miss path from a Lua model stub
#   batch, list    a 10-key pred_batch GET; a 100-item list with pred_filter
#   miss           pred_upstream on every request (no cache)
#   fallback       pred_upstream to a closed port, answered by the default
#   fallback-breaker  the same behind an open pred_upstream_breaker (its
#                  own nginx: the breaker is http-wide)
#   lua dict       content_by_lua + ngx.shared.DICT (libnginx-mod-http-lua)
#   proxy_cache    proxy_cache hits in front of the model server
#   redis          proxy_pass to a model server that reads redis-server
#   shm-2workers   the largest shm-zone size in an nginx of 2 workers (one
#                  per core) on one zone, wrk on both cores too; with the
#                  largest 1-worker shm-zone, its workers' sched_yield and
#                  futex calls per request (ngx_shmtx spins, then sleeps)
#                  counted by perf stat's syscall tracepoints
#   batch-1000     a POST_KEYS-key POST pred_batch (snapshot hits) on one
#                  connection every BATCH_DELAY_MS, with p50/p95/p99, while
#                  a second wrk sends single-key snapshot requests
#
# The model server is a second nginx whose content_by_lua reads Redis over
# a keepalive cosocket; it, redis-server and wrk share core 1, the nginx
# under test has 1 worker on core 0.  Variants alternate for ROUNDS rounds;
# medians with their spread (min-max).  Writes $OUT_DIR/REPORT.md,
# compare.dat and compare.png.
#
# Knobs (environment; lib.sh has ROUNDS, DURATION, CONNS):
#   KEYS=100000          keys of the shm, Lua dict, proxy_cache, Redis and
#                        miss variants
#   SNAP_KEYS="100000 1000000 10000000"   snapshot sizes
#   SHM_SIZES="10000 100000 1000000"      entries of the shm-zone variants
#   SHM_ZONE=512m        the size of each of their zones
#   POST_KEYS=1000 BATCH_DELAY_MS=20      the batch-1000 variant
#   LISTS=10000          candidate lists
#   PORT=18500 (and PORT+1 .. PORT+4) MODEL_PORT=18501 REDIS_PORT=18502
#   WORK, OUT_DIR        work folder, where the report goes
#
#   bench/compare.sh                        # the full run (about 25 min)
#   bench/compare.sh --smoke                # under a minute: keeps it working
#   KEYS=20000 SNAP_KEYS=20000 SHM_SIZES="2000 20000" ROUNDS=2 DURATION=2 \
#       PORT=18600 MODEL_PORT=18601 REDIS_PORT=18602 bench/compare.sh

set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --smoke ]; then
    KEYS=2000 SNAP_KEYS="2000 4000" INDEX_KEYS=4000 LISTS=200 ROUNDS=1
    DURATION=1 CONNS=8
    SHM_SIZES="500 1000 2000" SHM_ZONE=32m POST_KEYS=100
    WORK=$PWD/bench/work-smoke OUT_DIR=$PWD/bench/work-smoke
    PORT=${PORT:-18520} MODEL_PORT=${MODEL_PORT:-18521}
    REDIS_PORT=${REDIS_PORT:-18522}
fi

KEYS=${KEYS:-100000}
SNAP_KEYS=${SNAP_KEYS:-"100000 1000000 10000000"}
LISTS=${LISTS:-10000}
SHM_SIZES=${SHM_SIZES:-"10000 100000 1000000"}
SHM_ZONE=${SHM_ZONE:-512m}
POST_KEYS=${POST_KEYS:-1000}
BATCH_DELAY_MS=${BATCH_DELAY_MS:-20}
PORT=${PORT:-18500}
MODEL_PORT=${MODEL_PORT:-18501}
REDIS_PORT=${REDIS_PORT:-18502}
PORT_2W=$((PORT + 3)) PORT_BRK=$((PORT + 4))
LUA_MODULES="load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;"
WORK=${WORK:-$PWD/bench/work-compare}
# proxy_cache on tmpfs: its hits are page-cache reads either way, and
# filling it on a slow overlay disk would take minutes
PCACHE=${PCACHE:-/dev/shm/pred-bench-pcache-$PORT}
OUT_DIR=${OUT_DIR:-$PWD/bench/results}

for c in wrk redis-server redis-cli gnuplot perf fincore; do
    command -v $c >/dev/null || { echo "$c is not installed" >&2; exit 1; }
done
[ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] \
    || { echo "libnginx-mod-http-lua is not installed" >&2; exit 1; }

. bench/lib.sh

rm -rf "$WORK" "$PCACHE"
mkdir -p "$WORK/logs" "$WORK/model" "$WORK/w2" "$WORK/brk" "$OUT_DIR"

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
    local d
    for d in "$WORK" "$WORK/w2" "$WORK/brk"; do
        "$NGINX" -p "$d/" -c "$d/nginx.conf" -s stop 2>/dev/null || true
    done
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
        # the batch model stub that fills the shm-zone variants: an array
        # of values of a fixed length (ids padded to 4 digits), in order
        location = /batch-predict {
            client_body_buffer_size 1m;
            client_max_body_size 1m;
            default_type application/json;
            content_by_lua_file $PWD/bench/batch-model.lua;
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
# the same files with pred_snapshot_path index=on, for the sizes in
# INDEX_KEYS (default: the snapshot sizes of a million keys and more)
INDEX_KEYS=${INDEX_KEYS-$(for n in $SNAP_KEYS; do
    [ "$n" -ge 1000000 ] && printf '%s ' "$n"; done)}
for n in $INDEX_KEYS; do
    snap_conf+="    pred_snapshot_path i$n $WORK/s$n index=on;"$'\n'
    snap_locs+="        location = /index$n {
            pred_key \$arg_id; pred_snapshot i$n; pred;
        }"$'\n'
    snap_variants+=" /index$n%$n"
done
first=${SNAP_KEYS%% *}
shm_conf= shm_locs= shm_variants=
for n in $SHM_SIZES; do
    shm_conf+="    pred_cache_zone zone=z$n:$SHM_ZONE ttl=1h;"$'\n'
    shm_locs+="        location = /shm$n { pred_key \$arg_id; pred_cache z$n; pred; }
        location = /bfill$n {
            pred_key \$arg_keys; pred_batch on max=1000; pred_cache z$n;
            pred_upstream /_bmodel timeout=10s max_size=1m; pred;
        }"$'\n'
done
biggest=${SHM_SIZES##* }
# the batch model stub's location, in each nginx that fills a zone
bmodel="location = /_bmodel {
            internal;
            proxy_method POST;
            proxy_set_header Content-Type application/json;
            proxy_set_body \$pred_keys_json;
            proxy_pass http://127.0.0.1:$MODEL_PORT/batch-predict;
        }"

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
$shm_conf
    client_body_buffer_size 64k;
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
$shm_locs
        $bmodel
        location = /batch-post {
            pred_key \$arg_keys; pred_snapshot s$first;
            pred_batch on max=$POST_KEYS; pred;
        }
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

# 2 workers on one zone, and the fallback behind an open breaker: their
# own nginx each (worker_processes; the breaker is http-wide)
cat > "$WORK/w2/nginx.conf" <<_EOC_
load_module $MODULE;
$(nginx_main "$WORK/w2" "01 10" 2)
http {
    access_log off;
    default_type application/json;
    client_body_buffer_size 64k;
    pred_cache_zone zone=z2w:$SHM_ZONE ttl=1h;
    server {
        listen 127.0.0.1:$PORT_2W backlog=4096;
        location = /shm { pred_key \$arg_id; pred_cache z2w; pred; }
        location = /bfill {
            pred_key \$arg_keys; pred_batch on max=1000; pred_cache z2w;
            pred_upstream /_bmodel timeout=10s max_size=1m; pred;
        }
        $bmodel
        location = /metrics { pred_metrics; }
    }
}
_EOC_
cat > "$WORK/brk/nginx.conf" <<_EOC_
load_module $MODULE;
$(nginx_main "$WORK/brk" 01)
http {
    access_log off;
    default_type application/json;
    pred_upstream_breaker failures=5 cooldown=1h;
    server {
        listen 127.0.0.1:$PORT_BRK backlog=4096;
        location = /fallback {
            pred_key \$arg_id;
            pred_upstream /_down timeout=1s;
            pred_fallback 'default={"score":0.0}';
            pred;
        }
        location /_down { internal; proxy_pass http://127.0.0.1:1; }
        location = /metrics { pred_metrics; }
    }
}
_EOC_

"$NGINX" -p "$WORK/model/" -c "$WORK/model/nginx.conf"
for d in "$WORK" "$WORK/w2" "$WORK/brk"; do
    "$NGINX" -p "$d/" -c "$d/nginx.conf"
done
sleep 0.5

worker=$(worker_of "$WORK")
w2pids=$(worker_of "$WORK/w2" | paste -sd,)
brkpid=$(worker_of "$WORK/brk")
[ -n "$worker" ] && [ -n "$brkpid" ] && [ "$(tr , '\n' <<< "$w2pids" | wc -l)" = 2 ] \
    || { echo "an nginx under test did not start" >&2; exit 1; }

# metric NAME_AND_LABELS [PORT]: one value from /metrics
metric() {
    curl -sf "http://127.0.0.1:${2:-$PORT}/metrics" \
        | awk -v m="$1" 'index($0, m " ") == 1 { print $2 }'
}

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
hot0=$(metric 'pred_cache_bytes{zone="hot",kind="used"}')
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

# the shm-zone variants: each zone filled through the batch miss path
# (1000 keys a request); the zone's bytes per entry from what it used
# before and after
declare -A z_used0 z_used z_held
for n in $SHM_SIZES; do
    z_used0[$n]=$(metric "pred_cache_bytes{zone=\"z$n\",kind=\"used\"}")
done
for n in $SHM_SIZES; do
    t0=$(date +%s.%N)
    bench/fill-zone.pl "http://127.0.0.1:$PORT/bfill$n" "$n"
    echo "# filled zone z$n with $n entries in" \
         "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
    z_used[$n]=$(metric "pred_cache_bytes{zone=\"z$n\",kind=\"used\"}")
    z_held[$n]=$(metric "pred_cache_entries{zone=\"z$n\"}")
    [ "${z_held[$n]}" = "$n" ] \
        || { echo "zone z$n holds ${z_held[$n]} entries, not $n" >&2; exit 1; }
done
bench/fill-zone.pl "http://127.0.0.1:$PORT_2W/bfill" "$biggest"
[ "$(metric 'pred_cache_entries{zone="z2w"}' "$PORT_2W")" = "$biggest" ] \
    || { echo "zone z2w is not full" >&2; exit 1; }
key=$(printf 'user_%07d' $((biggest - 1)))
zval=$(curl -sf "http://127.0.0.1:$PORT/shm$biggest?id=$key")
h=$(curl -s -o /dev/null -D - "http://127.0.0.1:$PORT_2W/shm?id=$key")
grep -qi '^X-Pred-Source: cache' <<< "$h" \
    || { echo "$key is not in zone z2w: $h" >&2; exit 1; }

# the breaker: five failed calls open it for the whole run
for i in $(seq 6); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT_BRK/fallback?id=user_$i"
done
[ "$(metric pred_upstream_breaker_open "$PORT_BRK")" = 1 ] \
    || { echo "the breaker did not open" >&2; exit 1; }
got=$(curl -sf "http://127.0.0.1:$PORT_BRK/fallback?id=user_0000001")
[ "$got" = '{"score":0.0}' ] \
    || { echo "the open breaker answered $got" >&2; exit 1; }

# the snapshots into the page cache, as a warm server has them
for n in $SNAP_KEYS; do cat "$WORK/s$n"/snap-*.mdb > /dev/null; done

# the indexes are built in steps after the start: measured once built
for i in $(seq 600); do
    built=$(grep -c 'pred: snapshot "i[0-9]*" version [^:]*: indexed' \
            "$WORK/logs/error.log" || true)
    [ "$built" -ge "$(wc -w <<< "$INDEX_KEYS")" ] && break
    sleep 0.5
done
[ "$built" -ge "$(wc -w <<< "$INDEX_KEYS")" ] \
    || { echo "the snapshot indexes were not built" >&2; exit 1; }

filter='&where=category:c3&min_score=0.2&exclude=i00001,i00002&limit=10&fields=id,score'
export NBATCH=10 BENCH_QUERY=$filter

names=(ceiling)
for n in $SNAP_KEYS; do names+=("snapshot-$n"); done
for n in $INDEX_KEYS; do names+=("snapshot-$n-index"); done
names+=(shm)
shm_variants=()
for n in $SHM_SIZES; do
    names+=("shm-zone-$n")
    if [ "$n" = "$biggest" ]; then shm_variants+=("/shm$n%$n locks=1")
    else shm_variants+=("/shm$n%$n"); fi
done
names+=(batch-10 list-filtered miss fallback fallback-breaker lua-dict
        proxy_cache redis shm-2workers batch-$POST_KEYS)
export POST_KEYS BATCH_DELAY_MS
rounds /ceiling $snap_variants /shm "${shm_variants[@]}" \
       "/batch@bench/batch-keys.lua%$first" \
       "/list@bench/query-key.lua%$LISTS" /miss /fallback \
       "/fallback port=$PORT_BRK pids=$brkpid" /lua /pcache /redis \
       "/shm%$biggest port=$PORT_2W pids=$w2pids cpus=0,1 locks=1" \
       "/batch-post@bench/batch-post.lua%$first mixed=/snap$first"
nv=$((${#names[@]} - 1))     # the table's variants: all but batch-1000

# memory, read after every variant has run
rss=$(awk '/^RssAnon|^RssFile|^RssShmem/ { printf "%s %.0f MiB, ", $1, $2 / 1024 }' \
      "/proc/$worker/status")
resident=
for n in $SNAP_KEYS; do
    resident+="s$n $(fincore -nb -o RES,SIZE "$WORK/s$n"/snap-*.mdb \
        | awk '{ r += $1; s += $2 } END { printf "%.1f%%", 100 * r / s }'), "
done
metrics=$(curl -sf "http://127.0.0.1:$PORT/metrics")
used=$(awk '/^pred_cache_bytes\{zone="hot",kind="used"\}/ { print $2 }' <<< "$metrics")
held=$(awk '/^pred_cache_entries\{zone="hot"\}/ { print $2 }' <<< "$metrics")

dat=$OUT_DIR/compare.dat
{
    echo "# variant req/s p50_ms p99_ms worker_cpu_us_per_req" \
         "req/s_min req/s_max p99_min p99_max cpu_min cpu_max"
    for i in $(seq 0 $((nv - 1))); do
        echo "${names[$i]} $(eval echo "\$m_rps_$i \$m_p50_$i \$m_p99_$i" \
             "\$m_cus_$i \$m_rps_lo_$i \$m_rps_hi_$i \$m_p99_lo_$i" \
             "\$m_p99_hi_$i \$m_cus_lo_$i \$m_cus_hi_$i")"
    done
} > "$dat"

gnuplot <<_EOG_
set terminal pngcairo size 1400,1200 font ",10" noenhanced
set output "$OUT_DIR/compare.png"
set multiplot layout 3,1 title "ngx_pred_module against the alternatives (same run, medians, bars: min-max over $ROUNDS rounds)"
set style data histograms
set style fill solid 0.8 border -1
set boxwidth 0.8
set xtics rotate by -30 scale 0
set grid ytics
set yrange [0:*]
set key top right
set style histogram errorbars gap 1 lw 1
set ylabel "requests/s"
plot "$dat" using 2:6:7:xtic(1) title "req/s" lc rgb "#4477aa"
set ylabel "worker CPU, us/request"
plot "$dat" using 5:10:11:xtic(1) title "worker CPU per request" lc rgb "#228833"
set style histogram clustered gap 1
set ylabel "latency, ms"
plot "$dat" using 3:xtic(1) title "p50" lc rgb "#66ccee", \
     "" using 4 title "p99" lc rgb "#ee6677"
unset multiplot
_EOG_

ceil_rps=$m_rps_0 ceil_p99=$m_p99_0 ceil_cus=$m_cus_0
rows=
for i in $(seq 0 $((nv - 1))); do
    r=m_rps_$i p=m_p50_$i q=m_p99_$i c=m_cus_$i
    rows+="| ${names[$i]} | $(spread "$i" rps) | ${!p} | $(spread "$i" p95) |"
    rows+=" $(spread "$i" p99) | $(spread "$i" cus) |"
    rows+=" $(ratio "${!r}" "$ceil_rps") | $(ratio "${!q}" "$ceil_p99") |"
    rows+=" $(ratio "${!c}" "$ceil_cus") |"$'\n'
done
zrows=
for n in $SHM_SIZES; do
    per=$(awk -v a="${z_used0[$n]}" -v b="${z_used[$n]}" -v n="$n" \
              'BEGIN { printf "%.0f", (b - a) / n }')
    zrows+="| $n | ${z_used[$n]} | ${z_used0[$n]} | $per |"
    zrows+=" $((12 + ${#zval})) | $((per - 12 - ${#zval})) |"$'\n'
done
i2=$((nv - 1)) ib=$nv is=
for i in $(seq 0 $((nv - 1))); do
    [ "${names[$i]}" = "shm-zone-$biggest" ] && is=$i
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

Medians of $ROUNDS rounds, with their spread (min-max) when there are several.

| variant | req/s | p50 ms | p95 ms | p99 ms | worker CPU us/req | req/s / ceiling | p99 / ceiling | CPU / ceiling |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
$rows
Variants: \`ceiling\` is \`return 200\` with a body of the same size;
\`snapshot-N\` a pred_snapshot hit on an N-key snapshot
(\`-index\`: the same file with \`index=on\`); \`shm\` a
pred_cache hit; \`batch-10\` a 10-key pred_batch GET (one request, ten
keys); \`list-filtered\` a 100-item list with
\`$filter\`;
\`miss\` pred_upstream on every request, no cache; \`fallback\` the model
unreachable (connection refused), answered by \`default=\`; \`lua-dict\`
content_by_lua reading ngx.shared.DICT; \`proxy_cache\` proxy_cache hits;
\`redis\` proxy_pass to the Redis-backed model server, no cache.

\`shm-zone-N\` a pred_cache hit in a $SHM_ZONE zone holding N entries
(random keys over them), filled by \`bench/fill-zone.pl\` through the
batch miss path; \`fallback-breaker\` the fallback with the model down
behind an open \`pred_upstream_breaker failures=5 cooldown=1h\` (its own
nginx, 1 worker on core 0); \`shm-2workers\` hits in one $SHM_ZONE zone of
$biggest entries served by 2 workers, one on each core, with wrk (1 thread)
free to run on either: on this 2-core machine the three share both cores,
so its req/s is no scaling figure; its worker CPU per request is summed over
both workers.

Worker CPU per request is the nginx worker's user+system time over the
requests wrk completed.  When wrk (or, for miss, redis and proxy_cache
fills, the model) on core 1 is the limit, req/s ratios flatter the slower
variant and this column does not.

Worker memory after the run (all snapshots mapped and read): $rss
the shm tier held $held entries in $used bytes of its zone ($hot0
empty), $(awk -v u="$used" -v e="$hot0" -v n="$held" \
              'BEGIN { printf "%.0f", (u - e) / n }') bytes per
entry for ${#body}-byte values and 12-byte keys.  Snapshot files resident
in the page cache after the run (fincore; read whole before it): ${resident%, }.

### Zone bytes per entry ($SHM_ZONE zones)

The zone's bytes in use (\`pred_cache_bytes{kind="used"}\`, whole slab
pages) after the fill, less what it used empty, over the entries
(\`pred_cache_entries\`); overhead is what an entry costs beyond its
12-byte key and ${#zval}-byte value.

| entries | bytes used | used empty | bytes per entry | key + value | overhead per entry |
|---:|---:|---:|---:|---:|---:|
$zrows
### Lock wait: 1 worker and 2 workers on one zone

sched_yield and futex calls per request of the measured workers
(\`perf stat -e syscalls:sys_enter_sched_yield,syscalls:sys_enter_futex\`
over each run): ngx_shmtx_lock spins, then yields, then sleeps on a
semaphore, so these count the lock's contended acquisitions; zero means
no worker ever waited past the spin.  Medians (min-max).

| variant | workers | req/s | worker CPU us/req | sched_yield + futex per 1000 requests |
|---|---:|---:|---:|---:|
| shm-zone-$biggest | 1 | $(spread "$is" rps) | $(spread "$is" cus) | $(spread "$is" lck) |
| shm-2workers | 2 | $(spread "$i2" rps) | $(spread "$i2" cus) | $(spread "$i2" lck) |

### A $POST_KEYS-key batch beside single-key traffic

One connection POSTs \`{"keys":[...]}\` with $POST_KEYS random keys of the
$first-key snapshot, pausing ${BATCH_DELAY_MS} ms before each, while a
second wrk ($CONNS connections) sends single-key requests to
\`/snap$first\`; both wrk on core 1.  Medians (min-max).

| batch p50 ms | batch p95 ms | batch p99 ms | single-key req/s beside | single-key req/s alone (snapshot-$first) |
|---:|---:|---:|---:|---:|
| $(spread "$ib" p50) | $(spread "$ib" p95) | $(spread "$ib" p99) | $(spread "$ib" rps) | $(spread 1 rps) |

![requests/s, worker CPU and latency](compare.png)
_EOR_

cat "$OUT_DIR/REPORT.md"
