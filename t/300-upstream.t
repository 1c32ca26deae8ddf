# The miss path: the real-time model behind proxy_pass, its answers cached,
# and the fallback chain when it is slow, down or wrong.
use lib 't';
use PredTest;
use Test::Nginx::Socket 'no_plan';

my $dir = snap_dir('up');
snap_build($dir, 'u1', qq{{"key":"a","value":{"from":"snapshot"}}\n});
snap_publish($dir, 'u1');

$dir = snap_dir('up_stale');
snap_build($dir, 's1', qq{{"key":"a","value":{"from":"old snapshot"}}\n},
           age => 7200,
           args => ['--freshness-sla', '1h', '--fallback-if-stale',
                    'upstream']);
snap_publish($dir, 's1');

run_tests();

__DATA__

=== TEST 1: a miss asks the model, and the answer is cached
--- http_config
    pred_cache_zone zone=hot:1m;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location /predict/ {
            default_type application/json;
            return 200 '{ "score": 0.87, "key": "$uri" }';
        }
    }
--- config
    location = /predict {
        pred_key $arg_id;
        pred_cache hot;
        pred_upstream /_model;
        pred;
    }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
--- request eval
["GET /predict?id=u%201", "GET /predict?id=u%201"]
--- response_headers eval
["X-Pred-Source: upstream\nAge: 0\nContent-Type: application/json",
 "X-Pred-Source: cache"]
--- response_body eval
['{"score":0.87,"key":"/predict/u 1"}', '{"score":0.87,"key":"/predict/u 1"}']
--- no_error_log
[error]
[warn]



=== TEST 2: TensorFlow Serving's REST shape, with pred_upstream_extract
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /v1/models/ctr:predict {
            if ($request_method != POST) { return 405; }
            # the model echoes what it was sent, which the test checks
            echo_read_request_body;
            echo -n '{"predictions": [{"score": 0.5, "got": ';
            echo -n $request_body;
            echo -n '}]}';
        }
    }
--- config
    location = /predict {
        pred_key $arg_id;
        pred_upstream /_tfs timeout=500ms;
        pred_upstream_extract /predictions/0;
        pred;
    }
    location = /_tfs {
        internal;
        proxy_method POST;
        proxy_set_header Content-Type application/json;
        proxy_set_body '{"instances":[{"user":"$pred_key"}]}';
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/v1/models/ctr:predict;
    }
--- request
GET /predict?id=u7
--- response_headers
X-Pred-Source: upstream
--- response_body chomp
{"score":0.5,"got":{"instances":[{"user":"u7"}]}}



=== TEST 3: the model's 404 is a 404, cached for negative_ttl
--- http_config
    pred_cache_zone zone=hot:1m negative_ttl=30s;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location /predict/ { return 404; }
    }
--- config
    location = /predict {
        pred_key $arg_id;
        pred_cache hot;
        pred_upstream /_model;
        pred;
    }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
--- request eval
["GET /predict?id=nobody", "GET /predict?id=nobody"]
--- error_code eval
[404, 404]
--- response_headers eval
["X-Pred-Source: upstream", "X-Pred-Source: cache"]
--- response_body eval
['{"error":"not_found","key":"nobody"}', '{"error":"not_found","key":"nobody"}']



=== TEST 4: a slow model gets the default at the deadline, and fills the cache later
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_cache_zone zone=hot:1m;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location /predict/ {
            echo_sleep 0.4;
            echo -n '{"score":0.9}';
        }
    }
--- config
    location = /predict {
        pred_key $arg_id;
        pred_cache hot;
        pred_upstream /_model timeout=100ms;
        pred_fallback 'default={"score":0}';
        pred;
    }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location = /sleep { echo_sleep 0.5; echo slept; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["GET /predict?id=k", "GET /sleep", "GET /predict?id=k", "GET /errlog"]
--- response_headers eval
["X-Pred-Source: default", "", "X-Pred-Source: cache", ""]
--- response_body eval
['{"score":0}', "slept\n", '{"score":0.9}',
 qr/\[warn\] [^\n]*pred: upstream for key "k" failed: timed out; answering with the default[^\n]*, client: 127\.0\.0\.1/]
--- no_error_log
[error]



=== TEST 5: a model error serves the expired cache value, marked stale
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_cache_zone zone=hot:1m;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location /predict/ { return 500; }
    }
