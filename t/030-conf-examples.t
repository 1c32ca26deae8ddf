# Every file in conf-examples/ is a complete nginx.conf that "nginx -t"
# accepts with the module built.
use strict;
use warnings;
use Test::More;
use Cwd qw(cwd);
use File::Path qw(make_path);

my $nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';
my $module = (split ' ', $ENV{TEST_NGINX_LOAD_MODULES} // '')[0]
    or BAIL_OUT('TEST_NGINX_LOAD_MODULES must name the built module');
my $repo = cwd();

my @confs = glob 'conf-examples/*.conf';
ok(@confs > 0, 'conf-examples has files');

for my $conf (@confs) {
    # the examples load the module from build/; point them at the one tested
    open my $in, '<', $conf or die "$conf: $!";
    my $text = do { local $/; <$in> };
    close $in;
    # the origin is plain nginx: the edges pull from it
    like($text, qr/^load_module \S+;$/m, "$conf loads the module")
        unless $conf =~ m{/origin\.conf$};
    $text =~ s/^load_module \S+;$/load_module $module;/m;

    # snapshot folders must exist: point absolute ones at scratch folders
    $text =~ s{^(\s*pred_snapshot_path\s+(\S+)\s+)/[^\s;]+}{
        make_path("$repo/t/servroot-conf/snaps/$2");
        "$1$repo/t/servroot-conf/snaps/$2"
    }gme;
    $text =~ s{^(\s*alias\s+)/var/lib/pred/(\w+)}{
        make_path("$repo/t/servroot-conf/snaps/$2");
        "$1$repo/t/servroot-conf/snaps/$2"
    }gme;
    # so must the folders of absolute log and pid paths
    $text =~ s{^(\s*(?:error_log|access_log|pid)\s+)(/var/\S+?)([;\s])}{
        my ($directive, $path, $end) = ($1, $2, $3);
        "$directive$repo/t/servroot-conf/var/" . ($path =~ s{.*/}{}r) . $end
    }gme;
    make_path("$repo/t/servroot-conf/var");

    make_path("$repo/t/servroot-conf/conf-examples", "$repo/demo/work/snaps");
    my $copy = "$repo/t/servroot-conf/$conf";
    open my $out, '>', $copy or die "$copy: $!";
    print $out $text;
    close $out;

    my $err = `$nginx -t -p $repo/ -c $copy 2>&1`;
    is($? >> 8, 0, "nginx -t accepts $conf") or diag($err);
}

# systemd units: systemd's own check, quiet (an unknown key is only a
# warning to it), with the binary it starts pointed at the one built
for my $unit (glob 'conf-examples/*.service') {
    open my $in, '<', $unit or die "$unit: $!";
    my $text = do { local $/; <$in> };
    close $in;
    like($text, qr{^ExecStart=/usr/local/bin/pred-snapshot pull }m,
         "$unit starts pred-snapshot pull");
    $text =~ s{^ExecStart=\S+}{ExecStart=$ENV{PRED_SNAPSHOT}}m;
    (my $copy = "$repo/t/servroot-conf/$unit") =~ s{conf-examples/}{};
    open my $out, '>', $copy or die "$copy: $!";
    print $out $text;
    close $out;
    my $err = `systemd-analyze verify $copy 2>&1`;
    is($? >> 8, 0, "systemd-analyze verify accepts $unit");
    is($err, '', "$unit: no warning") or diag($err);
}

done_testing();
