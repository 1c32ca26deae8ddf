# Cascaded models within one budget: stages asked in order while the budget
# has room, early exit on confidence, the last good answer when a stage
# fails or is late, the fallback chain when none answered.  The test models
# log each call's URI, so each test checks which stages were asked.
use lib 't';
use PredTest;
use Test::Nginx::Socket 'no_plan';

my $dir = snap_dir('cascade');
snap_build($dir, 'c1',
           qq{{"key":"sure","value":{"stage":"batch","confidence":0.97}}\n}
           . qq{{"key":"unsure","value":{"stage":"batch","confidence":0.4}}\n});
snap_publish($dir, 'c1');

# Under memcheck nginx, the test models with it, runs so much slower that a
# stage which answers at once can miss a 100 ms deadline: there every timing
# here is $X times longer, and so are the durations TEST 3, 7 and 18 check.
# $ms{N} is N ms (a stage timeout, a budget), $sec{N} is N s (a sleep), both
# scaled; $Timeout follows each stage that has the default timeout (100 ms):
# nothing in a normal run, else 100 ms scaled.  A normal run is unchanged.
our $X = $ENV{TEST_NGINX_USE_VALGRIND} ? 10 : 1;
our %ms = map {
    my $t = $_ * $X;
    ($_ => $t % 1000 ? "${t}ms" : $t / 1000 . 's');
} 50, 100, 200, 250, 1000;
our %sec = map { ($_ => $_ * $X) } 0.3, 0.4, 0.8, 1, 1.1;
our $Timeout = $X == 1 ? '' : " timeout=$ms{100}";

# TEST 3's late stage call (0.3 s) lands in the histogram above the
# le="0.250" bucket, in le="0.500"; $X times longer, past le="2.500"
our ($LateAbove, $LateIn) = $X == 1 ? ('0\.250', '0\.500')
                                    : ('2\.500', '\+Inf');

# the test models: each stage answers by its name; the key picks nothing
our $Models = <<"_EOC_";
    log_format pred_model '\$uri';
    server {
        listen 127.0.0.1:\$TEST_NGINX_RAND_PORT_1;
        access_log \$TEST_NGINX_SERVER_ROOT/logs/model.log pred_model;
        default_type application/json;
        location /rules/ { echo -n '{"stage":"rules","confidence":0.5}'; }
        location /rules/sure { echo -n '{"stage":"rules","confidence":0.95}'; }
        location /tree/ { echo -n '{"stage":"tree","confidence":0.7}'; }
        location /net/ { echo -n '{"stage":"net","confidence":0.99}'; }
        location /slow/ {
            echo_sleep $sec{0.3};
            echo -n '{"stage":"slow","confidence":1}';
        }
        location /hang/ {
            echo_sleep $sec{1};
            echo -n '{"stage":"hang","confidence":1}';
        }
        location /fail/ { echo_status 500; echo -n 'oops'; }
        location /garbage/ { echo -n '{"stage":'; }
        location /missing/ { return 404; }
    }
_EOC_

