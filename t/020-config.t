# Configuration errors: "nginx -t" refuses them with a message naming the
# problem.  Debian's nginx logs start-up errors to stderr, not to the test's
# error.log, so this file runs "nginx -t" itself and reads its stderr; it
# uses only Test::More and runs the same under any Test::Nginx.
use strict;
use warnings;
use Test::More;
use File::Path qw(make_path);
use File::Spec;

my $nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';
my $modules = $ENV{TEST_NGINX_LOAD_MODULES}
    or BAIL_OUT('TEST_NGINX_LOAD_MODULES must name the built module');
my $root = File::Spec->rel2abs('t/servroot-config');
make_path("$root/logs");

sub nginx_t {
    my ($http) = @_;
    my $load = join '', map { "load_module $_;\n" } split ' ', $modules;
    open my $out, '>', "$root/nginx.conf" or die $!;
    print $out "${load}error_log $root/logs/error.log;\npid $root/nginx.pid;\n"
               . "events {}\nhttp {\n$http\n}\n";
    close $out;
    my $err = `$nginx -t -p $root/ -c $root/nginx.conf 2>&1`;
    return ($? >> 8, $err);
}

sub refused {
    my ($name, $http, $pattern) = @_;
    my ($rc, $err) = nginx_t($http);
    isnt($rc, 0, "$name - nginx -t fails");
    like($err, $pattern, "$name - the message names the problem");
}

my ($rc, $err) = nginx_t(<<'_EOC_');
    server {
        listen 127.0.0.1:1984;
        location = /predict { pred_key $arg_id; pred; }
    }
_EOC_
is($rc, 0, 'a valid pred location passes nginx -t') or diag($err);

refused('pred without pred_key', <<'_EOC_',
    server { location = /p { pred; } }
_EOC_
    qr/\[emerg\] .*"pred" requires "pred_key" in the same location or above it in \Q$root\E\/nginx\.conf:\d+/);

refused('an unknown pred_ directive', <<'_EOC_',
    server { location = /p { pred_key $arg_id; pred_bogus on; pred; } }
_EOC_
    qr/\[emerg\] .*unknown directive "pred_bogus"/);

refused('pred with a parameter', <<'_EOC_',
    server { location = /p { pred_key $arg_id; pred on; } }
_EOC_
    qr/\[emerg\] .*invalid number of arguments in "pred" directive/);

refused('pred twice', <<'_EOC_',
    server { location = /p { pred_key $arg_id; pred; pred; } }
_EOC_
    qr/\[emerg\] .*"pred" directive is duplicate/);

refused('pred at server level', <<'_EOC_',
    server { pred_key $arg_id; pred; }
_EOC_
    qr/\[emerg\] .*"pred" directive is not allowed here/);

my $snaps = "$root/snaps";
make_path($snaps);

($rc, $err) = nginx_t(<<"_EOC_");
    pred_snapshot_path main $snaps check=250ms preload=on;
    pred_snapshot_path other $snaps preload=off;
    pred_snapshot main;
    server {
        listen 127.0.0.1:1984;
        location = /predict { pred_key \$arg_id; pred_max_age 6h; pred; }
        location = /other { pred_key \$arg_id; pred_snapshot other; pred; }
    }
_EOC_
is($rc, 0, 'pred_snapshot_path with every parameter passes nginx -t')
    or diag($err);

refused('pred_snapshot naming no snapshot', <<'_EOC_',
    server { location = /p { pred_key $arg_id; pred_snapshot nope; pred; } }
_EOC_
    qr/\[emerg\] .*snapshot "nope" is not defined by "pred_snapshot_path"/);

refused('pred_snapshot_path to a missing folder', <<'_EOC_',
    pred_snapshot_path main /nonexistent/snaps;
_EOC_
    qr{\[emerg\] .*snapshot "main": "/nonexistent/snaps" is not a directory \(2: No such file or directory\)});

refused('an unknown pred_snapshot_path parameter', <<"_EOC_",
    pred_snapshot_path main $snaps bogus=1;
_EOC_
    qr/\[emerg\] .*invalid parameter "bogus=1"/);