--- config
    location = /predict {
        pred_key $arg_id;
        pred_cache hot;
        pred_upstream /_model;
        pred_fallback stale 'default={"score":0}';
        pred;
    }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location /admin/ { pred_cache hot; pred_admin; }
    location = /sleep { echo_sleep 1.1; echo slept; }
--- request eval
["PUT /admin/k?ttl=1\n{\"score\":0.4}", "GET /sleep", "GET /predict?id=k",
 "GET /predict?id=other"]
--- response_headers eval
["", "", "X-Pred-Source: stale\nX-Pred-Stale: 1",
 "X-Pred-Source: default\n!X-Pred-Stale"]
--- response_body eval
['{"stored":"k","ttl":1}', "slept\n", '{"score":0.4}', '{"score":0}']



=== TEST 6: a model that refuses connections gets a clean 503
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { return 200; }
    }
--- config
    location = /predict {
        pred_key $arg_id;
        pred_upstream /_model;
        pred;
    }
    location /_model {
        internal;
        # a port nothing listens on
        proxy_pass http://127.0.0.1:1/predict/$pred_key_escaped;
    }
--- request
GET /predict?id=k
--- error_code: 503
--- response_headers
X-Pred-Source: error
Retry-After: 1
--- response_body chomp
{"error":"upstream_unavailable","key":"k","reason":"connect or read failed (502)"}
--- error_log
pred: upstream for key "k" failed: connect or read failed (502); answering 503



=== TEST 7: an answer that is not JSON (NaN) falls back, with the key logged
--- http_config
    pred_cache_zone zone=hot:1m;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location /predict/ { return 200 '{"score": NaN}'; }
    }
--- config
    location = /predict {
        pred_key $arg_id;
        pred_cache hot;
        # not about deadlines: room for memcheck's slowdown
        pred_upstream /_model timeout=2s;
        pred_fallback status=404;
        pred;
    }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
--- request eval
["GET /predict?id=k", "GET /predict?id=k"]
--- error_code eval
[404, 404]
--- response_headers eval
["X-Pred-Source: error", "X-Pred-Source: error"]
--- response_body eval
['{"error":"not_found","key":"k"}', '{"error":"not_found","key":"k"}']
--- error_log eval
[qr/\[warn\] .*pred: upstream answer for key "k" is not valid JSON at byte 10 /,
 qr/pred: upstream for key "k" failed: invalid JSON; answering 404/]



=== TEST 8: a tombstone sends the key to the model, not to the snapshot
--- http_config
    pred_cache_zone zone=hot:1m;
    pred_snapshot_path main $TEST_NGINX_SNAP_UP;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location /predict/ { return 200 '{"from":"model"}'; }
    }
--- config
    pred_cache hot;
    pred_snapshot main;
    location = /predict {
        pred_key $arg_id;
        pred_upstream /_model;
        pred;
    }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location /admin/ { pred_admin; }
--- request eval
["GET /predict?id=a", "DELETE /admin/a", "GET /predict?id=a",
 "GET /predict?id=a"]
--- response_headers eval
["X-Pred-Source: snapshot", "", "X-Pred-Source: upstream",
 "X-Pred-Source: cache"]
--- response_body eval
['{"from":"snapshot"}', '{"invalidated":"a","ttl":600}', '{"from":"model"}',
 '{"from":"model"}']



=== TEST 9: a tombstoned key whose model fails never gets the snapshot value it invalidated: the chain goes on past "stale"
--- http_config
    pred_cache_zone zone=hot:1m;
    pred_snapshot_path main $TEST_NGINX_SNAP_UP;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location /predict/ { return 503; }
    }
--- config
    pred_cache hot;
    pred_snapshot main;
    location = /predict {
        pred_key $arg_id;
        pred_upstream /_model;
        pred_fallback stale 'default={"d":0}';
        pred;
    }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location /admin/ { pred_admin; }
--- request eval
["GET /predict?id=a", "DELETE /admin/a", "GET /predict?id=a"]
--- response_headers eval
["X-Pred-Source: snapshot", "", "X-Pred-Source: default\n!X-Pred-Stale"]
--- response_body eval
['{"from":"snapshot"}', '{"invalidated":"a","ttl":600}', '{"d":0}']



