/*
 * Unit tests for conditions on a JSON value, "POINTER:OP:VALUE"
 * (snapshot/pred_cond.c), as pred_cascade's exit_if= uses them.
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
#include "pred_cond.h"


#define ERR_OP       "needs POINTER:OP:VALUE with OP one of <, <=, >, >=, " \
                     "==, !="
#define ERR_POINTER  "the pointer must be empty or start with \"/\""
#define ERR_EMPTY    "the value is empty"
#define ERR_STRING   "only == and != compare a value that is not a number " \
                     "(a number is written as JSON writes it: 0.9, not .9)"
#define ERR_LONG     "the number is too long"

/* for numbers of 64 characters, the longest read, and of 65 */
#define ZEROS_10  "0000000000"
#define ZEROS_60  ZEROS_10 ZEROS_10 ZEROS_10 ZEROS_10 ZEROS_10 ZEROS_10

#define NUMBER   PRED_COND_NUMBER
#define STRING   PRED_COND_STRING
#define LITERAL  PRED_COND_LITERAL


/* in pred_cond_op_t's order, for the tables below */
static const char  *ops[] = { "<", "<=", ">", ">=", "==", "!=" };


/*
 * Parses cond from a copy of its exact size, without a terminator, so that
 * a read past its end is caught by ASan and valgrind.  The copy, which c
 * points into, is left in *buf for the caller to free.
 */
static int
parse(const char *cond, pred_cond_t *c, const char **err, char **buf)
{
    size_t  len;

    len = strlen(cond);
    *buf = malloc(len ? len : 1);
    assert_non_null(*buf);
    memcpy(*buf, cond, len);

    *err = NULL;

    return pred_cond_parse(*buf, len, c, err);
}


/* number is checked for a NUMBER only */
static void
assert_parsed(const char *cond, const char *pointer, pred_cond_op_t op,
    pred_cond_kind_t kind, const char *text, double number)
{
    char         *buf;
    size_t        len;
    const char   *err;
    pred_cond_t   c;

    if (parse(cond, &c, &err, &buf) != 0) {
        print_error("\"%s\": %s\n", cond, err);
        fail();
    }

    len = strlen(cond);

    /* the pointer and the constant point into the parsed text */
    assert_ptr_equal(c.pointer, buf);
    assert_int_equal(c.pointer_len, strlen(pointer));
    assert_memory_equal(c.pointer, pointer, c.pointer_len);
    assert_int_equal(c.op, op);
    assert_int_equal(c.kind, kind);
    assert_int_equal(c.text_len, strlen(text));
    /* at the end, or just inside a closing quote */
    assert_true(c.text == buf + len - c.text_len
                || (c.text == buf + len - 1 - c.text_len
                    && buf[len - 1] == '"'));
    assert_memory_equal(c.text, text, c.text_len);

    if (kind == PRED_COND_NUMBER && c.number != number) {
        print_error("\"%s\": %.17g, not %.17g\n", cond, c.number, number);
        fail();
    }

    free(buf);
}


static void
assert_parse_error(const char *cond, const char *expected)
{
    int           rc;
    char         *buf;
    const char   *err;
    pred_cond_t   c;

    rc = parse(cond, &c, &err, &buf);

    if (rc != -1) {
        print_error("\"%s\": parsed, expected \"%s\"\n", cond, expected);
    }

    assert_int_equal(rc, -1);
    assert_non_null(err);
    assert_string_equal(err, expected);

    free(buf);
}


/*
 * Evaluates cond on json, both copied to buffers of their exact sizes.
 * The JSON is validated first, as the cascade does before it evaluates.
 */
static int
eval(const char *cond, const char *json)
{
    int           rc;
    char         *buf, *v;
    size_t        len, where;
    const char   *err;
    pred_cond_t   c;

    if (parse(cond, &c, &err, &buf) != 0) {
        print_error("\"%s\": %s\n", cond, err);
        fail();
    }

    len = strlen(json);
    v = malloc(len ? len : 1);
    assert_non_null(v);
    memcpy(v, json, len);

    assert_int_equal(pred_json_validate(v, len, &where), 0);

    rc = pred_cond_eval(&c, v, len);

    free(v);
    free(buf);

    return rc;
}


