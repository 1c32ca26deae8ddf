# Multi-key lookups: every key through the tiers, the misses in one model
# call, the answer split back per key.
use lib 't';
use PredTest;
use Test::Nginx::Socket 'no_plan';

my $dir = snap_dir('batch');
snap_build($dir, 'b1', qq{{"key":"a","value":{"s":1}}\n}
                       . qq{{"key":"b","value":{"s":2}}\n}
                       . qq{{"key":"x,y","value":3}\n});
snap_publish($dir, 'b1');

run_tests();

__DATA__

=== TEST 1: keys from the snapshot and the cache, unknown keys are null
--- http_config
    pred_cache_zone zone=hot:1m;
    pred_snapshot_path main $TEST_NGINX_SNAP_BATCH;
--- config
    pred_cache hot;
    pred_snapshot main;
    location = /batch {
        pred_key $arg_keys;
        pred_batch on;
        pred;
    }
    location /admin/ { pred_admin; }
--- request eval
["PUT /admin/c\n{\"s\": 9}", "GET /batch?keys=a,c,zz,x%2Cy,a"]
--- response_headers eval
["", "Content-Type: application/json"]
--- response_body eval
['{"stored":"c","ttl":600}',
 '{"results":{"a":{"s":1},"c":{"s":9},"zz":null,"x,y":3},"sources":{"a":"snapshot","c":"cache","zz":"none","x,y":"snapshot"}}']
--- no_error_log
[error]



=== TEST 2: the misses go to the model in one request, and are cached
--- http_config
    pred_cache_zone zone=hot:1m;
    pred_snapshot_path main $TEST_NGINX_SNAP_BATCH;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        access_log $TEST_NGINX_SERVER_ROOT/logs/model.log;
        location = /predict {
            # echoes the instances it got, as the predictions
            echo_read_request_body;
            echo -n '{"predictions":';
            echo -n $request_body;
            echo -n '}';
        }
    }
--- main_config
    load_module $TEST_NGINX_MODULES_DIR/ngx_http_echo_module.so;
--- config
    pred_cache hot;
    pred_snapshot main;
    location = /batch {
        pred_key $arg_keys;
        pred_batch on;
        pred_upstream /_model timeout=1s;
        pred_upstream_extract /predictions;
        pred;
    }
    location = /_model {
        internal;
        proxy_method POST;
        proxy_set_body '$pred_keys_json';
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict;
    }
    location = /modellog { alias $TEST_NGINX_SERVER_ROOT/logs/model.log; }
--- request eval
["GET /batch?keys=a,m1,b,m2", "GET /batch?keys=m2,m1", "GET /modellog"]
--- response_body eval
['{"results":{"a":{"s":1},"m1":"m1","b":{"s":2},"m2":"m2"},"sources":{"a":"snapshot","m1":"upstream","b":"snapshot","m2":"upstream"}}',
 '{"results":{"m2":"m2","m1":"m1"},"sources":{"m2":"cache","m1":"cache"}}',
 qr/\A[^\n]*POST \/predict [^\n]*\n\z/]



=== TEST 3: null from the model is not found, and cached as negative
--- http_config
    pred_cache_zone zone=hot:1m;
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /predict { return 200 '{"predictions":[{"p":0.5},null]}'; }
    }
--- config
    pred_cache hot;
    location = /batch {
        pred_key $arg_keys;
        pred_batch on;
        pred_upstream /_model;
        pred_upstream_extract /predictions;
        pred;
    }
    location = /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict;
    }
    location = /predict { pred_key $arg_id; pred_cache hot; pred; }
--- request eval
["GET /batch?keys=k1,k2", "GET /predict?id=k2"]
--- error_code eval
[200, 404]
--- response_body eval
['{"results":{"k1":{"p":0.5},"k2":null},"sources":{"k1":"upstream","k2":"upstream"}}',
 '{"error":"not_found","key":"k2"}']



