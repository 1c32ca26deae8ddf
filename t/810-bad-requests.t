# A corpus of bad requests against a live nginx (master, two workers):
# over-long URIs and keys, bad % escapes, invalid UTF-8, control bytes, huge
# and malformed JSON bodies to the batch and admin endpoints, headers with
# odd bytes.  Every answer must be a clean 4xx (a JSON error body when the
# module answers), no worker may die, and nothing may be logged above
# [error].
use strict;
use warnings;
use lib 't';
use PredTest;
use PredNginx;
use Test::More;
use File::Spec;
use IO::Socket::INET;
use JSON::PP ();
use Time::HiRes qw(time);

my $root = File::Spec->rel2abs('t/servroot-bad');
my ($port, $mport) = (free_port(), free_port());

my $snap = snap_dir('bad');
snap_build($snap, 'v1', qq{{"key":"a","value":{"items":[{"id":"x","score":1}]}}\n});
snap_publish($snap, 'v1');

my $conf = <<"_EOC_";
    pred_cache_zone zone=hot:1m;
    pred_snapshot_path main $snap;

    server {
        listen 127.0.0.1:$mport;
        location / { return 200 '[{"k":1},null]'; }
    }

    server {
        listen 127.0.0.1:$port;
        client_max_body_size 64k;
        client_body_timeout 1s;

        location = /predict {
            pred_key \$arg_id;
            pred_cache hot;
            pred_snapshot main;
            pred_filter on;
            pred;
        }
        location = /batch {
            pred_key \$arg_keys;
            pred_batch on max=10;
            pred_cache hot;
            pred_snapshot main;
            pred_upstream /_batch timeout=500ms;
            pred;
        }
        location = /_batch {
            internal;
            proxy_method POST;
            proxy_set_body '{"keys":\$pred_keys_json}';
            proxy_pass http://127.0.0.1:$mport/;
        }
        location /admin/ {
            pred_cache hot;
            pred_snapshot main;
            pred_admin max_body=8k;
        }
        location = /metrics { pred_metrics; }
    }
_EOC_

is(nginx_start($root, $port, $conf), 0, 'nginx starts')
    or BAIL_OUT(log_text());
my @w0 = workers();

sub raw {
    my ($req) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Timeout => 5) or die "connect: $!";
    binmode $s;
    my $t0 = time;
    print $s $req;
    my $resp = '';
    while (1) {
        my $n = sysread($s, my $buf, 65536);
        last if !$n;
        $resp .= $buf;
        last if time - $t0 > 5;
    }
    close $s;
    return $resp;
}

sub req {
    my ($method, $uri, %o) = @_;
    my $body = $o{body} // '';
    my $h = $o{headers} // '';
    my $len = length $body || $method =~ /^(?:POST|PUT)$/
              ? "Content-Length: " . length($body) . "\r\n" : '';
    return "$method $uri HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
           . "$h$len\r\n$body";
}

my $json = JSON::PP->new->allow_nonref;
my $n = 0;

