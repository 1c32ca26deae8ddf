#!/usr/bin/env bash
# Cascade benchmark: a 3-stage pred_cascade in which stage 1 settles 80% of
# the requests, against a single pred_upstream call to its slowest stage;
# p50/p99 latency and model calls per request, every request a miss.
#
#   cascade   rules (~2 ms, timeout 5ms, exit_if confidence >= 0.9; sure
#             for 80% of the keys), then trees (~10 ms, 20ms, never sure),
#             then net (~40 ms, 60ms); pred_budget 100ms
#   single    pred_upstream /_net timeout=100ms: the net stage alone
#
# The model stub is a second nginx (echo module: echo_sleep, then a fixed
# answer), 1 worker; it shares core 1 with wrk, the nginx under test has 1
# worker on core 0.  No pred_cache and no snapshot: every request runs the
# cascade (or the single call).  Random keys over KEYS (10M) so that two
# requests in flight almost never share a key and single-flight merges
# nothing.  Each request holds its connection 2-55 ms, so req/s is set by
# the latency at a fixed concurrency (CONNS=32), not by CPU.
#
# Per run: wrk's req/s; each request's own latency, by the stage that
# answered it, from bench/cascade-latency.lua (wrk's percentiles carry its
# coordinated-omission correction, which makes up samples on this
# two-humped distribution: see there); the stub's access logs (one per
# stage) count the model calls, the nginx under test's access log
# ($pred_stage) the requests and which stage answered them, and /metrics
# (pred_cascade_stage_total, the stage and upstream duration histograms)
# what each stage came to and how long it took.  Both logs are read after
# the requests wrk left in flight have finished, so the calls of every
# logged request, and only those, are counted.
#
# Knobs (environment; lib.sh has ROUNDS, DURATION, CONNS):
#   KEYS=10000000 CONNS=32
#   PORT=18610 MODEL_PORT=18611
#   WORK=bench/work-cascade  OUT=bench/results/cascade.md (the raw run log
#                            beside it, cascade-run.log)
#
#   bench/cascade.sh                        # 3 rounds of 10 s: 70 s
#   ROUNDS=3 DURATION=8 bench/cascade.sh
#   bench/cascade.sh --smoke                # 1 round of 2 s, into
#                                           # bench/work-cascade/

set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --smoke ]; then
    ROUNDS=1 DURATION=2
    WORK=$PWD/bench/work-cascade OUT=$PWD/bench/work-cascade/cascade.md
fi

KEYS=${KEYS:-10000000}
CONNS=${CONNS:-32}
PORT=${PORT:-18610}
MODEL_PORT=${MODEL_PORT:-18611}
WORK=${WORK:-$PWD/bench/work-cascade}
OUT=${OUT:-$PWD/bench/results/cascade.md}
LOG=${OUT%.md}-run.log
ECHO_MODULE=/usr/lib/nginx/modules/ngx_http_echo_module.so

[ -f "$ECHO_MODULE" ] \
    || { echo "libnginx-mod-http-echo is not installed" >&2; exit 1; }

. bench/lib.sh

rm -rf "$WORK"
mkdir -p "$WORK/model/logs" "$WORK/logs" "$(dirname "$OUT")"
# everything this script prints, rounds included, is the raw run log
exec > >(tee "$LOG") 2>&1

# The stub: each stage sleeps its latency, then answers.  rules is sure of
# keys whose last digit is 0-7 (80% of uniformly random keys), the regex
# location winning over the prefix one; trees is never sure; net is.  One
# access log per stage: its lines are that stage's calls.
cat > "$WORK/model/nginx.conf" <<_EOC_
load_module $ECHO_MODULE;
$(nginx_main "$WORK/model" 10)
http {
    log_format call '\$request_time';
    keepalive_requests 1000000;
    default_type application/json;
    server {
        listen 127.0.0.1:$MODEL_PORT backlog=4096;
        location ~ ^/rules/.*[0-7]\$ {
            access_log $WORK/model/logs/rules.log call;
            echo_sleep 0.002;
            echo -n '{"confidence":0.95}';
        }
        location /rules/ {
            access_log $WORK/model/logs/rules.log call;
            echo_sleep 0.002;
            echo -n '{"confidence":0.5}';
        }
        location /trees/ {
            access_log $WORK/model/logs/trees.log call;
            echo_sleep 0.010;
            echo -n '{"confidence":0.6}';
        }
        location /net/ {
            access_log $WORK/model/logs/net.log call;
            echo_sleep 0.040;
            echo -n '{"confidence":0.99}';
        }
    }
}
_EOC_

