# Manifests, "pred-snapshot pull" and "fleet-status" through real nginx: a
# plain static origin over a snapshot folder (as conf-examples/origin.conf)
# with the faults an origin can have beside it (a file cut short, longer,
# damaged or another one under the name, a manifest that is not one or
# names a path, an error, a token, a redirect), and two edges with the
# module, each over a folder a pull fills.  1. manifest.json after each
# command that moves a pointer; 2. a pull for each of them; 3. activate_at;
# 4. the faults; 5. pull --watch; 6. fleet-status; 7. what a review found.
# Exit codes, output, DIR/pull-status.json, the origin's access log, the
# edges' X-Pred-Version and the folders' files, exactly.  About 25 s: the
# faults' pulls, which try 4 times over 3.5 to 7 s, run side by side.
#
# Plain Perl against nginx started by hand, the same under any Test::Nginx.
use strict;
use warnings;

use lib 't';
use Cwd qw(cwd);
use File::Copy qw(copy);
use File::Path qw(make_path remove_tree);
use HTTP::Tiny ();
use JSON::PP ();
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep time);
use Time::Local qw(timegm);

use PredTest;
use PredNginx;

plan skip_all => 'memcheck is too slow for the pointer flips timed here'
    if $ENV{TEST_NGINX_USE_VALGRIND};

my $repo = cwd();
my $http = HTTP::Tiny->new(timeout => 5, keep_alive => 0);
my $json = JSON::PP->new;
my $scratch = "$repo/t/servroot-pull-out";
remove_tree($scratch);
make_path($scratch);

sub slurp {
    my ($path) = @_;
    open my $in, '<', $path or return undef;
    binmode $in;
    local $/;
    return <$in> // '';
}

sub iso { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime shift) }

sub epoch {
    my ($y, $mo, $d, $h, $mi, $s) = $_[0] =~ /(\d+)/g;
    return timegm($s, $mi, $h, $d, $mo - 1, $y);
}

sub files_in {
    my ($dir) = @_;
    opendir my $dh, $dir or die "$dir: $!";
    return join ' ', sort grep { !/^\.\.?$/ } readdir $dh;
}

# pred-snapshot in the background: its stdout and stderr apart
my $jobs = 0;

sub spawn {
    my @args = @_;
    my $n = ++$jobs;
    my %job = (out => "$scratch/$n.out", err => "$scratch/$n.err");
    $job{pid} = fork // die "fork: $!";
    if ($job{pid} == 0) {
        open STDOUT, '>', $job{out} or die;
        open STDERR, '>', $job{err} or die;
        exec($ENV{PRED_SNAPSHOT}, @args) or POSIX::_exit(127);
    }
    return \%job;
}

# its exit code, stdout and stderr once it exits
sub reap {
    my ($job) = @_;
    waitpid $job->{pid}, 0;
    return ($? >> 8, slurp($job->{out}), slurp($job->{err}));
}

sub cmd { reap(spawn(@_)) }

# a command's exit code, stdout and stderr as Test::More tests: each exact,
# or a regex
sub check {
    my ($name, $got, $rc, $out, $err) = @_;
    my $ok = is($got->[0], $rc, "$name: exit $rc");
    for ([stdout => $got->[1], $out], [stderr => $got->[2], $err]) {
        my ($what, $text, $want) = @$_;
        $ok &= ref $want ? like($text, $want, "$name: $what")
                         : is($text, $want, "$name: $what");
    }
    diag("stdout: $got->[1]stderr: $got->[2]") unless $ok;
}

sub run_check {
    my ($name, $args, @want) = @_;
    check($name, [cmd(@$args)], @want);
}

# "info FILE" as a hash
sub info {
    my ($file) = @_;
    my ($rc, $out, $err) = cmd('info', $file);
    die "info $file: $err" if $rc;
    return map { /^(\w+): (.*)$/ ? ($1, $2) : () } split /\n/, $out;
}

# what a manifest says of DIR/FILE
sub entry {
    my ($dir, $file, %more) = @_;
    my %i = info("$dir/$file");
    return { version => $i{version}, file => $file, size => -s "$dir/$file",
             checksum => $i{checksum}, entries => $i{entries},
             created_at => iso($i{created_at}),
             $i{delta_of} ? (delta_of => $i{delta_of}) : (), %more };
}

sub checksum { my %i = info(shift); return $i{checksum} }

sub manifest {
    my ($dir) = @_;
    my $text = slurp("$dir/manifest.json") // return undef;
    return $json->decode($text);
}

sub status {
    my $text = slurp("$_[0]/pull-status.json") // return undef;
    return $json->decode($text);
}

# DIR/manifest.json's text, times, sizes and checksums as T, N and C
sub shape {
    my $text = slurp("$_[0]/manifest.json") // '';
    $text =~ s/("\w+_at": )"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"/${1}T/g;
    $text =~ s/("size": )\d+/${1}N/g;
    $text =~ s/("checksum": )"fnv1a64:[0-9a-f]{16}"/${1}C/g;
    return $text;
}

# the manifest without its generation time, which tests compare apart
sub body_of {
    my ($m) = @_;
    my %b = %$m;
    delete $b{generated_at};
    return \%b;
}

