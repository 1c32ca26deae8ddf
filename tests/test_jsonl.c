/*
 * Unit tests for the loader's JSON Lines parsing and checks (loader/jsonl.c).
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "jsonl.h"


static pred_jsonl_opts_t  opts = { "key", "value", NULL, 0, NULL, 0, 0 };
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
    pred_jsonl_opts_t  o = { "id", "pred", NULL, 0, NULL, 0, 0 };

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
    pred_jsonl_opts_t    o = { "key", "value", req, 1, &range, 1, 0 };

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


/* the fast path takes the common lines, pointing into them */
static void
test_scanner_takes_common_lines(void **state)
{
    const char        *line;
    pred_jsonl_rec_t   r;

    (void) state;

    line = "{\"key\":\"user_1\",\"value\":{\"score\":0.5,\"items\":[1,2],"
           "\"ok\":true,\"no\":false,\"e\":-1.5E+3,\"s\":\"caf\xc3\xa9 "
           "\xe2\x82\xac \xf0\x9f\x98\x80 \\ud83d\\ude00 \\\"\\n\"}}";
    assert_int_equal(pred_jsonl_scan(line, strlen(line), &opts, &r), 0);
    assert_ptr_equal(r.key, line + 8);
    assert_int_equal(r.klen, 6);
    assert_ptr_equal(r.value, line + 24);
    assert_int_equal(r.vlen, strlen(line) - 25);
    assert_int_equal(r.compact, 0);

    /* white space outside strings: the value is compacted */
    line = " {\"key\" : 42 ,\t\"value\" : [ 1 , \" a \" ] } ";
    assert_int_equal(pred_jsonl_scan(line, strlen(line), &opts, &r), 0);
    assert_int_equal(r.klen, 2);
    assert_memory_equal(r.key, "42", 2);
    assert_int_equal(r.compact, 1);
    assert_int_equal(parse(line, &opts), 0);
    assert_value("[1,\" a \"]");

    /* an underflow is 0 to jansson, not an error; nor is a big double */
    line = "{\"key\":\"a\",\"value\":1e-400}";
    assert_int_equal(pred_jsonl_scan(line, strlen(line), &opts, &r), 0);
    line = "{\"key\":\"a\",\"value\":1.5e308}";
    assert_int_equal(pred_jsonl_scan(line, strlen(line), &opts, &r), 0);

    /* 18 digits always fit jansson's long long */
    line = "{\"key\":-123456789012345678,\"value\":1}";
    assert_int_equal(pred_jsonl_scan(line, strlen(line), &opts, &r), 0);
    assert_int_equal(r.klen, 19);
}


typedef struct {
    const char  *line;
    const char  *result;     /* the error, or "=KEY VALUE" */
} line_case_t;


/*
 * Lines the scanner leaves to jansson, with what jansson says: the invalid
 * ones keep their exact message, and the valid ones their key and value.
 */