# Without a fallback, a request no stage answered is an error, which fails
# the run (rounds and run count non-2xx) instead of passing unnoticed.
cat > "$WORK/nginx.conf" <<_EOC_
load_module $MODULE;
$(nginx_main "$WORK" 01)
http {
    access_log off;
    default_type application/json;
    # subrequests (the stage calls) are not logged: one line per request
    log_format answer '\$pred_stage \$status \$request_time';
    upstream model {
        server 127.0.0.1:$MODEL_PORT;
        keepalive 64;
    }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    server {
        listen 127.0.0.1:$PORT backlog=4096;
        location = /cascade {
            access_log $WORK/logs/cascade.log answer;
            add_header X-T \$arg_t;
            pred_key \$arg_id;
            pred_cascade /_rules timeout=5ms exit_if=/confidence:>=:0.9;
            pred_cascade /_trees timeout=20ms exit_if=/confidence:>=:0.9;
            pred_cascade /_net timeout=60ms;
            pred_budget 100ms;
            pred;
        }
        location = /single {
            access_log $WORK/logs/single.log answer;
            add_header X-T \$arg_t;
            pred_key \$arg_id;
            pred_upstream /_net timeout=100ms;
            pred;
        }
        location = /_rules {
            internal;
            proxy_pass http://model/rules/\$pred_key_escaped;
        }
        location = /_trees {
            internal;
            proxy_pass http://model/trees/\$pred_key_escaped;
        }
        location = /_net {
            internal;
            proxy_pass http://model/net/\$pred_key_escaped;
        }
        location = /metrics { pred_metrics; }
    }
}
_EOC_

"$NGINX" -t -q -p "$WORK/model/" -c "$WORK/model/nginx.conf"
"$NGINX" -t -q -p "$WORK/" -c "$WORK/nginx.conf"
# descendants PID: its child processes, theirs, and so on
descendants() {
    local c
    for c in $(pgrep -P "$1"); do echo "$c"; descendants "$c"; done
}
# on any exit: the nginx pair, and a wrk still running (interrupted, the
# wrk would otherwise go on for the rest of its DURATION)
stop_all() {
    local p
    for p in $(descendants $$); do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = wrk ] && kill "$p" 2>/dev/null
    done
    "$NGINX" -p "$WORK/" -c "$WORK/nginx.conf" -s stop 2>/dev/null || true
    "$NGINX" -p "$WORK/model/" -c "$WORK/model/nginx.conf" -s stop \
        2>/dev/null || true
}
trap stop_all EXIT
"$NGINX" -p "$WORK/model/" -c "$WORK/model/nginx.conf"
"$NGINX" -p "$WORK/" -c "$WORK/nginx.conf"
sleep 0.5

worker=$(worker_of "$WORK")
[ -n "$worker" ] && [ -n "$(worker_of "$WORK/model")" ] \
    || { echo "an nginx did not start" >&2; exit 1; }

# the wiring: a sure key ends at stage 1, an unsure one goes to stage 3,
# the single call answers net's value
check() {   # check PATH KEY STAGE BODY
    local h b
    h=$(curl -s -D - -o "$WORK/check.body" \
        "http://127.0.0.1:$PORT$1?id=$2" | tr -d '\r') || true
    b=$(cat "$WORK/check.body")
    grep -qix "X-Pred-Stage: $3" <<< "$h" && [ "$b" = "$4" ] \
        || { echo "$1?id=$2: not stage $3 with $4:" >&2; echo "$h$b" >&2
             cat "$WORK/logs/error.log" >&2; exit 1; }
}
check /cascade user_0000017 1 '{"confidence":0.95}'
check /cascade user_0000018 3 '{"confidence":0.99}'
h=$(curl -s -D - -o /dev/null "http://127.0.0.1:$PORT/single?id=user_0000019" \
    | tr -d '\r')
grep -qix 'X-Pred-Source: upstream' <<< "$h" \
    && ! grep -qi '^X-Pred-Stage' <<< "$h" \
    || { echo "/single: $h" >&2; exit 1; }

lines() { wc -l < "$1"; }

# metrics FILE: /metrics now, for the deltas of a run
metrics() { curl -sf "http://127.0.0.1:$PORT/metrics" > "$1"; }

# mdelta BEFORE AFTER NAME_AND_LABELS: how much a counter grew
mdelta() {
    awk -v m="$3" 'index($0, m " ") == 1 { v[FILENAME] = $2; f[++n] = FILENAME }
                   END { printf "%s", v[f[2]] - v[f[1]] }' "$1" "$2"
}

# per C N: C / N to 3 decimals
per() { awk -v c="$1" -v n="$2" 'BEGIN { printf "%.3f", c / n }'; }

