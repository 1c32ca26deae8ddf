# What a call holds is given back however it ends.  A request terminated
# while its model call runs is freed by nginx without the call's
# post-subrequest handler, so the request's pool cleanup gives back the
# in-flight gauge, the breaker's probe slot and its place in the queue:
# a client resets its TCP connection, or an HTTP/2 client cancels its
# stream (RST_STREAM); a held request notices at once, as proxy_pass does.
# A worker killed mid-call leaves its calls, queue places and probe to the
# worker that replaces it.  And a model's late answer never undoes an
# operator's override.
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
use POSIX ();
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
    pred_upstream_limit 1 queue=1 timeout=5s;
    server {
        listen 127.0.0.1:$mport;
        access_log $root/logs/model.log;
        location /predict/bad { return 500; }
        location /predict/slow { echo_sleep 0.5; echo -n '{"s":"slow"}'; }
        location /predict/hang { echo_sleep 30; echo -n '{"s":"hang"}'; }
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
        location = /async {
            pred_key \$arg_id;
            pred_upstream /_model timeout=2s;
            pred_miss_mode async;
            pred_fallback 'default={"d":0}';
            pred;
        }
        location = /wait {
            pred_key \$arg_id;
            pred_upstream /_model timeout=10s;
            pred_fallback 'default={"d":0}';
            pred;
        }
        location = /chain {
            pred_key \$arg_id;
            pred_cascade /_model timeout=2s;
            pred_budget 3s;
            pred_fallback 'default={"d":0}';
            pred;
        }
        location /admin/ { pred_admin; }
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

# a client that reads its whole answer and closes its connection at once,
# as a client does that was told "Connection: close"
sub read_and_leave {
    my ($path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)
        or die "connect: $!";
    print $s "GET $path HTTP/1.1\r\nHost: localhost\r\n\r\n";
    my $res = '';
    while (sysread($s, my $buf, 4096)) {
        $res .= $buf;
        last if $res =~ /\r\n\r\n/ && $res =~ /Content-Length: (\d+)/i
                && length($res) - index($res, "\r\n\r\n") - 4 >= $1;
    }
    close $s;
    return $res;
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

# a request in a child process, for what runs beside the test's own
sub bg_get {
    my ($path) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        HTTP::Tiny->new(timeout => 30)->get("http://127.0.0.1:$port$path");
        POSIX::_exit(0);
    }
    return $pid;
}

sub model_log {
    open my $in, '<', "$root/logs/model.log" or return '';
    local $/;
    return <$in> // '';
}

my $r = get('/predict?id=warm');
is($r->{content}, '{"s":1}', 'a plain miss is answered by the model');

# 1. the fallback written at the deadline fails: the request is terminated
reset_request('/predict?id=slow1');
sleep 0.8;
is(metrics()->{pred_upstream_in_flight}, 0,
   'a request whose client reset its connection leaves no call in flight');

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

# 3b. clients that read their answer and leave while a call runs on: the
# call still fills the cache (a miss past its deadline, an async miss)
like(read_and_leave('/predict?id=slowfill'), qr/\{"d":0\}\z/,
     'a miss past its deadline gets the default');
sleep 0.7;    # pred_upstream_limit 1: the late call's slot is free again
like(read_and_leave('/async?id=slowasync'), qr/\{"d":0\}\z/,
     'an async miss gets the default');
sleep 0.8;
is(get('/predict?id=slowfill')->{content}, '{"s":"slow"}',
   'the late call filled the cache after its client left');
is(get('/async?id=slowasync')->{content}, '{"s":"slow"}',
   'the async call filled the cache after its client left');

# 4. a client that goes away while its call waits in the queue: the call
# is never made, and its place is given back
my @kids = (bg_get('/wait?id=slowq1'));
sleep 0.2;
reset_request('/wait?id=slowq2');
waitpid($_, 0) for @kids;
sleep 0.2;
unlike(model_log(), qr/slowq2/, 'a queued call whose client left is not made');
@kids = (bg_get('/wait?id=slowq3'));
sleep 0.1;
$r = get('/wait?id=q4');
is($r->{headers}{'x-pred-source'}, 'upstream',
   'the queue has its places back: a miss at the cap waits for the slot');
waitpid($_, 0) for @kids;

# 5. an override written while a model call for the key runs stays
@kids = (bg_get('/predict?id=slowovr'));
sleep 0.2;
$r = $http->request('PUT', "http://127.0.0.1:$port/admin/slowovr?ttl=1h",
                    { content => '{"override":1}' });
is($r->{status}, 200, 'an override during the model call is stored');
waitpid($_, 0) for @kids;
sleep 0.5;
$r = get('/predict?id=slowovr');
is($r->{content}, '{"override":1}',
   "the model's late answer does not undo the override");
is($r->{headers}{'x-pred-source'}, 'cache', 'which the cache answers');

# 5b. a leader whose client goes away while others wait for its call: the
# first waiter leads in its place, for a model call and for a cascade,
# instead of every waiter falling back at once
for my $path ('/wait?id=slowlead1', '/chain?id=slowlead2') {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port)
        or die "connect: $!";
    print $s "GET $path HTTP/1.1\r\nHost: localhost\r\n\r\n";
    sleep 0.05;
    my $pid = open(my $waiter, '-|') // die "fork: $!";
    if ($pid == 0) {
        # the leader's socket is the parent's to reset
        close $s;
        my $res = HTTP::Tiny->new(timeout => 30)
                      ->get("http://127.0.0.1:$port$path");
        print "$res->{status} $res->{content}";
        POSIX::_exit(0);
    }
    sleep 0.05;
    setsockopt($s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0)) or die $!;
    close $s;
    my $got = do { local $/; <$waiter> };
    close $waiter;
    is($got, '200 {"s":"slow"}', "$path: the waiter of a leader whose "
       . 'client left leads in its place, and the model answers it');
}

