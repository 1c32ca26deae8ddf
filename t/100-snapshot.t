# The snapshot tier: hits, misses, staleness, and snapshots swapped, rolled
# back and refused while nginx runs.
use lib 't';
use PredTest;
use Test::Nginx::Socket 'no_plan';

# the perl module wants the nginx.pm of its own nginx version; for an nginx
# built from source (make test-nginx) it is on PERL5LIB, which nginx hides
# from its perl unless told to pass it on
env_to_nginx('PERL5LIB');

my $v1 = <<'_EOJ_';
{"key":"a","value":{"v":1, "score":0.1}}
{"key":"a b","value":[1, 2]}
{"key":"caf\u00e9","value":"\u00e9t\u00e9"}
_EOJ_

my $dir = snap_dir('main');
snap_build($dir, 'v1', $v1, age => 100);
snap_publish($dir, 'v1');

for my $fb (qw(serve fail upstream)) {
    $dir = snap_dir("stale_$fb");
    snap_build($dir, "s1", qq{{"key":"a","value":{"v":"old"}}\n},
               age => 7200,
               args => ['--freshness-sla', '1h', '--fallback-if-stale', $fb]);
    snap_publish($dir, 's1');
}

$dir = snap_dir('nosla');
snap_build($dir, 'n1', qq{{"key":"a","value":1}\n}, age => 7200);
snap_publish($dir, 'n1');

snap_dir('empty');

$dir = snap_dir('garbage');
write_file("$dir/snap-x.mdb", "this is not an LMDB file\n" x 100);
symlink 'snap-x.mdb', "$dir/current";

# swap, rollback: two versions; refuse: one version plus bad files
for my $name (qw(swap rollback refuse preload)) {
    $dir = snap_dir($name);
    snap_build($dir, 'v1', qq{{"key":"a","value":{"v":1}}\n});
    snap_build($dir, 'v2', qq{{"key":"a","value":{"v":2}}\n});
    snap_publish($dir, 'v1');
}
snap_publish($ENV{TEST_NGINX_SNAP_ROLLBACK}, 'v2');

$dir = $ENV{TEST_NGINX_SNAP_REFUSE};
write_file("$dir/snap-bad.mdb", "garbage" x 1000);
snap_build($dir, 'big',
           join('', map { sprintf '{"key":"k%d","value":{"n":%d,"pad":"%s"}}'
                                  . "\n", $_, $_, 'x' x 200 } 1 .. 2000));
{
    open my $in, '<', "$dir/snap-big.mdb" or die;
    binmode $in;
    read $in, my $head, (-s "$dir/snap-big.mdb") / 2;
    write_file("$dir/snap-trunc.mdb", $head);
}
snap_craft("$dir/snap-zero.mdb",
           [format => 'pred-snapshot/1', version => 'zero',
            created_at => time, entries => 0,
            checksum => 'fnv1a64:cbf29ce484222325'], []);
snap_craft("$dir/snap-other.mdb",
           [format => 'other/9', version => 'other', created_at => time,
            entries => 1, checksum => 'x'], [a => 1]);

run_tests();

__DATA__

=== TEST 1: a hit sends the stored bytes with source and version
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_MAIN check=100ms;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot main;
        pred;
    }
--- request
GET /predict?id=a
--- response_headers
Content-Type: application/json
Content-Length: 19
X-Pred-Source: snapshot
X-Pred-Version: v1
!X-Pred-Stale
--- response_body chomp
{"v":1,"score":0.1}
--- error_log
pred: snapshot "main": serving version v1 (3 entries)
--- no_error_log
[error]
[warn]



=== TEST 2: Age is the time since the snapshot was built (100 s before this file started)
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_MAIN;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot main;
        pred;
    }
--- request
GET /predict?id=a
--- response_headers_like
Age: 1[0-9][0-9]
X-Pred-Version: v1



=== TEST 3: a key the snapshot does not have is a 404
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_MAIN;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot main;
        pred;
    }
--- request
GET /predict?id=b
--- error_code: 404
--- response_headers
!X-Pred-Source
--- response_body chomp
{"error":"not_found","key":"b"}
--- no_error_log
[error]



=== TEST 4: keys are %-decoded once before the lookup
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_MAIN;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot main;
        pred;
    }
--- request eval
["GET /predict?id=a%20b", "GET /predict?id=caf%C3%A9",
 "GET /predict?id=%61"]
