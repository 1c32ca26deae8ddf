# Warm restarts: pred_cache_zone state=PATH keeps overrides and tombstones
# (with state_all=on, model answers too) across nginx -s stop and a start,
# with their age and ttl; a purge stays a purge; expired entries are not
# brought back; a SIGKILL of every process loses at most the writes of the
# last state_sync; a checkpoint replaces the journals once they have
# grown; a damaged checkpoint or journal is reported and skipped, never a
# failed start.
#
# Plain Perl against PredNginx's standalone nginx, the same under any
# Test::Nginx.
use strict;
use warnings;

use lib 't';
use File::Path qw(make_path remove_tree);
use File::Spec ();
use HTTP::Tiny ();
use Test::More;
use Time::HiRes qw(sleep time);

use PredTest;
use PredNginx;

plan skip_all => 'timing-bound restarts: not under memcheck'
    if $ENV{TEST_NGINX_USE_VALGRIND};

my $port = free_port();
my $mport = free_port();
my $root = File::Spec->rel2abs('t/servroot-state');
my $state = File::Spec->rel2abs('t/servroot-state-files');
my $http = HTTP::Tiny->new(timeout => 5);

remove_tree($state);
make_path($state);

my $dir = snap_dir('state');
snap_build($dir, 'v1', join '', map { qq({"key":"$_","value":"snap-$_"}\n) }
                                qw(a b t p:1 p:2 q zz));
snap_publish($dir, 'v1');

sub get {
    my ($path) = @_;
    return $http->get("http://127.0.0.1:$port$path");
}

sub req {
    my ($method, $path, $body) = @_;
    return $http->request($method, "http://127.0.0.1:$port$path",
                          defined $body ? { content => $body } : {});
}

