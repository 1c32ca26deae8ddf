# Bulk writes through the admin API: POST PREFIX/bulk with JSON Lines of
# upserts (with their own ttl), deletes and merge patches, all or nothing:
# a bad line is a 400 naming it, and nothing is written; PATCH PREFIX/KEY
# merges one key.
use lib 't';
use PredTest;
use Test::Nginx::Socket 'no_plan';

my $dir = snap_dir('bulk');
snap_build($dir, 'b1', qq{{"key":"s1","value":{"from":"snapshot"}}\n});
snap_publish($dir, 'b1');

# 10,000 lines, over nginx's default client_max_body_size of 1m (a
# package variable: too large for the environment)
our $BULK_10K = join '', map {
    sprintf qq[{"key":"k%d","value":{"n":%d,"pad":"%s"}}\n], $_, $_, 'x' x 100
} 1 .. 10000;

run_tests();

__DATA__

=== TEST 1: upserts and deletes in one body; blank lines and white space are fine; the last write of a key wins
--- http_config
    pred_cache_zone zone=hot:1m;
    pred_snapshot_path main $TEST_NGINX_SNAP_BULK;
--- config
    pred_cache hot;
    pred_snapshot main;
    location = /predict { pred_key $arg_id; pred; }
    location /admin/ { pred_admin; }
