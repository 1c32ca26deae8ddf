#!/usr/bin/perl
# Writes N users' candidate lists as JSON Lines, 100 items each:
# gen-lists.pl N [SEED] > file
use strict;
use warnings;

my ($n, $seed) = @ARGV;
die "usage: gen-lists.pl N [SEED]\n" unless $n;
srand($seed // 42);

for my $u (0 .. $n - 1) {
    my @items = map {
        sprintf '{"id":"i%05d","score":%.4f,"category":"c%d"}',
                int(rand 100000), rand(), $_ % 10
    } 0 .. 99;
    printf qq({"key":"user_%07d","value":{"items":[%s]}}\n), $u,
           join(',', @items);
}