static void
test_scanner_leaves_the_rest_to_jansson(void **state)
{
    char               line[1024], expect[300];
    size_t             i;
    pred_jsonl_rec_t   r;
    static const line_case_t  cases[] = {
        { "{\"key\":\"a\",\"value\":{\"x\":1,\"x\":2}}",
          "invalid JSON at column 29: duplicate object key near '\"x\"'" },
        { "{\"key\":\"a\",\"value\":\"\\u0000\"}",
          "invalid JSON at column 27: \\u0000 is not allowed without "
          "JSON_ALLOW_NUL near '\"\\u0000\"'" },
        { "{\"key\":\"a\",\"value\":\"\\ud800\"}",
          "invalid JSON at column 27: invalid Unicode '\\uD800' near "
          "'\"\\ud800\"'" },
        { "{\"key\":\"a\",\"value\":\"\\udc00x\"}",
          "invalid JSON at column 28: invalid Unicode '\\uDC00' near "
          "'\"\\udc00x\"'" },
        { "{\"key\":\"a\",\"value\":12345678901234567890}",
          "invalid JSON at column 39: too big integer near "
          "'12345678901234567890'" },
        { "{\"key\":\"a\",\"value\":1e400}",
          "invalid JSON at column 24: real number overflow near '1e400'" },
        { "{\"key\":\"a\",\"value\":[1,]}",
          "invalid JSON at column 23: unexpected token near ']'" },
        { "{\"key\":\"a\",\"value\":1} x",
          "invalid JSON at column 23: end of file expected near 'x'" },
        { "{\"key\":\"a\",\"value\":\"\xc0\x80\"}",
          "invalid JSON at column 20: unable to decode byte 0xc0 near '\"'" },
        { "{\"key\":\"a\",\"value\":\"\xed\xa0\x80\"}",
          "invalid JSON at column 20: unable to decode byte 0xed near '\"'" },
        { "{\"key\":\"a\",\"value\":01}",
          "invalid JSON at column 20: invalid token near '0'" },
        { "{\"key\":\"a\",\"value\":\"\x01\"}",
          "invalid JSON at column 20: control character 0x1 near '\"'" },
        { "{\"key\":\"a\",\"value\":tru}",
          "invalid JSON at column 22: invalid token near 'tru'" },
        { "[{\"key\":\"a\",\"value\":1}]", "line is not a JSON object" },
        { "{\"key\":\"a\",\"value\":null}", "field \"value\" is null" },
        { "{\"key\":\"\",\"value\":1}", "invalid key: key is empty" },
        { "{\"key\":1.5,\"value\":1}",
          "field \"key\" is of another type, not a string" },

        /* valid, but not for the scanner to decide */
        { "{\"key\":-0,\"value\":1}", "=0 1" },
        { "{\"key\":\"a\\u0062\",\"value\":1}", "=ab 1" },
        { "{\"key\":\"a\",\"valu\\u0065\":2}", "=a 2" },
        { "{\"key\":1234567890123456789,\"value\":1}",
          "=1234567890123456789 1" },
    };

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(pred_jsonl_scan(cases[i].line,
                                         strlen(cases[i].line), &opts, &r),
                         -1);

        if (cases[i].result[0] != '=') {
            assert_int_equal(parse(cases[i].line, &opts), -1);
            assert_string_equal(err, cases[i].result);
            continue;
        }

        assert_int_equal(parse(cases[i].line, &opts), 0);
        snprintf(expect, sizeof(expect), "=%.*s %.*s", (int) key.len,
                 key.data, (int) val.len, val.data);
        assert_string_equal(expect, cases[i].result);
    }

    /* jansson once let a NUL byte after a number into the value */
    memcpy(line, "{\"key\":\"a\",\"value\":[0e4\0]}", 25);
    assert_int_equal(pred_jsonl_scan(line, 25, &opts, &r), -1);
    assert_int_equal(pred_jsonl_parse(line, 25, &opts, &key, &val, err,
                                      sizeof(err)), -1);
    assert_string_equal(err, "invalid JSON at column 24: NUL byte");

    /* deeper than the scanner follows, or more members than it holds */
    strcpy(line, "{\"key\":\"a\",\"value\":");
    memset(line + 19, '[', 40);
    memset(line + 59, ']', 40);
    strcpy(line + 99, "}");
    assert_int_equal(pred_jsonl_scan(line, strlen(line), &opts, &r), -1);
    assert_int_equal(parse(line, &opts), 0);
    assert_int_equal(val.len, 80);

    strcpy(line, "{\"key\":\"a\",\"value\":{");
    for (i = 0; i < 70; i++) {
        snprintf(line + strlen(line), 9, "\"m%02d\":1,", (int) i);
    }
    strcpy(line + strlen(line) - 1, "}}");
    assert_int_equal(pred_jsonl_scan(line, strlen(line), &opts, &r), -1);
    assert_int_equal(parse(line, &opts), 0);
}


