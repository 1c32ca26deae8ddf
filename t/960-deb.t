# The Debian packages as a user gets them: "make deb" (debhelper, dh_nginx,
# lintian with no error), "apt-get install ./*.deb" on this machine, nginx
# -t with the module enabled through modules-enabled, a lookup from the
# system's nginx on a scratch port with a snapshot the packaged CLI built,
# then a purge that leaves nothing behind.  As root; plain Perl, the same
# under any Test::Nginx.
use strict;
use warnings;

use File::Path qw(make_path remove_tree);
use HTTP::Tiny ();
use IO::Socket::INET ();
use Test::More;
use Time::HiRes qw(sleep);

plan skip_all => 'installs packages: run as root' if $> != 0;
plan skip_all => 'memcheck has nothing to check here'
    if $ENV{TEST_NGINX_USE_VALGRIND};
# the packages are built with Debian's flags, not the sanitizers'
plan skip_all => 'the sanitizer run has nothing to check here'
    if ($ENV{ASAN_OPTIONS} // '') =~ /log_path=/;

my @pkgs = qw(libnginx-mod-http-pred pred-snapshot);
my @files = ('/usr/lib/nginx/modules/ngx_http_pred_module.so',
             '/usr/share/nginx/modules-available/mod-http-pred.conf',
             '/etc/nginx/modules-enabled/50-mod-http-pred.conf',
             '/usr/bin/pred-snapshot',
             '/usr/share/man/man1/pred-snapshot.1.gz',
             '/lib/systemd/system/pred-snapshot-pull@.service',
             '/usr/share/doc/pred-snapshot/examples/pull-ctr.conf',
             '/usr/share/doc/libnginx-mod-http-pred/copyright',
             '/usr/share/doc/libnginx-mod-http-pred/README.md.gz',
             '/usr/share/doc/libnginx-mod-http-pred/examples/edge.conf',
             '/usr/share/doc/libnginx-mod-http-pred/examples/prometheus/'
             . 'alerts.yml',
             '/etc/pred-snapshot');
my $scratch = "/tmp/pred-deb-test.$$";
my $nginx_pid;

sub sh {
    my ($cmd) = @_;
    my $out = `$cmd 2>&1`;
    return ($? >> 8, $out);
}

sub installed {
    return grep { (sh("dpkg-query -W -f='\${Status}' $_"))[1]
                  =~ /install ok installed/ } @pkgs;
}

sub purge {
    return sh("apt-get purge -y -q @pkgs");
}

END {
    # the commands below set $?, which END would make the exit status
    local $?;
    if ($nginx_pid) {
        kill 'QUIT', $nginx_pid;
        sleep 0.3;
    }
    purge() if installed();
    remove_tree($scratch);
}

# a run that died half way left them: start from nothing
purge() if installed();

my ($rc, $out) = sh('make deb');
is($rc, 0, 'make deb builds the packages') or diag($out);
my @debs = grep { !/-dbgsym_/ } glob 'build/deb/*.deb';
is(scalar @debs, 2, 'two packages (and their debug symbols)')
    or diag("@debs");
my $lintian = do { local (@ARGV, $/) = 'build/deb/lintian.log'; <> } // '';
unlike($lintian, qr/^E: /m, 'lintian: no error') or diag($lintian);

($rc, $out) = sh('apt-get install -y -q ' . join ' ', map { "./$_" } @debs);
is($rc, 0, 'apt-get install ./*.deb') or diag($out);
is(scalar(installed()), 2, 'both installed');

for my $f (@files) {
    ok(-e $f, "$f installed");
}
# the example unit runs /usr/local/bin/pred-snapshot: the template replaces it
ok(!-e '/usr/share/doc/pred-snapshot/examples/pred-snapshot-pull.service',
   'no example unit beside the template');
is(readlink('/etc/nginx/modules-enabled/50-mod-http-pred.conf'),
   '/usr/share/nginx/modules-available/mod-http-pred.conf',
   'enabled on install');
is(do { local (@ARGV, $/) =
        '/usr/share/nginx/modules-available/mod-http-pred.conf'; <> },
   "load_module modules/ngx_http_pred_module.so;\n", 'the load file');
like((sh('dpkg-query -W -f=\'${Depends}\' libnginx-mod-http-pred'))[1],
     qr/\bnginx-abi-[\d.]+-\d+\b/, 'depends on the exact nginx ABI');

($rc, $out) = sh('/usr/sbin/nginx -t');
is($rc, 0, 'nginx -t with the module enabled') or diag($out);
like($out, qr/test is successful/, 'nginx -t says so');

($rc, $out) = sh('man -w pred-snapshot');
like($out, qr{^/usr/share/man/man1/pred-snapshot\.1\.gz$}m, 'the man page');
($rc, $out) = sh('MANWIDTH=80 man -P cat pred-snapshot');
like($out, qr/^\s+fleet-status URL \.\.\./m, 'it documents fleet-status');
for my $cmd (qw(build publish compact rollback canary promote abort list
                verify info get gc pull)) {
    like($out, qr/^\s+\Q$cmd\E\b/m, "it documents $cmd");
}

($rc, $out) = sh('systemd-analyze verify pred-snapshot-pull@ctr.service');
is($rc, 0, 'the pull unit template verifies') or diag($out);

# the packaged CLI builds a snapshot; the system's nginx serves it
make_path("$scratch/ctr", "$scratch/logs");
chmod 0755, $scratch, "$scratch/ctr";
open my $in, '>', "$scratch/in.jsonl" or die $!;
print $in qq({"key":"u1","value":{"score":0.5}}\n{"key":"u2","value":1}\n);
close $in;
($rc, $out) = sh("/usr/bin/pred-snapshot build $scratch/ctr --version d1 "
                 . "--input $scratch/in.jsonl --quiet "
                 . "&& /usr/bin/pred-snapshot publish $scratch/ctr d1");
is($rc, 0, 'the packaged pred-snapshot builds and publishes') or diag($out);

my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                              Listen => 1) or die "port: $!";
my $port = $s->sockport;
close $s;

