/*
 * Unit tests for the raw JSON helpers (snapshot/pred_json.c).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "pred_json.h"


static const char  *doc =
    "{ \"predictions\" : [ {\"score\": 0.87, \"label\": \"a b\"},"
    " [1, 2.50, {\"x\": null}] ],"
    " \"a/b\": 1, \"m~n\": 2, \"esc\\u0061ped\": \"yes\", \"\": 3 }";


static void
assert_pointer(const char *ptr, const char *expected)
{
    const char  *start, *stop;

    assert_int_equal(pred_json_pointer(doc, strlen(doc), ptr, strlen(ptr),
                                       &start, &stop), 0);
    assert_int_equal((size_t) (stop - start), strlen(expected));
    assert_memory_equal(start, expected, stop - start);
}


static void
assert_no_pointer(const char *ptr)
{
    const char  *start, *stop;

    assert_int_equal(pred_json_pointer(doc, strlen(doc), ptr, strlen(ptr),
                                       &start, &stop), -1);
}


static void
test_pointer_paths(void **state)
{
    (void) state;

    assert_pointer("/predictions/0", "{\"score\": 0.87, \"label\": \"a b\"}");
    assert_pointer("/predictions/0/score", "0.87");
    assert_pointer("/predictions/0/label", "\"a b\"");
    assert_pointer("/predictions/1/1", "2.50");
    assert_pointer("/predictions/1/2/x", "null");
    assert_pointer("/a~1b", "1");
    assert_pointer("/m~0n", "2");
    assert_pointer("/escaped", "\"yes\"");
    assert_pointer("/", "3");
}


static void
test_pointer_whole_document(void **state)
{
    const char  *start, *stop;

    (void) state;

    assert_int_equal(pred_json_pointer(" [1] ", 5, "", 0, &start, &stop), 0);
    assert_int_equal(stop - start, 3);
    assert_memory_equal(start, "[1]", 3);
}


static void
test_pointer_misses(void **state)
{
    (void) state;

    assert_no_pointer("/nope");
    assert_no_pointer("/predictions/2");
    assert_no_pointer("/predictions/01");
    assert_no_pointer("/predictions/-1");
    assert_no_pointer("/predictions/x");
    assert_no_pointer("/predictions/0/score/deeper");
    assert_no_pointer("predictions");
    assert_no_pointer("/m~2n");
    assert_no_pointer("/a~");
}


static void
test_empty_containers(void **state)
{
    const char  *start, *stop;

    (void) state;

    assert_int_equal(pred_json_pointer("{}", 2, "/a", 2, &start, &stop), -1);
    assert_int_equal(pred_json_pointer("[]", 2, "/0", 2, &start, &stop), -1);
    assert_int_equal(pred_json_pointer("{\"a\":[]}", 8, "/a", 2, &start,
                                       &stop), 0);
    assert_memory_equal(start, "[]", 2);
}


static void
test_compact(void **state)
{
    char        out[64];
    const char *in = " { \"a b\" : [ 1 ,\t2.50 ] ,\n \"s\" : \" x \\\" y \" } ";
    size_t      len;

    (void) state;

    len = pred_json_compact(in, strlen(in), out);
    out[len] = '\0';
    assert_string_equal(out, "{\"a b\":[1,2.50],\"s\":\" x \\\" y \"}");
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pointer_paths),
        cmocka_unit_test(test_pointer_whole_document),
        cmocka_unit_test(test_pointer_misses),
        cmocka_unit_test(test_empty_containers),
        cmocka_unit_test(test_compact),
    };

    return cmocka_run_group_tests_name("pred_json", tests, NULL, NULL);
}