=== TEST 10: fallback_if_stale upstream asks the model, and serves the stale value if it fails
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_UP_STALE;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /predict/a { return 200 '{"from":"model"}'; }
        location /predict/ { return 500; }
    }
--- config
    pred_snapshot main;
    location = /predict {
        pred_key $arg_id;
        # not about deadlines: room for memcheck's slowdown
        pred_upstream /_model timeout=2s;
        pred_fallback stale;
        pred;
    }
    location = /broken {
        pred_key $arg_id;
        pred_upstream /_broken timeout=2s;
        pred_fallback stale;
        pred;
    }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location /_broken {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/x;
    }
--- request eval
["GET /predict?id=a", "GET /broken?id=a"]
--- response_headers eval
["X-Pred-Source: upstream\n!X-Pred-Stale", "X-Pred-Source: stale\nX-Pred-Stale: 1"]
--- response_body eval
['{"from":"model"}', '{"from":"old snapshot"}']



=== TEST 11: an answer over max_size falls back, and the client still gets it
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location /predict/ {
            return 200 '{"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}';
        }
    }
--- config
    location = /predict {
        pred_key $arg_id;
        pred_upstream /_model max_size=64;
        pred_fallback 'default={"score":0}';
        pred;
    }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
--- request
GET /predict?id=k
--- response_headers
X-Pred-Source: default
--- response_body chomp
{"score":0}
--- error_log
pred: upstream answer for key "k" is over max_size 64
pred: upstream for key "k" failed: answer over max_size; answering with the default
--- no_error_log
[error]



=== TEST 12: an answer sent while its model call runs on closes a keep-alive connection, so the client's next request does not wait for that call
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_cache_zone zone=hot:1m;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location /predict/ {
            echo_sleep 0.4;
            echo -n '{"score":0.9}';
        }
    }
--- config
    location = /predict {
        pred_key $arg_id;
        pred_cache hot;
        pred_upstream /_model timeout=100ms;
        pred_fallback 'default={"score":0}';
        pred;
    }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location = /sleep { echo_sleep 0.5; echo slept; }
--- request eval
["GET /predict?id=k", "GET /sleep", "GET /predict?id=k"]
--- more_headers eval
["Connection: keep-alive", "", ""]
--- response_headers eval
["X-Pred-Source: default\nConnection: close",
 "",
 "X-Pred-Source: cache"]
--- response_body eval
['{"score":0}', "slept\n", '{"score":0.9}']
--- no_error_log
[error]



=== TEST 13: $pred_key_json and $pred_json_arg_NAME keep the client's bytes inside JSON strings: a key or argument with quotes cannot change the model's request
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /v1/models/ctr:predict {
            # the model echoes what it was sent, which the test checks
            echo_read_request_body;
            echo -n '{"predictions": [{"got": ';
            echo -n $request_body;
            echo -n '}]}';
        }
    }
--- config
    location = /predict {
        pred_key $arg_id;
        pred_upstream /_tfs timeout=500ms;
        pred_upstream_extract /predictions/0;
        pred;
    }
    location = /_tfs {
        internal;
        proxy_method POST;
        proxy_set_header Content-Type application/json;
        proxy_set_body '{"instances":[{"user":"$pred_key_json","device":"$pred_json_arg_device"}]}';
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/v1/models/ctr:predict;
    }
--- request eval
["GET /predict?id=x%22%7D%5D%2C%22signature_name%22%3A%22other&device=a%22b+c%5C%01%FF",
 "GET /predict?id=u7"]
--- response_body eval
['{"got":{"instances":[{"user":"x\"}],\"signature_name\":\"other","device":"a\"b c\\\\\u0001\ufffd"}]}}',
 '{"got":{"instances":[{"user":"u7","device":""}]}}']
--- no_error_log
[warn]
[error]



=== TEST 14: a key that is "." or ".." reaches the model as %2E, never as a path segment
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location / { return 200 '{"uri":"$request_uri"}'; }
    }
--- config
    location = /predict {
        pred_key $arg_id;
        pred_upstream /_model;
        pred;
    }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
--- request eval
["GET /predict?id=..", "GET /predict?id=.", "GET /predict?id=.a."]
--- response_body eval
['{"uri":"/predict/%2E%2E"}', '{"uri":"/predict/%2E"}', '{"uri":"/predict/.a."}']