static void
assert_eval(const char *cond, const char *json, int expected)
{
    int  rc;

    rc = eval(cond, json);

    if (rc != expected) {
        print_error("\"%s\" on %s: %d, expected %d\n", cond, json, rc,
                    expected);
    }

    assert_int_equal(rc, expected);
}


/* cond with each operator in turn, "%s" standing for it */
static void
assert_eval_ops(const char *cond, const char *json, const char *expected)
{
    int   k;
    char  buf[256];

    for (k = 0; k < 6; k++) {
        assert_true(strlen(cond) + 2 < sizeof(buf));
        snprintf(buf, sizeof(buf), cond, ops[k]);
        assert_eval(buf, json, expected[k] - '0');
    }
}


static void
test_parse_numbers(void **state)
{
    (void) state;

    assert_parsed("/confidence:>=:0.9", "/confidence", PRED_COND_GE, NUMBER,
                  "0.9", 0.9);
    assert_parsed("/a:<:1", "/a", PRED_COND_LT, NUMBER, "1", 1);
    assert_parsed("/a:<=:-2", "/a", PRED_COND_LE, NUMBER, "-2", -2);
    assert_parsed("/a:>:0.25", "/a", PRED_COND_GT, NUMBER, "0.25", 0.25);
    assert_parsed("/a:==:1e3", "/a", PRED_COND_EQ, NUMBER, "1e3", 1000);
    assert_parsed("/a:!=:-1.5E-2", "/a", PRED_COND_NE, NUMBER, "-1.5E-2",
                  -0.015);
    assert_parsed("/a:>=:2e+2", "/a", PRED_COND_GE, NUMBER, "2e+2", 200);
    assert_parsed("/a:<:0", "/a", PRED_COND_LT, NUMBER, "0", 0);
    assert_parsed("/a:>:-0.0", "/a", PRED_COND_GT, NUMBER, "-0.0", 0);
    assert_parsed("/a:<=:123456789", "/a", PRED_COND_LE, NUMBER, "123456789",
                  123456789);

    /* the longest number read: 64 characters */
    assert_parsed("/a:<:1000" ZEROS_60, "/a", PRED_COND_LT, NUMBER,
                  "1000" ZEROS_60, 1e63);
    assert_parsed("/a:==:-1." ZEROS_60 "1", "/a", PRED_COND_EQ, NUMBER,
                  "-1." ZEROS_60 "1", -1);
}


