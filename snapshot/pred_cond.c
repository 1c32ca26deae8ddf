/*
 * Conditions on a JSON value: see pred_cond.h.
 */

#include <stdlib.h>
#include <string.h>

#include "pred_cond.h"
#include "pred_json.h"


/* longer operators first: ">=" is not ">" followed by "=" */
static const struct {
    const char      *text;
    size_t           len;
    pred_cond_op_t   op;
} pred_cond_ops[] = {
    { ">=", 2, PRED_COND_GE },
    { "<=", 2, PRED_COND_LE },
    { "==", 2, PRED_COND_EQ },
    { "!=", 2, PRED_COND_NE },
    { ">", 1, PRED_COND_GT },
    { "<", 1, PRED_COND_LT }
};

#define PRED_COND_NOPS  (sizeof(pred_cond_ops) / sizeof(pred_cond_ops[0]))

/* a number longer than this is compared as not a number: none is real */
#define PRED_COND_NUMBER_MAX  64


static int pred_cond_number(const char *p, size_t len, double *out);


int
pred_cond_parse(const char *s, size_t len, pred_cond_t *c, const char **err)
{
    size_t       i, k, n;
    const char  *v, *end;

    end = s + len;

    for (i = 0; i < len; i++) {
        if (s[i] != ':') {
            continue;
        }

        for (k = 0; k < PRED_COND_NOPS; k++) {
            n = pred_cond_ops[k].len;

            if (i + 1 + n < len
                && memcmp(s + i + 1, pred_cond_ops[k].text, n) == 0
                && s[i + 1 + n] == ':')
            {
                goto found;
            }
        }
    }

    *err = "needs POINTER:OP:VALUE with OP one of <, <=, >, >=, ==, !=";
    return -1;

found:

    if (i && s[0] != '/') {
        *err = "the pointer must be empty or start with \"/\"";
        return -1;
    }

    c->pointer = s;
    c->pointer_len = i;
    c->op = pred_cond_ops[k].op;

    v = s + i + 1 + pred_cond_ops[k].len + 1;

    if (v == end) {
        *err = "the value is empty";
        return -1;
    }

    c->text = v;
    c->text_len = end - v;

    if (pred_json_number(v, end) == end) {
        c->kind = PRED_COND_NUMBER;

        if (pred_cond_number(v, end - v, &c->number) != 0) {
            *err = "the number is too long";
            return -1;
        }

        return 0;
    }

    if (c->text_len >= 2 && v[0] == '"' && end[-1] == '"') {
        /* a string written as JSON writes it: "0.9" and "true" are text */
        c->kind = PRED_COND_STRING;
        c->text = v + 1;
        c->text_len -= 2;

    } else if ((c->text_len == 4 && memcmp(v, "true", 4) == 0)
               || (c->text_len == 5 && memcmp(v, "false", 5) == 0)
               || (c->text_len == 4 && memcmp(v, "null", 4) == 0))
    {
        c->kind = PRED_COND_LITERAL;

    } else {
        c->kind = PRED_COND_STRING;
    }

    if (c->op != PRED_COND_EQ && c->op != PRED_COND_NE) {
        *err = "only == and != compare a value that is not a number "
               "(a number is written as JSON writes it: 0.9, not .9)";
        return -1;
    }

    return 0;
}


int
pred_cond_eval(const pred_cond_t *c, const char *json, size_t len)
{
    int          eq;
    double       n;
    const char  *start, *stop;

    if (pred_json_pointer(json, len, c->pointer, c->pointer_len, &start,
                          &stop)
        != 0)
    {
        return 0;
    }

    switch (c->kind) {

    case PRED_COND_NUMBER:
        if (start == stop || (*start != '-' && (*start < '0' || *start > '9'))
            || pred_cond_number(start, stop - start, &n) != 0)
        {
            return 0;
        }

        switch (c->op) {
        case PRED_COND_LT:
            return n < c->number;
        case PRED_COND_LE:
            return n <= c->number;
        case PRED_COND_GT:
            return n > c->number;
        case PRED_COND_GE:
            return n >= c->number;
        case PRED_COND_EQ:
            return n == c->number;
        default:
            return n != c->number;
        }

    case PRED_COND_LITERAL:
        if (start == stop || *start == '"' || *start == '{' || *start == '['
            || *start == '-' || (*start >= '0' && *start <= '9'))
        {
            return 0;
        }

        eq = ((size_t) (stop - start) == c->text_len
              && memcmp(start, c->text, c->text_len) == 0);
        break;

    default: /* PRED_COND_STRING */
        if (stop - start < 2 || *start != '"') {
            return 0;
        }

        eq = ((size_t) (stop - start - 2) == c->text_len
              && memcmp(start + 1, c->text, c->text_len) == 0);
    }

    return (c->op == PRED_COND_EQ) ? eq : !eq;
}


/* a JSON number's value, from len bytes that need no terminator */
static int
pred_cond_number(const char *p, size_t len, double *out)
{
    char  buf[PRED_COND_NUMBER_MAX + 1];

    if (len > PRED_COND_NUMBER_MAX) {
        return -1;
    }

    memcpy(buf, p, len);
    buf[len] = '\0';

    *out = strtod(buf, NULL);

    return 0;
}
