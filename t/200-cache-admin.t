# The shared-memory tier and the admin API: overrides, tombstones, expiry,
# eviction, purge, and the snapshot calls.
use lib 't';
use PredTest;
use Test::Nginx::Socket 'no_plan';

my $dir = snap_dir('cache');
snap_build($dir, 'c1', qq{{"key":"a","value":{"from":"snapshot"}}\n}
                       . qq{{"key":"b","value":2}\n},
           age => 50, args => ['--owner', 'ml', '--freshness-sla', '1h']);
snap_publish($dir, 'c1');

run_tests();

__DATA__

=== TEST 1: a value PUT through the admin API is served from the cache
--- http_config
    pred_cache_zone zone=hot:1m;
--- config
    pred_cache hot;
    location = /predict { pred_key $arg_id; pred; }
    location /admin/ { pred_admin; }
--- request eval
["PUT /admin/u1\n{ \"score\" : 0.25 , \"tags\": [\"a b\", 1] }",
 "GET /predict?id=u1"]
--- response_headers eval
["Content-Type: application/json", "X-Pred-Source: cache\n!X-Pred-Version"]
--- response_body eval
['{"stored":"u1","ttl":600}', '{"score":0.25,"tags":["a b",1]}']
--- no_error_log
[error]



=== TEST 2: an override wins over the snapshot; a tombstone hides it
--- http_config
    pred_cache_zone zone=hot:1m;
    pred_snapshot_path main $TEST_NGINX_SNAP_CACHE;
--- config
    pred_cache hot;
    pred_snapshot main;
    location = /predict { pred_key $arg_id; pred; }
    location /admin/ { pred_admin; }
--- request eval
["GET /predict?id=a", "PUT /admin/a\n{\"from\":\"override\"}",
 "GET /predict?id=a", "GET /predict?id=b", "DELETE /admin/b",
 "GET /predict?id=b"]
--- error_code eval
[200, 200, 200, 200, 200, 404]
--- response_headers eval
["X-Pred-Source: snapshot", "", "X-Pred-Source: cache", "X-Pred-Source: snapshot",
 "", "!X-Pred-Source"]
--- response_body eval
['{"from":"snapshot"}', '{"stored":"a","ttl":600}', '{"from":"override"}', '2',
 '{"invalidated":"b","ttl":600}', '{"error":"not_found","key":"b"}']



=== TEST 3: an entry expires after its ttl and the snapshot answers again
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_cache_zone zone=hot:1m;
    pred_snapshot_path main $TEST_NGINX_SNAP_CACHE;
--- config
    pred_cache hot;
    pred_snapshot main;
    location = /predict { pred_key $arg_id; pred; }
    location /admin/ { pred_admin; }
    location = /sleep { echo_sleep 1.1; echo slept; }
--- request eval
["PUT /admin/a?ttl=1\n7", "GET /predict?id=a", "GET /sleep",
 "GET /predict?id=a"]
--- response_body eval
['{"stored":"a","ttl":1}', '7', "slept\n", '{"from":"snapshot"}']



=== TEST 4: pred_cache ttl= is the default ttl of the location's admin writes
--- http_config
    pred_cache_zone zone=hot:1m ttl=1h;
--- config
    location = /predict { pred_key $arg_id; pred_cache hot; pred; }
    location /admin/ { pred_cache hot ttl=90s; pred_admin; }
--- request eval
["PUT /admin/a\n1", "DELETE /admin/b", "PUT /admin/c?ttl=5m\n1"]
--- response_body eval
['{"stored":"a","ttl":90}', '{"invalidated":"b","ttl":90}',
 '{"stored":"c","ttl":300}']



=== TEST 5: bad admin inputs are 4xx with a reason
--- http_config
    pred_cache_zone zone=hot:1m max_entry=64;
--- config
    pred_cache hot;
    location /admin/ { pred_admin max_body=100; }
--- request eval
["PUT /admin/x\nnot json",
 "PUT /admin/x\n{\"a\":NaN}",
 "PUT /admin/x\nnull",
 "PUT /admin/x\n{\"a\":1,\"a\":2}",
 "PUT /admin/x\n" . '{"p":"' . ('x' x 200) . '"}',
 "PUT /admin/x\n" . '{"p":"' . ('x' x 70) . '"}',
 "PUT /admin/x?ttl=soon\n1",
 "PUT /admin/%01\n1",
 "GET /admin/x",
 "POST /admin/snapshot/check",
 "GET /admin/snapshot"]
