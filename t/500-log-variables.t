# The prediction variables in an access log.
use lib 't';
use PredTest;
use Test::Nginx::Socket 'no_plan';

my $dir = snap_dir('logvars');
snap_build($dir, 'lv1', qq{{"key":"a","value":1}\n}, age => 30,
           args => ['--freshness-sla', '10s']);
snap_publish($dir, 'lv1');

run_tests();

__DATA__

=== TEST 1: every answer logs where it came from
--- http_config
    pred_cache_zone zone=hot:1m;
    pred_snapshot_path main $TEST_NGINX_SNAP_LOGVARS;
    log_format pred 'key=$pred_key source=$pred_source version=$pred_version age=$pred_age stale=$pred_stale up=$pred_upstream_time status=$status';
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location /predict/ { return 200 '{"m":1}'; }
    }
--- config
    location = /predict {
        access_log $TEST_NGINX_SERVER_ROOT/logs/pred.log pred;
        pred_key $arg_id;
        pred_cache hot;
        pred_snapshot main;
        pred_upstream /_model;
        pred;
    }
    location /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict/$pred_key_escaped;
    }
    location = /predlog { alias $TEST_NGINX_SERVER_ROOT/logs/pred.log; }
--- request eval
["GET /predict?id=a", "GET /predict?id=m", "GET /predict?id=m",
 "GET /predict?id=", "GET /predlog"]
--- error_code eval
[200, 200, 200, 400, 200]
--- response_body eval
['1', '{"m":1}', '{"m":1}', '{"error":"bad_key","reason":"key is empty"}',
 qr/\Akey=a source=snapshot version=lv1 age=(?:3\d) stale=1 up=- status=200
key=m source=upstream version=- age=0 stale=- up=0\.\d{3} status=200
key=m source=cache version=- age=\d+ stale=- up=- status=200
key=- source=- version=- age=- stale=- up=- status=400
\z/]
