# Real-time refinement: a reranker reorders the candidates within a strict
# deadline, or the batch order is sent.
use lib 't';
use PredTest;
use Test::Nginx::Socket 'no_plan';

my $items = '{"items":[{"id":"b1","s":1},{"id":"m1","s":2},'
          . '{"id":"b2","s":3},{"id":"b3","s":4}],"v":1}';

my $dir = snap_dir('refine');
snap_build($dir, 'r1', qq{{"key":"u1","value":$items}\n}
                       . qq{{"key":"flat","value":{"score":1}}\n});
snap_publish($dir, 'r1');

run_tests();

__DATA__

=== TEST 1: the reranker's order is used when it answers in time
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_REFINE;
    log_format body '$request_body';
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /rerank {
            access_log $TEST_NGINX_SERVER_ROOT/logs/rerank.log body;
            echo_read_request_body;
            echo -n '["b3", "b1"]';
        }
    }
--- config
    location = /reco {
        pred_key $arg_user;
        pred_snapshot main;
        pred_refine /_rerank timeout=1s;
        pred_filter on;
        pred;
    }
    location = /_rerank {
        internal;
        proxy_method POST;
        proxy_set_body '{"device":"$arg_device","candidates":$pred_candidates}';
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/rerank;
    }
    location = /rerankerlog { alias $TEST_NGINX_SERVER_ROOT/logs/rerank.log; }
--- request eval
["GET /reco?user=u1&device=ios", "GET /reco?user=u1&limit=1&fields=id",
 "GET /rerankerlog"]
--- response_headers eval
["X-Pred-Refined: 1\nX-Pred-Source: snapshot", "X-Pred-Refined: 1", ""]
--- response_body eval
['{"items":[{"id":"b3","s":4},{"id":"b1","s":1},{"id":"m1","s":2},{"id":"b2","s":3}],"v":1}',
 '{"items":[{"id":"b3"}],"v":1}',
 '{\x22device\x22:\x22ios\x22,\x22candidates\x22:[{\x22id\x22:\x22b1\x22,\x22s\x22:1},{\x22id\x22:\x22m1\x22,\x22s\x22:2},{\x22id\x22:\x22b2\x22,\x22s\x22:3},{\x22id\x22:\x22b3\x22,\x22s\x22:4}]}
{\x22device\x22:\x22\x22,\x22candidates\x22:[{\x22id\x22:\x22b1\x22,\x22s\x22:1},{\x22id\x22:\x22m1\x22,\x22s\x22:2},{\x22id\x22:\x22b2\x22,\x22s\x22:3},{\x22id\x22:\x22b3\x22,\x22s\x22:4}]}
']
--- no_error_log
[warn]
[error]



=== TEST 2: a reranker past its deadline: the batch order, X-Pred-Refined: 0, and a kept-alive connection closed after it
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_REFINE;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /rerank {
            echo_sleep 0.3;
            echo -n '["b3"]';
        }
    }
--- config
    location = /reco {
        pred_key $arg_user;
        pred_snapshot main;
        pred_refine /_rerank timeout=50ms;
        pred;
    }
    location = /_rerank {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/rerank;
    }
--- request
GET /reco?user=u1
--- more_headers
Connection: keep-alive
--- response_headers
X-Pred-Refined: 0
Connection: close
--- response_body chomp
{"items":[{"id":"b1","s":1},{"id":"m1","s":2},{"id":"b2","s":3},{"id":"b3","s":4}],"v":1}
--- error_log
pred: reranker for key "u1" missed its 50 ms deadline; sending the batch order



=== TEST 3: a reranker answer that is not an array of ids is ignored
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_REFINE;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /rerank { return 200 '{"order": "b3"}'; }
    }
--- config
    location = /reco {
        pred_key $arg_user;
        pred_snapshot main;
        pred_refine /_rerank timeout=1s;
        pred;
    }
    location = /_rerank {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/rerank;
    }
--- request
GET /reco?user=u1
--- response_headers
X-Pred-Refined: 0
--- response_body chomp
{"items":[{"id":"b1","s":1},{"id":"m1","s":2},{"id":"b2","s":3},{"id":"b3","s":4}],"v":1}
--- error_log
pred: reranker answer for key "u1" is not a JSON array of ids



=== TEST 4: top= sends only the first candidates; the tail keeps its place
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_REFINE;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /rerank {
            echo_read_request_body;
            # the ids, reversed: the reranker only ever sees two
            echo -n '["m1","b1"]';
        }
    }
--- config
    location = /reco {
        pred_key $arg_user;
        pred_snapshot main;
        pred_refine /_rerank timeout=1s top=2;
        pred;
    }
    location = /_rerank {
        internal;
        proxy_method POST;
        proxy_set_body $pred_candidates;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/rerank;
    }
--- request
GET /reco?user=u1
--- response_headers
X-Pred-Refined: 1
--- response_body chomp
{"items":[{"id":"m1","s":2},{"id":"b1","s":1},{"id":"b2","s":3},{"id":"b3","s":4}],"v":1}



=== TEST 5: a value without candidates is sent as is
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_REFINE;
--- config
    location = /reco {
        pred_key $arg_user;
        pred_snapshot main;
        pred_refine /_rerank;
        pred;
    }
    location = /_rerank { internal; return 500; }
--- request
GET /reco?user=flat
--- response_headers
X-Pred-Refined: 0
--- response_body chomp
{"score":1}