--- error_code eval
[400, 400, 400, 400, 413, 413, 400, 400, 405, 404, 404]
--- response_headers eval
["", "", "", "", "", "", "", "", "Allow: PUT, PATCH, DELETE", "", ""]
--- response_body eval
['{"error":"bad_json","key":"x","reason":"invalid token near \'not\'"}',
 '{"error":"bad_json","key":"x","reason":"invalid token near \'NaN\'"}',
 '{"error":"bad_json","key":"x","reason":"the value is null"}',
 '{"error":"bad_json","key":"x","reason":"duplicate object key near \'\\"a\\"\'"}',
 '{"error":"body_too_large","key":"x","reason":"the body is over the admin max_body"}',
 '{"error":"value_too_large","key":"x","reason":"the value is over the cache\'s max_entry"}',
 '{"error":"bad_ttl","key":"x","reason":"ttl must be a time, such as 60 or 10m"}',
 '{"error":"bad_key","reason":"key contains a control byte"}',
 '{"error":"method_not_allowed","reason":"PUT, PATCH, DELETE"}',
 '{"error":"not_configured","reason":"this location has no pred_snapshot"}',
 '{"error":"not_configured","reason":"this location has no pred_snapshot"}']



=== TEST 6: an admin location without a cache says so
--- config
    location /admin/ { pred_admin; }
--- request eval
["PUT /admin/x\n1", "DELETE /admin/x", "POST /admin/purge"]
--- error_code eval
[404, 404, 404]
--- response_body eval
['{"error":"not_configured","reason":"this location has no pred_cache"}',
 '{"error":"not_configured","reason":"this location has no pred_cache"}',
 '{"error":"not_configured","reason":"this location has no pred_cache"}']



=== TEST 7: purge removes everything, or one prefix
--- http_config
    pred_cache_zone zone=hot:1m;
--- config
    pred_cache hot;
    location = /predict { pred_key $arg_id; pred; }
    location /admin/ { pred_admin; }
--- request eval
["PUT /admin/user_1\n1", "PUT /admin/user_2\n2", "PUT /admin/item_1\n3",
 "POST /admin/purge?prefix=user_", "GET /predict?id=user_1",
 "GET /predict?id=item_1", "POST /admin/purge", "GET /predict?id=item_1"]
--- error_code eval
[200, 200, 200, 200, 404, 200, 200, 404]
--- response_body eval
['{"stored":"user_1","ttl":600}', '{"stored":"user_2","ttl":600}',
 '{"stored":"item_1","ttl":600}', '{"purged":2}',
 '{"error":"not_found","key":"user_1"}', '3', '{"purged":1}',
 '{"error":"not_found","key":"item_1"}']



=== TEST 8: a full zone evicts the least recently used model answers (overrides and tombstones are not evicted: t/220)
--- http_config
    pred_cache_zone zone=tiny:32k;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location /predict/ { return 200 '"$uri.........................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................."'; }
    }
--- config
    pred_cache tiny;
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
[(map { "GET /predict?id=k$_" } 1 .. 40), "GET /predict?id=k1",
 "GET /predict?id=k40"]
--- response_headers eval
[("X-Pred-Source: upstream") x 40, "X-Pred-Source: upstream",
 "X-Pred-Source: cache"]
--- response_body_like eval
[(map { qr/\A"\/predict\/k$_\.{900,}"\z/ } 1 .. 40),
 qr/\A"\/predict\/k1\./, qr/\A"\/predict\/k40\./]
--- no_error_log
[error]
[crit]



=== TEST 9: the snapshot calls show what is live
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_CACHE;
--- config
    location /admin/ { pred_snapshot main; pred_admin; }
--- request eval
["GET /admin/snapshot", "POST /admin/snapshot/check", "PUT /admin/snapshot\n1",
 "DELETE /admin/snapshot/check"]
