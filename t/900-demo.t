# The demo's tour as a test: the model is trained, the batch job runs, the
# snapshot is published, and every step of the tour is checked.
use strict;
use warnings;
use Test::More;

my $out = `demo/run.sh --check 2>&1`;
my $rc = $? >> 8;

is($rc, 0, 'demo/run.sh --check exits 0') or diag($out);

my @steps = $out =~ /^(ok|not ok) \d+ - (.+)$/mg;
my %seen;
while (my ($status, $name) = splice(@steps, 0, 2)) {
    is($status, 'ok', "tour: $name");
    $seen{$name} = 1;
}

for my $name ('snapshot hit', 'miss answered by the model',
              'then served from the cache', 'admin invalidates',
              'the invalidated key goes to the model',
              'no failed request during the publish',
              'the new version answers', 'rollback',
              'a miss with the model down gets the default',
              'the model answers again', 'the metrics count every tier')
{
    ok($seen{$name}, "the tour checks: $name");
}

like($out, qr/^14 passed, 0 failed$/m, 'every step of the tour passed');

done_testing();
