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



=== TEST 8: an open breaker keeps every kind of call off the model: a stale-while-revalidate refresh, a batch's call, a reranker call
--- http_config
    pred_cache_zone zone=hot:1m ttl=1s;
    pred_upstream_breaker failures=1 cooldown=10s;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        access_log $TEST_NGINX_SERVER_ROOT/logs/model.log;
        location /predict/bad { return 500; }
        location /predict/ { return 200 '{"s":1}'; }
        location = /batch { return 200 '[{"x":1},{"x":2}]'; }
        location = /rerank { return 200 '["b"]'; }
    }
--- config
    pred_cache hot ttl=1s swr=60s;
    pred_upstream /_model;
    pred_fallback 'default={"d":0}';
    location = /predict { pred_key $arg_id; pred; }
    location = /batch {
        pred_key $arg_keys;
        pred_batch on;
        pred_upstream /_batch;
        pred;
    }
    location = /reco {
        pred_key $arg_id;
        pred_refine /_rerank timeout=1s;
        pred;
    }
    location /admin/ { pred_admin; }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location = /_batch {
        internal;
        proxy_method POST;
        proxy_set_body $pred_keys_json;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/batch;
    }
    location = /_rerank {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/rerank;
    }
    location = /sleep { echo_sleep 1.1; echo slept; }
    location = /modellog { alias $TEST_NGINX_SERVER_ROOT/logs/model.log; }
    location = /metrics { pred_metrics; }
--- request eval
["GET /predict?id=s1", "PUT /admin/list1?ttl=1h\n{\"items\":[{\"id\":\"a\"},{\"id\":\"b\"}]}",
 "GET /predict?id=bad", "GET /sleep", "GET /predict?id=s1",
 "GET /batch?keys=b1,b2", "GET /reco?id=list1", "GET /modellog", "GET /metrics"]
--- response_headers eval
["X-Pred-Source: upstream", "", "X-Pred-Source: default", "",
 "X-Pred-Source: cache\nX-Pred-Stale: 1", "", "X-Pred-Source: cache\nX-Pred-Refined: 0",
 "", ""]
--- response_body eval
['{"s":1}', '{"stored":"list1","ttl":3600}', '{"d":0}', "slept\n", '{"s":1}',
 '{"results":{"b1":{"d":0},"b2":{"d":0}},"sources":{"b1":"default","b2":"default"}}',
 '{"items":[{"id":"a"},{"id":"b"}]}',
 qr/\A[^\n]*GET \/predict\/s1 [^\n]*\n[^\n]*GET \/predict\/bad [^\n]*\n\z/,
 qr/^pred_upstream_in_flight 0\n(?s:.*)^pred_upstream_breaker_trips_total 1\n(?s:.*)^pred_refine_requests_total 0\n/m]



=== TEST 9: pred_upstream_limit counts batch and reranker calls: at the cap both are shed (the batch to the fallback chain, the list unreranked)
--- http_config
    pred_cache_zone zone=hot:1m;
    pred_upstream_limit 1;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        access_log $TEST_NGINX_SERVER_ROOT/logs/model.log;
        location /predict/ { echo_sleep 0.3; echo -n '{"s":1}'; }
        location = /batch { return 200 '[{"x":1}]'; }
        location = /rerank { return 200 '["b"]'; }
    }
--- config
    pred_cache hot;
    pred_upstream /_model timeout=1s;
    pred_fallback 'default={"d":0}';
    location = /normal { pred_key $arg_id; pred; }
    location = /batch {
        pred_key $arg_keys;
        pred_batch on;
        pred_upstream /_batch;
        pred;
    }
    location = /reco {
        pred_key $arg_id;
        pred_refine /_rerank timeout=1s;
        pred;
    }
    location /admin/ { pred_admin; }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location = /_batch {
        internal;
        proxy_method POST;
        proxy_set_body $pred_keys_json;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/batch;
    }
    location = /_rerank {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/rerank;
    }
    location = /burst {
        echo_location_async /normal "id=a";
        echo_location_async /batch "keys=b1";
        echo_location_async /reco "id=list1";
    }
    location = /modellog { alias $TEST_NGINX_SERVER_ROOT/logs/model.log; }
--- request eval
["PUT /admin/list1\n{\"items\":[{\"id\":\"a\"},{\"id\":\"b\"}]}", "GET /burst",
 "GET /modellog"]
