# Shared by the bench/ scripts: running wrk against a pinned nginx worker,
# parsing its output, medians and spreads.  Source it from the project's
# top folder after setting PORT and KEYS (and anything below to override).
#
# Knobs (environment):
#   ROUNDS=3 DURATION=10 CONNS=64   rounds per variant, seconds per run,
#                                   wrk connections
#   NGINX_BINARY=/usr/sbin/nginx    the nginx to run
# run() and rounds() measure the worker(s) in $worker (space- or
# comma-separated pids) on $PORT, with wrk on core 1, unless a variant
# says otherwise (see rounds).

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
# not $NGINX from the environment: nginx reads it as inherited sockets
NGINX=${NGINX_BINARY:-/usr/sbin/nginx}
LOADER=$PWD/build/pred-snapshot
MODULE=$PWD/build/nginx/objs/ngx_http_pred_module.so

[ -x "$LOADER" ] && [ -f "$MODULE" ] || { echo "run make first" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk is not installed" >&2; exit 1; }

# nginx_main DIR CPUMASK [WORKERS]: the main context of an nginx whose
# prefix is DIR (logs in DIR/logs), its WORKERS (1) workers pinned to the
# cores in CPUMASK (one mask per worker).  Run as root, the workers are
# root too: nobody cannot read a checkout in a private folder (a mode 0700
# clone, /root), where the snapshots are.
nginx_main() {
    mkdir -p "$1/logs"
    [ "$(id -u)" = 0 ] && echo 'user root;'
    cat <<_EOC_
worker_processes ${3:-1};
worker_cpu_affinity $2;
error_log $1/logs/error.log notice;
pid $1/nginx.pid;
events { worker_connections 4096; }
_EOC_
}

# worker_of DIR: the pids of that nginx's workers, one a line
worker_of() { pgrep -f "nginx: worker process" -P "$(cat "$1/nginx.pid")"; }

# wrk prints latency in us, ms or s
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 }
        else { sub(/s$/, "", v); print v * 1000 } }'
}

# cpu [PIDS]: CPU seconds the workers (default: those in $worker) have used
cpu() {
    local p t=0 hz
    hz=$(getconf CLK_TCK)
    for p in ${1:-$worker}; do
        t=$(awk -v t="$t" '{ print t + $14 + $15 }' "/proc/$p/stat")
    done
    awk -v t="$t" -v hz="$hz" 'BEGIN { printf "%.3f", t / hz }'
}

# wrk_script LUA: LUA with a done() that prints "pct P50 P95 P99" in us
# (wrk --latency has no p95); written next to the logs, in $WORK
wrk_script() {
    local out=${WORK:-/tmp}/wrk-$(basename "$1")
    { cat "$1"; cat <<'_EOL_'
done = function(summary, latency, requests)
    io.write(string.format("pct %d %d %d\n", latency:percentile(50),
                           latency:percentile(95), latency:percentile(99)))
end
_EOL_
    } > "$out"
    echo "$out"
}

# wrk_parse WRK_OUTPUT: "rps p50_ms p95_ms p99_ms non2xx socket_errors reqs"
wrk_parse() {
    awk '/^Requests\/sec:/ { rps = $2 }
         /^pct / { p50 = $2 / 1000; p95 = $3 / 1000; p99 = $4 / 1000 }
         /Non-2xx/ { non2xx = $NF }
         /Socket errors/ { gsub(/[^0-9 ]/, ""); for (i = 1; i <= NF; i++) s += $i }
         /requests in/ { reqs = $1 }
         END { printf "%s %s %s %s %d %d %d\n", rps, p50, p95, p99,
                      non2xx, s, reqs }' <<< "$1"
}

# lock_count FILE: the sched_yield and futex calls "perf stat -x," counted
lock_count() {
    awk -F, '/sys_enter_sched_yield|sys_enter_futex/ { s += $1 }
             END { print s + 0 }' "$1"
}