static void
test_parse_strings_and_literals(void **state)
{
    (void) state;

    assert_parsed("/decision:==:block", "/decision", PRED_COND_EQ, STRING,
                  "block", 0);
    assert_parsed("/d:!=:allow", "/d", PRED_COND_NE, STRING, "allow", 0);
    assert_parsed("/final:==:true", "/final", PRED_COND_EQ, LITERAL, "true",
                  0);
    assert_parsed("/f:!=:false", "/f", PRED_COND_NE, LITERAL, "false", 0);
    assert_parsed("/f:==:null", "/f", PRED_COND_EQ, LITERAL, "null", 0);

    /* literals are lower case and whole */
    assert_parsed("/f:==:True", "/f", PRED_COND_EQ, STRING, "True", 0);
    assert_parsed("/f:==:nulls", "/f", PRED_COND_EQ, STRING, "nulls", 0);
    assert_parsed("/f:==:tru", "/f", PRED_COND_EQ, STRING, "tru", 0);

    /* what JSON does not read as a number is a string */
    assert_parsed("/a:==:01", "/a", PRED_COND_EQ, STRING, "01", 0);
    assert_parsed("/a:==:+1", "/a", PRED_COND_EQ, STRING, "+1", 0);
    assert_parsed("/a:==:.5", "/a", PRED_COND_EQ, STRING, ".5", 0);
    assert_parsed("/a:==:1.", "/a", PRED_COND_EQ, STRING, "1.", 0);
    assert_parsed("/a:!=:1e", "/a", PRED_COND_NE, STRING, "1e", 0);
    assert_parsed("/a:==:-", "/a", PRED_COND_EQ, STRING, "-", 0);
    assert_parsed("/a:==:0x10", "/a", PRED_COND_EQ, STRING, "0x10", 0);
    assert_parsed("/a:==:NaN", "/a", PRED_COND_EQ, STRING, "NaN", 0);

    /* nothing is trimmed; a value in quotes is the text inside them */
    assert_parsed("/a:==: 1", "/a", PRED_COND_EQ, STRING, " 1", 0);
    assert_parsed("/a:==:1 ", "/a", PRED_COND_EQ, STRING, "1 ", 0);
    assert_parsed("/a:==:\"x\"", "/a", PRED_COND_EQ, STRING, "x", 0);
    assert_parsed("/a:==:\"0.9\"", "/a", PRED_COND_EQ, STRING, "0.9", 0);
    assert_parsed("/a:!=:\"true\"", "/a", PRED_COND_NE, STRING, "true", 0);
    assert_parsed("/a:==:\"\"", "/a", PRED_COND_EQ, STRING, "", 0);
    assert_parsed("/a:==:\"", "/a", PRED_COND_EQ, STRING, "\"", 0);
    assert_parsed("/a:==:\"x", "/a", PRED_COND_EQ, STRING, "\"x", 0);

    /* VALUE may hold ':' and even another ":OP:" */
    assert_parsed("/d:==:a:b", "/d", PRED_COND_EQ, STRING, "a:b", 0);
    assert_parsed("/t:==:12:30", "/t", PRED_COND_EQ, STRING, "12:30", 0);
    assert_parsed("/a:==:b:!=:c", "/a", PRED_COND_EQ, STRING, "b:!=:c", 0);
    assert_parsed("/a:!=::", "/a", PRED_COND_NE, STRING, ":", 0);
    assert_parsed("/a:==:=", "/a", PRED_COND_EQ, STRING, "=", 0);
}


static void
test_parse_pointers(void **state)
{
    (void) state;

    /* empty: the whole value */
    assert_parsed(":>=:0.5", "", PRED_COND_GE, NUMBER, "0.5", 0.5);
    assert_parsed(":==:x", "", PRED_COND_EQ, STRING, "x", 0);

    assert_parsed("/:==:3", "/", PRED_COND_EQ, NUMBER, "3", 3);
    assert_parsed("/a/b/0:==:x", "/a/b/0", PRED_COND_EQ, STRING, "x", 0);

    /* escapes are kept as written, for pred_json_pointer to decode */
    assert_parsed("/a~1b/~0c:==:true", "/a~1b/~0c", PRED_COND_EQ, LITERAL,
                  "true", 0);

    /* the pointer ends at the first ":OP:", not at the first ':' */
    assert_parsed("/a:b:>=:1", "/a:b", PRED_COND_GE, NUMBER, "1", 1);
    assert_parsed("/a:=:b:==:2", "/a:=:b", PRED_COND_EQ, NUMBER, "2", 2);
    assert_parsed("/a::<:2", "/a:", PRED_COND_LT, NUMBER, "2", 2);
    assert_parsed("/a:=>:1:<:2", "/a:=>:1", PRED_COND_LT, NUMBER, "2", 2);

    /* ">=" is not ">" with a value "=..." */
    assert_parsed("/a:>=:5", "/a", PRED_COND_GE, NUMBER, "5", 5);
    assert_parsed("/a:<=:5", "/a", PRED_COND_LE, NUMBER, "5", 5);

}


