#!/usr/bin/env bash
# The demo pipeline, end to end on this machine:
#   train a model -> batch job (Spark-shaped JSON Lines) -> pred-snapshot
#   build + publish -> model server -> nginx -> a tour of every tier
#
#   demo/run.sh          the tour, then serve until Ctrl-C
#   demo/run.sh --check  the tour as a test: exit status says if it passed
#
# Everything it starts is stopped when it ends.
set -euo pipefail

cd "$(dirname "$0")/.."

check=${1:-}
# not $NGINX: nginx reads that variable as sockets inherited from an
# upgrade, and then does not daemonize
nginx=${NGINX_BINARY:-/usr/sbin/nginx}
py=/usr/bin/python3
loader=$PWD/build/pred-snapshot
conf=conf-examples/demo.conf
work=demo/work

model_pid=
nginx_pid=

stop() {
    [ -n "$model_pid" ] && kill "$model_pid" 2>/dev/null || true
    # the model server the tour started again after its outage step
    [ -s "$work/model.pid" ] && kill "$(cat "$work/model.pid")" 2>/dev/null \
        || true
    if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then
        kill -QUIT "$nginx_pid" 2>/dev/null || true
        wait "$nginx_pid" 2>/dev/null || true
    fi
}
trap stop EXIT
trap 'exit 130' INT TERM

for port in 8080 8081 8501; do
    if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
        echo "demo: port $port is in use; stop what uses it first" >&2
        exit 1
    fi
done

rm -rf "$work"
mkdir -p "$work/snaps"

echo "== The batch side"
$py demo/train.py "$work/model-v1.pkl" --c 1.0 --name v1
$py demo/batch_predict.py "$work/model-v1.pkl" "$work/batch-1"
"$loader" build "$work/snaps" --quiet --version batch-1 \
    --input "$work/batch-1" --freshness-sla 6h --owner demo --min-entries 400
"$loader" publish "$work/snaps" batch-1

# the second run, published later by the tour under live traffic
$py demo/train.py "$work/model-v2.pkl" --c 0.05 --name v2
$py demo/batch_predict.py "$work/model-v2.pkl" "$work/batch-2"

echo
echo "== The serving side"
$py demo/model_server.py "$work/model-v1.pkl" --port 8501 &
model_pid=$!

# as root, workers as root too: nginx's default "nobody" cannot read a
# checkout in a private folder (/root, or a mode 0700 temporary one)
user=()
[ "$(id -u)" = 0 ] && user=(-g "user root;")

"$nginx" -t -q -p "$PWD/" -c "$conf" "${user[@]}"
"$nginx" -p "$PWD/" -c "$conf" "${user[@]}" &
nginx_pid=$!

for _ in $(seq 1 50); do
    curl -sf -o /dev/null http://127.0.0.1:8501/v1/models/cancer \
        && curl -s -o /dev/null http://127.0.0.1:8080/ && break
    sleep 0.1
done
echo "nginx on http://127.0.0.1:8080 (admin on 8081), model on 8501"

PRED_SNAPSHOT=$loader SNAPS=$work/snaps V1=batch-1 V2=batch-2 \
BATCH2=$work/batch-2 MODEL_PID=$model_pid \
MODEL_MODEL=$work/model-v1.pkl MODEL_PIDFILE=$work/model.pid \
    $py demo/tour.py $check && status=0 || status=$?

if [ "$check" = --check ]; then
    exit "$status"
fi

model_pid=
cat <<_EOT_

Try:
  curl -i 'http://127.0.0.1:8080/predict?id=patient_0042'
  curl -i 'http://127.0.0.1:8080/predict?id=patient_0045'    # a miss
  curl -X PUT -d '{"score":1}' http://127.0.0.1:8081/pred-admin/patient_0042
  curl http://127.0.0.1:8081/pred-admin/snapshot
  curl http://127.0.0.1:8081/metrics
  $loader list $work/snaps

nginx keeps serving until Ctrl-C.
_EOT_

wait "$nginx_pid"