# a stage URI /_s/NAME asks the test model NAME
our $Stages = <<'_EOC_';
    location ~ ^/_s/(\w+)$ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/$1/$pred_key_escaped;
    }
    location = /modellog { alias $TEST_NGINX_SERVER_ROOT/logs/model.log; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
    location = /metrics { pred_metrics; }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('main_config', "    load_module "
                      . "\$TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;\n");
    $block->set_value('http_config', $::Models . ($block->http_config // ''));
    $block->set_value('config', $::Stages . ($block->config // ''));
});

run_tests();

__DATA__

=== TEST 1: every stage answers: the last answer is sent, says its stage, and is cached
--- http_config
    pred_cache_zone zone=hot:1m;
    log_format pred_stage '$pred_stage|$pred_source';
--- config eval
qq{
    location = /score {
        access_log \$TEST_NGINX_SERVER_ROOT/logs/score.log pred_stage;
        pred_key \$arg_id;
        pred_cache hot;
        pred_cascade /_s/rules timeout=$::ms{100} exit_if=/confidence:>=:0.9;
        pred_cascade /_s/tree timeout=$::ms{100} exit_if=/confidence:>=:0.9;
        pred_cascade /_s/net timeout=$::ms{100};
        pred_budget $::ms{1000};
        pred;
    }
    location = /scorelog { alias \$TEST_NGINX_SERVER_ROOT/logs/score.log; }
}
--- request eval
["GET /score?id=k1", "GET /score?id=k1", "GET /modellog", "GET /scorelog"]
--- response_headers eval
["X-Pred-Source: upstream\nX-Pred-Stage: 3\nAge: 0",
 "X-Pred-Source: cache\n!X-Pred-Stage", "", ""]
--- response_body eval
['{"stage":"net","confidence":0.99}', '{"stage":"net","confidence":0.99}',
 "/rules/k1\n/tree/k1\n/net/k1\n", "3|upstream\n-|cache\n"]
--- no_error_log
[error]
[warn]



=== TEST 2: a stage that is sure ends the cascade; the metrics count each stage
--- config eval
qq{
    location = /score {
        pred_key \$arg_id;
        pred_cascade /_s/rules timeout=$::ms{100} exit_if=/confidence:>=:0.9;
        pred_cascade /_s/tree timeout=$::ms{100} exit_if=/confidence:>=:0.9;
        pred_cascade /_s/net timeout=$::ms{100};
        pred;
    }
}
--- request eval
["GET /score?id=sure", "GET /score?id=k2", "GET /modellog", "GET /metrics"]
--- response_headers eval
["X-Pred-Source: upstream\nX-Pred-Stage: 1", "X-Pred-Stage: 3", "", ""]
--- response_body eval
['{"stage":"rules","confidence":0.95}', '{"stage":"net","confidence":0.99}',
 "/rules/sure\n/rules/k2\n/tree/k2\n/net/k2\n",
 qr/^pred_upstream_requests_total 0$(?s:.*)^pred_cascade_stage_total\{location="\/score",stage="1",result="answered"\} 1
pred_cascade_stage_total\{location="\/score",stage="1",result="exited"\} 1
pred_cascade_stage_total\{location="\/score",stage="1",result="timeout"\} 0
pred_cascade_stage_total\{location="\/score",stage="1",result="failed"\} 0
pred_cascade_stage_total\{location="\/score",stage="1",result="skipped"\} 0
pred_cascade_stage_total\{location="\/score",stage="2",result="answered"\} 1
pred_cascade_stage_total\{location="\/score",stage="2",result="exited"\} 0
pred_cascade_stage_total\{location="\/score",stage="2",result="timeout"\} 0
pred_cascade_stage_total\{location="\/score",stage="2",result="failed"\} 0
pred_cascade_stage_total\{location="\/score",stage="2",result="skipped"\} 0
pred_cascade_stage_total\{location="\/score",stage="3",result="answered"\} 1
pred_cascade_stage_total\{location="\/score",stage="3",result="exited"\} 0
pred_cascade_stage_total\{location="\/score",stage="3",result="timeout"\} 0
pred_cascade_stage_total\{location="\/score",stage="3",result="failed"\} 0
pred_cascade_stage_total\{location="\/score",stage="3",result="skipped"\} 0
# HELP pred_cascade_stage_duration_seconds [^\n]*
# TYPE pred_cascade_stage_duration_seconds histogram
(?s:.*)^pred_cascade_stage_duration_seconds_bucket\{location="\/score",stage="1",le="\+Inf"\} 2
pred_cascade_stage_duration_seconds_sum\{location="\/score",stage="1"\} [\d.]+
pred_cascade_stage_duration_seconds_count\{location="\/score",stage="1"\} 2
(?s:.*)^pred_cascade_stage_duration_seconds_count\{location="\/score",stage="3"\} 1$/m]
--- no_error_log
[error]
[warn]



=== TEST 3: a stage past its deadline: the last good answer is sent and cached, the late answer is dropped
--- http_config
    pred_cache_zone zone=hot:1m;
--- config eval
qq{
    location = /score {
        pred_key \$arg_id;
        pred_cache hot;
        pred_cascade /_s/rules timeout=$::ms{100};
        pred_cascade /_s/slow timeout=$::ms{50};
        pred;
    }
    # long enough for the late answer to land, under memcheck too
    location = /sleep { echo_sleep $::sec{0.8}; echo -n slept; }
}
--- request eval
["GET /score?id=k3", "GET /sleep", "GET /score?id=k3", "GET /modellog",
 "GET /errlog", "GET /metrics"]
--- response_headers eval
["X-Pred-Source: upstream\nX-Pred-Stage: 1", "",
 "X-Pred-Source: cache\n!X-Pred-Stage", "", "", ""]
--- response_body eval
['{"stage":"rules","confidence":0.5}', "slept",
 '{"stage":"rules","confidence":0.5}', "/rules/k3\n/slow/k3\n",
 qr/\[warn\] [^\n]*pred: cascade stage 2 "\/_s\/slow" for key "k3" timed out: no answer within its deadline/,
 qr/^pred_upstream_in_flight 0$(?s:.*)^pred_cascade_stage_total\{location="\/score",stage="2",result="timeout"\} 1$(?s:.*)^pred_cascade_stage_duration_seconds_bucket\{location="\/score",stage="2",le="$::LateAbove"\} 0\npred_cascade_stage_duration_seconds_bucket\{location="\/score",stage="2",le="$::LateIn"\} 1$/m]
--- no_error_log
[error]



=== TEST 4: failing, garbage and 404 stages: the next stage answers
--- config eval
qq{
    location = /score {
        pred_key \$arg_id;
        pred_cascade /_s/fail$::Timeout;
        pred_cascade /_s/garbage$::Timeout;
        pred_cascade /_s/missing$::Timeout;
        pred_cascade /_s/tree$::Timeout;
        pred;
    }
}
--- request eval
["GET /score?id=k4", "GET /modellog", "GET /errlog", "GET /metrics"]
--- response_headers eval
["X-Pred-Source: upstream\nX-Pred-Stage: 4", "", "", ""]
--- response_body eval
['{"stage":"tree","confidence":0.7}',
 "/fail/k4\n/garbage/k4\n/missing/k4\n/tree/k4\n",
 qr/\[warn\] [^\n]*pred: cascade stage 1 "\/_s\/fail" for key "k4" failed: error status[\s\S]*\[warn\] [^\n]*pred: cascade stage answer for key "k4" is not valid JSON at byte 9[\s\S]*\[warn\] [^\n]*pred: cascade stage 3 "\/_s\/missing" for key "k4" failed: the model has no answer \(404\)/,
 qr/^pred_cascade_stage_total\{location="\/score",stage="1",result="failed"\} 1$(?s:.*)^pred_cascade_stage_total\{location="\/score",stage="2",result="failed"\} 1$(?s:.*)^pred_cascade_stage_total\{location="\/score",stage="3",result="failed"\} 1$(?s:.*)^pred_cascade_stage_total\{location="\/score",stage="4",result="answered"\} 1$/m]
--- no_error_log
[error]



=== TEST 5: no stage answered: the fallback chain, without X-Pred-Stage
--- config eval
qq{
    location = /score {
        pred_key \$arg_id;
        pred_cascade /_s/fail$::Timeout;
        pred_cascade /_s/missing$::Timeout;
        pred_fallback 'default={"score":0}';
        pred;
    }
}
--- request eval
["GET /score?id=k5", "GET /errlog"]
--- response_headers eval
["X-Pred-Source: default\n!X-Pred-Stage", ""]
--- response_body eval
['{"score":0}',
 qr/\[warn\] [^\n]*pred: upstream for key "k5" failed: no stage answered; answering with the default/]
--- no_error_log
[error]



=== TEST 6: the budget has no room for a stage: it is skipped, not started
--- config eval
qq{
    location = /score {
        pred_key \$arg_id;
        pred_cascade /_s/slow timeout=$::ms{100};
        pred_cascade /_s/rules timeout=$::ms{100};
        pred_cascade /_s/net timeout=$::ms{200};
        pred_budget $::ms{250};
        pred;
    }
    location = /sleep { echo_sleep $::sec{0.4}; echo -n slept; }
}
--- request eval
["GET /score?id=k6", "GET /sleep", "GET /modellog", "GET /errlog",
 "GET /metrics"]
--- response_headers eval
["X-Pred-Source: upstream\nX-Pred-Stage: 2", "", "", "", ""]
--- response_body eval
['{"stage":"rules","confidence":0.5}', "slept",
 "/rules/k6\n/slow/k6\n",
 qr/\A(?![\s\S]*cascade stage 3)[\s\S]*\[warn\] [^\n]*pred: cascade stage 1 "\/_s\/slow" for key "k6" timed out/,
 qr/^pred_cascade_stage_total\{location="\/score",stage="1",result="timeout"\} 1$(?s:.*)^pred_cascade_stage_total\{location="\/score",stage="2",result="answered"\} 1$(?s:.*)^pred_cascade_stage_total\{location="\/score",stage="3",result="answered"\} 0\n(?s:.*)^pred_cascade_stage_total\{location="\/score",stage="3",result="skipped"\} 1$/m]
--- no_error_log
[error]



=== TEST 7: the client never waits past the budget; late answers are never cached
--- http_config
    pred_cache_zone zone=hot:1m;
--- config eval
qq{
    location = /score {
        pred_key \$arg_id;
        pred_cache hot;
        pred_cascade /_s/slow timeout=$::ms{100};
        pred_cascade /_s/slow timeout=$::ms{100};
        pred_cascade /_s/slow timeout=$::ms{100};
        pred_budget $::ms{250};
        pred_fallback 'default={"score":0}';
        pred;
    }
    # how long the answer took, as its caller saw it: the stages that run
    # on after it hold the request, and \$request_time with it
    location = /timed {
        echo_reset_timer;
        echo_location /score id=k7;
        echo " \$echo_timer_elapsed";
    }
    location = /sleep { echo_sleep $::sec{0.4}; echo -n slept; }
}
--- request eval
["GET /timed", "GET /sleep", "GET /timed", "GET /sleep", "GET /modellog"]
--- response_body eval
[$ENV{TEST_NGINX_USE_VALGRIND}
 ? qr/\A\{"score":0\} (?:1\.9|2\.[0-2])\d\d\n\z/
 : qr/\A\{"score":0\} 0\.(?:19|2[0-2])\d\n\z/,
 "slept",
 $ENV{TEST_NGINX_USE_VALGRIND}
 ? qr/\A\{"score":0\} (?:1\.9|2\.[0-2])\d\d\n\z/
 : qr/\A\{"score":0\} 0\.(?:19|2[0-2])\d\n\z/,
 "slept", "/slow/k7\n/slow/k7\n/slow/k7\n/slow/k7\n"]
--- no_error_log
[error]



=== TEST 8: the snapshot's value is stage 0: sure, it answers; unsure, the stages improve it
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_CASCADE;
    pred_cache_zone zone=hot:1m;
--- config eval
qq{
    location = /score {
        pred_key \$arg_id;
        pred_snapshot main;
        pred_cache hot;
        pred_cascade_from_snapshot on exit_if=/confidence:>=:0.9;
        pred_cascade /_s/rules$::Timeout exit_if=/confidence:>=:0.9;
        pred_cascade /_s/net$::Timeout;
        pred;
    }
}
--- request eval
["GET /score?id=sure", "GET /score?id=unsure", "GET /score?id=unsure",
 "GET /score?id=nowhere", "GET /modellog", "GET /metrics"]
--- response_headers eval
["X-Pred-Source: snapshot\nX-Pred-Stage: 0\nX-Pred-Version: c1",
 "X-Pred-Source: upstream\nX-Pred-Stage: 2\n!X-Pred-Version",
 "X-Pred-Source: cache\n!X-Pred-Stage",
 "X-Pred-Source: upstream\nX-Pred-Stage: 2", "", ""]
--- response_body eval
['{"stage":"batch","confidence":0.97}', '{"stage":"net","confidence":0.99}',
 '{"stage":"net","confidence":0.99}', '{"stage":"net","confidence":0.99}',
 "/rules/unsure\n/net/unsure\n/rules/nowhere\n/net/nowhere\n",
 qr/^pred_cascade_stage_total\{location="\/score",stage="0",result="answered"\} 1\npred_cascade_stage_total\{location="\/score",stage="0",result="exited"\} 1\n/m]
--- no_error_log
[error]
[warn]



=== TEST 9: the snapshot's value answers when every stage fails, and is not cached
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_CASCADE;
    pred_cache_zone zone=hot:1m;
--- config eval
qq{
    location = /score {
        pred_key \$arg_id;
        pred_snapshot main;
        pred_cache hot;
        pred_cascade_from_snapshot on;
        pred_cascade /_s/fail$::Timeout;
        pred;
    }
}
--- request eval
["GET /score?id=sure", "GET /score?id=sure", "GET /modellog", "GET /errlog"]
--- response_headers eval
["X-Pred-Source: snapshot\nX-Pred-Stage: 0\nX-Pred-Version: c1",
 "X-Pred-Source: snapshot\nX-Pred-Stage: 0", "", ""]
--- response_body eval
['{"stage":"batch","confidence":0.97}', '{"stage":"batch","confidence":0.97}',
 "/fail/sure\n/fail/sure\n",
 qr/(?:\[warn\] [^\n]*pred: cascade stage 1 "\/_s\/fail" for key "sure" failed: error status[\s\S]*){2}/]
--- no_error_log
[error]



=== TEST 10: each stage URI has its own breaker: a failing stage is skipped, the others answer, the model's breaker stays closed
--- http_config
    pred_upstream_breaker failures=2 cooldown=10s;
--- config eval
qq{
    location = /score {
        pred_key \$arg_id;
        pred_cascade /_s/rules$::Timeout;
        pred_cascade /_s/fail$::Timeout;
        pred_cascade /_s/net$::Timeout;
        pred;
    }
}
--- request eval
["GET /score?id=a", "GET /score?id=b", "GET /score?id=c", "GET /modellog",
 "GET /errlog", "GET /metrics"]
--- response_headers eval
["X-Pred-Stage: 3", "X-Pred-Stage: 3", "X-Pred-Stage: 3", "", "", ""]
--- response_body eval
['{"stage":"net","confidence":0.99}', '{"stage":"net","confidence":0.99}',
 '{"stage":"net","confidence":0.99}',
 "/rules/a\n/fail/a\n/net/a\n/rules/b\n/fail/b\n/net/b\n/rules/c\n/net/c\n",
 qr/\[warn\] [^\n]*pred: circuit breaker of stage "\/_s\/fail" open for 10000 ms after 2 failed stage calls in a row/,
 qr/^pred_upstream_breaker_open 0\n(?s:.*)^pred_upstream_breaker_trips_total 0\n(?s:.*)^pred_cascade_stage_total\{location="\/score",stage="2",result="failed"\} 2\n(?s:.*)^pred_cascade_stage_total\{location="\/score",stage="2",result="skipped"\} 1\n(?s:.*)^pred_cascade_breaker_open\{server="localhost",uri="\/_s\/rules"\} 0\npred_cascade_breaker_open\{server="localhost",uri="\/_s\/fail"\} 1\npred_cascade_breaker_open\{server="localhost",uri="\/_s\/net"\} 0\n(?s:.*)^pred_cascade_breaker_trips_total\{server="localhost",uri="\/_s\/fail"\} 1\n/m]
--- no_error_log
[error]



=== TEST 11: one request per key runs the cascade; the others wait for its answer
--- http_config
    pred_cache_zone zone=hot:1m;
--- config eval
qq{
    location = /score {
        pred_key \$arg_id;
        pred_cache hot;
        pred_cascade /_s/slow timeout=$::ms{1000};
        pred;
    }
    location = /burst {
        echo_location_async /score id=k;
        echo_location_async /score id=k;
        echo_location_async /score id=k;
        echo_location_async /score id=other;
    }
}
--- request eval
["GET /burst", "GET /modellog"]
--- response_body eval
['{"stage":"slow","confidence":1}' x 4,
 qr/\A\/slow\/(k|other)\n\/slow\/(?!\1)(k|other)\n\z/]
--- no_error_log
[error]
[warn]



=== TEST 12: admission control sees each stage: a stage shed at the cap is skipped
--- http_config
    pred_upstream_limit 1;
--- config eval
qq{
    location = /score {
        pred_key \$arg_id;
        pred_cascade /_s/slow timeout=$::ms{1000};
        pred_cascade /_s/rules$::Timeout;
        pred_fallback 'default={"score":0}';
        pred;
    }
    location = /burst {
        echo_location_async /score id=first;
        echo_location_async /score id=second;
    }
}
--- request eval
["GET /burst", "GET /metrics"]
--- response_body eval
['{"stage":"rules","confidence":0.5}{"score":0}',
 qr/^pred_upstream_in_flight 0\n(?s:.*)^pred_cascade_stage_total\{location="\/score",stage="1",result="answered"\} 1\n(?s:.*)^pred_cascade_stage_total\{location="\/score",stage="1",result="skipped"\} 1\n(?s:.*)^pred_cascade_stage_total\{location="\/score",stage="2",result="answered"\} 1\n(?s:.*)^pred_cascade_stage_total\{location="\/score",stage="2",result="skipped"\} 1\n/m]
--- no_error_log
[error]



=== TEST 13: exit_if on text, a quoted value and a literal, in the answer as extracted
--- config eval
qq{
    location = /score {
        pred_key \$arg_id;
        pred_upstream_extract /stage;
        pred_cascade /_s/tree$::Timeout exit_if=:==:"tree";
        pred_cascade /_s/net$::Timeout;
        pred;
    }
    location = /text {
        pred_key \$arg_id;
        pred_cascade /_s/rules$::Timeout exit_if=/stage:==:rules;
        pred_cascade /_s/net$::Timeout;
        pred;
    }
    location = /literal {
        pred_key \$arg_id;
        pred_cascade /_s/rules$::Timeout exit_if=/confidence:!=:null;
        pred_cascade /_s/net$::Timeout;
        pred;
    }
}
--- request eval
["GET /score?id=q", "GET /text?id=q", "GET /literal?id=q", "GET /modellog"]
--- response_headers eval
["X-Pred-Stage: 1", "X-Pred-Stage: 1", "X-Pred-Stage: 2", ""]
--- response_body eval
['"tree"', '{"stage":"rules","confidence":0.5}',
 '{"stage":"net","confidence":0.99}',
 "/tree/q\n/rules/q\n/rules/q\n/net/q\n"]
--- no_error_log
[error]
[warn]



=== TEST 14: a stage past its deadline gives its place in flight back and counts for its breaker at once, not when its call ends
--- http_config
    pred_upstream_limit 2;
    pred_upstream_breaker failures=2 cooldown=10s;
--- config eval
qq{
    location = /score {
        pred_key \$arg_id;
        pred_cascade /_s/rules$::Timeout;
        pred_cascade /_s/hang timeout=$::ms{50};
        pred;
    }
    location = /sleep { echo_sleep $::sec{1.1}; echo -n slept; }
}
--- request eval
["GET /score?id=a", "GET /score?id=b", "GET /metrics", "GET /errlog",
 "GET /score?id=c", "GET /sleep", "GET /metrics"]
--- response_headers eval
["X-Pred-Stage: 1", "X-Pred-Stage: 1", "", "", "X-Pred-Stage: 1", "", ""]
--- response_body eval
['{"stage":"rules","confidence":0.5}', '{"stage":"rules","confidence":0.5}',
 qr/^pred_upstream_in_flight 0\n(?s:.*)^pred_cascade_breaker_open\{server="localhost",uri="\/_s\/hang"\} 1\n/m,
 qr/\[warn\] [^\n]*pred: circuit breaker of stage "\/_s\/hang" open for 10000 ms after 2 failed stage calls in a row/,
 '{"stage":"rules","confidence":0.5}', "slept",
 qr/^pred_upstream_in_flight 0\n(?s:.*)^pred_cascade_stage_total\{location="\/score",stage="2",result="timeout"\} 2\n(?s:.*)^pred_cascade_stage_total\{location="\/score",stage="2",result="skipped"\} 1\n(?s:.*)^pred_cascade_breaker_trips_total\{server="localhost",uri="\/_s\/hang"\} 1\n/m]
--- no_error_log
[error]



=== TEST 15: a stage that waits in the admission queue past its deadline is skipped, and its breaker does not count it
--- http_config eval
qq{
    pred_upstream_limit 1 queue=4 timeout=$::ms{1000};
    pred_upstream_breaker failures=1 cooldown=10s;
}
--- config eval
qq{
    location = /hold {
        pred_key \$arg_id;
        pred_cascade /_s/slow timeout=$::ms{1000};
        pred;
    }
    location = /score {
        pred_key \$arg_id;
        pred_cascade /_s/net timeout=$::ms{100};
        pred_fallback 'default={"score":0}';
        pred;
    }
    location = /burst {
        echo_location_async /hold id=a;
        echo_location_async /score id=b;
    }
}
--- request eval
["GET /burst", "GET /score?id=c", "GET /metrics"]
--- response_body eval
['{"stage":"slow","confidence":1}{"score":0}',
 '{"stage":"net","confidence":0.99}',
 qr/^pred_upstream_in_flight 0\n(?s:.*)^pred_cascade_stage_total\{location="\/score",stage="1",result="answered"\} 1\n(?s:.*)^pred_cascade_stage_total\{location="\/score",stage="1",result="skipped"\} 1\n(?s:.*)^pred_cascade_breaker_open\{server="localhost",uri="\/_s\/net"\} 0\n/m]
--- no_error_log
[error]



=== TEST 16: one stage URI in two servers has two breakers
--- http_config eval
qq{
    pred_upstream_breaker failures=1 cooldown=10s;
    server {
        listen 127.0.0.1:\$TEST_NGINX_RAND_PORT_2;
        server_name two;
        location = /score {
            pred_key \$arg_id;
            pred_cascade /_st$::Timeout;
            pred;
        }
        location = /_st {
            internal;
            proxy_pass http://127.0.0.1:\$TEST_NGINX_RAND_PORT_1/net/\$pred_key_escaped;
        }
    }
}
--- config eval
qq{
    location = /score {
        pred_key \$arg_id;
        pred_cascade /_st$::Timeout;
        pred_fallback 'default={"score":0}';
        pred;
    }
    location = /_st {
        internal;
        proxy_pass http://127.0.0.1:\$TEST_NGINX_RAND_PORT_1/fail/\$pred_key_escaped;
    }
    location = /two {
        proxy_pass http://127.0.0.1:\$TEST_NGINX_RAND_PORT_2/score?id=\$arg_id;
    }
}
--- request eval
["GET /score?id=a", "GET /score?id=b", "GET /two?id=c", "GET /metrics"]
--- response_body eval
['{"score":0}', '{"score":0}', '{"stage":"net","confidence":0.99}',
 qr/^pred_cascade_breaker_open\{server="two",uri="\/_st"\} 0\npred_cascade_breaker_open\{server="localhost",uri="\/_st"\} 1\n/m]
--- no_error_log
[error]



=== TEST 17: a location's own pred_cascade_from_snapshot without exit_if does not inherit the server's exit_if
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_CASCADE;
--- config eval
qq{
    pred_snapshot main;
    pred_cascade_from_snapshot on exit_if=/confidence:>=:0.9;
    location = /score {
        pred_key \$arg_id;
        pred_cascade_from_snapshot on;
        pred_cascade /_s/rules$::Timeout;
        pred;
    }
    location = /inherits {
        pred_key \$arg_id;
        pred_cascade /_s/rules$::Timeout;
        pred;
    }
}
--- request eval
["GET /score?id=sure", "GET /inherits?id=sure", "GET /modellog"]
--- response_headers eval
["X-Pred-Stage: 1\nX-Pred-Source: upstream",
 "X-Pred-Stage: 0\nX-Pred-Source: snapshot", ""]
--- response_body eval
['{"stage":"rules","confidence":0.95}', '{"stage":"batch","confidence":0.97}',
 "/rules/sure\n"]
--- no_error_log
[error]
[warn]



=== TEST 18: pred_budget bounds a pred_upstream miss that waits in the admission queue
--- http_config eval
qq{
    pred_upstream_limit 1 queue=4 timeout=$::ms{1000};
}
--- config eval
qq{
    location = /up {
        pred_key \$arg_id;
        pred_upstream /_s/slow timeout=$::ms{1000};
        pred_budget $::ms{100};
        pred_fallback 'default={"score":0}';
        pred;
    }
    location = /timed {
        echo_reset_timer;
        echo_location_async /up id=a;
        echo_location /up id=b;
        echo " \$echo_timer_elapsed";
    }
}
--- request
GET /timed
--- response_body_like eval
$ENV{TEST_NGINX_USE_VALGRIND}
? qr/\A\{"score":0\}\{"score":0\} (?:0\.9|1\.[0-2])\d\d\n\z/
: qr/\A\{"score":0\}\{"score":0\} 0\.(?:09|1[0-2])\d\n\z/
--- no_error_log
[error]



=== TEST 19: one stage URI in two servers of the same name: two series, told apart
--- http_config eval
qq{
    pred_upstream_breaker failures=1 cooldown=10s;
    server {
        listen 127.0.0.1:\$TEST_NGINX_RAND_PORT_2;
        server_name localhost;
        location = /score {
            pred_key \$arg_id;
            pred_cascade /_st$::Timeout;
            pred;
        }
        location = /_st {
            internal;
            proxy_pass http://127.0.0.1:\$TEST_NGINX_RAND_PORT_1/net/\$pred_key_escaped;
        }
    }
}
--- config eval
qq{
    location = /score {
        pred_key \$arg_id;
        pred_cascade /_st$::Timeout;
        pred_fallback 'default={"score":0}';
        pred;
    }
    location = /_st {
        internal;
        proxy_pass http://127.0.0.1:\$TEST_NGINX_RAND_PORT_1/fail/\$pred_key_escaped;
    }
    location = /two {
        proxy_pass http://127.0.0.1:\$TEST_NGINX_RAND_PORT_2/score?id=\$arg_id;
    }
}
--- request eval
["GET /score?id=a", "GET /two?id=c", "GET /metrics"]
--- response_body eval
['{"score":0}', '{"stage":"net","confidence":0.99}',
 qr/^pred_cascade_breaker_open\{server="localhost#1",uri="\/_st"\} 0\npred_cascade_breaker_open\{server="localhost#2",uri="\/_st"\} 1\n(?s:.*)^pred_cascade_breaker_trips_total\{server="localhost#1",uri="\/_st"\} 0\npred_cascade_breaker_trips_total\{server="localhost#2",uri="\/_st"\} 1\n/m]
--- no_error_log
[error]
