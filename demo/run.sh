#!/usr/bin/env bash
# The demo: build a snapshot from a batch job's JSON Lines, publish it, and
# serve it on 127.0.0.1:8080 until Ctrl-C.
set -euo pipefail

cd "$(dirname "$0")/.."

nginx=${NGINX:-/usr/sbin/nginx}
loader=build/pred-snapshot
conf=conf-examples/demo.conf
work=demo/work

mkdir -p "$work/snaps"

# a stand-in for the batch job's output: 1000 users' predictions
bench/gen-jsonl.pl 1000 7 > "$work/predictions.jsonl"

version=demo-$(date -u +%Y%m%dT%H%M%SZ)
"$loader" build "$work/snaps" --quiet --version "$version" \
    --input "$work/predictions.jsonl" --freshness-sla 6h --owner demo
"$loader" publish "$work/snaps" "$version"
"$loader" gc "$work/snaps" --keep 2 >/dev/null

"$nginx" -t -q -p "$PWD/" -c "$conf"

cat <<_EOT_

ngx_pred_module demo: nginx on http://127.0.0.1:8080 (Ctrl-C stops it)

Try:
  curl -i 'http://127.0.0.1:8080/predict?id=user_0000042'  # a snapshot hit
  curl -i 'http://127.0.0.1:8080/predict?id=user_9999999'  # 404, not in it
  curl -i 'http://127.0.0.1:8080/predict?id='              # 400, empty key
  curl -X PUT -d '{"score":1}' http://127.0.0.1:8081/pred-admin/user_0000042
  curl -i 'http://127.0.0.1:8080/predict?id=user_0000042'  # now from the cache
  curl http://127.0.0.1:8081/pred-admin/snapshot
  $loader list $work/snaps

_EOT_

exec "$nginx" -p "$PWD/" -c "$conf"
