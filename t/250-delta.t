# Delta snapshots in nginx: lookups go through the live version's deltas
# newest first (an upsert answers with the delta's version and age, a
# deletion masks the base), a stack that cannot be served is refused while
# the one before it serves, compaction changes no answer and gives the
# checksum of a build of the merged input, and a delta supersedes admin
# writes older than its as-of time on the keys it changes.
use lib 't';
use PredTest;
use Test::Nginx::Socket 'no_plan';

# the perl module wants the nginx.pm of its own nginx version; for an nginx
# built from source (make test-nginx) it is on PERL5LIB, which nginx hides
# from its perl unless told to pass it on
env_to_nginx('PERL5LIB');

my $row = sub {
    my ($k, $v) = @_;
    return defined $v ? qq{{"key":"$k","value":{"v":"$v"}}\n}
                      : qq{{"key":"$k","delete":true}\n};
};
my $base = CORE::join '', map { $row->($_, 'v1') } qw(a b c t u);

# TEST 1: a base, two deltas over it, and the merged input built whole
my $dir = snap_dir('delta');
snap_build($dir, 'v1', $base, age => 7200);
snap_build($dir, 'd1', $row->('b', 'd1') . $row->('c') . $row->('n', 'd1'),
           age => 600, args => ['--delta-of', 'v1']);
snap_build($dir, 'd2', $row->('a', 'd2') . $row->('n'), age => 60,
           args => ['--delta-of', 'v1']);
snap_publish($dir, 'v1');

my $whole = snap_dir('delta_whole');
snap_build($whole, 'whole', $row->('a', 'd2') . $row->('b', 'd1')
                            . $row->('t', 'v1') . $row->('u', 'v1'));
my ($sum) = PredTest::must_run('info', "$whole/snap-whole.mdb") =~ /^checksum: (\S+)$/m
    or die 'no checksum';
our $SUM = $sum;

# TEST 2: deltas that cannot be served
my $bad = snap_dir('delta_bad');
snap_build($bad, 'v1', $base);
snap_build($bad, 'old', $base);
snap_build($bad, 'd1', $row->('b', 'd1'), args => ['--delta-of', 'v1']);
snap_build($bad, 'dx', $row->('b', 'dx'), args => ['--delta-of', 'old']);
snap_publish($bad, 'v1');

# TEST 3: admin writes across a delta's publish
my $asof = snap_dir('delta_asof');
snap_build($asof, 'v1', $base, age => 7200, args => ['--as-of', time - 7200]);
snap_publish($asof, 'v1');
write_file("$asof/dn.jsonl", $row->('b', 'dn') . $row->('t', 'dn'));

# TEST 4: a delta replaced under its name, rewritten in place, cut short;
# the same base and delta names built twice, with other delta content
my $swap = snap_dir('delta_swap');
my $alt = snap_dir('delta_swap_alt');
for my $d ([$swap, 'd1'], [$alt, 'd1x']) {
    snap_build($d->[0], 'v1', $base);
    snap_build($d->[0], 'd1', $row->('b', $d->[1]),
               args => ['--delta-of', 'v1']);
}
snap_publish($swap, 'v1');
system('cp', "$swap/delta-d1.mdb", "$alt/delta-d1.orig") == 0 or die;

# TEST 5: at start, a stack whose last delta is missing
my $pre = snap_dir('delta_prefix');
snap_build($pre, 'v1', $base);
snap_build($pre, 'd1', $row->('b', 'd1') . $row->('c'),
           args => ['--delta-of', 'v1']);
snap_publish($pre, 'v1');
snap_publish($pre, 'd1');
unlink "$pre/layers";
symlink 'snap-v1.mdb+delta-d1.mdb+delta-gone.mdb', "$pre/layers" or die;

run_tests();

__DATA__

