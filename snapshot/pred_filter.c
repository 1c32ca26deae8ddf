/*
 * Parsing the shaping arguments of a request.
 */

#include <stdlib.h>
#include <string.h>

#include "pred_key.h"
#include "pred_filter.h"


#define PRED_FILTER_FIELD_MAX  64


static int pred_filter_value(const char *p, const char *last, char **buf,
    pred_span_t *out);
static int pred_filter_list(int arg, pred_span_t *v,
    pred_filter_args_t *out, const char **reason);
static int pred_filter_number(int arg, pred_span_t *v,
    pred_filter_args_t *out, const char **reason);


int
pred_filter_parse(const char *args, size_t len, const pred_span_t *names,
    char *buf, pred_filter_args_t *out, int *bad, const char **reason)
{
    int           arg, seen;
    const char   *p, *last, *next, *eq;
    pred_span_t   v;

    memset(out, 0, sizeof(pred_filter_args_t));
    seen = 0;

    for (p = args, last = args + len; p < last; p = next + 1) {
        next = memchr(p, '&', last - p);
        if (next == NULL) {
            next = last;
        }

        eq = memchr(p, '=', next - p);
        if (eq == NULL) {
            continue;
        }

        for (arg = 0; arg < PRED_FILTER_NARGS; arg++) {
            if ((size_t) (eq - p) == names[arg].len
                && memcmp(p, names[arg].data, names[arg].len) == 0)
            {
                break;
            }
        }

        /* where may repeat; for the others the first one counts */
        if (arg == PRED_FILTER_NARGS
            || (arg != PRED_FILTER_WHERE && (seen & (1 << arg))))
        {
            continue;
        }

        seen |= 1 << arg;
        *bad = arg;

        if (pred_filter_value(eq + 1, next, &buf, &v) != 0) {
            *reason = "bad % escape";
            return -1;
        }

        if (arg == PRED_FILTER_LIMIT || arg == PRED_FILTER_MIN_SCORE) {
            if (pred_filter_number(arg, &v, out, reason) != 0) {
                return -1;
            }

        } else if (pred_filter_list(arg, &v, out, reason) != 0) {
            return -1;
        }
    }

    return 0;
}


int
pred_filter_plain_name(const char *name, size_t len)
{
    size_t  i;
    char    c;

    if (len == 0 || len > PRED_FILTER_FIELD_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
        {
            return 0;
        }
    }

    return 1;
}


/* %-decodes p..last into *buf, which moves past it; "+" stays "+" */
static int
pred_filter_value(const char *p, const char *last, char **buf,
    pred_span_t *out)
{
    size_t  n;

    if (pred_key_unescape((const unsigned char *) p, last - p,
                          (unsigned char *) *buf, &n)
        != 0)
    {
        return -1;
    }

    out->data = *buf;
    out->len = n;
    *buf += n;

    return 0;
}


/* where=F:V,F:V  exclude=ID,ID  fields=F,F */
static int
pred_filter_list(int arg, pred_span_t *v, pred_filter_args_t *out,
    const char **reason)
{
    size_t       i, n;
    const char  *p, *last, *c, *colon;

    for (p = v->data, last = v->data + v->len; p <= last; p = c + 1) {
        c = memchr(p, ',', last - p);
        if (c == NULL) {
            c = last;
        }

        n = c - p;

        if (arg == PRED_FILTER_WHERE) {
            colon = memchr(p, ':', n);

            if (colon == NULL || out->nwhere == PRED_FILTER_MAX_ARGS) {
                *reason = "use FIELD:VALUE, at most 32";
                return -1;
            }

            if (!pred_filter_plain_name(p, colon - p)) {
                *reason = "field names are 1 to 64 of A-Z a-z 0-9 _ . -";
                return -1;
            }

            out->where_field[out->nwhere].data = p;
            out->where_field[out->nwhere].len = colon - p;
            out->where_value[out->nwhere].data = colon + 1;
            out->where_value[out->nwhere].len = c - colon - 1;
            out->nwhere++;
            continue;
        }

        if (n == 0
            || (arg == PRED_FILTER_EXCLUDE ? out->nexclude : out->nfields)
               == PRED_FILTER_MAX_ARGS)
        {
            *reason = "use a comma-separated list, at most 32";
            return -1;
        }

        if (arg == PRED_FILTER_EXCLUDE) {
            out->exclude[out->nexclude].data = p;
            out->exclude[out->nexclude++].len = n;
            continue;
        }

        if (!pred_filter_plain_name(p, n)) {
            *reason = "field names are 1 to 64 of A-Z a-z 0-9 _ . -";
            return -1;
        }

        /* once each: the shaped value must stay within the original */
        for (i = 0; i < out->nfields; i++) {
            if (out->fields[i].len == n
                && memcmp(out->fields[i].data, p, n) == 0)
            {
                break;
            }
        }

        if (i == out->nfields) {
            out->fields[out->nfields].data = p;
            out->fields[out->nfields++].len = n;
        }
    }

    return 0;
}


/* limit=N (a whole number) and min_score=X (a finite or infinite number) */
static int
pred_filter_number(int arg, pred_span_t *v, pred_filter_args_t *out,
    const char **reason)
{
    char    num[64], *end;
    size_t  i, n;

    if (arg == PRED_FILTER_LIMIT) {
        n = 0;

        for (i = 0; i < v->len; i++) {
            if (v->data[i] < '0' || v->data[i] > '9' || n > 100000000) {
                break;
            }

            n = n * 10 + (v->data[i] - '0');
        }

        if (v->len == 0 || i != v->len) {
            *reason = "not a whole number";
            return -1;
        }

        out->limit = n;
        out->has_limit = 1;

        return 0;
    }

    if (v->len == 0 || v->len >= sizeof(num)) {
        *reason = "not a number";
        return -1;
    }

    memcpy(num, v->data, v->len);
    num[v->len] = '\0';

    out->min_score = strtod(num, &end);

    if (*end != '\0' || out->min_score != out->min_score) {
        *reason = "not a number";
        return -1;
    }

    out->has_min_score = 1;

    return 0;
}
