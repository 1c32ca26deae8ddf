# Metrics after a known sequence of requests: the exact counts.
use lib 't';
use PredTest;
use Test::Nginx::Socket 'no_plan';

my $dir = snap_dir('metrics');
snap_build($dir, 'm1', qq{{"key":"a","value":1}\n{"key":"b","value":2}\n},
           age => 10, args => ['--freshness-sla', '1h']);
snap_publish($dir, 'm1');

run_tests();

__DATA__

=== TEST 1: requests by location and source, model calls, the cache, the snapshot
--- http_config
    pred_cache_zone zone=hot:1m;
    pred_snapshot_path main $TEST_NGINX_SNAP_METRICS;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /predict/m { return 200 '{"m":1}'; }
        location /predict/ { return 500; }
    }
--- config
    location = /predict {
        pred_name api;
        pred_key $arg_id;
        pred_cache hot;
        pred_snapshot main;
        pred_upstream /_model;
        pred_fallback 'default={"d":0}';
        pred;
    }
    location = /plain {
        pred_name plain;
        pred_key $arg_id;
        pred_snapshot main;
        pred;
    }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location = /metrics { pred_metrics; }
--- request eval
["GET /predict?id=a", "GET /predict?id=m", "GET /predict?id=m",
 "GET /predict?id=bad", "GET /plain?id=zz", "GET /metrics",
 "GET /metrics?format=json"]
--- error_code eval
[200, 200, 200, 200, 404, 200, 200]
--- response_headers eval
["", "", "", "", "", "Content-Type: text/plain; version=0.0.4; charset=utf-8",
 "Content-Type: application/json"]
--- response_body eval
['1', '{"m":1}', '{"m":1}', '{"d":0}', '{"error":"not_found","key":"zz"}',
 qr/^pred_requests_total\{location="api",source="cache"\} 1
pred_requests_total\{location="api",source="snapshot"\} 1
pred_requests_total\{location="api",source="upstream"\} 1
pred_requests_total\{location="api",source="stale"\} 0
pred_requests_total\{location="api",source="default"\} 1
pred_requests_total\{location="api",source="error"\} 0
pred_requests_total\{location="api",source="shed"\} 0
pred_requests_total\{location="api",source="none"\} 0
pred_requests_total\{location="api",source="batch"\} 0
pred_requests_total\{location="plain",source="cache"\} 0
.*^pred_requests_total\{location="plain",source="none"\} 1
.*^pred_upstream_requests_total 2
.*^pred_upstream_in_flight 0
.*^pred_upstream_errors_total\{kind="timeout"\} 0
pred_upstream_errors_total\{kind="5xx"\} 1
pred_upstream_errors_total\{kind="connect"\} 0
.*^pred_upstream_duration_seconds_bucket\{le="\+Inf"\} 2
pred_upstream_duration_seconds_sum \d+\.\d{3}
pred_upstream_duration_seconds_count 2
.*^pred_cache_entries\{zone="hot"\} 1
.*^pred_snapshot_info\{snapshot="main",version="m1",role="live"\} 1
.*^pred_snapshot_entries\{snapshot="main"\} 2
.*^pred_snapshot_age_seconds\{snapshot="main"\} 1\d
.*^pred_snapshot_freshness_sla_seconds\{snapshot="main"\} 3600
.*^pred_snapshot_stale\{snapshot="main"\} 0
.*^pred_snapshot_swaps_total\{snapshot="main"\} 1
.*^pred_snapshot_refused_total\{snapshot="main"\} 0
.*^pred_snapshot_canary_percent\{snapshot="main"\} 0
.*^pred_snapshot_requests_total\{snapshot="main",role="live"\} 4
pred_snapshot_requests_total\{snapshot="main",role="candidate"\} 0
.*^pred_shadow_total\{snapshot="main",result="same"\} 0
.*^pred_shadow_delta_count\{snapshot="main"\} 0
/ms,
 qr/\A\{"requests":\{"api":\{"cache":1,"snapshot":1,"upstream":1,"stale":0,"default":1,"error":0,"shed":0,"none":0,"batch":0\},"plain":\{"cache":0,"snapshot":0,"upstream":0,"stale":0,"default":0,"error":0,"shed":0,"none":1,"batch":0\}\},"upstream":\{"requests":2,"in_flight":0,"errors":\{"timeout":0,"5xx":1,"connect":0,"invalid":0,"too_big":0\},"duration_ms_sum":\d+\},"refine":\{"requests":0,"deadline_missed":0\},"cascade":\{\},"caches":\{"hot":\{"entries":1,"evictions":0,"expirations":0,"tombstones":0,"admin_full":0,"read_retry":0,"read_locked":0\}\},"snapshots":\{"main":\{"version":"m1","entries":2,"swaps":1,"refused":0,"candidate":null,"requests":\{"live":4,"candidate":0\},"shadow":\{"same":0,"different":0,"only_live":0,"only_candidate":0\}\}\}\}\z/]



=== TEST 2: whole requests by location and source: two snapshot hits, a slow model answer
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_METRICS;
--- config
    location = /predict {
        pred_name api;
        pred_key $arg_id;
        pred_snapshot main;
        pred_upstream /_model timeout=5s;
        pred;
    }
    location /_model { internal; echo_sleep 0.3; echo -n '{"m":1}'; }
    location = /metrics { pred_metrics; }
--- request eval
["GET /predict?id=a", "GET /predict?id=b", "GET /predict?id=slow",
 "GET /metrics"]
--- error_code eval
[200, 200, 200, 200]
--- response_body eval
['1', '2', '{"m":1}',
 qr/^# HELP pred_request_duration_seconds Duration of whole requests, by location and by who answered\.
# TYPE pred_request_duration_seconds histogram
pred_request_duration_seconds_bucket\{location="api",source="cache",le="0\.001"\} 0
(?s:.*)^pred_request_duration_seconds_count\{location="api",source="cache"\} 0
pred_request_duration_seconds_bucket\{location="api",source="snapshot",le="0\.001"\} [0-2]
(?s:.*)^pred_request_duration_seconds_bucket\{location="api",source="snapshot",le="2\.500"\} 2
pred_request_duration_seconds_bucket\{location="api",source="snapshot",le="\+Inf"\} 2
pred_request_duration_seconds_sum\{location="api",source="snapshot"\} \d+\.\d{3}
pred_request_duration_seconds_count\{location="api",source="snapshot"\} 2
pred_request_duration_seconds_bucket\{location="api",source="upstream",le="0\.001"\} 0
(?s:.*)^pred_request_duration_seconds_bucket\{location="api",source="upstream",le="0\.250"\} 0
pred_request_duration_seconds_bucket\{location="api",source="upstream",le="0\.500"\} [01]
(?s:.*)^pred_request_duration_seconds_bucket\{location="api",source="upstream",le="\+Inf"\} 1
pred_request_duration_seconds_sum\{location="api",source="upstream"\} 0*[0-9]\.\d{3}
pred_request_duration_seconds_count\{location="api",source="upstream"\} 1
(?s:.*)^pred_request_duration_seconds_count\{location="api",source="batch"\} 0
# HELP pred_upstream_requests_total /ms]
--- no_error_log
[error]
