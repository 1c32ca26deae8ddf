/*
 * Unit tests for the loader's JSON Lines parsing and checks (loader/jsonl.c).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jsonl.h"


static pred_jsonl_opts_t  opts = { "key", "value", NULL, 0, NULL, 0 };
static pred_buf_t         key, val;
static char               err[512];


static int
parse(const char *line, const pred_jsonl_opts_t *o)
{
    err[0] = '\0';
    return pred_jsonl_parse(line, strlen(line), o, &key, &val, err,
                            sizeof(err));
}


static void
assert_value(const char *expected)
{
    assert_int_equal(val.len, strlen(expected));
    assert_memory_equal(val.data, expected, val.len);
}


static void
test_value_bytes_kept_but_compacted(void **state)
{
    (void) state;

    assert_int_equal(parse("{\"key\": \"u1\", \"value\": {\"score\": 0.1,"
                           " \"s\": \"a b\\\" }\", \"l\": [1, 2.50] }}",
                           &opts), 0);
    assert_int_equal(key.len, 2);
    assert_memory_equal(key.data, "u1", 2);
    /* digits as written, white space inside strings untouched */
    assert_value("{\"score\":0.1,\"s\":\"a b\\\" }\",\"l\":[1,2.50]}");
}


static void
test_scalar_values_and_integer_keys(void **state)
{
    (void) state;

    assert_int_equal(parse("{\"value\": 42, \"key\": 7}", &opts), 0);
    assert_memory_equal(key.data, "7", 1);
    assert_value("42");

    assert_int_equal(parse("{\"key\":\"k\",\"value\":\"text\"}", &opts), 0);
    assert_value("\"text\"");
}


static void
test_escaped_key_is_decoded(void **state)
{
    (void) state;

    assert_int_equal(parse("{\"key\":\"caf\\u00e9\",\"value\":1}", &opts), 0);
    assert_int_equal(key.len, 5);
    assert_memory_equal(key.data, "caf\xc3\xa9", 5);
}


static void
test_member_named_with_escapes(void **state)
{
    (void) state;

    /* "valu\u0065" is "value"; the nested "value" must not be taken */
    assert_int_equal(parse("{\"x\":{\"value\":0},\"key\":\"k\","
                           "\"valu\\u0065\":[3]}", &opts), 0);
    assert_value("[3]");
}


static void
test_custom_field_names(void **state)
{
    pred_jsonl_opts_t  o = { "id", "pred", NULL, 0, NULL, 0 };

    (void) state;

    assert_int_equal(parse("{\"id\":\"a\",\"pred\":{\"p\":1}}", &o), 0);
    assert_value("{\"p\":1}");

    assert_int_equal(parse("{\"key\":\"a\",\"value\":1}", &o), -1);
    assert_string_equal(err, "field \"id\" is missing, not a string");
}


static void
test_bad_lines(void **state)
{
    (void) state;

    assert_int_equal(parse("not json", &opts), -1);
    assert_non_null(strstr(err, "invalid JSON at column"));

    assert_int_equal(parse("[1,2]", &opts), -1);
    assert_string_equal(err, "line is not a JSON object");

    assert_int_equal(parse("{\"key\":\"a\",\"value\":NaN}", &opts), -1);
    assert_non_null(strstr(err, "invalid JSON"));

    assert_int_equal(parse("{\"key\":\"a\",\"value\":Infinity}", &opts), -1);

    assert_int_equal(parse("{\"key\":\"a\",\"key\":\"b\",\"value\":1}",
                           &opts), -1);
    assert_non_null(strstr(err, "duplicate"));

    assert_int_equal(parse("{\"key\":\"a\"}", &opts), -1);
    assert_string_equal(err, "field \"value\" is missing");

    assert_int_equal(parse("{\"key\":\"a\",\"value\":null}", &opts), -1);
    assert_string_equal(err, "field \"value\" is null");

    assert_int_equal(parse("{\"key\":true,\"value\":1}", &opts), -1);
    assert_string_equal(err, "field \"key\" is of another type, not a "
                        "string");
}


