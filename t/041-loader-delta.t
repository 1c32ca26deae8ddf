# pred-snapshot and delta snapshots: build --delta-of, publish of a delta,
# the stack in list and get, its limits, gc, and compact, whose result has
# the checksum of a build of the merged input.
use strict;
use warnings;
use lib 't';
use PredTest;
use Test::More;

sub row {
    my ($k, $v) = @_;
    return defined $v ? qq{{"key":"$k","value":$v}\n}
                      : qq{{"key":"$k","delete":true}\n};
}

sub checksum {
    my ($file) = @_;
    my ($sum) = PredTest::must_run('info', $file) =~ /^checksum: (\S+)$/m
        or die "$file: no checksum";
    return $sum;
}

my $dir = snap_dir('delta_cli');
my $in = snap_dir('delta_cli_input');

snap_build($dir, 'v1', join '', map { row("k$_", $_) } 1 .. 5);

# --- building a delta
write_file("$in/d.jsonl", row('k1', 10) . row('k2') . row('k9', 9));
run_ok('a delta of a version that is not there', 1,
       qr/\Apred-snapshot: \S+: no version nope \(no snap-nope\.mdb there; "pred-snapshot list \S+" shows the versions\)\n\z/,
       'build', $dir, '--quiet', '--delta-of', 'nope', '--input',
       "$in/d.jsonl");
write_file("$in/both.jsonl", row('k1', 1) . qq{{"key":"k2","value":2,"delete":true}\n});
run_ok('a line with a value and a deletion', 1,
       qr/\Apred-snapshot: \S+\/both\.jsonl:2: a line has "value" or "delete", not both\n\z/,
       'build', $dir, '--quiet', '--delta-of', 'v1', '--input',
       "$in/both.jsonl");
write_file("$in/false.jsonl", qq{{"key":"k2","delete":false}\n});
run_ok('"delete":false', 1,
       qr/\Apred-snapshot: \S+\/false\.jsonl:1: field "delete" is not true\n\z/,
       'build', $dir, '--quiet', '--delta-of', 'v1', '--input',
       "$in/false.jsonl");
run_ok('a deletion in a base build', 1,
       qr/\Apred-snapshot: \S+\/d\.jsonl:2: field "value" is missing \(deletions are for a delta: build --delta-of VERSION\)\n\z/,
       'build', $dir, '--quiet', '--input', "$in/d.jsonl");
run_ok('a delta', 0,
       qr/\Abuilt \S+\/delta-d1\.mdb: 2 upserts, 1 deletions over version v1 in [\d.]+ s\n\z/,
       'build', $dir, '--quiet', '--version', 'd1', '--delta-of', 'v1',
       '--input', "$in/d.jsonl");
run_ok('versions are one namespace', 1,
       qr/\Apred-snapshot: \S+\/delta-d1\.mdb: version "d1" already exists\n\z/,
       'build', $dir, '--quiet', '--version', 'd1', '--input',
       "$in/d.jsonl", '--dedupe');
run_ok('verify a delta', 0,
       qr/\A\S+\/delta-d1\.mdb: ok: delta d1 of version v1, 2 upserts, 1 deletions, fnv1a64:[0-9a-f]{16}\n\z/,
       'verify', "$dir/delta-d1.mdb");
run_ok('info names the base', 0,
       qr/^delta_of: v1\ndelta_of_checksum: fnv1a64:[0-9a-f]{16}\ndeletes: 1\n\z/m,
       'info', "$dir/delta-d1.mdb");

# --- names that are not base versions
run_ok('--delta-of a delta', 1,
       qr/\Apred-snapshot: \S+: d1 is a delta of v1: --delta-of takes a base version\n\z/,
       'build', $dir, '--quiet', '--version', 'dd', '--delta-of', 'd1',
       '--input', "$in/d.jsonl");
run_ok('a file name for a version', 1,
       qr/\Apred-snapshot: \S+: no version snap-v1\.mdb: give the version, not the file name \("pred-snapshot list \S+" shows them\)\n\z/,
       'publish', $dir, 'snap-v1.mdb');
run_ok('no such version', 1,
       qr/\Apred-snapshot: \S+: no version v9 \(no snap-v9\.mdb there; "pred-snapshot list \S+" shows the versions\)\n\z/,
       'publish', $dir, 'v9');

# --- publishing it
run_ok('no live version to go over', 1,
       qr/\Apred-snapshot: \S+: no live version to put delta d1 over\n\z/,
       'publish', $dir, 'd1');
PredTest::must_run('publish', $dir, 'v1');
run_ok('publish a delta', 0,
       "published delta d1 over v1 (2 upserts, 1 deletions), 1 layer\n",
       'publish', $dir, 'd1');
is(readlink("$dir/layers"), 'snap-v1.mdb+delta-d1.mdb', 'the layers pointer');
run_ok('twice', 0, "delta d1 is already live over v1\n",
       'publish', $dir, 'd1');