=== TEST 1: deltas answer newest first, deletions mask the base, and compaction changes no answer
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    pred_snapshot_path main $TEST_NGINX_SNAP_DELTA check=100ms;
--- config
    pred_snapshot main;
    location = /p { pred_key $arg_id; pred; }
    location = /run { perl PredCmd::run; }
    location = /sleep { echo_sleep 0.5; echo slept; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
    location /admin/ { pred_admin; }
--- request eval
["GET /p?id=b", "GET /p?id=n",
 "GET /run?publish+$ENV{TEST_NGINX_SNAP_DELTA}+d1", "GET /sleep",
 "GET /p?id=a", "GET /p?id=b", "GET /p?id=c", "GET /p?id=n",
 "GET /run?publish+$ENV{TEST_NGINX_SNAP_DELTA}+d2", "GET /sleep",
 "GET /p?id=a", "GET /p?id=b", "GET /p?id=c", "GET /p?id=n",
 "GET /p?id=t", "GET /admin/snapshot",
 "GET /run?compact+$ENV{TEST_NGINX_SNAP_DELTA}+--version+v2", "GET /sleep",
 "GET /p?id=a", "GET /p?id=b", "GET /p?id=c", "GET /p?id=n",
 "GET /p?id=t",
 "GET /run?info+$ENV{TEST_NGINX_SNAP_DELTA}", "GET /errlog"]
--- error_code eval
[200, 404, 200, 200,
 200, 200, 404, 200, 200, 200,
 200, 200, 404, 404, 200, 200, 200, 200,
 200, 200, 404, 404, 200, 200, 200]
--- response_body eval
['{"v":"v1"}', '{"error":"not_found","key":"n"}',
 "published delta d1 over v1 (2 upserts, 1 deletions), 1 layer\n",
 "slept\n",
 '{"v":"v1"}', '{"v":"d1"}', '{"error":"not_found","key":"c"}',
 '{"v":"d1"}',
 "published delta d2 over v1 (1 upserts, 1 deletions), 2 layers\n",
 "slept\n",
 '{"v":"d2"}', '{"v":"d1"}', '{"error":"not_found","key":"c"}',
 '{"error":"not_found","key":"n"}', '{"v":"v1"}',
 qr/\A\{"name":"main","version":"v1",.*,"candidate":null,"deltas":\[\{"version":"d1","upserts":2,"deletes":1,"created_at":\d+,"as_of":\d+\},\{"version":"d2","upserts":1,"deletes":1,"created_at":\d+,"as_of":\d+\}\]\}\z/,
 "compacted snap-v1.mdb and 2 deltas into v2: 4 entries\n"
 . "published v2 (4 entries), previous: v1\n"
 . "kept the 2 deltas of v1 aside for a rollback\n",
 "slept\n",
 '{"v":"d2"}', '{"v":"d1"}', '{"error":"not_found","key":"c"}',
 '{"error":"not_found","key":"n"}', '{"v":"v1"}',
 qr/^version: v2\n(?:.*\n)*checksum: \Q$main::SUM\E\n/m,
 qr/\[notice\][^\n]*pred: snapshot "main": serving version v1 with 1 delta layer: d1\n.*\[notice\][^\n]*pred: snapshot "main": serving version v1 with 2 delta layers: d1, d2\n.*\[notice\][^\n]*pred: snapshot "main": serving version v2 \(4 entries\), was v1\n.*\[notice\][^\n]*pred: snapshot "main": 2 delta layers dropped: the live version changed\n/s]
--- response_headers_like eval
["X-Pred-Source: snapshot\nX-Pred-Version: v1\nAge: 7[2-3]\\d\\d", "", "", "",
 "X-Pred-Version: v1\nAge: 7[2-3]\\d\\d",
 "X-Pred-Source: snapshot\nX-Pred-Version: d1\nAge: 6[0-3]\\d", "",
 "X-Pred-Version: d1", "", "",
 "X-Pred-Version: d2\nAge: [6-9]\\d", "X-Pred-Version: d1", "", "",
 "X-Pred-Version: v1", "", "", "",
 "X-Pred-Version: v2\nAge: 7[2-3]\\d\\d", "X-Pred-Version: v2", "", "",
 "X-Pred-Version: v2\nAge: 7[2-3]\\d\\d", "", ""]
--- no_error_log
[error]
[crit]



=== TEST 2: a stack that cannot be served is refused, and the one before it keeps serving
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    pred_snapshot_path main $TEST_NGINX_SNAP_DELTA_BAD check=100ms;
--- config
    pred_snapshot main;
    location = /p { pred_key $arg_id; pred; }
    location = /run { perl PredCmd::run; }
    location = /sleep { echo_sleep 0.5; echo slept; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["GET /run?publish+$ENV{TEST_NGINX_SNAP_DELTA_BAD}+dx",
 "GET /run?publish+$ENV{TEST_NGINX_SNAP_DELTA_BAD}+d1", "GET /sleep",
 "GET /p?id=b",
 "GET /run?pointer+$ENV{TEST_NGINX_SNAP_DELTA_BAD}+layers+snap-v1.mdb%2Bdelta-d1.mdb%2Bdelta-dx.mdb",
 "GET /sleep", "GET /p?id=b",
 "GET /run?pointer+$ENV{TEST_NGINX_SNAP_DELTA_BAD}+layers+snap-v1.mdb%2Bdelta-nope.mdb",
 "GET /sleep", "GET /p?id=b",
 "GET /run?pointer+$ENV{TEST_NGINX_SNAP_DELTA_BAD}+layers+snap-v1.mdb%2Bsnap-old.mdb",
 "GET /sleep", "GET /p?id=b",
 "GET /run?pointer+$ENV{TEST_NGINX_SNAP_DELTA_BAD}+layers+snap-old.mdb%2Bdelta-dx.mdb",
 "GET /sleep", "GET /p?id=b",
 "GET /run?pointer+$ENV{TEST_NGINX_SNAP_DELTA_BAD}+layers+snap-v1.mdb%2Bdelta-d1.mdb",
 "GET /sleep", "GET /p?id=b",
 "GET /run?publish+$ENV{TEST_NGINX_SNAP_DELTA_BAD}+old", "GET /sleep",
 "GET /p?id=b", "GET /errlog"]
--- response_body eval
[qr{\Apred-snapshot: \S+/delta-dx\.mdb: refused: a delta of version old, and version v1 is live \(build it with --delta-of v1\)\n\z},
 "published delta d1 over v1 (1 upserts, 0 deletions), 1 layer\n",
 "slept\n", '{"v":"d1"}',
 "layers -> snap-v1.mdb+delta-d1.mdb+delta-dx.mdb\n", "slept\n",
 '{"v":"d1"}',
 "layers -> snap-v1.mdb+delta-nope.mdb\n", "slept\n", '{"v":"d1"}',
 "layers -> snap-v1.mdb+snap-old.mdb\n", "slept\n", '{"v":"d1"}',
 "layers -> snap-old.mdb+delta-dx.mdb\n", "slept\n", '{"v":"v1"}',
 "layers -> snap-v1.mdb+delta-d1.mdb\n", "slept\n", '{"v":"d1"}',
 "published old (5 entries), previous: v1\n"
 . "kept the 1 delta of v1 aside for a rollback\n",
 "slept\n", '{"v":"v1"}',
 qr{\[error\][^\n]*refused delta layers "snap-v1\.mdb\+delta-d1\.mdb\+delta-dx\.mdb": "\S+/delta-dx\.mdb" is a delta of version old, not of the live version v1; serving version v1 with 1 delta layer\n.*\[error\][^\n]*refused delta layers "snap-v1\.mdb\+delta-nope\.mdb": "\S+/delta-nope\.mdb": stat\(\) failed \(2\); serving version v1 with 1 delta layer\n.*\[error\][^\n]*"\S+/layers" is not a delta layers pointer \("snap-V\.mdb\+delta-W\.mdb\.\.\."\): "snap-v1\.mdb\+snap-old\.mdb"\n.*\[notice\][^\n]*the delta layers in "\S+/layers" are over "\S+/snap-old\.mdb", not the live version v1: not used\n.*\[notice\][^\n]*1 delta layer dropped\n.*\[notice\][^\n]*serving version v1 with 1 delta layer: d1\n.*\[notice\][^\n]*serving version old \(5 entries\), was v1\n}s]
--- response_headers_like eval
["", "", "", "X-Pred-Version: d1", "", "", "X-Pred-Version: d1", "", "",
 "X-Pred-Version: d1", "", "", "X-Pred-Version: d1", "", "",
 "X-Pred-Version: v1", "", "", "X-Pred-Version: d1", "", "",
 "X-Pred-Version: old", ""]
--- no_error_log
[crit]
[alert]



=== TEST 3: a delta supersedes admin writes older than its as-of time on the keys it changes; the others, and writes after it, stay, and a compaction changes none of it
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    pred_cache_zone zone=hot:1m ttl=1h;
    pred_snapshot_path main $TEST_NGINX_SNAP_DELTA_ASOF check=100ms;
--- config
    pred_cache hot;
    pred_snapshot main;
    location = /p { pred_key $arg_id; pred; }
    location /admin/ { pred_admin; }
    location = /run { perl PredCmd::run; }
    location = /sleep { echo_sleep 1.1; echo slept; }
--- request eval
["PUT /admin/a\n{\"o\":\"a\"}", "PUT /admin/b\n{\"o\":\"b\"}",
 "DELETE /admin/t", "DELETE /admin/u",
 "GET /p?id=b", "GET /p?id=t",
 "GET /sleep",
 "GET /run?build+$ENV{TEST_NGINX_SNAP_DELTA_ASOF}+--quiet+--version+dn+--delta-of+v1+--as-of+now+--input+$ENV{TEST_NGINX_SNAP_DELTA_ASOF}%2Fdn.jsonl",
 "GET /run?publish+$ENV{TEST_NGINX_SNAP_DELTA_ASOF}+dn", "GET /sleep",
 "GET /p?id=a", "GET /p?id=b", "GET /p?id=t", "GET /p?id=u",
 "GET /run?compact+$ENV{TEST_NGINX_SNAP_DELTA_ASOF}+--version+v2",
 "GET /sleep",
 "GET /p?id=a", "GET /p?id=b", "GET /p?id=t", "GET /p?id=u",
 "PUT /admin/b\n{\"o\":\"b2\"}", "GET /p?id=b"]
--- error_code eval
[200, 200, 200, 200, 200, 404, 200, 200, 200, 200, 200, 200, 200, 404,
 200, 200, 200, 200, 200, 404, 200, 200]
--- response_body eval
['{"stored":"a","ttl":3600}', '{"stored":"b","ttl":3600}',
 '{"invalidated":"t","ttl":3600}', '{"invalidated":"u","ttl":3600}',
 '{"o":"b"}', '{"error":"not_found","key":"t"}', "slept\n",
 qr/\A(?:built [^\n]*\n)?\z/,
 "published delta dn over v1 (2 upserts, 0 deletions), 1 layer\n",
 "slept\n",
 '{"o":"a"}', '{"v":"dn"}', '{"v":"dn"}', '{"error":"not_found","key":"u"}',
 "compacted snap-v1.mdb and 1 delta into v2: 5 entries\n"
 . "published v2 (5 entries), previous: v1\n"
 . "kept the 1 delta of v1 aside for a rollback\n",
 "slept\n",
 '{"o":"a"}', '{"v":"dn"}', '{"v":"dn"}', '{"error":"not_found","key":"u"}',
 '{"stored":"b","ttl":3600}', '{"o":"b2"}']
--- response_headers_like eval
["", "", "", "", "X-Pred-Source: cache", "", "", "", "", "",
 "X-Pred-Source: cache", "X-Pred-Source: snapshot\nX-Pred-Version: dn",
 "X-Pred-Source: snapshot\nX-Pred-Version: dn", "", "", "",
 "X-Pred-Source: cache", "X-Pred-Source: snapshot\nX-Pred-Version: v2",
 "X-Pred-Source: snapshot\nX-Pred-Version: v2", "", "",
 "X-Pred-Source: cache"]
--- no_error_log
[error]



=== TEST 4: a delta replaced under its name is served anew, one rewritten in place or cut short is logged and its base serves
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    pred_snapshot_path main $TEST_NGINX_SNAP_DELTA_SWAP check=100ms;
--- config
    pred_snapshot main;
    location = /p { pred_key $arg_id; pred; }
    location = /run { perl PredCmd::run; }
    location = /sleep { echo_sleep 0.5; echo slept; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["GET /run?publish+$ENV{TEST_NGINX_SNAP_DELTA_SWAP}+d1", "GET /sleep",
 "GET /p?id=b",
 "GET /run?replace+$ENV{TEST_NGINX_SNAP_DELTA_SWAP_ALT}%2Fdelta-d1.mdb+$ENV{TEST_NGINX_SNAP_DELTA_SWAP}%2Fdelta-d1.mdb",
 "GET /sleep", "GET /p?id=b",
 "GET /run?overwrite+$ENV{TEST_NGINX_SNAP_DELTA_SWAP_ALT}%2Fdelta-d1.orig+$ENV{TEST_NGINX_SNAP_DELTA_SWAP}%2Fdelta-d1.mdb",
 "GET /sleep", "GET /p?id=b",
 "GET /run?truncate+$ENV{TEST_NGINX_SNAP_DELTA_SWAP}%2Fdelta-d1.mdb+4096",
 "GET /p?id=b", "GET /sleep", "GET /p?id=b", "GET /p?id=a",
 "GET /errlog"]
--- error_code eval
[200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]
--- response_body eval
["published delta d1 over v1 (1 upserts, 0 deletions), 1 layer\n",
 "slept\n", '{"v":"d1"}',
 qr/\Areplaced \S+ with \S+\n\z/, "slept\n", '{"v":"d1x"}',
 qr/\Aoverwrote \S+ with \S+\n\z/, "slept\n", '{"v":"d1"}',
 qr/\Atruncated \S+ to 4096 bytes\n\z/,
 qr/\A\{"v":"(?:d1|v1)"\}\z/, "slept\n", '{"v":"v1"}', '{"v":"v1"}',
 qr{\[notice\][^\n]*"\S+/delta-d1\.mdb" is another file now: opening the delta layers again\n.*serving version v1 with 1 delta layer: d1\n.*\[crit\][^\n]*pred: snapshot "main" delta d1: "\S+/delta-d1\.mdb" was rewritten in place \(never write a published file\); no longer served, opening it again\n.*serving version v1 with 1 delta layer: d1\n.*\[(?:crit|error)\][^\n]*delta-d1\.mdb}s]
--- response_headers_like eval
["", "", "X-Pred-Version: d1", "", "", "X-Pred-Version: d1", "", "",
 "X-Pred-Version: d1", "", "", "", "X-Pred-Version: v1",
 "X-Pred-Version: v1", ""]
--- no_error_log
[alert]
[emerg]



=== TEST 5: at start, the deltas before one that cannot be opened serve
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_DELTA_PREFIX check=100ms;
--- config
    pred_snapshot main;
    location = /p { pred_key $arg_id; pred; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["GET /p?id=b", "GET /p?id=c", "GET /p?id=a", "GET /errlog"]
--- error_code eval
[200, 404, 200, 200]
--- response_body eval
['{"v":"d1"}', '{"error":"not_found","key":"c"}', '{"v":"v1"}',
 qr{\[notice\][^\n]*serving version v1 with 1 delta layer: d1\n(?:.*\n)?[^\n]*\[error\][^\n]*refused delta layers "snap-v1\.mdb\+delta-d1\.mdb\+delta-gone\.mdb": "\S+/delta-gone\.mdb": stat\(\) failed \(2\); serving version v1 with 1 delta layer\n}s]
--- response_headers_like eval
["X-Pred-Version: d1", "", "X-Pred-Version: v1", ""]
--- no_error_log
[alert]