static void
test_parse_errors(void **state)
{
    (void) state;

    assert_parse_error("", ERR_OP);
    assert_parse_error("/confidence", ERR_OP);
    assert_parse_error("/confidence>=0.9", ERR_OP);
    assert_parse_error("/confidence:>=0.9", ERR_OP);
    assert_parse_error("/confidence>=:0.9", ERR_OP);
    assert_parse_error(">=:0.9", ERR_OP);
    assert_parse_error("/c:>=", ERR_OP);
    assert_parse_error("/c:=:1", ERR_OP);
    assert_parse_error("/c:=>:1", ERR_OP);
    assert_parse_error("/c:<>:1", ERR_OP);
    assert_parse_error("/c:===:1", ERR_OP);
    assert_parse_error("/c:!:1", ERR_OP);
    assert_parse_error("/c: >=:1", ERR_OP);
    assert_parse_error("/c:>= :1", ERR_OP);
    assert_parse_error(":", ERR_OP);
    assert_parse_error("::", ERR_OP);

    assert_parse_error("confidence:>=:0.9", ERR_POINTER);
    assert_parse_error("c:==:x", ERR_POINTER);
    assert_parse_error(" /c:==:x", ERR_POINTER);
    assert_parse_error("~0:==:x", ERR_POINTER);

    /* the pointer is checked before the value */
    assert_parse_error("c:<:", ERR_POINTER);

    assert_parse_error("/c:>=:", ERR_EMPTY);
    assert_parse_error("/c:!=:", ERR_EMPTY);
    assert_parse_error(":==:", ERR_EMPTY);

    assert_parse_error("/c:<:abc", ERR_STRING);
    assert_parse_error("/c:<=:true", ERR_STRING);
    assert_parse_error("/c:>:null", ERR_STRING);
    assert_parse_error("/c:>=:false", ERR_STRING);
    assert_parse_error("/c:>=:01", ERR_STRING);
    assert_parse_error("/c:<:.5", ERR_STRING);
    assert_parse_error("/c:<:1.", ERR_STRING);
    assert_parse_error("/c:>:+1", ERR_STRING);
    assert_parse_error("/c:>: 1", ERR_STRING);
    assert_parse_error("/c:>=:\"0.9\"", ERR_STRING);
    assert_parse_error("/c:<:-", ERR_STRING);
    assert_parse_error("/c:>:Infinity", ERR_STRING);

    /* ":>:" comes first: ">" with "==:5", not "/c:>" "==" "5" */
    assert_parse_error("/c:>:==:5", ERR_STRING);

    /* the first ":OP:" is the operator: not "/c:>=:1" "<" "0" */
    assert_parse_error("/c:>=:1:<:0", ERR_STRING);

    /* 65 characters, whatever the operator */
    assert_parse_error("/c:<:10000" ZEROS_60, ERR_LONG);
    assert_parse_error("/c:==:0.0" ZEROS_60 "01", ERR_LONG);
    assert_parse_error("/c:!=:-1." ZEROS_60 "e5", ERR_LONG);
}


/* every prefix of a condition: the length is what counts, not a NUL */
static void
test_parse_cut_short(void **state)
{
    size_t        i, len;
    char          prefix[32];
    const char   *cond = "/confidence:>=:0.9";

    (void) state;

    len = strlen(cond);
    assert_int_equal(len, 18);

    for (i = 0; i <= len; i++) {
        memcpy(prefix, cond, i);
        prefix[i] = '\0';

        if (i < 15) {
            assert_parse_error(prefix, ERR_OP);

        } else if (i == 15) {
            assert_parse_error(prefix, ERR_EMPTY);

        } else if (i == 17) {
            assert_parse_error(prefix, ERR_STRING);     /* "0." */

        } else {
            assert_parsed(prefix, "/confidence", PRED_COND_GE, NUMBER,
                          i == 16 ? "0" : "0.9", i == 16 ? 0 : 0.9);
        }
    }
}


