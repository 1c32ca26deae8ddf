# Invalidations stick: a tombstone or an override lives for its ttl
# whatever the cache does (LRU eviction, a model's answer replacing it),
# within its own budget in the zone, and a value a tombstone masks is never
# served, not even by the "stale" fallback.
use lib 't';
use PredTest;
use Test::Nginx::Socket 'no_plan';

my $dir = snap_dir('inval');
snap_build($dir, 'i1', qq{{"key":"b","value":{"from":"snapshot"}}\n}
                       . qq{{"key":"c","value":{"from":"snapshot"}}\n});
snap_publish($dir, 'i1');

# a model answer for a 300-key batch: about 130 KB, more than the zone
write_file("$dir/flood.json",
           '[' . join(',', map { '"' . ('v' x 400) . "$_\"" } 1 .. 300)
           . ']');

our $flood_keys = join ',', map { "f$_" } 1 .. 300;
our $big = '"' . ('x' x 2998) . '"';
our $mid = '"' . ('y' x 3698) . '"';
our $small = '"' . ('z' x 1398) . '"';

run_tests();

__DATA__

=== TEST 1: a flood of model answers evicts the cache, never a tombstone or an override
--- http_config
    pred_cache_zone zone=hot:128k admin=16k max_entry=8k;
    pred_snapshot_path main $TEST_NGINX_SNAP_INVAL;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /flood { alias $TEST_NGINX_SNAP_INVAL/flood.json; }
    }
--- config
    pred_cache hot;
    pred_snapshot main;
    location = /predict { pred_key $arg_id; pred; }
    location = /batch {
        pred_key $arg_keys;
        pred_batch on max=1000;
        pred_upstream /_flood timeout=2s max_size=1m;
        pred;
    }
    location = /_flood {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/flood;
    }
    location /admin/ { pred_admin; }
    location = /metrics { pred_metrics; }
--- request eval
["GET /predict?id=b", "DELETE /admin/b", "PUT /admin/o1\n{\"o\":1}",
 "GET /batch?keys=$::flood_keys", "GET /predict?id=b", "GET /predict?id=o1",
 "GET /metrics"]
--- error_code eval
[200, 200, 200, 200, 404, 200, 200]
--- response_body_like eval
['\A\{"from":"snapshot"\}\z', '\A\{"invalidated":"b","ttl":600\}\z',
 '\A\{"stored":"o1","ttl":600\}\z', '\A\{"results":\{"f1":"v+1",',
 '\A\{"error":"not_found","key":"b"\}\z', '\A\{"o":1\}\z',
 'pred_cache_events_total\{zone="hot",event="eviction"\} [1-9]']



=== TEST 2: a model's 404 for an invalidated key does not end the invalidation: when that answer expires, the snapshot still does not answer
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_cache_zone zone=hot:1m negative_ttl=1s;
    pred_snapshot_path main $TEST_NGINX_SNAP_INVAL;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location /predict/ { return 404; }
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
    location = /sleep { echo_sleep 1.2; echo slept; }
--- request eval
["DELETE /admin/c", "GET /predict?id=c", "GET /predict?id=c", "GET /sleep",
 "GET /predict?id=c"]
--- error_code eval
[200, 404, 404, 200, 404]
--- response_headers eval
["", "X-Pred-Source: upstream", "X-Pred-Source: cache", "",
 "X-Pred-Source: upstream"]
--- response_body eval
['{"invalidated":"c","ttl":600}', '{"error":"not_found","key":"c"}',
 '{"error":"not_found","key":"c"}', "slept\n",
 '{"error":"not_found","key":"c"}']



