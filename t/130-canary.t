# Canary releases: a candidate version beside the live one for a share of
# keys chosen by their hash, forced per request, compared by pred_shadow,
# promoted or aborted; a bad candidate never touches the live version.
#
# Buckets of the keys used here (pred_canary.h; pinned in
# tests/test_pred_canary.c): e 227609, f 228119, g 335568, j 342506,
# d 535118, b 556580, h 667430, i 804360, c 889556, a 944905.  At 30% e and
# f are the candidate's; at 50% g and j join them.
use lib 't';
use PredTest;
use Test::Nginx::Socket 'no_plan';

# the perl module wants the nginx.pm of its own nginx version; for an nginx
# built from source (make test-nginx) it is on PERL5LIB, which nginx hides
# from its perl unless told to pass it on
env_to_nginx('PERL5LIB');

my $kv = sub {
    my ($v) = @_;
    join '', map { qq{{"key":"$_","value":{"v":$v}}\n} } 'a' .. 'j';
};

my $dir = snap_dir('canary');
snap_build($dir, 'v1', $kv->(1));
snap_build($dir, 'v2', $kv->(2));
snap_publish($dir, 'v1');

$dir = snap_dir('canary_abort');
snap_build($dir, 'v1', $kv->(1));
snap_build($dir, 'v2', $kv->(2));
snap_build($dir, 'v3', $kv->(3));
snap_publish($dir, 'v1');

# a pair of versions whose comparison is known: a the same, b and c
# different (b's score by 0.25, c's by nothing), d only live, e only in the
# candidate, z in neither; the field's difference is observed for a, b, c
$dir = snap_dir('shadow');
snap_build($dir, 'old', join '', map { "$_\n" }
    '{"key":"a","value":{"s":0.5}}',
    '{"key":"b","value":{"s":0.5}}',
    '{"key":"c","value":{"s":0.2}}',
    '{"key":"d","value":{"s":1}}');
snap_build($dir, 'new', join '', map { "$_\n" }
    '{"key":"a","value":{"s":0.5}}',
    '{"key":"b","value":{"s":0.75}}',
    '{"key":"c","value":{"s":0.2,"x":1}}',
    '{"key":"e","value":{"s":0}}');
snap_publish($dir, 'old');

# a candidate at 100% whose file is truncated under the map
$dir = snap_dir('canary_fault');
snap_build($dir, 'v1', $kv->(1));
snap_build($dir, 'v2', $kv->(2));
snap_publish($dir, 'v1');
PredTest::must_run('canary', $dir, 'v2', '100');

# a live version and files that must never serve
$dir = snap_dir('canary_bad');
snap_build($dir, 'v1', $kv->(1));
snap_craft("$dir/snap-bad.mdb",
           ['format', 'pred-snapshot/0', 'version', 'bad',
            'created_at', '1', 'entries', '1', 'checksum', 'x'],
           ['a', '{"v":"bad"}']);
snap_publish($dir, 'v1');
# a copy under another name would pass for another version
{
    use File::Copy ();
    File::Copy::copy("$dir/snap-v1.mdb", "$dir/snap-copy.mdb") or die $!;
}

run_tests();

__DATA__

=== TEST 1: keys go to the candidate by their hash, stay there as the share grows, are forced by the override, and a promote makes the candidate live
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    pred_snapshot_path main $TEST_NGINX_SNAP_CANARY check=100ms;
    log_format canary '$request_uri $status $pred_version $pred_snapshot_role';
