# conf-examples/prometheus/ against Debian's prometheus: promtool accepts
# alerts.yml and its unit tests pass; dashboard.json is well formed; and a
# real Prometheus, scraping a real nginx with the module and loading
# alerts.yml, finds data for every dashboard query, every recording rule
# and every alert's operands.
#
# An alert's operands: its expression split at the top level on and, or
# and unless; each part without its final comparison when that is with a
# constant (keep the left-hand side: "x > 0.05" is x), both sides when it
# is with another query. Each must return data where the module runs, so
# that a misspelt family or label cannot hide in a rule that never fires.
#
# Plain Perl against PredNginx's standalone nginx, the same under any
# Test::Nginx.
use strict;
use warnings;

use lib 't';
use File::Path qw(make_path);
use File::Spec ();
use HTTP::Tiny ();
use JSON::PP ();
use Test::More;
use Time::HiRes qw(sleep time);

use PredTest;
use PredNginx;

plan skip_all => 'memcheck is too slow to feed Prometheus'
    if $ENV{TEST_NGINX_USE_VALGRIND};

my $promtool = -x '/usr/bin/promtool' ? '/usr/bin/promtool'
               : BAIL_OUT('promtool is not installed (Debian: prometheus)');
my $prometheus = '/usr/bin/prometheus';
-x $prometheus or BAIL_OUT('prometheus is not installed (Debian: prometheus)');

my $kit = File::Spec->rel2abs('conf-examples/prometheus');
my $root = File::Spec->rel2abs('t/servroot-prometheus');
my $http = HTTP::Tiny->new(timeout => 5);
my $json = JSON::PP->new;
my $started = time;

# ports of this test's range when TEST_NGINX_PORT gives one, else free ones
my ($port, $model, $prom) = $ENV{TEST_NGINX_PORT}
                            ? map { $ENV{TEST_NGINX_PORT} + 61 + $_ } 0 .. 2
                            : map { free_port() } 0 .. 2;

sub slurp {
    my ($path) = @_;
    open my $in, '<', $path or die "$path: $!";
    local $/;
    return <$in>;
}

# --- the files alone

my $out = `$promtool check rules $kit/alerts.yml 2>&1`;
is($? >> 8, 0, 'promtool check rules: exit 0') or diag($out);
unlike($out, qr/warn/i, 'promtool check rules: no warnings') or diag($out);

$out = `cd $kit && $promtool test rules alerts_test.yml 2>&1`;
is($? >> 8, 0, 'promtool test rules: the unit tests pass') or diag($out);
like($out, qr/SUCCESS/, 'promtool test rules: SUCCESS');

my $rules_text = slurp("$kit/alerts.yml");
my $nrules = () = $rules_text =~ /^\s*- (?:record|alert):/mg;
my %tested = map { $_ => 1 } slurp("$kit/alerts_test.yml")
                             =~ /^\s*alertname: (\S+)$/mg;
my @alerts = $rules_text =~ /^\s*- alert: (\S+)$/mg;
is_deeply([grep { !$tested{$_} } @alerts], [],
          'alerts_test.yml tests every alert');

my $dash = eval { $json->decode(slurp("$kit/dashboard.json")) };
ok($dash, 'dashboard.json is JSON') or diag($@);
$dash ||= {};
is($dash->{schemaVersion}, 39, 'dashboard: schemaVersion 39');
my %vars = map { $_->{name} => $_ } @{ $dash->{templating}{list} || [] };
is($vars{datasource}{type}, 'datasource', 'dashboard: a datasource variable');
ok($vars{$_} && $vars{$_}{type} eq 'query', "dashboard: a $_ variable")
    for qw(instance location);

my (@panel_exprs, %ids);
for my $p (@{ $dash->{panels} || [] }) {
    $ids{$p->{id}}++;
    next if $p->{type} eq 'row';
    my @targets = @{ $p->{targets} || [] };
    ok(@targets, "panel \"$p->{title}\" has targets");
    for my $t (@targets) {
        ok(defined $t->{expr} && $t->{expr} =~ /\S/,
           "panel \"$p->{title}\" $t->{refId}: an expr");
        is($t->{datasource}{uid}, '${datasource}',
           "panel \"$p->{title}\" $t->{refId}: the datasource variable");
        push @panel_exprs, ["panel \"$p->{title}\" $t->{refId}",
                            $t->{expr}];
    }
}
is_deeply([grep { $ids{$_} > 1 } sort keys %ids], [],
          'dashboard: panel ids are unique');

# --- a real nginx and a real Prometheus

my $snap = snap_dir('prometheus');
my $keys = join '', map { qq{{"key":"k$_","value":{"score":0.$_}}\n} } 0 .. 9;
snap_build($snap, 'v1', $keys, args => ['--freshness-sla', '1h']);
snap_publish($snap, 'v1');
snap_build($snap, 'v2', $keys, args => ['--freshness-sla', '1h']);
my ($rc, $msg) = pred_snapshot('canary', $snap, 'v2', '25');
is($rc, 0, 'a candidate at 25%') or diag($msg);