=== TEST 3: overrides and tombstones have their own budget: over it, a 507 that says so; expired ones make room
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_cache_zone zone=hot:1m admin=8k;
--- config
    pred_cache hot;
    location /admin/ { pred_admin; }
    location = /predict { pred_key $arg_id; pred; }
    location = /sleep { echo_sleep 1.2; echo slept; }
    location = /metrics { pred_metrics; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["PUT /admin/a?ttl=1\n$::big", "PUT /admin/b\n$::big", "PUT /admin/c\n$::big",
 "GET /sleep", "PUT /admin/c\n$::big", "GET /predict?id=b", "GET /metrics",
 "GET /errlog"]
--- error_code eval
[200, 200, 507, 200, 200, 200, 200, 200]
--- response_body_like eval
['\A\{"stored":"a","ttl":1\}\z', '\A\{"stored":"b","ttl":600\}\z',
 '\A\{"error":"admin_budget_full","key":"c","reason":"the zone\'s budget for overrides and tombstones \(admin=\) is full"\}\z',
 '\Aslept\n\z', '\A\{"stored":"c","ttl":600\}\z', '\A"x+"\z',
 'pred_cache_bytes\{zone="hot",kind="admin_limit"\} 8192\n(?s:.*)pred_cache_events_total\{zone="hot",event="admin_full"\} 1\n',
 'pred: cache "hot": key "c": the admin budget of 8192 bytes for overrides and tombstones is full']



=== TEST 4: an expired override being replaced is not swept away under it when the budget is tight (it was freed twice, and the worker crashed)
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_cache_zone zone=hot:1m admin=8k;
--- config
    pred_cache hot;
    location /admin/ { pred_admin; }
    location = /predict { pred_key $arg_id; pred; }
    location = /sleep { echo_sleep 1.2; echo slept; }
    location = /metrics { pred_metrics; }
--- request eval
["PUT /admin/a?ttl=1\n$::big", "PUT /admin/x?ttl=1\n$::small",
 "PUT /admin/b\n$::big", "GET /sleep", "PUT /admin/a\n$::mid",
 "GET /predict?id=a", "GET /predict?id=b", "GET /predict?id=x",
 "GET /metrics"]
--- error_code eval
[200, 200, 200, 200, 200, 200, 200, 404, 200]
--- response_body_like eval
['\A\{"stored":"a","ttl":1\}\z', '\A\{"stored":"x","ttl":1\}\z',
 '\A\{"stored":"b","ttl":600\}\z', '\Aslept\n\z',
 '\A\{"stored":"a","ttl":600\}\z', '\A"y+"\z', '\A"x+"\z',
 '\A\{"error":"not_found","key":"x"\}\z',
 'pred_cache_bytes\{zone="hot",kind="admin_used"\} 6822\n']
--- no_error_log
[alert]
[crit]



=== TEST 5: a model answer that carries a tombstone's mask is not evicted with the model answers: after a flood the snapshot still does not answer for the key
--- http_config
    pred_cache_zone zone=hot:128k admin=16k max_entry=8k;
    pred_snapshot_path main $TEST_NGINX_SNAP_INVAL;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /flood { alias $TEST_NGINX_SNAP_INVAL/flood.json; }
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
    location = /batch {
        pred_key $arg_keys;
        pred_batch on max=1000;
        pred_upstream /_flood timeout=2s max_size=1m;
        pred;
    }
    location = /_flood {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/flood;
    }
    location /admin/ { pred_admin; }
    location = /metrics { pred_metrics; }
--- request eval
["GET /predict?id=b", "DELETE /admin/b", "GET /predict?id=b",
 "GET /batch?keys=$::flood_keys", "GET /predict?id=b", "GET /metrics"]
--- error_code eval
[200, 200, 200, 200, 200, 200]
--- response_headers eval
["X-Pred-Source: snapshot", "", "X-Pred-Source: upstream", "",
 "X-Pred-Source: cache", ""]
--- response_body_like eval
['\A\{"from":"snapshot"\}\z', '\A\{"invalidated":"b","ttl":600\}\z',
 '\A\{"from":"model"\}\z', '\A\{"results":\{"f1":',
 '\A\{"from":"model"\}\z',
 'pred_cache_events_total\{zone="hot",event="eviction"\} [1-9]']

