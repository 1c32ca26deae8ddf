# The cache zone keeps its entries across a reload.
use lib 't';
use PredTest;
use Test::Nginx::Socket 'no_plan';

# the perl module wants the nginx.pm of its own nginx version; for an nginx
# built from source (make test-nginx) it is on PERL5LIB, which nginx hides
# from its perl unless told to pass it on
env_to_nginx('PERL5LIB');

master_on();
workers(2);

# two versions of one zone's configuration, swapped between requests
my $zc = snap_dir('zonecfg');
write_file("$zc/zone.conf", "pred_cache_zone zone=hot:1m max_entry=1k;\n");
write_file("$zc/lower.conf", "pred_cache_zone zone=hot:1m max_entry=100;\n");
our $big = '{"v":"' . ('x' x 200) . '"}';

run_tests();

__DATA__

=== TEST 1: an override stored before a reload is served after it
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    pred_cache_zone zone=hot:1m;
--- config
    pred_cache hot;
    location = /predict { pred_key $arg_id; pred; }
    location /admin/ { pred_admin; }
    location = /run { perl PredCmd::run; }
    location = /sleep { echo_sleep 1; echo slept; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["PUT /admin/a\n{\"kept\":true}", "GET /run?reload", "GET /sleep",
 "GET /predict?id=a", "GET /predict?id=a", "GET /errlog"]
--- response_headers eval
["", "", "", "X-Pred-Source: cache", "X-Pred-Source: cache", ""]
--- response_body eval
['{"stored":"a","ttl":600}', "reload\n", "slept\n", '{"kept":true}',
 '{"kept":true}', qr/signal 1 \(SIGHUP\) received/]
--- no_error_log
[error]



=== TEST 2: a reload that lowers max_entry keeps serving the larger values written before it (the lock-free read bounds a value by the zone, not by max_entry)
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_perl_module.so;
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
    env PRED_SNAPSHOT;
--- http_config
    perl_modules $TEST_NGINX_PERL_LIB;
    perl_require PredCmd.pm;
    include $TEST_NGINX_SNAP_ZONECFG/zone.conf;
--- config
    pred_cache hot;
    location = /predict { pred_key $arg_id; pred; }
    location /admin/ { pred_admin; }
    location = /run { perl PredCmd::run; }
    location = /sleep { echo_sleep 1; echo slept; }
    location = /metrics { pred_metrics; }
--- request eval
["PUT /admin/a\n$::big",
 "GET /run?overwrite+$ENV{TEST_NGINX_SNAP_ZONECFG}/lower.conf+$ENV{TEST_NGINX_SNAP_ZONECFG}/zone.conf",
 "GET /run?reload", "GET /sleep", "GET /predict?id=a", "GET /predict?id=a",
 "GET /metrics"]
--- response_headers eval
["", "", "", "", "X-Pred-Source: cache", "X-Pred-Source: cache", ""]
--- response_body eval
['{"stored":"a","ttl":600}',
 "overwrote $ENV{TEST_NGINX_SNAP_ZONECFG}/zone.conf with $ENV{TEST_NGINX_SNAP_ZONECFG}/lower.conf\n",
 "reload\n", "slept\n", $::big, $::big,
 qr/^pred_cache_events_total\{zone="hot",event="read_locked"\} 0\n/m]
--- no_error_log
[error]
