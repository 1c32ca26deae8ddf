# pred-snapshot: every command, its exit codes and messages, and that a
# failed build leaves nothing behind.
use strict;
use warnings;
use lib 't';
use PredTest;
use Test::More;

sub files_in {
    my $dir = shift;
    opendir my $dh, $dir or die "$dir: $!";
    my @f = sort grep { !/^\.\.?$/ } readdir $dh;
    return join ' ', @f;
}

my $dir = snap_dir('cli');
my $in = snap_dir('cli-input');

write_file("$in/good.jsonl", <<'_EOJ_');
{"key":"b","value":{"score":0.25}}

{"key":"a","value":{"score":0.75, "tags":["x", "y"]}}
_EOJ_

# a folder that is not there: said, with what to do
run_ok('build into a missing folder', 1,
       "pred-snapshot: $dir/missing: No such file or directory (make the "
       . "folder first)\n",
       'build', "$dir/missing", '--quiet', '--input', "$in/good.jsonl");

# build, get, info, verify, publish, list

{
    local $ENV{SOURCE_DATE_EPOCH} = 1700000000;
    run_ok('build', 0, qr{^built \Q$dir\E/snap-v1\.mdb: 2 entries in [\d.]+ s\n\z},
           'build', $dir, '--version', 'v1', '--input', "$in/good.jsonl",
           '--freshness-sla', '6h', '--owner', 'ml-platform',
           '--invalidated-by', 'kafka:features', '--fallback-if-stale', 'fail');
}

is(files_in($dir), 'snap-v1.mdb', 'build writes one file and no pointer');

run_ok('get', 0, qq{{"score":0.75,"tags":["x","y"]}\n},
       'get', "$dir/snap-v1.mdb", 'a');
run_ok('get a missing key', 1,
       qq{pred-snapshot: $dir/snap-v1.mdb: key "zz" not found\n},
       'get', "$dir/snap-v1.mdb", 'zz');

run_ok('info', 0, qr/\Afile: \Q$dir\E\/snap-v1\.mdb
size: \d+
format: pred-snapshot\/1
version: v1
created_at: 1700000000
as_of: 1700000000
entries: 2
checksum: fnv1a64:[0-9a-f]{16}
source: \["\Q$in\E\/good\.jsonl"\]
builder: pred-snapshot 0\.1\.0
freshness_sla: 21600
owner: ml-platform
invalidated_by: kafka:features
fallback_if_stale: fail
\z/, 'info', "$dir/snap-v1.mdb");

run_ok('verify', 0,
       qr/^\Q$dir\E\/snap-v1\.mdb: ok: version v1, 2 entries, fnv1a64:[0-9a-f]{16}\n\z/,
       'verify', "$dir/snap-v1.mdb");

run_ok('publish', 0, "published v1 (2 entries)\n", 'publish', $dir, 'v1');
is(readlink("$dir/current"), 'snap-v1.mdb', 'current points at v1');
run_ok('publish again', 0, "v1 is already live\n", 'publish', $dir, 'v1');
run_ok('get through the folder', 0, qq{{"score":0.25}\n}, 'get', $dir, 'b');

# input forms: stdin, gzip, globs, Spark folders

{
    my $pid = open(my $to, '|-') // die;
    if (!$pid) {
        exec $ENV{PRED_SNAPSHOT}, 'build', $dir, '--quiet', '--version',
             'stdin', '--input', '-' or die;
    }
    print $to qq{{"key":"s","value":1}\n};
    close $to;
    is($? >> 8, 0, 'build from stdin');
    run_ok('stdin value', 0, "1\n", 'get', "$dir/snap-stdin.mdb", 's');
}

system("gzip -c $in/good.jsonl > $in/good.jsonl.gz") == 0 or die;
run_ok('gzip input', 0, qr/: 2 entries/, 'build', $dir, '--version', 'gz',
       '--input', "$in/good.jsonl.gz");

