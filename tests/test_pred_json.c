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

    /* in place, as bulk writes do: strings move left over white space */
    strcpy(out, in);
    len = pred_json_compact(out, strlen(out), out);
    out[len] = '\0';
    assert_string_equal(out, "{\"a b\":[1,2.50],\"s\":\" x \\\" y \"}");
}


static void
test_validate_accepts(void **state)
{
    size_t       i, where;
    const char  *ok[] = {
        "0", "-0", "1.5e-3", "-12.25E+10", "\"\"", "\"a\\u00e9\\n\\\"\"",
        "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", "true", "false",
        "null", "[]", "{}", " [ 1 , { \"a\" : [ ] } , \"x\" ] ",
        "{\"a\":{\"b\":{\"c\":[null,true,false]}}}", "\t\r\n1\n",
        NULL
    };

    (void) state;

    for (i = 0; ok[i]; i++) {
        if (pred_json_validate(ok[i], strlen(ok[i]), &where) != 0) {
            fail_msg("refused valid JSON: %s", ok[i]);
        }
    }
}


static void
test_validate_refuses(void **state)
{
    size_t       i, where;
    const char  *bad[] = {
        "", " ", "NaN", "Infinity", "-Infinity", "{\"a\":NaN}", "01", "1.",
        ".5", "+1", "1e", "1e+", "-", "tru", "nul", "[1,]", "[,1]", "{,}",
        "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{a:1}", "[1 2]", "[1", "{",
        "\"abc", "\"a\\x\"", "\"\\u12g4\"", "\"\\u12\"",
        "\"\x01\"", "\"\xc0\xaf\"", "\"\xe0\x80\xaf\"",
        "\"\xed\xa0\x80\"", "\"\xf5\x80\x80\x80\"", "\"\xc3\"",
        "1 2", "[] []", "{\"a\":1}}", "]", "}", "[\"a\":1]",
        NULL
    };

    (void) state;

    for (i = 0; bad[i]; i++) {
        if (pred_json_validate(bad[i], strlen(bad[i]), &where) == 0) {
            fail_msg("accepted invalid JSON: %s", bad[i]);
        }
    }
}


static void
test_validate_depth_and_where(void **state)
{
    char    deep[2 * PRED_JSON_MAX_DEPTH + 2];
    size_t  where;

    (void) state;

    memset(deep, '[', PRED_JSON_MAX_DEPTH);
    memset(deep + PRED_JSON_MAX_DEPTH, ']', PRED_JSON_MAX_DEPTH);
    assert_int_equal(pred_json_validate(deep, 2 * PRED_JSON_MAX_DEPTH,
                                        &where), 0);

    memset(deep, '[', PRED_JSON_MAX_DEPTH + 1);
    memset(deep + PRED_JSON_MAX_DEPTH + 1, ']', PRED_JSON_MAX_DEPTH + 1);
    assert_int_equal(pred_json_validate(deep, 2 * PRED_JSON_MAX_DEPTH + 2,
                                        &where), -1);
    assert_int_equal(where, PRED_JSON_MAX_DEPTH);

    assert_int_equal(pred_json_validate("[1,x]", 5, &where), -1);
    assert_int_equal(where, 3);
}


static void
test_array_items(void **state)
{
    size_t       n;
    const char  *a = " [ 1 , {\"x\": [2, 3]} , \"s,t\" ,null] ";
    const char  *e = "[]", *o = "{}";
    const char  *starts[4], *stops[4];

    (void) state;

    assert_int_equal(pred_json_array(a, a + strlen(a), starts, stops, 4, &n),
                     0);
    assert_int_equal(n, 4);
    assert_memory_equal(starts[1], "{\"x\": [2, 3]}", stops[1] - starts[1]);
    assert_memory_equal(starts[2], "\"s,t\"", stops[2] - starts[2]);
    assert_memory_equal(starts[3], "null", stops[3] - starts[3]);

    assert_int_equal(pred_json_array(a, a + strlen(a), starts, stops, 3, &n),
                     -1);
    assert_int_equal(pred_json_array(e, e + 2, starts, stops, 4, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(pred_json_array(o, o + 2, starts, stops, 4, &n), -1);
}


static void
test_members_one_pass(void **state)
{
    const char        *o = "{\"id\":\"b1\", \"score\" : 0.5,\"x\":[1],"
                           "\"id\":\"dup\",\"esc\\u0061\":1}";
    const char        *arr = "[1]";
    const char        *s[4], *e[4];
    pred_json_name_t   names[] = {
        { "score", 5 }, { "id", 2 }, { "nope", 4 }, { "esca", 4 }
    };

    (void) state;

    assert_int_equal(pred_json_members(o, o + strlen(o), names, 4, s, e), 0);
    assert_memory_equal(s[0], "0.5", e[0] - s[0]);
    assert_memory_equal(s[1], "\"b1\"", e[1] - s[1]);   /* the first wins */
    assert_null(s[2]);
    assert_memory_equal(s[3], "1", e[3] - s[3]);

    assert_int_equal(pred_json_members(arr, arr + 3, names, 1, s, e), -1);
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
        cmocka_unit_test(test_validate_accepts),
        cmocka_unit_test(test_validate_refuses),
        cmocka_unit_test(test_validate_depth_and_where),
        cmocka_unit_test(test_array_items),
        cmocka_unit_test(test_members_one_pass),
    };

    return cmocka_run_group_tests_name("pred_json", tests, NULL, NULL);
}
