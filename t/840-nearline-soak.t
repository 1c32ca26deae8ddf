# Nearline updates against a model of the expected state, and across a
# warm restart (state=): rounds of bulk
# writes (upserts, deletions, merge patches) and PATCHes, with delta
# snapshots, compactions and new base versions published between them,
# each built as of a second after the writes it supersedes.  After every
# round, every key's answer must equal what the model says: the newest
# admin write, unless a batch version or a delta that changes the key is
# as of later, else the deltas newest first, then the base.  Two workers
# share the zone; at the end the error log has no [error], [crit] or
# [alert].
#
# Plain Perl against PredNginx's standalone nginx, the same under any
# Test::Nginx.
use strict;
use warnings;

use lib 't';
use File::Spec ();
use HTTP::Tiny ();
use Test::More;
use Time::HiRes qw(sleep time);

use PredTest;
use PredNginx;

plan skip_all => 'a timing-bound soak: not under memcheck'
    if $ENV{TEST_NGINX_USE_VALGRIND};

my $port = free_port();
my $root = File::Spec->rel2abs('t/servroot-nearline');
my $http = HTTP::Tiny->new(timeout => 10, keep_alive => 1);
my $rounds = $ENV{PRED_NEARLINE_ROUNDS} || 24;
my @keys = map { sprintf 'k%03d', $_ } 0 .. 149;

srand($ENV{PRED_NEARLINE_SEED} || 18);

my $dir = snap_dir('nearline');
my $in = snap_dir('nearline_input');
my $state = snap_dir('nearline_state');

sub val { my ($k, $s) = @_; return qq{{"k":"$k","s":"$s"}} }

# --- the model
my %base;           # key -> value text
my $base_asof;      # the live base's as-of time
my $base_version;
my %key_asof;       # a compacted base's later as-of times, per key
my @deltas;         # { asof => T, changes => { key -> value or undef } }
my %admin;          # key -> { val => text or undef (tombstone), t => S }

sub superseded {
    my ($k) = @_;
    my $t = $admin{$k}{t};
    return 1 if $t < $base_asof || $t < ($key_asof{$k} // 0);
    for my $d (reverse @deltas) {
        next unless exists $d->{changes}{$k};
        return $t < $d->{asof};
    }
    return 0;
}

sub batch_value {
    my ($k) = @_;
    for my $d (reverse @deltas) {
        return $d->{changes}{$k} if exists $d->{changes}{$k};
    }
    return $base{$k};
}

# what a GET answers: undef for a 404
sub expect {
    my ($k) = @_;
    return $admin{$k}{val} if $admin{$k} && !superseded($k);
    return batch_value($k);
}

# RFC 7386 of {"m":N} over the current value, as the module writes it
sub merged {
    my ($k, $m) = @_;
    my $cur = ($admin{$k} && !superseded($k)) ? $admin{$k}{val}
                                              : batch_value($k);
    $cur //= '{}';
    return $cur =~ s/"m":\d+/"m":$m/r if $cur =~ /"m":\d+/;
    return $cur eq '{}' ? qq({"m":$m}) : ($cur =~ s/\}\z/,"m":$m}/r);
}

# --- nginx
my $started = nginx_start($root, $port, <<"_EOC_");
    pred_cache_zone zone=hot:4m ttl=1h state=$state/hot.state
                    state_sync=200ms;
    pred_snapshot_path main $dir check=50ms;
    server {
        listen 127.0.0.1:$port;
        pred_cache hot;
        pred_snapshot main;
        location = /p { pred_key \$arg_id; pred; }
        location /admin/ { pred_admin; }
        location = /metrics { pred_metrics; }
    }
_EOC_
is($started, 0, 'nginx starts') or BAIL_OUT(log_text());

sub loader {
    my ($rc, $out) = PredTest::pred_snapshot(@_);
    die "pred-snapshot @_: $out" if $rc != 0;
    return $out;
}

my $builds = 0;

sub build_base {
    my ($asof) = @_;
    my $v = 'b' . ++$builds;
    my %new = map { $_ => val($_, $v) } grep { rand() > 0.1 } @keys;
    write_file("$in/$v.jsonl",
               join '', map { qq({"key":"$_","value":$new{$_}}\n) }
                        sort keys %new);
    loader('build', $dir, '--quiet', '--version', $v, '--as-of', $asof,
           '--input', "$in/$v.jsonl");
    loader('publish', $dir, $v);
    %base = %new;
    ($base_asof, $base_version) = ($asof, $v);
    %key_asof = ();
    @deltas = ();
}

