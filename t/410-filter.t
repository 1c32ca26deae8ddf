# Request-time shaping of candidate lists: where, exclude, min_score, limit,
# fields; bad arguments; values of another shape.
use lib 't';
use PredTest;
use Test::Nginx::Socket 'no_plan';

my $items = '{"user":"u1","items":['
  . '{"id":"b1","score":0.91,"category":"books","title":"A"},'
  . '{"id":"m1","score":0.85,"category":"music","title":"B"},'
  . '{"id":"b2","score":0.40,"category":"books","title":"C"},'
  . '{"id":"b3","score":0.75, "category":"books","title":"D"}],"v":2}';

my $dir = snap_dir('filter');
snap_build($dir, 'f1', qq{{"key":"u1","value":$items}\n}
                       . qq{{"key":"flat","value":{"score":1}}\n}
                       . qq{{"key":"odd","value":{"items":[1,2]}}\n});
snap_publish($dir, 'f1');

run_tests();

__DATA__

=== TEST 1: without shaping arguments the value is sent as stored
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_FILTER;
--- config
    location = /reco {
        pred_key $arg_user;
        pred_snapshot main;
        pred_filter on;
        pred;
    }
--- request
GET /reco?user=u1
--- response_body chomp
{"user":"u1","items":[{"id":"b1","score":0.91,"category":"books","title":"A"},{"id":"m1","score":0.85,"category":"music","title":"B"},{"id":"b2","score":0.40,"category":"books","title":"C"},{"id":"b3","score":0.75,"category":"books","title":"D"}],"v":2}



=== TEST 2: where, exclude, min_score, limit and fields, alone and together
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_FILTER;
--- config
    location = /reco {
        pred_key $arg_user;
        pred_snapshot main;
        pred_filter on;
        pred;
    }
--- request eval
["GET /reco?user=u1&where=category:books&fields=id",
 "GET /reco?user=u1&exclude=b1,m1&fields=id,score",
 "GET /reco?user=u1&min_score=0.75&fields=id",
 "GET /reco?user=u1&limit=2&fields=title,id",
 "GET /reco?user=u1&where=category:books&exclude=b3&min_score=0.3&limit=1&fields=id,score",
 "GET /reco?user=u1&where=category:books&where=title:D&fields=id",
 "GET /reco?user=u1&where=category:books,title:C&fields=id",
 "GET /reco?user=u1&where=category:games",
 "GET /reco?user=u1&limit=1&fields=id,id,id,score,id"]
--- response_body eval
['{"user":"u1","items":[{"id":"b1"},{"id":"b2"},{"id":"b3"}],"v":2}',
 '{"user":"u1","items":[{"id":"b2","score":0.40},{"id":"b3","score":0.75}],"v":2}',
 '{"user":"u1","items":[{"id":"b1"},{"id":"m1"},{"id":"b3"}],"v":2}',
 '{"user":"u1","items":[{"title":"A","id":"b1"},{"title":"B","id":"m1"}],"v":2}',
 '{"user":"u1","items":[{"id":"b1","score":0.91}],"v":2}',
 '{"user":"u1","items":[{"id":"b3"}],"v":2}',
 '{"user":"u1","items":[{"id":"b2"}],"v":2}',
 '{"user":"u1","items":[],"v":2}',
 '{"user":"u1","items":[{"id":"b1","score":0.91}],"v":2}']
--- no_error_log
[warn]
[error]



=== TEST 3: argument names and the list fields are configurable
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_FILTER;
--- config
    location = /reco {
        pred_key $arg_user;
        pred_snapshot main;
        pred_filter on;
        pred_filter_args limit=n fields=f;
        pred_filter_fields id score;
        pred;
    }
--- request eval
["GET /reco?user=u1&n=1&f=score",
 "GET /reco?user=u1&f=title",
 "GET /reco?user=u1&limit=1"]
--- error_code eval
[200, 400, 200]
--- response_body eval
['{"user":"u1","items":[{"score":0.91}],"v":2}',
 '{"error":"bad_argument","reason":"f: unknown field"}',
 '{"user":"u1","items":[{"id":"b1","score":0.91,"category":"books","title":"A"},{"id":"m1","score":0.85,"category":"music","title":"B"},{"id":"b2","score":0.40,"category":"books","title":"C"},{"id":"b3","score":0.75,"category":"books","title":"D"}],"v":2}']



=== TEST 4: bad shaping arguments are 400 naming the argument
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_FILTER;
--- config
    location = /reco {
        pred_key $arg_user;
        pred_snapshot main;
        pred_filter on;
        pred;
    }
--- request eval
["GET /reco?user=u1&limit=ten", "GET /reco?user=u1&limit=-1",
 "GET /reco?user=u1&min_score=high", "GET /reco?user=u1&where=books",
 "GET /reco?user=u1&fields=id,,score", "GET /reco?user=u1&fields=a%22b",
 "GET /reco?user=u1&exclude=", "GET /reco?user=u1&where=category:b%zzks",
 "GET /reco?user=u1&exclude=b1%2", "GET /reco?user=u1&limit=10000000000"]
--- error_code eval
[400, 400, 400, 400, 400, 400, 400, 400, 400, 400]
--- response_body eval
['{"error":"bad_argument","reason":"limit: not a whole number"}',
 '{"error":"bad_argument","reason":"limit: not a whole number"}',
 '{"error":"bad_argument","reason":"min_score: not a number"}',
 '{"error":"bad_argument","reason":"where: use FIELD:VALUE, at most 32"}',
 '{"error":"bad_argument","reason":"fields: use a comma-separated list, at most 32"}',
 '{"error":"bad_argument","reason":"fields: field names are 1 to 64 of A-Z a-z 0-9 _ . -"}',
 '{"error":"bad_argument","reason":"exclude: use a comma-separated list, at most 32"}',
 '{"error":"bad_argument","reason":"where: bad % escape"}',
 '{"error":"bad_argument","reason":"exclude: bad % escape"}',
 '{"error":"bad_argument","reason":"limit: not a whole number"}']



=== TEST 5: values of another shape are served unfiltered, with a warning
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_FILTER;
--- config
    location = /reco {
        pred_key $arg_user;
        pred_snapshot main;
        pred_filter on;
        pred;
    }
--- request eval
["GET /reco?user=flat&limit=1", "GET /reco?user=odd&limit=1"]
--- response_body eval
['{"score":1}', '{"items":[1,2]}']
--- error_log
pred: value has no "items" list of objects to shape; served unfiltered



=== TEST 6: without pred_filter the arguments are ignored
--- http_config
    pred_snapshot_path main $TEST_NGINX_SNAP_FILTER;
--- config
    location = /reco {
        pred_key $arg_user;
        pred_snapshot main;
        pred;
    }
--- request
GET /reco?user=flat&limit=ten
--- response_body chomp
{"score":1}