/* each case against <, <=, >, >=, ==, != in turn */
static void
test_eval_numbers(void **state)
{
    size_t  i;
    char    cond[128], json[128];
    static const struct {
        const char  *constant;
        const char  *value;
        const char  *expected;
    } cases[] = {
        { "0.9", "0.89", "110001" },
        { "0.9", "0.9", "010110" },
        { "0.9", "0.91", "001101" },

        /* the same double written otherwise is equal */
        { "0.9", "0.90", "010110" },
        { "0.9", "9e-1", "010110" },
        { "0.9", "90E-2", "010110" },
        { "0.9", "0.90000000000000001", "010110" },

        /* the doubles either side of 0.9 are not */
        { "0.9", "0.8999999999999999", "110001" },
        { "0.9", "0.9000000000000001", "001101" },

        { "-1", "-2", "110001" },
        { "-1", "-1", "010110" },
        { "-1", "-1.0", "010110" },
        { "-1", "0", "001101" },
        { "3", "2", "110001" },
        { "3", "3.0", "010110" },
        { "3", "30e-1", "010110" },
        { "3", "4", "001101" },
        { "1e2", "100", "010110" },
        { "1E+2", "99.5", "110001" },
        { "2.5e-3", "0.0025", "010110" },
        { "2.5e-3", "0.0026", "001101" },
        { "0", "-0", "010110" },
        { "-0", "0.0", "010110" },
        { "0", "-1e-300", "110001" },
        { "-1e-300", "0", "001101" }
    };

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(cond, sizeof(cond), "/c:%%s:%s", cases[i].constant);
        snprintf(json, sizeof(json), "{\"c\":%s}", cases[i].value);

        assert_eval_ops(cond, json, cases[i].expected);
    }

    /* white space around the value, and a value that ends the text */
    assert_eval_ops("/c:%s:0.9", " { \"c\" :\t0.9\n, \"d\" : 1 } ", "010110");
    assert_eval_ops("/c:%s:0.9", "{\"d\":1,\"c\":0.95}", "001101");
    assert_eval_ops(":%s:0.9", "0.9", "010110");

    /* a number in 64 characters compares, one of 65 is not read */
    assert_eval_ops("/c:%s:0.9", "{\"c\":0.9" ZEROS_60 "0}", "010110");
    assert_eval_ops("/c:%s:0.9", "{\"c\":0.9" ZEROS_60 "00}", "000000");
}


/* a value the pointer does not name satisfies no operator, not even != */
static void
test_eval_missing(void **state)
{
    (void) state;

    /* the controls first: present, the same conditions hold */
    assert_eval_ops("/c:%s:1", "{\"c\":0.9}", "110001");
    assert_eval_ops("/c/1:%s:2", "{\"c\":[1,2,3]}", "010110");

    assert_eval_ops("/d:%s:1", "{\"c\":0.9}", "000000");
    assert_eval_ops("/C:%s:1", "{\"c\":0.9}", "000000");
    assert_eval_ops("/c/0:%s:1", "{\"c\":0.9}", "000000");
    assert_eval_ops("/c/x:%s:1", "{\"c\":{\"y\":1}}", "000000");
    assert_eval_ops("/c/3:%s:1", "{\"c\":[1,2,3]}", "000000");
    assert_eval_ops("/c/01:%s:2", "{\"c\":[1,2,3]}", "000000");
    assert_eval_ops("/c/-:%s:1", "{\"c\":[1,2,3]}", "000000");
    assert_eval_ops("/c/0:%s:1", "{\"c\":[]}", "000000");
    assert_eval_ops("/0:%s:1", "{\"c\":[1]}", "000000");
    assert_eval_ops("/c:%s:1", "{}", "000000");
    assert_eval_ops("/c:%s:1", "[]", "000000");
    assert_eval_ops("/c:%s:1", "1", "000000");

    /* "~2" is no escape: the pointer names nothing */
    assert_eval_ops("/c~2:%s:1", "{\"c~2\":0.9}", "000000");

    /* quoted: text, whatever it looks like */
    assert_eval("/c:==:\"0.9\"", "{\"c\":\"0.9\"}", 1);
    assert_eval("/c:==:\"0.9\"", "{\"c\":0.9}", 0);
    assert_eval("/c:!=:\"0.9\"", "{\"c\":0.9}", 0);
    assert_eval("/c:==:\"true\"", "{\"c\":\"true\"}", 1);
    assert_eval("/c:==:\"true\"", "{\"c\":true}", 0);
    assert_eval("/c:==:\"allow\"", "{\"c\":\"allow\"}", 1);
    assert_eval("/c:!=:\"allow\"", "{\"c\":\"deny\"}", 1);
    assert_eval("/c:==:\"\"", "{\"c\":\"\"}", 1);

    assert_eval("/d:!=:x", "{\"c\":\"x\"}", 0);
    assert_eval("/d:==:x", "{\"c\":\"x\"}", 0);
    assert_eval("/d:!=:null", "{\"c\":null}", 0);
    assert_eval("/d:==:null", "{\"c\":null}", 0);
    assert_eval("/d:!=:true", "{}", 0);
}


