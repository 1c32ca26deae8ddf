package PredCmd;

# A test-only nginx perl handler: lets a Test::Nginx block act between two
# of its requests (publish, roll back, point "current" at a bad file,
# truncate, overwrite or remove the live file),
# which the block format cannot otherwise express.  Loaded only by t/ files.

use strict;
use warnings;
use nginx;

sub run {
    my $r = shift;
    my @args = map { my $s = $_; $s =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge; $s }
               split /\+/, ($r->args // '');
    my $op = shift @args // '';
    my $out;

    if ($op eq 'link') {
        my ($dir, $target) = @args;
        unlink "$dir/.current.tmp";
        symlink $target, "$dir/.current.tmp" or die "symlink: $!";
        rename "$dir/.current.tmp", "$dir/current" or die "rename: $!";
        $out = "current -> $target\n";

    } elsif ($op eq 'pointer') {
        # any text as DIR/NAME's target, the way a hand or a bug might
        my ($dir, $name, $target) = @args;
        unlink "$dir/.$name.tmp";
        symlink $target, "$dir/.$name.tmp" or die "symlink: $!";
        rename "$dir/.$name.tmp", "$dir/$name" or die "rename: $!";
        $out = "$name -> $target\n";

    } elsif ($op eq 'write') {
        my ($file, $text) = @args;
        unlink $file;
        open my $fh, '>', $file or die "$file: $!";
        print $fh $text;
        close $fh or die "close: $!";
        $out = "wrote $file\n";

    } elsif ($op eq 'truncate') {
        my ($file, $size) = @args;
        truncate $file, $size or die "truncate: $!";
        $out = "truncated $file to $size bytes\n";

    } elsif ($op eq 'overwrite') {
        # cp over a live file: the same inode, other bytes
        my ($from, $to) = @args;
        open my $in, '<', $from or die "$from: $!";
        binmode $in;
        my $bytes = do { local $/; <$in> };
        open my $out_fh, '+<', $to or die "$to: $!";
        binmode $out_fh;
        truncate $out_fh, 0 or die "truncate: $!";
        print $out_fh $bytes;
        close $out_fh or die "close: $!";
        $out = "overwrote $to with $from\n";

    } elsif ($op eq 'replace') {
        # another file under the name, as a cp to a temporary name and a
        # rename would leave it: a new inode
        my ($from, $to) = @args;
        open my $in, '<', $from or die "$from: $!";
        binmode $in;
        my $bytes = do { local $/; <$in> };
        open my $out_fh, '>', "$to.tmp" or die "$to.tmp: $!";
        binmode $out_fh;
        print $out_fh $bytes;
        close $out_fh or die "close: $!";
        rename "$to.tmp", $to or die "rename: $!";
        $out = "replaced $to with $from\n";

    } elsif ($op eq 'unlink') {
        unlink $args[0] or die "unlink: $!";
        $out = "removed $args[0]\n";

    } elsif ($op eq 'reload') {
        kill 'HUP', getppid();
        $out = "reload\n";

    } else {
        my $bin = $ENV{PRED_SNAPSHOT};
        $out = qx{$bin $op @args 2>&1};
        # no exit status: nginx reaps its children before qx{} can
    }

    $r->send_http_header('text/plain');
    $r->print($out);
    return OK;
}

1;
