# A reload makes new workers, which open the version that is live now.
use lib 't';
use PredTest;
use Test::Nginx::Socket 'no_plan';

# the perl module wants the nginx.pm of its own nginx version; for an nginx
# built from source (make test-nginx) it is on PERL5LIB, which nginx hides
# from its perl unless told to pass it on
env_to_nginx('PERL5LIB');

master_on();
workers(2);

my $dir = snap_dir('reload');
snap_build($dir, 'v1', qq{{"key":"a","value":{"v":1}}\n});
snap_build($dir, 'v2', qq{{"key":"a","value":{"v":2}}\n});
snap_publish($dir, 'v1');

$dir = snap_dir('checknow');
snap_build($dir, 'v1', qq{{"key":"a","value":{"v":1}}\n});
snap_build($dir, 'v2', qq{{"key":"a","value":{"v":2}}\n});
snap_publish($dir, 'v1');

run_tests();

__DATA__

=== TEST 1: after publish and reload, the new workers serve the new version
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    # an hour: only the reload can make the workers see the new version
    pred_snapshot_path main $TEST_NGINX_SNAP_RELOAD check=1h;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot main;
        pred;
    }
    location = /run { perl PredCmd::run; }
    location = /sleep { echo_sleep 1; echo slept; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["GET /predict?id=a",
 "GET /run?publish+$ENV{TEST_NGINX_SNAP_RELOAD}+v2",
 "GET /predict?id=a",
 "GET /run?reload",
 "GET /sleep",
 "GET /predict?id=a", "GET /predict?id=a", "GET /predict?id=a",
 "GET /errlog"]
--- response_body eval
['{"v":1}', "published v2 (1 entries), previous: v1\n", '{"v":1}',
 "reload\n", "slept\n", '{"v":2}', '{"v":2}', '{"v":2}',
 qr/signal 1 \(SIGHUP\) received.*\[notice\] \d+#\d+: pred: snapshot "main": serving version v2 \(1 entries\)$/ms]
--- no_error_log
[error]



=== TEST 2: the admin "check now" reaches every worker
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    # an hour: only the admin call can make the workers look again
    pred_snapshot_path main $TEST_NGINX_SNAP_CHECKNOW check=1h;
--- config
    location = /predict {
        pred_key $arg_id;
        pred_snapshot main;
        pred;
    }
    location /admin/ { pred_snapshot main; pred_admin; }
    location = /run { perl PredCmd::run; }
    location = /sleep { echo_sleep 0.3; echo slept; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["GET /run?publish+$ENV{TEST_NGINX_SNAP_CHECKNOW}+v2",
 "POST /admin/snapshot/check",
 "GET /sleep",
 "GET /predict?id=a", "GET /predict?id=a", "GET /predict?id=a",
 "GET /errlog"]
--- response_body eval
["published v2 (1 entries), previous: v1\n",
 qr/\A\{"name":"main","version":"v2",/,
 "slept\n", '{"v":2}', '{"v":2}', '{"v":2}',
 qr/\[notice\] (\d+)#\d+: pred: snapshot "main": serving version v2 \(1 entries\), was v1\n.*\[notice\] (?!\1#)\d+#\d+: pred: snapshot "main": serving version v2 \(1 entries\), was v1\n/s]
--- no_error_log
[error]
