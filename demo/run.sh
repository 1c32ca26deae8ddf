#!/usr/bin/env bash
# The demo: serve predictions on 127.0.0.1:8080 until Ctrl-C.
set -euo pipefail

cd "$(dirname "$0")/.."
mkdir -p demo/work

nginx=${NGINX:-/usr/sbin/nginx}
conf=conf-examples/demo.conf

"$nginx" -t -q -p "$PWD/" -c "$conf"

cat <<'_EOT_'

ngx_pred_module demo: nginx on http://127.0.0.1:8080 (Ctrl-C stops it)

Try:
  curl -i 'http://127.0.0.1:8080/predict?id=user_42'    # 404, JSON error
  curl -i 'http://127.0.0.1:8080/predict?id='           # 400, empty key

_EOT_

exec "$nginx" -p "$PWD/" -c "$conf"
