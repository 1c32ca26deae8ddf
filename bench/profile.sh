#!/usr/bin/env bash
# Per hot path profiles: what one request costs in instructions and
# (simulated) cache misses, and where the CPU time goes.  For each variant:
#
#   ceiling        nginx "return 200", a body of the same size
#   shm            a pred_cache hit, SHM_KEYS entries in a SHM_ZONE zone
#                  (filled through the batch miss path from a Lua stub)
#   snapshot-N     a pred_snapshot hit, one per size in SNAP_KEYS, the file
#                  read into the page cache first
#   list-filtered  a 100-item list with pred_filter (LISTS lists)
#   batch-10       a 10-key pred_batch GET on the first snapshot
#   canary-shadow  the first snapshot with a candidate at 50% (another run
#                  of the same keys) and pred_shadow at 100% field=score
#   fallback-breaker  the model down behind an open pred_upstream_breaker
#
# 1. valgrind --tool=cachegrind on a single-process nginx (master_process
#    off, daemon off): one run serves the warmup (WARMUP requests, and the
#    fill or the breaker's trip) then N requests with random keys, another
#    only the warmup; their difference over N is the cost of one request,
#    startup, warmup and shutdown cancelling out.  Instructions (Ir), D1
#    misses (reads + writes) and LL misses (instruction + data) of
#    cachegrind's simulated caches, sized like this machine's.
# 2. perf record -e cpu-clock on the same nginx run natively (pinned to
#    core 0) while wrk (core 1) sends PERF_SECONDS of the same requests:
#    the top 10 symbols.
# This VM has no hardware counters (perf stat -e cycles, dTLB-load-misses:
# "not supported"): no cycle or TLB figures.  Writes $OUT.
#
# Knobs (environment):
#   N=2000 WARMUP=500      measured and warmup requests per cachegrind run
#   SNAP_KEYS="1000000 10000000"   snapshot sizes (built in WORK once and
#                          reused while their record count is the same)
#   SHM_KEYS=1000000 SHM_ZONE=512m   the shm variant's zone
#   LISTS=10000            candidate lists
#   PERF_SECONDS=5         perf record time per variant
#   CG_LL=33554432,16,64   cachegrind's last-level cache (size,assoc,line)
#   VARIANTS="ceiling shm snapshot-1000000 ..."   a subset (default: all)
#   PORT=18560 MODEL_PORT=18561 WORK=bench/work-profile
#   OUT=bench/results/profile.md
#
#   bench/profile.sh                              # all, about 25 minutes
#   (the shm variant fills its zone under cachegrind in both runs: about
#   25 s per run at 100k entries, so some 4 minutes a run at 1M)
#   SNAP_KEYS=20000 SHM_KEYS=20000 LISTS=1000 N=500 PERF_SECONDS=2 \
#       PORT=18620 MODEL_PORT=18621 bench/profile.sh

set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-2000}
WARMUP=${WARMUP:-500}
SNAP_KEYS=${SNAP_KEYS:-"1000000 10000000"}
SHM_KEYS=${SHM_KEYS:-1000000}
SHM_ZONE=${SHM_ZONE:-512m}
LISTS=${LISTS:-10000}
PERF_SECONDS=${PERF_SECONDS:-5}
# the VM's CPUID gives cachegrind a 256 MB direct-mapped LL; lscpu says
# 32 MiB of L3 (AMD EPYC: 16-way)
CG_LL=${CG_LL:-33554432,16,64}
PORT=${PORT:-18560}
MODEL_PORT=${MODEL_PORT:-18561}
WORK=${WORK:-$PWD/bench/work-profile}
OUT=${OUT:-$PWD/bench/results/profile.md}
KEYS=$SHM_KEYS
LUA_MODULES="load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;"

for c in valgrind cg_annotate perf wrk curl; do
    command -v $c >/dev/null || { echo "$c is not installed" >&2; exit 1; }
done

. bench/lib.sh

first=${SNAP_KEYS%% *}
all="ceiling shm"
for n in $SNAP_KEYS; do all+=" snapshot-$n"; done
all+=" list-filtered batch-10 canary-shadow fallback-breaker"
VARIANTS=${VARIANTS:-$all}

mkdir -p "$WORK/logs" "$WORK/model" "$WORK/runs" "$(dirname "$OUT")"

