/*
 * Parsing the shaping arguments of a request, and shaping a list by them.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pred_key.h"
#include "pred_json.h"
#include "pred_filter.h"


#define PRED_FILTER_FIELD_MAX  64

/* longer numbers are not compared with min_score: the item is dropped */
#define PRED_FILTER_NUMBER_MAX  64

/* the members an item is read for: where fields, id, score, fields */
#define PRED_FILTER_NAMES_MAX  (2 * PRED_FILTER_MAX_ARGS + 2)


/*
 * What to read from each item, worked out once per request: every member
 * name once (the id is often both excluded by and projected), and for each
 * use, in the order where fields, id, score, fields, which name it is.
 */
typedef struct {
    pred_json_name_t   want[PRED_FILTER_NAMES_MAX];
    size_t             nwant;
    size_t             where[PRED_FILTER_MAX_ARGS];
    size_t             id;
    size_t             score;
    size_t             fields[PRED_FILTER_MAX_ARGS];
} pred_filter_plan_t;


static int pred_filter_value(const char *p, const char *last, char **buf,
    pred_span_t *out);
static int pred_filter_list(int arg, pred_span_t *v,
    pred_filter_args_t *out, const char **reason);
static int pred_filter_number(int arg, pred_span_t *v,
    pred_filter_args_t *out, const char **reason);
static void pred_filter_plan(const pred_filter_names_t *names,
    const pred_filter_args_t *a, pred_filter_plan_t *pl);
static size_t pred_filter_want(pred_filter_plan_t *pl, const char *name,
    size_t len);
static int pred_filter_keep(const pred_filter_args_t *a,
    const pred_filter_plan_t *pl, const char **vs, const char **ve);