# run PATH SECONDS [LUA [KEYS]]: prints "rps p50_ms p99_ms non2xx
# socket_errors worker_cpu_us_per_request p95_ms locks_per_1000_requests".
# RUN_PORT (default $PORT), RUN_PIDS (default $worker), RUN_CPUS (wrk's
# cores, default 1); RUN_LOCKS=1 counts the workers' sched_yield and futex
# calls (ngx_shmtx spinning and sleeping) with perf stat, else "-".
run() {
    local out p50 p95 p99 rps non2xx sock reqs c0 c1 pids locks=- pf=
    pids=${RUN_PIDS:-$worker}; pids=${pids//,/ }
    if [ "${RUN_LOCKS:-0}" = 1 ]; then
        pf=${WORK:-/tmp}/perf-stat.$$
        perf stat -x, -o "$pf" -p "$(tr ' ' , <<< "$pids")" \
            -e 'syscalls:sys_enter_sched_yield,syscalls:sys_enter_futex' \
            -- sleep $(($2 + 1)) 2>/dev/null &
        sleep 0.3
    fi
    c0=$(cpu "$pids")
    out=$(BENCH_PATH=$1 KEYS=${4:-$KEYS} taskset -c "${RUN_CPUS:-1}" \
          wrk -t1 -c"$CONNS" -d"${2}s" \
          -s "$(wrk_script "${3:-bench/random-key.lua}")" \
          "http://127.0.0.1:${RUN_PORT:-$PORT}$1")
    c1=$(cpu "$pids")
    read -r rps p50 p95 p99 non2xx sock reqs <<< "$(wrk_parse "$out")"
    if [ -n "$pf" ]; then
        wait $!
        locks=$(awk -v c="$(lock_count "$pf")" -v n="$reqs" \
                    'BEGIN { printf "%.3f", c * 1000 / n }')
        rm -f "$pf"
    fi
    echo "$rps $p50 $p99 $non2xx $sock" \
         "$(awk -v c="$c1" -v b="$c0" -v n="$reqs" \
                'BEGIN { printf "%.2f", (c - b) * 1e6 / n }') $p95 $locks"
}

# run_mixed PATH SECONDS LUA KEYS BESIDE: a batch script (LUA, its own
# pacing through delay()) on one connection to PATH while a second wrk
# sends single-key requests (random-key.lua) to BESIDE; prints the
# batch's "- p50 p99 non2xx socket_errors - p95 -" with the single-key
# traffic's req/s in place of the first "-".
run_mixed() {
    local bout sout a
    BENCH_PATH=$5 KEYS=$4 taskset -c "${RUN_CPUS:-1}" wrk -t1 -c"$CONNS" \
        -d"$(($2 + 1))s" -s "$(wrk_script bench/random-key.lua)" \
        "http://127.0.0.1:${RUN_PORT:-$PORT}$5" > "$WORK/beside.out" &
    sleep 0.5
    bout=$(BENCH_PATH=$1 KEYS=$4 taskset -c "${RUN_CPUS:-1}" \
           wrk -t1 -c1 -d"${2}s" -s "$(wrk_script "$3")" \
           "http://127.0.0.1:${RUN_PORT:-$PORT}$1")
    wait $!
    sout=$(cat "$WORK/beside.out")
    read -r a a a a b1 b2 a <<< "$(wrk_parse "$sout")"
    [ "$b1" = 0 ] && [ "$b2" = 0 ] \
        || { echo "errors in the traffic beside $1: $sout" >&2; exit 1; }
    read -r rps p50 p95 p99 non2xx sock reqs <<< "$(wrk_parse "$bout")"
    [ "$reqs" -gt 0 ] || { echo "no batch answered: $bout" >&2; exit 1; }
    echo "$(wrk_parse "$sout" | cut -d' ' -f1) $p50 $p99 $non2xx $sock -" \
         "$p95 -"
}

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# mstat LIST FORMAT: "median min max" of the numbers in LIST (the median
# of an even count the mean of the middle two) printed with FORMAT, "- - -"
# if none
mstat() {
    tr ' ' '\n' <<< "$1" | grep -E '^[0-9.]+$' | sort -g \
        | awk -v f="$2" '{ a[NR] = $1 }
               END { if (NR == 0) { print "- - -"; exit }
                     m = NR % 2 ? a[(NR + 1) / 2] \
                                : (a[NR / 2] + a[NR / 2 + 1]) / 2;
                     printf f " " f " " f "\n", m, a[1], a[NR] }'
}

# rounds VARIANT...: ROUNDS alternating runs of each variant, and for the
# Nth of them sets m_X_N (median), m_X_lo_N and m_X_hi_N (min, max) for X
# in rps p50 p95 p99 cus lck.  A variant is "/path[@script.lua][%KEYS]"
# followed by options, space-separated: port=P, pids=PID,PID (the workers
# measured), cpus=LIST (wrk's cores), locks=1 (count lock syscalls),
# mixed=/PATH (run_mixed: the batch script paced, /PATH beside it).
rounds() {
    local r i v spec path lua keys o a b c d e f g h
    local -a rps p50 p95 p99 cus lck
    for r in $(seq 1 "$ROUNDS"); do
        i=0
        for spec in "$@"; do
            read -r v spec <<< "$spec"
            keys=$KEYS
            case $v in *%*) keys=${v##*%}; v=${v%\%*} ;; esac
            path=${v%@*}; lua=${v#*@}; [ "$lua" = "$v" ] && lua=""
            local RUN_PORT=$PORT RUN_PIDS=$worker RUN_CPUS=1 RUN_LOCKS=0 \
                  mixed=
            for o in $spec; do
                case $o in
                port=*) RUN_PORT=${o#*=} ;;
                pids=*) RUN_PIDS=${o#*=} ;;
                cpus=*) RUN_CPUS=${o#*=} ;;
                locks=*) RUN_LOCKS=${o#*=} ;;
                mixed=*) mixed=${o#*=} ;;
                *) echo "rounds: unknown option $o" >&2; exit 1 ;;
                esac
            done
            if [ -n "$mixed" ]; then
                read -r a b c d e f g h < <(run_mixed "$path" "$DURATION" \
                                            "$lua" "$keys" "$mixed")
            else
                read -r a b c d e f g h < <(run "$path" "$DURATION" \
                                    "${lua:-bench/random-key.lua}" "$keys")
            fi
            echo "# round $r :$RUN_PORT$path: $a req/s, p50 $b ms, p95 $g ms," \
                 "p99 $c ms, non-2xx $d, socket errors $e," \
                 "worker CPU $f us/req, lock syscalls $h per 1k req" >&2
            [ "$d" = 0 ] && [ "$e" = 0 ] \
                || { echo "errors in $path" >&2; exit 1; }
            rps[$i]+="$a "; p50[$i]+="$b "; p99[$i]+="$c "; cus[$i]+="$f "
            p95[$i]+="$g "; lck[$i]+="$h "
            i=$((i + 1))
        done
    done
    for i in $(seq 0 $(($# - 1))); do
        for o in rps:%.0f p50:%.3f p95:%.3f p99:%.3f cus:%.2f lck:%.3f; do
            eval "read -r m_${o%:*}_$i m_${o%:*}_lo_$i m_${o%:*}_hi_$i" \
                 '<<< "$(mstat "${'"${o%:*}"'[$i]}" "${o#*:}")"'
        done
    done
}

# spread N X: "median (min-max)" of X for the Nth variant of rounds
spread() {
    local m=m_$2_$1 lo=m_$2_lo_$1 hi=m_$2_hi_$1
    if [ "$ROUNDS" -gt 1 ] && [ "${!m}" != - ]; then
        echo "${!m} (${!lo}-${!hi})"
    else
        echo "${!m}"
    fi
}

ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "-" || b == "-" || b == 0) print "-";
        else printf "%.3f", a / b }'
}

machine() {
    echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo);"
    echo "$("${NGINX:-/usr/sbin/nginx}" -v 2>&1); $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)."
}