--- request eval
["POST /admin/bulk
{\"key\":\"a\",\"value\":{ \"score\" : 0.5 }}

{\"key\":\"b\",\"value\":[1, 2]}\r
  {\"value\":\"v\", \"key\":\"c\"}
{\"key\":\"s1\",\"delete\":true}
{\"key\":\"b\",\"value\":3}
{\"key\":\"sp ace/%41\\u00e9\",\"value\":true}
",
 "GET /predict?id=a", "GET /predict?id=b", "GET /predict?id=c",
 "GET /predict?id=s1", "GET /predict?id=sp%20ace%2F%2541%C3%A9"]
--- error_code eval
[200, 200, 200, 200, 404, 200]
--- response_body eval
['{"applied":6,"upserts":5,"deletes":1}',
 '{"score":0.5}', '3', '"v"', '{"error":"not_found","key":"s1"}', 'true']
--- no_error_log
[error]



=== TEST 2: a ttl per line, in seconds or as a time; the others get the zone's
--- http_config
    pred_cache_zone zone=hot:1m ttl=1h;
--- config
    pred_cache hot;
    location = /predict { pred_key $arg_id; pred; }
    location /admin/ { pred_admin; }
    location = /sleep { echo_sleep 1.2; echo slept; }
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- request eval
["POST /admin/bulk
{\"key\":\"short\",\"value\":1,\"ttl\":1}
{\"key\":\"str\",\"value\":2,\"ttl\":\"1s\"}
{\"key\":\"long\",\"value\":3,\"ttl\":\"10m\"}
{\"key\":\"zone\",\"value\":4}
",
 "GET /predict?id=short", "GET /sleep",
 "GET /predict?id=short", "GET /predict?id=str", "GET /predict?id=long",
 "GET /predict?id=zone"]
--- error_code eval
[200, 200, 200, 404, 404, 200, 200]
--- response_body eval
['{"applied":4,"upserts":4,"deletes":0}', '1', "slept\n",
 '{"error":"not_found","key":"short"}', '{"error":"not_found","key":"str"}',
 '3', '4']
--- no_error_log
[error]



=== TEST 3: a bad line anywhere is a 400 naming it, and nothing is written, not even the lines before it
--- http_config
    pred_cache_zone zone=hot:1m max_entry=64;
--- config
    pred_cache hot;
    location = /predict { pred_key $arg_id; pred; }
    location /admin/ { pred_admin; }
--- request eval
["POST /admin/bulk\n{\"key\":\"x1\",\"value\":1}\n{\"key\":\"x2\",\"value\":1",
 "POST /admin/bulk\n{\"key\":\"x1\",\"value\":1}\n[1,2]",
 "POST /admin/bulk\n{\"key\":\"x1\",\"value\":1}\n{\"value\":1}",
 "POST /admin/bulk\n{\"key\":7,\"value\":1}",
 "POST /admin/bulk\n{\"key\":\"\",\"value\":1}",
 "POST /admin/bulk\n{\"key\":\"a\\u0001b\",\"value\":1}",
 "POST /admin/bulk\n{\"key\":\"x1\"}",
 "POST /admin/bulk\n{\"key\":\"x1\",\"value\":null}",
 "POST /admin/bulk\n{\"key\":\"x1\",\"value\":1,\"delete\":true}",
 "POST /admin/bulk\n{\"key\":\"x1\",\"delete\":1}",
 "POST /admin/bulk\n{\"key\":\"x1\",\"value\":1,\"ttl\":\"soon\"}",
 "POST /admin/bulk\n{\"key\":\"x1\",\"value\":1,\"ttl\":0}",
 "POST /admin/bulk\n{\"key\":\"x1\",\"value\":1,\"ttl\":\"2y\"}",
 "POST /admin/bulk\n{\"key\":\"x1\",\"value\":\"" . ('v' x 100) . "\"}",
 "POST /admin/bulk\n{\"key\":\"<b>\\\"x</b>\",\"value\":1}\n{\"key\":\"y\",\"value\":nan}",
 "GET /predict?id=x1", "GET /predict?id=y"]
--- error_code eval
[400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400,
 404, 404]
--- response_body eval
['{"error":"bad_line","reason":"line 2: not valid JSON"}',
 '{"error":"bad_line","reason":"line 2: not a JSON object"}',
 '{"error":"bad_line","reason":"line 2: no \"key\""}',
 '{"error":"bad_line","reason":"line 1: \"key\" is not a string"}',
 '{"error":"bad_line","reason":"line 1: key is empty"}',
 '{"error":"bad_line","reason":"line 1: key contains a control byte"}',
 '{"error":"bad_line","reason":"line 1: no \"value\", \"delete\":true or \"merge\""}',
 '{"error":"bad_line","reason":"line 1: the value is null"}',
 '{"error":"bad_line","reason":"line 1: more than one of \"value\", \"delete\" and \"merge\""}',
 '{"error":"bad_line","reason":"line 1: \"delete\" must be true"}',
 '{"error":"bad_line","reason":"line 1: \"ttl\" must be a time, such as 600 or \"10m\", up to a year"}',
 '{"error":"bad_line","reason":"line 1: \"ttl\" must be a time, such as 600 or \"10m\", up to a year"}',
 '{"error":"bad_line","reason":"line 1: \"ttl\" must be a time, such as 600 or \"10m\", up to a year"}',
 '{"error":"bad_line","reason":"line 1: the value is over the cache\'s max_entry"}',
 '{"error":"bad_line","reason":"line 2: not valid JSON"}',
 '{"error":"not_found","key":"x1"}', '{"error":"not_found","key":"y"}']
--- no_error_log
[error]



=== TEST 4: 10,000 lines in one body (over nginx's default client_max_body_size); a body over max_body is a 413; only POST
--- http_config
    pred_cache_zone zone=hot:16m;
--- config
    pred_cache hot;
    location = /predict { pred_key $arg_id; pred; }
    location /admin/ { pred_admin; }
    location /small/ { pred_admin max_body=100; }
--- request eval
["POST /admin/bulk\n$main::BULK_10K",
 "GET /predict?id=k1", "GET /predict?id=k10000",
 "POST /small/bulk\n" . ('{"key":"a","value":1}' x 5),
 "GET /admin/bulk", "POST /admin/bulk\n"]
--- error_code eval
[200, 200, 200, 413, 405, 200]
--- response_body eval
['{"applied":10000,"upserts":10000,"deletes":0}',
 '{"n":1,"pad":"' . ('x' x 100) . '"}',
 '{"n":10000,"pad":"' . ('x' x 100) . '"}',
 '{"error":"body_too_large","reason":"the body is over the admin max_body"}',
 qr/\A\{"error":"method_not_allowed"/,
 '{"applied":0,"upserts":0,"deletes":0}']
--- no_error_log
[error]



=== TEST 5: merge patches (RFC 7386) over the current value of whichever tier holds the key, in a bulk body and with PATCH
--- http_config
    pred_cache_zone zone=hot:1m;
    pred_snapshot_path main $TEST_NGINX_SNAP_BULK;
--- config
    pred_cache hot;
    pred_snapshot main;
    location = /predict { pred_key $arg_id; pred; }
    location /admin/ { pred_admin; }
--- request eval
["POST /admin/bulk
{\"key\":\"s1\",\"merge\":{\"clicks_1h\":5}}
{\"key\":\"n\",\"value\":{\"a\":1,\"b\":{\"c\":1}}}
{\"key\":\"n\",\"merge\":{\"b\":{\"d\":0.1},\"a\":null}}
",
 "GET /predict?id=s1", "GET /predict?id=n",
 "PATCH /admin/s1\n{\"from\":null,\"x\":{\"y\":1}}",
 "GET /predict?id=s1",
 "PATCH /admin/fresh?ttl=60\n{\"score\":0.25,\"gone\":null}",
 "GET /predict?id=fresh",
 "DELETE /admin/s1",
 "PATCH /admin/s1\n{\"after\":true}",
 "GET /predict?id=s1",
 "PATCH /admin/n\n[1]",
 "POST /admin/bulk\n{\"key\":\"n\",\"merge\":[1]}",
 "GET /predict?id=n"]
--- error_code eval
[200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 400, 400, 200]
--- response_body eval
['{"applied":3,"upserts":3,"deletes":0}',
 '{"from":"snapshot","clicks_1h":5}', '{"b":{"c":1,"d":0.1}}',
 '{"stored":"s1","ttl":600}', '{"clicks_1h":5,"x":{"y":1}}',
 '{"stored":"fresh","ttl":60}', '{"score":0.25}',
 '{"invalidated":"s1","ttl":600}',
 '{"stored":"s1","ttl":600}', '{"after":true}',
 '{"error":"bad_json","key":"n","reason":"a merge patch must be a JSON object"}',
 '{"error":"bad_line","reason":"line 1: \"merge\" must be a JSON object"}',
 '{"b":{"c":1,"d":0.1}}']
--- no_error_log
[error]



=== TEST 6: a merge keeps the bytes of what it does not touch; a patch naming a member twice is refused with its line; a full admin budget stops the writes and says how many were made
--- http_config
    pred_cache_zone zone=hot:1m admin=8k;
--- config
    pred_cache hot;
    location = /predict { pred_key $arg_id; pred; }
    location /admin/ { pred_admin; }
--- request eval
["POST /admin/bulk
{\"key\":\"n\",\"value\":{\"v\":0.1,\"big\":18446744073709551616,\"e\":1e5,\"s\":\"\\u00e9\"}}
",
 "PATCH /admin/n\n{\"x\":{\"y\":null,\"z\":[1,null]},\"e\":null}",
 "GET /predict?id=n",
 "POST /admin/bulk
{\"key\":\"n\",\"value\":1}
{\"key\":\"n\",\"merge\":{\"a\":1,\"b\":{\"c\":1,\"c\":2}}}
",
 "GET /predict?id=n",
 "POST /admin/bulk\n" . CORE::join('', map { sprintf(qq[{"key":"f%d","value":"%s"}\n], $_, 'x' x 1000) } 1 .. 20),
 "GET /predict?id=f1", "GET /predict?id=f20"]
--- error_code eval
[200, 200, 200, 400, 200, 507, 200, 404]
--- response_body eval
['{"applied":1,"upserts":1,"deletes":0}',
 '{"stored":"n","ttl":600}',
 '{"v":0.1,"big":18446744073709551616,"s":"\\u00e9","x":{"z":[1,null]}}',
 '{"error":"bad_line","reason":"line 2: the patch names a member twice"}',
 '{"v":0.1,"big":18446744073709551616,"s":"\\u00e9","x":{"z":[1,null]}}',
 qr/\A\{"error":"admin_budget_full","key":"f(\d+)","reason":"line \1: the zone's budget for overrides and tombstones \(admin=\) is full; the (\d+) lines before it were written"\}\z/,
 '"' . ('x' x 1000) . '"',
 '{"error":"not_found","key":"f20"}']