refused('a bad check time', <<"_EOC_",
    pred_snapshot_path main $snaps check=soon;
_EOC_
    qr/\[emerg\] .*invalid check "check=soon"/);

refused('a zero check time', <<"_EOC_",
    pred_snapshot_path main $snaps check=0;
_EOC_
    qr/\[emerg\] .*invalid check "check=0"/);

refused('a bad preload value', <<"_EOC_",
    pred_snapshot_path main $snaps preload=yes;
_EOC_
    qr/\[emerg\] .*invalid parameter "preload=yes"/);

refused('a bad index value', <<"_EOC_",
    pred_snapshot_path main $snaps index=yes;
_EOC_
    qr/\[emerg\] .*invalid parameter "index=yes"/);

refused('a snapshot name used twice', <<"_EOC_",
    pred_snapshot_path main $snaps;
    pred_snapshot_path main $snaps;
_EOC_
    qr/\[emerg\] .*duplicate snapshot "main"/);

# the names go as they are into metrics labels, JSON and log lines
refused('a snapshot name with a quote', <<"_EOC_",
    pred_snapshot_path 'sn"ap' $snaps;
_EOC_
    qr/\[emerg\] .*invalid snapshot name "sn"ap": only letters, digits, "_", "-" and "." are allowed/);

refused('a snapshot name with a backslash', <<"_EOC_",
    pred_snapshot_path 'a\\b' $snaps;
_EOC_
    qr/\[emerg\] .*invalid snapshot name "a\\b"/);

refused('an empty snapshot name', <<"_EOC_",
    pred_snapshot_path '' $snaps;
_EOC_
    qr/\[emerg\] .*empty snapshot name/);

refused('pred_snapshot_path in a server', <<"_EOC_",
    server { pred_snapshot_path main $snaps; }
_EOC_
    qr/\[emerg\] .*"pred_snapshot_path" directive is not allowed here/);

refused('pred_max_age that is not a time', <<'_EOC_',
    server { location = /p { pred_key $arg_id; pred_max_age soon; pred; } }
_EOC_
    qr/\[emerg\] .*"pred_max_age" directive invalid value/);

($rc, $err) = nginx_t(<<'_EOC_');
    pred_cache_zone zone=hot:1m ttl=10m negative_ttl=30s max_entry=16k;
    server {
        listen 127.0.0.1:1984;
        pred_cache hot ttl=1m swr=30s;
        location = /predict { pred_key $arg_id; pred; }
        location = /nocache { pred_key $arg_id; pred_cache off; pred; }
        location /admin/ { pred_admin max_body=1m; }
    }
_EOC_
is($rc, 0, 'pred_cache_zone, pred_cache and pred_admin pass nginx -t')
    or diag($err);

refused('pred_cache_zone without zone=', <<'_EOC_',
    pred_cache_zone ttl=1m;
_EOC_
    qr/\[emerg\] .*"pred_cache_zone" must have "zone" parameter/);

refused('a zone name with a quote', <<'_EOC_',
    pred_cache_zone 'zone=h"ot:1m';
_EOC_
    qr/\[emerg\] .*invalid zone name "h"ot": only letters, digits, "_", "-" and "." are allowed/);

refused('a zone without a size', <<'_EOC_',
    pred_cache_zone zone=hot;
_EOC_
    qr/\[emerg\] .*invalid zone size "zone=hot"/);

refused('a zone too small', <<'_EOC_',
    pred_cache_zone zone=hot:1k;
_EOC_
    qr/\[emerg\] .*zone "zone=hot:1k" is too small/);

refused('a bad cache ttl', <<'_EOC_',
    pred_cache_zone zone=hot:1m ttl=forever;
_EOC_
    qr/\[emerg\] .*invalid ttl "ttl=forever"/);

refused('an unknown pred_cache_zone parameter', <<'_EOC_',
    pred_cache_zone zone=hot:1m lru=on;
_EOC_
    qr/\[emerg\] .*invalid parameter "lru=on"/);

refused('the same zone twice', <<'_EOC_',
    pred_cache_zone zone=hot:1m;
    pred_cache_zone zone=hot:1m;
_EOC_
    qr/\[emerg\] .*duplicate zone "hot"/);

refused('pred_cache naming no zone', <<'_EOC_',
    server { location = /p { pred_key $arg_id; pred_cache cold; pred; } }
_EOC_
    qr/\[emerg\] .*unknown pred_cache_zone "cold"/);

refused('an unknown pred_cache parameter', <<'_EOC_',
    pred_cache_zone zone=hot:1m;
    server { location = /p { pred_key $arg_id; pred_cache hot lru=1; pred; } }
_EOC_
    qr/\[emerg\] .*invalid parameter "lru=1"/);

refused('pred_admin in an exact location', <<'_EOC_',
    server { location = /admin { pred_admin; } }
_EOC_
    qr/\[emerg\] .*"pred_admin" directive needs a prefix location, such as "location \/pred-admin\/"/);

refused('a bad pred_admin parameter', <<'_EOC_',
    server { location /admin/ { pred_admin size=1m; } }
_EOC_
    qr/\[emerg\] .*invalid parameter "size=1m"/);

($rc, $err) = nginx_t(<<'_EOC_');
    server {
        listen 127.0.0.1:1984;
        location = /predict {
            pred_key $arg_id;
            pred_upstream /_model timeout=250ms max_size=1m;
            pred_upstream_extract /predictions/0;
            pred_fallback stale 'default={"score": 0}' status=404;
            pred;
        }
        location /_model { internal; proxy_pass http://127.0.0.1:9/; }
    }
_EOC_
is($rc, 0, 'the miss-path directives pass nginx -t') or diag($err);

refused('pred_upstream without a location URI', <<'_EOC_',
    server { location = /p { pred_key $arg_id; pred_upstream http://m/; pred; } }
_EOC_
    qr/\[emerg\] .*pred_upstream needs a URI of a location, such as "\/_model", not "http:\/\/m\/"/);

refused('a bad pred_upstream timeout', <<'_EOC_',
    server { location = /p { pred_key $arg_id; pred_upstream /m timeout=x; pred; } }
_EOC_
    qr/\[emerg\] .*invalid timeout "timeout=x"/);

refused('a bad pred_upstream max_size', <<'_EOC_',
    server { location = /p { pred_key $arg_id; pred_upstream /m max_size=0; pred; } }
_EOC_
    qr/\[emerg\] .*invalid max_size "max_size=0"/);

refused('an extract that is not a JSON pointer', <<'_EOC_',
    server { location = /p { pred_key $arg_id; pred_upstream_extract predictions; pred; } }
_EOC_
    qr/\[emerg\] .*pred_upstream_extract needs a JSON pointer such as "\/predictions\/0", not "predictions"/);

refused('a default that is not JSON', <<'_EOC_',
    server { location = /p { pred_key $arg_id; pred_fallback 'default={score:0}'; pred; } }
_EOC_
    qr/\[emerg\] .*invalid JSON in "default=\{score:0\}": /);

refused('an unknown fallback', <<'_EOC_',
    server { location = /p { pred_key $arg_id; pred_fallback status=500; pred; } }
_EOC_
    qr/\[emerg\] .*invalid parameter "status=500"/);

($rc, $err) = nginx_t(<<'_EOC_');
    server {
        listen 127.0.0.1:1984;
        location = /batch { pred_key $arg_keys; pred_batch on max=50; pred; }
    }
_EOC_
is($rc, 0, 'pred_batch passes nginx -t') or diag($err);

refused('a bad pred_batch value', <<'_EOC_',
    server { location = /b { pred_key $arg_keys; pred_batch yes; pred; } }
_EOC_
    qr/\[emerg\] .*invalid value "yes", use "on" or "off"/);

refused('a bad pred_batch max', <<'_EOC_',
    server { location = /b { pred_key $arg_keys; pred_batch on max=0; pred; } }
_EOC_
    qr/\[emerg\] .*invalid max "max=0", use 1 to 10000/);

($rc, $err) = nginx_t(<<'_EOC_');
    server {
        listen 127.0.0.1:1984;
        location = /reco {
            pred_key $arg_user;
            pred_filter on;
            pred_filter_list candidates;
            pred_filter_id item_id;
            pred_filter_score p;
            pred_filter_fields item_id p category;
            pred_filter_args limit=n fields=f where=w exclude=x min_score=m;
            pred_refine /_rerank timeout=30ms top=50;
            pred;
        }
        location = /_rerank { internal; proxy_pass http://127.0.0.1:9/; }
    }
_EOC_
is($rc, 0, 'pred_filter_* and pred_refine pass nginx -t') or diag($err);

refused('an unknown pred_filter_args name', <<'_EOC_',
    server { location = /r { pred_key $arg_u; pred_filter_args top=n; pred; } }
_EOC_
    qr/\[emerg\] .*invalid parameter "top=n"/);

refused('pred_refine without a location URI', <<'_EOC_',
    server { location = /r { pred_key $arg_u; pred_refine rerank; pred; } }
_EOC_
    qr/\[emerg\] .*pred_refine needs a URI of a location, such as "\/_rerank", not "rerank"/);

refused('a bad pred_refine top', <<'_EOC_',
    server { location = /r { pred_key $arg_u; pred_refine /x top=0; pred; } }
_EOC_
    qr/\[emerg\] .*invalid top "top=0", use 1 to 1000/);

($rc, $err) = nginx_t(<<'_EOC_');
    pred_upstream_limit 64 queue=128 timeout=20ms;
    pred_upstream_breaker failures=5 cooldown=2s;
    server {
        listen 127.0.0.1:1984;
        location = /p { pred_key $arg_id; pred_priority low; pred; }
        location = /metrics { pred_metrics; }
    }
_EOC_
is($rc, 0, 'the admission directives pass nginx -t') or diag($err);

refused('a bad pred_upstream_limit', <<'_EOC_',
    pred_upstream_limit 0;
_EOC_
    qr/\[emerg\] .*invalid limit "0"/);

refused('a bad queue', <<'_EOC_',
    pred_upstream_limit 8 queue=lots;
_EOC_
    qr/\[emerg\] .*invalid queue "queue=lots"/);

refused('pred_upstream_breaker without failures', <<'_EOC_',
    pred_upstream_breaker cooldown=1s;
_EOC_
    qr/\[emerg\] .*"pred_upstream_breaker" must have "failures" parameter/);

refused('an unknown priority', <<'_EOC_',
    server { location = /p { pred_key $arg_id; pred_priority urgent; pred; } }
_EOC_
    qr/\[emerg\] .*invalid value "urgent" in \S+nginx\.conf:\d+/);

# one value must never need most of the zone evicted; the admin budget
# leaves the cache most of the zone
refused('max_entry over an eighth of the zone', <<'_EOC_',
    pred_cache_zone zone=hot:1m max_entry=256k;
_EOC_
    qr/\[emerg\] .*max_entry=262144 is too large for zone "hot" of 1048576 bytes: at most an eighth of the zone/);

refused('state_all without a state file', <<'_EOC_',
    pred_cache_zone zone=hot:1m state_all=on;
_EOC_
    qr/\[emerg\] .*"state_all=on" needs "state="/);

refused('two zones with one state file', <<'_EOC_',
    pred_cache_zone zone=a:1m state=/tmp/pred-same.state;
    pred_cache_zone zone=b:1m state=/tmp/pred-same.state;
_EOC_
    qr/\[emerg\] .*state file "\/tmp\/pred-same\.state" is another zone's/);

refused('a state file in a folder that is not there', <<'_EOC_',
    pred_cache_zone zone=hot:1m state=/nonexistent/pred/hot.state;
_EOC_
    qr/\[emerg\] .*the folder of state file "\/nonexistent\/pred\/hot\.state" is not there/);

refused('state_sync without a state file', <<'_EOC_',
    pred_cache_zone zone=hot:1m state_sync=2s;
_EOC_
    qr/\[emerg\] .*"state_sync" needs "state="/);

refused('a folder as the state file', <<'_EOC_',
    pred_cache_zone zone=hot:1m state=/tmp;
_EOC_
    qr/\[emerg\] .*state="\/tmp" is not a file: state= names a file, such as "\/tmp\/hot\.state"/);

{
    open my $fh, '>', '/tmp/pred-not-state.conf' or die;
    print $fh "worker_processes 1;\n";
    close $fh;
}
refused('a file that is not a state file', <<'_EOC_',
    pred_cache_zone zone=hot:1m state=/tmp/pred-not-state.conf;
_EOC_
    qr/\[emerg\] .*"\/tmp\/pred-not-state\.conf" is not a state file \(it does not start with "pred-state\/1 "\): refusing to replace it; remove it or name another file/);

refused('a state_sync that is not a time', <<'_EOC_',
    pred_cache_zone zone=hot:1m state=/tmp/pred-x.state state_sync=soon;
_EOC_
    qr/\[emerg\] .*invalid state_sync "state_sync=soon"/);

refused('admin over half of the zone', <<'_EOC_',
    pred_cache_zone zone=hot:1m admin=600k;
_EOC_
    qr/\[emerg\] .*admin=614400 is too large for zone "hot" of 1048576 bytes: at most half of the zone/);

# errors found when configurations are merged name the location: nginx
# itself can only point at the end of the http block
refused('an undefined snapshot, named with its location', <<'_EOC_',
    server { location = /scores { pred_key $arg_id; pred_snapshot ctrr; pred; } }
_EOC_
    qr/\[emerg\] .*location "\/scores": snapshot "ctrr" is not defined by "pred_snapshot_path"/);

refused('pred without pred_key, named with its location', <<'_EOC_',
    server { location = /scores { pred; } }
_EOC_
    qr/\[emerg\] .*location "\/scores": "pred" requires "pred_key"/);

# each of these answers a location: two in one would answer with one
# handler and the other's configuration (a PUT counted as a lookup)
refused('pred and pred_admin in one location', <<'_EOC_',
    pred_cache_zone zone=hot:1m;
    server {
        location /a/ { pred_key $arg_id; pred_cache hot; pred; pred_admin; }
    }
_EOC_
    qr/\[emerg\] .*"pred" and "pred_admin" cannot be in one location: each answers the requests of the location it is in in \S+nginx\.conf:\d+/);

refused('pred_admin and pred in one location', <<'_EOC_',
    server { location /a/ { pred_admin; pred_key $arg_id; pred; } }
_EOC_
    qr/\[emerg\] .*"pred_admin" and "pred" cannot be in one location/);

refused('pred and pred_metrics in one location', <<'_EOC_',
    server { location /m { pred_key $arg_id; pred; pred_metrics; } }
_EOC_
    qr/\[emerg\] .*"pred" and "pred_metrics" cannot be in one location/);

refused('pred_admin twice', <<'_EOC_',
    server { location /a/ { pred_admin; pred_admin; } }
_EOC_
    qr/\[emerg\] .*"pred_admin" directive is duplicate/);

# pred_cascade: stages, a budget, stage 0 from the snapshot; "off" under
# a server-level cascade
($rc, $err) = nginx_t(<<"_EOC_");
    pred_budget 50ms;
    pred_snapshot_path fraud $snaps;
    server {
        listen 127.0.0.1:1984;
        pred_cascade /_other;
        location = /fraud {
            pred_key \$arg_card;
            pred_snapshot fraud;
            pred_cascade /_rules timeout=2ms exit_if=/confidence:>=:0.9;
            pred_cascade /_trees timeout=10ms exit_if=/decision:==:allow;
            pred_cascade /_net timeout=40ms;
            pred_cascade_from_snapshot on exit_if=/final:==:true;
            pred;
        }
        location = /plain {
            pred_key \$arg_id;
            pred_cascade off;
            pred_upstream /_model timeout=100ms;
            pred;
        }
    }
_EOC_
is($rc, 0, 'pred_cascade, pred_budget and pred_cascade_from_snapshot pass '
           . 'nginx -t') or diag($err);

# what a location writes wins over what it inherits
($rc, $err) = nginx_t(<<'_EOC_');
    server {
        listen 127.0.0.1:1984;
        pred_cascade /_a;
        location = /f { pred_key $arg_id; pred_upstream /_m; pred; }
    }
    server {
        listen 127.0.0.1:1985;
        pred_upstream /_m;
        location = /f { pred_key $arg_id; pred_cascade /_a; pred; }
    }
_EOC_
is($rc, 0, 'a location\'s own pred_upstream or pred_cascade wins over the '
           . 'other one, inherited') or diag($err);

refused('a server-level cascade and pred_upstream, both inherited', <<'_EOC_',
    server {
        pred_cascade /_a;
        pred_upstream /_m;
        location = /f { pred_key $arg_id; pred; }
    }
_EOC_
    qr/\[emerg\] .*location "\/f": pred_cascade and pred_upstream both answer a miss/);

refused('a stage after pred_cascade off', <<'_EOC_',
    server {
        location = /f { pred_key $arg_id; pred_cascade off; pred_cascade /_a;
                        pred; }
    }
_EOC_
    qr/\[emerg\] .*"pred_cascade" directive cannot follow "pred_cascade off" in a location/);

refused('a later stage over the budget', <<'_EOC_',
    server {
        location = /f { pred_key $arg_id; pred_cascade /_a timeout=20ms;
                        pred_cascade /_b timeout=40ms; pred_budget 30ms;
                        pred; }
    }
_EOC_
    qr/\[emerg\] .*location "\/f": pred_budget 30 ms leaves no room for stage 2's timeout of 40 ms/);

refused('two exit_if on one stage', <<'_EOC_',
    server {
        location = /f { pred_key $arg_id;
                        pred_cascade /_a exit_if=/a:==:1 exit_if=/b:==:2;
                        pred; }
    }
_EOC_
    qr/\[emerg\] .*duplicate exit_if "exit_if=\/b:==:2"/);

refused('an empty exit_if', <<'_EOC_',
    server {
        location = /f { pred_key $arg_id; pred_cascade /_a exit_if=; pred; }
    }
_EOC_
    qr/\[emerg\] .*invalid exit_if "exit_if=": needs POINTER:OP:VALUE/);

refused('pred_cascade_from_snapshot without pred_snapshot', <<'_EOC_',
    server {
        location = /f { pred_key $arg_id; pred_cascade /_a;
                        pred_cascade_from_snapshot on; pred; }
    }
_EOC_
    qr/\[emerg\] .*location "\/f": pred_cascade_from_snapshot needs pred_snapshot/);

refused('pred_cascade beside pred_upstream', <<'_EOC_',
    server {
        location = /f { pred_key $arg_id; pred_upstream /_m; pred_cascade /_a;
                        pred; }
    }
_EOC_
    qr/\[emerg\] .*location "\/f": pred_cascade and pred_upstream both answer a miss: use one of them/);

refused('pred_cascade with pred_batch', <<'_EOC_',
    server {
        location = /f { pred_key $arg_id; pred_batch on; pred_cascade /_a;
                        pred; }
    }
_EOC_
    qr/\[emerg\] .*location "\/f": pred_cascade answers one key: it cannot be used with pred_batch/);

refused('pred_cascade with pred_miss_mode async', <<'_EOC_',
    server {
        location = /f { pred_key $arg_id; pred_miss_mode async;
                        pred_cascade /_a; pred; }
    }
_EOC_
    qr/\[emerg\] .*location "\/f": pred_cascade needs pred_miss_mode sync: the client waits for its stages/);

refused('a pred_budget shorter than the first stage', <<'_EOC_',
    server {
        location = /f { pred_key $arg_id; pred_cascade /_a timeout=20ms;
                        pred_budget 10ms; pred; }
    }
_EOC_
    qr/\[emerg\] .*location "\/f": pred_budget 10 ms leaves no room for stage 1's timeout of 20 ms/);

refused('an exit_if without an operator', <<'_EOC_',
    server {
        location = /f { pred_key $arg_id;
                        pred_cascade /_a exit_if=/confidence=0.9; pred; }
    }
_EOC_
    qr/\[emerg\] .*invalid exit_if "exit_if=\/confidence=0\.9": needs POINTER:OP:VALUE with OP one of <, <=, >, >=, ==, !=/);

refused('an exit_if comparing text with <', <<'_EOC_',
    server {
        location = /f { pred_key $arg_id;
                        pred_cascade /_a exit_if=/decision:<:allow; pred; }
    }
_EOC_
    qr/\[emerg\] .*invalid exit_if "exit_if=\/decision:<:allow": only == and != compare a value that is not a number \(a number is written as JSON writes it: 0\.9, not \.9\)/);

refused('pred_shadow without pred_snapshot', <<'_EOC_',
    server { location = /f { pred_key $arg_id; pred_shadow; pred; } }
_EOC_
    qr/\[emerg\] .*"pred_shadow" requires "pred_snapshot"/);

($rc, $err) = nginx_t(<<'_EOC_');
    server {
        listen 127.0.0.1:1984;
        pred_shadow rate=5 field=score;
        location = /model-only { pred_key $arg_id; pred_upstream /_m; pred; }
        location = /_m { internal; return 200 '{}'; }
    }
_EOC_
is($rc, 0, 'an inherited pred_shadow is off where there is no snapshot')
    or diag($err);

($rc, $err) = nginx_t(<<'_EOC_');
    server {
        listen 127.0.0.1:1984;
        location /pred-admin/ { pred_admin max_body=2m; client_max_body_size 8m; }
        location /pred-admin2/ { client_max_body_size 100k; pred_admin; }
    }
_EOC_
is($rc, 0, 'client_max_body_size beside pred_admin, before or after it')
    or diag($err);

refused('a pred_shadow rate of 0', <<'_EOC_',
    server { location = /f { pred_key $arg_id; pred_shadow rate=0; pred; } }
_EOC_
    qr/\[emerg\] .*invalid rate "rate=0": a percent above 0, at most 100, with at most 4 decimals/);

refused('a pred_shadow rate past 100', <<'_EOC_',
    server { location = /f { pred_key $arg_id; pred_shadow rate=100.5%; pred; } }
_EOC_
    qr/\[emerg\] .*invalid rate "rate=100\.5%"/);

refused('two rates in one pred_shadow', <<'_EOC_',
    server {
        location = /f { pred_key $arg_id; pred_shadow rate=1 rate=2; pred; }
    }
_EOC_
    qr/\[emerg\] .*duplicate rate "rate=2"/);

refused('an empty pred_shadow field', <<'_EOC_',
    server { location = /f { pred_key $arg_id; pred_shadow field=; pred; } }
_EOC_
    qr/\[emerg\] .*invalid field "field=": a top-level member's name, 1 to 64 bytes/);

refused('two pred_shadow in a location', <<'_EOC_',
    server {
        location = /f { pred_key $arg_id; pred_shadow; pred_shadow off; pred; }
    }
_EOC_
    qr/\[emerg\] .*"pred_shadow" directive is duplicate/);

refused('pred_cascade without a location URI', <<'_EOC_',
    server { location = /f { pred_key $arg_id; pred_cascade rules; pred; } }
_EOC_
    qr/\[emerg\] .*pred_cascade needs a URI of a location, such as "\/_rules", not "rules"/);

refused('a bad pred_cascade parameter', <<'_EOC_',
    server { location = /f { pred_key $arg_id; pred_cascade /_a top=1; pred; } }
_EOC_
    qr/\[emerg\] .*invalid parameter "top=1"/);

refused('nine pred_cascade stages', <<'_EOC_',
    server {
        location = /f {
            pred_key $arg_id;
            pred_cascade /_1; pred_cascade /_2; pred_cascade /_3;
            pred_cascade /_4; pred_cascade /_5; pred_cascade /_6;
            pred_cascade /_7; pred_cascade /_8; pred_cascade /_9;
            pred;
        }
    }
_EOC_
    qr/\[emerg\] .*more than 8 pred_cascade stages in a location/);

refused('pred_cascade_from_snapshot without stages', <<'_EOC_',
    server {
        location = /f { pred_key $arg_id; pred_cascade_from_snapshot on;
                        pred; }
    }
_EOC_
    qr/\[emerg\] .*location "\/f": pred_cascade_from_snapshot needs pred_cascade stages/);

refused('pred_cascade_from_snapshot with a bad value', <<'_EOC_',
    server {
        location = /f { pred_key $arg_id; pred_cascade /_a;
                        pred_cascade_from_snapshot yes; pred; }
    }
_EOC_
    qr/\[emerg\] .*invalid value "yes", it must be "on" or "off"/);

done_testing();