# a manifest just written: generated between t0 and now, and the rest
sub manifest_is {
    my ($name, $dir, $t0, $want) = @_;
    my $m = manifest($dir);
    ok($m && $m->{generated_at} ge iso($t0)
       && $m->{generated_at} le iso(time), "$name: generated_at now")
        or diag($m && $m->{generated_at});
    is_deeply(body_of($m // {}), { format => 'pred-manifest/1', %$want },
              "$name: manifest.json")
        or diag(slurp("$dir/manifest.json"));
}


# the folders: the origin's, the faults', the edges' and the local ones

my $mdir = snap_dir('pull-manifest');
my $origin = snap_dir('pull-origin');
my $faults = snap_dir('pull-faults');
my $edge1 = snap_dir('pull-edge1');
my $edge2 = snap_dir('pull-edge2');
my $local = snap_dir('pull-local');

my $data = sub {
    my ($v, @keys) = @_;
    return join '', map { qq{{"key":"$_","value":{"v":"$v"}}\n} } @keys;
};

for my $dir ($mdir, $origin) {
    snap_build($dir, 'v1', $data->('v1', qw(a b)));
    snap_build($dir, 'v2', $data->('v2', qw(a b c)));
    snap_build($dir, 'v3', $data->('v3', qw(a b c d)));
}


# the origin, plain nginx as conf-examples/origin.conf, its faults beside,
# and two edges with the module

my ($op, $ep1, $ep2) = (free_port(), free_port(), free_port());
my $root = "$repo/t/servroot-pull";
my $url = "http://127.0.0.1:$op/o";

my $rc = nginx_start($root, $ep1, <<"_EOC_");
    log_format pull '\$request_method \$uri \$status range=\$http_range';

    server {
        listen 127.0.0.1:$op;
        access_log $root/logs/origin.log pull;

        location = /o/manifest.json {
            alias $origin/manifest.json;
            add_header Cache-Control "no-cache" always;
        }

        location ~ ^/o/((?:snap|delta)-[\\w.-]+\\.mdb)\$ {
            alias $origin/\$1;
        }

        # the same folder, to those that show the fleet's token
        location ~ ^/tok/(manifest\\.json|(?:snap|delta)-[\\w.-]+\\.mdb)\$ {
            if (\$http_x_fleet_token != "s3cret") {
                return 403;
            }
            alias $origin/\$1;
        }

        location ~ ^/redir/(.*)\$ {
            return 302 http://127.0.0.1:$op/o/\$1;
        }

        # a folder for each fault
        location /f/ {
            alias $faults/;
        }

        location /e500/ {
            return 500;
        }

        location / {
            return 404;
        }
    }

    pred_snapshot_path ctr $edge1 check=100ms;
    pred_snapshot_path ctr2 $edge2 check=100ms;

    server {
        listen 127.0.0.1:$ep1;
        location = /p { pred_key \$arg_id; pred_snapshot ctr; pred; }
        location /pred-admin/ { pred_snapshot ctr; pred_admin; }
        location = /metrics { pred_metrics; }
    }

    server {
        listen 127.0.0.1:$ep2;
        location = /p { pred_key \$arg_id; pred_snapshot ctr2; pred; }
        location /pred-admin/ { pred_snapshot ctr2; pred_admin; }
        location = /metrics { pred_metrics; }
    }
_EOC_
is($rc, 0, 'nginx starts') or BAIL_OUT(slurp("$root/logs/stderr.log"));

# the origin's access log from here on
my $log_at = 0;

sub origin_log {
    my $text = slurp("$root/logs/origin.log") // '';
    my $new = substr($text, $log_at);
    $log_at = length $text;
    return $new;
}

# an edge's X-Pred-Version for a key
sub edge_version {
    my ($port, $key) = @_;
    my $r = $http->get("http://127.0.0.1:$port/p?id=$key");
    return $r->{status} == 200 ? $r->{headers}{'x-pred-version'} // ''
                               : "status $r->{status}";
}

# until what probe says is want for 0.25 s on end, new connections each
# time (both workers look every 100 ms: both have looked then), 5 s at
# most; the time it was first seen, undef if it did not settle
sub settle {
    my ($probe, $want) = @_;
    my ($first, $since);
    my $end = time + 5;
    while (time < $end) {
        # seen by then at the latest
        my $got = $probe->();
        my $t = time;
        if ($got eq $want) {
            $first //= $t;
            $since //= $t;
            return $first if $t - $since >= 0.25;
        } else {
            $since = undef;
        }
        sleep 0.02;
    }
    return undef;
}

sub edge_wait {
    my ($port, $key, $version) = @_;
    return settle(sub { edge_version($port, $key) }, $version);
}

sub admin_snapshot {
    my ($port) = @_;
    my $r = $http->get("http://127.0.0.1:$port/pred-admin/snapshot");
    return $r->{status} == 200 ? $json->decode($r->{content}) : undef;
}


###########################################################################
# 1. manifest.json, rewritten by each command that moves a pointer

my %e;
$e{$_} = entry($mdir, "snap-$_.mdb") for qw(v1 v2 v3);

my $t0 = time;
run_check('publish v1', ['publish', $mdir, 'v1'], 0,
          "published v1 (2 entries)\n", '');
manifest_is('publish v1', $mdir, $t0,
            { live => { %{ $e{v1} }, deltas => [] }, previous => undef,
              candidate => undef });
is(shape($mdir), <<'_EOM_', 'publish v1: the manifest as written');
{
  "format": "pred-manifest/1",
  "generated_at": T,
  "live": {
    "version": "v1",
    "file": "snap-v1.mdb",
    "size": N,
    "checksum": C,
    "entries": 2,
    "created_at": T,
    "deltas": []
  },
  "previous": null,
  "candidate": null
}
_EOM_

$t0 = time;
run_check('canary v2 12.5', ['canary', $mdir, 'v2', '12.5'], 0,
          "candidate v2 (3 entries) at 12.5% of keys, live: v1\n", '');
manifest_is('canary v2 12.5', $mdir, $t0,
            { live => { %{ $e{v1} }, deltas => [] }, previous => undef,
              candidate => { %{ $e{v2} }, share => 12.5 } });
like(slurp("$mdir/manifest.json"), qr/\n    "share": 12\.5\n  \}\n\}\n\z/,
     'canary: the share is a number');

$t0 = time;
run_check('promote', ['promote', $mdir], 0,
          "promoted v2 (3 entries), previous: v1\n", '');
manifest_is('promote', $mdir, $t0,
            { live => { %{ $e{v2} }, deltas => [] }, previous => $e{v1},
              candidate => undef });

run_check('canary v3 25', ['canary', $mdir, 'v3', '25'], 0,
          "candidate v3 (4 entries) at 25% of keys, live: v2\n", '');
$t0 = time;
run_check('abort', ['abort', $mdir], 0, "aborted v3\n", '');
manifest_is('abort', $mdir, $t0,
            { live => { %{ $e{v2} }, deltas => [] }, previous => $e{v1},
              candidate => undef });

$t0 = time;
run_check('rollback', ['rollback', $mdir], 0,
          "rolled back to v1 (2 entries), previous: v2\n", '');
manifest_is('rollback', $mdir, $t0,
            { live => { %{ $e{v1} }, deltas => [] }, previous => $e{v2},
              candidate => undef });

# a delta over v1, then compacted into a new base
snap_build($mdir, 'v1.1', $data->('v1.1', qw(b z)),
           args => ['--delta-of', 'v1']);
$e{'v1.1'} = entry($mdir, 'delta-v1.1.mdb');
is($e{'v1.1'}{delta_of}, 'v1', 'the delta is over v1');

$t0 = time;
run_check('publish a delta', ['publish', $mdir, 'v1.1'], 0,
          "published delta v1.1 over v1 (2 upserts, 0 deletions), "
          . "1 layer\n", '');
manifest_is('publish a delta', $mdir, $t0,
            { live => { %{ $e{v1} }, deltas => [ $e{'v1.1'} ] },
              previous => $e{v2}, candidate => undef });

$t0 = time;
run_check('compact', ['compact', $mdir, '--version', 'v1c'], 0,
          "compacted snap-v1.mdb and 1 delta into v1c: 3 entries\n"
          . "published v1c (3 entries), previous: v1\n"
          . "kept the 1 delta of v1 aside for a rollback\n", '');
$e{v1c} = entry($mdir, 'snap-v1c.mdb');
manifest_is('compact', $mdir, $t0,
            { live => { %{ $e{v1c} }, deltas => [] }, previous => $e{v1},
              candidate => undef });

# the time pullers flip at
my $before = time;
run_check('rollback --activate-at +5s',
          ['rollback', $mdir, '--activate-at', '+5s'], 0,
          "rolled back to v1 (2 entries), previous: v1c\n"
          . "the 1 delta of v1 is live again\n", '');
my $m = manifest($mdir);
ok($m->{activate_at} ge iso(int($before) + 5)
   && $m->{activate_at} le iso(time + 5), 'activate_at: 5 s from now')
    or diag($m->{activate_at});
is_deeply([ @{$m}{qw(live previous candidate)} ],
          [ { %{ $e{v1} }, deltas => [ $e{'v1.1'} ] }, $e{v1c}, undef ],
          'rollback: the delta is live again, in the manifest too');
is(shape($mdir), <<'_EOM_', 'rollback: the manifest as written');
{
  "format": "pred-manifest/1",
  "generated_at": T,
  "activate_at": T,
  "live": {
    "version": "v1",
    "file": "snap-v1.mdb",
    "size": N,
    "checksum": C,
    "entries": 2,
    "created_at": T,
    "deltas": [
      {
        "version": "v1.1",
        "file": "delta-v1.1.mdb",
        "size": N,
        "checksum": C,
        "entries": 2,
        "created_at": T,
        "delta_of": "v1"
      }
    ]
  },
  "previous": {
    "version": "v1c",
    "file": "snap-v1c.mdb",
    "size": N,
    "checksum": C,
    "entries": 3,
    "created_at": T
  },
  "candidate": null
}
_EOM_

# a command without it: a manifest without it
run_check('publish what is live', ['publish', $mdir, 'v1'], 0,
          "v1 is already live\n", '');
ok(!exists manifest($mdir)->{activate_at}, 'no --activate-at, none');

