/*
 * Unit tests for the delta layers pointer (snapshot/pred_delta.c).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pred_delta.h"
#include "pred_snap.h"


static int
parse(const char *text, pred_delta_stack_t *stack)
{
    return pred_delta_parse_link(text, strlen(text), stack);
}


static void
test_parse_good(void **state)
{
    pred_delta_stack_t  st;

    (void) state;

    assert_int_equal(parse("snap-v1.mdb+delta-d1.mdb", &st), 0);
    assert_string_equal(st.base, "snap-v1.mdb");
    assert_int_equal(st.n, 1);
    assert_string_equal(st.layer[0], "delta-d1.mdb");

    assert_int_equal(parse("snap-20261201T030000Z.mdb+delta-a.mdb"
                           "+delta-b_2.mdb+delta-c-3.mdb", &st), 0);
    assert_string_equal(st.base, "snap-20261201T030000Z.mdb");
    assert_int_equal(st.n, 3);
    assert_string_equal(st.layer[1], "delta-b_2.mdb");
    assert_string_equal(st.layer[2], "delta-c-3.mdb");

    /* the most there may be */
    assert_int_equal(parse("snap-v.mdb+delta-1.mdb+delta-2.mdb+delta-3.mdb"
                           "+delta-4.mdb+delta-5.mdb+delta-6.mdb"
                           "+delta-7.mdb+delta-8.mdb", &st), 0);
    assert_int_equal(st.n, PRED_DELTA_MAX);
    assert_string_equal(st.layer[7], "delta-8.mdb");
}


static void
test_parse_bad(void **state)
{
    size_t              i;
    pred_delta_stack_t  st;
    static const char  *bad[] = {
        "",
        "snap-v1.mdb",                      /* no delta */
        "snap-v1.mdb+",
        "+delta-d1.mdb",
        "delta-d1.mdb+delta-d2.mdb",        /* no base */
        "snap-v1.mdb+snap-v2.mdb",          /* a base as a delta */
        "snap-v1.mdb+delta-d1.mdb+",
        "snap-v1.mdb++delta-d1.mdb",
        "snap-v1.mdb+delta-d1.mdb+delta-d1.mdb",    /* twice */
        "snap-.mdb+delta-d1.mdb",
        "snap-v1.mdb+delta-.mdb",
        "snap-v1.mdb+delta-.hidden.mdb",
        "snap-v1.mdb+delta-a/b.mdb",
        "snap-v1.mdb+delta-../x.mdb",
        "snap-v1.mdb+delta-d1.mdbx",
        "snap-v1.mdb+delta-d 1.mdb",
        "snap-v1.mdb+delta-1.mdb+delta-2.mdb+delta-3.mdb+delta-4.mdb"
        "+delta-5.mdb+delta-6.mdb+delta-7.mdb+delta-8.mdb+delta-9.mdb",
        NULL
    };

    (void) state;

    for (i = 0; bad[i]; i++) {
        assert_int_equal(parse(bad[i], &st), -1);
    }

    /* an embedded NUL ends nothing: the length is what counts */
    assert_int_equal(pred_delta_parse_link("snap-v1.mdb+delta-d\0.mdb", 24,
                                           &st), -1);
}


static void
test_format(void **state)
{
    char                buf[PRED_DELTA_LINK_MAX];
    pred_delta_stack_t  st, back;

    (void) state;

    assert_int_equal(parse("snap-v1.mdb+delta-d1.mdb+delta-d2.mdb", &st), 0);
    assert_int_equal(pred_delta_format_link(&st, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "snap-v1.mdb+delta-d1.mdb+delta-d2.mdb");

    assert_int_equal(pred_delta_parse_link(buf, strlen(buf), &back), 0);
    assert_memory_equal(&st, &back, sizeof(st));

    /* too small a buffer, and an empty stack */
    assert_int_equal(pred_delta_format_link(&st, buf, 20), -1);
    st.n = 0;
    assert_int_equal(pred_delta_format_link(&st, buf, sizeof(buf)), -1);
}


static void
test_file_version(void **state)
{
    char  v[PRED_SNAP_VERSION_MAX + 1];

    (void) state;

    assert_int_equal(pred_delta_file_version("delta-x.1.mdb", 13, "delta-",
                                             v), 0);
    assert_string_equal(v, "x.1");
    assert_int_equal(pred_delta_file_version("snap-x.mdb", 10, "delta-", v),
                     -1);
    assert_int_equal(pred_delta_file_version("delta-.mdb", 10, "delta-", v),
                     -1);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_file_version),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