# a gzip file cut short (its trailer lost in a copy) is refused, not read as
# the records before the cut
{
    open my $gz, '<', "$in/good.jsonl.gz" or die $!;
    binmode $gz;
    my $bytes = do { local $/; <$gz> };
    close $gz;
    write_file("$in/cut.jsonl.gz", substr($bytes, 0, length($bytes) - 8));
    my $files = files_in($dir);
    run_ok('a truncated gzip input', 1,
           "pred-snapshot: $in/cut.jsonl.gz: the gzip stream is cut short "
           . "(truncated file?)\n",
           'build', $dir, '--version', 'cut', '--input', "$in/cut.jsonl.gz");
    is(files_in($dir), $files, 'a truncated gzip input leaves nothing behind');
}

mkdir "$in/spark";
write_file("$in/spark/part-00000", qq{{"key":"p0","value":0}\n});
write_file("$in/spark/part-00001", qq{{"key":"p1","value":1}\n});
write_file("$in/spark/.part-00000.crc", "not json");
run_ok('Spark folder without _SUCCESS', 1,
       "pred-snapshot: $in/spark: no _SUCCESS marker, so the job that "
       . "wrote it may not have finished (--no-success-marker to read it "
       . "anyway)\n",
       'build', $dir, '--version', 'sp', '--input', "$in/spark");
run_ok('--no-success-marker', 0, qr/: 2 entries/, 'build', $dir,
       '--version', 'sp', '--input', "$in/spark", '--no-success-marker');
write_file("$in/spark/_SUCCESS", '');
run_ok('Spark folder with _SUCCESS', 0, qr/: 2 entries/, 'build', $dir,
       '--version', 'sp2', '--input', "$in/spark");
run_ok('quoted glob and several inputs', 0, qr/: 4 entries/, 'build', $dir,
       '--version', 'glob', '--input', "$in/spark/part-*", "$in/good.jsonl");

# what a build refuses; each leaves the folder as it was

my $before = files_in($dir);

my @bad = (
    ['bad JSON', qq{{"key":"a","value":1}\n{"key":"b","value":1,}\n},
     qr/^pred-snapshot: \S+\/bad\.jsonl:2: invalid JSON at column \d+: .+\n\z/],
    ['NaN', qq{{"key":"a","value":NaN}\n},
     qr/^pred-snapshot: \S+\/bad\.jsonl:1: invalid JSON at column \d+: invalid token near 'NaN'\n\z/],
    ['empty key', qq{{"key":"","value":1}\n},
     qr/^pred-snapshot: \S+\/bad\.jsonl:1: invalid key: key is empty\n\z/],
    ['long key', '{"key":"' . ('k' x 512) . '","value":1}' . "\n",
     qr/^pred-snapshot: \S+\/bad\.jsonl:1: invalid key: key is longer than 511 bytes\n\z/],
    ['missing value', qq{{"key":"a","val":1}\n},
     qr/^pred-snapshot: \S+\/bad\.jsonl:1: field "value" is missing\n\z/],
    ['duplicate keys', qq{{"key":"a","value":1}\n{"key":"b","value":1}\n{"key":"a","value":2}\n},
     qr/^pred-snapshot: \S+\/bad\.jsonl:3: duplicate key "a" \(first at \S+\/bad\.jsonl:1; --dedupe keeps the last\)\n\z/],
    ['no entries', "\n\n",
     qr/^pred-snapshot: no entries in the input\n\z/],
);

for my $case (@bad) {
    my ($name, $data, $msg) = @$case;
    write_file("$in/bad.jsonl", $data);
    run_ok($name, 1, $msg, 'build', $dir, '--quiet', '--version', 'bad',
           '--input', "$in/bad.jsonl");
    is(files_in($dir), $before, "$name: nothing left behind");
}

write_file("$in/dup.jsonl",
           qq{{"key":"a","value":1}\n{"key":"a","value":2}\n});
