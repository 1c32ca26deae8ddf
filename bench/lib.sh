# Shared by the bench/ scripts: running wrk against a pinned nginx worker,
# parsing its output, medians.  Source it from the project's top folder
# after setting PORT and KEYS (and anything below to override).

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
# not $NGINX from the environment: nginx reads it as inherited sockets
NGINX=${NGINX_BINARY:-/usr/sbin/nginx}
LOADER=$PWD/build/pred-snapshot
MODULE=$PWD/build/nginx/objs/ngx_http_pred_module.so

[ -x "$LOADER" ] && [ -f "$MODULE" ] || { echo "run make first" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 1; }

# nginx_main DIR CPUMASK: the main context of a one-worker nginx whose
# prefix is DIR (logs in DIR/logs), pinned to the cores in CPUMASK.  Run
# as root, the worker is root too: nobody cannot read a checkout in a
# private folder (a mode 0700 clone, /root), where the snapshots are.
nginx_main() {
    mkdir -p "$1/logs"
    [ "$(id -u)" = 0 ] && echo 'user root;'
    cat <<_EOC_
worker_processes 1;
worker_cpu_affinity $2;
error_log $1/logs/error.log notice;
pid $1/nginx.pid;
events { worker_connections 4096; }
_EOC_
}

# worker_of DIR: the pid of that nginx's worker
worker_of() { pgrep -f "nginx: worker process" -P "$(cat "$1/nginx.pid")"; }

# wrk prints latency in us, ms or s
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 }
        else { sub(/s$/, "", v); print v * 1000 } }'
}

# CPU seconds the worker (pid in $worker) has used
cpu() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' \
        "/proc/$worker/stat"
}

# run PATH SECONDS [LUA [KEYS]]: prints
# "rps p50_ms p99_ms non2xx socket_errors worker_cpu_us_per_request"
run() {
    local out rps p50 p99 non2xx sock c0 c1 reqs
    c0=$(cpu)
    out=$(BENCH_PATH=$1 KEYS=${4:-$KEYS} taskset -c 1 wrk -t1 -c"$CONNS" \
          -d"${2}s" --latency -s "${3:-bench/random-key.lua}" \
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

# rounds VARIANT...: ROUNDS alternating runs of each variant ("/path",
# "/path@script.lua", either with "%KEYS" appended for its own key count);
# sets m_rps_N, m_p50_N, m_p99_N, m_cus_N for the Nth
rounds() {
    local r i v path lua keys a b c d e f
    local -a rps p50 p99 cus
    for r in $(seq 1 "$ROUNDS"); do
        i=0
        for v in "$@"; do
            keys=$KEYS
            case $v in *%*) keys=${v##*%}; v=${v%\%*} ;; esac
            path=${v%@*}; lua=${v#*@}; [ "$lua" = "$v" ] && lua=""
            read -r a b c d e f < <(run "$path" "$DURATION" \
                                    "${lua:-bench/random-key.lua}" "$keys")
            echo "# round $r $path: $a req/s, p50 $b ms, p99 $c ms," \
                 "non-2xx $d, socket errors $e, worker CPU $f us/req" >&2
            [ "$d" = 0 ] && [ "$e" = 0 ] \
                || { echo "errors in $path" >&2; exit 1; }
            rps[$i]+="$a "; p50[$i]+="$b "; p99[$i]+="$c "; cus[$i]+="$f "
            i=$((i + 1))
        done
    done
    for i in $(seq 0 $(($# - 1))); do
        printf -v "m_rps_$i" '%s' "$(tr ' ' '\n' <<< "${rps[$i]}" | grep . | median)"
        printf -v "m_p50_$i" '%s' "$(tr ' ' '\n' <<< "${p50[$i]}" | grep . | median)"
        printf -v "m_p99_$i" '%s' "$(tr ' ' '\n' <<< "${p99[$i]}" | grep . | median)"
        printf -v "m_cus_$i" '%s' "$(tr ' ' '\n' <<< "${cus[$i]}" | grep . | median)"
    done
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

machine() {
    echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo);"
    echo "$("${NGINX:-/usr/sbin/nginx}" -v 2>&1); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)."
}