# the data, kept between runs: building 10M keys takes a minute
# build_snap NAME RECORDS GENERATOR...: a published snapshot in WORK/NAME
build_snap() {
    local dir=$WORK/$1 n=$2
    shift 2
    if [ "$(cat "$dir/records" 2>/dev/null)" = "$n" ]; then return; fi
    echo "# building $dir ($n records)"
    rm -rf "$dir"; mkdir -p "$dir"
    "$@" > "$WORK/in.jsonl"
    "$LOADER" build "$dir" --quiet --version v1 --input "$WORK/in.jsonl"
    "$LOADER" publish "$dir" v1 > /dev/null
    rm -f "$WORK/in.jsonl"
    echo "$n" > "$dir/records"
}
for n in $SNAP_KEYS; do build_snap "s$n" "$n" bench/gen-jsonl.pl "$n" 1; done
build_snap lists "$LISTS" bench/gen-lists.pl "$LISTS"

# canary-shadow: the first snapshot's file live, a second run as candidate
if [[ " $VARIANTS " == *" canary-shadow "* ]] \
    && [ "$(cat "$WORK/canary/records" 2>/dev/null)" != "$first" ]
then
    echo "# building $WORK/canary ($first records, two versions)"
    rm -rf "$WORK/canary"; mkdir -p "$WORK/canary"
    ln "$WORK/s$first/snap-v1.mdb" "$WORK/canary/snap-v1.mdb"
    "$LOADER" publish "$WORK/canary" v1 > /dev/null
    bench/gen-jsonl.pl "$first" 2 > "$WORK/in.jsonl"
    "$LOADER" build "$WORK/canary" --quiet --version v2 \
        --input "$WORK/in.jsonl"
    rm -f "$WORK/in.jsonl"
    "$LOADER" canary "$WORK/canary" v2 50 > /dev/null
    echo "$first" > "$WORK/canary/records"
fi
body=$(bench/gen-jsonl.pl 1 1 | perl -ne 'print $1 if /"value":(.*)\}$/')

# the model stub that fills the shm zone, a normal nginx on core 1
cat > "$WORK/model/nginx.conf" <<_EOC_
$LUA_MODULES
$(nginx_main "$WORK/model" 10)
http {
    access_log off;
    server {
        listen 127.0.0.1:$MODEL_PORT backlog=4096;
        location = /batch-predict {
            client_body_buffer_size 1m;
            client_max_body_size 1m;
            default_type application/json;
            content_by_lua_file $PWD/bench/batch-model.lua;
        }
    }
}
_EOC_
"$NGINX" -p "$WORK/model/" -c "$WORK/model/nginx.conf"
ngx_pid=
stop_all() {
    [ -n "$ngx_pid" ] && kill -QUIT "$ngx_pid" 2>/dev/null || true
    "$NGINX" -p "$WORK/model/" -c "$WORK/model/nginx.conf" -s stop \
        2>/dev/null || true
}
trap stop_all EXIT

# conf VARIANT: a single-process nginx serving the variant on /t
conf() {
    local loc http= extra=
    case $1 in
    ceiling)
        loc="return 200 '$body';" ;;
    shm)
        http="pred_cache_zone zone=hot:$SHM_ZONE ttl=1h;"
        loc="pred_key \$arg_id; pred_cache hot; pred;"
        extra="location = /bfill {
            pred_key \$arg_keys; pred_batch on max=1000; pred_cache hot;
            pred_upstream /_bmodel timeout=10s max_size=1m; pred;
        }" ;;
    snapshot-*)
        http="pred_snapshot_path s $WORK/s${1#snapshot-};"
        loc="pred_key \$arg_id; pred_snapshot s; pred;" ;;
    list-filtered)
        http="pred_snapshot_path lists $WORK/lists;"
        loc="pred_key \$arg_id; pred_snapshot lists; pred_filter on; pred;" ;;
    canary-shadow)
        http="pred_snapshot_path c $WORK/canary;
            pred_shadow rate=100 field=score;"
        loc="pred_key \$arg_id; pred_snapshot c; pred;" ;;
    batch-10)
        http="pred_snapshot_path s $WORK/s$first;"
        loc="pred_key \$arg_keys; pred_snapshot s; pred_batch on; pred;" ;;
    fallback-breaker)
        http="pred_upstream_breaker failures=5 cooldown=1h;"
        loc="pred_key \$arg_id; pred_upstream /_down timeout=1s;
            pred_fallback 'default={\"score\":0.0}'; pred;" ;;
    esac
    cat <<_EOC_
load_module $MODULE;
$( [ "$(id -u)" = 0 ] && echo 'user root;' )
master_process off;
daemon off;
worker_processes 1;
error_log $WORK/logs/error.log notice;
pid $WORK/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    default_type application/json;
    client_body_buffer_size 64k;
    $http
    server {
        listen 127.0.0.1:$PORT backlog=1024;
        location = /t { $loc }
        $extra
        location = /_bmodel {
            internal;
            proxy_method POST;
            proxy_set_header Content-Type application/json;
            proxy_set_body \$pred_keys_json;
            proxy_pass http://127.0.0.1:$MODEL_PORT/batch-predict;
        }
        location /_down { internal; proxy_pass http://127.0.0.1:1; }
    }
}
_EOC_
}

