# Single-flight, stale-while-revalidate and async misses: how many times
# the model is asked, counted in the test model's own access log.
use lib 't';
use PredTest;
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: concurrent misses for one key make one model call
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_cache_zone zone=hot:1m;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        access_log $TEST_NGINX_SERVER_ROOT/logs/model.log;
        location /predict/ {
            echo_sleep 0.3;
            echo -n '{"score":0.9}';
        }
    }
--- config
    location = /predict {
        pred_key $arg_id;
        pred_cache hot;
        pred_upstream /_model timeout=2s;
        pred;
    }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location = /burst {
        echo_location_async /predict id=k;
        echo_location_async /predict id=k;
        echo_location_async /predict id=k;
        echo_location_async /predict id=other;
    }
    location = /modellog {
        alias $TEST_NGINX_SERVER_ROOT/logs/model.log;
    }
--- request eval
["GET /burst", "GET /modellog"]
--- response_body eval
['{"score":0.9}{"score":0.9}{"score":0.9}{"score":0.9}',
 qr/\A[^\n]*GET \/predict\/(k|other) [^\n]*\n[^\n]*GET \/predict\/(?!\1)(k|other) [^\n]*\n\z/]
--- no_error_log
[error]
[warn]



=== TEST 2: when the leading call fails, the waiters fall back at once
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_cache_zone zone=hot:1m;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        access_log $TEST_NGINX_SERVER_ROOT/logs/model.log;
        location /predict/ {
            echo_sleep 0.3;
            echo_status 500;
            echo -n 'oops';
        }
    }
--- config
    location = /predict {
        pred_key $arg_id;
        pred_cache hot;
        pred_upstream /_model timeout=2s;
        pred_fallback 'default={"score":0}';
        pred;
    }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location = /burst {
        echo_location_async /predict id=k;
        echo_location_async /predict id=k;
        echo_location_async /predict id=k;
    }
    location = /modellog {
        alias $TEST_NGINX_SERVER_ROOT/logs/model.log;
    }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["GET /burst", "GET /modellog", "GET /errlog"]
--- response_body eval
['{"score":0}{"score":0}{"score":0}',
 qr/\A[^\n]*GET \/predict\/k [^\n]*\n\z/,
 qr/\A(?:(?!another request's model call failed).)*another request's model call failed; answering with the default(?:(?!another request's model call failed).)*another request's model call failed; answering with the default(?:(?!another request's model call failed).)*\z/s]



=== TEST 3: stale-while-revalidate answers at once and refreshes once; the answer closes a kept-alive connection, since the refresh holds the request
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_cache_zone zone=hot:1m;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        access_log $TEST_NGINX_SERVER_ROOT/logs/model.log;
        location /predict/ {
            echo_sleep 0.2;
            echo -n '{"score":"fresh"}';
        }
    }
--- config
    location = /predict {
        pred_key $arg_id;
        pred_cache hot ttl=1 swr=1m;
        pred_upstream /_model timeout=2s;
        pred;
    }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location /admin/ { pred_cache hot ttl=1; pred_admin; }
    location = /sleep { echo_sleep 1.1; echo slept; }
    location = /modellog {
        alias $TEST_NGINX_SERVER_ROOT/logs/model.log;
    }
--- request eval
["PUT /admin/k\n{\"score\":\"old\"}", "GET /sleep", "GET /predict?id=k",
 "GET /predict?id=k", "GET /predict?id=k", "GET /modellog"]
--- more_headers eval
["", "", "Connection: keep-alive", "", "", ""]
--- response_headers eval
["", "", "X-Pred-Source: cache\nX-Pred-Stale: 1\nConnection: close",
 "X-Pred-Source: cache\n!X-Pred-Stale",
 "X-Pred-Source: cache\n!X-Pred-Stale", ""]
--- response_body eval
['{"stored":"k","ttl":1}', "slept\n", '{"score":"old"}',
 '{"score":"fresh"}', '{"score":"fresh"}',
 qr/\A[^\n]*GET \/predict\/k [^\n]*\n\z/]



=== TEST 4: async misses answer from the fallback chain and fill the cache; the answer closes a kept-alive connection
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_cache_zone zone=hot:1m;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location /predict/ {
            echo_sleep 0.2;
            echo -n '{"score":0.7}';
        }
    }
--- config
    location = /predict {
        pred_key $arg_id;
        pred_cache hot;
        pred_upstream /_model timeout=2s;
        pred_miss_mode async;
        pred_fallback 'default={"score":0}';
        pred;
    }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
--- request eval
["GET /predict?id=k", "GET /predict?id=k"]
--- more_headers eval
["Connection: keep-alive", ""]
--- response_headers eval
["X-Pred-Source: default\nConnection: close", "X-Pred-Source: cache"]
--- response_body eval
['{"score":0}', '{"score":0.7}']
--- no_error_log
[warn]
[error]



=== TEST 5: a leader whose call ends after its marker expired leaves the marker of the request that leads now alone (its waiters would fall back early, and a third model call start)
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_cache_zone zone=hot:1m;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        access_log $TEST_NGINX_SERVER_ROOT/logs/model.log;
        location /a/ { echo_sleep 1.5; echo_status 500; echo -n 'x'; }
        location /b/ { echo_sleep 1.0; echo -n '{"s":"B"}'; }
    }
--- config
    pred_cache hot;
    pred_fallback 'default={"d":0}';
    location = /predA { pred_key $arg_id; pred_upstream /_a timeout=1s; pred; }
    location = /predB { pred_key $arg_id; pred_upstream /_b timeout=2s; pred; }
    location /_a {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/a/$pred_key_escaped;
    }
    location /_b {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/b/$pred_key_escaped;
    }
    location = /burst {
        echo_location_async /predA "id=k";
        echo_sleep 1.1;
        echo_location_async /predB "id=k";
        echo_sleep 0.1;
        echo_location_async /predB "id=k";
        echo_sleep 0.3;
        echo_location_async /predB "id=k";
    }
    location = /modellog { alias $TEST_NGINX_SERVER_ROOT/logs/model.log; }
--- request eval
["GET /burst", "GET /modellog"]
--- timeout: 8
--- response_body eval
['{"d":0}{"s":"B"}{"s":"B"}{"s":"B"}',
 qr/\A[^\n]*GET \/a\/k [^\n]*\n[^\n]*GET \/b\/k [^\n]*\n\z/]
--- no_error_log
another request's model call failed
