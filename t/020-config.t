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

done_testing();
