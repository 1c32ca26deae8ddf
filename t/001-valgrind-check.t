# The bundled runner's valgrind mode must tell a memcheck error and a leak
# through our code from nginx's own leaks: run a program with such bugs
# under valgrind and check what valgrind_problems() picks out.
use strict;
use warnings;
use Test::More;
use File::Path qw(make_path remove_tree);
use File::Spec;

plan skip_all => 'valgrind is not installed'
    if system('valgrind --version >/dev/null 2>&1') != 0;

require File::Spec->rel2abs('t/lib/Test/Nginx/Socket.pm');

my $dir = File::Spec->rel2abs('t/servroot-vgcheck');
remove_tree($dir);
make_path($dir);

is(system("gcc -g -O0 -o $dir/fixture t/selftest/vg-fixture.c"), 0,
   'fixture builds');

my $vg = 'valgrind -q --tool=memcheck --leak-check=full '
         . '--show-possibly-lost=no --num-callers=100';

# leaks only: the one through pred_fixture_leak is ours
system("$vg --log-file=$dir/valgrind.%p $dir/fixture");
my @bad = Test::Nginx::Socket::valgrind_problems($dir);
is(scalar @bad, 1, 'one problem: the leak through our code');
like($bad[0] // '', qr/definitely lost.*pred_fixture_leak/s,
     'it is the leak through pred_fixture_leak');
unlike(join('', @bad), qr/core_fixture_leak/,
       'the host program\'s own leak is not ours');

# an invalid read anywhere is a problem
unlink glob "$dir/valgrind.*";
system("$vg --log-file=$dir/valgrind.%p $dir/fixture read");
@bad = Test::Nginx::Socket::valgrind_problems($dir);
is(scalar @bad, 2, 'two problems: the invalid read and our leak');
like(join('', @bad), qr/Invalid read of size 1.*main \(vg-fixture\.c/s,
     'the invalid read, with its stack');

remove_tree($dir);
done_testing();
