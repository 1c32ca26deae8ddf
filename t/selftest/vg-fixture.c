/* Memory bugs on purpose, for t/001-valgrind-check.t: the runner must
 * report the invalid read and the leak through pred_ code, and let the
 * leak through other code pass. */

#include <stdlib.h>
#include <string.h>


__attribute__((noinline)) static char *
pred_fixture_leak(void)
{
    return strdup("leaked through our code");
}


__attribute__((noinline)) static char *
core_fixture_leak(void)
{
    return strdup("leaked by the host program");
}


int
main(int argc, char **argv)
{
    char           *p;
    volatile char   c;

    (void) argv;

    p = pred_fixture_leak();
    p = core_fixture_leak();
    p = NULL;

    if (argc > 1) {
        p = malloc(8);
        c = p[8];
        (void) c;
        free(p);
    }

    return 0;
}