--- error_code eval
[200, 200, 404, 404]
--- response_body eval
[qr/\A\{"name":"main","version":"c1","entries":2,"created_at":\d+,"age":(?:5\d|[6-9]\d|[1-5]\d\d),"freshness_sla":3600,"fallback_if_stale":"serve","stale":false,"owner":"ml","invalidated_by":"","checksum":"fnv1a64:[0-9a-f]{16}","candidate":null,"deltas":\[\]\}\z/,
 qr/\A\{"name":"main","version":"c1",/,
 '{"error":"not_configured","reason":"this location has no pred_cache"}',
 '{"error":"not_configured","reason":"this location has no pred_cache"}']



=== TEST 10: admin keys are decoded once, like lookup keys
--- http_config
    pred_cache_zone zone=hot:1m;
--- config
    pred_cache hot;
    location = /predict { pred_key $arg_id; pred; }
    location /admin/ { pred_admin; }
--- request eval
["PUT /admin/a%2Fb%20c\n1", "GET /predict?id=a/b%20c",
 "PUT /admin/x//y\n2", "GET /predict?id=x//y"]
--- response_body eval
['{"stored":"a/b c","ttl":600}', '1', '{"stored":"x//y","ttl":600}', '2']



=== TEST 11: a cache hit says how old the value is (0 or 1 s: the PUT may fall in the second before)
--- http_config
    pred_cache_zone zone=hot:1m;
--- config
    pred_cache hot;
    location = /predict { pred_key $arg_id; pred; }
    location /admin/ { pred_admin; }
--- request eval
["PUT /admin/u1\n1", "GET /predict?id=u1"]
--- response_headers_like eval
["Content-Type: application/json", "X-Pred-Source: cache\nAge: [01]"]
--- response_body eval
['{"stored":"u1","ttl":600}', '1']



=== TEST 12: an admin server logging with the prediction variables (edge.conf's): writes work, and the variables say what the admin call did or "-"
--- http_config
    pred_cache_zone zone=hot:1m;
    log_format pred '$request_method key=$pred_key source=$pred_source version=$pred_version age=$pred_age stale=$pred_stale refined=$pred_refined up=$pred_upstream_time status=$status';
--- config
    pred_cache hot;
    location = /predict { pred_key $arg_id; pred; }
    location /admin/ {
        access_log $TEST_NGINX_SERVER_ROOT/logs/admin.log pred;
        pred_admin;
    }
    location = /adminlog { alias $TEST_NGINX_SERVER_ROOT/logs/admin.log; }
--- request eval
["PUT /admin/u1\n{\"s\":1}", "DELETE /admin/u2", "POST /admin/purge?prefix=zz",
 "GET /admin/u1", "GET /predict?id=u1", "GET /adminlog"]
--- error_code eval
[200, 200, 200, 405, 200, 200]
--- response_body eval
['{"stored":"u1","ttl":600}', '{"invalidated":"u2","ttl":600}',
 '{"purged":0}', '{"error":"method_not_allowed","reason":"PUT, PATCH, DELETE"}',
 '{"s":1}',
 "PUT key=u1 source=- version=- age=- stale=- refined=- up=- status=200
DELETE key=u2 source=- version=- age=- stale=- refined=- up=- status=200
POST key=- source=- version=- age=- stale=- refined=- up=- status=200
GET key=- source=- version=- age=- stale=- refined=- up=- status=405
"]
--- no_error_log
[alert]
[error]




=== TEST 13: a purge with the wrong method is told to POST
--- http_config
    pred_cache_zone zone=hot:1m;
--- config
    pred_cache hot;
    location /admin/ { pred_admin; }
--- request
GET /admin/purge
--- error_code: 405
--- response_headers
Allow: POST, PUT, PATCH, DELETE
--- response_body chomp
{"error":"method_not_allowed","reason":"POST, PUT, PATCH, DELETE"}



=== TEST 14: admin keys that are not valid UTF-8 are answered in JSON (U+FFFD), and a ttl over a year is refused
--- http_config
    pred_cache_zone zone=hot:1m;
--- config
    pred_cache hot;
    location = /predict { pred_key $arg_id; pred; }
    location /admin/ { pred_admin; }
--- request eval
["PUT /admin/a%FFb\n1", "GET /predict?id=a%FFb", "DELETE /admin/c%C3",
 "PUT /admin/x?ttl=100000000000\n1", "PUT /admin/x?ttl=366d\n1"]
--- error_code eval
[200, 200, 200, 400, 400]
--- response_headers eval
["Content-Type: application/json", "X-Pred-Source: cache",
 "Content-Type: application/json", "Content-Type: application/json",
 "Content-Type: application/json"]
--- response_body eval
['{"stored":"a\ufffdb","ttl":600}', '1', '{"invalidated":"c\ufffd","ttl":600}',
 '{"error":"bad_ttl","key":"x","reason":"ttl must be a time, such as 60 or 10m"}',
 '{"error":"bad_ttl","key":"x","reason":"ttl must be a time, such as 60 or 10m"}']
--- no_error_log
[error]




=== TEST 15: an answer hit since it was cached outlives older ones that were not when the zone is full (a second chance at the LRU's tail)
--- http_config
    pred_cache_zone zone=tiny:32k;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location /predict/ { return 200 '"$uri.........................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................."'; }
    }
--- config
    pred_cache tiny;
    location = /predict {
        pred_key $arg_id;
        pred_upstream /_model;
        pred;
    }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location = /metrics { pred_metrics; }
--- request eval
[(map { "GET /predict?id=k$_" } 1 .. 15), "GET /metrics", "GET /predict?id=k1",
 (map { "GET /predict?id=k$_" } 16 .. 20), "GET /predict?id=k1",
 "GET /predict?id=k7", "GET /predict?id=k2", "GET /metrics"]
--- response_headers eval
[("X-Pred-Source: upstream") x 15, "", "X-Pred-Source: cache",
 ("X-Pred-Source: upstream") x 5, "X-Pred-Source: cache",
 "X-Pred-Source: cache", "X-Pred-Source: upstream", ""]
--- response_body_like eval
[(map { qr/\A"\/predict\/k$_\.{900,}"\z/ } 1 .. 15),
 qr/^pred_cache_entries\{zone="tiny"\} 15\n(?s:.*)event="eviction"\} 0\n/m,
 qr/\A"\/predict\/k1\./,
 (map { qr/\A"\/predict\/k$_\.{900,}"\z/ } 16 .. 20),
 qr/\A"\/predict\/k1\./, qr/\A"\/predict\/k7\./, qr/\A"\/predict\/k2\./,
 qr/^pred_cache_entries\{zone="tiny"\} 15\n(?s:.*)event="eviction"\} 6\n/m]
--- no_error_log
[error]
[crit]



=== TEST 16: a hundred and twenty entries sharing buckets: each one found, a prefix purge unlinks exactly its own from the chains, the rest stay
--- http_config
    pred_cache_zone zone=hot:64k admin=32k;
--- config
    pred_cache hot;
    location = /predict { pred_key $arg_id; pred; }
    location = /batch { pred_key $arg_keys; pred_batch on max=200; pred; }
    location /admin/ { pred_admin; }
--- request eval
[(map { "PUT /admin/k$_\n$_" } 0 .. 119),
 "GET /batch?keys=" . CORE::join(',', map { "k$_" } 0 .. 119),
 "POST /admin/purge?prefix=k1",
 "GET /batch?keys=" . CORE::join(',', map { "k$_" } 0 .. 119),
 "GET /predict?id=k119", "GET /predict?id=k99"]
--- error_code eval
[(200) x 123, 404, 200]
--- response_body eval
[(map { qq{{"stored":"k$_","ttl":600}} } 0 .. 119),
 '{"results":{' . CORE::join(',', map { qq{"k$_":$_} } 0 .. 119)
 . '},"sources":{' . CORE::join(',', map { qq{"k$_":"cache"} } 0 .. 119) . '}}',
 '{"purged":31}',
 '{"results":{' . CORE::join(',', map { /^1/ ? qq{"k$_":null} : qq{"k$_":$_} } 0 .. 119)
 . '},"sources":{' . CORE::join(',', map { /^1/ ? qq{"k$_":"none"} : qq{"k$_":"cache"} } 0 .. 119) . '}}',
 '{"error":"not_found","key":"k119"}', '99']
--- no_error_log
[error]
[crit]