# Each variant's per-round numbers, appended to these keyed by variant
# (and for the raw latencies by variant,group); the access log lines of
# every round kept for the stage counts.
declare -A rps w50 w99 cus calls c_rules c_trees c_net
declare -A r50 r95 r99 rmean
declare -A st_res st_dur up_dur
: > "$WORK/cascade.lines"
: > "$WORK/single.lines"
stub_logs=(rules trees net)

# measure NAME: one wrk run of /NAME (bench/cascade-latency.lua: wrk's
# numbers and each request's own latency), and what it cost the models
measure() {
    local name=$1 out c0 c1 rps_ p50 p95 p99 non2xx sock reqs cu
    local l0 l1 n s k r x all=0 g gn g50 g95 g99 gmean
    local -A s0 s1 pr
    l0=$(lines "$WORK/logs/$name.log")
    for s in "${stub_logs[@]}"; do
        s0[$s]=$(lines "$WORK/model/logs/$s.log")
    done
    metrics "$WORK/m0"
    c0=$(cpu)
    out=$(BENCH_PATH=/$name KEYS=$KEYS taskset -c 1 \
          wrk -t1 -c"$CONNS" -d"${DURATION}s" -s bench/cascade-latency.lua \
          "http://127.0.0.1:$PORT/$name")
    c1=$(cpu)
    # the requests wrk left in flight end within the budget (100 ms)
    sleep 0.5
    l1=$(lines "$WORK/logs/$name.log")
    for s in "${stub_logs[@]}"; do
        s1[$s]=$(lines "$WORK/model/logs/$s.log")
    done
    metrics "$WORK/m1"
    echo "$out" > "$WORK/wrk-$name-$r_i.out"
    read -r rps_ p50 p95 p99 non2xx sock reqs <<< "$(wrk_parse "$out")"
    [ "$non2xx" = 0 ] && [ "$sock" = 0 ] && [ "$reqs" -gt 0 ] \
        || { echo "errors in /$name: $out" >&2; exit 1; }
    n=$((l1 - l0))
    cu=$(awk -v a="$c0" -v b="$c1" -v n="$reqs" \
             'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')
    sed -n "$((l0 + 1)),${l1}p" "$WORK/logs/$name.log" >> "$WORK/$name.lines"
    rps[$name]+="$rps_ " w50[$name]+="$p50 " w99[$name]+="$p99 "
    cus[$name]+="$cu "
    while read -r x g gn g50 g95 g99 gmean; do
        [ "$x" = raw ] || continue
        r50[$name,$g]+="$(to_ms "${g50}us") "
        r95[$name,$g]+="$(to_ms "${g95}us") "
        r99[$name,$g]+="$(to_ms "${g99}us") "
        rmean[$name,$g]+="$(to_ms "${gmean}us") "
    done <<< "$out"
    [ -n "${r50[$name,all]:-}" ] \
        || { echo "/$name: no per-request latencies (X-T?): $out" >&2; exit 1; }
    for s in "${stub_logs[@]}"; do
        pr[$s]=$(per $((s1[$s] - s0[$s])) "$n")
        eval "c_$s[\$name]+=\"\${pr[\$s]} \""
        all=$((all + s1[$s] - s0[$s]))
    done
    calls[$name]+="$(per "$all" "$n") "
    # the metrics' deltas, summed over the rounds
    if [ "$name" = cascade ]; then
        for k in 1 2 3; do
            for r in answered exited timeout failed skipped; do
                st_res[$k,$r]=$(( ${st_res[$k,$r]:-0} + $(mdelta "$WORK/m0" \
                    "$WORK/m1" "pred_cascade_stage_total{location=\"/cascade\",stage=\"$k\",result=\"$r\"}") ))
            done
            for x in sum count; do
                st_dur[$k,$x]=$(awk -v a="${st_dur[$k,$x]:-0}" -v d="$(mdelta \
                    "$WORK/m0" "$WORK/m1" \
                    "pred_cascade_stage_duration_seconds_$x{location=\"/cascade\",stage=\"$k\"}")" \
                    'BEGIN { print a + d }')
            done
        done
    else
        for x in sum count; do
            up_dur[$x]=$(awk -v a="${up_dur[$x]:-0}" \
                -v d="$(mdelta "$WORK/m0" "$WORK/m1" "pred_upstream_duration_seconds_$x")" \
                'BEGIN { print a + d }')
        done
    fi
    echo "# round $r_i /$name: $rps_ req/s; per request p50" \
         "$(awk '{ print $NF }' <<< "${r50[$name,all]}")," \
         "p99 $(awk '{ print $NF }' <<< "${r99[$name,all]}") ms" \
         "(wrk's, corrected: p50 $p50, p99 $p99 ms); worker CPU $cu us/req;" \
         "$n answered; model calls per request $(per "$all" "$n")" \
         "(rules ${pr[rules]}, trees ${pr[trees]}, net ${pr[net]})"
}

variants=(cascade single)
for r_i in $(seq 1 "$ROUNDS"); do
    for v in "${variants[@]}"; do measure "$v"; done
done
# a renamed metric would read as zeros, not fail
[ "${st_res[1,exited]}" -gt 0 ] && [ "${up_dur[count]}" != 0 ] \
    || { echo "no pred_cascade_stage_total or" \
              "pred_upstream_duration_seconds in /metrics" >&2; exit 1; }

# med LIST FORMAT: the median (of an even count the mean of the middle
# two) and, with several rounds, its spread
med() {
    local m lo hi
    read -r m lo hi <<< "$(mstat "$1" "$2")"
    if [ "$ROUNDS" -gt 1 ] && [ "$m" != - ]; then echo "$m ($lo-$hi)"
    else echo "$m"; fi
}
med_of() { mstat "$1" "$2" | cut -d' ' -f1; }

# the requests wrk left in flight as a run ended are logged as 499, without
# a stage: a row of their own (their model calls are counted too)
total=$(wc -l < "$WORK/cascade.lines")
stage_rows=
for k in 1 2 3 - 499; do
    case $k in
    1) label="stage 1 (rules, exited)" sel='$2 != 499 && $1 == 1' ;;
    2) label="stage 2 (trees)" sel='$2 != 499 && $1 == 2' ;;
    3) label="stage 3 (net)" sel='$2 != 499 && $1 == 3' ;;
    -) label="none (no stage answered)" sel='$2 != 499 && $1 == "-"' ;;
    499) label="closed by wrk as a run ended (499)" sel='$2 == 499' ;;
    esac
    n=$(awk "$sel" "$WORK/cascade.lines" | wc -l)
    [ "$k" = - ] && [ "$n" = 0 ] && continue
    stage_rows+="| $label | $n | $(awk -v n="$n" -v t="$total" \
        'BEGIN { printf "%.1f%%", 100 * n / t }') |"
    if [ "$k" = 499 ]; then stage_rows+=" - | - | - |"$'\n'; continue; fi
    stage_rows+=" $(med "${r50[cascade,$k]:-}" %.2f) |"
    stage_rows+=" $(med "${r99[cascade,$k]:-}" %.2f) |"
    stage_rows+=" $(med "${rmean[cascade,$k]:-}" %.2f) |"$'\n'