my $conf = <<"_EOC_";
    pred_cache_zone zone=hot:1m;
    pred_snapshot_path main $snap check=100ms;
    pred_upstream_breaker failures=1000 cooldown=1s;

    # the models: one that answers, one that fails, a cascade stage
    server {
        listen 127.0.0.1:$model;
        location /ok/ { return 200 '{"score":0.5}'; }
        location /broken/ { return 500; }
        location /stage/ {
            return 200 '{"decision":"allow","confidence":0.99}';
        }
    }

    server {
        listen 127.0.0.1:$port;

        # snapshot hits (some from the candidate), model misses, the cache
        location = /api {
            pred_name api;
            pred_key \$arg_id;
            pred_cache hot;
            pred_snapshot main;
            pred_shadow;
            pred_upstream /_model timeout=1s;
            pred_fallback stale 'default={"score":0}';
            pred;
        }

        # the model fails: the fallback chain answers
        location = /fallback {
            pred_name fallback;
            pred_key \$arg_id;
            pred_upstream /_broken timeout=1s;
            pred_fallback 'default={"score":0}';
            pred;
        }

        # a cascade of one stage behind the snapshot
        location = /cascade {
            pred_name cascade;
            pred_key \$arg_id;
            pred_snapshot main;
            pred_cascade /_stage timeout=500ms;
            pred;
        }

        location /_model {
            internal;
            proxy_pass http://127.0.0.1:$model/ok/\$pred_key_escaped;
        }
        location /_broken {
            internal;
            proxy_pass http://127.0.0.1:$model/broken/\$pred_key_escaped;
        }
        location /_stage {
            internal;
            proxy_pass http://127.0.0.1:$model/stage/\$pred_key_escaped;
        }

        location = /metrics { pred_metrics; }
    }
_EOC_
is(nginx_start($root, $port, $conf), 0, 'nginx starts')
    or BAIL_OUT(log_text());

make_path("$root/prometheus");
write_file("$root/prometheus.yml", <<"_EOY_");
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $kit/alerts.yml
scrape_configs:
  - job_name: pred
    static_configs:
      - targets: ['127.0.0.1:$port']
_EOY_

my $prom_pid = fork // die "fork: $!";
if ($prom_pid == 0) {
    open STDOUT, '>', "$root/prometheus.log" or die;
    open STDERR, '>&', \*STDOUT or die;
    exec $prometheus, "--config.file=$root/prometheus.yml",
         "--storage.tsdb.path=$root/prometheus",
         "--web.listen-address=127.0.0.1:$prom", '--log.level=warn'
        or die "exec: $!";
}

# a test that dies half way must not leave Prometheus behind
my $owner = $$;
END {
    if ($prom_pid && $$ == $owner && kill 0, $prom_pid) {
        kill 'TERM', $prom_pid;
        waitpid $prom_pid, 0;
    }
}

my $api = "http://127.0.0.1:$prom/api/v1";
my $ready;
for (1 .. 100) {
    last if $ready = $http->get("http://127.0.0.1:$prom/-/ready")->{success};
    sleep 0.1;
}
ok($ready, 'prometheus is ready') or diag(slurp("$root/prometheus.log"));

sub query {
    my ($expr) = @_;
    my $res = $http->get("$api/query?"
                         . $http->www_form_urlencode({ query => $expr }));
    my $body = eval { $json->decode($res->{content}) } || {};
    return $body->{status} && $body->{status} eq 'success'
           ? $body->{data}{result} : undef;
}

sub scrapes {
    my $n = query('count_over_time(up{job="pred"}[1m])');
    return $n && @$n ? $n->[0]{value}[1] : 0;
}

