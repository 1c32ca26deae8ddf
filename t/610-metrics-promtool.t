# promtool, from Debian's prometheus package, accepts the metrics text.
use strict;
use warnings;
use lib 't';
use PredTest;
use Test::More;
use File::Path qw(make_path remove_tree);
use File::Spec;
use HTTP::Tiny;
use JSON::PP ();

my $nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';
my $module = (split ' ', $ENV{TEST_NGINX_LOAD_MODULES} // '')[0]
    or BAIL_OUT('TEST_NGINX_LOAD_MODULES must name the built module');
my $promtool = -x '/usr/bin/promtool' ? '/usr/bin/promtool'
               : BAIL_OUT('promtool is not installed (Debian: prometheus)');

my $root = File::Spec->rel2abs('t/servroot-promtool');
remove_tree($root);
make_path("$root/logs");

my $dir = snap_dir('promtool');
snap_build($dir, 'p1', qq{{"key":"a","value":1}\n});
snap_publish($dir, 'p1');

# a name of 3000 quotes is 6000 bytes escaped, on each of its lines
my $long = '"' x 3000;

open my $out, '>', "$root/nginx.conf" or die $!;
print $out <<"_EOC_";
load_module $module;
daemon on;
master_process off;
error_log $root/logs/error.log;
pid $root/nginx.pid;
events {}
http {
    access_log off;
    pred_cache_zone zone=hot:1m;
    pred_snapshot_path main $dir;
    server {
        listen 127.0.0.1:1986;
        location = /predict {
            pred_name 'quote"d\\\\name';
            pred_key \$arg_id;
            pred_cache hot;
            pred_snapshot main;
            pred;
        }
        # a tab, a newline, a byte that is not UTF-8, then UTF-8
        location = /odd {
            pred_name "t\\tab\\nnl\xff\xc3\xa9";
            pred_key \$arg_id;
            pred_snapshot main;
            pred;
        }
        location = /long {
            pred_name '$long';
            pred_key \$arg_id;
            pred_snapshot main;
            pred;
        }
        location = /metrics { pred_metrics; }
    }
}
_EOC_
close $out;

system("$nginx -p $root/ -c $root/nginx.conf") == 0 or BAIL_OUT('nginx');

my $http = HTTP::Tiny->new(timeout => 3);
$http->get("http://127.0.0.1:1986/predict?id=$_") for qw(a b);
$http->get("http://127.0.0.1:1986/$_?id=a") for qw(odd long);
my $res = $http->get('http://127.0.0.1:1986/metrics');
is($res->{status}, 200, 'metrics answer');

open my $t, '>', "$root/metrics.txt" or die $!;
print $t $res->{content};
close $t;

my $check = `$promtool check metrics < $root/metrics.txt 2>&1`;
is($? >> 8, 0, 'promtool check metrics accepts them') or diag($check);
is($check, '', 'promtool has no remark');
like($res->{content},
     qr/^pred_requests_total\{location="quote\\"d\\\\name",source="snapshot"\} 1$/m,
     'label values are escaped');
like($res->{content},
     qr/^pred_requests_total\{location="t\?ab\\nnl\?\xc3\xa9",source="snapshot"\} 1$/m,
     'control characters and bytes that are not UTF-8 become "?"');
like($res->{content},
     qr/^pred_request_duration_seconds_count\{location="(?:\\"){3000}",source="snapshot"\} 1$/m,
     'a long name that escapes to twice its length: every line is whole');
like($res->{content}, qr/\npred_shadow_delta_count\{snapshot="main"\} 0\n\z/,
     'and the exposition ends with its last family');

$res = $http->get('http://127.0.0.1:1986/metrics?format=json');
is($res->{status}, 200, 'JSON metrics answer');
my $json = eval { JSON::PP->new->utf8->decode($res->{content}) };
ok($json, 'the JSON metrics parse') or diag($@);
like($res->{content}, qr/"t\?ab\\nnl\?\xc3\xa9"/,
     'the JSON names the odd location as the text does');

system("$nginx -p $root/ -c $root/nginx.conf -s stop");

done_testing();
