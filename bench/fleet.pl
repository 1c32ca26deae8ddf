#!/usr/bin/perl
# The fleet test: one origin and N edges (5), each in its own network
# namespace, joined by veth pairs to a bridge in a namespace of its own: no
# address in the host's namespace, no route anywhere else.  The origin is
# conf-examples/origin.conf as written but for paths and address; each edge
# is nginx with the module plus "pred-snapshot pull --watch 1s", under
# steady lookups from a prober in its namespace (5 lookups every 20 ms,
# each body checked against its key and the version that answered).
#
#   perl bench/fleet.pl            1M keys (~110 MB), a 30 s origin outage,
#                                  figures to bench/results/fleet.md and
#                                  fleet-timeline.png  (make fleet-test)
#   perl bench/fleet.pl --quick    100k keys, a 10 s outage (make test,
#                                  through t/950-fleet.t)
#
# As root; skipped, saying why, where namespaces are not permitted.  TAP
# output: every expected outcome is asserted.
use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);
use Getopt::Long qw(GetOptions);
use IO::Handle ();
use IO::Socket::INET ();
use JSON::PP ();
use POSIX qw(WNOHANG floor);
use Time::HiRes qw(time sleep);

my %o = (keys => 1_000_000, edges => 5, outage => 30, check => 100,
         rate => '40M', report => 1);