# traffic while it scrapes, every source the setup has twice a second,
# until it has scraped 5 times (its first scrape comes some seconds after
# it starts)
my $get = sub { $http->get("http://127.0.0.1:$port$_[0]") };
my %seen;
for my $round (1 .. 60) {
    my $t0 = time;
    for my $path ((map { "/api?id=k$_" } 0 .. 9), "/api?id=m$round",
                  "/api?id=m$round", "/fallback?id=f$round",
                  "/cascade?id=c$round", '/api?id=')
    {
        my $res = $get->($path);
        $seen{$res->{headers}{'x-pred-source'} // $res->{status}}++;
    }
    last if scrapes() >= 5;
    sleep 0.5 - (time - $t0) if time - $t0 < 0.5;
}
is_deeply([sort keys %seen],
          [qw(400 cache default snapshot upstream)],
          'traffic: answers from every tier, fallbacks and errors');

# every rule evaluated
my $groups;
for (1 .. 100) {
    my $body = eval { $json->decode($http->get("$api/rules")->{content}) };
    $groups = $body ? $body->{data}{groups} : [];
    last if @$groups && !grep { $_->{health} ne "ok" }
                                map { @{ $_->{rules} } } @$groups;
    sleep 0.2;
}

my @rules = map { @{ $_->{rules} } } @$groups;
is(scalar @rules, $nrules, "prometheus loaded all $nrules rules");
is_deeply([sort map { $_->{name} } @$groups], [qw(pred.alerts pred.rules)],
          'both rule groups');
for my $r (@rules) {
    ok($r->{health} eq 'ok' && !$r->{lastError},
       "rule $r->{name}: health ok")
        or diag("$r->{health}: " . ($r->{lastError} // ''));
}

# the top level of a PromQL expression: what is nested in (), {}, [] or a
# string blanked out, so that a regex on it finds only top-level operators
sub top_level {
    my ($expr) = @_;
    my ($depth, $quote, $mask) = (0, '', '');
    for (my $i = 0; $i < length $expr; $i++) {
        my $c = substr $expr, $i, 1;
        if ($quote) {
            $quote = '' if $c eq $quote;
            if ($c eq '\\') { $mask .= '_'; $i++ }
            $mask .= '_';
        } elsif ($c =~ /["'`]/) {
            $quote = $c;
            $mask .= '_';
        } elsif ($c =~ /[({\[]/) {
            $depth++;
            $mask .= '_';
        } elsif ($c =~ /[)}\]]/) {
            $depth--;
            $mask .= '_';
        } else {
            $mask .= $depth ? '_' : $c;
        }
    }
    return $mask;
}

# an alert's operands, as the header says
sub operands {
    my ($expr) = @_;
    my $mask = top_level($expr);
    my (@arms, $from);
    $from = 0;
    while ($mask =~ /\b(?:and|or|unless)\b/g) {
        push @arms, [$from, $-[0] - $from];
        $from = $+[0];
    }
    push @arms, [$from, length($expr) - $from];

    my $modifiers = qr/^\s*(?:bool\b\s*)?(?:(?:on|ignoring)\s*_+\s*)?
                       (?:group_(?:left|right)\b\s*_*\s*)?/x;
    my @ops;
    for my $arm (@arms) {
        my $text = substr $expr, $arm->[0], $arm->[1];
        my $m = substr $mask, $arm->[0], $arm->[1];
        $m =~ /$modifiers/ and ($text, $m) = map { substr $_, $+[0] }
                                             $text, $m;
        my $cmp;
        $cmp = [$-[0], $+[0]] while $m =~ /(?:==|!=|>=|<=|>|<)/g;
        unless ($cmp) {
            push @ops, $text;
            next;
        }
        push @ops, substr($text, 0, $cmp->[0]);
        my $rhs = substr $text, $cmp->[1];
        my $rm = substr $m, $cmp->[1];
        $rm =~ /$modifiers/ and $rhs = substr $rhs, $+[0];
        push @ops, $rhs unless $rhs =~ /^[\s\d.eE()*+\/-]+$/;
    }
    s/^\s+|\s+$//g for @ops;
    return @ops;
}

is_deeply([operands('a{x=~"p|q"} > (14.4 * 0.001) and on (l) b[5m] < c '
                    . 'unless ignoring (v) d == bool 1')],
          ['a{x=~"p|q"}', 'b[5m]', 'c', 'd'], 'operands: how they split');

my @checks = @panel_exprs;
for my $r (@rules) {
    if ($r->{type} eq 'recording') {
        push @checks, ["record $r->{name}", $r->{name}];
    } else {
        push @checks, ["alert $r->{name}: $_", $_] for operands($r->{query});
    }
}
for my $v (qw(instance location)) {
    my ($metric, $label) = $vars{$v}{definition}
                           =~ /^label_values\((.*), (\w+)\)$/;
    push @checks, ["variable $v", "group by ($label) ($metric)"];
}

# the dashboard as Grafana would ask: one instance, all locations
my %subst = ('$__rate_interval' => '5s', '$instance' => "127.0.0.1:$port",
             '$location' => '.*');
for my $check (@checks) {
    my ($name, $expr) = @$check;
    $expr =~ s/(\$\w+)/$subst{$1} \/\/ $1/ge;
    my $result;
    # a rule evaluated once more, a scrape that landed: briefly empty
    for (1 .. 10) {
        $result = query($expr);
        last if $result && @$result;
        sleep 0.3;
    }
    ok($result && @$result, "$name: data") or diag($expr);
}

# what the traffic did, as the rules see it: 1 request in 15 was a bad
# key, every /fallback answer was a default
my $pending = $json->decode($http->get("$api/alerts")->{content})
              ->{data}{alerts};
my %pending = map { ("$_->{labels}{alertname} $_->{labels}{location}" => 1) }
              grep { $_->{labels}{location} } @$pending;
ok($pending{'PredErrorBudgetFastBurn api'},
   'PredErrorBudgetFastBurn is pending for api');
ok($pending{'PredFallbackRatioHigh fallback'},
   'PredFallbackRatioHigh is pending for fallback');

kill 'TERM', $prom_pid;
waitpid $prom_pid, 0;
is($?, 0, 'prometheus exits cleanly');
undef $prom_pid;
nginx_stop();
unlike(log_text(), qr/\[(?:alert|crit|emerg)\]/, 'no alert in the error log');

note(sprintf 'took %.1f s', time - $started);

done_testing();
