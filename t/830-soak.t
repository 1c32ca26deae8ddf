# A mixed-traffic soak: one config with every feature on, two workers,
# six clients for about 15 seconds sending hits, misses, batches, reranked
# lists, cascades, admin writes (single, bulk and merge patches) and purges
# and metrics scrapes, while the model
# slows down, fails (the breaker opens) and comes back, a new version
# is published and rolled back, and a canary version serves a share of
# keys (compared by pred_shadow), grows, is dropped by a publish, comes
# back and is promoted.  Then the invariants: every answer belongs
# to its own key, nothing in flight, the breaker closed, no single-flight
# marker left behind, the metrics equal to the access log's counts, and no
# [alert] or [crit].
#
# Plain Perl against PredNginx's standalone nginx, the same under any
# Test::Nginx.
use strict;
use warnings;

use lib 't';
use File::Spec ();
use HTTP::Tiny ();
use POSIX ();
use Test::More;
use Time::HiRes qw(sleep time);

use PredTest;
use PredNginx;

plan skip_all => 'a load test: not under memcheck'
    if $ENV{TEST_NGINX_USE_VALGRIND};

my $port = free_port();
my $mport = free_port();
my $root = File::Spec->rel2abs('t/servroot-soak');
my $flags = "$root-flags";
my $seconds = $ENV{PRED_SOAK_SECONDS} || 15;

system('rm', '-rf', $flags);
mkdir $flags or die "$flags: $!";

# every value names its key, so that every answer can be matched to it
my $dir = snap_dir('soak');
for my $v (qw(v1 v2 v3)) {
    snap_build($dir, $v, join '', map {
        qq{{"key":"s$_","value":{"k":"s$_","v":"$v","items":[{"id":"a"},{"id":"b"}]}}\n}
    } 0 .. 99);
}
snap_publish($dir, 'v1');

