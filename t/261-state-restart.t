# Warm restarts in the block format (so that they run under memcheck too):
# the first block writes overrides, a tombstone and a purge into a zone
# with state=; the next, a new nginx with the same zone, answers them from
# the state files.
use lib 't';
use PredTest;
use File::Path qw(make_path remove_tree);
use File::Spec ();
use Test::Nginx::Socket 'no_plan';

no_shuffle();

my $state = File::Spec->rel2abs('t/servroot-state-blocks');
remove_tree($state);
make_path($state);
$ENV{TEST_NGINX_STATE_DIR} = $state;

my $dir = snap_dir('state_blocks');
snap_build($dir, 'v1', qq({"key":"a","value":"snap-a"}\n)
                       . qq({"key":"p:1","value":"snap-p1"}\n));
snap_publish($dir, 'v1');

run_tests();

__DATA__

=== TEST 1: writes into a zone with state=
--- http_config
    pred_cache_zone zone=hot:1m ttl=1h state=$TEST_NGINX_STATE_DIR/hot.state;
    pred_snapshot_path main $TEST_NGINX_SNAP_STATE_BLOCKS;
--- config
    pred_cache hot;
    pred_snapshot main;
    location = /p { pred_key $arg_id; pred; }
    location /admin/ { pred_admin; }
--- request eval
["PUT /admin/a\n{\"o\":1}", "DELETE /admin/t", "PUT /admin/p:1\n2",
 "PUT /admin/p:2\n3", "POST /admin/purge?prefix=p:", "GET /p?id=a"]
--- response_body eval
['{"stored":"a","ttl":3600}', '{"invalidated":"t","ttl":3600}',
 '{"stored":"p:1","ttl":3600}', '{"stored":"p:2","ttl":3600}',
 '{"purged":2}', '{"o":1}']
--- no_error_log
[error]



=== TEST 2: a new nginx answers them from the state files
--- http_config
    pred_cache_zone zone=hot:1m ttl=1h state=$TEST_NGINX_STATE_DIR/hot.state;
    pred_snapshot_path main $TEST_NGINX_SNAP_STATE_BLOCKS;
--- config
    pred_cache hot;
    pred_snapshot main;
    location = /p { pred_key $arg_id; pred; }
    location /admin/ { pred_admin; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["GET /p?id=a", "GET /p?id=t", "GET /p?id=p:1", "GET /p?id=p:2",
 "GET /errlog"]
--- error_code eval
[200, 404, 200, 404, 200]
--- response_body eval
['{"o":1}', '{"error":"not_found","key":"t"}', '"snap-p1"',
 '{"error":"not_found","key":"p:2"}',
 qr/\[notice\][^\n]*pred_cache_zone "hot": 2 entries restored from 5 records in "\S+\/hot\.state" \(no checkpoint\) and 1 journals \(0 expired or not kept, 0 without room\)/]
--- response_headers_like eval
["X-Pred-Source: cache", "", "X-Pred-Source: snapshot", "", ""]
--- no_error_log
[error]