=== TEST 6: a reranker answer after the deadline is dropped: not cached as the key's value (nor a 404 as a negative answer), the in-flight gauge back to 0, the breaker untouched
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_REFINE;
    pred_cache_zone zone=hot:1m;
    pred_upstream_limit 4;
    pred_upstream_breaker failures=1 cooldown=10s;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /rerank/u1 { echo_sleep 0.2; echo -n '["b3"]'; }
        location = /rerank/flat2 { echo_sleep 0.2; echo_status 404; echo -n '{}'; }
        location = /rerank/u1x { echo_sleep 0.2; echo_status 500; echo -n 'no'; }
    }
--- config
    pred_cache hot;
    pred_snapshot main;
    location = /reco {
        pred_key $arg_user;
        pred_refine /_rerank timeout=30ms;
        pred;
    }
    location = /_rerank {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/rerank/$arg_r;
    }
    location = /sleep { echo_sleep 0.4; echo -n ok; }
    location = /metrics { pred_metrics; }
--- request eval
["GET /reco?user=u1&r=u1", "GET /reco?user=u1&r=flat2", "GET /reco?user=u1&r=u1x",
 "GET /sleep", "GET /reco?user=u1", "GET /metrics"]
--- error_code eval
[200, 200, 200, 200, 200, 200]
--- response_headers eval
["X-Pred-Refined: 0\nX-Pred-Source: snapshot", "X-Pred-Refined: 0\nX-Pred-Source: snapshot",
 "X-Pred-Refined: 0\nX-Pred-Source: snapshot", "", "X-Pred-Source: snapshot\nX-Pred-Refined: 0", ""]
--- response_body eval
['{"items":[{"id":"b1","s":1},{"id":"m1","s":2},{"id":"b2","s":3},{"id":"b3","s":4}],"v":1}',
 '{"items":[{"id":"b1","s":1},{"id":"m1","s":2},{"id":"b2","s":3},{"id":"b3","s":4}],"v":1}',
 '{"items":[{"id":"b1","s":1},{"id":"m1","s":2},{"id":"b2","s":3},{"id":"b3","s":4}],"v":1}',
 'ok',
 '{"items":[{"id":"b1","s":1},{"id":"m1","s":2},{"id":"b2","s":3},{"id":"b3","s":4}],"v":1}',
 qr/^pred_upstream_in_flight 0\n(?s:.*)^pred_upstream_breaker_open 0\n(?s:.*)^pred_upstream_breaker_trips_total 0\n(?s:.*)^pred_refine_requests_total 4\n(?s:.*)^pred_refine_deadline_missed_total 3\n(?s:.*)^pred_cache_entries\{zone="hot"\} 0\n/m]
--- no_error_log
[alert]
[crit]



=== TEST 7: reranker calls past their deadline leave the cap to the model: two hung reranker calls at limit 2 do not shed a miss
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_cache_zone zone=hot:1m;
    pred_upstream_limit 2;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /rerank { echo_sleep 1.5; echo -n '["b","a"]'; }
        location /predict/ { echo -n '{"s":1}'; }
    }
--- config
    pred_cache hot;
    pred_fallback 'default={"d":0}';
    location = /predict { pred_key $arg_id; pred_upstream /_model timeout=1s; pred; }
    location = /reco { pred_key $arg_id; pred_refine /_rerank timeout=30ms; pred; }
    location /admin/ { pred_admin; }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location /_rerank {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/rerank;
    }
    location = /burst {
        echo_location_async /reco "id=list1";
        echo_location_async /reco "id=list1";
        echo_sleep 0.2;
        echo_location_async /predict "id=miss";
    }
--- request eval
["PUT /admin/list1?ttl=1h\n{\"items\":[{\"id\":\"a\"},{\"id\":\"b\"}]}",
 "GET /burst"]
--- timeout: 6
--- response_body eval
['{"stored":"list1","ttl":3600}',
 '{"items":[{"id":"a"},{"id":"b"}]}{"items":[{"id":"a"},{"id":"b"}]}{"s":1}']
--- no_error_log
shed: too many model calls in flight



=== TEST 8: once the breaker's cooldown is over, a location that only gets hits reranks again (reranker calls obey the open breaker but never wait for a probe)
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_cache_zone zone=hot:1m;
    pred_upstream_breaker failures=1 cooldown=200ms;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /rerank { echo -n '["b","a"]'; }
        location /predict/bad { return 500; }
        location /predict/ { echo -n '{"s":1}'; }
    }
--- config
    pred_cache hot;
    pred_fallback 'default={"d":0}';
    location = /predict { pred_key $arg_id; pred_upstream /_model timeout=1s; pred; }
    location = /reco { pred_key $arg_id; pred_refine /_rerank timeout=1s; pred; }
    location /admin/ { pred_admin; }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location /_rerank {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/rerank;
    }
    location = /sleep { echo_sleep 0.5; echo slept; }
    location = /metrics { pred_metrics; }
--- request eval
["PUT /admin/list1?ttl=1h\n{\"items\":[{\"id\":\"a\"},{\"id\":\"b\"}]}",
 "GET /predict?id=bad", "GET /sleep", "GET /metrics", "GET /reco?id=list1"]
--- response_body eval
['{"stored":"list1","ttl":3600}', '{"d":0}', "slept\n",
 qr/^pred_upstream_breaker_open 0$/m,
 '{"items":[{"id":"b"},{"id":"a"}]}']
