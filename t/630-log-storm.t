# An outage does not flood the error log: fallback warnings are limited per
# second and the rest are counted.
use lib 't';
use PredTest;
use Test::Nginx::Socket 'no_plan';

our $Burst = join '', map { qq{        echo_location_async /predict "id=k$_";\n} }
                          1 .. 30;

run_tests();

__DATA__

=== TEST 1: thirty failures in a burst log ten warnings and a count
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- config eval
qq{
    location = /predict {
        pred_key \$arg_id;
        pred_upstream /_model;
        pred_fallback 'default={"d":0}';
        pred;
    }
    location /_model { internal; proxy_pass http://127.0.0.1:1/; }
    location = /burst {
$::Burst    }
    location = /sleep { echo_sleep 1.1; echo slept; }
    location = /errlog { alias \$TEST_NGINX_SERVER_ROOT/logs/error.log; }
}
--- request eval
["GET /burst", "GET /sleep", "GET /predict?id=after", "GET /errlog"]
--- response_body eval
['{"d":0}' x 30, "slept\n", '{"d":0}',
 qr/pred: \d+ more fallback warnings suppressed in the previous second/]