=== TEST 4: a failing model gives the fallback chain per key (a key a tombstone masks never gets its snapshot value as stale)
--- http_config
    pred_cache_zone zone=hot:1m;
    pred_snapshot_path main $TEST_NGINX_SNAP_BATCH;
--- config
    pred_cache hot;
    pred_snapshot main;
    location = /batch {
        pred_key $arg_keys;
        pred_batch on;
        pred_upstream /_model;
        pred_fallback stale 'default={"s":0}';
        pred;
    }
    location = /_model { internal; proxy_pass http://127.0.0.1:1/; }
    location /admin/ { pred_admin; }
    location = /errlog { alias $TEST_NGINX_SERVER_ROOT/logs/error.log; }
--- request eval
["DELETE /admin/a", "GET /batch?keys=a,b,new", "GET /errlog"]
--- response_body eval
['{"invalidated":"a","ttl":600}',
 '{"results":{"a":{"s":0},"b":{"s":2},"new":{"s":0}},"sources":{"a":"default","b":"snapshot","new":"default"}}',
 qr/pred: batch upstream for 2 keys failed: connect or read failed \(502\); answering with the fallback chain/]



=== TEST 5: an answer that does not match the keys fails the whole call
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /predict { return 200 '{"predictions":[1]}'; }
    }
--- config
    location = /batch {
        pred_key $arg_keys;
        pred_batch on;
        pred_upstream /_model;
        pred_upstream_extract /predictions;
        pred_fallback status=503;
        pred;
    }
    location = /_model {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/predict;
    }
--- request
GET /batch?keys=k1,k2
--- response_body chomp
{"results":{"k1":null,"k2":null},"sources":{"k1":"error","k2":"error"}}
--- error_log
pred: batch answer is not an array of 2 predictions



=== TEST 6: POST with a JSON body
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_BATCH;
--- config
    location = /batch {
        pred_key $arg_keys;
        pred_snapshot main;
        pred_batch on;
        pred;
    }
--- request
POST /batch
{"keys": ["b", "a", "b", "x,y"]}
--- response_body chomp
{"results":{"b":{"s":2},"a":{"s":1},"x,y":3},"sources":{"b":"snapshot","a":"snapshot","x,y":"snapshot"}}



=== TEST 7: bad key lists are 400 with a reason that names the key
--- config
    location = /batch {
        pred_key $arg_keys;
        pred_batch on max=3;
        pred;
    }
--- request eval
["GET /batch?keys=", "GET /batch?keys=a,,b", "GET /batch?keys=a,b,c,d",
 "GET /batch?keys=a,b,a,c", "GET /batch?keys=a%2", "POST /batch\n{\"keys\":\"a\"}",
 "POST /batch\n{\"keys\":[1]}", "POST /batch\nnope", "PUT /batch?keys=a"]
--- error_code eval
[400, 400, 400, 200, 400, 400, 400, 400, 405]
--- response_headers eval
["", "", "", "", "", "", "", "", "Allow: GET, HEAD, POST"]
--- response_body eval
['{"error":"bad_keys","reason":"keys[0]: key is empty"}',
 '{"error":"bad_keys","reason":"keys[1]: key is empty"}',
 '{"error":"bad_keys","reason":"more than 3 keys"}',
 '{"results":{"a":null,"b":null,"c":null},"sources":{"a":"none","b":"none","c":"none"}}',
 '{"error":"bad_keys","reason":"keys[0]: key has a malformed %-escape"}',
 '{"error":"bad_keys","reason":"the body has no \"keys\" array"}',
 '{"error":"bad_keys","reason":"keys must be strings"}',
 '{"error":"bad_keys","reason":"\'[\' or \'{\' expected near \'nope\'"}',
 '{"error":"method_not_allowed","reason":"only GET, HEAD and POST are allowed"}']



=== TEST 8: past 16 keys (a hash table tells them apart): duplicates kept once, in first-seen order; keys that need escaping
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_BATCH;
--- config
    location = /batch {
        pred_key $arg_keys;
        pred_snapshot main;
        pred_batch on max=24;
        pred;
    }
