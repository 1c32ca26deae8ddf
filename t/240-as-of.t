# Admin writes across swaps: an override or tombstone written before the
# time a new live version's data is as of (pred-snapshot build --as-of)
# gives way to that version; one written after survives the swap.
use lib 't';
use PredTest;
use Test::Nginx::Socket 'no_plan';

# the perl module wants the nginx.pm of its own nginx version; for an nginx
# built from source (make test-nginx) it is on PERL5LIB, which nginx hides
# from its perl unless told to pass it on
env_to_nginx('PERL5LIB');

my $dir = snap_dir('asof');
my $kv = sub {
    my ($v) = @_;
    join '', map { qq{{"key":"$_","value":{"v":"$v"}}\n} } qw(a b t u);
};
snap_build($dir, 'v1', $kv->('v1'), age => 7200);
# a version whose data is older than anything written in the test
snap_build($dir, 'old', $kv->('old'),
           args => ['--as-of', time - 3600]);
snap_publish($dir, 'v1');
write_file("$dir/v3.jsonl", $kv->('v3'));

run_tests();

__DATA__

=== TEST 1: a swap to a version as of before the admin writes keeps them; one as of after them supersedes them (a merge patch then starts from its value, not from the superseded tombstone), and writes after it survive
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    pred_cache_zone zone=hot:1m ttl=1h;
    pred_snapshot_path main $TEST_NGINX_SNAP_ASOF check=100ms;
--- config
    pred_cache hot;
    pred_snapshot main;
    location = /p { pred_key $arg_id; pred; }
    location /admin/ { pred_admin; }
    location = /run { perl PredCmd::run; }
    location = /sleep { echo_sleep 1.1; echo slept; }
--- request eval
["PUT /admin/a\n{\"o\":\"a\"}", "DELETE /admin/t",
 "GET /p?id=a", "GET /p?id=t",
 "GET /run?publish+$ENV{TEST_NGINX_SNAP_ASOF}+old",
 "GET /sleep",
 "GET /p?id=a", "GET /p?id=t", "GET /p?id=b",
 "GET /run?build+$ENV{TEST_NGINX_SNAP_ASOF}+--quiet+--version+v3+--input+$ENV{TEST_NGINX_SNAP_ASOF}%2Fv3.jsonl+--as-of+now",
 "PUT /admin/b\n{\"o\":\"b\"}", "DELETE /admin/u",
 "GET /run?publish+$ENV{TEST_NGINX_SNAP_ASOF}+v3",
 "GET /sleep",
 "GET /p?id=a", "GET /p?id=t", "GET /p?id=b", "GET /p?id=u",
 "PATCH /admin/t\n{\"m\":1}", "GET /p?id=t"]
--- error_code eval
[200, 200, 200, 404, 200, 200, 200, 404, 200, 200, 200, 200, 200, 200,
 200, 200, 200, 404, 200, 200]
--- response_body eval
['{"stored":"a","ttl":3600}', '{"invalidated":"t","ttl":3600}',
 '{"o":"a"}', '{"error":"not_found","key":"t"}',
 "published old (4 entries), previous: v1\n", "slept\n",
 '{"o":"a"}', '{"error":"not_found","key":"t"}', '{"v":"old"}',
 qr/\A(?:built [^\n]*\n)?\z/,
 '{"stored":"b","ttl":3600}', '{"invalidated":"u","ttl":3600}',
 "published v3 (4 entries), previous: old\n", "slept\n",
 '{"v":"v3"}', '{"v":"v3"}', '{"o":"b"}', '{"error":"not_found","key":"u"}',
 '{"stored":"t","ttl":3600}', '{"v":"v3","m":1}']
--- response_headers_like eval
["", "", "X-Pred-Source: cache", "", "", "", "X-Pred-Source: cache", "",
 "X-Pred-Source: snapshot", "", "", "", "", "",
 "X-Pred-Source: snapshot\nX-Pred-Version: v3",
 "X-Pred-Source: snapshot\nX-Pred-Version: v3", "X-Pred-Source: cache", "",
 "", "X-Pred-Source: cache"]
--- no_error_log
[error]
