/*
 * Unit tests for shaping a list (snapshot/pred_filter.c) and the one-pass
 * object scanner it reads items with (pred_json_object).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pred_json.h"
#include "pred_filter.h"


static const pred_span_t  arg_names[PRED_FILTER_NARGS] = {
    { "where", 5 }, { "exclude", 7 }, { "fields", 6 }, { "limit", 5 },
    { "min_score", 9 }
};

static const pred_filter_names_t  names = {
    { "items", 5 }, { "id", 2 }, { "score", 5 }
};


/*
 * Shapes value by the query string; returns what pred_filter_shape
 * returned, the result in a static buffer (NUL-terminated) in *out.  The
 * value is copied to a buffer of its exact size, so that a read past its
 * end is caught by ASan and valgrind.
 */
static int
shape(const char *query, const char *value, const char **out)
{
    int                  rc, bad;
    char                *v, *o, buf[512];
    size_t               len, n;
    const char          *reason;
    pred_filter_args_t   a;
    static char          result[8192];

    assert_int_equal(pred_filter_parse(query, strlen(query), arg_names, buf,
                                       &a, &bad, &reason), 0);

    len = strlen(value);
    v = malloc(len ? len : 1);
    o = malloc(len ? len : 1);
    assert_non_null(v);
    assert_non_null(o);
    memcpy(v, value, len);

    rc = pred_filter_shape(v, len, &names, &a, o, &n);

    if (rc == 0) {
        assert_true(n <= len);
        assert_true(n < sizeof(result));
        memcpy(result, o, n);
        result[n] = '\0';
    }

    *out = result;

    free(v);
    free(o);

    return rc;
}


static void
assert_shaped(const char *query, const char *value, const char *expected)
{
    const char  *out;

    assert_int_equal(shape(query, value, &out), 0);
    assert_string_equal(out, expected);
}


static void
assert_unshaped(const char *query, const char *value)
{
    const char  *out;

    assert_int_equal(shape(query, value, &out), -1);
}


/* a fixed sequence: the same cases every run */
static unsigned int
next_rand(uint32_t *seed, unsigned int mod)
{
    *seed = *seed * 1103515245 + 12345;

    return (*seed >> 16) % mod;
}


static const char  *list =
    "{\"v\":1,\"items\":["
    "{\"id\":\"a\",\"score\":0.9,\"category\":\"c1\"},"
    "{\"id\":\"b\",\"score\":0.2,\"category\":\"c3\"},"
    "{\"id\":\"c\",\"score\":0.19,\"category\":\"c3\"},"
    "{\"id\":\"d\",\"score\":0.5,\"category\":\"c3\",\"x\":[1,{\"y\":\"}\"}]},"
    "{\"id\":\"e\",\"category\":\"c3\"},"
    "{\"id\":\"f\",\"score\":1e-1,\"category\":\"c3\"}"
    "],\"model\":\"m\"}";


static void
test_shape_conditions(void **state)
{
    (void) state;

    assert_shaped("where=category:c3&min_score=0.2", list,
        "{\"v\":1,\"items\":["
        "{\"id\":\"b\",\"score\":0.2,\"category\":\"c3\"},"
        "{\"id\":\"d\",\"score\":0.5,\"category\":\"c3\","
        "\"x\":[1,{\"y\":\"}\"}]}"
        "],\"model\":\"m\"}");

    assert_shaped("exclude=a,d&limit=2&fields=id", list,
        "{\"v\":1,\"items\":[{\"id\":\"b\"},{\"id\":\"c\"}],\"model\":\"m\"}");

    /* fields in the order asked, absent ones left out; 1e-1 is 0.1 */
    assert_shaped("fields=score,id&where=category:c3&min_score=0.1", list,
        "{\"v\":1,\"items\":[{\"score\":0.2,\"id\":\"b\"},"
        "{\"score\":0.19,\"id\":\"c\"},{\"score\":0.5,\"id\":\"d\"},"
        "{\"score\":1e-1,\"id\":\"f\"}],\"model\":\"m\"}");

    assert_shaped("limit=0", list, "{\"v\":1,\"items\":[],\"model\":\"m\"}");
    assert_shaped("where=category:nope", "{\"items\":[]}", "{\"items\":[]}");

    /* the id both excluded by and projected: read once, used twice */
    assert_shaped("exclude=b&fields=id,category&where=id:c", list,
        "{\"v\":1,\"items\":[{\"id\":\"c\",\"category\":\"c3\"}],"
        "\"model\":\"m\"}");

    /* non-string values compare by their JSON text */
    assert_shaped("where=score:0.5&fields=id", list,
        "{\"v\":1,\"items\":[{\"id\":\"d\"}],\"model\":\"m\"}");
}