done
res_rows=
for k in 1 2 3; do
    res_rows+="| $k | ${st_res[$k,answered]} | ${st_res[$k,exited]} |"
    res_rows+=" ${st_res[$k,timeout]} | ${st_res[$k,failed]} |"
    res_rows+=" ${st_res[$k,skipped]} | $(awk -v s="${st_dur[$k,sum]}" \
        -v c="${st_dur[$k,count]}" 'BEGIN { if (c == 0) print "-";
        else printf "%.1f", s * 1000 / c }') |"$'\n'
done
up_mean=$(awk -v s="${up_dur[sum]}" -v c="${up_dur[count]}" \
          'BEGIN { if (c == 0) print "-"; else printf "%.1f", s * 1000 / c }')
exit1=$(awk -v n="$(awk '$1 == 1' "$WORK/cascade.lines" | wc -l)" \
            -v t="$total" 'BEGIN { printf "%.3f", n / t }')
expect=$(awk -v e="$exit1" 'BEGIN { printf "%.2f", 1 + (1 - e) * 2 }')
timeouts=$(( ${st_res[1,timeout]} + ${st_res[2,timeout]} + ${st_res[3,timeout]} ))

row() {   # row NAME LABEL: the main table's row of a variant
    echo "| $2 | $(med "${rps[$1]}" %.0f) | $(med "${r50[$1,all]}" %.2f) |" \
         "$(med "${r95[$1,all]}" %.2f) | $(med "${r99[$1,all]}" %.2f) |" \
         "$(med "${rmean[$1,all]}" %.2f) |" \
         "$(med_of "${w50[$1]}" %.2f) / $(med_of "${w99[$1]}" %.2f) |" \
         "$(med "${calls[$1]}" %.3f) |" \
         "$(med_of "${c_rules[$1]}" %.3f) / $(med_of "${c_trees[$1]}" %.3f)" \
         "/ $(med_of "${c_net[$1]}" %.3f) | $(med "${cus[$1]}" %.1f) |"
}
ratio_of() { ratio "$(med_of "$1" %.4f)" "$(med_of "$2" %.4f)"; }