open my $conf, '>', "$scratch/nginx.conf" or die $!;
print $conf <<"_EOC_";
include /etc/nginx/modules-enabled/*.conf;
pid $scratch/logs/nginx.pid;
error_log $scratch/logs/error.log;
events { worker_connections 64; }
http {
    access_log off;
    pred_snapshot_path ctr $scratch/ctr;
    server {
        listen 127.0.0.1:$port;
        location = /predict {
            pred_key \$arg_id;
            pred_snapshot ctr;
            pred;
        }
    }
}
_EOC_
close $conf;

# Debian's prefix (no -p): modules-enabled names modules relative to it
($rc, $out) = sh("/usr/sbin/nginx -c $scratch/nginx.conf");
is($rc, 0, "the system's nginx starts with it") or diag($out);
for (1 .. 50) {
    last if -s "$scratch/logs/nginx.pid";
    sleep 0.1;
}
$nginx_pid = do { local (@ARGV, $/) = "$scratch/logs/nginx.pid"; <> };
chomp $nginx_pid if $nginx_pid;

my $res = HTTP::Tiny->new(timeout => 5)
    ->get("http://127.0.0.1:$port/predict?id=u1");
is($res->{status}, 200, 'a lookup');
is($res->{content}, '{"score":0.5}', 'its value');
is($res->{headers}{'x-pred-source'}, 'snapshot', 'from the snapshot');
is($res->{headers}{'x-pred-version'}, 'd1', 'the version published');

sh("/usr/sbin/nginx -c $scratch/nginx.conf -s quit");
for (1 .. 50) {
    last unless $nginx_pid && kill 0, $nginx_pid;
    sleep 0.1;
}
undef $nginx_pid;
my $log = do { local (@ARGV, $/) = "$scratch/logs/error.log"; <> } // '';
unlike($log, qr/\[(?:alert|crit|emerg)\]/, 'no alert in its log')
    or diag($log);

# a purge leaves nothing: files, the enabled link, the package records
($rc, $out) = purge();
is($rc, 0, 'apt-get purge') or diag($out);
is(scalar(installed()), 0, 'neither is installed');
for my $f (@files) {
    ok(!-e $f && !-l $f, "$f removed");
}
ok(!-e '/usr/share/doc/pred-snapshot', 'the doc folder removed');
ok(!-e '/usr/share/doc/libnginx-mod-http-pred', "the module's doc folder too");
($rc) = sh('dpkg -L libnginx-mod-http-pred');
isnt($rc, 0, 'dpkg knows nothing of it');
($rc, $out) = sh('/usr/sbin/nginx -t');
is($rc, 0, 'nginx -t after the purge') or diag($out);

done_testing();
