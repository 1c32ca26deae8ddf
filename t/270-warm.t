# Warming before a peak: POST PREFIX/warm {"keys":[...]} asks the model,
# through the admin location's batch model call and max= keys at a time,
# for the keys no tier holds, caches the answers and says how many were
# held already, warmed, not found and failed; admission (the breaker) is
# respected; the mistakes a client can make get a 4xx.
use lib 't';
use PredTest;
use Test::Nginx::Socket 'no_plan';

my $dir = snap_dir('warm');
snap_build($dir, 'w1', qq{{"key":"a","value":{"s":1}}\n});
snap_publish($dir, 'w1');

run_tests();

__DATA__

=== TEST 1: the keys no tier holds go to the model max= at a time, are cached, and are counted
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_cache_zone zone=hot:1m ttl=1h;
    pred_snapshot_path main $TEST_NGINX_SNAP_WARM;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        access_log $TEST_NGINX_SERVER_ROOT/logs/model.log;
        location = /predict {
            # echoes the instances it got, as the predictions
            echo_read_request_body;
            echo -n '{"predictions":';
            echo -n $request_body;
            echo -n '}';
        }
    }
--- config
    pred_cache hot;
    pred_snapshot main;
    location = /p { pred_key $arg_id; pred; }
    location /admin/ {
        pred_admin;
        pred_batch on max=2;
        pred_upstream /_model timeout=1s;
        pred_upstream_extract /predictions;
    }
    location = /_model {
        internal;
        proxy_method POST;
        proxy_set_body '$pred_keys_json';
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict;
    }
    location = /modellog { alias $TEST_NGINX_SERVER_ROOT/logs/model.log; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["PUT /admin/c\n{\"s\":3}",
 "POST /admin/warm\n{\"keys\":[\"a\",\"c\",\"m1\",\"m2\",\"m3\",\"m1\",\"m\\\"4\",\"m5\"]}",
 "GET /p?id=m3", "GET /p?id=m%224", "GET /modellog",
 "POST /admin/warm\n{\"keys\":[\"m1\",\"m5\",\"a\"]}", "GET /errlog"]
--- response_body eval
['{"stored":"c","ttl":3600}',
 '{"keys":7,"held":2,"warmed":5,"not_found":0,"failed":0}',
 '"m3"', '"m\"4"',
 qr/\A(?:[^\n]*POST \/predict [^\n]*\n){3}\z/,
 '{"keys":3,"held":3,"warmed":0,"not_found":0,"failed":0}',
 qr/\[notice\][^\n]*pred: admin: warm: 7 keys: 2 held, 5 warmed, 0 not found, 0 failed/]
--- response_headers_like eval
["", "Content-Type: application/json", "X-Pred-Source: cache",
 "X-Pred-Source: cache", "", "", ""]
--- no_error_log
[warn]
[error]



=== TEST 2: null from the model is not found; a model that fails, and a breaker that then opens, leave keys failed
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_cache_zone zone=hot:1m ttl=1h;
    pred_upstream_breaker failures=1 cooldown=30s;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /predict { return 200 '{"predictions":[null]}'; }
    }
--- config
    pred_cache hot;
    location /admin/ {
        pred_admin;
        pred_batch on max=1;
        pred_upstream /_model timeout=1s;
        pred_upstream_extract /predictions;
    }
    location /down/ {
        pred_admin;
        pred_batch on max=1;
        pred_upstream /_down timeout=1s;
    }
    location = /_model {
        internal;
        proxy_method POST;
        proxy_set_body '$pred_keys_json';
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict;
    }
    location = /_down { internal; proxy_pass http://127.0.0.1:1/; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["POST /admin/warm\n{\"keys\":[\"n1\"]}",
 "POST /down/warm\n{\"keys\":[\"f1\",\"f2\",\"f3\"]}",
 "POST /admin/warm\n{\"keys\":[\"n2\"]}",
 "GET /errlog"]
--- response_body eval
['{"keys":1,"held":0,"warmed":0,"not_found":1,"failed":0}',
 '{"keys":3,"held":0,"warmed":0,"not_found":0,"failed":3}',
 '{"keys":1,"held":0,"warmed":0,"not_found":0,"failed":1}',
 qr/\[warn\][^\n]*pred: warm: the model call for 1 keys failed: connect or read failed \(502\)[^\n]*\n.*\[warn\][^\n]*pred: warm: a call for 1 keys not made: circuit open/s]
--- no_error_log
[alert]



=== TEST 3: what a client gets wrong
--- http_config
    pred_cache_zone zone=hot:1m;
--- config
    pred_cache hot;
    location /admin/ {
        pred_admin;
        pred_upstream /_model;
    }
    location /bare/ { pred_admin; }
    location = /_model { internal; return 200 '[]'; }
--- request eval
["POST /admin/warm\n{\"keys\":\"a\"}", "POST /admin/warm\n{\"keys\":[]}",
 "POST /admin/warm\n{\"keys\":[\"a\\nb\"]}", "POST /admin/warm\nnot json",
 "GET /admin/warm", "POST /bare/warm\n{\"keys\":[\"a\"]}"]
--- error_code eval
[400, 400, 400, 400, 405, 404]
--- response_body eval
['{"error":"bad_keys","reason":"the body has no \"keys\" array"}',
 '{"error":"bad_keys","reason":"no keys"}',
 qr/\A\{"error":"bad_keys","reason":"keys\[0\]: [^"]+"\}\z/,
 qr/\A\{"error":"bad_keys","reason":"[^"]+"\}\z/,
 qr/\A\{"error":"method_not_allowed"/,
 '{"error":"not_configured","reason":"warming needs pred_cache and pred_upstream (a batch model call) in this location"}']
--- response_headers_like eval
["", "", "", "", "Allow: POST, PUT, PATCH, DELETE", ""]
--- no_error_log
[alert]