# one case: answered at once with the status expected (a 4xx but for the
# harmless oddities), and a JSON body from the module parses and says why
sub bad {
    my ($name, $req, $want, $body_like) = @_;
    my $t0 = time;
    my $resp = raw($req);
    my $took = time - $t0;
    my ($status) = $resp =~ m{^HTTP/1\.1 (\d{3}) };
    my ($head, $body) = split /\r\n\r\n/, $resp, 2;
    $n++;

    cmp_ok($took, '<', $ENV{TEST_NGINX_USE_VALGRIND} ? 10 : 2,
           "$name: answered in time");

    if (!defined $status && $want eq 'closed') {
        is($resp, '', "$name: the connection is closed, nothing sent");
        return;
    }

    if (!defined $status) {
        fail("$name: an HTTP answer");
        diag(substr($resp, 0, 200));
        return;
    }

    is($status, $want, "$name: $want");

    if ($status >= 400 && ($head // '') =~ m{^Content-Type: application/json}mi) {
        my $doc = eval { $json->decode($body) };
        ok($doc && ref $doc eq 'HASH' && defined $doc->{error},
           "$name: a JSON error body") or diag($body);
    }

    like($body // '', $body_like, "$name: body") if $body_like;
}

my $long = 'k' x 512;
my $huge = 'k' x 100000;

# keys
bad('key of 512 bytes', req(GET => "/predict?id=$long"), 400,
    qr/"error":"bad_key"/);
bad('key of 512 escaped bytes',
    req(GET => '/predict?id=' . ('%41' x 512)), 400,
    qr/"reason":"key is longer than 511 bytes"/);
bad('URI of 100 KB', req(GET => "/predict?id=$huge"), 414);
bad('empty key', req(GET => '/predict?id='), 400);
bad('no key', req(GET => '/predict'), 400);
bad('lone %', req(GET => '/predict?id=%'), 400, qr/bad_key/);
bad('short %4', req(GET => '/predict?id=%4'), 400, qr/bad_key/);
bad('%zz', req(GET => '/predict?id=%zz'), 400, qr/bad_key/);
bad('%00', req(GET => '/predict?id=a%00b'), 400, qr/bad_key/);
bad('%0a', req(GET => '/predict?id=a%0Ab'), 400, qr/bad_key/);
bad('%7f', req(GET => '/predict?id=%7f'), 400, qr/bad_key/);
bad('invalid UTF-8 %ff%fe', req(GET => '/predict?id=%ff%fe'), 404,
    qr/"error":"not_found"/);
bad('overlong UTF-8 %c0%af', req(GET => '/predict?id=%c0%af'), 404);
bad('raw high bytes', req(GET => "/predict?id=\xff\xfe\x80"), 404);
bad('quote and backslash', req(GET => '/predict?id=%22%5C%22'), 404,
    qr/"key":"\\"\\\\\\""/);
bad('raw control byte in the URI', req(GET => "/predict?id=a\x01b"), 400);
bad('raw space in the URI', req(GET => "/predict?id=a b"), 400);

# shaping arguments
bad('where without a value', req(GET => '/predict?id=a&where=x'), 400,
    qr/"reason":"where: /);
bad('where with %zz', req(GET => '/predict?id=a&where=x:%zz'), 400);
bad('fields with a quote', req(GET => '/predict?id=a&fields=%22'), 400);
bad('limit of 40 digits', req(GET => '/predict?id=a&limit=' . '9' x 40),
    400);
bad('min_score nan', req(GET => '/predict?id=a&min_score=nan'), 400);
bad('33 where conditions',
    req(GET => '/predict?id=a&where=' . join(',', map { "f$_:v" } 1 .. 33)),
    400);

# batch GET
bad('11 keys, max 10',
    req(GET => '/batch?keys=' . join(',', map { "k$_" } 1 .. 11)), 400,
    qr/more than 10 keys/);
bad('an empty key in the list', req(GET => '/batch?keys=a,,b'), 400,
    qr/bad_keys/);
bad('a bad escape in the list', req(GET => '/batch?keys=a,%zz'), 400);
bad('a key of 512 bytes in the list', req(GET => "/batch?keys=a,$long"),
    400);

# batch POST
my %post = (
    'not JSON'             => '{"keys":[',
    'not an object'        => '["a","b"]',
    'keys not an array'    => '{"keys":"a"}',
    'a key not a string'   => '{"keys":["a",1]}',
    'no keys member'       => '{"k":["a"]}',
    'NaN'                  => '{"keys":[NaN]}',
    'invalid UTF-8'        => qq({"keys":["\xff\xfe"]}),
    'bad escape'           => '{"keys":["\\x41"]}',
    'lone surrogate'       => '{"keys":["\\ud800"]}',
    'nested 10000 deep'    => '{"keys":' . ('[' x 10000) . (']' x 10000) . '}',
    'trailing garbage'     => '{"keys":["a"]} x',
    'empty body'           => '',
    'a key with NUL'       => '{"keys":["a\\u0000b"]}',
    '11 keys'              => '{"keys":[' . join(',', map { "\"k$_\"" } 1 .. 11)
                              . ']}',
);
for my $name (sort keys %post) {
    bad("batch POST: $name",
        req(POST => '/batch', body => $post{$name},
            headers => "Content-Type: application/json\r\n"), 400);
}
bad('batch POST over client_max_body_size',
    req(POST => '/batch', body => '{"keys":["' . ('a' x 70000) . '"]}'), 413);
# nginx closes at client_body_timeout without an answer, as it does for 408
bad('batch POST with a Content-Length longer than the body',
    "POST /batch HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    . "Content-Length: 10\r\n\r\n{\"keys\":[", 'closed');

# admin
bad('admin PUT: not JSON', req(PUT => '/admin/k', body => '{oops'), 400);
bad('admin PUT: NaN', req(PUT => '/admin/k', body => 'NaN'), 400);
bad('admin PUT: empty body', req(PUT => '/admin/k', body => ''), 400);
bad('admin PUT: nested 3000 deep',
    req(PUT => '/admin/k', body => ('[' x 3000) . (']' x 3000)), 400);
bad('admin PUT: over max_body',
    req(PUT => '/admin/k', body => '"' . ('a' x 9000) . '"'), 413);
bad('admin PUT: key of 512 bytes', req(PUT => "/admin/$long", body => '1'),
    400);
bad('admin PUT: bad escape', req(PUT => '/admin/a%zz', body => '1'), 400);
bad('admin PUT: bad ttl', req(PUT => '/admin/k?ttl=soon', body => '1'), 400);
bad('admin DELETE: control byte', req(DELETE => '/admin/a%01'), 400);
bad('admin: unknown method', req(COPY => '/admin/k', body => '1'), 405);
bad('admin PATCH: not an object', req(PATCH => '/admin/k', body => '1'),
    400);
bad('admin POST: not a call', req(POST => '/admin/nothing', body => ''),
    405);

# headers: nginx refuses what HTTP forbids; odd bytes it lets through in
# headers the module never reads change nothing
bad('header with a NUL',
    req(GET => '/predict?id=a', headers => "X-Odd: a\x00b\r\n"), 400);
bad('header with control and high bytes',
    req(GET => '/predict?id=a', headers => "X-Odd: \x01\x02\x7f\xff\r\n"),
    200, qr/\A\{"items":\[\{"id":"x","score":1\}\]\}\z/);
bad('header name with a space',
    req(GET => '/predict?id=a', headers => "X Odd: 1\r\n"), 400);
bad('header of 100 KB',
    req(GET => '/predict?id=a', headers => "X-Big: $huge\r\n"), 400);
bad('garbage request line', "\x16\x03\x01\x02\x00\x01\r\n\r\n", 400);
bad('HTTP/1.1 without Host',
    "GET /predict?id=a HTTP/1.1\r\nConnection: close\r\n\r\n", 400);
bad('two Content-Length headers',
    "POST /batch HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
    . "Content-Length: 3\r\nConnection: close\r\n\r\n{}", 400);

# the server is unharmed: the same workers answer a good request
my $ok = raw(req(GET => '/predict?id=a'));
like($ok, qr{^HTTP/1\.1 200 .*\r\n\r\n\{"items":\[\{"id":"x","score":1\}\]\}\z}s,
     "after $n bad requests a good one is answered");
is_deeply([workers()], \@w0, 'no worker died');

nginx_stop();

my @bad = grep { /\[(?:crit|alert|emerg)\]/ || /exited on signal/ }
          split /\n/, log_text();
is(scalar @bad, 0, 'nothing logged above [error]') or diag(join "\n", @bad);

if ($ENV{TEST_NGINX_USE_VALGRIND}) {
    my @vg = valgrind_problems();
    is(scalar @vg, 0, 'no valgrind errors') or diag(join "\n", @vg);
}

done_testing();