/* a value of another type than the constant: no operator holds */
static void
test_eval_type_mismatch(void **state)
{
    (void) state;

    /* a number constant, the value a string of one */
    assert_eval_ops("/c:%s:0.9", "{\"c\":\"0.95\"}", "000000");
    assert_eval_ops("/c:%s:0.9", "{\"c\":\"0.9\"}", "000000");
    assert_eval_ops("/c:%s:0.9", "{\"c\":\"-1\"}", "000000");

    /* or a literal (strtod would read "null" as 0), object or array */
    assert_eval_ops("/c:%s:0", "{\"c\":null}", "000000");
    assert_eval_ops("/c:%s:0", "{\"c\":false}", "000000");
    assert_eval_ops("/c:%s:1", "{\"c\":true}", "000000");
    assert_eval_ops("/c:%s:0", "{\"c\":{}}", "000000");
    assert_eval_ops("/c:%s:1", "{\"c\":[1]}", "000000");

    /* a string constant, the value a number, literal, object or array */
    assert_eval("/d:==:five", "{\"d\":5}", 0);
    assert_eval("/d:!=:five", "{\"d\":5}", 0);
    assert_eval("/d:==:01", "{\"d\":1}", 0);
    assert_eval("/d:!=:01", "{\"d\":1}", 0);
    assert_eval("/d:==:01", "{\"d\":\"01\"}", 1);
    assert_eval("/d:!=:yes", "{\"d\":true}", 0);
    assert_eval("/d:!=:nul", "{\"d\":null}", 0);
    assert_eval("/d:==:x", "{\"d\":[\"x\"]}", 0);
    assert_eval("/d:!=:x", "{\"d\":[\"x\"]}", 0);
    assert_eval("/d:!=:x", "{\"d\":{\"x\":1}}", 0);

    /* a literal constant, the value a string of one */
    assert_eval("/f:==:true", "{\"f\":\"true\"}", 0);
    assert_eval("/f:!=:true", "{\"f\":\"true\"}", 0);
    assert_eval("/f:!=:false", "{\"f\":\"true\"}", 0);
    assert_eval("/f:==:null", "{\"f\":\"null\"}", 0);
    assert_eval("/f:!=:null", "{\"f\":\"null\"}", 0);

    /* or a number, object or array */
    assert_eval("/f:!=:false", "{\"f\":0}", 0);
    assert_eval("/f:!=:null", "{\"f\":-1}", 0);
    assert_eval("/f:!=:null", "{\"f\":{}}", 0);
    assert_eval("/f:==:true", "{\"f\":[true]}", 0);
    assert_eval("/f:!=:true", "{\"f\":[true]}", 0);
}