run_ok('get: a delta\'s upsert', 0, "10\n", 'get', $dir, 'k1');
run_ok('get: a delta\'s deletion', 1,
       qr/\Apred-snapshot: \S+: key "k2" is deleted by delta d1\n\z/,
       'get', $dir, 'k2');
run_ok('get: the base', 0, "3\n", 'get', $dir, 'k3');
run_ok('get: in the delta file', 1,
       qr/\Apred-snapshot: \S+\/delta-d1\.mdb: key "k2" is deleted by this delta\n\z/,
       'get', "$dir/delta-d1.mdb", 'k2');

# a delta renamed as a base is not one
{
    link "$dir/delta-d1.mdb", "$dir/snap-fake.mdb" or die;
    run_ok('a delta published as a base', 1,
           qr/\Apred-snapshot: \S+\/snap-fake\.mdb: refused: a delta of version v1, not a base; the live version is unchanged\n\z/,
           'publish', $dir, 'fake');
    unlink "$dir/snap-fake.mdb";
}

# --- at most 8 deltas
for my $i (2 .. 8) {
    write_file("$in/d$i.jsonl", row("k$i", $i * 100));
    PredTest::must_run('build', $dir, '--quiet', '--version', "d$i",
                       '--delta-of', 'v1', '--input', "$in/d$i.jsonl");
    PredTest::must_run('publish', $dir, "d$i");
}
write_file("$in/d9.jsonl", row('k1', 900));
PredTest::must_run('build', $dir, '--quiet', '--version', 'd9',
                   '--delta-of', 'v1', '--input', "$in/d9.jsonl");
run_ok('a ninth delta', 1,
       qr/\Apred-snapshot: \S+\/delta-d9\.mdb: refused: 8 deltas over version v1 already \("compact \S+" merges them into a new base\)\n\z/,
       'publish', $dir, 'd9');
run_ok('list shows the stack', 0,
       qr/^\* v1 +5 +\S+ +\S+  live\n\+ d1 +3 +\S+ +\S+  delta of v1, layer 1 of 8\n(?:\+ d\d +1 +\S+ +\S+  delta of v1, layer \d of 8\n){7}  d9 +1 +\S+ +\S+  delta of v1, not live\n\z/m,
       'list', $dir);

# --- compact: the stack into one base, equal to a build of the merged input
run_ok('compact', 0,
       "compacted snap-v1.mdb and 8 deltas into v2: 9 entries\n"
       . "published v2 (9 entries), previous: v1\n"
       . "kept the 8 deltas of v1 aside for a rollback\n",
       'compact', $dir, '--version', 'v2');
ok(!-e "$dir/layers", 'the layers pointer is gone');
is(readlink("$dir/previous-layers"),
   'snap-v1.mdb+' . join('+', map { "delta-d$_.mdb" } 1 .. 8),
   'the stack is kept aside with its base');
{
    my %want = (k1 => 10, k3 => 3, k4 => 400, k5 => 500, k9 => 9);
    $want{"k$_"} = $_ * 100 for 2 .. 8;
    $want{k4} = 400;
    my $whole = snap_dir('delta_cli_whole');
    snap_build($whole, 'whole',
               join '', map { row($_, $want{$_}) } sort keys %want);
    is(checksum("$dir/snap-v2.mdb"), checksum("$whole/snap-whole.mdb"),
       'compact gives the checksum of a build of the merged input');
}
run_ok('nothing to compact', 1,
       qr/\Apred-snapshot: \S+: nothing to compact: no deltas over the live snap-v2\.mdb\n\z/,
       'compact', $dir);

# --- gc keeps the live and the previous version's deltas
write_file("$in/e.jsonl", row('k1', 1));
PredTest::must_run('build', $dir, '--quiet', '--version', 'e1',
                   '--delta-of', 'v2', '--input', "$in/e.jsonl");
run_ok('gc keeps the previous version\'s deltas', 0, '',
       'gc', $dir, '--keep', '5');

# --- a rollback brings the version's deltas back, and keeps the other's
PredTest::must_run('publish', $dir, 'e1');
run_ok('rollback', 0,
       "rolled back to v1 (5 entries), previous: v2\n"
       . "kept the 1 delta of v2 aside for a rollback\n"
       . "the 8 deltas of v1 are live again\n",
       'rollback', $dir);
run_ok('get through them', 0, "10\n", 'get', $dir, 'k1');
run_ok('a delta of the version before', 1,
       qr/\Apred-snapshot: \S+\/delta-e1\.mdb: refused: a delta of version v2, and version v1 is live \(build it with --delta-of v1\)\n\z/,
       'publish', $dir, 'e1');
snap_build($dir, 'v3', row('k1', 3));
PredTest::must_run('publish', $dir, 'v3');
run_ok('gc removes the deltas of older versions', 0,
       "removed delta-e1.mdb (a delta of v2)\n", 'gc', $dir, '--keep', '5');
ok(-e "$dir/delta-d1.mdb", 'and keeps those of the previous one');

