# Every file in conf-examples/ runs live, as written but for its paths,
# ports and upstream addresses: a model and a reranker stub on loopback,
# traffic to every location (the admin API included), then the logs: no
# [alert] or [crit], no worker lost, and access log lines well formed.
#
# Plain Perl against nginx started by hand, the same under any Test::Nginx.
use strict;
use warnings;

use lib 't';
use Cwd qw(cwd);
use File::Path qw(make_path remove_tree);
use HTTP::Tiny ();
use IO::Socket::INET ();
use Test::More;
use Time::HiRes qw(sleep);

use PredTest;

my $nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';
my $module = (split ' ', $ENV{TEST_NGINX_LOAD_MODULES} // '')[0]
    or BAIL_OUT('TEST_NGINX_LOAD_MODULES must name the built module');
my $repo = cwd();
my $http = HTTP::Tiny->new(timeout => 5);

plan skip_all => 'memcheck is too slow for the examples\' tight deadlines'
    if $ENV{TEST_NGINX_USE_VALGRIND};

sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 1) or die "port: $!";
    my $p = $s->sockport;
    close $s;
    return $p;
}

sub slurp {
    my ($path) = @_;
    open my $in, '<', $path or return '';
    local $/;
    return <$in> // '';
}

# one snapshot for every example: its keys and list values fit them all
my $items = '{"items":[{"id":"i1","score":0.9,"category":"a","title":"one"},'
          . '{"id":"i2","score":0.8,"category":"b","title":"two"}],'
          . '"ctr":0.3,"score":0.1}';
my $snap = snap_dir('examples');
snap_build($snap, 'e1', join('', map { qq{{"key":"$_","value":$items}\n} }
                                      qw(p1 u1 u2 i1))
                        . '{"key":"c0","value":'
                        . '{"decision":"allow","confidence":0.99}}' . "\n");
snap_publish($snap, 'e1');
# a canary for edge.conf's smoke-test location, the same data
snap_build($snap, 'e2', join('', map { qq{{"key":"$_","value":$items}\n} }
                                      qw(p1 u1 u2 i1)));

# a model that accepts the connection and never answers
my $hang = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                 Listen => 16) or die "hang: $!";
my $hang_port = $hang->sockport;

