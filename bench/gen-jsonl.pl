#!/usr/bin/perl
# Writes N prediction records as JSON Lines in random key order, values of
# about 110 bytes: gen-jsonl.pl N [SEED] > file
use strict;
use warnings;
use List::Util qw(shuffle);

my ($n, $seed) = @ARGV;
die "usage: gen-jsonl.pl N [SEED]\n" unless $n;
srand($seed // 42);

for my $k (shuffle 0 .. $n - 1) {
    printf qq({"key":"user_%07d","value":{"score":%.6f,"segment":"s%02d",)
           . qq("model":"ctr-v7","items":[%d,%d,%d],"ts":1795300000}}\n),
           $k, rand(), $k % 40, $k % 997, $k % 991, $k % 983;
}
