# The metrics across a reload: each location (by pred_name) and each
# snapshot (by name) keeps its own counters when a reload adds, removes or
# reorders them; a new name starts at 0.
#
# Plain Perl against PredNginx's standalone nginx (it reloads), the same
# under any Test::Nginx.
use strict;
use warnings;

use lib 't';
use File::Spec ();
use HTTP::Tiny ();
use Test::More;
use Time::HiRes qw(sleep);

use PredTest;
use PredNginx;

my $port = free_port();
my $root = File::Spec->rel2abs('t/servroot-metrics-reload');
my $http = HTTP::Tiny->new(timeout => 5);

my $one = snap_dir('mreload1');
snap_build($one, 'v1', qq{{"key":"k","value":1}\n});
snap_publish($one, 'v1');
my $two = snap_dir('mreload2');
snap_build($two, 'w1', qq{{"key":"k","value":2}\n});
snap_publish($two, 'w1');

sub get { return $http->get("http://127.0.0.1:$port$_[0]") }

sub conf {
    my (@locations) = @_;
    my %snap = (b => 'one', a => 'two', c => 'two');
    my $locs = join '', map {
        "        location = /$_ { pred_key \$arg_id; pred_snapshot $snap{$_}; "
        . "pred; }\n"
    } @locations;
    my $snaps = $locations[0] eq 'b'
                ? "    pred_snapshot_path one $one;\n"
                  . "    pred_snapshot_path two $two;\n"
                : "    pred_snapshot_path two $two;\n"
                  . "    pred_snapshot_path one $one;\n";
    return <<"_EOC_";
$snaps    server {
        listen 127.0.0.1:$port;
$locs        location = /metrics { pred_metrics; }
    }
_EOC_
}

is(nginx_start($root, $port, conf('b')), 0, 'nginx starts')
    or BAIL_OUT(log_text());
is(get('/b?id=k')->{content}, '1', 'a snapshot hit') for 1 .. 3;

my $m;
for (1 .. 40) {
    $m = metrics();
    last if ($m->{'pred_requests_total{location="/b",source="snapshot"}'}
             // 0) >= 3;
    sleep 0.05;
}
is($m->{'pred_requests_total{location="/b",source="snapshot"}'}, 3,
   '/b counted its hits');
my $swaps_one = $m->{'pred_snapshot_swaps_total{snapshot="one"}'};
ok($swaps_one >= 1, 'snapshot "one" counted its swaps');

# /a goes first and the snapshots swap places
is(nginx_reconf(conf('a', 'b')), 0, 'reload with /a before /b');
$m = metrics();
is($m->{'pred_requests_total{location="/b",source="snapshot"}'}, 3,
   '/b keeps its counts');
is($m->{'pred_requests_total{location="/a",source="snapshot"}'}, 0,
   'the new /a starts at 0');
ok($m->{'pred_snapshot_swaps_total{snapshot="one"}'} >= $swaps_one,
   'snapshot "one" keeps its swaps in its new place');
is(get('/a?id=k')->{content}, '2', '/a answers');
# counted in the log phase, maybe by the other worker after this scrape
for (1 .. 40) {
    $m = metrics();
    last if ($m->{'pred_requests_total{location="/a",source="snapshot"}'}
             // 0) >= 1;
    sleep 0.05;
}
is($m->{'pred_requests_total{location="/a",source="snapshot"}'}, 1,
   '/a counts its own hit');
is($m->{'pred_requests_total{location="/b",source="snapshot"}'}, 3,
   'and not in /b');

# /b goes away, /c comes: /c starts at 0, not with /b's counts
is(nginx_reconf(conf('a', 'c')), 0, 'reload with /c instead of /b');
$m = metrics();
is($m->{'pred_requests_total{location="/c",source="snapshot"}'}, 0,
   'the new /c does not inherit the counts of /b');
is($m->{'pred_requests_total{location="/a",source="snapshot"}'}, 1,
   '/a keeps its count');
ok(!exists $m->{'pred_requests_total{location="/b",source="snapshot"}'},
   '/b is no longer shown');

unlike(log_text(), qr/\[(?:alert|crit|emerg)\]/, 'no alert in the log');

nginx_stop();

done_testing();