# the stub speaks each example's model: TF Serving, a plain GET, a reranker,
# the fraud cascade's three stages (by the card in the URI)
my $stub = free_port();
my $stub_oip = free_port();
my $stub_server = <<"_EOS_";
    server {
        listen 127.0.0.1:$stub;
        access_log off;
        location ~ ^/v1/rules/score/sure {
            return 200 '{"decision":"allow","confidence":0.97}';
        }
        location ~ ^/v1/rules/score/ {
            return 200 '{"decision":"review","confidence":0.6}';
        }
        location ~ ^/v1/trees/score/ {
            return 200 '{"decision":"review","confidence":0.7}';
        }
        location ~ ^/v1/net/score/hang { proxy_pass http://127.0.0.1:$hang_port; }
        location ~ ^/v1/net/score/ {
            return 200 '{"decision":"decline","confidence":0.99}';
        }
        location ~ ^/v1/models/ {
            return 200 '{"predictions":[{"score":0.5}]}';
        }
        location /predict/ { return 200 '{"ctr":0.2}'; }
        location = /rerank { return 200 '["i2","i1"]'; }
        # the Open Inference Protocol stub, in kserve-v2's config only
        location = /v2/models/ctr/infer { proxy_pass http://127.0.0.1:$stub_oip; }
    }
_EOS_

for my $conf (sort glob 'conf-examples/*.conf') {
    (my $name = $conf) =~ s{.*/|\.conf$}{}g;
    my $root = "$repo/t/servroot-live/$name";
    remove_tree($root);
    make_path("$root/logs");

    my $text = slurp($conf);
    my %port;

    $text =~ s/^load_module \S+;$/load_module $module;/m;
    # workers as the test's user: they read the scratch folders, which a
    # clone in a private temporary folder keeps from anybody else
    $text =~ s/^\s*user \S+;\n//m;
    $text =~ s/^(load_module [^\n]*\n)/${1}user root;\n/m if $> == 0;
    # the origin is plain nginx, no module: user first
    $text =~ s/\A/user root;\n/ if $> == 0 && $text !~ /^load_module/m;
    $text =~ s{/var/lib/pred/ctr\b}{$snap}g;
    $text =~ s/^daemon off;$/daemon on;/m;
    $text =~ s/^worker_processes \S+;$/worker_processes 2;/m;
    $text =~ s{^(\s*pred_snapshot_path\s+\S+\s+)[^\s;]+}{$1$snap}gm;
    $text =~ s{^(\s*(?:error_log|access_log|pid)\s+)(?!off;)(\S+?)([;\s])}{
        my ($directive, $path, $end) = ($1, $2, $3);
        $directive . "$root/logs/" . ($path =~ s{.*/}{}r) . $end
    }gme;
    $text =~ s{^(\s*listen\s+)(?:[\d.]+:)?(\d+)}{
        $port{$2} //= free_port();
        "${1}127.0.0.1:$port{$2}"
    }gme;
    $text =~ s{^(\s*server\s+)[\d.]+:\d+}{${1}127.0.0.1:$stub}gm;
    # the Open Inference Protocol stub logs what it was sent (the echo
    # module reads the body for $request_body)
    my $extra = '';
    if ($name eq 'kserve-v2') {
        my $mods = $ENV{TEST_NGINX_MODULES_DIR} || '/usr/lib/nginx/modules';
        $text =~ s/^(load_module [^\n]*\n)/${1}load_module $mods\/ngx_http_echo_module.so;\n/m;
        $extra = <<"_EOS_";
    log_format oip escape=none
                   '\$request_method \$uri \$content_type \$request_body';
    server {
        listen 127.0.0.1:$stub_oip;
        location = /v2/models/ctr/infer {
            access_log $root/logs/oip-stub.log oip;
            echo_read_request_body;
            echo -n '{"model_name":"ctr","model_version":"1","outputs":[{"name":"score","shape":[1],"datatype":"FP32","data":[0.42]}]}';
        }
    }
_EOS_
    }
    $text =~ s/\}\s*\z/$stub_server$extra}\n/;

    open my $out, '>', "$root/nginx.conf" or die $!;
    print $out $text;
    close $out;

    my $err = `$nginx -p $root/ -c $root/nginx.conf 2>&1`;
    is($? >> 8, 0, "$name: nginx starts") or do { diag($err); next };

    my ($main) = grep { $_ != ($port{8081} // 0) } values %port;
    my $admin = $port{8081};
    for (1 .. 50) {
        last if IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $main);
        sleep 0.1;
    }
    sleep 0.3;

    my $get = sub {
        my ($port, $path, %opt) = @_;
        return $http->request($opt{method} // 'GET',
                              "http://127.0.0.1:$port$path",
                              { $opt{body} ? (content => $opt{body}) : (),
                                headers => $opt{headers} || {} });
    };
    my $check = sub {
        my ($what, $res, $status, $source, $body) = @_;
        is($res->{status}, $status, "$name: $what: status $status")
            or diag($res->{content});
        is($res->{headers}{'x-pred-source'}, $source,
           "$name: $what: X-Pred-Source " . ($source // 'none'));
        if (ref $body) {
            like($res->{content}, $body, "$name: $what: body");
        } elsif (defined $body) {
            is($res->{content}, $body, "$name: $what: body");
        }
    };

    my $snapval = qr/\A\{"items":\[\{"id":"i1"/;

    if ($name eq 'demo') {
        $check->('a snapshot hit', $get->($main, '/predict?id=p1'), 200,
                 'snapshot', $snapval);
        $check->('a miss', $get->($main, '/predict?id=m%22x'), 200,
                 'upstream', '{"score":0.5}');
        $check->('the cached answer', $get->($main, '/predict?id=m%22x'),
                 200, 'cache', '{"score":0.5}');
    } elsif ($name eq 'edge') {
        $check->('a snapshot hit', $get->($main, '/v1/ctr?user=u1'), 200,
                 'snapshot', $snapval);
        $check->('a miss', $get->($main, '/v1/ctr?user=m1'), 200,
                 'upstream', '{"ctr":0.2}');
        $check->('the cached answer', $get->($main, '/v1/ctr?user=m1'),
                 200, 'cache', '{"ctr":0.2}');

        # a canary at 0%: the lookups stay live, the smoke test reaches it
        my ($rc, $out) = pred_snapshot('canary', $snap, 'e2', '0');
        is($rc, 0, "$name: canary e2 at 0%") or diag($out);
        sleep 0.7;
        my $r = $get->($main, '/v1/ctr?user=u2');
        $check->('a lookup beside the canary', $r, 200, 'snapshot', $snapval);
        is($r->{headers}{'x-pred-version'}, 'e1', "$name: the live version");
        $r = $get->($admin, '/smoke/ctr?user=u2',
                    headers => { 'X-Pred-Version' => 'candidate' });
        $check->('a smoke test', $r, 200, 'snapshot', $snapval);
        is($r->{headers}{'x-pred-version'}, 'e2', "$name: the candidate");
        like($get->($admin, '/pred-admin/snapshot')->{content},
             qr/"candidate":\{"version":"e2","entries":4,"created_at":\d+,"age":\d+,"freshness_sla":0,"stale":false,"percent":0\.0\},"deltas":\[\]\}\z/,
             "$name: the admin API shows the candidate");
        ($rc, $out) = pred_snapshot('abort', $snap);
        is($rc, 0, "$name: abort") or diag($out);
    } elsif ($name eq 'recommendations') {
        my $r = $get->($main, '/reco?user=u1&device=a%22b');
        $check->('a reranked list', $r, 200, 'snapshot',
                 qr/\A\{"items":\[\{"id":"i2"/);
        is($r->{headers}{'x-pred-refined'}, '1', "$name: reranked");
        $check->('a shaped list', $get->($main,
                 '/reco?user=u1&limit=1&fields=id'), 200, 'snapshot',
                 qr/\A\{"items":\[\{"id":"i\d"\}\],/);
        $check->('a batch', $get->($main, '/reco/batch?users=u1,zz'), 200,
                 undef, qr/"sources":\{"u1":"snapshot","zz":"none"\}\}\z/);
    } elsif ($name eq 'tfserving') {
        $check->('a snapshot hit', $get->($main, '/score?item=i1'), 200,
                 'snapshot', $snapval);
        $check->('a miss', $get->($main, '/score?item=n%5C1'), 200,
                 'upstream', '{"score":0.5}');
    } elsif ($name eq 'fraud') {
        my $r = $get->($main, '/v1/fraud?card=c0&amount=10');
        $check->('stage 0 sure', $r, 200, 'snapshot',
                 '{"decision":"allow","confidence":0.99}');
        is($r->{headers}{'x-pred-stage'}, '0', "$name: stage 0 answers");

        # every stage answers within its deadline on loopback, but a
        # 2 ms deadline may pass on a loaded machine: then a later stage
        # answers, and the check says which
        $r = $get->($main, '/v1/fraud?card=sure&amount=10');
        $check->('the rules are sure', $r, 200, 'upstream', undef);
        if (($r->{headers}{'x-pred-stage'} // '') eq '1') {
            is($r->{content}, '{"decision":"allow","confidence":0.97}',
               "$name: stage 1 exits");
        } else {
            like($r->{headers}{'x-pred-stage'} // '', qr/\A[23]\z/,
                 "$name: the rules missed 2 ms; a later stage answers");
        }

        $r = $get->($main, '/v1/fraud?card=c1&amount=10&merchant=m%22');
        $check->('no stage is sure', $r, 200, 'upstream',
                 '{"decision":"decline","confidence":0.99}');
        is($r->{headers}{'x-pred-stage'}, '3', "$name: stage 3 answers");
        $r = $get->($main, '/v1/fraud?card=c1');
        $check->('the cached answer', $r, 200, 'cache',
                 '{"decision":"decline","confidence":0.99}');
        ok(!defined $r->{headers}{'x-pred-stage'}, "$name: no stage cached");

        # the network hangs: the trees' answer within the 50 ms budget
        my $t0 = Time::HiRes::time();
        $r = $get->($main, '/v1/fraud?card=hang');
        my $took = Time::HiRes::time() - $t0;
        $check->('the network hangs', $r, 200, 'upstream',
                 qr/\A\{"decision":"review","confidence":0\.[67]\}\z/);
        cmp_ok($took, '<', 0.3, "$name: answered within the budget "
                                . "(and the test's own overhead)");

        like($get->($admin, '/metrics')->{content},
             qr/^pred_cascade_stage_total\{location="fraud",stage="0",result="exited"\} 1$(?s:.*)^pred_cascade_stage_total\{location="fraud",stage="3",result="(?:timeout|skipped)"\} [1-9]$/m,
             "$name: the stage metrics");
    } elsif ($name eq 'kserve-v2') {
        $check->('a snapshot hit', $get->($main, '/ctr?user=u1'), 200,
                 'snapshot', $snapval);
        $check->('a miss', $get->($main, '/ctr?user=m%22x'), 200,
                 'upstream', '[0.42]');
        $check->('the cached answer', $get->($main, '/ctr?user=m%22x'), 200,
                 'cache', '[0.42]');
        is(slurp("$root/logs/oip-stub.log"),
           'POST /v2/models/ctr/infer application/json {"inputs":[{"name":'
           . '"user_id","shape":[1],"datatype":"BYTES","data":["m\\"x"]}]}'
           . "\n", "$name: one call, the key in a BYTES tensor");
    } elsif ($name eq 'origin') {
        my $r = $get->($main, '/pred/ctr/manifest.json');
        is($r->{status}, 200, "$name: the manifest");
        like($r->{content}, qr/\A\{\n  "format": "pred-manifest\/1",(?s:.*)"live": \{\n    "version": "e1",\n    "file": "snap-e1\.mdb",/,
             "$name: the manifest names the live version");
        is($r->{headers}{'cache-control'}, 'no-cache',
           "$name: the manifest is revalidated");
        my $etag = $r->{headers}{etag};
        like($etag // '', qr/\A"[0-9a-f]+-[0-9a-f]+"\z/, "$name: an ETag");
        $r = $get->($main, '/pred/ctr/manifest.json',
                    headers => { 'If-None-Match' => $etag });
        is($r->{status}, 304, "$name: a check that finds no change");

        my $size = -s "$snap/snap-e1.mdb";
        $r = $get->($main, '/pred/ctr/snap-e1.mdb',
                    headers => { Range => 'bytes=100-' });
        is($r->{status}, 206, "$name: a download resumed");
        is($r->{headers}{'content-range'}, 'bytes 100-' . ($size - 1)
                                           . "/$size", "$name: its range");
        is(length $r->{content}, $size - 100, "$name: its bytes");
        like($r->{headers}{'cache-control'} // '', qr/immutable/,
             "$name: a version's file is cached for good");

        for my $private (qw(current previous candidate .lock layers
                            pull-status.json snap-e1.mdb/ x/../current
                            .pull-snap-e1.mdb.part)) {
            is($get->($main, "/pred/ctr/$private")->{status}, 404,
               "$name: $private is not served");
        }

        my $edge = "$root/edge";
        make_path($edge);
        my ($rc, $out) = pred_snapshot('pull',
                                       "http://127.0.0.1:$main/pred/ctr/",
                                       $edge);
        is($rc, 0, "$name: an edge pulls from it") or diag($out);
        is(readlink("$edge/current"), 'snap-e1.mdb',
           "$name: the edge serves what the origin does");
    } else {
        fail("$name: no traffic written for this example");
    }

    if ($admin) {
        $check->('admin PUT', $get->($admin, '/pred-admin/k1?ttl=60',
                 method => 'PUT', body => '{"o":1}'), 200, undef,
                 '{"stored":"k1","ttl":60}');
        $check->('admin DELETE', $get->($admin, '/pred-admin/p1',
                 method => 'DELETE'), 200, undef,
                 qr/\A\{"invalidated":"p1","ttl":\d+\}\z/);
        $check->('admin snapshot', $get->($admin, '/pred-admin/snapshot'),
                 200, undef, qr/\A\{"name":"\w+","version":"e1",/);
        $check->('admin purge', $get->($admin, '/pred-admin/purge',
                 method => 'POST'), 200, undef, qr/\A\{"purged":\d+\}\z/);
        if ($name eq 'edge' || $name eq 'demo') {
            my $loc = $name eq 'edge' ? '/v1/ctr' : '/predict';
            $check->('metrics', $get->($admin, '/metrics'), 200, undef,
                     qr/^pred_requests_total\{location="\Q$loc\E",source="snapshot"\} [1-9]\d*$(?s:.*)^pred_request_duration_seconds_count\{location="\Q$loc\E",source="snapshot"\} [1-9]\d*$/m);
        }
    }

    my $pid = slurp((glob "$root/logs/*.pid")[0] // '/nonexistent');
    chomp $pid;
    system("$nginx -p $root/ -c $root/nginx.conf -s quit 2>/dev/null");
    for (1 .. 100) { last unless $pid && kill 0, $pid; sleep 0.05 }

    my $log = join '', map { slurp($_) } grep { !/access|admin/ }
                                         glob "$root/logs/*.log";
    unlike($log, qr/\[(?:alert|crit|emerg)\]/, "$name: no alert in the log")
        or diag($log);

    # the access logs the example writes, in its own format
    for my $access (grep { /access|admin/ } glob "$root/logs/*.log") {
        my @lines = split /\n/, slurp($access);
        ok(@lines > 0, "$name: $access has lines");
        for my $line (@lines) {
            like($line, qr/^127\.0\.0\.1 \[[^\]]+\] "[A-Z]+ \S+ HTTP\/1\.1" \d{3} \d+ key="[^"\n]*" source=\S+ version=\S+(?: role=(?:live|candidate|-))? age=\S+ stale=\S+ rt=[\d.]+ model_rt=\S+(?: stage=\S+)?$/,
                 "$name: a well-formed access log line");
        }
    }
}

done_testing();