--- config
    pred_snapshot main;
    location = /p {
        pred_key $arg_id;
        pred_snapshot_override $arg_version;
        access_log $TEST_NGINX_SERVER_ROOT/logs/canary.log canary;
        pred;
    }
    location = /b {
        pred_key $arg_keys;
        pred_batch on;
        pred;
    }
    location = /run { perl PredCmd::run; }
    location = /sleep { echo_sleep 0.35; echo slept; }
    location = /canarylog { alias $TEST_NGINX_SERVER_ROOT/logs/canary.log; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["GET /p?id=e",
 "GET /run?canary+$ENV{TEST_NGINX_SNAP_CANARY}+v2+30",
 "GET /sleep",
 "GET /p?id=e", "GET /p?id=g",
 "GET /b?keys=e,f,g,j,a",
 "GET /run?canary+$ENV{TEST_NGINX_SNAP_CANARY}+50",
 "GET /sleep",
 "GET /b?keys=e,f,g,j,a",
 "GET /p?id=a&version=candidate", "GET /p?id=e&version=live",
 "GET /p?id=e&version=v1", "GET /p?id=a&version=v2",
 "GET /p?id=e&version=nonsense",
 "GET /run?canary+$ENV{TEST_NGINX_SNAP_CANARY}+0",
 "GET /sleep",
 "GET /p?id=e", "GET /p?id=e&version=candidate",
 "GET /run?promote+$ENV{TEST_NGINX_SNAP_CANARY}",
 "GET /sleep",
 "GET /p?id=a", "GET /p?id=a&version=candidate",
 "GET /canarylog", "GET /errlog"]
--- response_body eval
['{"v":1}',
 "candidate v2 (10 entries) at 30% of keys, live: v1\n",
 "slept\n",
 '{"v":2}', '{"v":1}',
 '{"results":{"e":{"v":2},"f":{"v":2},"g":{"v":1},"j":{"v":1},"a":{"v":1}},"sources":{"e":"snapshot","f":"snapshot","g":"snapshot","j":"snapshot","a":"snapshot"}}',
 "candidate v2 (10 entries) at 50% of keys, live: v1\n",
 "slept\n",
 '{"results":{"e":{"v":2},"f":{"v":2},"g":{"v":2},"j":{"v":2},"a":{"v":1}},"sources":{"e":"snapshot","f":"snapshot","g":"snapshot","j":"snapshot","a":"snapshot"}}',
 '{"v":2}', '{"v":1}', '{"v":1}', '{"v":2}', '{"v":2}',
 "candidate v2 (10 entries) at 0% of keys, live: v1\n",
 "slept\n",
 '{"v":1}', '{"v":2}',
 "promoted v2 (10 entries), previous: v1\n",
 "slept\n",
 '{"v":2}', '{"v":2}',
 "/p?id=e 200 v1 live
/p?id=e 200 v2 candidate
/p?id=g 200 v1 live
/p?id=a&version=candidate 200 v2 candidate
/p?id=e&version=live 200 v1 live
/p?id=e&version=v1 200 v1 live
/p?id=a&version=v2 200 v2 candidate
/p?id=e&version=nonsense 200 v2 candidate
/p?id=e 200 v1 live
/p?id=e&version=candidate 200 v2 candidate
/p?id=a 200 v2 live
/p?id=a&version=candidate 200 v2 live
",
 qr/\[notice\] \d+#\d+: pred: snapshot "main": candidate version v2 \(10 entries\) at 30% of keys, beside version v1\n.*\[notice\] \d+#\d+: pred: snapshot "main": candidate version v2 at 50% of keys\n.*\[notice\] \d+#\d+: pred: snapshot "main": candidate version v2 at 0% of keys\n.*\[notice\] \d+#\d+: pred: snapshot "main": serving version v2 \(10 entries\), was v1\n/s]
--- no_error_log
[error]
[crit]



=== TEST 2: abort drops the candidate; publish and rollback drop it too (not a publish of what is live); list and info show it
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    pred_snapshot_path main $TEST_NGINX_SNAP_CANARY_ABORT check=100ms;
--- config
    location = /p { pred_key $arg_id; pred_snapshot main; pred; }
    location = /run { perl PredCmd::run; }
    location = /sleep { echo_sleep 0.35; echo slept; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["GET /run?canary+$ENV{TEST_NGINX_SNAP_CANARY_ABORT}+v2+100",
 "GET /sleep", "GET /p?id=a",
 "GET /run?info+$ENV{TEST_NGINX_SNAP_CANARY_ABORT}",
 "GET /run?abort+$ENV{TEST_NGINX_SNAP_CANARY_ABORT}",
 "GET /sleep", "GET /p?id=a",
 "GET /run?abort+$ENV{TEST_NGINX_SNAP_CANARY_ABORT}",
 "GET /run?canary+$ENV{TEST_NGINX_SNAP_CANARY_ABORT}+v2+100",
 "GET /run?publish+$ENV{TEST_NGINX_SNAP_CANARY_ABORT}+v3",
 "GET /sleep", "GET /p?id=a",
 "GET /run?canary+$ENV{TEST_NGINX_SNAP_CANARY_ABORT}+v2+12.5",
 "GET /run?list+$ENV{TEST_NGINX_SNAP_CANARY_ABORT}",
 "GET /run?publish+$ENV{TEST_NGINX_SNAP_CANARY_ABORT}+v3",
 "GET /run?info+$ENV{TEST_NGINX_SNAP_CANARY_ABORT}",
 "GET /run?rollback+$ENV{TEST_NGINX_SNAP_CANARY_ABORT}",
 "GET /sleep", "GET /p?id=a",
 "GET /run?canary+$ENV{TEST_NGINX_SNAP_CANARY_ABORT}+5",
 "GET /run?canary+$ENV{TEST_NGINX_SNAP_CANARY_ABORT}+v2+20",
 "GET /run?publish+$ENV{TEST_NGINX_SNAP_CANARY_ABORT}+v2",
 "GET /sleep", "GET /p?id=a",
 "GET /errlog"]
--- response_body eval
["candidate v2 (10 entries) at 100% of keys, live: v1\n",
 "slept\n", '{"v":2}',
 qr/\Afile: \S+\/current\n.*^version: v1\n.*^candidate: v2\ncandidate_percent: 100\n\z/ms,
 "aborted v2\n",
 "slept\n", '{"v":1}',
 "no candidate\n",
 "candidate v2 (10 entries) at 100% of keys, live: v1\n",
 "published v3 (10 entries), previous: v1\ndropped candidate v2\n",
 "slept\n", '{"v":3}',
 "candidate v2 (10 entries) at 12.5% of keys, live: v3\n",
 qr/^  v1 .* previous\n[* ] v2 .* candidate 12\.5%\n\* v3 .* live\n/m,
 "v3 is already live\n",
 qr/^candidate: v2\ncandidate_percent: 12\.5\n\z/m,
 "rolled back to v1 (10 entries), previous: v3\ndropped candidate v2\n",
 "slept\n", '{"v":1}',
 "pred-snapshot: $ENV{TEST_NGINX_SNAP_CANARY_ABORT}: no candidate: use \"canary DIR VERSION PERCENT\"\n",
 "candidate v2 (10 entries) at 20% of keys, live: v1\n",
 "published v2 (10 entries), previous: v1\n",
 "slept\n", '{"v":2}',
 qr/pred: snapshot "main": candidate version v2 dropped\n/]
--- no_error_log
[error]
[crit]



=== TEST 3: pred_shadow (inherited from http) compares each key the live version is asked for with the candidate's value, and sends the live one
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    pred_snapshot_path main $TEST_NGINX_SNAP_SHADOW check=100ms;
    # at http level: inherited by the locations with a snapshot
    pred_shadow rate=100 field=s;
--- config
    location = /p {
        pred_key $arg_id;
        pred_snapshot main;
        pred;
    }
    location = /run { perl PredCmd::run; }
    location = /sleep { echo_sleep 0.35; echo slept; }
    location = /metrics { pred_metrics; }
--- request eval
["GET /run?canary+$ENV{TEST_NGINX_SNAP_SHADOW}+new+0",
 "GET /sleep",
 "GET /p?id=a", "GET /p?id=b", "GET /p?id=c", "GET /p?id=d",
 "GET /p?id=e", "GET /p?id=z",
 "GET /metrics"]
--- error_code eval
[200, 200, 200, 200, 200, 200, 404, 404, 200]
--- response_body eval
["candidate new (4 entries) at 0% of keys, live: old\n",
 "slept\n",
 '{"s":0.5}', '{"s":0.5}', '{"s":0.2}', '{"s":1}',
 '{"error":"not_found","key":"e"}', '{"error":"not_found","key":"z"}',
 qr/^pred_snapshot_info\{snapshot="main",version="old",role="live"\} 1
pred_snapshot_info\{snapshot="main",version="new",role="candidate"\} 1
.*^pred_snapshot_canary_percent\{snapshot="main"\} 0
.*^pred_snapshot_requests_total\{snapshot="main",role="live"\} 6
pred_snapshot_requests_total\{snapshot="main",role="candidate"\} 0
.*^pred_shadow_total\{snapshot="main",result="same"\} 1
pred_shadow_total\{snapshot="main",result="different"\} 2
pred_shadow_total\{snapshot="main",result="only_live"\} 1
pred_shadow_total\{snapshot="main",result="only_candidate"\} 1
.*^pred_shadow_delta_bucket\{snapshot="main",le="0.001"\} 2
pred_shadow_delta_bucket\{snapshot="main",le="0.01"\} 2
pred_shadow_delta_bucket\{snapshot="main",le="0.05"\} 2
pred_shadow_delta_bucket\{snapshot="main",le="0.1"\} 2
pred_shadow_delta_bucket\{snapshot="main",le="0.25"\} 3
pred_shadow_delta_bucket\{snapshot="main",le="0.5"\} 3
pred_shadow_delta_bucket\{snapshot="main",le="1"\} 3
pred_shadow_delta_bucket\{snapshot="main",le="10"\} 3
pred_shadow_delta_bucket\{snapshot="main",le="100"\} 3
pred_shadow_delta_bucket\{snapshot="main",le="\+Inf"\} 3
pred_shadow_delta_sum\{snapshot="main"\} 0.250000
pred_shadow_delta_count\{snapshot="main"\} 3
/ms]
--- no_error_log
[error]
[crit]



=== TEST 4: a candidate that fails the checks is refused by the loader and by nginx, each problem logged once, and the live version serves every key; abort removes a bad pointer
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    pred_snapshot_path main $TEST_NGINX_SNAP_CANARY_BAD check=100ms;
--- config
    location = /p {
        pred_key $arg_id;
        pred_snapshot main;
        pred_snapshot_override $arg_version;
        pred;
    }
    location = /run { perl PredCmd::run; }
    location = /sleep { echo_sleep 0.35; echo slept; }
    location = /metrics { pred_metrics; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["GET /run?canary+$ENV{TEST_NGINX_SNAP_CANARY_BAD}+bad+100",
 "GET /run?canary+$ENV{TEST_NGINX_SNAP_CANARY_BAD}+copy+10",
 "GET /run?pointer+$ENV{TEST_NGINX_SNAP_CANARY_BAD}+candidate+snap-bad.mdb%40100",
 "GET /sleep",
 "GET /p?id=a", "GET /p?id=a&version=candidate",
 "GET /run?pointer+$ENV{TEST_NGINX_SNAP_CANARY_BAD}+candidate+..%2Fsnap-v1.mdb%40100",
 "GET /sleep",
 "GET /p?id=a&version=candidate",
 "GET /run?pointer+$ENV{TEST_NGINX_SNAP_CANARY_BAD}+candidate+snap-gone.mdb%4050",
 "GET /sleep",
 "GET /p?id=a&version=candidate",
 "GET /run?list+$ENV{TEST_NGINX_SNAP_CANARY_BAD}",
 "GET /run?info+$ENV{TEST_NGINX_SNAP_CANARY_BAD}",
 "GET /run?write+$ENV{TEST_NGINX_SNAP_CANARY_BAD}%2Fcandidate+snap-v1.mdb%4050",
 "GET /sleep",
 "GET /p?id=a&version=candidate",
 "GET /run?canary+$ENV{TEST_NGINX_SNAP_CANARY_BAD}+5",
 "GET /run?list+$ENV{TEST_NGINX_SNAP_CANARY_BAD}",
 "GET /run?abort+$ENV{TEST_NGINX_SNAP_CANARY_BAD}",
 "GET /run?abort+$ENV{TEST_NGINX_SNAP_CANARY_BAD}",
 "GET /metrics", "GET /errlog"]
--- response_body eval
[qr/\Apred-snapshot: \S+\/snap-bad\.mdb: invalid snapshot: .*\npred-snapshot: \S+\/snap-bad\.mdb: refused, the live version and the candidate are unchanged\n\z/,
 "pred-snapshot: $ENV{TEST_NGINX_SNAP_CANARY_BAD}/snap-copy.mdb: refused: the file says it is version \"v1\", not \"copy\" as its name says\n",
 "candidate -> snap-bad.mdb\@100\n",
 "slept\n",
 '{"v":1}', '{"v":1}',
 "candidate -> ../snap-v1.mdb\@100\n",
 "slept\n",
 '{"v":1}',
 "candidate -> snap-gone.mdb\@50\n",
 "slept\n",
 '{"v":1}',
 qr/^  gone +- +- +-  candidate 50%, missing: no snap-gone\.mdb\n/m,
 qr/^candidate: gone \(its file is missing\)\ncandidate_percent: 50\n\z/m,
 "wrote $ENV{TEST_NGINX_SNAP_CANARY_BAD}/candidate\n",
 "slept\n",
 '{"v":1}',
 "pred-snapshot: $ENV{TEST_NGINX_SNAP_CANARY_BAD}/candidate: not a valid candidate pointer: \"abort DIR\" removes it\n",
 qr/^  \S+\/candidate is not a valid candidate pointer: "abort DIR" removes it\n\z/m,
 "aborted $ENV{TEST_NGINX_SNAP_CANARY_BAD}/candidate (not a candidate pointer)\n",
 "no candidate\n",
 qr/^pred_snapshot_info\{snapshot="main",version="v1",role="live"\} 1\n# HELP.*^pred_snapshot_refused_total\{snapshot="main"\} 1\n.*^pred_snapshot_canary_percent\{snapshot="main"\} 0\n/ms,
 qr/\[error\] \d+#\d+: pred: snapshot "main": refused candidate "\S+\/snap-bad\.mdb": [^\n]+; serving version v1 alone\n.*\[error\] \d+#\d+: pred: snapshot "main": "\S+\/candidate" is not a candidate pointer \("snap-VERSION\.mdb\@PERCENT"\): "\.\.\/snap-v1\.mdb\@100"; serving the live version alone\n.*\[error\] \d+#\d+: pred: snapshot "main": candidate "\S+\/snap-gone\.mdb": stat\(\) failed; serving the live version alone \(2: No such file or directory\)\n.*\[error\] \d+#\d+: pred: snapshot "main": "\S+\/candidate" cannot be read as a candidate pointer: readlink\(\) failed; serving the live version alone \(22: Invalid argument\)\n(?!.*cannot be read)/s]
--- no_error_log
[crit]
[alert]



=== TEST 5: a candidate whose file faults under a lookup is dropped, and that lookup is answered by the live version
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    pred_snapshot_path main $TEST_NGINX_SNAP_CANARY_FAULT check=1h;
--- config
    location = /p { pred_key $arg_id; pred_snapshot main; pred; }
    location = /run { perl PredCmd::run; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["GET /p?id=a",
 "GET /run?truncate+$ENV{TEST_NGINX_SNAP_CANARY_FAULT}%2Fsnap-v2.mdb+4096",
 "GET /p?id=a", "GET /p?id=a", "GET /errlog"]
--- error_code eval
[200, 200, 200, 200, 200]
--- response_body eval
['{"v":2}',
 "truncated $ENV{TEST_NGINX_SNAP_CANARY_FAULT}/snap-v2.mdb to 4096 bytes\n",
 '{"v":1}', '{"v":1}',
 qr/\[crit\] \d+#\d+: pred: snapshot "main" candidate version v2: key "a": [^\n]+; no longer served\n(?!.*\[crit\])/s]