static int pred_filter_is(const char *s, const char *e, const pred_span_t *v);
static double pred_filter_number_value(const char *s, size_t len);
static char *pred_filter_project(char *d, const pred_filter_args_t *a,
    const pred_filter_plan_t *pl, const char **vs, const char **ve);


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

    if (len == 0 || len > PRED_FILTER_FIELD_MAX) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!pred_key_name_char((unsigned char) name[i])) {
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


/*
 * One pass over the list: each item is read once, for its end and for the
 * members that the conditions and the projection need, and written
 * straight into out.
 */
int
pred_filter_shape(const char *value, size_t len,
    const pred_filter_names_t *names, const pred_filter_args_t *a,
    char *out, size_t *out_len)
{
    char                *d;
    size_t               kept;
    const char          *p, *e, *end, *ls;
    const char          *vs[PRED_FILTER_NAMES_MAX];
    const char          *ve[PRED_FILTER_NAMES_MAX];
    pred_filter_plan_t   pl;

    end = value + len;

    ls = pred_json_member_start(value, end, names->list.data,
                                names->list.len);
    if (ls == NULL || *ls != '[') {
        return -1;
    }

    pred_filter_plan(names, a, &pl);

    d = out;
    memcpy(d, value, ls - value);
    d += ls - value;
    *d++ = '[';
    kept = 0;

    p = pred_json_skip_ws(ls + 1, end);

    while (p < end && *p != ']') {
        if (*p != '{') {
            return -1;
        }

        /* past the limit the items are only walked over, to the end (one
           that is not an object still leaves the value as it is) */
        if (a->has_limit && kept >= a->limit) {
            e = pred_json_object(p, end, NULL, 0, NULL, NULL);

        } else {
            e = pred_json_object(p, end, pl.want, pl.nwant, vs, ve);

            if (e != NULL && pred_filter_keep(a, &pl, vs, ve)) {
                if (kept++) {
                    *d++ = ',';
                }

                if (a->nfields) {
                    d = pred_filter_project(d, a, &pl, vs, ve);

                } else {
                    memcpy(d, p, e - p);
                    d += e - p;
                }
            }
        }

        if (e == NULL) {
            return -1;
        }

        /* items are separated by commas (the output's commas must not
           outnumber the value's, whatever the value) */
        p = pred_json_skip_ws(e, end);
        if (p < end && *p == ',') {
            p = pred_json_skip_ws(p + 1, end);

        } else if (p < end && *p != ']') {
            return -1;
        }
    }

    if (p == end) {
        return -1;
    }

    /* the list's "]" and the rest of the value as they were */
    p++;
    *d++ = ']';
    memcpy(d, p, end - p);
    d += end - p;

    *out_len = d - out;

    return 0;
}


static void
pred_filter_plan(const pred_filter_names_t *names,
    const pred_filter_args_t *a, pred_filter_plan_t *pl)
{
    size_t  i;

    pl->nwant = 0;

    for (i = 0; i < a->nwhere; i++) {
        pl->where[i] = pred_filter_want(pl, a->where_field[i].data,
                                        a->where_field[i].len);
    }

    pl->id = a->nexclude
             ? pred_filter_want(pl, names->id.data, names->id.len) : 0;
    pl->score = a->has_min_score
                ? pred_filter_want(pl, names->score.data, names->score.len)
                : 0;

    for (i = 0; i < a->nfields; i++) {
        pl->fields[i] = pred_filter_want(pl, a->fields[i].data,
                                         a->fields[i].len);
    }
}


/* the index of name in pl->want, added when new */
static size_t
pred_filter_want(pred_filter_plan_t *pl, const char *name, size_t len)
{
    size_t  i;

    for (i = 0; i < pl->nwant; i++) {
        if (pl->want[i].len == len && memcmp(pl->want[i].name, name, len) == 0)
        {
            return i;
        }
    }

    pl->want[i].name = name;
    pl->want[i].len = len;
    pl->nwant++;

    return i;
}


/* vs/ve: the values of pl->want's members in the item (vs NULL: absent) */
static int
pred_filter_keep(const pred_filter_args_t *a, const pred_filter_plan_t *pl,
    const char **vs, const char **ve)
{
    size_t       i, k, len;
    const char  *s;

    for (i = 0; i < a->nwhere; i++) {
        k = pl->where[i];

        if (!pred_filter_is(vs[k], ve[k], &a->where_value[i])) {
            return 0;
        }
    }

    for (i = 0; i < a->nexclude; i++) {
        if (pred_filter_is(vs[pl->id], ve[pl->id], &a->exclude[i])) {
            return 0;
        }
    }

    if (a->has_min_score) {
        s = vs[pl->score];

        if (s == NULL) {
            return 0;
        }

        len = ve[pl->score] - s;
        if (len == 0 || len >= PRED_FILTER_NUMBER_MAX || *s == '"'
            || *s == '{' || *s == '[')
        {
            return 0;
        }

        if (pred_filter_number_value(s, len) < a->min_score) {
            return 0;
        }
    }

    return 1;
}


/*
 * The value strtod reads from the len bytes at s (fewer than
 * PRED_FILTER_NUMBER_MAX).  A plain decimal of at most 15 digits, as
 * scores nearly always are, is an integer below 2^53 over a power of ten
 * up to 10^15, both exact in a double, and one division rounds their
 * quotient correctly, as strtod does; the rest go to strtod.
 */
static double
pred_filter_number_value(const char *s, size_t len)
{
    char          num[PRED_FILTER_NUMBER_MAX];
    double        v;
    size_t        i, digits, frac;
    uint64_t      u;
    unsigned int  dot;

    static const double  pow10[] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
        1e13, 1e14, 1e15
    };

    u = 0;
    digits = 0;
    frac = 0;
    dot = 0;

    for (i = (s[0] == '-'); i < len; i++) {
        if (s[i] >= '0' && s[i] <= '9') {
            u = u * 10 + (s[i] - '0');
            digits++;
            frac += dot;

        } else if (s[i] == '.' && !dot) {
            dot = 1;

        } else {
            break;
        }
    }

    if (i == len && digits > 0 && digits <= 15) {
        v = (double) u / pow10[frac];
        return (s[0] == '-') ? -v : v;
    }

    memcpy(num, s, len);
    num[len] = '\0';

    return strtod(num, NULL);
}


/*
 * Whether a member's value (s NULL: absent) equals v: a string by its
 * contents as written (escapes are not decoded), any other value by its
 * JSON text.
 */
static int
pred_filter_is(const char *s, const char *e, const pred_span_t *v)
{
    const char  *p;

    if (s == NULL) {
        return 0;
    }

    if (*s == '"') {
        s++;
        e--;
    }

    if ((size_t) (e - s) != v->len) {
        return 0;
    }

    /* short values, compared for every item: no call to memcmp */
    for (p = v->data; s < e; s++, p++) {
        if (*s != *p) {
            return 0;
        }
    }

    return 1;
}


/* the item with only the requested fields, in the order requested */
static char *
pred_filter_project(char *d, const pred_filter_args_t *a,
    const pred_filter_plan_t *pl, const char **vs, const char **ve)
{
    size_t  i, k, n;

    *d++ = '{';

    for (i = 0, n = 0; i < a->nfields; i++) {
        k = pl->fields[i];

        if (vs[k] == NULL) {
            continue;
        }

        if (n++) {
            *d++ = ',';
        }

        /* plain names: no escaping needed */
        *d++ = '"';
        memcpy(d, a->fields[i].data, a->fields[i].len);
        d += a->fields[i].len;
        *d++ = '"';
        *d++ = ':';
        memcpy(d, vs[k], ve[k] - vs[k]);
        d += ve[k] - vs[k];
    }

    *d++ = '}';

    return d;
}