cat > "$OUT" <<_EOR_
# Cascaded models against a single call to the slowest

$(machine)
nginx under test: 1 worker pinned to core 0, no cache, no snapshot (every
request a miss).  wrk (1 thread, $CONNS connections) and the model stub
(nginx + echo module, 1 worker) on core 1.  Random keys over $KEYS.
$ROUNDS rounds of ${DURATION}s per variant, alternating; medians, with
their spread (min-max) when there are several rounds.
Command: \`ROUNDS=$ROUNDS DURATION=$DURATION CONNS=$CONNS bench/cascade.sh\`

Latency (ms) is each request's own, as wrk sent and received it; wrk's
own p50/p99 (\`--latency\`) are beside them for reference only: see "How
measured".

| variant | req/s | p50 ms | p95 ms | p99 ms | mean ms | wrk's p50 / p99 ms | model calls / request | rules / trees / net calls per request | worker CPU us/req |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
$(row cascade "cascade: rules, trees, net")
$(row single "single: pred_upstream to net")

- cascade / single: $(ratio_of "${r50[cascade,all]}" "${r50[single,all]}") p50, $(ratio_of "${r99[cascade,all]}" "${r99[single,all]}") p99, $(ratio_of "${rmean[cascade,all]}" "${rmean[single,all]}") mean latency, $(ratio_of "${calls[cascade]}" "${calls[single]}") model calls per request, $(ratio_of "${rps[cascade]}" "${rps[single]}") req/s
- the cascade's expected model calls per request at the measured exit share ($exit1 at stage 1): 1 + $(awk -v e="$exit1" 'BEGIN { printf "%.3f", 1 - e }') x 2 = $expect
- stage timeouts in the cascade, all rounds: $timeouts (a late rules answer sends its request on to trees and net)

### Which stage answered (cascade)

Requests and shares: the nginx under test's access log (\`\$pred_stage\`),
all rounds.  Latencies: each request's own by its \`X-Pred-Stage\`, medians
of the rounds.

| answered by | requests | share | p50 ms | p99 ms | mean ms |
|---|---:|---:|---:|---:|---:|
$stage_rows| all | $total | 100% | $(med "${r50[cascade,all]}" %.2f) | $(med "${r99[cascade,all]}" %.2f) | $(med "${rmean[cascade,all]}" %.2f) |

### What each stage came to (cascade, all rounds)

\`pred_cascade_stage_total\` deltas over the runs, and each stage call's
mean duration from \`pred_cascade_stage_duration_seconds\` (sum / count;
the module counts whole ms).  The single call's mean duration
(\`pred_upstream_duration_seconds\`): $up_mean ms.

| stage | answered | exited | timeout | failed | skipped | mean call ms |
|---:|---:|---:|---:|---:|---:|---:|
$res_rows
### How measured

Stages: rules answers after \`echo_sleep 0.002\` (timeout=5ms,
\`exit_if=/confidence:>=:0.9\`; \`{"confidence":0.95}\` for keys whose
last digit is 0-7, \`{"confidence":0.5}\` for 8-9), trees after 0.010
(timeout=20ms, always 0.6, never exits), net after 0.040 (timeout=60ms,
0.99); \`pred_budget 100ms\`.  The single variant is \`pred_upstream /_net
timeout=100ms\`, the same stub location.  Each stage is a keepalive
proxy_pass to the stub.

req/s is wrk's.  Latencies are per request: \`bench/cascade-latency.lua\`
puts the send time in the query (\`t=\`), the server returns it in
\`X-T\`, and wrk's \`response()\` takes the difference (10 us buckets).
wrk's own percentiles are not used: before printing them wrk "corrects"
for coordinated omission, adding copies of each sample of n >= 2 x
(run time / requests per connection) at n minus 1, 2, ... of that
interval.  This closed-loop client omits nothing, and on the cascade's
two-humped distribution (80% ~2 ms, 20% ~53 ms) the copies, about 3 for
each slow answer, come near the fast answers in number: wrk's p50 can land
on the made-up samples, and jump between rounds (from ~3 to ~13 ms while
the real one stays at ~2.7 ms).  Its p99, from the top of the real
samples, stays close.  Little's law checks the per-request mean: $CONNS
connections / mean latency is about the req/s.

Model calls per request are the stub's access log lines (one log per
stage) over the requests the nginx under test logged, both counted half a
second after wrk stops, when the requests it left in flight have finished:
the calls of each logged request, late (timed-out) calls included.
_EOR_

cat "$OUT"