# urls VARIANT COUNT SEED: COUNT request URLs for the variant, random keys
urls() {
    local keys=$SHM_KEYS query=
    case $1 in
    snapshot-*) keys=${1#snapshot-} ;;
    list-filtered) keys=$LISTS
        query='&where=category:c3&min_score=0.2&exclude=i00001,i00002&limit=10&fields=id,score' ;;
    batch-10|canary-shadow) keys=$first ;;
    esac
    perl -e 'my ($v, $n, $k, $seed, $base, $q) = @ARGV; srand($seed);
             for (1 .. $n) {
                 if ($v eq "batch-10") {
                     print "$base/t?keys=", join(",", map {
                         sprintf "user_%07d", int(rand $k) } 1 .. 10), "\n";
                 } else {
                     printf "%s/t?id=user_%07d%s\n", $base, int(rand $k), $q;
                 } }' "$1" "$2" "$keys" "$3" "http://127.0.0.1:$PORT" "$query"
}

# get URLS_FILE: sends them on one keepalive connection, each must be a 200
get() {
    perl -MHTTP::Tiny -e 'my $h = HTTP::Tiny->new(keep_alive => 1);
        while (my $u = <STDIN>) { chomp $u; my $r = $h->get($u);
            die "$u: $r->{status} $r->{content}\n" if $r->{status} != 200 }' \
        < "$1"
}

# start VARIANT [WRAPPER...]: the variant's nginx in the background, pinned
# to core 0, ready once it answers
start() {
    local v=$1 i
    shift
    conf "$v" > "$WORK/nginx.conf"
    taskset -c 0 "$@" "$NGINX" -p "$WORK/" -c "$WORK/nginx.conf" \
        2>> "$WORK/logs/stderr.log" &
    ngx_pid=$!
    for i in $(seq 600); do
        curl -s -o /dev/null "http://127.0.0.1:$PORT/" && return
        kill -0 "$ngx_pid" 2>/dev/null \
            || { echo "nginx for $v exited" >&2; tail "$WORK/logs/error.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "nginx for $v did not start" >&2; exit 1
}

# a graceful stop; a nginx under valgrind that has not exited after two
# minutes is told to exit now (cachegrind still writes its counts)
stop() {
    local i
    kill -QUIT "$ngx_pid"
    for i in $(seq 1200); do
        kill -0 "$ngx_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -TERM "$ngx_pid" 2>/dev/null || true
    wait "$ngx_pid" || true
    ngx_pid=
}

# warmup VARIANT: the same for both cachegrind runs and before perf
warmup() {
    case $1 in
    shm) bench/fill-zone.pl "http://127.0.0.1:$PORT/bfill" "$SHM_KEYS" ;;
    fallback-breaker)
        # five failed calls open the breaker for the rest of the run
        urls "$1" 6 7 > "$WORK/trip.urls"; get "$WORK/trip.urls" ;;
    snapshot-*) cat "$WORK/s${1#snapshot-}"/snap-*.mdb > /dev/null ;;
    esac
    get "$WORK/warmup.urls"
}

# cg VARIANT COUNT: a cachegrind run serving the warmup then COUNT
# requests; prints its summary "Ir I1mr ILmr Dr D1mr DLmr Dw D1mw DLmw"
cg() {
    local f=$WORK/runs/cg.$1.$2
    start "$1" valgrind --tool=cachegrind --cache-sim=yes --LL="$CG_LL" \
        --cachegrind-out-file="$f" --log-file="$f.log"
    warmup "$1"
    [ "$2" = 0 ] || get "$WORK/measure.urls"
    stop
    awk '/^summary:/ { $1 = ""; print }' "$f"
}

# per IDX...: the events at those places of the summaries, summed, per
# measured request
per() {
    local s=0 i
    for i in "$@"; do s=$((s + meas[i] - base[i])); done
    awk -v s="$s" -v n="$N" 'BEGIN { v = s / n; if (v > -0.05 && v < 0.05) v = 0;
                                     printf "%.1f", v }'
}

