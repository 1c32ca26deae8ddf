# The test runner must catch real failures: run blocks that are wrong on
# purpose through prove and check that each one is reported as failed.
use strict;
use warnings;
use Test::More;
use File::Spec;

# this checks the bundled runner; under the real Test::Nginx it has nothing
# to check
my ($socket) = grep { -f "$_/Test/Nginx/Socket.pm" } grep { !ref } @INC;
plan skip_all => "Test::Nginx from $socket, not the bundled runner"
    if !$socket || File::Spec->rel2abs($socket)
                   ne File::Spec->rel2abs('t/lib');

my @inc = map { ('-I', $_) } grep { !ref } @INC;
local $ENV{TEST_NGINX_SERVROOT} = File::Spec->rel2abs('t/servroot-selftest');
local $ENV{TEST_NGINX_MASTER_PROCESS} = 'on';

my $out = `prove -v @inc t/selftest/failing.tt 2>&1`;
my $rc = $? >> 8;

isnt($rc, 0, 'prove exits non-zero on a file with failing blocks');
like($out, qr/^Result: FAIL/m, 'prove reports FAIL');

my %expect = (
    'TEST 1: sane block that passes - status code ok' => 'ok',
    'TEST 1: sane block that passes - response_body' => 'ok',
    'TEST 2: wrong body - response_body' => 'not ok',
    'TEST 3: wrong status - status code ok' => 'not ok',
    'TEST 4: wrong header, and a header that must be absent - header X-Foo ok'
        => 'not ok',
    'TEST 4: wrong header, and a header that must be absent - header '
        . 'Content-Type not present' => 'not ok',
    'TEST 5: error_log pattern that never shows up - pattern "this line is '
        . 'never logged" matches' => 'not ok',
    'TEST 6: no_error_log pattern that shows up - pattern "http finalize '
        . 'request" does not match' => 'not ok',
    'TEST 7: unknown section - unknown section "--- response_bodyy"'
        => 'not ok',
    'TEST 8: duplicate section - duplicate section "--- response_body"'
        => 'not ok',
    'TEST 9: must_die, but nginx starts - die as expected' => 'not ok',
    'TEST 10: an [alert] nobody expected - no unexpected [alert]'
        => 'not ok',
);

for my $name (sort keys %expect) {
    my $want = $expect{$name};
    my $re = qr/^\Q$want\E \d+ - \S+ \Q$name\E/m;
    like($out, $re, "$want: $name");
}

like($out, qr/^# -goodbye\n# \+hello$/m,
     'a body mismatch shows a diff');

diag($out) if !Test::More->builder->is_passing;

done_testing();
