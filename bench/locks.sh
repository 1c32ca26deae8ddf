#!/usr/bin/env bash
# Lock waits on one cache zone: 2 workers (one per core) serving shm hits
# while wrk (2 threads) sends random keys; for each module given, ROUNDS
# runs of DURATION s with the workers' sched_yield and futex syscalls
# counted by perf stat (ngx_shmtx spins, then yields or sleeps on its
# semaphore: these count the waits past the spin).  For a before/after,
# give an older build of the module beside this one.
#
#   bench/locks.sh [MODULE.so ...]      # default: this build's
#   N=100000 ROUNDS=3 DURATION=5 PORT=18650 bench/locks.sh old.so new.so

set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-100000}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
PORT=${PORT:-18650}
WORK=${WORK:-$PWD/bench/work-locks}
[ $# -gt 0 ] || set -- "$PWD/build/nginx/objs/ngx_http_pred_module.so"

command -v perf >/dev/null || { echo "perf is not installed" >&2; exit 1; }

mkdir -p "$(dirname "$WORK")"
cat > "$WORK.put.lua" <<'_EOL_'
-- PUT /admin/user_0000000 .. user_(N-1) once each, then the last again
local keys = tonumber(os.getenv("KEYS"))
local n = -1
local body = '{"score":0.123456,"label":"abcdefghij","items":[1,2,3,4,5,6,7,8,9,10]}'
request = function()
    n = math.min(n + 1, keys - 1)
    return wrk.format("PUT", string.format("/admin/user_%07d", n), nil, body)
end
_EOL_

for so in "$@"; do
    rm -rf "$WORK"
    mkdir -p "$WORK/logs"
    {
        echo "load_module $so;"
        [ "$(id -u)" = 0 ] && echo 'user root;'
        cat <<_EOC_
worker_processes 2;
worker_cpu_affinity 01 10;
error_log $WORK/logs/error.log notice;
pid $WORK/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    pred_cache_zone zone=hot:512m admin=256m;
    server {
        listen 127.0.0.1:$PORT reuseport;
        pred_cache hot;
        location = /predict { pred_key \$arg_id; pred; }
        location /admin/ { pred_admin; }
    }
}
_EOC_
    } > "$WORK/nginx.conf"

    /usr/sbin/nginx -p "$WORK/" -c "$WORK/nginx.conf"
    sleep 0.5
    KEYS=$N wrk -t1 -c1 -d$((N / 4000 + 3))s -s "$WORK.put.lua" \
        "http://127.0.0.1:$PORT" > /dev/null
    pids=$(pgrep -f "nginx: worker process" -P "$(cat "$WORK/nginx.pid")" \
           | paste -sd,)

    for r in $(seq "$ROUNDS"); do
        perf stat -x, -o "$WORK/perf.$r" -p "$pids" \
            -e 'syscalls:sys_enter_sched_yield,syscalls:sys_enter_futex' \
            -- sleep $((DURATION + 1)) &
        sleep 0.2
        out=$(KEYS=$N BENCH_PATH=/predict wrk -t2 -c64 -d"${DURATION}s" \
              -s bench/random-key.lua "http://127.0.0.1:$PORT/predict")
        wait
        reqs=$(awk '/requests in/ { print $1 }' <<< "$out")
        y=$(awk -F, '/sched_yield/ { print $1 }' "$WORK/perf.$r")
        f=$(awk -F, '/sys_enter_futex/ { print $1 }' "$WORK/perf.$r")
        printf '%s round %d: %s req/s, sched_yield %s, futex %s, %s per 1000 requests\n' \
            "$so" "$r" "$(awk '/Requests\/sec/ { print $2 }' <<< "$out")" \
            "$y" "$f" \
            "$(awk -v a="$y" -v b="$f" -v n="$reqs" \
                   'BEGIN { printf "%.3f", (a + b) * 1000 / n }')"
    done

    /usr/sbin/nginx -p "$WORK/" -c "$WORK/nginx.conf" -s stop
    sleep 0.5
done
