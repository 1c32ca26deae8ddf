# The content handler: key from pred_key, JSON errors for bad and unknown keys.
use Test::Nginx::Socket 'no_plan';

run_tests();

__DATA__

=== TEST 1: an unknown key is a 404 with a JSON error naming the key
--- config
    location = /predict {
        pred_key $arg_id;
        pred;
    }
--- request
GET /predict?id=user_42
--- error_code: 404
--- response_headers
Content-Type: application/json
Content-Length: 37
--- response_body chomp
{"error":"not_found","key":"user_42"}
--- no_error_log
[error]



=== TEST 2: an empty key is a 400 with a JSON error
--- config
    location = /predict {
        pred_key $arg_id;
        pred;
    }
--- request
GET /predict?id=
--- error_code: 400
--- response_headers
Content-Type: application/json
--- response_body chomp
{"error":"bad_key","reason":"key is empty"}
--- error_log
pred: bad key "": key is empty



=== TEST 3: a missing argument is an empty key
--- config
    location = /predict {
        pred_key $arg_id;
        pred;
    }
--- request
GET /predict?other=1
--- error_code: 400
--- response_body chomp
{"error":"bad_key","reason":"key is empty"}



=== TEST 4: %-escapes are decoded once, and the key is escaped in JSON
--- config
    location = /predict {
        pred_key $arg_id;
        pred;
    }
--- request
GET /predict?id=a%22b%5Cc%2541%C3%A9
--- error_code: 404
--- response_body chomp
{"error":"not_found","key":"a\"b\\c%41é"}



=== TEST 5: a malformed escape is a 400
--- config
    location = /predict {
        pred_key $arg_id;
        pred;
    }
--- request
GET /predict?id=abc%2
--- error_code: 400
--- response_body chomp
{"error":"bad_key","reason":"key has a malformed %-escape"}
--- error_log
pred: bad key "abc%2": key has a malformed %-escape



=== TEST 6: a control byte in the key is a 400
--- config
    location = /predict {
        pred_key $arg_id;
        pred;
    }
--- request
GET /predict?id=a%0Ab
--- error_code: 400
--- response_body chomp
{"error":"bad_key","reason":"key contains a control byte"}



=== TEST 7: a key over 511 bytes is a 400, and 511 bytes is fine
--- config
    location = /predict {
        pred_key $arg_id;
        pred;
    }
--- request eval
["GET /predict?id=" . ("k" x 512), "GET /predict?id=" . ("k" x 511)]
--- error_code eval
[400, 404]
--- response_body eval
['{"error":"bad_key","reason":"key is longer than 511 bytes"}',
 '{"error":"not_found","key":"' . ("k" x 511) . '"}']



=== TEST 8: invalid UTF-8 in a key still gives valid JSON
--- config
    location = /predict {
        pred_key $arg_id;
        pred;
    }
--- request
GET /predict?id=x%FFy
--- error_code: 404
--- response_body chomp
{"error":"not_found","key":"x\ufffdy"}



=== TEST 9: the key can be any complex value, set at server level
--- config
    pred_key "$http_x_tenant:$arg_id";

    location = /predict {
        pred;
    }
--- request
GET /predict?id=7
--- more_headers
X-Tenant: acme
--- error_code: 404
--- response_body chomp
{"error":"not_found","key":"acme:7"}



=== TEST 10: only GET and HEAD are allowed
--- config
    location = /predict {
        pred_key $arg_id;
        pred;
    }
--- request
POST /predict?id=1
hello
--- error_code: 405
--- response_headers
Allow: GET, HEAD
Content-Type: application/json
--- response_body chomp
{"error":"method_not_allowed","reason":"only GET and HEAD are allowed"}



=== TEST 11: HEAD gets the headers of GET and no body
--- config
    location = /predict {
        pred_key $arg_id;
        pred;
    }
--- request
HEAD /predict?id=user_42
--- error_code: 404
--- response_headers
Content-Length: 37
--- response_body chomp



=== TEST 12: a location without pred is untouched
--- config
    pred_key $arg_id;

    location = /predict {
        pred;
    }

    location = /other {
        return 200 "plain\n";
    }
--- request
GET /other?id=1
--- response_body
plain