rows= tops= ceil_ir=
for v in $VARIANTS; do
    echo "# $v: cachegrind, $N requests after $WARMUP"
    urls "$v" "$WARMUP" 1 > "$WORK/warmup.urls"
    urls "$v" "$N" 2 > "$WORK/measure.urls"
    read -r -a base <<< "$(cg "$v" 0)"
    read -r -a meas <<< "$(cg "$v" "$N")"
    ir=$(per 0) d1=$(per 4 7) ll=$(per 2 5 8) i1=$(per 1)
    [ -n "$ceil_ir" ] || ceil_ir=$ir
    rows+="| $v | $ir | $(ratio "$ir" "$ceil_ir") | $i1 | $d1 | $ll |"$'\n'

    echo "# $v: perf record, ${PERF_SECONDS}s of wrk"
    start "$v"
    warmup "$v"
    perf record -q -e cpu-clock -o "$WORK/runs/perf.$v.data" -p "$ngx_pid" \
        -- sleep $((PERF_SECONDS + 1)) 2>/dev/null &
    perf_pid=$!
    sleep 0.3
    if [ "$v" = batch-10 ]; then lua=bench/batch-keys.lua; k=$first
    elif [ "$v" = list-filtered ]; then lua=bench/query-key.lua; k=$LISTS
    else lua=bench/random-key.lua; k=$SHM_KEYS; fi
    case $v in snapshot-*) k=${v#snapshot-} ;; esac
    BENCH_PATH=/t KEYS=$k NBATCH=10 BENCH_QUERY='&where=category:c3&min_score=0.2&exclude=i00001,i00002&limit=10&fields=id,score' \
        taskset -c 1 wrk -t1 -c32 -d"${PERF_SECONDS}s" -s "$lua" \
        "http://127.0.0.1:$PORT/t" > "$WORK/runs/wrk.$v.out"
    wait "$perf_pid"
    stop
    pd=$WORK/runs/perf.$v.data
    tops+="### $v"$'\n\n'"$(awk '/^Requests\/sec/ { print "wrk: " $2 " req/s" }' \
        "$WORK/runs/wrk.$v.out"); $(perf report -i "$pd" --stdio 2>/dev/null \
        | awk '/^# Samples:/ { print $3 }') samples of the nginx process, by"
    tops+=" object: $(perf report -i "$pd" --stdio --no-children --sort dso \
        -t '|' 2>/dev/null | awk -F'|' '/%/ { gsub(/ /, ""); printf "%s%s %s",
        n++ ? ", " : "", $2, $1 }')."$'\n\n'
    tops+="| samples | symbol | object |"$'\n'"|---:|---|---|"$'\n'
    tops+="$(perf report -i "$pd" --stdio --no-children --sort symbol,dso \
             -t '|' 2>/dev/null \
        | awk -F'|' '/%/ && n++ < 10 { gsub(/^ +| +$/, "", $1);
               gsub(/^ +| +$/, "", $2); gsub(/^ +| +$/, "", $3);
               print "| " $1 " | `" $2 "` | " $3 " |" }')"$'\n\n'
done

v1=${VARIANTS%% *}
caches=$(grep '^desc:' "$WORK/runs/cg.$v1.0" | sed 's/^desc: *//; s/  */ /g' \
         | paste -sd';' | sed 's/;/; /g')

cat > "$OUT" <<_EOR_
# Per hot path profiles

$(machine)
$(valgrind --version); $(perf version 2>&1).
Command: \`N=$N WARMUP=$WARMUP SNAP_KEYS="$SNAP_KEYS" SHM_KEYS=$SHM_KEYS SHM_ZONE=$SHM_ZONE LISTS=$LISTS PERF_SECONDS=$PERF_SECONDS bench/profile.sh\`

## Instructions and simulated cache misses per request

\`valgrind --tool=cachegrind --cache-sim=yes\` on a single-process nginx
(\`master_process off; daemon off;\`) serving $WARMUP warmup requests (after
the shm zone's fill of $SHM_KEYS entries, the breaker's trip) and then $N
requests with random keys on one keepalive connection, less the same run
without the $N: per request, deterministic, whatever else runs on the
machine.  Simulated caches: $caches (LL set with
\`--LL=$CG_LL\`: this VM's CPUID would give a 256 MB direct-mapped one).
D1 misses are reads and writes; LL misses instruction and data.

| variant | instructions/req | / ceiling | I1 misses/req | D1 misses/req | LL misses/req |
|---|---:|---:|---:|---:|---:|
$rows
Not measured: cycles and dTLB misses.  This VM exposes no hardware
counters (\`perf stat -e cycles\` and \`-e dTLB-load-misses\` are "not
supported"), and cachegrind does not model the TLB; LL misses of the
simulated cache are the closest figure for lookups that leave the caches.

## Where the CPU time goes

\`perf record -e cpu-clock\` (software clock sampling) of the same nginx,
run natively pinned to core 0, while wrk (1 thread, 32 connections, core 1)
sends ${PERF_SECONDS} s of the same requests; the share of each object
and the 10 symbols with the most samples (kernel symbols included).
Debian's liblmdb has no symbols (addresses only; liblmdb0-dbgsym names
them).

$tops
_EOR_

cat "$OUT"