static void
test_shape_white_space_and_escapes(void **state)
{
    (void) state;

    /* white space between items goes, inside a kept item it stays */
    assert_shaped("min_score=0.5",
        " { \"items\" : [ { \"id\" : \"a\" , \"score\" : 0.9 } ,\n"
        "\t{\"id\":\"b\",\"score\":0.1} ] , \"n\" : 2 } ",
        " { \"items\" : [{ \"id\" : \"a\" , \"score\" : 0.9 }] , \"n\" : 2 } ");

    /* an escaped member name is its decoded name; a value compares as
       written, escapes and all */
    assert_shaped("where=category:c\\u0033&fields=id",
        "{\"items\":[{\"id\":\"a\",\"c\\u0061tegory\":\"c\\u0033\"},"
        "{\"id\":\"b\",\"category\":\"c3\"}]}",
        "{\"items\":[{\"id\":\"a\"}]}");

    /* a long string with escaped quotes and backslashes across 16-byte
       blocks, and an escaped list name */
    assert_shaped("exclude=x&fields=id,note",
        "{\"it\\u0065ms\":[{\"note\":\"0123456789abcd\\\"ef\\\\\\\\\\\"},{]\","
        "\"id\":\"y\"},{\"id\":\"x\",\"note\":\"\\\\\"}]}",
        "{\"it\\u0065ms\":[{\"id\":\"y\",\"note\":\"0123456789abcd\\\"ef"
        "\\\\\\\\\\\"},{]\"}]}");

    /* UTF-8 in strings passes through */
    assert_shaped("where=category:caf\xc3\xa9",
        "{\"items\":[{\"category\":\"caf\xc3\xa9\"},{\"category\":\"cafe\"}]}",
        "{\"items\":[{\"category\":\"caf\xc3\xa9\"}]}");
}


static void
test_shape_min_score(void **state)
{
    (void) state;

    /* exactly at the bound is kept, by the decimal fast path and by strtod
       (an exponent); 0.19999999999999999 is the double below 0.2 */
    assert_shaped("min_score=0.2&fields=id",
        "{\"items\":[{\"id\":1,\"score\":0.2},{\"id\":2,\"score\":0.1999},"
        "{\"id\":3,\"score\":0.19999999999999999},{\"id\":4,\"score\":2e-1},"
        "{\"id\":5,\"score\":-0.3},{\"id\":6,\"score\":\"0.9\"},"
        "{\"id\":7,\"score\":[1]},{\"id\":8},{\"id\":9,\"score\":0.20000}]}",
        "{\"items\":[{\"id\":1},{\"id\":4},{\"id\":9}]}");

    /* literals read as 0, as strtod reads them */
    assert_shaped("min_score=-1&fields=id",
        "{\"items\":[{\"id\":1,\"score\":null},{\"id\":2,\"score\":-1.5},"
        "{\"id\":3,\"score\":-1}]}",
        "{\"items\":[{\"id\":1},{\"id\":3}]}");

    assert_shaped("min_score=-inf&fields=id",
        "{\"items\":[{\"id\":1,\"score\":-123456789012345678901234567890}]}",
        "{\"items\":[{\"id\":1}]}");
}


/* decimals of up to 15 digits: the fast path reads what strtod reads */
static void
test_shape_min_score_decimals(void **state)
{
    int           i, d, k;
    char          query[64], value[128], digits[16];
    uint32_t      seed;
    const char   *out;

    (void) state;

    seed = 7;

    for (i = 0; i < 3000; i++) {
        /* n digits, one of them before the point */
        d = 1 + next_rand(&seed, 15);

        for (k = 0; k < d; k++) {
            digits[k] = '0' + next_rand(&seed, 10);
        }

        digits[d - 1] = '1' + next_rand(&seed, 9);
        digits[d] = '\0';

        sprintf(query, "min_score=%c.%s&fields=id", digits[0], digits + 1);

        /* the same decimal is kept; one a unit in its last place below
           (a different double at 15 digits) is not */
        sprintf(value, "{\"items\":[{\"id\":1,\"score\":%c%s%s},",
                digits[0], d > 1 ? "." : "", digits + 1);
        digits[d - 1]--;
        sprintf(value + strlen(value), "{\"id\":2,\"score\":%c%s%s}]}",
                digits[0], d > 1 ? "." : "", digits + 1);

        assert_int_equal(shape(query, value, &out), 0);
        assert_string_equal(out, "{\"items\":[{\"id\":1}]}");
    }
}


static void
test_shape_other_shapes(void **state)
{
    (void) state;

    /* not an object, no list, not an array, not all objects */
    assert_unshaped("limit=1", "[1,2]");
    assert_unshaped("limit=1", "{\"other\":[{}]}");
    assert_unshaped("limit=1", "{\"items\":{\"id\":1}}");
    assert_unshaped("limit=1", "{\"items\":[{\"id\":1},2]}");
    assert_unshaped("limit=1", "{\"items\":[{\"id\":1},{\"id\":2},[3]]}");
    assert_unshaped("limit=1", "\"items\"");

    /* not valid JSON either: items not separated by commas would have
       more commas out than in */
    assert_unshaped("where=id:1", "{\"items\":[{\"id\":1}{\"id\":1}]}");
    assert_unshaped("limit=1", "{\"items\":[{\"id\":1},{\"id\":2,}]}");
}


