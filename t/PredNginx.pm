package PredNginx;

# A standalone nginx for the tests that drive it from outside the block
# format (load, raw bytes): its own server root, a master and two workers,
# the module loaded, and helpers to read its metrics, log and workers.
# Plain Perl, independent of which Test::Nginx runs the other files.

use strict;
use warnings;

use Exporter 'import';
use File::Path qw(make_path remove_tree);
use File::Spec ();
use HTTP::Tiny ();
use IO::Socket::INET ();
use Time::HiRes qw(sleep);

use PredTest qw(write_file);

our @EXPORT = qw(free_port nginx_start nginx_reconf nginx_stop nginx_signal
                 nginx_restart nginx_kill metrics delta log_text workers
                 valgrind_problems);

my $nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';
my $module = $ENV{TEST_NGINX_LOAD_MODULES}
             || File::Spec->rel2abs('build/nginx/objs/ngx_http_pred_module.so');
my $mods = $ENV{TEST_NGINX_MODULES_DIR} || '/usr/lib/nginx/modules';
my $http = HTTP::Tiny->new(timeout => 5);
my ($root, $port, $owner);

sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 1) or die "port: $!";
    my $p = $s->sockport;
    close $s;
    return $p;
}

# with TEST_NGINX_USE_VALGRIND, nginx (and so its workers) runs under
# memcheck as in the block tests, its reports in logs/valgrind.PID
sub nginx_cmd {
    my @args = @_;
    my $vg = $ENV{TEST_NGINX_USE_VALGRIND} && !@args
             ? 'valgrind -q --tool=memcheck --leak-check=full '
               . "--show-possibly-lost=no --num-callers=50 "
               . "--log-file=$root/logs/valgrind.%p "
             : '';
    return system("$vg$nginx -p $root/ -c $root/conf/nginx.conf @args "
                  . ">>$root/logs/stderr.log 2>&1");
}

# the same judgement as the bundled runner's for its blocks
sub valgrind_problems {
    require File::Spec->rel2abs('t/lib/Test/Nginx/Socket.pm');
    return Test::Nginx::Socket::valgrind_problems("$root/logs");
}

# starts nginx in a fresh ROOT with this http{} block; the main server
# listens on PORT, where /metrics must be pred_metrics
sub nginx_start {
    my ($dir, $main_port, $http_block) = @_;
    ($root, $port, $owner) = ($dir, $main_port, $$);

    remove_tree($root);
    make_path("$root/logs", "$root/conf");

    write_conf($http_block);

    my $rc = nginx_cmd();

    # ready once it answers (memcheck takes seconds to start it)
    for (1 .. 300) {
        last if $rc != 0;
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port);
        last if $s;
        sleep 0.1;
    }

    sleep 0.3;
    return $rc;
}

# starts the nginx that nginx_start() made again, as it is (after a stop
# or a kill): its folder, config and files kept
sub nginx_restart {
    my $rc = nginx_cmd();
    for (1 .. 300) {
        last if $rc != 0;
        last if IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port);
        sleep 0.1;
    }
    sleep 0.3;
    return $rc;
}

# the master and its workers killed with SIGKILL at once, as a crash
# would; returns once they are gone
sub nginx_kill {
    my @pids = (master_pid(), workers());
    kill 'KILL', @pids;
    # a zombie (its parent killed too, init not yet there) is gone enough
    my $alive = sub {
        my $pid = shift;
        open my $in, '<', "/proc/$pid/stat" or return 0;
        my $line = <$in> // '';
        return $line !~ /^\d+ \(.*\) Z /;
    };
    for (1 .. 200) { last unless grep { $alive->($_) } @pids; sleep 0.05 }
    unlink "$root/logs/nginx.pid";
}

# a new http{} block, then "nginx -s reload"; returns once the new
# workers run
sub nginx_reconf {
    my ($http_block) = @_;
    my @old = workers();
    write_conf($http_block);
    my $rc = nginx_signal('reload');
    for (1 .. 100) {
        my %old = map { $_ => 1 } @old;
        last if grep { !$old{$_} } workers();
        sleep 0.05;
    }
    sleep 0.3;
    return $rc;
}

sub write_conf {
    my ($http_block) = @_;
    # workers as the test's user: a clone in a private folder (mode 0700)
    # is closed to nginx's default "nobody"
    my $user = $> == 0 ? "user root;\n" : '';
    write_file("$root/conf/nginx.conf", <<"_EOC_");
${user}load_module $module;
load_module $mods/ngx_http_echo_module.so;
master_process on;
worker_processes 2;
daemon on;
pid $root/logs/nginx.pid;
error_log $root/logs/error.log info;
events { worker_connections 4096; }
http {
    access_log off;
$http_block
}
_EOC_
}

sub nginx_signal { return nginx_cmd('-s', @_) }

sub master_pid {
    open my $in, '<', "$root/logs/nginx.pid" or return undef;
    my $pid = <$in>;
    chomp $pid;
    return $pid;
}

sub nginx_stop {
    my $pid = master_pid();
    nginx_cmd('-s', 'quit');
    # memcheck looks for leaks at exit, which takes a while
    for (1 .. 1200) { last unless $pid && kill 0, $pid; sleep 0.05 }
}

# from /proc rather than pgrep, which hangs with a sanitizer preloaded
sub workers {
    my $m = master_pid() or return ();
    my @w;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $in, '<', $stat or next;
        my $line = <$in> // '';
        close $in;
        push @w, $1 if $line =~ /^(\d+) \(.*\) \S+ (\d+) / && $2 == $m;
    }
    return sort { $a <=> $b } @w;
}

sub metrics {
    my $res = $http->get("http://127.0.0.1:$port/metrics");
    my %m;
    for (split /\n/, $res->{content} // '') {
        next if /^#/;
        $m{$1} = $2 if /^(\S+) (\S+)$/;
    }
    return \%m;
}

# a test that dies half way must not leave its nginx behind (the processes
# it forks run END blocks too, and must not stop it)
END {
    my $pid = $root && $owner && $owner == $$ && master_pid();
    kill 'QUIT', $pid if $pid && kill 0, $pid;
}

sub delta {
    my ($before, $after, $name) = @_;
    return ($after->{$name} // 0) - ($before->{$name} // 0);
}

sub log_text {
    open my $in, '<', "$root/logs/error.log" or return '';
    local $/;
    return <$in> // '';
}

1;
