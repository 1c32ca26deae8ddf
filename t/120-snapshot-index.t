# pred_snapshot_path index=on: lookups through the in-memory hash index
# answer exactly as LMDB does (hits, misses, values on overflow pages), and
# a new version is indexed again.
use lib 't';
use PredTest;
use Test::Nginx::Socket 'no_plan';

# the perl module wants the nginx.pm of its own nginx version; for an nginx
# built from source (make test-nginx) it is on PERL5LIB, which nginx hides
# from its perl unless told to pass it on
env_to_nginx('PERL5LIB');

# 3000 keys: several steps of linear probing collide in a table of 4096
my $many = join '', map { sprintf qq{{"key":"u%d","value":{"n":%d}}\n}, $_, $_ }
                        1 .. 3000;

my $dir = snap_dir('idx');
snap_build($dir, 'v1', $many);
snap_publish($dir, 'v1');

# values of 5000 bytes live on overflow pages, outside the index
$dir = snap_dir('idxbig');
snap_build($dir, 'b1', qq{{"key":"small","value":{"s":1}}\n}
                       . '{"key":"big","value":"' . ('x' x 5000) . "\"}\n");
snap_publish($dir, 'b1');

$dir = snap_dir('idxswap');
snap_build($dir, 'v1', qq{{"key":"a","value":{"v":1}}\n});
snap_build($dir, 'v2', qq{{"key":"a","value":{"v":2}}\n}
                       . qq{{"key":"b","value":{"v":2}}\n});
snap_publish($dir, 'v1');

$dir = snap_dir('idxtrunc');
snap_build($dir, 'v1', qq{{"key":"a","value":{"v":1}}\n});
snap_build($dir, 'v2', qq{{"key":"a","value":{"v":2}}\n});
snap_publish($dir, 'v1');

run_tests();

__DATA__

=== TEST 1: every key is found through the index, with its own value
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_snapshot_path idx $TEST_NGINX_SNAP_IDX index=on;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot idx;
        pred;
    }
    location = /all {
        echo_sleep 0.2;
        echo_location /predict "id=u1";
        echo_location /predict "id=u2";
        echo_location /predict "id=u1500";
        echo_location /predict "id=u2999";
        echo_location /predict "id=u3000";
    }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["GET /all", "GET /errlog"]
--- response_body eval
['{"n":1}{"n":2}{"n":1500}{"n":2999}{"n":3000}',
 qr/pred: snapshot "idx" version v1: indexed 3000 keys in \d+ ms, 0 MB$/m]
--- no_error_log
[error]
[warn]



=== TEST 2: a key the index does not have is a 404, as without it
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_snapshot_path idx $TEST_NGINX_SNAP_IDX index=on;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot idx;
        pred;
    }
    location = /sleep { echo_sleep 0.2; echo slept; }
--- request eval
["GET /sleep", "GET /predict?id=u3001", "GET /predict?id=u0",
 "GET /predict?id=u1"]
--- error_code eval
[200, 404, 404, 200]
--- response_body eval
["slept\n", '{"error":"not_found","key":"u3001"}',
 '{"error":"not_found","key":"u0"}', '{"n":1}']
--- response_headers eval
["", "!X-Pred-Source", "!X-Pred-Source", "X-Pred-Source: snapshot"]



=== TEST 3: a value on overflow pages is found through LMDB
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_snapshot_path big $TEST_NGINX_SNAP_IDXBIG index=on;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot big;
        pred;
    }
    location = /sleep { echo_sleep 0.2; echo slept; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["GET /sleep", "GET /predict?id=big", "GET /predict?id=small",
 "GET /predict?id=none", "GET /errlog"]
--- error_code eval
[200, 200, 200, 404, 200]
--- response_body eval
["slept\n", '"' . ('x' x 5000) . '"', '{"s":1}',
 '{"error":"not_found","key":"none"}',
 qr/indexed 2 keys in \d+ ms, 0 MB \(values on overflow pages are found through LMDB\)$/m]



=== TEST 4: a new version is served at once and indexed in its turn
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    pred_snapshot_path main $TEST_NGINX_SNAP_IDXSWAP check=100ms index=on;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot main;
        pred;
    }
    location = /run { perl PredCmd::run; }
    location = /sleep { echo_sleep 0.4; echo slept; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["GET /predict?id=a",
 "GET /predict?id=b",
 "GET /run?publish+$ENV{TEST_NGINX_SNAP_IDXSWAP}+v2",
 "GET /sleep",
 "GET /predict?id=a",
 "GET /predict?id=b",
 "GET /errlog"]
--- error_code eval
[200, 404, 200, 200, 200, 200, 200]
--- response_body eval
['{"v":1}', '{"error":"not_found","key":"b"}',
 "published v2 (2 entries), previous: v1\n", "slept\n", '{"v":2}', '{"v":2}',
 qr/v1: indexed 1 keys in \d+ ms, 0 MB\n.*serving version v2 \(2 entries\), was v1\n.*v2: indexed 2 keys in \d+ ms, 0 MB\n/s]



=== TEST 5: the live file truncated under an index: the lookup's fault is caught as without one, the next version is served and indexed
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    pred_snapshot_path main $TEST_NGINX_SNAP_IDXTRUNC check=100ms index=on;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot main;
        pred;
    }
    location = /run { perl PredCmd::run; }
    location = /sleep { echo_sleep 0.4; echo slept; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["GET /sleep",
 "GET /predict?id=a",
 "GET /run?truncate+$ENV{TEST_NGINX_SNAP_IDXTRUNC}/snap-v1.mdb+8192",
 "GET /predict?id=a",
 "GET /sleep",
 "GET /predict?id=a",
 "GET /run?link+$ENV{TEST_NGINX_SNAP_IDXTRUNC}+snap-v2.mdb",
 "GET /sleep",
 "GET /predict?id=a",
 "GET /errlog"]
--- error_code eval
[200, 200, 200, 503, 200, 503, 200, 200, 200, 200]
--- response_body eval
["slept\n", '{"v":1}',
 "truncated $ENV{TEST_NGINX_SNAP_IDXTRUNC}/snap-v1.mdb to 8192 bytes\n",
 '{"error":"snapshot_unavailable","key":"a"}', "slept\n",
 '{"error":"snapshot_unavailable","key":"a"}',
 "current -> snap-v2.mdb\n", "slept\n", '{"v":2}',
 qr/version v1: indexed 1 keys in \d+ ms, 0 MB\n.*\[crit\] .*pred: snapshot "main" version v1: (?:key "a": SIGBUS reading the file: it is truncated or its pages are corrupt; no longer served|the file was rewritten in place \(never write a published file\); no longer served, opening it again)\n(?:(?!\[crit\]).)*serving version v2 \(1 entries\)\n.*version v2: indexed 1 keys/s]
--- no_error_log
[alert]
[emerg]