run_ok('--dedupe', 0, qr/: 1 entries/, 'build', $dir, '--version', 'dd',
       '--input', "$in/dup.jsonl", "$in/dup.jsonl", '--dedupe');
run_ok('--dedupe keeps the last', 0, "2\n", 'get', "$dir/snap-dd.mdb", 'a');

write_file("$in/scores.jsonl", join '', map { qq{{"key":"k$_","value":{"score":$_}}\n} } 0 .. 9);
run_ok('--range', 1,
       qr/^pred-snapshot: \S+\/scores\.jsonl:3: value field "score" is 2, outside \[0, 1\] \(--range\)\n\z/,
       'build', $dir, '--version', 'r', '--input', "$in/scores.jsonl",
       '--range', 'score:0:1');
run_ok('--require-field', 1,
       qr/^pred-snapshot: \S+\/scores\.jsonl:1: value has no field "label" \(--require-field\)\n\z/,
       'build', $dir, '--version', 'r', '--input', "$in/scores.jsonl",
       '--require-field', 'label');
run_ok('--min-entries', 1,
       "pred-snapshot: 10 entries, fewer than --min-entries 11\n",
       'build', $dir, '--quiet', '--version', 'r', '--input',
       "$in/scores.jsonl", '--min-entries', '11');
run_ok('--max-shrink allows', 0, qr/: 10 entries/, 'build', $dir,
       '--version', 'ten', '--input', "$in/scores.jsonl", '--max-shrink',
       '10');
pred_snapshot('publish', $dir, 'ten');
write_file("$in/four.jsonl", join '', map { qq{{"key":"k$_","value":1}\n} } 1 .. 4);
run_ok('--max-shrink refuses', 1,
       "pred-snapshot: 4 entries, down from 10 in the live snapshot: more "
       . "than --max-shrink 50%\n",
       'build', $dir, '--quiet', '--version', 'four', '--input',
       "$in/four.jsonl", '--max-shrink', '50');
ok(!-e "$dir/snap-four.mdb", '--max-shrink: nothing left behind');

run_ok('an existing version', 1,
       qr/^pred-snapshot: \S+\/snap-v1\.mdb: version "v1" already exists\n\z/,
       'build', $dir, '--version', 'v1', '--input', "$in/good.jsonl");

# usage errors: exit 2

run_ok('unknown command', 2, qr/^pred-snapshot: unknown command "nope"\n/,
       'nope');
run_ok('unknown option', 2,
       qr/^pred-snapshot: build: unknown option "--colour"\n/,
       'build', $dir, '--colour', 'red', '--input', "$in/good.jsonl");
run_ok('invalid version', 2,
       qr/^pred-snapshot: build: invalid version "\.\.\/x": use 1 to 64 of/,
       'build', $dir, '--version', '../x', '--input', "$in/good.jsonl");
run_ok('bad --range', 2,
       qr/^pred-snapshot: build: invalid --range "score:1:0": use FIELD:MIN:MAX\n/,
       'build', $dir, '--range', 'score:1:0', '--input', "$in/good.jsonl");
run_ok('bad --freshness-sla', 2,
       qr/^pred-snapshot: build: invalid --freshness-sla "6 hours"/,
       'build', $dir, '--freshness-sla', '6 hours', '--input',
       "$in/good.jsonl");

# a large build spills sorted runs and merges them in key order