/* true, false and null compare as tokens, with each other too */
static void
test_eval_literals(void **state)
{
    (void) state;

    assert_eval("/f:==:true", "{\"f\":true}", 1);
    assert_eval("/f:!=:true", "{\"f\":true}", 0);
    assert_eval("/f:==:false", "{\"f\":true}", 0);
    assert_eval("/f:!=:false", "{\"f\":true}", 1);
    assert_eval("/f:!=:null", "{\"f\":true}", 1);
    assert_eval("/f:==:false", "{\"f\":false}", 1);
    assert_eval("/f:!=:true", "{\"f\":false}", 1);
    assert_eval("/f:==:null", "{\"f\":null}", 1);
    assert_eval("/f:!=:null", "{\"f\":null}", 0);
    assert_eval("/f:==:true", "{\"f\":null}", 0);
    assert_eval("/f:==:true", "{ \"f\" : true }", 1);
    assert_eval("/f/1:==:false", "[true, false ]", 0);
    assert_eval("/1:==:false", "[true, false ]", 1);
    assert_eval(":==:null", " null\n", 1);
}


/* strings compare as written: the bytes between the quotes */
static void
test_eval_strings(void **state)
{
    (void) state;

    assert_eval("/decision:==:block", "{\"decision\":\"block\"}", 1);
    assert_eval("/decision:!=:block", "{\"decision\":\"block\"}", 0);
    assert_eval("/decision:!=:allow", "{\"decision\":\"block\"}", 1);
    assert_eval("/decision:==:allow", "{\"decision\":\"block\"}", 0);

    /* a prefix, a longer string, another case */
    assert_eval("/d:==:bloc", "{\"d\":\"block\"}", 0);
    assert_eval("/d:!=:bloc", "{\"d\":\"block\"}", 1);
    assert_eval("/d:==:blocks", "{\"d\":\"block\"}", 0);
    assert_eval("/d:==:Block", "{\"d\":\"block\"}", 0);

    /* no constant is empty, so "" only differs */
    assert_eval("/d:==:x", "{\"d\":\"\"}", 0);
    assert_eval("/d:!=:x", "{\"d\":\"\"}", 1);

    /* escapes are not decoded: "a\/b" is not a/b */
    assert_eval("/d:==:a/b", "{\"d\":\"a\\/b\"}", 0);
    assert_eval("/d:==:a\\/b", "{\"d\":\"a\\/b\"}", 1);
    assert_eval("/d:==:caf\xc3\xa9", "{\"d\":\"caf\\u00e9\"}", 0);
    assert_eval("/d:==:caf\\u00e9", "{\"d\":\"caf\\u00e9\"}", 1);
    assert_eval("/d:==:caf\xc3\xa9", "{\"d\":\"caf\xc3\xa9\"}", 1);
    assert_eval("/d:==:a\\\"b", "{\"d\":\"a\\\"b\"}", 1);

    /* a quoted constant is the text inside its quotes */
    assert_eval("/d:==:\"block\"", "{\"d\":\"block\"}", 1);
    assert_eval("/d:==:\"block\"", "{\"d\":\"\\\"block\\\"\"}", 0);
    assert_eval("/d:==:\\\"block\\\"", "{\"d\":\"\\\"block\\\"\"}", 1);

    /* not a number: " 1" and "01" are strings */
    assert_eval("/d:==: 1", "{\"d\":\" 1\"}", 1);
    assert_eval("/d:==:01", "{\"d\":\"1\"}", 0);

    /* a member's name is decoded, its value is not */
    assert_eval("/label:==:a b", "{\"l\\u0061bel\":\"a b\"}", 1);
}