if (@ARGV && $ARGV[0] eq '--probe') {
    exit probe(@ARGV[1 .. $#ARGV]);
}

if (@ARGV && $ARGV[0] eq '--route') {
    exit route(@ARGV[1 .. $#ARGV]);
}

GetOptions(\%o, 'quick', 'keys=i', 'edges=i', 'outage=i', 'rate=s',
           'report!') or die "usage: fleet.pl [--quick] [--keys N] "
                           . "[--edges N] [--outage S] [--no-report]\n";
%o = (%o, keys => 100_000, outage => 10, rate => '4M', report => 0)
    if $o{quick};

require Test::More;
Test::More->import();

my $repo = abs_path(dirname(__FILE__) . '/..');
my $nginx = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
my $module = (split ' ', $ENV{TEST_NGINX_LOAD_MODULES}
                         // "$repo/build/nginx/objs/ngx_http_pred_module.so")
             [0];
my $loader = $ENV{PRED_SNAPSHOT} || "$repo/build/pred-snapshot";
my $work = "$repo/bench/work-fleet";
my $tag = 'pf' . ($$ % 100000);
my $sw = "${tag}sw";
my @nodes = ({ name => 'origin', ns => "${tag}o", addr => '10.77.0.1' },
             map { { name => "edge$_", ns => "${tag}e$_",
                     addr => '10.77.0.' . (10 + $_) } } 1 .. $o{edges});
my ($origin, @edges) = @nodes;
my $url = "http://$origin->{addr}:8090/pred/ctr/";
my (@pids, @namespaces, %figures);
my $json = JSON::PP->new->canonical;

# ---------------------------------------------------------------- set up

if ($> != 0) {
    plan(skip_all => 'the fleet test makes network namespaces: run it as '
                     . 'root (make fleet-test does)');
}

if (system("ip netns add ${tag}probe 2>/dev/null") != 0) {
    plan(skip_all => 'network namespaces are not permitted here '
                     . '("ip netns add" failed): the fleet test needs '
                     . 'CAP_SYS_ADMIN and CAP_NET_ADMIN');
}
system("ip netns del ${tag}probe");

for my $f ($nginx, $loader, $module) {
    die "fleet: $f is missing: build first (make module loader)\n"
        unless -e $f;
}

$SIG{INT} = $SIG{TERM} = sub { teardown(); exit 1 };
END { teardown() }

remove_tree($work);
make_path($work);

run("ip netns add $sw");
push @namespaces, $sw;
run("ip -n $sw link set lo up");
run("ip -n $sw link add br0 type bridge");
run("ip -n $sw link set br0 up");

my $i = 0;
for my $n (@nodes) {
    my ($host, $peer) = ("${tag}v$i", "${tag}w$i");
    $i++;
    run("ip netns add $n->{ns}");
    push @namespaces, $n->{ns};
    run("ip link add $host type veth peer name $peer");
    run("ip link set $host netns $sw");
    run("ip link set $peer netns $n->{ns}");
    run("ip -n $n->{ns} link set $peer name eth0");
    run("ip -n $sw link set $host master br0");
    run("ip -n $sw link set $host up");
    run("ip -n $n->{ns} addr add $n->{addr}/24 dev eth0");
    run("ip -n $n->{ns} link set eth0 up");
    run("ip -n $n->{ns} link set lo up");
    $n->{link} = $host;
    $n->{root} = "$work/$n->{name}";
    $n->{dir} = "$n->{root}/ctr";
    make_path("$n->{root}/logs", $n->{dir});
}


# the origin: conf-examples/origin.conf, its paths and address changed
my $conf = slurp("$repo/conf-examples/origin.conf");
$conf =~ s/^user \S+;$/user root;/m;
$conf =~ s/^worker_processes \S+;$/worker_processes 1;/m;
$conf =~ s{/var/lib/pred/ctr\b}{$origin->{dir}}g;
$conf =~ s{^(\s*(?:error_log|access_log|pid)\s+)/\S+/([^/\s;]+)}
          {$1$origin->{root}/logs/$2}gm;
$conf =~ s/^(\s*listen\s+)8090;/${1}$origin->{addr}:8090;/m;
# the origin's bandwidth per edge, as a network would give it (a limit in
# the puller would let the socket buffers take what a cut link must stop)
$conf =~ s{^(\s*alias \S+\$1;\n)}{$1            limit_rate $o{rate};\n}m
    or die "fleet: origin.conf has no location for the files\n";
spew("$origin->{root}/nginx.conf", $conf);

build('v1');
pred('publish', $origin->{dir}, 'v1');
start_origin();

for my $e (@edges) {
    start_puller($e);
}

ok(wait_for(60, sub { !grep { !-l "$_->{dir}/current" } @edges }),
   'every edge pulled and published v1');

for my $e (@edges) {
    spew("$e->{root}/nginx.conf", edge_conf($e));
    run("ip netns exec $e->{ns} $nginx -p $e->{root}/ "
        . "-c $e->{root}/nginx.conf");
}

ok(wait_for(20, sub { !grep { (lookup($_, 1))[1] ne 'v1' } @edges }),
   'every edge serves v1');

for my $e (@edges) {
    $e->{probe} = "$e->{root}/probe.log";
    $e->{probe_pid} = spawn($e, 'probe', $^X, abs_path(__FILE__), '--probe',
                            $o{keys}, $e->{probe});
}

sleep 1;

# ------------------------------------------- a cutover at the same moment

build('v2');
my $t0 = time;
my $out = pred('publish', $origin->{dir}, 'v2', '--activate-at', '+10s');
my $at = activate_at();
ok($at && $at >= int($t0) + 9 && $at <= int($t0) + 11,
   'the manifest says when: activate_at 10 s on');

my %ready;
wait_for(60, sub {
    for my $e (@edges) {
        $ready{$e->{name}} //= time if -e "$e->{dir}/snap-v2.mdb";
    }
    return keys %ready == @edges;
}, 0.02);
ok(wait_for(30, sub { !grep { !serving_since($_, 'v2') } @edges }),
   'every edge serves v2');

my (@ready, @flip);
for my $e (@edges) {
    my $r = ($ready{$e->{name}} // 1e18) - $t0;
    my $f = serving_since($e, 'v2') // 1e18;
    push @ready, $r;
    push @flip, $f;
    $figures{edges}{$e->{name}} = { ready => $r, flip => $f - $t0 };
    cmp_ok($f, '>=', $at - 0.05, "$e->{name}: not before activate_at");
    cmp_ok($r, '<', $at - $t0, "$e->{name}: ready before activate_at");
}
my @sorted = sort { $a <=> $b } @ready;
my $p95 = $sorted[int(0.95 * $#sorted + 0.999)];
my ($first, $last) = ((sort { $a <=> $b } @flip)[0, -1]);
%figures = (%figures, ready_p95 => $p95, ready_max => $sorted[-1],
            skew => $last - $first, flip_after => $first - $at,
            size => -s "$origin->{dir}/snap-v2.mdb");
cmp_ok($p95, '<=', 10, sprintf('every edge ready within 10 s (p95 %.2f s)',
                               $p95));
cmp_ok($last - $first, '<=', $o{check} / 1000 + 0.1,
       sprintf('flip skew %.0f ms <= the check interval + 100 ms',
               ($last - $first) * 1000));

# ------------------------------------ an edge's link down mid-download

my $cut = $edges[0];
build('v3');
pred('publish', $origin->{dir}, 'v3');
my $part = "$cut->{dir}/.pull-snap-v3.mdb.part";
ok(wait_for(30, sub { (-s $part // 0) > 0.2 * -s "$origin->{dir}/snap-v3.mdb"
             }, 0.01), "$cut->{name}: the download is under way");
run("ip -n $sw link set $cut->{link} down");
my $cut_at = -s $part;
sleep 5;
ok(!serving_since($cut, 'v3'), "$cut->{name}: cut off, still on v2");
like(slurp("$cut->{root}/pull.log"),
     qr/snap-v3\.mdb: .* after \d+ of \d+ bytes$/m,
     "$cut->{name}: the cut is said");
run("ip -n $sw link set $cut->{link} up");
ok(wait_for(60, sub { !grep { !serving_since($_, 'v3') } @edges }),
   'every edge serves v3, the cut one too');
like(slurp("$cut->{root}/pull.log"), qr/^resuming snap-v3\.mdb at byte \d+$/m,
     "$cut->{name}: the download resumed (cut at $cut_at bytes)");
cmp_ok(status($cut)->{transfers}{resumed}, '>=', 1,
       "$cut->{name}: pull-status.json counts the resume");

# ---------------------------------- the origin serves a damaged file

for my $damage (qw(truncated flipped)) {
    my $v = $damage eq 'truncated' ? 'v4' : 'v5';
    build($v, "$work/stage");
    pred('publish', "$work/stage", $v);
    my $good = "$work/stage/snap-$v.mdb";
    my $bad = "$origin->{dir}/.bad.tmp";
    run("cp $good $bad");
    if ($damage eq 'truncated') {
        truncate($bad, int((-s $good) * 0.6)) or die "truncate: $!";
    } else {
        # a digit of a value every 256 KB: some of LMDB's pages are free
        # (copies a later commit replaced), a flip there changes nothing
        flip_bytes($bad);
    }
    rename($bad, "$origin->{dir}/snap-$v.mdb") or die "rename: $!";
    manifest_from("$work/stage");

    my $msg = $damage eq 'truncated'
              ? qr/snap-$v\.mdb: \d+ bytes, the manifest says \d+: refused/
              : qr/snap-$v\.mdb from \S+: refused, it fails verify/;
    ok(wait_for(20, sub {
        !grep { (status($_)->{last_error}{message} // '') !~ $msg } @edges
    }), "a $damage file: every edge refuses it, in pull-status.json");
    ok(wait_for(20, sub { !grep { status($_)->{failures} < 2 } @edges }),
       "a $damage file: retried");
    ok(!grep({ serving_since($_, $v) || -e "$_->{dir}/snap-$v.mdb" } @edges),
       "a $damage file: never live, never kept");

    run("cp $good $origin->{dir}/.good.tmp");
    rename("$origin->{dir}/.good.tmp", "$origin->{dir}/snap-$v.mdb")
        or die "rename: $!";
    ok(wait_for(40, sub { !grep { !serving_since($_, $v) } @edges }),
       "the origin's file mended: every edge serves $v");
}

# ------------------------------------------------- the origin down

run("ip netns exec $origin->{ns} $nginx -p $origin->{root}/ "
    . "-c $origin->{root}/nginx.conf -s stop");
my $down = time;
sleep $o{outage};
my $fails = 0;
for my $e (@edges) {
    my $s = status($e);
    $fails += $s->{failures};
    like($s->{last_error}{message} // '',
         qr/manifest\.json: (?:Couldn't connect|Timeout|Connection)/i,
         "$e->{name}: the outage is in pull-status.json");
    ok(serving_since($e, 'v5'), "$e->{name}: still serving v5");
}
# without backoff a check a second: outage checks per edge
cmp_ok($fails / @edges, '<', 0.6 * $o{outage},
       sprintf('backoff: %.1f failed checks per edge in %d s',
               $fails / @edges, $o{outage}));
$figures{outage_checks} = $fails / @edges;

start_origin();
build('v6');
pred('publish', $origin->{dir}, 'v6');
my $up = time;
ok(wait_for(60, sub { !grep { !serving_since($_, 'v6') } @edges }),
   'the origin back: every edge serves v6');
$figures{recovery} = time - $up;

# ------------------------------ a canary: the same keys on every edge

build('v7');
pred('canary', $origin->{dir}, 'v7', '10');
ok(wait_for(30, sub { !grep { !-l "$_->{dir}/candidate" } @edges }),
   'every edge has the candidate');
sleep 0.5;
my %routes;
for my $e (@edges) {
    $routes{$e->{name}} = `ip netns exec $e->{ns} $^X @{[abs_path(__FILE__)]} --route 1000`;
    $routes{$e->{name}} =~ s/\bv6\b/0/g;
    $routes{$e->{name}} =~ s/\bv7\b/1/g;
}
my %distinct = map { $_ => 1 } values %routes;
is(scalar keys %distinct, 1, 'every edge routes the same keys to v7');
chomp %routes;
my $share = ($routes{edge1} =~ tr/1//);
is($routes{edge1} =~ tr/01 //c, 0, 'every key answered by v6 or v7');
ok($share > 50 && $share < 150, "about 10% of keys on v7 ($share of 1000)");

my ($rc, $table) = fleet_status();
is($rc, 0, 'fleet-status: the nodes agree') or diag($table);
like($table, qr/^http:\S+\s+v6\s+v7\s+10%/m, 'fleet-status: the table');

pred('abort', $origin->{dir});
ok(wait_for(30, sub { !grep { -l "$_->{dir}/candidate" } @edges }),
   'the canary aborted on every edge');

# an edge changed by hand, its puller stopped: it disagrees
my $odd = $edges[-1];
kill 'TERM', -$odd->{puller};
waitpid($odd->{puller}, 0);
run("$loader rollback $odd->{dir}");
sleep 0.5;
($rc, $table) = fleet_status();
is($rc, 0, 'fleet-status: a disagreement within --max-skew of the swap')
    or diag($table);
like($table, qr/^nodes disagree, within --max-skew of the newest swap/m,
     'fleet-status says so');
sleep 1.2;
($rc, $table) = fleet_status('--max-skew', '0s');
is($rc, 1, 'fleet-status: an edge on another version past --max-skew');
like($table, qr/^http:\S+ +v5 /m, 'fleet-status: the odd edge\'s row');
like($table, qr/^nodes disagree, past --max-skew of the newest swap$/m,
     'fleet-status says so');

# its puller back: put right
start_puller($odd);
ok(wait_for(20, sub { serving_since($odd, 'v6') }),
   "$odd->{name}: its puller puts it back on v6");

# ------------------------------------------------ the invariants

for my $e (@edges) {
    kill 'TERM', $e->{probe_pid};
}
sleep 0.5;

my $total = 0;
for my $e (@edges) {
    my ($n, $bad, $wrong) = (0, 0, 0);
    for (split /\n/, slurp($e->{probe})) {
        my ($t, $v, $got, $failed, $mismatch) = split ' ';
        next unless defined $mismatch;
        $n += $got;
        $bad += $failed;
        $wrong += $mismatch;
    }
    $total += $n;
    is($bad, 0, "$e->{name}: 0 failed lookups of $n");
    is($wrong, 0, "$e->{name}: every answer matched its key and version");
    my $log = slurp("$e->{root}/logs/error.log");
    unlike($log, qr/\[(?:alert|crit|emerg)\]/, "$e->{name}: no [alert]")
        or diag($log);
}
$figures{lookups} = $total;

report() if $o{report};
done_testing();

# --------------------------------------------------------------- helpers

sub run {
    my ($cmd) = @_;
    my $out = `$cmd 2>&1`;
    die "fleet: $cmd: $out" if $? != 0;
    return $out;
}

sub pred {
    my @args = @_;
    my $out = `$loader @args 2>&1`;
    die "fleet: pred-snapshot @args: $out" if $? != 0;
    return $out;
}

sub slurp {
    my ($path) = @_;
    open my $in, '<', $path or return '';
    local $/;
    return <$in> // '';
}

sub spew {
    my ($path, $text) = @_;
    open my $out, '>', $path or die "$path: $!";
    print $out $text;
    close $out;
}

# version V at the origin (or DIR): every key's value names it
sub build {
    my ($v, $dir) = @_;
    $dir //= $origin->{dir};
    make_path($dir);
    my $in = "$work/$v.jsonl";
    open my $out, '>', $in or die "$in: $!";
    for my $k (0 .. $o{keys} - 1) {
        printf $out qq({"key":"user_%07d","value":{"id":"user_%07d",)
            . qq("gen":"%s","score":0.%06d,"segment":"s%02d",)
            . qq("items":[%d,%d,%d],"model":"ctr"}}\n),
            $k, $k, $v, ($k * 7919) % 1000000, $k % 40, $k % 997,
            $k % 991, $k % 983;
    }
    close $out;
    pred('build', $dir, '--version', $v, '--input', $in, '--quiet');
    unlink $in;
}

sub manifest_from {
    my ($dir) = @_;
    my $m = slurp("$dir/manifest.json");
    spew("$origin->{dir}/.manifest.tmp", $m);
    rename("$origin->{dir}/.manifest.tmp", "$origin->{dir}/manifest.json")
        or die "rename: $!";
}

sub activate_at {
    my $m = eval { $json->decode(slurp("$origin->{dir}/manifest.json")) }
        or return;
    my ($y, $mo, $d, $h, $mi, $s) = ($m->{activate_at} // '') =~
        /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)Z$/ or return;
    require Time::Local;
    return Time::Local::timegm($s, $mi, $h, $d, $mo - 1, $y);
}

sub flip_bytes {
    my ($path) = @_;
    open my $fh, '+<', $path or die "$path: $!";
    binmode $fh;
    my $flips = 0;
    for (my $off = 0; $off < -s $path; $off += 262144) {
        # a page of data records: change a digit, the sizes stay
        seek $fh, $off, 0;
        read $fh, my $page, 4096;
        next unless $page =~ /"score":0\.(\d)/;
        seek $fh, $off + $-[1], 0;
        print $fh ($1 eq '9' ? '8' : '9');
        $flips++;
    }
    close $fh;
    die "flip: no value found in $path\n" unless $flips;
}

sub start_origin {
    run("ip netns exec $origin->{ns} $nginx -p $origin->{root}/ "
        . "-c $origin->{root}/nginx.conf");
}

sub start_puller {
    my ($e) = @_;
    $e->{puller} = spawn($e, 'pull', $loader, 'pull', $url, $e->{dir},
                         '--watch', '1s', '--timeout', '3s');
}

# a process in the node's namespace, its output to ROOT/NAME.log
sub spawn {
    my ($n, $name, @cmd) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        setpgrp(0, 0);
        open STDOUT, '>>', "$n->{root}/$name.log" or POSIX::_exit(1);
        open STDERR, '>&', \*STDOUT or POSIX::_exit(1);
        { exec 'ip', 'netns', 'exec', $n->{ns}, @cmd }
        POSIX::_exit(127);
    }
    push @pids, $pid;
    return $pid;
}

sub edge_conf {
    my ($e) = @_;
    return <<"_EOC_";
load_module $module;
user root;
worker_processes 1;
error_log $e->{root}/logs/error.log notice;
pid $e->{root}/logs/nginx.pid;
events { worker_connections 1024; }
http {
    access_log off;
    pred_snapshot_path ctr $e->{dir} check=$o{check}ms;
    server {
        listen 8080;
        location = /p {
            pred_key \$arg_id;
            pred_snapshot ctr;
            pred;
        }
        location /pred-admin/ {
            allow 10.77.0.0/24;
            allow 127.0.0.1;
            deny all;
            pred_snapshot ctr;
            pred_admin;
        }
        location = /metrics {
            pred_metrics;
        }
    }
}
_EOC_
}

# a lookup on the edge from its namespace: (status, version)
sub lookup {
    my ($e, $k) = @_;
    my $out = `ip netns exec $e->{ns} curl -s -o /dev/null -D - --max-time 2 http://127.0.0.1:8080/p?id=user_@{[sprintf '%07d', $k]} 2>&1`;
    my ($status) = $out =~ m{^HTTP/1\.1 (\d+)}m;
    my ($v) = $out =~ /^X-Pred-Version: (\S+)\r?$/mi;
    return ($status // 0, $v // '');
}

# the time the edge's prober first saw version v, and never another after
sub serving_since {
    my ($e, $v) = @_;
    my $since;
    for (split /\n/, slurp($e->{probe} // '')) {
        my ($t, $seen) = split ' ';
        next unless defined $seen;
        if ($seen eq $v) {
            $since //= $t;
        } else {
            undef $since;
        }
    }
    return $since;
}

sub status {
    my ($e) = @_;
    return eval { $json->decode(slurp("$e->{dir}/pull-status.json")) } // {};
}

sub wait_for {
    my ($secs, $cond, $step) = @_;
    my $end = time + $secs;
    while (time < $end) {
        return 1 if $cond->();
        sleep($step // 0.1);
    }
    return $cond->() ? 1 : 0;
}

sub fleet_status {
    my @args = @_;
    my $urls = join ' ', map { "http://$_->{addr}:8080/pred-admin/snapshot" }
                             @edges;
    my $out = `ip netns exec $origin->{ns} $loader fleet-status --metrics /metrics @args $urls 2>&1`;
    return ($? >> 8, $out);
}

sub teardown {
    return unless @namespaces || @pids;
    for my $pid (@pids) {
        kill 'TERM', -$pid;
        kill 'TERM', $pid;
    }
    for my $n (@nodes) {
        next unless $n->{root};
        for my $pidfile (map { "$n->{root}/logs/$_" }
                             qw(nginx.pid nginx-pred-origin.pid))
        {
            my $pid = slurp($pidfile);
            chomp $pid;
            kill 'TERM', $pid if $pid;
        }
    }
    while (waitpid(-1, WNOHANG) > 0) { }
    sleep 0.3;
    for my $ns (reverse @namespaces) {
        system("ip netns pids $ns 2>/dev/null | xargs -r kill -9");
        system("ip netns del $ns 2>/dev/null");
    }
    @namespaces = ();
    @pids = ();
}

sub report {
    my $res = "$repo/bench/results";
    my $md = sprintf <<'_EOM_', $o{edges}, $o{keys}, $figures{size} / 1e6,
# Fleet: one origin, %d edges, network namespaces

A version of %d keys (%.0f MB) published at the origin with
`--activate-at +10s` while every edge serves steady lookups; each edge runs
`pred-snapshot pull --watch 1s --timeout 3s` and nginx with
`check=%dms`; the origin sends each edge at most %s bytes/s (`limit_rate`,
the network here being loopback-fast); a prober per edge, 5 lookups every
20 ms.
Command: `make fleet-test` (`bench/fleet.pl`).

| figure | result | target |
|---|---:|---:|
| every edge ready (downloaded, verified), p95 | %.2f s | <= 10 s |
| every edge ready, slowest | %.2f s | |
| flip skew, first to last edge | %.0f ms | <= %d ms |
| first flip after activate_at | %.0f ms | |
| failed lookups | 0 of %d | 0 |
| failed checks per edge in a %d s origin outage (backoff) | %.1f | < %d without |
| every edge on a new version after the outage | %.1f s | |

| edge | ready after publish | serving after publish |
|---|---:|---:|
_EOM_
        $o{check}, $o{rate}, $figures{ready_p95}, $figures{ready_max},
        $figures{skew} * 1000, $o{check} + 100, $figures{flip_after} * 1000,
        $figures{lookups}, $o{outage}, $figures{outage_checks}, $o{outage},
        $figures{recovery};
    for my $e (@edges) {
        my $f = $figures{edges}{$e->{name}};
        $md .= sprintf "| %s | %.2f s | %.3f s |\n", $e->{name}, $f->{ready},
                       $f->{flip};
    }
    $md .= "\nThe faults, each asserted: an edge's link down mid-download "
         . "(resumed with Range once back), a truncated and a byte-flipped "
         . "file at the origin (refused, in pull-status.json, never live, "
         . "retried, then taken once mended), the origin down "
         . "$o{outage} s (edges serve on, back off, recover), a canary "
         . "at 10% (every edge routes the same keys).\n\n"
         . "![timeline](fleet-timeline.png)\n";
    spew("$res/fleet.md", $md);

    # the timeline: which version each edge served when
    my $dat = "$work/timeline.dat";
    open my $out, '>', $dat or die $!;
    my $k = 0;
    for my $e (@edges) {
        $k++;
        for (split /\n/, slurp($e->{probe})) {
            my ($t, $v) = split ' ';
            next unless defined $v && $v =~ /^v(\d+)$/;
            printf $out "%.3f %d %d\n", $t - $t0, $k, $1;
        }
        print $out "\n\n";
    }
    close $out;
    my $plot = join '; ',
        'set terminal png size 1200,420',
        "set output '$res/fleet-timeline.png'",
        "set title 'Version served by each edge (probe every 20 ms); "
        . "v2 published at 0 s with --activate-at +10s'",
        "set xlabel 'seconds after the v2 publish'",
        "set ylabel 'edge'",
        "set yrange [0.5:$o{edges}.5]",
        'set xrange [-5:*]',
        'set ytics 1',
        'set cbrange [1:7]',
        'set palette defined (1 "gray", 2 "blue", 3 "green", 4 "orange", '
        . '5 "red", 6 "purple", 7 "black")',
        'set cblabel "version"',
        "plot '$dat' using 1:2:3 with points pt 5 ps 0.4 palette notitle";
    system('gnuplot', '-e', $plot) == 0 or diag('gnuplot failed');
    diag("figures: $res/fleet.md, $res/fleet-timeline.png");
}

# ------------------------------------------------------- probe mode

# Runs in an edge's namespace: 5 lookups every 20 ms on one keepalive
# connection; a line per tick: time, version, lookups, failed, mismatched
sub probe {
    my ($keys, $file) = @_;
    my $stop = 0;
    $SIG{TERM} = sub { $stop = 1 };
    open my $log, '>>', $file or die "$file: $!";
    $log->autoflush(1);
    my $sock;
    my $next = time;
    while (!$stop) {
        my ($v, $n, $bad, $wrong) = ('-', 0, 0, 0);
        for (1 .. 5) {
            my $k = sprintf 'user_%07d', int(rand($keys));
            $sock //= IO::Socket::INET->new(PeerAddr => '127.0.0.1:8080',
                                            Timeout => 2);
            $n++;
            my ($status, $ver, $body, $close) = $sock ? http_get($sock, $k)
                                                      : ();
            if (!$status || $status != 200) {
                $bad++;
                undef $sock;
                next;
            }
            $v = $ver if $v eq '-';
            $wrong++ unless $body =~ /\A\{"id":"\Q$k\E","gen":"\Q$ver\E",/;
            # nginx ends a keepalive connection after keepalive_requests
            undef $sock if $close;
        }
        printf $log "%.3f %s %d %d %d\n", time, $v, $n, $bad, $wrong;
        $next += 0.02;
        my $wait = $next - time;
        $wait > 0 ? sleep($wait) : ($next = time);
    }
    return 0;
}

# Runs in an edge's namespace: the version that answers each of keys 0..N-1
sub route {
    my ($n) = @_;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1:8080',
                                     Timeout => 2) or die "route: $!";
    my @v;
    for my $k (0 .. $n - 1) {
        my ($status, $ver) = http_get($sock, sprintf 'user_%07d', $k);
        push @v, ($status // 0) == 200 ? $ver : 'failed';
    }
    print join(' ', @v), "\n";
    return 0;
}

sub http_get {
    my ($sock, $k) = @_;
    print $sock "GET /p?id=$k HTTP/1.1\r\nHost: edge\r\n\r\n" or return;
    my $head = '';
    while (defined(my $line = <$sock>)) {
        last if $line eq "\r\n";
        $head .= $line;
    }
    my ($status) = $head =~ m{\AHTTP/1\.1 (\d+)} or return;
    my ($len) = $head =~ /^Content-Length: (\d+)/mi;
    my ($ver) = $head =~ /^X-Pred-Version: (\S+)\r$/mi;
    my $body = '';
    read($sock, $body, $len // 0) if $len;
    return ($status, $ver // '', $body, $head =~ /^Connection: close\r$/mi);
}