# --- deltas that are not what their name or base say
{
    my $d = snap_dir('delta_cli_bad');
    snap_build($d, 'v1', row('a', 1));
    PredTest::must_run('publish', $d, 'v1');
    write_file("$in/x.jsonl", row('a', 2));
    PredTest::must_run('build', $d, '--quiet', '--version', 'x',
                       '--delta-of', 'v1', '--input', "$in/x.jsonl");
    link "$d/delta-x.mdb", "$d/delta-y.mdb" or die;
    run_ok('a delta copied under another name', 1,
           qr/\Apred-snapshot: \S+\/delta-y\.mdb: refused: its metadata says delta x\n\z/,
           'publish', $d, 'y');

    # the same version name, other content: another base
    unlink "$d/snap-v1.mdb";
    snap_build($d, 'v1', row('a', 100));
    PredTest::must_run('publish', $d, 'v1');
    run_ok('a delta of a base rebuilt under its name', 1,
           qr/\Apred-snapshot: \S+\/delta-x\.mdb: refused: built over another version v1 \(fnv1a64:[0-9a-f]{16}\), the live one is fnv1a64:[0-9a-f]{16}: build it again\n\z/,
           'publish', $d, 'x');

    # a delta damaged after its publish is not compacted into a base
    unlink "$d/delta-x.mdb", "$d/delta-y.mdb";
    write_file("$in/x2.jsonl", row('a', 424242));
    PredTest::must_run('build', $d, '--quiet', '--version', 'x2',
                       '--delta-of', 'v1', '--input', "$in/x2.jsonl");
    PredTest::must_run('publish', $d, 'x2');
    {
        open my $fh, '+<', "$d/delta-x2.mdb" or die;
        binmode $fh;
        my $bytes = do { local $/; <$fh> };
        my $at = index $bytes, '424242';
        die 'no value in the file' if $at < 0;
        seek $fh, $at, 0;
        print $fh '424243';
        close $fh;
    }
    run_ok('compact of a damaged delta', 1,
           qr/delta-x2\.mdb: invalid snapshot: checksum mismatch: content is fnv1a64:[0-9a-f]{16}, metadata says fnv1a64:[0-9a-f]{16}\n\z/,
           'compact', $d);
    is(readlink("$d/current"), 'snap-v1.mdb', 'the live version stays');

    # a canary's decision is the operator's
    snap_build($d, 'c1', row('a', 7));
    PredTest::must_run('canary', $d, 'c1', '10');
    run_ok('compact during a canary', 1,
           qr/\Apred-snapshot: \S+: a canary is running: promote or abort it first\n\z/,
           'compact', $d);
}

# --- compact keeps the base's as-of time, and each changed key's own
{
    my $d = snap_dir('delta_cli_asof');
    snap_build($d, 'v1', row('a', 1) . row('b', 2) . row('c', 3),
               args => ['--as-of', 1000]);
    PredTest::must_run('publish', $d, 'v1');
    write_file("$in/t1.jsonl", row('a', 10) . row('c'));
    write_file("$in/t2.jsonl", row('a', 20));
    # published out of the order of their times: the newest layer's
    # counts for a key, as nginx reads the stack
    PredTest::must_run('build', $d, '--quiet', '--version', 't1',
                       '--delta-of', 'v1', '--as-of', 3000, '--input',
                       "$in/t1.jsonl");
    PredTest::must_run('build', $d, '--quiet', '--version', 't2',
                       '--delta-of', 'v1', '--as-of', 2000, '--input',
                       "$in/t2.jsonl");
    PredTest::must_run('publish', $d, $_) for qw(t1 t2);
    PredTest::must_run('compact', $d, '--version', 'v2');
    run_ok('the compacted base', 0,
           qr/^as_of: 1000\nentries: 2\n(?:.*\n)*as_of_keys: 2\nas_of_checksum: fnv1a64:[0-9a-f]{16}\n\z/m,
           'info', $d);
    run_ok('verify checks the as_of keys too', 0,
           qr/: ok: version v2, 2 entries, /, 'verify', $d);
    open my $dump, '-|', 'mdb_dump', '-n', '-p', '-s', 'as_of',
        "$d/snap-v2.mdb" or die;
    my $text = do { local $/; <$dump> };
    close $dump;
    like($text, qr/\n a\n 2000\n c\n 3000\nDATA=END/,
         'each key as of the newest layer changing it, a deleted key too');
}

# --- a stack whose deltas delete every key is not compacted
{
    my $d = snap_dir('delta_cli_empty');
    snap_build($d, 'v1', row('a', 1));
    PredTest::must_run('publish', $d, 'v1');
    write_file("$in/all.jsonl", row('a'));
    PredTest::must_run('build', $d, '--quiet', '--version', 'x',
                       '--delta-of', 'v1', '--input', "$in/all.jsonl");
    PredTest::must_run('publish', $d, 'x');
    run_ok('compact into nothing', 1,
           qr/\Apred-snapshot: \S+: the deltas delete every key: nothing to compact into\n\z/,
           'compact', $d);
    is(readlink("$d/current"), 'snap-v1.mdb', 'the live version stays');
    opendir my $dh, $d or die;
    is_deeply([grep { /tmp/ } readdir $dh], [], 'no temporary file left');
}

done_testing();