/* VALUE may hold ':'; the pointer ends at the first ":OP:" */
static void
test_eval_colons(void **state)
{
    (void) state;

    assert_eval("/d:==:a:b", "{\"d\":\"a:b\"}", 1);
    assert_eval("/d:!=:a:b", "{\"d\":\"a:b\"}", 0);
    assert_eval("/d:==:a", "{\"d\":\"a:b\"}", 0);
    assert_eval("/t:==:12:30", "{\"t\":\"12:30\"}", 1);
    assert_eval("/t:!=:12:30", "{\"t\":\"12:31\"}", 1);

    /* read as pointer "/d:==:b", "!=", "c", this would be 0 */
    assert_eval("/d:==:b:!=:c", "{\"d\":\"b:!=:c\",\"d:==:b\":\"c\"}", 1);
    assert_eval("/d:==:b:!=:c", "{\"d:==:b\":\"x\"}", 0);

    /* a ':' in the pointer that starts no ":OP:" stays in it */
    assert_eval("/a:b:>=:1", "{\"a:b\":1,\"a\":0}", 1);
    assert_eval("/a:b:<:1", "{\"a:b\":1,\"a\":0}", 0);
    assert_eval("/a:=:b:==:2", "{\"a:=:b\":2}", 1);
    assert_eval("/x/a:b:==:c", "{\"x\":{\"a:b\":\"c\"}}", 1);
}


static void
test_eval_pointers(void **state)
{
    (void) state;

    /* empty: the whole value */
    assert_eval(":>=:0.5", "0.7", 1);
    assert_eval(":>=:0.5", "0.3", 0);
    assert_eval(":>=:0.5", " 0.7 \n", 1);
    assert_eval(":>=:0.5", "-0.7", 0);
    assert_eval(":==:x", "\"x\"", 1);
    assert_eval(":==:\"x\"", "\"x\"", 1);
    assert_eval(":!=:x", "{\"x\":1}", 0);
    assert_eval(":>:0", "[1]", 0);

    /* "/" is the member named "" */
    assert_eval("/:==:3", "{\"\":3,\"a\":4}", 1);
    assert_eval("/:==:3", "{\"a\":3}", 0);

    assert_eval("/a/b/0:>=:0.9", "{\"a\":{\"b\":[0.95,0.1]}}", 1);
    assert_eval("/a/b/1:>=:0.9", "{\"a\":{\"b\":[0.95,0.1]}}", 0);
    assert_eval("/a/b/1:<:0.9", "{\"a\":{\"b\":[0.95,0.1]}}", 1);
    assert_eval("/a/b/2:<:0.9", "{\"a\":{\"b\":[0.95,0.1]}}", 0);
    assert_eval("/a/b/0:==:x", "{\"a\":{\"b\":[\"x\"]}}", 1);
    assert_eval("/predictions/0/1:>:0.5",
                "{\"predictions\":[[0.12,0.88]],\"model\":\"v1\"}", 1);
    assert_eval("/predictions/0/0:>:0.5",
                "{ \"predictions\" : [ [ 0.12 , 0.88 ] ] }", 0);

    /* ~1 is "/", ~0 is "~", and "~01" is "~1", not "~/" */
    assert_eval("/a~1b/~0c:==:0.5",
                "{\"a\":{\"b\":{\"~c\":1}},\"a/b\":{\"~c\":0.5}}", 1);
    assert_eval("/a/b/~0c:==:1",
                "{\"a\":{\"b\":{\"~c\":1}},\"a/b\":{\"~c\":0.5}}", 1);
    assert_eval("/a~1b/~c:==:0.5", "{\"a/b\":{\"~c\":0.5}}", 0);
    assert_eval("/~01:==:1", "{\"~1\":1,\"/\":2,\"~/\":3}", 1);
    assert_eval("/~1:==:2", "{\"~1\":1,\"/\":2,\"~/\":3}", 1);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_numbers),
        cmocka_unit_test(test_parse_strings_and_literals),
        cmocka_unit_test(test_parse_pointers),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_cut_short),
        cmocka_unit_test(test_eval_numbers),
        cmocka_unit_test(test_eval_missing),
        cmocka_unit_test(test_eval_type_mismatch),
        cmocka_unit_test(test_eval_literals),
        cmocka_unit_test(test_eval_strings),
        cmocka_unit_test(test_eval_colons),
        cmocka_unit_test(test_eval_pointers),
    };

    return cmocka_run_group_tests_name("pred_cond", tests, NULL, NULL);
}
