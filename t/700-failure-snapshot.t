# Failures of the snapshot files under a running nginx: the live file
# truncated in place (the map faults) or removed, and files that crash LMDB
# itself.  Nothing crashes; the worker stops reading what faulted and takes
# the next published version.
use lib 't';
use PredTest;
use Test::Nginx::Socket 'no_plan';

# the perl module wants the nginx.pm of its own nginx version; for an nginx
# built from source (make test-nginx) it is on PERL5LIB, which nginx hides
# from its perl unless told to pass it on
env_to_nginx('PERL5LIB');

for my $name (qw(truncate unlink overwrite)) {
    my $dir = snap_dir($name);
    snap_build($dir, 'v1', qq{{"key":"a","value":{"v":1}}\n});
    snap_build($dir, 'v2', qq{{"key":"a","value":{"v":2}}\n});
    snap_publish($dir, 'v1');
}

# a file found by fuzzing that makes LMDB divide by zero on open
my $dir = snap_dir('fpe');
system('cp', 'tests/fuzz/regressions/snapshot/sigfpe-zero-page-size',
       "$dir/snap-bad.mdb") == 0 or die;
symlink 'snap-bad.mdb', "$dir/current";

# one that passes the open checks and trips LMDB's assertion on lookup
$dir = snap_dir('assert');
system('cp', 'tests/fuzz/regressions/snapshot/lmdb-assert-root',
       "$dir/snap-bad.mdb") == 0 or die;
symlink 'snap-bad.mdb', "$dir/current";

run_tests();

__DATA__

=== TEST 1: the live file truncated in place: the fault is caught (or the check sees the file changed first), the tier steps aside, the next version is served
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    pred_snapshot_path main $TEST_NGINX_SNAP_TRUNCATE check=100ms;
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
 "GET /run?truncate+$ENV{TEST_NGINX_SNAP_TRUNCATE}/snap-v1.mdb+8192",
 "GET /predict?id=a",
 "GET /sleep",
 "GET /predict?id=a",
 "GET /run?link+$ENV{TEST_NGINX_SNAP_TRUNCATE}+snap-v2.mdb",
 "GET /sleep",
 "GET /predict?id=a",
 "GET /errlog"]
--- error_code eval
[200, 200, 503, 200, 503, 200, 200, 200, 200]
--- response_headers eval
["X-Pred-Version: v1", "", "Retry-After: 1", "", "Retry-After: 1", "", "",
 "X-Pred-Version: v2", ""]
--- response_body eval
['{"v":1}',
 "truncated $ENV{TEST_NGINX_SNAP_TRUNCATE}/snap-v1.mdb to 8192 bytes\n",
 '{"error":"snapshot_unavailable","key":"a"}', "slept\n",
 '{"error":"snapshot_unavailable","key":"a"}',
 "current -> snap-v2.mdb\n", "slept\n", '{"v":2}',
 qr/\[crit\] .*pred: snapshot "main" version v1: (?:key "a": SIGBUS reading the file: it is truncated or its pages are corrupt; no longer served|the file was rewritten in place \(never write a published file\); no longer served, opening it again)\n(?:(?!\[crit\]).)*serving version v2 \(1 entries\)\n/s]
--- no_error_log
[alert]
[emerg]



=== TEST 2: the live file removed: its pages stay mapped and it keeps serving, with one log line
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    pred_snapshot_path main $TEST_NGINX_SNAP_UNLINK check=100ms;
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
["GET /run?unlink+$ENV{TEST_NGINX_SNAP_UNLINK}/snap-v1.mdb",
 "GET /sleep",
 "GET /predict?id=a",
 "GET /predict?id=b",
 "GET /errlog"]
--- error_code eval
[200, 200, 200, 404, 200]
--- response_headers eval
["", "", "X-Pred-Version: v1", "", ""]
--- response_body eval
["removed $ENV{TEST_NGINX_SNAP_UNLINK}/snap-v1.mdb\n", "slept\n", '{"v":1}',
 '{"error":"not_found","key":"b"}',
 qr/\A(?:(?!still serving).)*\[error\] [^\n]*pred: snapshot "main": still serving version v1: stat\("[^"]*\/unlink\/current"\) failed \(2: No such file or directory\)\n(?:(?!still serving).)*\z/s]
--- no_error_log
[crit]
[alert]



=== TEST 3: a file that makes LMDB divide by zero is refused at start, not a crash
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_FPE;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot main;
        pred;
    }
--- request
GET /predict?id=a
--- error_code: 503
--- response_body chomp
{"error":"snapshot_unavailable","key":"a"}
--- error_log eval
qr/\[error\] .*pred: snapshot "main": refused ".*\/fpe\/current" -> "snap-bad.mdb": SIGFPE reading the file: it is truncated or its pages are corrupt$/



=== TEST 4: a file whose pages trip LMDB's own assertion on a lookup: the lookup fails over, the worker lives
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_ASSERT;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot main;
        pred;
    }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["GET /predict?id=a", "GET /predict?id=a", "GET /errlog"]
--- error_code eval
[503, 503, 200]
--- response_body eval
['{"error":"snapshot_unavailable","key":"a"}',
 '{"error":"snapshot_unavailable","key":"a"}',
 qr/\A(?:(?!\[crit\]).)*\[crit\] [^\n]*pred: snapshot "main" version \S+: key "a": LMDB gave up reading the file \(mdb\.c:\d+: assertion 'root > 1' failed in mdb_page_search\(\)\): its pages are corrupt; no longer served\n(?:(?!\[crit\]).)*\z/s]



=== TEST 5: the live file rewritten in place (cp over it): never read through the old map; checked and served as a new file
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    pred_snapshot_path main $TEST_NGINX_SNAP_OVERWRITE check=100ms;
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
 "GET /run?overwrite+$ENV{TEST_NGINX_SNAP_OVERWRITE}/snap-v2.mdb+$ENV{TEST_NGINX_SNAP_OVERWRITE}/snap-v1.mdb",
 "GET /sleep",
 "GET /predict?id=a",
 "GET /errlog"]
--- error_code eval
[200, 200, 200, 200, 200]
--- response_headers eval
["X-Pred-Version: v1", "", "", "X-Pred-Version: v2", ""]
--- response_body eval
['{"v":1}',
 "overwrote $ENV{TEST_NGINX_SNAP_OVERWRITE}/snap-v1.mdb with $ENV{TEST_NGINX_SNAP_OVERWRITE}/snap-v2.mdb\n",
 "slept\n", '{"v":2}',
 qr/\[crit\] .*pred: snapshot "main" version v1: the file was rewritten in place \(never write a published file\); no longer served, opening it again\n(?:(?!\[crit\]).)*serving version v2 \(1 entries\)\n/s]
--- no_error_log
[alert]
[emerg]