--- response_body eval
['{"stored":"list1","ttl":600}',
 '{"s":1}{"results":{"b1":{"d":0}},"sources":{"b1":"default"}}{"items":[{"id":"a"},{"id":"b"}]}',
 qr/\A[^\n]*GET \/predict\/a [^\n]*\n\z/]
--- no_error_log
[error]



=== TEST 10: a single-flight leader that times out in the admission queue lets its waiters fall back at once
--- http_config
    pred_cache_zone zone=hot:1m;
    pred_upstream_limit 1 queue=5 timeout=100ms;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location /predict/ { echo_sleep 0.5; echo -n '{"s":1}'; }
    }
--- config
    pred_cache hot;
    pred_upstream /_model timeout=3s;
    pred_fallback 'default={"d":0}';
    location = /normal { pred_key $arg_id; pred; }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location = /burst {
        echo_location_async /normal "id=a";
        echo_location_async /normal "id=b";
        echo_location_async /normal "id=b";
    }
--- request
GET /burst
--- response_body chomp
{"s":1}{"d":0}{"d":0}
--- error_log
pred: upstream for key "b" failed: shed: no model call slot within the queue timeout; answering with the default
pred: upstream for key "b" failed: another request's model call failed; answering with the default
--- no_error_log
timed out waiting



=== TEST 11: an async miss of a high-priority location uses the reserve like a sync one (it never waits in the queue)
--- http_config
    pred_cache_zone zone=hot:1m;
    pred_upstream_limit 1;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        access_log $TEST_NGINX_SERVER_ROOT/logs/model.log;
        location /predict/ { echo_sleep 0.3; echo -n '{"s":1}'; }
    }
--- config
    pred_cache hot;
    pred_fallback 'default={"d":0}';
    location = /normal { pred_key $arg_id; pred_upstream /_model timeout=1s; pred; }
    location = /asynchigh {
        pred_key $arg_id;
        pred_priority high;
        pred_miss_mode async;
        pred_upstream /_model timeout=1s;
        pred;
    }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location = /burst {
        echo_location_async /normal "id=a";
        echo_sleep 0.1;
        echo_location_async /asynchigh "id=h";
    }
--- request
GET /burst
--- response_body chomp
{"s":1}{"d":0}
--- no_error_log
shed: too many model calls in flight



=== TEST 12: the model refusing keys (4xx) is an answer, not a failure: bad keys from one client never open the breaker for everyone
--- http_config
    pred_upstream_breaker failures=2 cooldown=10s;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location /predict/bad { return 400 '{"error":"bad input"}'; }
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
    location = /metrics { pred_metrics; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["GET /predict?id=bad1", "GET /predict?id=bad2", "GET /predict?id=bad3",
 "GET /predict?id=good", "GET /metrics", "GET /errlog"]
--- response_body eval
['{"d":0}', '{"d":0}', '{"d":0}', '{"s":1}',
 qr/^pred_upstream_breaker_open 0\n(?s:.*)^pred_upstream_breaker_trips_total 0\n/m,
 qr/pred: upstream for key "bad3" failed: the model refused the request \(4xx\); answering with the default/]
--- no_error_log
circuit breaker open




=== TEST 13: an open breaker costs nothing: no connect, no call, no error line per request
--- http_config
    pred_upstream_breaker failures=2 cooldown=10s;
    pred_cache_zone zone=hot:1m ttl=1h;
--- config
    location = /predict {
        pred_name api;
        pred_key $arg_id;
        pred_cache hot;
        pred_upstream /_model;
        pred_fallback 'default={"d":0}';
        pred;
    }
    location /_model { internal; proxy_pass http://127.0.0.1:1/; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
    location = /metrics { pred_metrics; }
--- request eval
[(map { "GET /predict?id=k$_" } 1 .. 8), "GET /errlog", "GET /metrics"]
--- response_headers eval
[("X-Pred-Source: default") x 8, "", ""]
--- response_body eval
[('{"d":0}') x 8,
 qr/\A(?:(?!\[error\])[\s\S])*(?:\[error\][^\n]*connect\(\) failed[^\n]*\n(?:(?!\[error\])[\s\S])*){2}\z/,
 qr/^pred_requests_total\{location="api",source="default"\} 2\n(?:[^\n]*\n)*?pred_requests_total\{location="api",source="shed"\} 6\n.*^pred_upstream_requests_total 2\n.*^pred_upstream_in_flight 0\n.*^pred_upstream_breaker_open 1\n/ms]