/* with checks on the value: what passes is the scanner's, the rest not */
static void
test_scanner_checks(void **state)
{
    const char          *req[] = { "score", "m" };
    const char          *line;
    pred_jsonl_rec_t     r;
    pred_jsonl_range_t   range;
    pred_jsonl_opts_t    o = { "key", "value", req, 2, &range, 1, 0 };

    (void) state;

    range.field = "score";
    range.min = 0;
    range.max = 1;

    line = "{\"key\":\"a\",\"value\":{\"m\":null,\"score\":1}}";
    assert_int_equal(pred_jsonl_scan(line, strlen(line), &o, &r), 0);

    line = "{\"key\":\"a\",\"value\":{\"m\":{\"score\":2},\"score\":0.25}}";
    assert_int_equal(pred_jsonl_scan(line, strlen(line), &o, &r), 0);

    line = "{\"key\":\"a\",\"value\":{\"m\":1,\"score\":1.0000001}}";
    assert_int_equal(pred_jsonl_scan(line, strlen(line), &o, &r), -1);
    assert_int_equal(parse(line, &o), -1);
    assert_string_equal(err, "value field \"score\" is 1, outside [0, 1] "
                        "(--range)");

    line = "{\"key\":\"a\",\"value\":{\"score\":0}}";
    assert_int_equal(pred_jsonl_scan(line, strlen(line), &o, &r), -1);
    assert_int_equal(parse(line, &o), -1);
    assert_string_equal(err, "value has no field \"m\" (--require-field)");

    /* the nested "score" is not the value's */
    line = "{\"key\":\"a\",\"value\":{\"m\":{\"score\":1}}}";
    assert_int_equal(pred_jsonl_scan(line, strlen(line), &o, &r), -1);
    assert_int_equal(parse(line, &o), -1);
    assert_string_equal(err, "value has no field \"score\" "
                        "(--require-field)");

    line = "{\"key\":\"a\",\"value\":[{\"m\":1,\"score\":1}]}";
    assert_int_equal(pred_jsonl_scan(line, strlen(line), &o, &r), -1);
    assert_int_equal(parse(line, &o), -1);
    assert_string_equal(err, "field \"value\" is not an object, so it has "
                        "no fields to check");
}


static int
teardown(void **state)
{
    (void) state;

    pred_buf_free(&key);
    pred_buf_free(&val);

    return 0;
}


/* a delta's input: {"key":K,"delete":true} is a deletion, an empty value */
static void
test_deletions(void **state)
{
    pred_jsonl_opts_t  o = { "key", "value", NULL, 0, NULL, 0, 1 };

    (void) state;

    assert_int_equal(parse("{\"key\": \"a\", \"delete\": true}", &o), 0);
    assert_memory_equal(key.data, "a", 1);
    assert_int_equal(val.len, 0);

    /* a value that mentions "delete" is still a value */
    assert_int_equal(parse("{\"key\":\"a\",\"value\":{\"delete\":true}}",
                           &o), 0);
    assert_value("{\"delete\":true}");

    assert_int_equal(parse("{\"key\":\"a\",\"value\":1,\"delete\":true}",
                           &o), -1);
    assert_string_equal(err, "a line has \"value\" or \"delete\", not both");

    assert_int_equal(parse("{\"key\":\"a\",\"delete\":1}", &o), -1);
    assert_string_equal(err, "field \"delete\" is not true");

    assert_int_equal(parse("{\"delete\":true}", &o), -1);
    assert_string_equal(err, "field \"key\" is missing, not a string");

    /* not in a base's input */
    assert_int_equal(parse("{\"key\":\"a\",\"delete\":true}", &opts), -1);
    assert_string_equal(err, "field \"value\" is missing (deletions are for "
                        "a delta: build --delta-of VERSION)");
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
        cmocka_unit_test(test_scanner_takes_common_lines),
        cmocka_unit_test(test_scanner_leaves_the_rest_to_jansson),
        cmocka_unit_test(test_scanner_checks),
        cmocka_unit_test(test_deletions),
    };

    return cmocka_run_group_tests_name("jsonl", tests, NULL, teardown);
}
