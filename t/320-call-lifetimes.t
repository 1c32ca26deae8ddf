# A request terminated while its model call runs: nginx frees it without
# running the call's post-subrequest handler, so what the call holds (the
# in-flight gauge, the breaker's probe slot) must be given back by the
# request's pool cleanup.  Two ways a client makes that happen: it resets
# its TCP connection, so writing the fallback at the deadline fails, and an
# HTTP/2 client cancels its stream (RST_STREAM).
#
# Plain Perl against PredNginx's standalone nginx (raw sockets), the same
# under any Test::Nginx.
use strict;
use warnings;

use lib 't';
use File::Spec ();
use HTTP::Tiny ();
use IO::Socket::INET ();
use Socket qw(SOL_SOCKET SO_LINGER);
use Test::More;
use Time::HiRes qw(sleep);

use PredTest;
use PredNginx;

my $port = free_port();
my $h2port = free_port();
my $mport = free_port();
my $root = File::Spec->rel2abs('t/servroot-lifetimes');
my $http = HTTP::Tiny->new(timeout => 5);

nginx_start($root, $port, <<"_EOC_") == 0 or BAIL_OUT('nginx did not start');
    pred_cache_zone zone=hot:1m;
    pred_upstream_breaker failures=1 cooldown=200ms;
    server {
        listen 127.0.0.1:$mport;
        location /predict/bad { return 500; }
        location /predict/slow { echo_sleep 0.5; echo -n '{"s":"slow"}'; }
        location /predict/ { return 200 '{"s":1}'; }
    }
    server {
        listen 127.0.0.1:$port;
        listen 127.0.0.1:$h2port http2;
        pred_cache hot;
        location = /predict {
            pred_key \$arg_id;
            pred_upstream /_model timeout=100ms;
            pred_fallback 'default={"d":0}';
            pred;
        }
        location /_model {
            internal;
            proxy_pass http://127.0.0.1:$mport/predict/\$pred_key_escaped;
        }
        location = /metrics { pred_metrics; }
    }
_EOC_

# sends the request, waits until nginx waits for the model, then resets
# the connection: the fallback written at the deadline meets the reset
sub reset_request {
    my ($path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)
        or die "connect: $!";
    print $s "GET $path HTTP/1.1\r\nHost: localhost\r\n\r\n";
    sleep 0.03;
    setsockopt($s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0)) or die $!;
    close $s;
}

sub h2_frame {
    my ($type, $flags, $stream, $payload) = @_;
    my $len = length $payload;
    return pack('CnCCN', $len >> 16, $len & 0xffff, $type, $flags, $stream)
           . $payload;
}

# an HTTP/2 request on stream 1, cancelled with RST_STREAM while nginx
# waits for the model; the connection stays open past the call
sub h2_cancel {
    my ($path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $h2port) or die "connect: $!";
    # HPACK: GET, http, :path and :authority as literals without indexing
    my $block = "\x82\x86" . "\x04" . chr(length $path) . $path
                . "\x01\x09localhost";
    print $s "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
             . h2_frame(4, 0, 0, '')
             . h2_frame(1, 0x5, 1, $block);
    sleep 0.03;
    print $s h2_frame(3, 0, 1, pack('N', 8));     # CANCEL
    sleep 0.8;
    close $s;
}

sub get {
    my ($path) = @_;
    return $http->get("http://127.0.0.1:$port$path");
}

my $r = get('/predict?id=warm');
is($r->{content}, '{"s":1}', 'a plain miss is answered by the model');

# 1. the fallback written at the deadline fails: the request is terminated
reset_request('/predict?id=slow1');
sleep 0.8;
is(metrics()->{pred_upstream_in_flight}, 0,
   'a request terminated at its deadline leaves no call in flight');

# 2. an HTTP/2 stream cancelled while its call runs
h2_cancel('/predict?id=slow2');
like(log_text(), qr/client canceled stream 1/, 'nginx saw the RST_STREAM');
is(metrics()->{pred_upstream_in_flight}, 0,
   'a cancelled HTTP/2 stream leaves no call in flight');

# 3. the breaker's probe is a request that is terminated: the next one probes
$r = get('/predict?id=bad');
is($r->{headers}{'x-pred-source'}, 'default', 'a failed call answers the '
   . 'default');
is(metrics()->{pred_upstream_breaker_open}, 1, 'and opens the breaker');
sleep 0.3;
reset_request('/predict?id=slow3');
sleep 0.8;
$r = get('/predict?id=good');
is($r->{headers}{'x-pred-source'}, 'upstream',
   'the probe slot of a terminated request is free: the next miss probes')
    or diag(log_text() =~ /(circuit[^\n]*)/g);
is($r->{content}, '{"s":1}', 'and the model answers it');
like(log_text(), qr/circuit breaker closed: the probe for key "good" succeeded/,
     'which closes the breaker');

my $m = metrics();
is($m->{pred_upstream_in_flight}, 0, 'nothing in flight at the end');
is($m->{pred_upstream_breaker_open}, 0, 'the breaker closed at the end');
unlike(log_text(), qr/\[(?:alert|crit|emerg)\]/, 'no alert in the log');

nginx_stop();

done_testing();