static void
test_shape_cut_short(void **state)
{
    size_t       i, len;
    char         text[1024];
    const char  *out;

    (void) state;

    /* every prefix of a list: never read past its end; it shapes once it
       has the list's "]" (what follows is copied as it is) */
    len = strlen(list);

    for (i = 0; i < len; i++) {
        memcpy(text, list, i);
        text[i] = '\0';

        assert_int_equal(shape("where=category:c3", text, &out) == 0,
                         i > (size_t) (strstr(list, "],\"model\"") - list));
    }
}


/* the scanner against the one it replaces, on awkward objects */

static void
check_object(const char *text)
{
    char              *copy;
    size_t             i, len;
    const char        *end, *e, *s1[5], *e1[5], *s2[5], *e2[5];
    pred_json_name_t   want[5] = {
        { "id", 2 }, { "score", 5 }, { "a\"b", 3 }, { "", 0 }, { "x", 1 }
    };

    len = strlen(text);
    copy = malloc(len);
    assert_non_null(copy);
    memcpy(copy, text, len);
    end = copy + len;

    e = pred_json_object(copy, end, want, 5, s1, e1);
    assert_non_null(e);
    assert_ptr_equal(e, pred_json_skip_value(pred_json_skip_ws(copy, end),
                                             end));

    assert_int_equal(pred_json_members(copy, end, want, 5, s2, e2), 0);

    for (i = 0; i < 5; i++) {
        assert_ptr_equal(s1[i], s2[i]);

        if (s1[i] != NULL) {
            assert_ptr_equal(e1[i], e2[i]);
        }
    }

    /* cut anywhere inside, it is not an object */
    for (i = 0; i < (size_t) (e - copy); i++) {
        assert_null(pred_json_object(copy, copy + i, want, 5, s1, e1));
    }

    free(copy);
}


static void
test_object_scanner(void **state)
{
    (void) state;

    check_object("{}");
    check_object(" { } ");
    check_object("{\"id\":1}");
    check_object("{\"x\":\"0123456789abcdef0123456789\",\"id\":2}");
    check_object("{\"x\":\"0123456789abcde\\\"\",\"id\":\"\\\\\"}");
    check_object("{\"x\":\"\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\\",\"id\":3}");
    check_object("{\"a\\\"b\":1,\"\":2,\"i\\u0064\":3,\"id\":4}");
    check_object("{ \"score\" :\t-1.5e+3 ,\n\"x\" : [ {\"id\":[]}, \"]\" ] }");
    check_object("{\"x\":{\"y\":{\"z\":\"}}}\"}},\"score\":true,\"id\":null}");
    check_object("{\"x\":\"caf\xc3\xa9 \xe2\x82\xac\","
                 "\"id\":\"\xf0\x9f\x98\x80\"}");
}


static void
test_object_scanner_generated(void **state)
{
    int          m, k, n, c;
    char         text[1024], *p;
    uint32_t     seed;
    const char  *sp1, *sp2, *sp3, *key;
    const char  *pieces[] = {
        "\\\"", "\\\\", "\\u0041", "}", "{", "]", ",", ":", "\xc3\xa9",
        " ", "abcdefghijklmnop", "q"
    };
    const char  *keys[] = { "id", "score", "x", "a\\\"b", "", "i\\u0064" };

    (void) state;

    seed = 12345;

    for (n = 0; n < 2000; n++) {
        p = text;
        *p++ = '{';
        m = next_rand(&seed, 5);

        for (k = 0; k < m; k++) {
            sp1 = next_rand(&seed, 4) ? "" : " ";
            key = keys[next_rand(&seed, 6)];
            sp2 = next_rand(&seed, 4) ? "" : " ";
            sp3 = next_rand(&seed, 4) ? "" : "\n";
            p += sprintf(p, "%s%s\"%s\"%s:%s", k ? "," : "", sp1, key, sp2,
                         sp3);

            switch (next_rand(&seed, 4)) {

            case 0:
                c = next_rand(&seed, 1000);
                p += sprintf(p, "%d.%u", c, next_rand(&seed, 100));
                break;

            case 1:
                p += sprintf(p, "[\"]\",{\"id\":%u}]", next_rand(&seed, 10));
                break;

            default:
                *p++ = '"';

                for (c = next_rand(&seed, 8); c > 0; c--) {
                    p += sprintf(p, "%s", pieces[next_rand(&seed, 12)]);
                }

                *p++ = '"';
            }
        }

        *p++ = '}';
        *p = '\0';

        check_object(text);
    }
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_conditions),
        cmocka_unit_test(test_shape_white_space_and_escapes),
        cmocka_unit_test(test_shape_min_score),
        cmocka_unit_test(test_shape_min_score_decimals),
        cmocka_unit_test(test_shape_other_shapes),
        cmocka_unit_test(test_shape_cut_short),
        cmocka_unit_test(test_object_scanner),
        cmocka_unit_test(test_object_scanner_generated),
    };

    return cmocka_run_group_tests_name("pred_filter", tests, NULL, NULL);
}