static void
test_bad_keys(void **state)
{
    char  line[1024];

    (void) state;

    assert_int_equal(parse("{\"key\":\"\",\"value\":1}", &opts), -1);
    assert_string_equal(err, "invalid key: key is empty");

    assert_int_equal(parse("{\"key\":\"a\\nb\",\"value\":1}", &opts), -1);
    assert_string_equal(err, "invalid key: key contains a control byte");

    strcpy(line, "{\"key\":\"");
    memset(line + 8, 'k', 512);
    strcpy(line + 520, "\",\"value\":1}");
    assert_int_equal(parse(line, &opts), -1);
    assert_string_equal(err, "invalid key: key is longer than 511 bytes");

    line[519] = '"';
    strcpy(line + 520, ",\"value\":1}");
    assert_int_equal(parse(line, &opts), 0);
    assert_int_equal(key.len, 511);
}


static void
test_required_fields_and_ranges(void **state)
{
    const char          *req[] = { "score" };
    pred_jsonl_range_t   range;
    pred_jsonl_opts_t    o = { "key", "value", req, 1, &range, 1 };

    (void) state;

    assert_int_equal(pred_jsonl_parse_range("score:0:1", &range), 0);
    assert_string_equal(range.field, "score");

    assert_int_equal(parse("{\"key\":\"a\",\"value\":{\"score\":0.5}}", &o),
                     0);
    assert_int_equal(parse("{\"key\":\"a\",\"value\":{\"score\":1}}", &o), 0);

    assert_int_equal(parse("{\"key\":\"a\",\"value\":{\"score\":-0.5}}", &o),
                     -1);
    assert_string_equal(err, "value field \"score\" is -0.5, outside [0, 1] "
                        "(--range)");

    assert_int_equal(parse("{\"key\":\"a\",\"value\":{\"other\":1}}", &o), -1);
    assert_string_equal(err, "value has no field \"score\" "
                        "(--require-field)");

    assert_int_equal(parse("{\"key\":\"a\",\"value\":{\"score\":\"x\"}}", &o),
                     -1);
    assert_string_equal(err, "value field \"score\" is of another type, not "
                        "a number (--range)");

    assert_int_equal(parse("{\"key\":\"a\",\"value\":[1]}", &o), -1);
    assert_string_equal(err, "field \"value\" is not an object, so it has no "
                        "fields to check");

    free((char *) range.field);
}


static void
test_range_specs(void **state)
{
    pred_jsonl_range_t  r;

    (void) state;

    assert_int_equal(pred_jsonl_parse_range("a.b:-1.5:2e3", &r), 0);
    assert_string_equal(r.field, "a.b");
    assert_true(r.min == -1.5 && r.max == 2000);
    free((char *) r.field);

    assert_int_equal(pred_jsonl_parse_range("score:1:0", &r), -1);
    assert_int_equal(pred_jsonl_parse_range("score:0", &r), -1);
    assert_int_equal(pred_jsonl_parse_range(":0:1", &r), -1);
    assert_int_equal(pred_jsonl_parse_range("s:x:1", &r), -1);
    assert_int_equal(pred_jsonl_parse_range("s:0:1x", &r), -1);
}


static int
teardown(void **state)
{
    (void) state;

    pred_buf_free(&key);
    pred_buf_free(&val);

    return 0;
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_bytes_kept_but_compacted),
        cmocka_unit_test(test_scalar_values_and_integer_keys),
        cmocka_unit_test(test_escaped_key_is_decoded),
        cmocka_unit_test(test_member_named_with_escapes),
        cmocka_unit_test(test_custom_field_names),
        cmocka_unit_test(test_bad_lines),
        cmocka_unit_test(test_bad_keys),
        cmocka_unit_test(test_required_fields_and_ranges),
        cmocka_unit_test(test_range_specs),
    };

    return cmocka_run_group_tests_name("jsonl", tests, NULL, teardown);
}
