# Admission control: the cap on model calls, priorities, the wait queue,
# and the circuit breaker.  Concurrency comes from parallel subrequests.
use lib 't';
use PredTest;
use Test::Nginx::Socket 'no_plan';

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value('main_config',
        "    load_module \$TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;\n")
        unless defined $block->main_config;
});

run_tests();

__DATA__

=== TEST 1: at the cap, a low-priority miss is shed at once
--- http_config
    pred_upstream_limit 1;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        access_log $TEST_NGINX_SERVER_ROOT/logs/model.log;
        location /predict/ { echo_sleep 0.3; echo -n '{"s":1}'; }
    }
--- config
    pred_upstream /_model timeout=1s;
    pred_fallback 'default={"d":0}';
    # the burst's subrequests are counted like requests
    log_subrequest on;
    location = /normal { pred_key $arg_id; pred; }
    location = /low { pred_key $arg_id; pred_priority low; pred; }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location = /burst {
        echo_location_async /normal "id=a";
        echo_location_async /low "id=b";
    }
    location = /modellog { alias $TEST_NGINX_SERVER_ROOT/logs/model.log; }
    location = /metrics { pred_metrics; }
--- request eval
["GET /burst", "GET /modellog", "GET /metrics"]
--- response_body eval
['{"s":1}{"d":0}', qr/\A[^\n]*GET \/predict\/a [^\n]*\n\z/,
 qr/^pred_requests_total\{location="\/low",source="shed"\} 1\n/m]



=== TEST 2: a normal miss waits in the queue for a slot
--- http_config
    pred_upstream_limit 1 queue=5 timeout=2s;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        access_log $TEST_NGINX_SERVER_ROOT/logs/model.log;
        location /predict/ { echo_sleep 0.2; echo -n '{"s":1}'; }
    }
--- config
    pred_upstream /_model timeout=1s;
    pred_fallback 'default={"d":0}';
    location = /normal { pred_key $arg_id; pred; }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location = /burst {
        echo_location_async /normal "id=a";
        echo_location_async /normal "id=b";
    }
    location = /modellog { alias $TEST_NGINX_SERVER_ROOT/logs/model.log; }
--- request eval
["GET /burst", "GET /modellog"]
--- response_body eval
['{"s":1}{"s":1}',
 qr/\A[^\n]*GET \/predict\/a [^\n]*\n[^\n]*GET \/predict\/b [^\n]*\n\z/]



=== TEST 3: a queued miss that waits past the queue timeout is shed
--- http_config
    pred_upstream_limit 1 queue=5 timeout=50ms;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location /predict/ { echo_sleep 0.3; echo -n '{"s":1}'; }
    }
--- config
    pred_upstream /_model timeout=1s;
    pred_fallback 'default={"d":0}';
    location = /normal { pred_key $arg_id; pred; }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location = /burst {
        echo_location_async /normal "id=a";
        echo_location_async /normal "id=b";
    }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["GET /burst", "GET /errlog"]
--- response_body eval
['{"s":1}{"d":0}',
 qr/pred: upstream for key "b" failed: shed: no model call slot within the queue timeout; answering with the default/]



=== TEST 4: with no queue, a normal miss at the cap is shed at once
--- http_config
    pred_upstream_limit 1;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location /predict/ { echo_sleep 0.3; echo -n '{"s":1}'; }
    }
--- config
    pred_upstream /_model timeout=1s;
    location = /normal { pred_key $arg_id; pred; }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location = /burst {
        echo_location_async /normal "id=a";
        echo_location_async /normal "id=b";
    }
--- request
GET /burst
--- response_body chomp
{"s":1}{"error":"upstream_unavailable","key":"b","reason":"shed: too many model calls in flight"}



=== TEST 5: high priority may use the reserved capacity
--- http_config
    pred_upstream_limit 1;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location /predict/ { echo_sleep 0.2; echo -n '{"s":1}'; }
    }
--- config
    pred_upstream /_model timeout=1s;
    pred_fallback 'default={"d":0}';
    location = /high { pred_key $arg_id; pred_priority high; pred; }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location = /burst {
        echo_location_async /high "id=a";
        echo_location_async /high "id=b";
        echo_location_async /high "id=c";
    }
--- request
GET /burst
--- response_body chomp
{"s":1}{"s":1}{"d":0}



=== TEST 6: the breaker opens after failures in a row, then probes
--- http_config
    pred_upstream_breaker failures=2 cooldown=500ms;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        access_log $TEST_NGINX_SERVER_ROOT/logs/model.log;
        location /predict/ { return 500; }
    }
--- config
    location = /predict {
        pred_key $arg_id;
        pred_upstream /_model;
        pred_fallback 'default={"d":0}';
        pred;
    }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location = /sleep { echo_sleep 0.6; echo slept; }
    location = /modellog { alias $TEST_NGINX_SERVER_ROOT/logs/model.log; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
    location = /metrics { pred_metrics; }
--- request eval
["GET /predict?id=k1", "GET /predict?id=k2", "GET /predict?id=k3",
 "GET /modellog", "GET /sleep", "GET /predict?id=k4", "GET /predict?id=k5",
 "GET /modellog", "GET /errlog", "GET /metrics"]
--- response_body eval
['{"d":0}', '{"d":0}', '{"d":0}',
 qr/\A(?:[^\n]*GET \/predict\/k[12] [^\n]*\n){2}\z/,
 "slept\n", '{"d":0}', '{"d":0}',
 qr/\A(?:[^\n]*GET \/predict\/k[124] [^\n]*\n){3}\z/,
 qr/circuit breaker open for 500 ms after 2 failed model calls in a row\b.*pred: upstream for key "k3" failed: circuit open; answering with the default.*circuit breaker open for 500 ms after 2 failed model calls in a row \(the probe failed\).*pred: upstream for key "k5" failed: circuit open/s,
 qr/^pred_upstream_breaker_open 1\n(?:[^\n]*\n)*?pred_upstream_breaker_trips_total 2\n/m]



=== TEST 7: a probe that succeeds closes the breaker
--- http_config
    pred_upstream_breaker failures=1 cooldown=300ms;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location /predict/bad { return 500; }
        location /predict/ { return 200 '{"s":1}'; }
    }
--- config
    location = /predict {
        pred_key $arg_id;
        pred_upstream /_model;
        pred_fallback 'default={"d":0}';
        pred;
    }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location = /sleep { echo_sleep 0.4; echo slept; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["GET /predict?id=bad1", "GET /predict?id=good1", "GET /sleep",
 "GET /predict?id=good2", "GET /predict?id=good3", "GET /errlog"]
--- response_headers eval
["X-Pred-Source: default", "X-Pred-Source: default", "",
 "X-Pred-Source: upstream", "X-Pred-Source: upstream", ""]
--- response_body eval
['{"d":0}', '{"d":0}', "slept\n", '{"s":1}', '{"s":1}',
 qr/pred: circuit breaker closed: the probe for key "good2" succeeded/]