# a key's answer as "STATUS SOURCE BODY"
sub answer {
    my ($loc, $k) = @_;
    my $r = get("/$loc?id=$k");
    return "$r->{status} " . ($r->{headers}{'x-pred-source'} // '-')
           . " $r->{content}";
}

sub stop {
    my $pid = do { open my $in, '<', "$root/logs/nginx.pid" or die; <$in> };
    chomp $pid;
    nginx_signal('stop');
    for (1 .. 200) { last unless kill 0, $pid; sleep 0.05 }
    ok(!kill(0, $pid), 'nginx -s stop: the master is gone');
}

sub journals {
    my ($name) = @_;
    opendir my $dh, $state or die;
    return sort grep { /^\Q$name\E\.j\d+$/ } readdir $dh;
}

my $conf = <<"_EOC_";
    pred_cache_zone zone=hot:16m ttl=1h admin=8m state=$state/hot.state
                    state_sync=200ms;
    pred_cache_zone zone=all:4m ttl=1h state=$state/all.state
                    state_all=on state_sync=200ms;
    pred_snapshot_path main $dir check=100ms;
    server {
        listen 127.0.0.1:$mport;
        location / {
            default_type application/json;
            return 200 '{"model":"\$arg_id"}';
        }
    }
    server {
        listen 127.0.0.1:$port;
        pred_snapshot main;
        location = /p { pred_key \$arg_id; pred_cache hot; pred; }
        location = /m {
            pred_key \$arg_id;
            pred_cache all;
            pred_upstream /_model;
            pred;
        }
        location /_model {
            internal;
            proxy_pass http://127.0.0.1:$mport/?id=\$pred_key_escaped;
        }
        location /admin/ { pred_admin; pred_cache hot; }
        location = /metrics { pred_metrics; }
    }
_EOC_

is(nginx_start($root, $port, $conf), 0, 'nginx starts') or BAIL_OUT(log_text());

# --- writes of every kind, then a stop and a start
is(req('PUT', '/admin/a', '{"o":"a"}')->{status}, 200, 'an override');
is(req('PUT', '/admin/short?ttl=1', '{"o":"short"}')->{status}, 200,
   'an override that expires in a second');
is(req('DELETE', '/admin/t')->{status}, 200, 'a tombstone');
is(req('POST', '/admin/bulk',
       qq({"key":"n1","value":{"o":"n1"}}\n{"key":"b","delete":true}\n)
       . qq({"key":"p:1","value":1}\n{"key":"p:2","value":2}\n))->{status},
   200, 'a bulk body');
is(req('PATCH', '/admin/q', '{"m":1}')->{status}, 200, 'a merge patch');
is(req('POST', '/admin/purge?prefix=p:')->{content}, '{"purged":2}',
   'a purge');
is(answer('m', 'x'), '200 upstream {"model":"x"}', 'a model answer');
is(req('DELETE', '/admin/zz')->{status}, 200, 'a tombstone for an hour');
is(req('PUT', '/admin/zz?ttl=1', '"brief"')->{status}, 200,
   'and an override over it, for a second');
sleep 2;
is(answer('p', 'zz'), '404 - {"error":"not_found","key":"zz"}',
   'the override gone, the tombstone still masks the snapshot');
my $age_before = get('/p?id=a')->{headers}{age};

stop();
ok(-e "$state/hot.state.j1", 'the journal is there');
is(nginx_restart(), 0, 'nginx starts again') or BAIL_OUT(log_text());

is(answer('p', 'a'), '200 cache {"o":"a"}', 'an override survives a stop');
ok(get('/p?id=a')->{headers}{age} >= $age_before,
   'with its age');
is(answer('p', 't'), '404 - {"error":"not_found","key":"t"}',
   'a tombstone survives');
is(answer('p', 'b'), '404 - {"error":"not_found","key":"b"}',
   'so does a bulk deletion');
is(answer('p', 'n1'), '200 cache {"o":"n1"}', 'and a bulk upsert');
like(answer('p', 'q'), qr/^200 cache \{"m":1\}$/, 'a merge patch survives');
is(answer('p', 'p:1'), '200 snapshot "snap-p:1"', 'a purge stays a purge');
is(answer('p', 'short'), '404 - {"error":"not_found","key":"short"}',
   'an expired override is not brought back');
is(answer('p', 'zz'), '404 - {"error":"not_found","key":"zz"}',
   'the mask it carried is');
is(answer('m', 'x'), '200 cache {"model":"x"}',
   'state_all=on: a model answer survives');
like(log_text(), qr/\[notice\].*pred_cache_zone "hot": 6 entries restored from 11 records in "\S+\/hot\.state" \(no checkpoint\) and 1 journals \(1 expired or not kept, 0 without room\)/,
     'the start says what it restored');

# --- a SIGKILL of every process: writes older than state_sync are kept
is(req('PUT', '/admin/k1', '"k1"')->{status}, 200, 'a write');
sleep 0.6;
is(req('PUT', '/admin/k2', '"k2"')->{status}, 200, 'a write just before');
nginx_kill();
is(nginx_restart(), 0, 'nginx starts after a crash') or BAIL_OUT(log_text());
is(answer('p', 'k1'), '200 cache "k1"',
   'a write older than state_sync survives a kill -9');
like(answer('p', 'k2'), qr/^(?:200 cache "k2"|200 - \{"error"|404 )/,
     'one within it may be lost');
is(answer('p', 'a'), '200 cache {"o":"a"}', 'and the older ones stay');

# --- the journals grow: a checkpoint takes their place
my $big = join '', map { sprintf qq({"key":"big%05d","value":"%s"}\n), $_,
                                  'x' x 90 } 1 .. 12000;
is(req('POST', '/admin/bulk', $big)->{content},
   '{"applied":12000,"upserts":12000,"deletes":0}', '12,000 writes');
sleep 1.5;
ok(-s "$state/hot.state", 'a checkpoint is written');
my @j = journals('hot.state');
ok(@j <= 1, 'the journals before it are removed') or diag("@j");
like(log_text(), qr/pred_cache_zone "hot": checkpoint of \d+ entries/,
     'the checkpoint is logged');
is(req('PUT', '/admin/after', '"after"')->{status}, 200,
   'a write after the checkpoint');
sleep 0.5;
stop();
is(nginx_restart(), 0, 'nginx starts from the checkpoint')
    or BAIL_OUT(log_text());
is(answer('p', 'big11999'), '200 cache "' . ('x' x 90) . '"',
   'an entry of the checkpoint');
is(answer('p', 'after'), '200 cache "after"', 'an entry of the journal');
is(answer('p', 'a'), '200 cache {"o":"a"}', 'an entry from long before');

# --- damage: a journal cut in a record, a checkpoint that fails its check
stop();
@j = journals('hot.state');
my $last = "$state/$j[-1]";
truncate $last, (-s $last) - 3 or die "truncate: $!";
{
    open my $fh, '+<', "$state/hot.state" or die;
    binmode $fh;
    seek $fh, 200, 0;
    print $fh "\xff\xff";
    close $fh;
}
write_file("$state/all.state", "pred-state/1 checkpoint 1\n" . ('?' x 40));
is(nginx_restart(), 0, 'nginx starts with damaged state files')
    or BAIL_OUT(log_text());
my $log = log_text();
like($log, qr/\[error\].*pred_cache_zone "hot": the state checkpoint "\S+\/hot\.state" is damaged \(checksum mismatch at byte \d+\): the \d+ records before it are read, the journals beside it too; the file is kept as "\S+\/hot\.state\.damaged"/,
     'a damaged checkpoint is reported');
ok(-e "$state/hot.state.damaged" && !-e "$state/hot.state",
   'and kept aside');
like($log, qr/\[warn\].*pred_cache_zone "hot": the journal "\S+\/hot\.state\.j\d+" ends in a record cut short \(a crash while writing it\): the \d+ records before it are read/,
     'a journal cut short is reported');
like($log, qr/\[error\].*pred_cache_zone "all": the state checkpoint "\S+\/all\.state" is damaged \(not a record [^)]*\) at byte \d+\): the 0 records before it are read/,
     'a checkpoint whose records are not records is reported');
