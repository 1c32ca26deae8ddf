# Canary releases at scale and under traffic: the candidate's share of
# 20,000 keys is within one percentage point of the target at 1%, 10% and
# 50%, a key that went to the candidate stays there as the share grows, and
# a promote and an abort under steady lookups give no error, each key
# changing versions at most once per step.
#
# Plain Perl against PredNginx's standalone nginx (two workers), the same
# under any Test::Nginx.
use strict;
use warnings;

use lib 't';
use File::Spec ();
use HTTP::Tiny ();
use JSON::PP ();
use Test::More;
use Time::HiRes qw(sleep time);

use PredTest;
use PredNginx;

my $port = free_port();
my $root = File::Spec->rel2abs('t/servroot-canary-traffic');
my $http = HTTP::Tiny->new(timeout => 5);
my $keys = 20000;

my $dir = snap_dir('canary_traffic');
for my $v (1 .. 3) {
    snap_build($dir, "v$v", join '', map { qq{{"key":"k$_","value":$v}\n} }
                                     0 .. $keys - 1);
}
snap_publish($dir, 'v1');

sub get { return $http->get("http://127.0.0.1:$port$_[0]") }

sub loader {
    my ($rc, $out) = PredTest::pred_snapshot(@_);
    is($rc, 0, "pred-snapshot @_") or diag($out);
    return $out;
}

# every worker checks the pointers each 50 ms
sub settle { sleep 0.4 }

# the version each key is answered from, through batch lookups
sub versions {
    my %v;
    for (my $i = 0; $i < $keys; $i += 1000) {
        my @k = map { "k$_" } $i .. $i + 999;
        my $res = $http->post("http://127.0.0.1:$port/b", {
            content => JSON::PP::encode_json({ keys => \@k }),
            headers => { 'Content-Type' => 'application/json' } });
        die "batch: $res->{status} $res->{content}" unless $res->{success};
        my $r = JSON::PP::decode_json($res->{content})->{results};
        $v{$_} = $r->{$_} for @k;
    }
    return \%v;
}

is(nginx_start($root, $port, <<"_EOC_"), 0, 'nginx starts') or BAIL_OUT(log_text());
    pred_snapshot_path main $dir check=50ms;
    server {
        listen 127.0.0.1:$port;
        pred_snapshot main;
        location = /p { pred_key \$arg_id; pred; }
        location = /b { pred_key \$arg_keys; pred_batch on max=1000; pred; }
        location = /metrics { pred_metrics; }
    }
_EOC_

# the share, and stickiness as it grows
my (%routed, $prev);
for my $pct (1, 10, 50) {
    loader('canary', $dir, ($pct == 1 ? ('v2') : ()), $pct);
    settle();
    my $v = versions();
    my @cand = grep { $v->{$_} == 2 } keys %$v;
    my @other = grep { $v->{$_} != 1 && $v->{$_} != 2 } keys %$v;
    is(scalar @other, 0, "$pct%: every key answered by v1 or v2");
    my $share = 100 * @cand / $keys;
    ok(abs($share - $pct) <= 1,
       "$pct%: the candidate answers $share% of $keys keys");
    $routed{$pct} = { map { $_ => 1 } @cand };
    if ($prev) {
        my @lost = grep { !$routed{$pct}{$_} } keys %{ $routed{$prev} };
        is(scalar @lost, 0, "$prev% -> $pct%: no key goes back to live");
    }
    $prev = $pct;
}

my $m = metrics();
is($m->{'pred_snapshot_canary_percent{snapshot="main"}'}, '50',
   'the share in the metrics');
is($m->{'pred_snapshot_info{snapshot="main",version="v2",role="candidate"}'},
   '1', 'the candidate in the metrics');

# steady lookups on 2 connections (each to one worker, as it stays open)
# while STEP runs; returns, per connection, each key's versions in order
sub under_traffic {
    my ($step) = @_;
    my @sample = map { "k" . ($_ * 97 % $keys) } 0 .. 199;
    my @kids;
    for my $c (0, 1) {
        my $file = "$root/traffic.$c";
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            my $h = HTTP::Tiny->new(timeout => 5, keep_alive => 1);
            open my $out, '>', $file or die;
            my $end = time + 2.5;
            my $i = $c;
            while (time < $end) {
                my $k = $sample[$i++ % @sample];
                my $r = $h->get("http://127.0.0.1:$port/p?id=$k");
                print $out "$k $r->{status} "
                    . ($r->{headers}{'x-pred-version'} // '-') . "\n";
            }
            close $out;
            POSIX::_exit(0);
        }
        push @kids, [$pid, $file];
    }
    sleep 1;
    $step->();
    my @seqs;
    for my $kid (@kids) {
        waitpid $kid->[0], 0;
        open my $in, '<', $kid->[1] or die;
        my (%seq, $n, $bad);
        while (<$in>) {
            my ($k, $status, $ver) = split;
            $n++;
            $bad++ if $status != 200;
            push @{ $seq{$k} }, $ver;
        }
        push @seqs, [\%seq, $n, $bad // 0];
    }
    return @seqs;
}

sub changes {
    my ($list) = @_;
    my $c = 0;
    for my $i (1 .. $#$list) { $c++ if $list->[$i] ne $list->[$i - 1] }
    return $c;
}

require POSIX;

for my $step (['promote', sub { loader('promote', $dir) }, 'v1', 'v2'],
              ['abort', sub { loader('abort', $dir) }, 'v3', 'v2'])
{
    my ($name, $run, $from, $to) = @$step;
    if ($name eq 'abort') {
        loader('canary', $dir, 'v3', 50);
        settle();
    }
    my @seqs = under_traffic($run);
    for my $c (0 .. $#seqs) {
        my ($seq, $n, $bad) = @{ $seqs[$c] };
        ok($n > 100, "$name, connection $c: $n lookups");
        is($bad, 0, "$name, connection $c: no non-200");
        my @many = grep { changes($seq->{$_}) > 1 } keys %$seq;
        is(scalar @many, 0,
           "$name, connection $c: no key changes versions twice")
            or diag(join "\n", map { "$_: @{ $seq->{$_} }" }
                                grep { defined } @many[0 .. 2]);
        # the keys of the candidate's share move; the others stay
        my @moved = grep { changes($seq->{$_}) == 1 } keys %$seq;
        my @wrong = grep {
            my $s = $seq->{$_};
            my $cand = $routed{50}{$_};
            $name eq 'promote'
                ? ($cand ? $s->[0] ne 'v2' : ($s->[-1] ne 'v2'))
                : ($cand ? $s->[-1] ne 'v2' : (grep { $_ ne 'v2' } @$s))
        } keys %$seq;
        is(scalar @wrong, 0, "$name, connection $c: each key's versions as "
                             . "its bucket says (" . @moved . " moved)");
    }
}

settle();
my $v = versions();
is(scalar(grep { $v->{$_} != 2 } keys %$v), 0,
   'after the abort, v2 answers every key');

my $log = log_text();
unlike($log, qr/\[(alert|crit|error|emerg)\]/, 'no error in the log');

nginx_stop();

done_testing();