my $conf = <<"_EOC_";
    log_format soak '\$uri \$status \$pred_source \$pred_stage';
    pred_snapshot_path main $dir check=200ms;
    pred_cache_zone zone=hot:4m ttl=2s negative_ttl=1s
                    state=$flags/hot.state state_all=on state_sync=200ms;
    pred_cache_zone zone=cascade:1m ttl=2s;
    pred_upstream_limit 8 queue=16 timeout=100ms;
    pred_upstream_breaker failures=5 cooldown=500ms;
    server {
        listen 127.0.0.1:$mport;
        location ~ ^/predict/(?<key>[^/]+)\$ {
            if (-f $flags/fail) { return 503; }
            if (-f $flags/slow) { rewrite ^ /slow/\$key last; }
            return 200 '{"k":"\$key","m":1}';
        }
        location ~ ^/slow/(?<key>[^/]+)\$ {
            echo_sleep 0.3;
            echo -n '{"k":"\$key","m":1}';
        }
        location = /batch {
            if (-f $flags/fail) { return 503; }
            return 200 '[{"m":2},{"m":2},{"m":2}]';
        }
        location = /rerank { return 200 '["b","a"]'; }
        # the cascade's first stage is sure of keys ending in an even digit
        location ~ ^/cs1/(?<key>[^/]+[02468])\$ {
            if (-f $flags/fail) { return 503; }
            if (-f $flags/slow) { rewrite ^ /slow/\$key last; }
            return 200 '{"k":"\$key","m":1,"sure":true}';
        }
        location ~ ^/cs1/(?<key>[^/]+)\$ {
            if (-f $flags/fail) { return 503; }
            if (-f $flags/slow) { rewrite ^ /slow/\$key last; }
            return 200 '{"k":"\$key","m":1,"sure":false}';
        }
        location ~ ^/cs2/(?<key>[^/]+)\$ {
            if (-f $flags/fail) { return 503; }
            return 200 '{"k":"\$key","m":3}';
        }
    }
    server {
        listen 127.0.0.1:$port;
        access_log $root/logs/soak.log soak;
        pred_cache hot swr=1s;
        pred_snapshot main;
        pred_fallback stale 'default={"d":0}';

        location = /p {
            pred_key \$arg_id;
            pred_upstream /_model timeout=150ms;
            pred_shadow rate=50;
            pred;
        }
        location = /b {
            pred_key \$arg_keys;
            pred_batch on;
            pred_upstream /_batch timeout=150ms;
            pred;
        }
        location = /r {
            pred_key \$arg_id;
            pred_filter on;
            pred_refine /_rerank timeout=50ms;
            pred;
        }
        # its own zone: its answers for snapshot keys are not /r's lists
        location = /c {
            pred_key \$arg_id;
            pred_cache cascade;
            pred_cascade_from_snapshot on exit_if=/v:==:v1;
            pred_cascade /_cs1 timeout=100ms exit_if=/sure:==:true;
            pred_cascade /_cs2 timeout=100ms;
            pred_budget 200ms;
            pred;
        }
        location ~ ^/_(?<stage>cs[12])\$ {
            internal;
            proxy_pass http://127.0.0.1:$mport/\$stage/\$pred_key_escaped;
        }
        location /_model {
            internal;
            proxy_pass http://127.0.0.1:$mport/predict/\$pred_key_escaped;
        }
        location = /_batch {
            internal;
            proxy_method POST;
            proxy_set_body \$pred_keys_json;
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

is(nginx_start($root, $port, $conf), 0, 'nginx starts') or BAIL_OUT(log_text());

# a client: random requests until the deadline, every answer checked
# against its key; prints "bad ..." lines and a count per kind
sub client {
    my ($n, $until) = @_;
    my $http = HTTP::Tiny->new(timeout => 5, keep_alive => 1);
    my (%count, @bad);
    srand($$);

    while (time < $until) {
        my $op = int rand 100;
        my ($path, $method, $body, $check);

        if ($op < 35) {                         # snapshot keys
            my $k = 's' . int rand 100;
            $path = "/p?id=$k";
            $check = sub { $_[0] =~ /\A\{"k":"\Q$k\E"|\A\{"d":0\}\z/
                           || $_[1] >= 400 && $_[0] =~ /"key":"\Q$k\E"/ };
        } elsif ($op < 55) {                    # model keys
            my $k = "m$n-" . int rand 50;
            $path = "/p?id=$k";
            $check = sub { $_[0] =~ /\A\{"k":"\Q$k\E"|\A\{"d":0\}\z/
                           || $_[1] >= 400 && $_[0] =~ /"key":"\Q$k\E"/ };
        } elsif ($op < 65) {                    # cascades: snapshot or not
            my $k = rand() < 0.5 ? 's' . int rand 100 : "x$n-" . int rand 50;
            $path = "/c?id=$k";
            $check = sub { $_[0] =~ /\A\{"k":"\Q$k\E"|\A\{"d":0\}\z/
                           || $_[1] >= 400 && $_[0] =~ /"key":"\Q$k\E"/ };
        } elsif ($op < 75) {                    # batches
            my @k = ('s' . int rand 100, "b$n-" . int rand 30, "c$n-" . int rand 30);
            $path = '/b?keys=' . join ',', @k;
            $check = sub {
                my ($b) = @_;
                return 0 unless $b =~ /\A\{"results":\{(.*)\},"sources":\{(.*)\}\}\z/;
                my ($res, $src) = ($1, $2);
                for my $k (@k) {
                    return 0 unless $res =~ /"\Q$k\E":/ && $src =~ /"\Q$k\E":"/;
                }
                return $res !~ /"(s\d+)":\{"k":"(?!\1")/;
            };
        } elsif ($op < 83) {                    # reranked, shaped lists
            my $k = 's' . int rand 100;
            $path = "/r?id=$k&limit=1";
            $check = sub { $_[0] =~ /\A\{"k":"\Q$k\E".*"items":\[\{"id":"[ab]"\}\]/ };
        } elsif ($op < 93) {                    # admin writes
            my $k = "m$n-" . int rand 50;
            my $w = rand();
            if ($w < 0.15) {                    # a bulk body of three
                my @k = map { "m$n-" . int rand 50 } 1 .. 3;
                ($path, $method, $body) = ('/admin/bulk', 'POST', join '',
                    qq({"key":"$k[0]","value":{"k":"$k[0]","o":2},"ttl":2}\n),
                    qq({"key":"$k[1]","delete":true,"ttl":1}\n),
                    qq({"key":"$k[2]","merge":{"k":"$k[2]","p":1},"ttl":2}\n));
                $check = sub {
                    $_[0] eq '{"applied":3,"upserts":2,"deletes":1}' };
            } elsif ($w < 0.3) {                # a merge patch
                ($path, $method, $body) = ("/admin/$k?ttl=2", 'PATCH',
                                           qq({"k":"$k","p":1}));
                $check = sub { $_[0] eq qq{{"stored":"$k","ttl":2}} };
            } elsif ($w < 0.79) {
                ($path, $method, $body) = ("/admin/$k?ttl=2", 'PUT',
                                           qq{{"k":"$k","o":1}});
                $check = sub { $_[0] eq qq{{"stored":"$k","ttl":2}} };
            } else {
                ($path, $method) = ("/admin/$k?ttl=1", 'DELETE');
                $check = sub { $_[0] eq qq{{"invalidated":"$k","ttl":1}} };
            }
        } elsif ($op < 96) {
            ($path, $method) = ("/admin/purge?prefix=m$n-1", 'POST');
            $check = sub { $_[0] =~ /\A\{"purged":\d+\}\z/ };
        } else {
            $path = '/metrics';
            $check = sub { $_[0] =~ /^pred_upstream_in_flight \d+$/m };
        }

        my $res = $http->request($method // 'GET', "http://127.0.0.1:$port$path",
                                 $body ? { content => $body } : {});
        $count{($path =~ m{^(/[a-z]+)})[0]}++;

        if ($res->{status} == 599 || !$check->($res->{content}, $res->{status})) {
            push @bad, "bad $path: $res->{status} $res->{content}";
        }
    }

    print "$_\n" for @bad;
    print "count $_ $count{$_}\n" for sort keys %count;
}

my $start = time;
my @kids;
for my $n (1 .. 6) {
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        client($n, $start + $seconds);
        POSIX::_exit(0);
    }
    push @kids, $fh;
}

sub loader_step {
    my ($rc, $out) = pred_snapshot(@_);
    is($rc, 0, "$_[0] under traffic") or diag($out);
}

# meanwhile the model slows, fails, comes back; versions come and go
sleep $seconds * 0.1;
loader_step('canary', $dir, 'v3', '30');
sleep $seconds * 0.1;
loader_step('canary', $dir, '60');
open my $f, '>', "$flags/slow" or die; close $f;
sleep $seconds * 0.15;
unlink "$flags/slow";
open $f, '>', "$flags/fail" or die; close $f;
sleep $seconds * 0.15;
unlink "$flags/fail";
my ($rc, $out) = pred_snapshot('publish', $dir, 'v2');
is($rc, 0, 'publish under traffic') or diag($out);
sleep $seconds * 0.15;
($rc, $out) = pred_snapshot('rollback', $dir);
is($rc, 0, 'rollback under traffic') or diag($out);
sleep $seconds * 0.05;
loader_step('canary', $dir, 'v3', '50');
sleep $seconds * 0.1;
loader_step('promote', $dir);

my (@bad, %count);
for my $fh (@kids) {
    while (my $line = <$fh>) {
        chomp $line;
        if ($line =~ /^count (\S+) (\d+)$/) {
            $count{$1} += $2;
        } else {
            push @bad, $line;
        }
    }
    close $fh;
}

my $total = 0;
$total += $_ for values %count;
ok($total > 1000, "the clients sent $total requests ("
   . join(', ', map { "$_ $count{$_}" } sort keys %count) . ')');
is(scalar(@bad), 0, 'every answer belongs to its own key')
    or diag(join "\n", @bad[0 .. ($#bad < 9 ? $#bad : 9)]);

# the model is back: misses probe and close the breaker
my $http = HTTP::Tiny->new(timeout => 5);
sleep 1;
for my $i (1 .. 10) {
    $http->get("http://127.0.0.1:$port/p?id=after$i");
}
sleep 0.5;

my $m = metrics();
is($m->{pred_upstream_in_flight}, 0, 'nothing in flight at the end');
is($m->{pred_upstream_breaker_open}, 0, 'the breaker closed once the model is back');
ok(($m->{pred_upstream_breaker_trips_total} // 0) >= 1,
   'the breaker opened while the model failed');

# no single-flight marker left: a miss for each key the clients used is
# asked at once, never left waiting for a leader that is gone
my $log0 = length log_text();
for my $n (1 .. 6) {
    for my $k (0 .. 49) {
        $http->get("http://127.0.0.1:$port/p?id=m$n-$k");
        $http->get("http://127.0.0.1:$port/c?id=x$n-$k");
    }
}
unlike(substr(log_text(), $log0), qr/timed out waiting for another request/,
       'no request waited for a leader that was gone');

# the metrics count what the access log shows, location by location
sleep 0.3;
$m = metrics();
open my $in, '<', "$root/logs/soak.log" or die;
my %logged;
while (<$in>) {
    my ($uri, $status, $source, $stage) = split;
    next unless $uri =~ m{^/[pbrc]$};
    $logged{$uri}{$source}++;
    $logged{stage}{$stage}++ if $uri eq '/c' && $stage ne '-';
}
close $in;
for my $loc (qw(/p /b /r /c)) {
    my $want = 0;
    $want += $_ for values %{ $logged{$loc} || {} };
    my $got = 0;
    $got += $m->{$_} for grep { /^pred_requests_total\{location="\Q$loc\E",/ }
                         keys %$m;
    # the last metrics scrape itself may not be in the log yet
    ok(abs($got - $want) <= 1, "metrics count $got requests for $loc, the "
       . "log $want");
}

# an answer of stage N came from a cascade in which stage N answered or
# exited (the cascade's waiters answer from the cache, without a stage)
for my $stage (0 .. 2) {
    my $ran = 0;
    $ran += $m->{"pred_cascade_stage_total{location=\"/c\",stage=\"$stage\","
                 . "result=\"$_\"}"} // 0 for qw(answered exited);
    my $sent = $logged{stage}{$stage} // 0;
    ok($sent <= $ran && ($stage == 0 || $sent > 0),
       "$sent answers of stage $stage, $ran stage $stage answers");
}

my $log = log_text();
unlike($log, qr/\[(?:alert|crit|emerg)\]/, 'no alert in the log')
    or diag(join "\n", $log =~ /^(.*\[(?:alert|crit|emerg)\].*)$/mg);
like($log, qr/serving version v2/, 'v2 was served');
like($log, qr/serving version v1 \(100 entries\), was v2/, 'and v1 again');
like($log, qr/candidate version v3 at 60% of keys/, 'the canary grew');
like($log, qr/serving version v3 \(100 entries\), was v1/,
     'the canary was promoted');
ok(($m->{'pred_snapshot_requests_total{snapshot="main",role="candidate"}'}
    // 0) > 0, 'the candidate answered keys');
my $shadowed = 0;
$shadowed += $m->{"pred_shadow_total{snapshot=\"main\",result=\"$_\"}"} // 0
    for qw(same different only_live only_candidate);
ok($shadowed > 0, "pred_shadow compared $shadowed keys");
is($m->{'pred_shadow_total{snapshot="main",result="same"}'} // 0, 0,
   'no two versions gave the same value');
is($m->{'pred_snapshot_canary_percent{snapshot="main"}'}, '0',
   'no candidate after the promote');

nginx_stop();
system('rm', '-rf', $flags);

done_testing();