{
    my $n = 120000;
    open my $out, '>', "$in/big.jsonl" or die;
    # descending keys, so that every run needs the merge to come out sorted
    for my $i (reverse 1 .. $n) {
        printf $out qq{{"key":"key%07d","value":{"i":%d,"pad":"%s"}}\n},
               $i, $i, 'p' x 100;
    }
    printf $out qq{{"key":"key%07d","value":"last"}\n}, 7;
    close $out;

    run_ok('spilled build finds a duplicate across runs', 1,
           qr/^pred-snapshot: \S+\/big\.jsonl:120001: duplicate key "key0000007" \(first at \S+\/big\.jsonl:119994;/,
           'build', $dir, '--quiet', '--version', 'big', '--input',
           "$in/big.jsonl", '--memory', '16M');
    run_ok('spilled build with --dedupe', 0, qr/: 120000 entries/, 'build',
           $dir, '--quiet', '--version', 'big', '--input', "$in/big.jsonl",
           '--memory', '16M', '--dedupe');
    run_ok('spilled build verifies', 0, qr/ok: version big, 120000 entries/,
           'verify', "$dir/snap-big.mdb");
    run_ok('spilled build keeps the last duplicate', 0, qq{"last"\n},
           'get', "$dir/snap-big.mdb", 'key0000007');
    run_ok('spilled build value', 0,
           '{"i":120000,"pad":"' . ('p' x 100) . '"}' . "\n",
           'get', "$dir/snap-big.mdb", 'key0120000');
    opendir my $dh, $dir or die;
    is(scalar(grep { /^\.pred-build|\.tmp$/ } readdir $dh), 0,
       'no run or temporary files left');
    unlink "$in/big.jsonl";
}

# with two cores a second thread parses the second half of each 1 MiB read:
# a bad line is named by its number in either half, blank and CRLF lines
# counted, and records keep their own line numbers

{
    my $write = sub {
        my ($dup, @bad) = @_;
        my %bad = map { $_ => 1 } @bad;
        open my $out, '>', "$in/lines.jsonl" or die;
        for my $i (1 .. 30000) {
            if ($i % 1000 == 0) {
                print $out "\n";
            } elsif ($bad{$i}) {
                print $out qq{{"key":"","value":1}\n};
            } else {
                printf $out qq{{"key":"k%05d","value":{"pad":"%s"}}%s\n},
                       $i == $dup ? 9001 : $i, 'p' x 70, $i % 7 ? '' : "\r";
            }
        }
        close $out;
    };

    # about 9900 lines a read: 3001 and 12001 in a first half, 8001 and
    # 17001 in a second; the first bad line is the one named
    for my $bad ([3001], [8001], [12001], [17001], [29999], [3001, 8001],
                 [8001, 8002])
    {
        $write->(0, @$bad);
        run_ok("bad line @$bad of a big input", 1,
               qr/^pred-snapshot: \S+\/lines\.jsonl:$bad->[0]: invalid key: key is empty\n\z/,
               'build', $dir, '--quiet', '--version', 'lines', '--input',
               "$in/lines.jsonl");
    }

    $write->(9500);
    run_ok('a duplicate in the second half of a read', 1,
           qr/^pred-snapshot: \S+\/lines\.jsonl:9500: duplicate key "k09001" \(first at \S+\/lines\.jsonl:9001;/,
           'build', $dir, '--quiet', '--version', 'lines', '--input',
           "$in/lines.jsonl");

    $write->(0);
    run_ok('a big input', 0, qr/: 29970 entries/, 'build', $dir, '--quiet',
           '--version', 'lines', '--input', "$in/lines.jsonl");
    run_ok('a big input: a record of a second half', 0,
           '{"pad":"' . ('p' x 70) . '"}' . "\n",
           'get', "$dir/snap-lines.mdb", 'k08001');
    unlink "$in/lines.jsonl";
}

# verify and publish refuse bad files; the live version stays

write_file("$dir/snap-junk.mdb", "junk" x 100);
run_ok('verify junk', 1,
       "pred-snapshot: $dir/snap-junk.mdb: invalid snapshot: not a readable "
       . "snapshot: not an LMDB file\n", 'verify', "$dir/snap-junk.mdb");
run_ok('publish junk', 1,
       qr/invalid snapshot: not a readable snapshot: not an LMDB file\n.*refused, the live version is unchanged\n\z/s,
       'publish', $dir, 'junk');
is(readlink("$dir/current"), 'snap-ten.mdb', 'current unchanged');

snap_craft("$dir/snap-sum.mdb",
           [format => 'pred-snapshot/1', version => 'sum',
            created_at => 1, entries => 1,
            checksum => 'fnv1a64:0000000000000000'], [a => '1']);
run_ok('verify a bad checksum', 1,
       qr/invalid snapshot: checksum mismatch: content is fnv1a64:[0-9a-f]{16}, metadata says fnv1a64:0{16}\n\z/,
       'verify', "$dir/snap-sum.mdb");
snap_craft("$dir/snap-json.mdb",
           [format => 'pred-snapshot/1', version => 'json',
            created_at => 1, entries => 1, checksum => 'x'], [a => '{oops']);
run_ok('verify a value that is not JSON', 1,
       qr/invalid snapshot: key "a": value is not valid JSON: /,
       'verify', "$dir/snap-json.mdb");

# files that once crashed LMDB itself (found by tests/fuzz/fuzz_snapshot)
# are refused with a reason, and publish leaves the live version alone

my $reg = 'tests/fuzz/regressions/snapshot';
for my $case (
    ['sigfpe-zero-page-size',
     qr/invalid snapshot: SIGFPE reading the file: it is truncated or its pages are corrupt\n\z/],
    ['lmdb-assert-root',
     qr/invalid snapshot: LMDB gave up reading the file \(mdb\.c:\d+: assertion 'root > 1' failed in mdb_page_search\(\)\): its pages are corrupt\n\z/],
    ['lmdb-cycle',
     qr/invalid snapshot: LMDB was still reading the file after its CPU time limit: its pages are corrupt \(a cycle\)\n\z/],
    ['value-past-the-map', qr/invalid snapshot: key "a": /])
{
    my ($name, $re) = @$case;
    system('cp', "$reg/$name", "$dir/snap-$name.mdb") == 0 or die;
    run_ok("verify $name", 1, qr/\Q$dir\E\/snap-\Q$name\E\.mdb: $re/,
           'verify', "$dir/snap-$name.mdb");
    run_ok("publish $name", 1, qr/refused, the live version is unchanged\n\z/,
           'publish', $dir, $name);
    is(readlink("$dir/current"), 'snap-ten.mdb', "$name: current unchanged");
    unlink "$dir/snap-$name.mdb";
}

# rollback, list, gc

run_ok('publish v1', 0, "published v1 (2 entries), previous: ten\n",
       'publish', $dir, 'v1');
run_ok('rollback', 0, "rolled back to ten (10 entries), previous: v1\n",
       'rollback', $dir);
run_ok('rollback by name', 0, "rolled back to gz (2 entries), previous: ten\n",
       'rollback', $dir, 'gz');

my $list = run_ok('list', 0, qr/^  VERSION +ENTRIES +AGE +SIZE  STATUS\n/,
                  'list', $dir);
like($list, qr/^\* gz +2 +\d+s +\d+K  live$/m, 'list marks the live version');
like($list, qr/^  ten +10 +\d+s +\d+K  previous$/m, 'list marks previous');
like($list, qr/^  junk +- +- +\S+  invalid: not a readable snapshot: not an LMDB file$/m,
     'list shows invalid files');

my $gc = run_ok('gc', 0, qr/removed snap-/, 'gc', $dir, '--keep', '1');
ok(-e "$dir/snap-gz.mdb" && -e "$dir/snap-ten.mdb",
   'gc keeps the live and previous versions');
is(scalar(() = glob("$dir/snap-*.mdb")), 3, 'gc keeps N newest besides');
run_ok('gc usage', 2, qr/gc: use "gc DIR --keep N"/, 'gc', $dir);

# temporaries of builds that died (SIGKILL, the OOM killer) are listed and
# removed by gc; those of a process at work are kept
{
    my $dead = fork // die;
    exit 0 if $dead == 0;
    waitpid $dead, 0;
    write_file("$dir/.snap-big.mdb.$dead.tmp", 'x' x 100);
    write_file("$dir/.pred-build.$dead.run0", 'x' x 100);
    write_file("$dir/.snap-wip.mdb.$$.tmp", 'x' x 100);
    # and one of a dead process, but too young: a build elsewhere may own it
    write_file("$dir/.snap-young.mdb.$dead.tmp", 'x' x 100);
    # a dotfile that only looks like one is never touched
    write_file("$dir/.notes.2026.tmp.bak", 'x');
    my $old = time - 120;
    utime $old, $old, "$dir/.snap-big.mdb.$dead.tmp",
          "$dir/.pred-build.$dead.run0", "$dir/.snap-wip.mdb.$$.tmp";

    my $l = run_ok('list shows temporaries', 0, qr/VERSION/, 'list', $dir);
    like($l, qr/^  temporary \.snap-big\.mdb\.$dead\.tmp: process $dead is gone \(gc removes it\)$/m,
         'list: a dead build\'s file');
    like($l, qr/^  temporary \.snap-wip\.mdb\.$$\.tmp: process $$ is at work$/m,
         'list: a running build\'s file');

    my $g = run_ok('gc removes dead temporaries', 0,
                   qr/^removed \.pred-build\.$dead\.run0 \(process $dead is gone\)$/m,
                   'gc', $dir, '--keep', '1');
    like($g, qr/^removed \.snap-big\.mdb\.$dead\.tmp \(process $dead is gone\)$/m,
         'gc removes a dead build\'s temporary file');
    ok(!-e "$dir/.snap-big.mdb.$dead.tmp" && !-e "$dir/.pred-build.$dead.run0",
       'they are gone');
    ok(-e "$dir/.snap-wip.mdb.$$.tmp", 'a running build\'s file is kept');
    ok(-e "$dir/.snap-young.mdb.$dead.tmp", 'a file younger than a minute is kept');
    like($l, qr/^  temporary \.snap-young\.mdb\.$dead\.tmp: process $dead is gone \(gc removes it after a minute\)$/m,
         'list: a young file of a dead process');
    ok(-e "$dir/.notes.2026.tmp.bak", 'other dotfiles are never touched');
    unlink "$dir/.snap-wip.mdb.$$.tmp", "$dir/.snap-young.mdb.$dead.tmp",
           "$dir/.notes.2026.tmp.bak";
}

# a switch cut between its two renames leaves previous == current: a
# rollback says so instead of "rolling back" to the live version
{
    my $live = readlink "$dir/current";
    my $prev = readlink "$dir/previous";
    unlink "$dir/previous";
    symlink $live, "$dir/previous" or die;
    run_ok('rollback with previous == current', 1,
           qr/: previous and current are both \Q$live\E \(a publish or rollback was interrupted\): name the version to roll back to\n\z/,
           'rollback', $dir);
    unlink "$dir/previous";
    symlink $prev, "$dir/previous" or die;
}

# one lock per folder: a publish waits while another holds it
{
    use Fcntl qw(:flock);
    open my $lock, '>>', "$dir/.lock" or die "$dir/.lock: $!";
    flock($lock, LOCK_EX) or die "flock: $!";
    my $t0 = time;
    my $pid = open(my $pub, '-|') // die;
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT or die;
        exec $ENV{PRED_SNAPSHOT}, 'rollback', $dir or die;
    }
    sleep 2;
    ok(kill(0, $pid), 'a rollback waits while the folder is locked');
    close $lock;
    my $out = do { local $/; <$pub> } // '';
    close $pub;
    is($? >> 8, 0, 'and goes on once it is released');
    like($out, qr/: waiting for another command that changes it \(publish, rollback, canary, promote, abort, compact or gc\)\nrolled back to /,
         'saying what it waits for');
}

done_testing();