my $m = metrics();
is($m->{pred_upstream_in_flight}, 0, 'nothing in flight at the end');
is($m->{pred_upstream_breaker_open}, 0, 'the breaker closed at the end');
unlike(log_text(), qr/\[(?:alert|crit|emerg)\]/, 'no alert in the log');

# 6. workers killed while the breaker's probe runs, then while a call
# waits in the queue: their replacements give back the probe and the
# queue place (queue=1: one place lost would shed the next miss)
for (1 .. 40) { last if metrics()->{pred_upstream_in_flight} == 0; sleep 0.05 }
$r = get('/predict?id=bad');
is($r->{headers}{'x-pred-source'}, 'default', 'the breaker opens again');
sleep 0.3;
@kids = (bg_get('/wait?id=hang1'));
sleep 0.3;
kill 'KILL', workers();
waitpid($_, 0) for @kids;
sleep 1.5;
my @w = workers();
ok(scalar(@w) >= 1, 'the master started new workers');
like(log_text(),
     qr/the breaker's probe of a worker that ended in this slot is released/,
     "a replacement worker released the dead one's probe");
$r = get('/wait?id=good2');
is($r->{headers}{'x-pred-source'}, 'upstream',
   'the next miss probes, and the model answers it');

@kids = (bg_get('/wait?id=hang2'));
sleep 0.2;
push @kids, bg_get('/wait?id=hang3');
sleep 0.2;
kill 'KILL', workers();
waitpid($_, 0) for @kids;
sleep 1.5;
is(metrics()->{pred_upstream_in_flight}, 0, 'nothing in flight after it');
# the workers die one after the other: one may first see its model call,
# served by the other, reset, and open the breaker; a miss closes it (as
# its probe, if open), so the lines below see the queue alone
$r = get('/wait?id=good3');
is($r->{headers}{'x-pred-source'}, 'upstream',
   'a miss after the kill: the model answers it');
@kids = (bg_get('/wait?id=slowq5'));
sleep 0.1;
$r = get('/wait?id=q6');
is($r->{headers}{'x-pred-source'}, 'upstream',
   "the dead workers' queue place is back: a miss at the cap waits")
    or diag(join "\n", log_text() =~ /(upstream for key "q6"[^,]*)/g);
waitpid($_, 0) for @kids;

# the kills are the only alerts
unlike(join('', grep { !/exited on signal 9/ } split /^/m, log_text()),
       qr/\[(?:alert|crit|emerg)\]/, 'no other alert in the log');

nginx_stop();

done_testing();