--- request eval
my @k = ((map { sprintf 'k%02d', $_ } 1 .. 18), 'a', 'k03', 'x%2Cy', 'a%22b',
         '%C3%A9', 'k18', 'b', 'back%5Cslash', 'a');
my $json = CORE::join ',', map { my $s = $_; $s =~ s/%2C/,/; $s =~ s/%22/\\"/;
                           $s =~ s/%C3%A9/\\u00e9/; $s =~ s/%5C/\\\\/;
                           qq{"$s"} } @k;
["GET /batch?keys=" . CORE::join(',', @k), "POST /batch\n{\"keys\":[$json]}"]
--- response_body eval
my @k = ((map { sprintf 'k%02d', $_ } 1 .. 18), 'a', 'x,y', 'a\"b', "\xc3\xa9",
         'b', 'back\\\\slash');
my %v = (a => '{"s":1}', b => '{"s":2}', 'x,y' => 3);
my $r = CORE::join ',', map { qq{"$_":} . ($v{$_} // 'null') } @k;
my $s = CORE::join ',', map { qq{"$_":"} . ($v{$_} ? 'snapshot' : 'none') . '"' } @k;
[("{\"results\":{$r},\"sources\":{$s}}") x 2]
--- no_error_log
[error]



=== TEST 9: past 16 keys, the limit counts distinct keys
--- config
    location = /batch {
        pred_key $arg_keys;
        pred_batch on max=17;
        pred;
    }
--- request eval
["GET /batch?keys=" . CORE::join(',', map({ "k$_" } 1 .. 17), 'k1', 'k17'),
 "GET /batch?keys=" . CORE::join(',', map({ "k$_" } 1 .. 17), 'k1', 'k18'),
 "POST /batch\n{\"keys\":[" . CORE::join(',', map({ "\"k$_\"" } 1 .. 18)) . "]}"]
--- error_code eval
[200, 400, 400]
--- response_body eval
['{"results":{' . CORE::join(',', map({ "\"k$_\":null" } 1 .. 17))
 . '},"sources":{' . CORE::join(',', map({ "\"k$_\":\"none\"" } 1 .. 17)) . '}}',
 '{"error":"bad_keys","reason":"more than 17 keys"}',
 '{"error":"bad_keys","reason":"more than 17 keys"}']



=== TEST 10: POST bodies of the plain form and any other form answer alike
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_BATCH;
--- config
    location = /batch {
        pred_key $arg_keys;
        pred_snapshot main;
        pred_batch on;
        pred;
    }
--- request eval
["POST /batch\n{\n  \"keys\": [\n    \"a\",\n    \"x,y\"\n  ]\n}\n",
 "POST /batch\n{\"keys\":[\"\\u0061\",\"b\"]}",
 "POST /batch\n{\"keys\":[\"a\"],\"more\":1}",
 "POST /batch\n{\"keys\":[\"a\"],\"keys\":[\"b\"]}",
 "POST /batch\n{\"keys\":[]}",
 "POST /batch\n{\"keys\":[\"a\",]}",
 "POST /batch\n{\"keys\":[\"a\xff\"]}",
 "POST /batch\n{\"keys\":[\"a\"]} x"]
--- error_code eval
[200, 200, 200, 400, 400, 400, 400, 400]
--- response_body eval
['{"results":{"a":{"s":1},"x,y":3},"sources":{"a":"snapshot","x,y":"snapshot"}}',
 '{"results":{"a":{"s":1},"b":{"s":2}},"sources":{"a":"snapshot","b":"snapshot"}}',
 '{"results":{"a":{"s":1}},"sources":{"a":"snapshot"}}',
 '{"error":"bad_keys","reason":"duplicate object key near \'\"keys\"\'"}',
 '{"error":"bad_keys","reason":"no keys"}',
 '{"error":"bad_keys","reason":"unexpected token near \']\'"}',
 '{"error":"bad_keys","reason":"unable to decode byte 0xff near \'\"a\'"}',
 '{"error":"bad_keys","reason":"end of file expected near \'x\'"}']
--- no_error_log
[error]