my $usage = "(\"pred-snapshot help\" lists the commands)\n";
for my $bad ('+5x', 'tomorrow', '2026-13-01T00:00:00Z', '0', '+') {
    run_check("--activate-at $bad", ['publish', $mdir, 'v2',
                                     '--activate-at', $bad], 2, '',
              "pred-snapshot: publish: --activate-at takes a time "
              . "(2026-12-01T08:00:00Z, Unix seconds) or +DURATION (+10s)\n"
              . $usage);
}
run_check('--activate-at without a time', ['canary', $mdir, 'v2', '5',
                                           '--activate-at'], 2, '',
          "pred-snapshot: canary: --activate-at takes a time "
          . "(2026-12-01T08:00:00Z, Unix seconds) or +DURATION (+10s)\n"
          . $usage);
is(readlink("$mdir/current"), 'snap-v1.mdb', 'a usage error moves nothing');
ok(!-e "$mdir/candidate", 'no candidate either');

# a time given as a time
run_check('--activate-at TIME', ['publish', $mdir, 'v1',
                                 '--activate-at', '2030-01-02T03:04:05Z'],
          0, "v1 is already live\n", '');
is(manifest($mdir)->{activate_at}, '2030-01-02T03:04:05Z',
   'activate_at as given');
run_check('--activate-at SECONDS', ['publish', $mdir, 'v1',
                                    '--activate-at', '1893456000'],
          0, "v1 is already live\n", '');
is(manifest($mdir)->{activate_at}, '2030-01-01T00:00:00Z',
   'activate_at from Unix seconds');
run_check('publish, no activate_at', ['publish', $mdir, 'v1'], 0,
          "v1 is already live\n", '');

# each rewrite later than the one before, within one second too: a static
# origin's validators (nginx's ETag: mtime and size) change with each
my @mtimes;
for my $pct (qw(10 20 30)) {
    run_check("canary v2 $pct", ['canary', $mdir, 'v2', $pct], 0,
              "candidate v2 (3 entries) at $pct% of keys, live: v1\n", '');
    push @mtimes, (stat "$mdir/manifest.json")[9];
}
ok($mtimes[0] < $mtimes[1] && $mtimes[1] < $mtimes[2],
   'three rewrites, three mtimes') or diag("@mtimes");
run_check('abort v2', ['abort', $mdir], 0, "aborted v2\n", '');


###########################################################################
# 2. pull: each move at the origin reaches the edge, downloading only what
# the edge lacks