--- response_body eval
['[1,2]', '"\u00e9t\u00e9"', '{"v":1,"score":0.1}']



=== TEST 5: HEAD gets the headers of a hit and no body
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_MAIN;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot main;
        pred;
    }
--- request
HEAD /predict?id=a
--- response_headers
Content-Length: 19
X-Pred-Source: snapshot
--- response_body chomp



=== TEST 6: a snapshot past its freshness SLA is served marked stale
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_STALE_SERVE;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot main;
        pred;
    }
--- request
GET /predict?id=a
--- response_headers
X-Pred-Stale: 1
X-Pred-Source: snapshot
X-Pred-Version: s1
--- response_body chomp
{"v":"old"}
--- error_log eval
qr/\[warn\] .*pred: snapshot "main" version s1 is stale: 7[0-9]{3} s old, limit 3600 s, fallback_if_stale serve, client: 127\.0\.0\.1, /



=== TEST 7: the staleness warning is logged once per interval, not per request
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_STALE_SERVE;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot main;
        pred;
    }
    location = /errlog {
        alias $TEST_NGINX_SERVER_ROOT/logs/error.log;
    }
--- request eval
["GET /predict?id=a", "GET /predict?id=a", "GET /predict?id=a",
 "GET /errlog"]
--- response_body eval
['{"v":"old"}', '{"v":"old"}', '{"v":"old"}',
 qr/\A(?:(?!is stale).)*is stale(?:(?!is stale).)*\z/s]



=== TEST 8: fallback_if_stale fail answers 503
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_STALE_FAIL;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot main;
        pred;
    }
--- request
GET /predict?id=a
--- error_code: 503
--- response_headers
Content-Type: application/json
X-Pred-Version: s1
!X-Pred-Source
--- response_body chomp
{"error":"stale","key":"a"}
--- error_log
fallback_if_stale fail



=== TEST 9: fallback_if_stale upstream serves marked stale while there is no miss path
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_STALE_UPSTREAM;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot main;
        pred;
    }
--- request
GET /predict?id=a
--- response_headers
X-Pred-Stale: 1
X-Pred-Source: snapshot
--- response_body chomp
{"v":"old"}



=== TEST 10: pred_max_age sets a limit where the snapshot has none
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_NOSLA;
--- config
    pred_key $arg_id;
    pred_snapshot main;

    location = /strict {
        pred_max_age 1h;
        pred;
    }

    location = /lax {
        pred;
    }
--- request eval
["GET /strict?id=a", "GET /lax?id=a"]
--- response_headers eval
["X-Pred-Stale: 1", "!X-Pred-Stale"]
--- response_body eval
['1', '1']



=== TEST 11: pred_max_age 0 turns the snapshot's SLA off
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_STALE_FAIL;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot main;
        pred_max_age 0;
        pred;
    }
--- request
GET /predict?id=a
--- response_headers
!X-Pred-Stale
X-Pred-Source: snapshot
--- response_body chomp
{"v":"old"}
--- no_error_log
[warn]



=== TEST 12: nothing published yet: 503 until there is
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_EMPTY;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot main;
        pred;
    }
--- request
GET /predict?id=a
--- error_code: 503
--- response_headers
Retry-After: 1
--- response_body chomp
{"error":"snapshot_unavailable","key":"a"}
--- error_log eval
qr/\[warn\] .*pred: snapshot "main": nothing to serve: stat\(".*\/empty\/current"\) failed \(2: No such file or directory\)$/



=== TEST 13: a corrupt snapshot at start is refused and not served
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_GARBAGE;
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
qr/\[error\] .*pred: snapshot "main": refused ".*\/garbage\/current" -> "snap-x.mdb": not a readable snapshot: not an LMDB file$/



=== TEST 14: a version published while nginx runs is served within the check interval
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    pred_snapshot_path main $TEST_NGINX_SNAP_SWAP check=100ms;
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
 "GET /run?publish+$ENV{TEST_NGINX_SNAP_SWAP}+v2",
 "GET /sleep",
 "GET /predict?id=a",
 "GET /errlog"]
--- response_headers eval
["X-Pred-Version: v1", "", "", "X-Pred-Version: v2", ""]
--- response_body eval
['{"v":1}', "published v2 (1 entries), previous: v1\n",
 "slept\n", '{"v":2}',
 qr/\[notice\] .*pred: snapshot "main": serving version v2 \(1 entries\), was v1$/m]
