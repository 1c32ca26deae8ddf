# The fleet test, small: an origin and 5 edges in network namespaces, 100k
# keys, every fault (bench/fleet.pl --quick; "make fleet-test" runs it with
# 1M keys and writes the figures).  Plain Perl, its own nginx processes:
# the same under any Test::Nginx.
use strict;
use warnings;

if ($ENV{TEST_NGINX_USE_VALGRIND}) {
    print "1..0 # SKIP the fleet's nginx processes are not under memcheck\n";
    exit 0;
}

exec $^X, 'bench/fleet.pl', '--quick' or die "exec: $!";