sub build_delta {
    my ($asof) = @_;
    my $v = 'd' . ++$builds;
    my %changes;
    for (1 .. 20) {
        my $k = $keys[rand @keys];
        $changes{$k} = rand() < 0.7 ? val($k, $v) : undef;
    }
    write_file("$in/$v.jsonl", join '', map {
        defined $changes{$_} ? qq({"key":"$_","value":$changes{$_}}\n)
                             : qq({"key":"$_","delete":true}\n)
    } sort keys %changes);
    loader('build', $dir, '--quiet', '--version', $v, '--delta-of',
           $base_version, '--as-of', $asof, '--input', "$in/$v.jsonl");
    loader('publish', $dir, $v);
    push @deltas, { asof => $asof, changes => \%changes };
}

sub compact {
    my $v = 'c' . ++$builds;
    loader('compact', $dir, '--version', $v);
    for my $d (@deltas) {
        for my $k (keys %{ $d->{changes} }) {
            my $c = $d->{changes}{$k};
            if (defined $c) { $base{$k} = $c } else { delete $base{$k} }
            $key_asof{$k} = $d->{asof}
                if $d->{asof} > $base_asof
                   && $d->{asof} > ($key_asof{$k} // 0);
        }
    }
    @deltas = ();
    $base_version = $v;
}

# the first base is as of long ago: every admin write survives it
build_base(int(time) - 86400);
sleep 0.3;

my $mismatches = 0;

sub check_all {
    my ($when) = @_;
    my $bad = 0;
    for my $k (@keys) {
        my $r = $http->get("http://127.0.0.1:$port/p?id=$k");
        my $want = expect($k);
        my ($status, $body) = defined $want
            ? (200, $want) : (404, qq({"error":"not_found","key":"$k"}));
        next if $r->{status} == $status && $r->{content} eq $body;
        diag("$when: $k: got $r->{status} $r->{content}, want $status "
             . "$body") if $bad++ < 5;
    }
    $mismatches += $bad;
    is($bad, 0, "$when: every key answers as the model says");
}

check_all('start');

my @plan = qw(delta delta compact delta base delta delta compact);

for my $round (1 .. $rounds) {
    # the writes of a round all fall in one second, S
    my $t = time;
    sleep(1.05 - ($t - int $t));
    my $s = int time;

    my %seen;
    my @lines;
    while (@lines < 30) {
        my $k = $keys[rand @keys];
        next if $seen{$k}++;
        my $p = rand;
        if ($p < 0.5) {
            my $v = val($k, "w$round");
            push @lines, qq({"key":"$k","value":$v});
            $admin{$k} = { val => $v, t => $s };
        } elsif ($p < 0.75) {
            push @lines, qq({"key":"$k","delete":true});
            $admin{$k} = { val => undef, t => $s };
        } else {
            push @lines, qq({"key":"$k","merge":{"m":$round}});
            $admin{$k} = { val => merged($k, $round), t => $s };
        }
    }

    my $r = $http->post("http://127.0.0.1:$port/admin/bulk",
                        { content => join('', map { "$_\n" } @lines) });
    like($r->{content}, qr/\A\{"applied":30,/, "round $round: bulk applied")
        or diag("$r->{status} $r->{content}");

    # one PATCH of a key the bulk did not touch
    my ($pk) = grep { !$seen{$_} } @keys[map { rand @keys } 1 .. 20];
    if ($pk) {
        $r = $http->request('PATCH', "http://127.0.0.1:$port/admin/$pk",
                            { content => qq({"m":$round}) });
        is($r->{status}, 200, "round $round: PATCH $pk")
            or diag($r->{content});
        $admin{$pk} = { val => merged($pk, $round), t => $s };
    }

    die "round $round took too long" if int(time) != $s;

    # a publish as of the second after the writes: they give way to it
    if ($round % 3 == 0) {
        my $what = $plan[($round / 3 - 1) % @plan];
        if ($what eq 'base') {
            build_base($s + 1);
        } elsif ($what eq 'delta' || !@deltas) {
            @deltas >= 8 ? compact() : build_delta($s + 1);
        } else {
            compact();
        }
        sleep 0.3;
        check_all("round $round, after a $what");
    } else {
        check_all("round $round");
    }
}

# a stop and a start: the zone comes back from its state files
my $pid = do { open my $fh, '<', "$root/logs/nginx.pid" or die; <$fh> };
chomp $pid;
nginx_signal('stop');
for (1 .. 200) { last unless kill 0, $pid; sleep 0.05 }
is(nginx_restart(), 0, 'nginx starts again') or BAIL_OUT(log_text());
check_all('after a stop and a start');

is($mismatches, 0, 'no answer differed from the model');

my $log = log_text();
my @bad = grep { /\[(?:error|crit|alert|emerg)\]/ } split /\n/, $log;
is(scalar @bad, 0, 'no [error], [crit] or [alert] in the error log')
    or diag(join "\n", @bad[0 .. ($#bad > 9 ? 9 : $#bad)]);
like($log, qr/serving version \S+ with \d delta layers?: /,
     'deltas were served');

nginx_stop();

done_testing();