--- no_error_log
[error]



=== TEST 15: rollback brings the previous version back
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    pred_snapshot_path main $TEST_NGINX_SNAP_ROLLBACK check=100ms;
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
 "GET /run?rollback+$ENV{TEST_NGINX_SNAP_ROLLBACK}",
 "GET /sleep",
 "GET /predict?id=a",
 "GET /errlog"]
--- response_body eval
['{"v":2}', "rolled back to v1 (1 entries), previous: v2\n",
 "slept\n", '{"v":1}',
 qr/serving version v1 \(1 entries\), was v2$/m]
--- no_error_log
[error]



=== TEST 16: bad files pointed at while running are refused, the old version keeps serving
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    pred_snapshot_path main $TEST_NGINX_SNAP_REFUSE check=100ms;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot main;
        pred;
    }
    location = /run { perl PredCmd::run; }
    location = /sleep { echo_sleep 0.3; echo slept; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
my $d = $ENV{TEST_NGINX_SNAP_REFUSE};
["GET /run?link+$d+snap-bad.mdb", "GET /sleep", "GET /predict?id=a",
 "GET /run?link+$d+snap-trunc.mdb", "GET /sleep", "GET /predict?id=a",
 "GET /run?link+$d+snap-zero.mdb", "GET /sleep", "GET /predict?id=a",
 "GET /run?link+$d+snap-other.mdb", "GET /sleep", "GET /predict?id=a",
 "GET /run?link+$d+snap-missing.mdb", "GET /sleep", "GET /predict?id=a",
 "GET /run?link+$d+snap-v2.mdb", "GET /sleep", "GET /predict?id=a",
 "GET /errlog"]
--- response_body eval
["current -> snap-bad.mdb\n", "slept\n", '{"v":1}',
 "current -> snap-trunc.mdb\n", "slept\n", '{"v":1}',
 "current -> snap-zero.mdb\n", "slept\n", '{"v":1}',
 "current -> snap-other.mdb\n", "slept\n", '{"v":1}',
 "current -> snap-missing.mdb\n", "slept\n", '{"v":1}',
 "current -> snap-v2.mdb\n", "slept\n", '{"v":2}',
 qr/\[error\] [^\n]*refused "[^"\n]*\/current" -> "snap-bad.mdb": not a readable snapshot: not an LMDB file; still serving version v1
.*\[error\] [^\n]*refused "[^"\n]*\/current" -> "snap-trunc.mdb": truncated: \d+ bytes, \d+ expected; still serving version v1
.*\[error\] [^\n]*refused "[^"\n]*\/current" -> "snap-zero.mdb": snapshot has no entries; still serving version v1
.*\[error\] [^\n]*refused "[^"\n]*\/current" -> "snap-other.mdb": metadata "format" is not "pred-snapshot\/1"; still serving version v1
.*\[error\] [^\n]*still serving version v1: stat\("[^"\n]*\/refuse\/current"\) failed \(2: No such file or directory\)
.*\[notice\] [^\n]*serving version v2 \(1 entries\), was v1
/s]



=== TEST 17: a refused file is logged once, not at every check
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_GARBAGE check=50ms;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot main;
        pred;
    }
    location = /sleep { echo_sleep 0.5; echo slept; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["GET /sleep", "GET /predict?id=a", "GET /errlog"]
--- error_code eval
[200, 503, 200]
--- response_body eval
["slept\n", '{"error":"snapshot_unavailable","key":"a"}',
 qr/\A(?:(?!refused).)*refused(?:(?!refused).)*\z/s]



=== TEST 18: preload=on switches once the new file is in the page cache
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    pred_snapshot_path main $TEST_NGINX_SNAP_PRELOAD check=100ms preload=on;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot main;
        pred;
    }
    location = /run { perl PredCmd::run; }
    location = /sleep { echo_sleep 0.5; echo slept; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["GET /predict?id=a",
 "GET /run?publish+$ENV{TEST_NGINX_SNAP_PRELOAD}+v2",
 "GET /sleep",
 "GET /predict?id=a",
 "GET /errlog"]
--- response_body eval
['{"v":1}', "published v2 (1 entries), previous: v1\n",
 "slept\n", '{"v":2}',
 qr/pred: snapshot "main": preloading version v2 \(\d+ bytes\)\n.*serving version v2 \(1 entries\), was v1$/ms]