# DIR/pull-status.json after a check between t0 and now: its times then
# (last_success undef: none), last_error's message exact or a regex
sub status_is {
    my ($name, $dir, $t0, $want) = @_;
    my %w = (last_error => undef, failures => 0, next_check => undef,
             activate_at => undef, last_success => 'now', %$want);
    my $s = status($dir) // {};
    my $now = sub {
        my ($what, $t) = @_;
        ok(defined $t && $t ge iso($t0) && $t le iso(time),
           "$name: pull-status $what") or diag($t // 'null');
    };
    $now->('last_check', delete $s->{last_check});
    if (defined delete $w{last_success}) {
        $now->('last_success', delete $s->{last_success});
    } else {
        is(delete $s->{last_success}, undef, "$name: no last_success");
    }
    if (defined(my $want_error = $w{last_error})) {
        delete $w{last_error};
        my $e = delete $s->{last_error} // {};
        $now->('last_error at', $e->{at});
        if (ref $want_error) {
            like($e->{message}, $want_error, "$name: last_error");
        } else {
            is($e->{message}, $want_error, "$name: last_error");
        }
    }
    is_deeply($s, \%w, "$name: pull-status.json") or diag(explain($s));
}

sub holds {
    my ($live, $deltas, $cand, $share) = @_;
    return { live => $live, deltas => $deltas, candidate => $cand,
             share => $share };
}

# the edge's folder serves as an origin in turn: its manifest is the one
# it copied, but for when it was written
sub same_manifest {
    my ($name, $dir) = @_;
    is_deeply(body_of(manifest($dir)), body_of(manifest($origin)),
              "$name: the edge's manifest is the origin's");
}

my %ck;
$ck{$_} = checksum("$origin/snap-$_.mdb") for qw(v1 v2 v3);
my $size = -s "$origin/snap-v1.mdb";

is(edge_version($ep1, 'a'), 'status 503', 'the edge serves nothing yet')
    or diag(slurp("$root/logs/error.log"));

run_check('origin: publish v1', ['publish', $origin, 'v1'], 0,
          "published v1 (2 entries)\n", '');
origin_log();

$t0 = time;
run_check('pull v1', ['pull', "$url/", $edge1], 0,
          "downloaded snap-v1.mdb ($ck{v1})\npublished v1 (2 entries)\n", '');
is(origin_log(), "GET /o/manifest.json 200 range=-\n"
                 . "GET /o/snap-v1.mdb 200 range=-\n",
   'pull v1: the manifest, then the file');
status_is('pull v1', $edge1, $t0,
          { origin => $url, holds => holds('v1', [], undef, undef),
            transfers => { files => 1, bytes => $size, resumed => 0 } });
is(files_in($edge1),
   '.lock .pull.lock current manifest.json pull-status.json snap-v1.mdb',
   'pull v1: the files, no part or temporary left');
is(readlink("$edge1/current"), 'snap-v1.mdb', 'pull v1: the pointer');
same_manifest('pull v1', $edge1);
ok(edge_wait($ep1, 'a', 'v1'), 'pull v1: the edge serves v1');
is(edge_version($ep1, 'a'), 'v1', 'pull v1: X-Pred-Version v1');

$t0 = time;
run_check('pull, nothing new', ['pull', "$url/manifest.json", $edge1], 0,
          '', '');
is(origin_log(), "GET /o/manifest.json 200 range=-\n",
   'nothing new: the manifest only');
status_is('nothing new', $edge1, $t0,
          { origin => $url, holds => holds('v1', [], undef, undef),
            transfers => { files => 0, bytes => 0, resumed => 0 } });

run_check('origin: publish v2', ['publish', $origin, 'v2'], 0,
          "published v2 (3 entries), previous: v1\n", '');
run_check('pull v2', ['pull', $url, $edge1], 0,
          "downloaded snap-v2.mdb ($ck{v2})\n"
          . "published v2 (3 entries), previous: v1\n", '');
is(origin_log(), "GET /o/manifest.json 200 range=-\n"
                 . "GET /o/snap-v2.mdb 200 range=-\n",
   'pull v2: v1, the previous version, is there already');
same_manifest('pull v2', $edge1);
ok(edge_wait($ep1, 'c', 'v2'), 'pull v2: the edge serves v2');

run_check('origin: canary v3 25', ['canary', $origin, 'v3', '25'], 0,
          "candidate v3 (4 entries) at 25% of keys, live: v2\n", '');
$t0 = time;
run_check('pull a canary', ['pull', $url, $edge1], 0,
          "downloaded snap-v3.mdb ($ck{v3})\n"
          . "candidate v3 (4 entries) at 25% of keys, live: v2\n", '');
is(readlink("$edge1/candidate"), 'snap-v3.mdb@25', 'canary: the pointer');
status_is('pull a canary', $edge1, $t0,
          { origin => $url, holds => holds('v2', [], 'v3', 25),
            transfers => { files => 1, bytes => $size, resumed => 0 } });
same_manifest('pull a canary', $edge1);

# "VERSION PERCENT" of the edge's candidate once it settles, or "none"
sub edge_candidate {
    my ($port, $want) = @_;
    my $c;
    settle(sub {
        my $s = admin_snapshot($port);
        $c = $s && $s->{candidate} ? "$s->{candidate}{version} "
                                     . "$s->{candidate}{percent}"
                                   : 'none';
    }, $want);
    return $c;
}
is(edge_candidate($ep1, 'v3 25'), 'v3 25', 'canary: the edge has it');

run_check('origin: canary 50', ['canary', $origin, '50'], 0,
          "candidate v3 (4 entries) at 50% of keys, live: v2\n", '');
origin_log();
run_check('pull a share', ['pull', $url, $edge1], 0,
          "candidate v3 (4 entries) at 50% of keys, live: v2\n", '');
is(origin_log(), "GET /o/manifest.json 200 range=-\n", 'share: no file');
is(edge_candidate($ep1, 'v3 50'), 'v3 50', 'share: the edge has it');

run_check('origin: promote', ['promote', $origin], 0,
          "promoted v3 (4 entries), previous: v2\n", '');
run_check('pull a promote', ['pull', $url, $edge1], 0,
          "promoted v3 (4 entries), previous: v2\n", '');
is(origin_log(), "GET /o/manifest.json 200 range=-\n", 'promote: no file');
ok(!-e "$edge1/candidate", 'promote: no candidate');
ok(edge_wait($ep1, 'd', 'v3'), 'promote: the edge serves v3');
is(edge_candidate($ep1, 'none'), 'none', 'promote: the edge has no canary');
same_manifest('pull a promote', $edge1);

snap_build($origin, 'v3.1', $data->('v3.1', qw(d e)),
           args => ['--delta-of', 'v3']);
$ck{'v3.1'} = checksum("$origin/delta-v3.1.mdb");
run_check('origin: publish a delta', ['publish', $origin, 'v3.1'], 0,
          "published delta v3.1 over v3 (2 upserts, 0 deletions), "
          . "1 layer\n", '');
$t0 = time;
run_check('pull a delta', ['pull', $url, $edge1], 0,
          "downloaded delta-v3.1.mdb ($ck{'v3.1'})\n"
          . "published delta v3.1 over v3 (2 upserts, 0 deletions), "
          . "1 layer\n", '');
is(origin_log(), "GET /o/manifest.json 200 range=-\n"
                 . "GET /o/delta-v3.1.mdb 200 range=-\n", 'delta: its file');
status_is('pull a delta', $edge1, $t0,
          { origin => $url, holds => holds('v3', ['v3.1'], undef, undef),
            transfers => { files => 1, bytes => $size, resumed => 0 } });
ok(edge_wait($ep1, 'e', 'v3.1'), 'delta: the edge serves it');
is(edge_version($ep1, 'a'), 'v3', 'delta: the base under it');
same_manifest('pull a delta', $edge1);

run_check('origin: rollback', ['rollback', $origin], 0,
          "rolled back to v2 (3 entries), previous: v3\n"
          . "kept the 1 delta of v3 aside for a rollback\n", '');
run_check('pull a rollback', ['pull', $url, $edge1], 0,
          "rolled back to v2 (3 entries), previous: v3\n"
          . "kept the 1 delta of v3 aside for a rollback\n", '');
is(origin_log(), "GET /o/manifest.json 200 range=-\n",
   'rollback: no download');
ok(edge_wait($ep1, 'a', 'v2'), 'rollback: the edge serves v2');
is(edge_version($ep1, 'e'), 'status 404', 'rollback: without the delta');
same_manifest('pull a rollback', $edge1);

run_check('origin: roll back the rollback', ['rollback', $origin], 0,
          "rolled back to v3 (4 entries), previous: v2\n"
          . "the 1 delta of v3 is live again\n", '');
run_check('pull it', ['pull', $url, $edge1], 0,
          "rolled back to v3 (4 entries), previous: v2\n"
          . "the 1 delta of v3 is live again\n", '');
is(origin_log(), "GET /o/manifest.json 200 range=-\n",
   'rollback again: no download');
ok(edge_wait($ep1, 'e', 'v3.1'), 'rollback again: the delta is back');
same_manifest('pull the rollback back', $edge1);

run_check('origin: compact', ['compact', $origin, '--version', 'v3c'], 0,
          "compacted snap-v3.mdb and 1 delta into v3c: 5 entries\n"
          . "published v3c (5 entries), previous: v3\n"
          . "kept the 1 delta of v3 aside for a rollback\n", '');
$ck{v3c} = checksum("$origin/snap-v3c.mdb");
run_check('pull a compaction', ['pull', $url, $edge1], 0,
          "downloaded snap-v3c.mdb ($ck{v3c})\n"
          . "published v3c (5 entries), previous: v3\n"
          . "kept the 1 delta of v3 aside for a rollback\n", '');
ok(edge_wait($ep1, 'e', 'v3c'), 'compaction: the edge serves it');
same_manifest('pull a compaction', $edge1);

snap_build($origin, 'v4', $data->('v4', qw(a)));
$ck{v4} = checksum("$origin/snap-v4.mdb");
run_check('origin: canary v4 10', ['canary', $origin, 'v4', '10'], 0,
          "candidate v4 (1 entries) at 10% of keys, live: v3c\n", '');
run_check('pull canary v4', ['pull', $url, $edge1], 0,
          "downloaded snap-v4.mdb ($ck{v4})\n"
          . "candidate v4 (1 entries) at 10% of keys, live: v3c\n", '');
is(edge_candidate($ep1, 'v4 10'), 'v4 10', 'canary v4: the edge has it');
run_check('origin: abort', ['abort', $origin], 0, "aborted v4\n", '');
origin_log();
$t0 = time;
run_check('pull an abort', ['pull', $url, $edge1], 0, "aborted v4\n", '');
is(origin_log(), "GET /o/manifest.json 200 range=-\n", 'abort: no file');
ok(!-e "$edge1/candidate", 'abort: no candidate');
is(edge_candidate($ep1, 'none'), 'none', 'abort: the edge has no canary');
status_is('pull an abort', $edge1, $t0,
          { origin => $url, holds => holds('v3c', [], undef, undef),
            transfers => { files => 0, bytes => 0, resumed => 0 } });
same_manifest('pull an abort', $edge1);


###########################################################################
# 3. activate_at: everything downloaded and checked beforehand, the flip
# at that second, not before

snap_build($origin, 'v5', $data->('v5', qw(a b)));
$ck{v5} = checksum("$origin/snap-v5.mdb");
$t0 = time;
run_check('origin: publish v5 at +3s', ['publish', $origin, 'v5',
                                        '--activate-at', '+3s'], 0,
          "published v5 (2 entries), previous: v3c\n", '');
my $at = manifest($origin)->{activate_at};
my $at_epoch = epoch($at);
ok($at_epoch >= int($t0) + 3 && $at_epoch <= time + 3,
   'activate_at: 3 s from now') or diag($at);
origin_log();
my $job = spawn('pull', $url, $edge1);
for (1 .. 100) {
    last if (slurp($job->{out}) // '') =~ /ready/;
    sleep 0.02;
}
is(slurp($job->{out}), "downloaded snap-v5.mdb ($ck{v5})\n"
                       . "ready, activating at $at\n",
   'activate_at: downloaded, then waiting');
my $s = status($edge1);
is($s->{activate_at}, $at, 'activate_at: pull-status says when');
is_deeply($s->{holds}, holds('v3c', [], undef, undef),
          'activate_at: the edge holds what it held');
is(edge_version($ep1, 'a'), 'v3c', 'activate_at: the edge serves v3c');
my $flip = edge_wait($ep1, 'a', 'v5');
check('activate_at: the pull', [reap($job)], 0,
      "downloaded snap-v5.mdb ($ck{v5})\nready, activating at $at\n"
      . "published v5 (2 entries), previous: v3c\n", '');
my $done = time;
ok($flip && $flip >= $at_epoch, 'activate_at: the edge flips at the time, '
                                 . 'not before') or diag("$flip $at_epoch");
ok($flip && $flip < $at_epoch + 1.5, 'activate_at: the edge flips then')
    or diag("$flip $at_epoch");
ok($done >= $at_epoch, 'activate_at: the pull ends after it');
status_is('activate_at', $edge1, $t0,
          { origin => $url, holds => holds('v5', [], undef, undef),
            transfers => { files => 1, bytes => $size, resumed => 0 } });
is(origin_log(), "GET /o/manifest.json 200 range=-\n"
                 . "GET /o/snap-v5.mdb 200 range=-\n"
                 . "GET /o/manifest.json 304 range=-\n",
   'activate_at: v5, then the manifest read again at the time');
same_manifest('pull at activate_at', $edge1);


###########################################################################
# 4. faults: nothing that fails a check is ever live, a folder keeps what it
# served, and the message says what happened; each of these pulls tries 4
# times (1, 2, 4 s between, jittered): they run side by side

# a folder of the origin's, v2 live over v1, served at /f/NAME
sub fault_dir {
    my ($name) = @_;
    my $dir = "$faults/$name";
    make_path($dir);
    for my $v (qw(v1 v2)) {
        copy("$origin/snap-$v.mdb", "$dir/snap-$v.mdb") or die $!;
        my ($rc, $out, $err) = cmd('publish', $dir, $v);
        die $err if $rc;
    }
    return $dir;
}

# a folder of an edge's, serving v1
sub local_dir {
    my ($name) = @_;
    my $dir = "$local/$name";
    make_path($dir);
    copy("$origin/snap-v1.mdb", "$dir/snap-v1.mdb") or die $!;
    my ($rc, $out, $err) = cmd('publish', $dir, 'v1');
    die $err if $rc;
    return $dir;
}

# what a folder serves and holds, pull-status.json aside
sub folder_state {
    my ($dir) = @_;
    # pull's own files: its status, its lock
    return join "\n", (files_in($dir)
                       =~ s/ ?(?:pull-status\.json|\.pull\.lock)\b//gr),
                      map({ readlink("$dir/$_") // '-' } qw(current candidate
                                                            previous)),
                      slurp("$dir/manifest.json") // '-';
}

sub rewrite_manifest {
    my ($dir, $edit) = @_;
    my $m = manifest($dir);
    $edit->($m);
    write_file("$dir/manifest.json", $json->encode($m));
}

my $alt = snap_dir('pull-alt');
snap_build($alt, 'v2', $data->('other', qw(a b c)));
my $v2 = slurp("$origin/snap-v2.mdb");
my $fbase = "http://127.0.0.1:$op/f";
my %fault;

# a file cut short at the origin, the manifest the whole one's
write_file(fault_dir('trunc') . '/snap-v2.mdb', substr($v2, 0, 20000));
# and one with more bytes than the manifest says
write_file(fault_dir('long') . '/snap-v2.mdb', $v2 . 'x' x 100);
# a byte changed in a value: the size is right, the checksum is not
{
    my $bytes = $v2;
    my $at = index($bytes, '{"v":"v2"}');
    die 'no value in the file' if $at < 0;
    substr($bytes, $at + 7, 1) = '3';
    write_file(fault_dir('flip') . '/snap-v2.mdb', $bytes);
}
# another file under the name: sound, another checksum
copy("$alt/snap-v2.mdb", fault_dir('swap') . '/snap-v2.mdb') or die $!;

make_path("$faults/garbage", "$faults/format");
write_file("$faults/garbage/manifest.json", "<html>not JSON</html>\n");
write_file("$faults/format/manifest.json",
           qq{{"format":"pred-manifest/2","live":null}\n});
rewrite_manifest(fault_dir('dotdot'), sub { $_[0]{live}{file} = '../x.mdb' });
rewrite_manifest(fault_dir('slash'), sub {
    $_[0]{candidate} = { %{ $_[0]{previous} }, file => 'snap-a/b.mdb',
                         version => 'a/b', share => 5 };
});
rewrite_manifest(fault_dir('deltapath'), sub {
    $_[0]{live}{deltas} = [ { %{ $_[0]{previous} },
                              file => 'delta-../v1.mdb', version => '../v1',
                              delta_of => 'v2' } ];
});
rewrite_manifest(fault_dir('when'), sub { $_[0]{activate_at} = '+10s' });
fault_dir('conflict');

my %local_before;
$t0 = time;
for my $name (qw(trunc long flip swap garbage format e500 e404 dotdot slash
                 deltapath when conflict notoken)) {
    my $dir = local_dir($name);
    copy("$alt/snap-v2.mdb", "$dir/snap-v2.mdb") if $name eq 'conflict';
    $local_before{$name} = folder_state($dir);
    my $from = $name eq 'e500' ? "http://127.0.0.1:$op/e500/"
             : $name eq 'e404' ? "$fbase/none/"
             : $name eq 'notoken' ? "http://127.0.0.1:$op/tok/"
             : "$fbase/$name/";
    $fault{$name} = spawn('pull', $from, $dir);
}

# a download resumed from a part file of the wrong bytes: refused once,
# then downloaded whole
fault_dir('badpart');
my $badpart = local_dir('badpart');
write_file("$badpart/.pull-snap-v2.mdb.part", "\0" x 18432);
$fault{badpart} = spawn('pull', "$fbase/badpart/", $badpart);

my $altck = checksum("$alt/snap-v2.mdb");
my $msg = sub { "pred-snapshot: pull: $_[0]\n" x 4 };
my $verify = quotemeta("$local/flip/.pull-snap-v2.mdb.part: invalid "
                       . "snapshot: checksum mismatch: content is ")
             . 'fnv1a64:[0-9a-f]{16}' . quotemeta(", metadata says $ck{v2}");
my %want = (
    trunc => "$fbase/trunc/snap-v2.mdb: 20000 bytes, the manifest says "
             . "$size: refused",
    long => "$fbase/long/snap-v2.mdb: more than the $size bytes the "
            . "manifest says: refused",
    # regexes: the changed content's checksum is any
    flip => quotemeta("snap-v2.mdb from $fbase/flip: refused, it fails "
                      . "verify: ") . $verify,
    swap => "snap-v2.mdb from $fbase/swap: refused: the file is version v2 "
            . "with checksum $altck, the manifest says v2 with $ck{v2}",
    garbage => "$fbase/garbage/manifest.json: not a manifest: '[' or '{' "
               . "expected near '<'",
    format => "$fbase/format/manifest.json: not a manifest: \"format\" is "
              . "not \"pred-manifest/1\"",
    e500 => "http://127.0.0.1:$op/e500/manifest.json: HTTP status 500",
    e404 => "$fbase/none/manifest.json: HTTP status 404",
    notoken => "http://127.0.0.1:$op/tok/manifest.json: HTTP status 403",
    when => "$fbase/when/manifest.json: \"activate_at\" is not a time "
            . "(\"2026-12-01T08:00:00Z\")",
    conflict => "$local/conflict/snap-v2.mdb: already here with checksum "
                . "$altck, the origin's is $ck{v2}: a version name stands "
                . "for one content; refused",
);
for my $name (qw(dotdot slash deltapath)) {
    my $member = { dotdot => 'live', slash => 'candidate',
                   deltapath => 'delta' }->{$name};
    $want{$name} = "$fbase/$name/manifest.json: \"$member\" is not a valid "
                   . "entry (file \"snap-V.mdb\" or \"delta-V.mdb\" naming "
                   . "its version, size, checksum"
                   . ($member eq 'candidate' ? ', share' : '') . ')';
}
# the files each fault let in (none), and the bytes it downloaded
my %moved = (trunc => [0, 4 * 20000], long => [0, undef],
             flip => [0, 4 * $size], swap => [0, 4 * $size]);

my %got = map { $_ => [ reap($fault{$_}) ] } keys %fault;
my $took = time - $t0;

for my $name (sort keys %want) {
    my $dir = "$local/$name";
    if ($name eq 'flip') {
        # verify's own line, then pull's with it
        check("fault $name", $got{$name}, 1, '',
              qr/\A(?:pred-snapshot:\ $verify\n
                     pred-snapshot:\ pull:\ $want{flip}\n){4}\z/x);
    } else {
        check("fault $name", $got{$name}, 1, '', $msg->($want{$name}));
    }
    is(folder_state($dir), $local_before{$name},
       "fault $name: the folder is as it was");
    is(readlink("$dir/current"), 'snap-v1.mdb', "fault $name: v1 is live");
    ok(!glob("$dir/.pull-*"), "fault $name: no part file left");
    my ($files, $bytes) = @{ $moved{$name} // [0, 0] };
    if (!defined $bytes) {
        # more than the file each time, as far as a read went past it
        $bytes = status($dir)->{transfers}{bytes};
        ok($bytes > 4 * $size && $bytes <= 4 * ($size + 100),
           "fault $name: the bytes read") or diag($bytes);
    }
    status_is("fault $name", $dir, $t0,
              { origin => $name eq 'e500' ? "http://127.0.0.1:$op/e500"
                        : $name eq 'e404' ? "$fbase/none"
                        : $name eq 'notoken' ? "http://127.0.0.1:$op/tok"
                        : "$fbase/$name",
                last_error => $name eq 'flip' ? qr/\A$want{flip}\z/
                                              : $want{$name},
                last_success => undef, failures => 4,
                holds => holds('v1', [], undef, undef),
                transfers => { files => $files, bytes => $bytes,
                               resumed => 0 } });
}
ok(!-e "$local/trunc/snap-v2.mdb" && !-e "$local/flip/snap-v2.mdb"
   && !-e "$local/swap/snap-v2.mdb", 'no refused file is kept');

# 4 tries, 0.5 to 1 s, 1 to 2 s and 2 to 4 s apart
cmp_ok($took, '>=', 3.5, 'the faults: 4 tries, backing off');

check('a part of the wrong bytes', $got{badpart}, 0,
      "resuming snap-v2.mdb at byte 18432\n"
      . "downloaded snap-v2.mdb ($ck{v2})\n"
      . "published v2 (3 entries), previous: v1\n",
      "pred-snapshot: $badpart/.pull-snap-v2.mdb.part: invalid snapshot: "
      . "not a readable snapshot: not an LMDB file\n"
      . "pred-snapshot: pull: snap-v2.mdb from $fbase/badpart: refused, it "
      . "fails verify: $badpart/.pull-snap-v2.mdb.part: invalid snapshot: "
      . "not a readable snapshot: not an LMDB file\n");
status_is('a part of the wrong bytes', $badpart, $t0,
          { origin => "$fbase/badpart",
            last_error => "snap-v2.mdb from $fbase/badpart: refused, it "
                          . "fails verify: $badpart/.pull-snap-v2.mdb.part: "
                          . "invalid snapshot: not a readable snapshot: not "
                          . "an LMDB file",
            holds => holds('v2', [], undef, undef),
            transfers => { files => 1, bytes => 18432 + $size,
                           resumed => 1 } });
origin_log();

# a download resumed where it was cut
fault_dir('resume');
my $resume = local_dir('resume');
write_file("$resume/.pull-snap-v2.mdb.part", substr($v2, 0, 18432));
$t0 = time;
run_check('a resumed download', ['pull', "$fbase/resume", $resume], 0,
          "resuming snap-v2.mdb at byte 18432\n"
          . "downloaded snap-v2.mdb ($ck{v2})\n"
          . "published v2 (3 entries), previous: v1\n", '');
is(origin_log(), "GET /f/resume/manifest.json 200 range=-\n"
                 . "GET /f/resume/snap-v2.mdb 206 range=bytes=18432-\n",
   'resumed: the rest of the file, a 206');
status_is('resumed', $resume, $t0,
          { origin => "$fbase/resume", holds => holds('v2', [], undef, undef),
            transfers => { files => 1, bytes => $size - 18432,
                           resumed => 1 } });
ok(!glob("$resume/.pull-*"), 'resumed: no part file left');

# the token reaches the origin: the manifest and each file
my $token = local_dir('token');
$ck{v5} //= checksum("$origin/snap-v5.mdb");
run_check('with the token', ['pull', "http://127.0.0.1:$op/tok/", $token,
                             '--header', 'X-Fleet-Token: s3cret',
                             '--timeout', '5s', '--rate-limit', '10M'], 0,
          "downloaded snap-v5.mdb ($ck{v5})\n"
          . "published v5 (2 entries), previous: v1\n"
          . "downloaded snap-v3c.mdb ($ck{v3c})\n", '');
is(origin_log(), "GET /tok/manifest.json 200 range=-\n"
                 . "GET /tok/snap-v5.mdb 200 range=-\n"
                 . "GET /tok/snap-v3c.mdb 200 range=-\n",
   'with the token: the live version, then the rollback target');

# a redirect is followed, for the manifest and the files
my $redir = snap_dir('pull-redir');
run_check('through a redirect', ['pull', "http://127.0.0.1:$op/redir/",
                                 $redir], 0,
          "downloaded snap-v5.mdb ($ck{v5})\npublished v5 (2 entries)\n"
          . "downloaded snap-v3c.mdb ($ck{v3c})\n", '');
is(origin_log(), "GET /redir/manifest.json 302 range=-\n"
                 . "GET /o/manifest.json 200 range=-\n"
                 . "GET /redir/snap-v5.mdb 302 range=-\n"
                 . "GET /o/snap-v5.mdb 200 range=-\n"
                 . "GET /redir/snap-v3c.mdb 302 range=-\n"
                 . "GET /o/snap-v3c.mdb 200 range=-\n",
   'redirect: each request redirected');
is(status($redir)->{origin}, "http://127.0.0.1:$op/redir",
   'redirect: the origin as given');

# usage errors: exit 2, nothing fetched
my $use = 'pred-snapshot: pull: use "pull URL DIR [--watch INTERVAL] '
          . '[--header \'Name: value\'] [--timeout T] [--rate-limit '
          . "BYTES/s]\"\n$usage";
my $hdr = "pred-snapshot: pull: --header takes \"Name: value\" on one "
          . "line\n$usage";
for my $case (
    [[], $use], [[$url], $use], [[$url, $redir, 'x'], $use],
    [['ftp://127.0.0.1/o', $redir], 'pred-snapshot: pull: "ftp://127.0.0.1'
     . '/o": an http:// or https:// URL of the origin\'s snapshot folder'
     . "\n$usage"],
    [[$url, $redir, '--watch', '50ms'], 'pred-snapshot: pull: --watch takes'
     . " an interval of 100ms or more: \"50ms\"\n$usage"],
    [[$url, $redir, '--timeout', 'soon'], 'pred-snapshot: pull: --timeout '
     . "takes a time of 100ms or more: \"soon\"\n$usage"],
    [[$url, $redir, '--rate-limit', '0'], 'pred-snapshot: pull: '
     . "--rate-limit takes bytes per second (\"20M\"): \"0\"\n$usage"],
    [[$url, $redir, '--header', 'X-Fleet-Token'], $hdr],
    [[$url, $redir, '--header', ': s3cret'], $hdr],
    [[$url, $redir, '--header', "X-Fleet-Token: s3cret\r\nHost: x"], $hdr],
    [[$url, $redir, '--resume'], "pred-snapshot: pull: unknown option "
     . "\"--resume\"\n$usage"],
    [[$url, $redir, '--watch'], "pred-snapshot: pull: --watch needs a "
     . "value\n$usage"],
) {
    my ($args, $err) = @$case;
    run_check('pull ' . join(' ', @$args) =~ s/\r\n/\\r\\n/r,
              ['pull', @$args], 2, '', $err);
}
run_check('pull into a file', ['pull', $url, "$redir/current"], 1, '',
          "pred-snapshot: $redir/current: not a folder\n");
is(origin_log(), '', 'usage errors: no request');


###########################################################################
# 5. pull --watch: each change as the origin makes it, two within one
# second too, and a flip the origin takes back before its time is not made

$t0 = time;
my $watch = spawn('pull', $url, $edge2, '--watch', '100ms');
ok(edge_wait($ep2, 'a', 'v5'), 'watch: the edge serves v5');

sub wait_status {
    my ($dir, $test) = @_;
    for (1 .. 150) {
        my $s = eval { status($dir) };
        return 1 if $s && $test->($s);
        sleep 0.02;
    }
    return 0;
}

ok(wait_status($edge2, sub { $_[0]{next_check} }), 'watch: a next check');
my $st = status($edge2);
ok($st->{next_check} ge iso($t0) && $st->{next_check} le iso(time + 1),
   'watch: the next check within the interval') or diag($st->{next_check});

# two changes of the same size within one second: the manifest's ETag
# (nginx's: its mtime and size) must change all the same
sleep(1.02 - (time - int time));
my $second = int time;
run_check('watch: canary v4 10', ['canary', $origin, 'v4', '10'], 0,
          "candidate v4 (1 entries) at 10% of keys, live: v5\n", '');
my $len = -s "$origin/manifest.json";
ok(wait_status($edge2, sub { ($_[0]{holds}{share} // 0) == 10 }),
   'watch: the canary at 10%');
run_check('watch: canary 20', ['canary', $origin, '20'], 0,
          "candidate v4 (1 entries) at 20% of keys, live: v5\n", '');
is(-s "$origin/manifest.json", $len, 'the same size');
diag('the two canaries were seconds apart: this run does not show it')
    if int time != $second;
ok(wait_status($edge2, sub { ($_[0]{holds}{share} // 0) == 20 }),
   'watch: the canary at 20%');

run_check('watch: abort', ['abort', $origin], 0, "aborted v4\n", '');
ok(wait_status($edge2, sub { !defined $_[0]{holds}{candidate} }),
   'watch: the canary aborted');

# a flip the origin takes back before its time
snap_build($origin, 'v6', $data->('v6', qw(a b)));
$ck{v6} = checksum("$origin/snap-v6.mdb");
run_check('watch: publish v6 at +2s', ['publish', $origin, 'v6',
                                       '--activate-at', '+2s'], 0,
          "published v6 (2 entries), previous: v5\n", '');
$at = manifest($origin)->{activate_at};
ok(wait_status($edge2, sub { ($_[0]{activate_at} // '') eq $at }),
   'watch: v6 pending');
is(status($edge2)->{holds}{live}, 'v5', 'watch: v5 live meanwhile');
run_check('watch: roll it back', ['rollback', $origin], 0,
          "rolled back to v5 (2 entries), previous: v6\n", '');
my %served;
while (time < epoch($at) + 1) {
    $served{ edge_version($ep2, 'a') }++;
    sleep 0.02;
}
is_deeply([ sort keys %served ], ['v5'], 'watch: v6 was never served');
is(readlink("$edge2/current"), 'snap-v5.mdb', 'watch: v5 live');
ok(wait_status($edge2, sub { !defined $_[0]{activate_at} }),
   'watch: nothing pending');

kill 'TERM', $watch->{pid};
check('watch: stopped', [reap($watch)], 0,
      "downloaded snap-v5.mdb ($ck{v5})\npublished v5 (2 entries)\n"
      . "downloaded snap-v3c.mdb ($ck{v3c})\n"
      . "downloaded snap-v4.mdb ($ck{v4})\n"
      . "candidate v4 (1 entries) at 10% of keys, live: v5\n"
      . "candidate v4 (1 entries) at 20% of keys, live: v5\n"
      . "aborted v4\n"
      . "downloaded snap-v6.mdb ($ck{v6})\n"
      . "ready, activating at $at\n", '');
$st = status($edge2);
is($st->{next_check}, undef, 'stopped: no next check');
is($st->{failures}, 0, 'stopped: no failure');


###########################################################################
# 6. fleet-status: the edges' admin API side by side

my @nodes = map { "http://127.0.0.1:$_/pred-admin/snapshot" } $ep1, $ep2;
# the NODE column is as wide as the longest URL asked, 40 at least
our $W;
sub nodes_width {
    my $w = 40;
    $w = length > $w ? length : $w for @_;
    return $w;
}
our $head;
sub head_for {
    $W = nodes_width(@_);
    $head = sprintf("%-*s %-24s %-12s %-7s %-9s %-5s %s\n", $W, 'NODE',
                    'LIVE', 'CANDIDATE', 'SHARE', 'AGE', 'STALE',
                    'LAST SWAP');
}
head_for(@nodes);

# a row of the table, its age any
sub row {
    my ($node, $live, $cand, $share, $age, $stale, $swap) = @_;
    return quotemeta(sprintf('%-*s %-24s %-12s %-7s ', $W, $node, $live,
                             $cand, $share))
           . ($age ? '\d+[smhd]\ +' : '-\ +')
           . quotemeta(sprintf("%-5s %s\n", $stale, $swap));
}

run_check('fleet-status: one version', ['fleet-status', @nodes], 0,
          qr/\A\Q$head\E${\ row($nodes[0], 'v5', '-', '-', 1, 'no', '-')
                       }${\ row($nodes[1], 'v5', '-', '-', 1, 'no', '-')
                       }2 nodes answered, all serving the same\n\z/, '');

# edge 2 goes its own way
run_check('edge 2: canary v4 at 30%', ['canary', $edge2, 'v4', '30'], 0,
          "candidate v4 (1 entries) at 30% of keys, live: v5\n", '');
is(edge_candidate($ep2, 'v4 30'), 'v4 30', 'edge 2 has the canary');
run_check('fleet-status: a canary on one', ['fleet-status', @nodes], 1,
          qr/\A\Q$head\E${\ row($nodes[0], 'v5', '-', '-', 1, 'no', '-')
                       }${\ row($nodes[1], 'v5', 'v4', '30%', 1, 'no', '-')
                       }nodes disagree\n\z/, '');

run_check('edge 2: publish v6', ['publish', $edge2, 'v6'], 0,
          "published v6 (2 entries), previous: v5\ndropped candidate v4\n",
          '');
my $swapped = edge_wait($ep2, 'a', 'v6');
ok($swapped, 'edge 2 serves v6');

# an edge's last swap, as its metrics say
sub last_swap {
    my ($port, $name) = @_;
    my $text = $http->get("http://127.0.0.1:$port/metrics")->{content};
    return $text =~ /^pred_snapshot_last_swap_timestamp_seconds
                     \{snapshot="$name"\}\ (\d+)$/mx ? $1 : undef;
}
my $swap_at = last_swap($ep2, 'ctr2');
ok($swap_at && $swap_at >= int($swapped) - 1, 'edge 2: the swap in metrics');
my $swap1 = last_swap($ep1, 'ctr');
ok($swap1 && $swap1 < $swap_at, 'edge 1 swapped before');

# with the swaps known, a disagreement within --max-skew of the newest is
# a flip under way
run_check('fleet-status: within --max-skew', ['fleet-status', '--metrics',
                                              '/metrics', @nodes], 0,
          qr/\A\Q$head\E${\ row($nodes[0], 'v5', '-', '-', 1, 'no',
                                iso($swap1))
                       }${\ row($nodes[1], 'v6', '-', '-', 1, 'no',
                                iso($swap_at))
                       }\Qnodes disagree, within --max-skew of the newest \E
                        \Qswap (${\ iso($swap_at)})\E\n\z/x,
          '');
sleep(1.05 - (time - int time)) while int time <= $swap_at;
run_check('fleet-status: past --max-skew', ['fleet-status', '--metrics',
                                            '/metrics', '--max-skew', '0s',
                                            @nodes], 1,
          qr/\A\Q$head\E${\ row($nodes[0], 'v5', '-', '-', 1, 'no',
                                iso($swap1))
                       }${\ row($nodes[1], 'v6', '-', '-', 1, 'no',
                                iso($swap_at))
                       }nodes disagree, past --max-skew of the newest swap\n\z/,
          '');

# a node that does not answer, and one that is no admin API
my $gone = 'http://127.0.0.1:' . free_port() . '/pred-admin/snapshot';
my $other = "http://127.0.0.1:$op/o/manifest.json";
head_for($nodes[0], $gone, $other);
run_check('fleet-status: a node down', ['fleet-status', '--timeout', '2s',
                                        $nodes[0], $gone, $other], 1,
          qr/\A\Q$head\E${\ row($nodes[0], 'v5', '-', '-', 1, 'no', '-')
                       }${\ row($gone, '(no answer)', '-', '-', 0, '-',
                                'Couldn\'t connect to server')
                       }${\ row($other, '(not a snapshot answer)', '-', '-',
                                0, '-', '-')
                       }2 of 3 nodes did not say what they serve
1 node answered\n\z/,
          "pred-snapshot: fleet-status: $gone: Couldn't connect to server\n"
          . "pred-snapshot: fleet-status: $other: not the admin API's GET "
          . ".../snapshot\n");

my $fu = "$usage";
for my $case (
    [[], 'no node: give each node\'s admin snapshot URL '
         . '(http://NODE/pred-admin/snapshot)'],
    [['--max-skew', 'long', @nodes], '--max-skew takes a time ("30s"): '
                                     . '"long"'],
    [['--metrics', 'metrics', @nodes], '--metrics takes the metrics '
                                       . 'location\'s path ("/metrics")'],
    [['--timeout', '10ms', @nodes], '--timeout takes a time of 100ms or '
                                    . 'more: "10ms"'],
    [['--header', 'X-Fleet-Token', @nodes], '--header takes "Name: value" '
                                            . 'on one line'],
    [['127.0.0.1:1'], 'use "fleet-status [--max-skew T] [--metrics PATH] '
                      . '[--timeout T] [--header \'Name: value\'] URL...", '
                      . 'each URL a node\'s admin GET .../snapshot'],
) {
    my ($args, $err) = @$case;
    run_check("fleet-status @$args", ['fleet-status', @$args], 2, '',
              "pred-snapshot: fleet-status: $err\n$usage");
}

###########################################################################
# 7. what a review found: an error page is not the start of a file, a
# stop ends a download at once, a manifest without "previous", a previous
# version that failed to come is tried again, parts nothing names are
# removed, a checksum cannot write log lines, a day that does not exist

{
    my $late = fault_dir('late');
    rename("$late/snap-v2.mdb", "$late/snap-v2.mdb.away") or die $!;
    my $dir = local_dir('late');
    write_file("$dir/.pull-snap-v9.mdb.part", 'x' x 1000);
    my $job = spawn('pull', "$fbase/late/", $dir);
    sleep 0.3;
    rename("$late/snap-v2.mdb.away", "$late/snap-v2.mdb") or die $!;
    my ($rc, $out, $err) = reap($job);
    is($rc, 0, 'a file that was not there yet: pulled');
    unlike($out, qr/resuming/, 'the 404 page is not resumed from')
        or diag($out);
    is($err, "pred-snapshot: pull: $fbase/late/snap-v2.mdb: HTTP status "
             . "404\n", 'the 404 is said');
    like($out, qr/^removed \.pull-snap-v9\.mdb\.part: the origin's /m,
         'a part nothing names is removed');
    ok(!-e "$dir/.pull-snap-v9.mdb.part" && !glob("$dir/.pull-*"),
       'no part file left');
    origin_log();
}

{
    # big enough that the socket's buffers do not hold it all
    my $slow = "$faults/slow";
    make_path($slow);
    snap_build($slow, 'big', join '', map {
        qq{{"key":"k$_","value":{"v":"big","n":$_}}\n}
    } 1 .. 150000);
    my ($rc0, $out0, $err0) = cmd('publish', $slow, 'big');
    die $err0 if $rc0;
    my $dir = local_dir('slow');
    my $job = spawn('pull', "$fbase/slow/", $dir, '--watch', '1s',
                    '--rate-limit', '50K');
    sleep 1;
    kill 'TERM', $job->{pid};
    my $at = time;
    my ($rc, $out, $err) = reap($job);
    cmp_ok(time - $at, '<', 1, 'SIGTERM ends a download at once');
    is($rc, 0, 'pull --watch stopped: exit 0');
    is(readlink("$dir/current"), 'snap-v1.mdb', 'stopped: nothing flipped');
    ok(-s "$dir/.pull-snap-big.mdb.part", 'stopped: the part is kept');
    like(status($dir)->{last_error}{message} // '', qr/stopped/,
         'stopped: said in pull-status.json');
    origin_log();
}

{
    my $noprev = fault_dir('noprev');
    rewrite_manifest($noprev, sub { delete $_[0]{previous} });
    run_check('a manifest without "previous"',
              ['pull', "$fbase/noprev/", local_dir('noprev')], 0,
              "downloaded snap-v2.mdb ($ck{v2})\n"
              . "published v2 (3 entries), previous: v1\n", '');
    unlike(origin_log(), qr/null/, 'no request for a file it does not name');
}

{
    # v3 live, v2 previous, v2's file missing at first
    my $prev = fault_dir('prevlate');
    copy("$origin/snap-v3.mdb", "$prev/snap-v3.mdb") or die $!;
    my ($rc, $out, $err) = cmd('publish', $prev, 'v3');
    die $err if $rc;
    rename("$prev/snap-v2.mdb", "$prev/snap-v2.mdb.away") or die $!;
    my $dir = "$local/prevlate";
    make_path($dir);
    my $job = spawn('pull', "$fbase/prevlate/", $dir, '--watch', '200ms');
    ok(settle(sub { readlink("$dir/current") // '' }, 'snap-v3.mdb'),
       'the previous version missing: the flip is made');
    rename("$prev/snap-v2.mdb.away", "$prev/snap-v2.mdb") or die $!;
    ok(settle(sub { -e "$dir/snap-v2.mdb" ? 1 : 0 }, 1),
       'the previous version is tried again, and comes');
    kill 'TERM', $job->{pid};
    reap($job);
    origin_log();
}

{
    my $ck = fault_dir('cknl');
    rewrite_manifest($ck, sub {
        $_[0]{live}{checksum} = "x\npred-snapshot: pull: all good";
    });
    my ($rc, $out, $err) = cmd('pull', "$fbase/cknl/", local_dir('cknl'));
    is($rc, 1, 'a checksum that is not one: refused');
    unlike($err, qr/^pred-snapshot: pull: all good/m,
           'a manifest writes no line of its own into the log');
    origin_log();
}

run_check('--activate-at on a day that does not exist',
          ['abort', fault_dir('feb31'), '--activate-at',
           '2026-02-31T08:00:00Z'], 2, '', qr/--activate-at takes a time/);

nginx_stop();

my $errors = slurp("$root/logs/error.log");
unlike($errors, qr/\[(?:alert|crit|emerg)\]/, 'no alert in nginx\'s log');

done_testing();