is(get('/p?id=v1')->{status}, 404, 'nginx serves');
is(req('PUT', '/admin/new', '"new"')->{status}, 200, 'and takes writes');

# --- files written by hand, as a crash or a race leaves them
sub fnv_rec {
    my ($h, @parts) = @_;
    no warnings 'portable';
    for my $part (@parts) {
        for my $b (unpack('C*', pack('V', length $part)), unpack('C*', $part)) {
            $h = (($h ^ $b) * 0x100000001b3) & 0xffffffffffffffff;
        }
    }
    return $h;
}

sub state_rec {
    my ($type, $kind, $key, $val, $seq, $expires) = @_;
    use bigint;
    my $hdr = pack('CCvVQ<Q<VV', $type, $kind, length $key, length $val,
                   $seq, $expires, time, 0);
    my $check = do {
        no warnings 'portable';
        fnv_rec(0xcbf29ce484222325, $hdr, $key . $val);
    };
    return $hdr . $key . $val . pack('Q<', $check);
}

{
    stop();
    unlink glob("$state/hot.state*");
    my $later = (time + 3600) * 1000;
    # a checkpoint as of write 1000 that no longer holds "gone" (purged
    # before it was copied), and a journal flushed after the copy holding
    # an older write of "gone", then damage, then a newer write
    write_file("$state/hot.state", "pred-state/1 checkpoint 7\n"
               . state_rec(1, 4, 'kept', '"kept"', 1000, $later)
               . state_rec(3, 0, '', '', 1, 1000));
    write_file("$state/hot.state.j7", "pred-state/1 journal 7\n"
               . state_rec(1, 4, 'gone', '"old"', 900, $later)
               . state_rec(1, 4, 'one', '"one"', 1001, $later)
               . ('#' x 23)
               . state_rec(1, 4, 'two', '"two"', 1002, $later));
    is(nginx_restart(), 0, 'nginx starts from files written by hand')
        or BAIL_OUT(log_text());
    is(answer('p', 'kept'), '200 cache "kept"', 'the checkpoint\'s entry');
    is(answer('p', 'gone'), '404 - {"error":"not_found","key":"gone"}',
       'a journal\'s write older than the checkpoint is not brought back');
    is(answer('p', 'one'), '200 cache "one"', 'a write after it is');
    is(answer('p', 'two'), '200 cache "two"',
       'and one after damage in the journal');
    like(log_text(), qr/\[error\].*the journal "\S+\/hot\.state\.j7" is damaged \([^)]*\) at byte \d+\): the bytes up to the next whole record are skipped/,
         'the damage is reported');
    is(req('PUT', '/admin/a', '{"o":"a"}')->{status}, 200, 'a write');
    sleep 0.5;
}

my @bad = grep { /\[(?:crit|alert|emerg)\]/ } split /\n/, log_text();
is(scalar @bad, 0, 'no [crit] or [alert]') or diag(join "\n", @bad);

nginx_stop();

done_testing();
