package PredTest;

# Fixtures for the t/ files: snapshot folders built with the real
# pred-snapshot, and environment variables the test configs refer to.
# Plain Perl, independent of which Test::Nginx runs the file.

use strict;
use warnings;

use Exporter 'import';
use File::Path qw(make_path remove_tree);
use File::Spec ();
use Test::More ();

our @EXPORT = qw(pred_snapshot run_ok snap_dir snap_build snap_publish
                 snap_craft write_file);

$ENV{PRED_SNAPSHOT} ||= File::Spec->rel2abs('build/pred-snapshot');
$ENV{TEST_NGINX_PRED_SNAPSHOT} = $ENV{PRED_SNAPSHOT};
$ENV{TEST_NGINX_PERL_LIB} = File::Spec->rel2abs('t/nginx-perl');
$ENV{TEST_NGINX_MODULES_DIR} ||= '/usr/lib/nginx/modules';

my $root = File::Spec->rel2abs('t/servroot-snaps');

# runs pred-snapshot; returns (exit code, stdout and stderr)
sub pred_snapshot {
    my @args = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT or die;
        exec $ENV{PRED_SNAPSHOT}, @args or die "exec: $!";
    }
    my $out = do { local $/; <$fh> } // '';
    close $fh;
    return ($? >> 8, $out);
}

# a pred-snapshot command's exit code and output (exact, or a regex), as
# Test::More tests; returns the output
sub run_ok {
    my ($name, $expect_rc, $expect_out, @args) = @_;
    my ($rc, $out) = pred_snapshot(@args);
    Test::More::is($rc, $expect_rc, "$name: exit $expect_rc");
    if (ref $expect_out) {
        Test::More::like($out, $expect_out, "$name: output");
    } else {
        Test::More::is($out, $expect_out, "$name: output");
    }
    return $out;
}

sub must_run {
    my ($rc, $out) = pred_snapshot(@_);
    die "pred-snapshot @_ failed ($rc): $out" if $rc != 0;
    return $out;
}

sub write_file {
    my ($path, $data) = @_;
    open my $out, '>', $path or die "$path: $!";
    binmode $out;
    print $out $data;
    close $out;
}

# a fresh, empty snapshot folder; its path is also $ENV{TEST_NGINX_SNAP_uc}
sub snap_dir {
    my ($name) = @_;
    my $dir = "$root/$name";
    remove_tree($dir);
    make_path($dir);
    $ENV{'TEST_NGINX_SNAP_' . uc $name} = $dir;
    return $dir;
}

# builds snap-VERSION.mdb from JSON Lines text, created "age" seconds ago
sub snap_build {
    my ($dir, $version, $jsonl, %opt) = @_;
    my $in = "$dir/.input-$version.jsonl";
    write_file($in, $jsonl);
    local $ENV{SOURCE_DATE_EPOCH} = time - ($opt{age} // 0);
    must_run('build', $dir, '--quiet', '--version', $version,
             '--input', $in, @{ $opt{args} || [] });
    unlink $in;
}

sub snap_publish {
    my ($dir, $version) = @_;
    must_run('publish', $dir, $version);
}

# a hand-made LMDB file with the given metadata and data, for what the
# loader would never write (zero entries, another format)
sub snap_craft {
    my ($file, $meta, $data) = @_;
    for my $db ([meta => $meta], [data => $data]) {
        my ($name, $pairs) = @$db;
        open my $load, '|-', 'mdb_load', '-T', '-n', '-s', $name, $file
            or die "mdb_load: $!";
        print $load map { "$_\n" } @$pairs;
        close $load or die "mdb_load $name failed";
    }
    unlink "$file-lock";
}

1;
