# The request path over HTTP/2 (curl --http2-prior-knowledge): snapshot
# hits, misses asked of the model and then cached, the fallback at the
# deadline, batches, reranked lists and the admin API, each with the
# headers it has over HTTP/1.1; then streams reset while their model calls
# run leave nothing behind.
#
# Plain Perl against PredNginx's standalone nginx, the same under any
# Test::Nginx.
use strict;
use warnings;

use lib 't';
use File::Spec ();
use Test::More;
use Time::HiRes qw(sleep);

use PredTest;
use PredNginx;

plan skip_all => 'curl has no HTTP/2'
    unless `curl --version 2>/dev/null` =~ /\bHTTP2\b/;

my $port = free_port();
my $mport = free_port();
my $root = File::Spec->rel2abs('t/servroot-http2');

my $dir = snap_dir('http2');
snap_build($dir, 'h1', qq{{"key":"a","value":{"items":[{"id":"x"},{"id":"y"}]}}\n});
snap_publish($dir, 'h1');

is(nginx_start($root, $port, <<"_EOC_"), 0, 'nginx starts') or BAIL_OUT(log_text());
    pred_snapshot_path main $dir;
    pred_cache_zone zone=hot:1m;
    server {
        listen 127.0.0.1:$mport;
        location /predict/slow { echo_sleep 0.5; echo -n '{"late":1}'; }
        location /predict/ { return 200 '{"m":1}'; }
        location = /batch { return 200 '[{"m":2}]'; }
        location = /rerank { return 200 '["y","x"]'; }
    }
    server {
        listen 127.0.0.1:$port http2;
        pred_cache hot;
        pred_snapshot main;
        pred_fallback 'default={"d":0}';
        location = /p {
            pred_key \$arg_id;
            pred_upstream /_model timeout=100ms;
            pred;
        }
        location = /b {
            pred_key \$arg_keys;
            pred_batch on;
            pred_upstream /_batch;
            pred;
        }
        location = /r {
            pred_key \$arg_id;
            pred_refine /_rerank timeout=1s;
            pred;
        }
        location /_model {
            internal;
            proxy_pass http://127.0.0.1:$mport/predict/\$pred_key_escaped;
        }
        location = /_batch {
            internal;
            proxy_pass http://127.0.0.1:$mport/batch;
        }
        location = /_rerank {
            internal;
            proxy_pass http://127.0.0.1:$mport/rerank;
        }
        location /admin/ { pred_admin; }
        location = /metrics { pred_metrics; }
    }
_EOC_

# one request over HTTP/2: (status, lower-cased headers, body)
sub h2 {
    my ($path, @opt) = @_;
    my $opts = join ' ', map { "'$_'" } @opt;
    my $out = `curl -s -i --http2-prior-knowledge --max-time 5 $opts 'http://127.0.0.1:$port$path'`;
    my ($head, $body) = split /\r\n\r\n/, $out, 2;
    my ($status) = $head =~ m{^HTTP/2 (\d+)};
    my @kv = $head =~ /^([\w-]+): ([^\r\n]*)/mg;
    my %h;
    while (my ($k, $v) = splice @kv, 0, 2) {
        $h{lc $k} = $v;
    }
    return ($status // 0, \%h, $body // '');
}

my ($s, $h, $b) = h2('/p?id=a');
is($s, 200, 'a snapshot hit over HTTP/2');
is($h->{'x-pred-source'}, 'snapshot', 'X-Pred-Source: snapshot');
is($h->{'x-pred-version'}, 'h1', 'X-Pred-Version');
is($b, '{"items":[{"id":"x"},{"id":"y"}]}', 'the value');

($s, $h, $b) = h2('/p?id=m1');
is($h->{'x-pred-source'}, 'upstream', 'a miss goes to the model');
is($b, '{"m":1}', "the model's answer");
($s, $h, $b) = h2('/p?id=m1');
is($h->{'x-pred-source'}, 'cache', 'then comes from the cache');

($s, $h, $b) = h2('/p?id=slow1');
is($h->{'x-pred-source'}, 'default', 'the fallback at the deadline');
is($b, '{"d":0}', 'is the default');

($s, $h, $b) = h2('/b?keys=a,n1');
is($b, '{"results":{"a":{"items":[{"id":"x"},{"id":"y"}]},"n1":{"m":2}},'
       . '"sources":{"a":"snapshot","n1":"upstream"}}', 'a batch');

($s, $h, $b) = h2('/r?id=a');
is($h->{'x-pred-refined'}, '1', 'a reranked list');
is($b, '{"items":[{"id":"y"},{"id":"x"}]}', 'in the reranker\'s order');

($s, $h, $b) = h2('/admin/k', '-X', 'PUT', '--data-binary', '{"o":1}');
is($b, '{"stored":"k","ttl":600}', 'an admin write');
($s, $h, $b) = h2('/p?id=k');
is($b, '{"o":1}', 'is served');

($s, $h, $b) = h2('/p?id=bad%00');
is($s, 400, 'a bad key is a 400 over HTTP/2 too');

# streams cancelled while their model calls run: curl gives up on them
for my $i (1 .. 5) {
    system("curl -s --http2-prior-knowledge --max-time 0.05 "
           . "'http://127.0.0.1:$port/p?id=slowcut$i' >/dev/null 2>&1");
}
sleep 1;
my $m = metrics_h2();
is($m->{pred_upstream_in_flight}, 0, 'cut streams leave nothing in flight');
unlike(log_text(), qr/\[(?:alert|crit|emerg)\]/, 'no alert in the log');

nginx_stop();

# the metrics over HTTP/2 (PredNginx's helper speaks HTTP/1.1)
sub metrics_h2 {
    my (undef, undef, $text) = h2('/metrics');
    my %m;
    for (split /\n/, $text) {
        next if /^#/;
        $m{$1} = $2 if /^(\S+) (\S+)$/;
    }
    return \%m;
}

done_testing();
