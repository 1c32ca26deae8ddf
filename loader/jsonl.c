/*
 * JSON Lines records.  The rules are jansson's (JSON_REJECT_DUPLICATES):
 * a line is valid when json_loadb() accepts it.  A single pass over the
 * bytes (pred_jsonl_scan) decides the common lines without building a
 * tree; whatever it is not sure of, every invalid line among it, goes to
 * jansson, which gives the same result it always did and the message.
 * The value is copied from the line's own bytes, compacted, rather than
 * re-serialised, because jansson prints 0.1 as 0.10000000000000001.
 */

#define _GNU_SOURCE

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "pred_key.h"
#include "pred_snap.h"
#include "pred_json.h"
#include "jsonl.h"


/*
 * How deep and how many open members the scanner follows; a line past
 * either goes to jansson.
 */
#define PRED_JSONL_SCAN_DEPTH    32
#define PRED_JSONL_SCAN_MEMBERS  64

/* what the scanner found a value to be */
#define PRED_JSONL_BAD       0      /* not sure: ask jansson */
#define PRED_JSONL_STRING    's'    /* without escapes */
#define PRED_JSONL_ESCAPED   'e'    /* a string with escapes */
#define PRED_JSONL_INTEGER   'i'    /* an integer printed as jansson would */
#define PRED_JSONL_NUMBER    'n'    /* any other number */
#define PRED_JSONL_NULL      'l'
#define PRED_JSONL_OTHER     'o'    /* true, false, an object or array */

/* which object is scanned: the line, its value, or any other */
#define PRED_JSONL_ROOT      0
#define PRED_JSONL_VALUE     1
#define PRED_JSONL_NESTED    2


typedef struct {
    const char  *name;          /* no escapes, so its bytes are its name */
    size_t       len;
    const char  *start;         /* the member's value as written */
    const char  *stop;
    size_t       ws;            /* white space in it, outside strings */
    int          type;
} pred_jsonl_member_t;


typedef struct {
    const char               *p;
    const char               *end;
    size_t                    ws;       /* white space bytes skipped */
    const pred_jsonl_opts_t  *opts;
    size_t                    value_len;
    int                       checks;   /* --require-field or --range */

    /* the members of the objects open, the line's own kept to the end */
    size_t                    nmembers;
    pred_jsonl_member_t       members[PRED_JSONL_SCAN_MEMBERS];
} pred_jsonl_scan_t;


static inline void pred_jsonl_skip_ws(pred_jsonl_scan_t *s);
static int pred_jsonl_scan_value(pred_jsonl_scan_t *s, int depth, int role);
static int pred_jsonl_scan_object(pred_jsonl_scan_t *s, int depth,
    int role);
static int pred_jsonl_scan_array(pred_jsonl_scan_t *s, int depth);
static int pred_jsonl_scan_string(pred_jsonl_scan_t *s);
static const char *pred_jsonl_scan_escape(const char *p, const char *end);
static int pred_jsonl_hex4(const char *p);
static int pred_jsonl_scan_number(pred_jsonl_scan_t *s);
static int pred_jsonl_scan_checks(pred_jsonl_scan_t *s, size_t first);
static pred_jsonl_member_t *pred_jsonl_find(pred_jsonl_scan_t *s,
    size_t first, const char *name, size_t len);
static int pred_jsonl_checks(json_t *value, const pred_jsonl_opts_t *opts,
    char *err, size_t errlen);


int
pred_jsonl_parse(const char *line, size_t len, const pred_jsonl_opts_t *opts,
    pred_buf_t *key, pred_buf_t *value, char *err, size_t errlen)
{
    pred_jsonl_rec_t  rec;

    /* the scan knows values only: deletions are rare, and go to jansson */
    if ((opts->deletes && memmem(line, len, "\"delete\"", 8) != NULL)
        || pred_jsonl_scan(line, len, opts, &rec) != 0)
    {
        return pred_jsonl_parse_jansson(line, len, opts, key, value, err,
                                        errlen);
    }

    if (pred_buf_reserve(key, rec.klen) != 0
        || pred_buf_reserve(value, rec.vlen) != 0)
    {
        return pred_snap_errorf(err, errlen, "out of memory");
    }

    memcpy(key->data, rec.key, rec.klen);
    key->len = rec.klen;

    if (rec.compact) {
        value->len = pred_json_compact(rec.value, rec.vlen, value->data);

    } else {
        memcpy(value->data, rec.value, rec.vlen);
        value->len = rec.vlen;
    }

    return 0;
}


int
pred_jsonl_scan(const char *line, size_t len, const pred_jsonl_opts_t *opts,
    pred_jsonl_rec_t *rec)
{
    pred_jsonl_scan_t     s;
    pred_jsonl_member_t  *k, *v;

    s.p = line;
    s.end = line + len;
    s.ws = 0;
    s.opts = opts;
    s.value_len = strlen(opts->value_field);
    s.checks = opts->nrequire || opts->nranges;
    s.nmembers = 0;

    pred_jsonl_skip_ws(&s);

    if (s.p == s.end || *s.p != '{'
        || pred_jsonl_scan_object(&s, 1, PRED_JSONL_ROOT) != 0)
    {
        return -1;
    }

    pred_jsonl_skip_ws(&s);

    if (s.p != s.end) {
        return -1;
    }

    k = pred_jsonl_find(&s, 0, opts->key_field, strlen(opts->key_field));
    v = pred_jsonl_find(&s, 0, opts->value_field, s.value_len);

    if (k == NULL || v == NULL || v->type == PRED_JSONL_NULL
        || (s.checks && *v->start != '{'))
    {
        return -1;
    }

    if (k->type == PRED_JSONL_STRING) {
        rec->key = k->start + 1;
        rec->klen = k->stop - k->start - 2;

    } else if (k->type == PRED_JSONL_INTEGER) {
        rec->key = k->start;
        rec->klen = k->stop - k->start;

    } else {
        return -1;
    }

    if (pred_key_validate((const unsigned char *) rec->key, rec->klen)
        != PRED_KEY_OK)
    {
        return -1;
    }

    rec->value = v->start;
    rec->vlen = v->stop - v->start;
    rec->compact = v->ws != 0;

    return 0;
}


int
pred_jsonl_parse_jansson(const char *line, size_t len,
    const pred_jsonl_opts_t *opts, pred_buf_t *key, pred_buf_t *value,
    char *err, size_t errlen)
{
    int            rc;
    char           num[32];
    size_t         klen;
    json_t        *root, *k, *v, *d;
    const char    *kstr, *start, *stop;
    pred_key_rc_t  krc;
    json_error_t   jerr;

    /*
     * jansson's reader takes a NUL byte for the end of its buffer: after a
     * number it let one through, into the value.  JSON has none, even in
     * strings.
     */
    start = memchr(line, '\0', len);
    if (start != NULL) {
        return pred_snap_errorf(err, errlen, "invalid JSON at column %d: "
                               "NUL byte", (int) (start - line) + 1);
    }

    root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        return pred_snap_errorf(err, errlen, "invalid JSON at column %d: %s",
                               jerr.column, jerr.text);
    }

    rc = -1;

    if (!json_is_object(root)) {
        pred_snap_errorf(err, errlen, "line is not a JSON object");
        goto done;
    }

    k = json_object_get(root, opts->key_field);

    if (json_is_string(k)) {
        kstr = json_string_value(k);
        klen = json_string_length(k);

    } else if (json_is_integer(k)) {
        klen = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
                        json_integer_value(k));
        kstr = num;

    } else {
        pred_snap_errorf(err, errlen, "field \"%s\" is %s, not a string",
                        opts->key_field, k ? "of another type" : "missing");
        goto done;
    }

    krc = pred_key_validate((const unsigned char *) kstr, klen);
    if (krc != PRED_KEY_OK) {
        pred_snap_errorf(err, errlen, "invalid key: %s",
                         pred_key_strerror(krc));
        goto done;
    }

    v = json_object_get(root, opts->value_field);
    d = json_object_get(root, "delete");

    if (d != NULL && opts->deletes) {
        if (!json_is_true(d) || v != NULL) {
            pred_snap_errorf(err, errlen, "%s", v ? "a line has \"value\" "
                             "or \"delete\", not both"
                             : "field \"delete\" is not true");
            goto done;
        }

        if (pred_buf_reserve(key, klen) != 0) {
            pred_snap_errorf(err, errlen, "out of memory");
            goto done;
        }

        memcpy(key->data, kstr, klen);
        key->len = klen;
        value->len = 0;

        rc = 0;
        goto done;
    }

    if (v == NULL || json_is_null(v)) {
        pred_snap_errorf(err, errlen, "field \"%s\" is %s%s",
                         opts->value_field, v ? "null" : "missing",
                         d ? " (deletions are for a delta: build "
                             "--delta-of VERSION)" : "");
        goto done;
    }

    if (pred_jsonl_checks(v, opts, err, errlen) != 0) {
        goto done;
    }

    if (pred_json_member(line, line + len, opts->value_field,
                         strlen(opts->value_field), &start, &stop) != 0)
    {
        pred_snap_errorf(err, errlen, "field \"%s\" not found in the line",
                        opts->value_field);
        goto done;
    }

    if (pred_buf_reserve(key, klen) != 0 || pred_buf_reserve(value,
                                                             stop - start)
        != 0)
    {
        pred_snap_errorf(err, errlen, "out of memory");
        goto done;
    }

    memcpy(key->data, kstr, klen);
    key->len = klen;

    value->len = pred_json_compact(start, stop - start, value->data);

    rc = 0;

done:

    json_decref(root);

    return rc;
}


int
pred_jsonl_parse_range(const char *spec, pred_jsonl_range_t *r)
{
    char        *end;
    const char  *c1, *c2;

    c2 = strrchr(spec, ':');
    if (c2 == NULL || c2 == spec) {
        return -1;
    }

    for (c1 = c2 - 1; c1 > spec && *c1 != ':'; c1--) { /* void */ }

    if (*c1 != ':' || c1 == spec) {
        return -1;
    }

    r->min = strtod(c1 + 1, &end);
    if (end != c2 || end == c1 + 1) {
        return -1;
    }

    r->max = strtod(c2 + 1, &end);
    if (*end != '\0' || end == c2 + 1 || r->min > r->max) {
        return -1;
    }

    r->field = strndup(spec, c1 - spec);

    return r->field ? 0 : -1;
}


static int
pred_jsonl_checks(json_t *value, const pred_jsonl_opts_t *opts, char *err,
    size_t errlen)
{
    size_t   i;
    double   d;
    json_t  *f;

    if ((opts->nrequire || opts->nranges) && !json_is_object(value)) {
        return pred_snap_errorf(err, errlen, "field \"%s\" is not an object, "
                               "so it has no fields to check",
                               opts->value_field);
    }

    for (i = 0; i < opts->nrequire; i++) {
        if (json_object_get(value, opts->require[i]) == NULL) {
            return pred_snap_errorf(err, errlen, "value has no field \"%s\" "
                                   "(--require-field)", opts->require[i]);
        }
    }

    for (i = 0; i < opts->nranges; i++) {
        f = json_object_get(value, opts->ranges[i].field);

        if (!json_is_number(f)) {
            return pred_snap_errorf(err, errlen, "value field \"%s\" is %s, "
                                   "not a number (--range)",
                                   opts->ranges[i].field,
                                   f ? "of another type" : "missing");
        }

        d = json_number_value(f);

        if (d < opts->ranges[i].min || d > opts->ranges[i].max) {
            return pred_snap_errorf(err, errlen, "value field \"%s\" is %g, "
                                   "outside [%g, %g] (--range)",
                                   opts->ranges[i].field, d,
                                   opts->ranges[i].min, opts->ranges[i].max);
        }
    }

    return 0;
}


/*
 * The scanner.  Each function returns PRED_JSONL_BAD (or -1) for anything
 * jansson refuses, and also for what it does not follow (escaped member
 * names, deep nesting, numbers jansson might find too big): jansson reads
 * those lines again and decides.
 */

static inline void
pred_jsonl_skip_ws(pred_jsonl_scan_t *s)
{
    const char  *p;

    /* compact lines have none: one test */
    if (s->p < s->end && (unsigned char) *s->p > ' ') {
        return;
    }

    for (p = s->p; p < s->end; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            break;
        }
    }

    s->ws += p - s->p;
    s->p = p;
}


/* the value at s->p, which is not white space */
static int
pred_jsonl_scan_value(pred_jsonl_scan_t *s, int depth, int role)
{
    switch (*s->p) {

    case '{':
        return pred_jsonl_scan_object(s, depth + 1, role) == 0
               ? PRED_JSONL_OTHER : PRED_JSONL_BAD;

    case '[':
        return pred_jsonl_scan_array(s, depth + 1) == 0
               ? PRED_JSONL_OTHER : PRED_JSONL_BAD;

    case '"':
        return pred_jsonl_scan_string(s);

    case 't':
        if (s->end - s->p >= 4 && memcmp(s->p, "true", 4) == 0) {
            s->p += 4;
            return PRED_JSONL_OTHER;
        }

        return PRED_JSONL_BAD;

    case 'f':
        if (s->end - s->p >= 5 && memcmp(s->p, "false", 5) == 0) {
            s->p += 5;
            return PRED_JSONL_OTHER;
        }

        return PRED_JSONL_BAD;

    case 'n':
        if (s->end - s->p >= 4 && memcmp(s->p, "null", 4) == 0) {
            s->p += 4;
            return PRED_JSONL_NULL;
        }

        return PRED_JSONL_BAD;
    }

    return pred_jsonl_scan_number(s);
}


/*
 * Duplicate names are looked for among the members of the same object, as
 * jansson does at every depth.  The line's own members stay on the stack
 * for pred_jsonl_scan(); the value's are checked when it closes.
 */
static int
pred_jsonl_scan_object(pred_jsonl_scan_t *s, int depth, int role)
{
    int                   child;
    size_t                first, ws;
    const char           *name;
    pred_jsonl_member_t  *m;

    if (depth > PRED_JSONL_SCAN_DEPTH) {
        return -1;
    }

    first = s->nmembers;

    s->p++;
    pred_jsonl_skip_ws(s);

    if (s->p < s->end && *s->p == '}') {
        s->p++;
        goto closed;
    }

    for ( ;; ) {
        if (s->p == s->end || *s->p != '"'
            || s->nmembers == PRED_JSONL_SCAN_MEMBERS)
        {
            return -1;
        }

        /* jansson compares escaped names decoded */
        name = s->p + 1;
        if (pred_jsonl_scan_string(s) != PRED_JSONL_STRING) {
            return -1;
        }

        m = &s->members[s->nmembers];
        m->name = name;
        m->len = s->p - 1 - name;

        if (pred_jsonl_find(s, first, name, m->len) != NULL) {
            return -1;
        }

        s->nmembers++;

        pred_jsonl_skip_ws(s);

        if (s->p == s->end || *s->p != ':') {
            return -1;
        }

        s->p++;
        pred_jsonl_skip_ws(s);

        if (s->p == s->end) {
            return -1;
        }

        child = PRED_JSONL_NESTED;

        if (role == PRED_JSONL_ROOT && s->checks && m->len == s->value_len
            && memcmp(name, s->opts->value_field, m->len) == 0)
        {
            child = PRED_JSONL_VALUE;
        }

        ws = s->ws;
        m->start = s->p;
        m->type = pred_jsonl_scan_value(s, depth, child);

        if (m->type == PRED_JSONL_BAD) {
            return -1;
        }

        m->stop = s->p;
        m->ws = s->ws - ws;

        pred_jsonl_skip_ws(s);

        if (s->p == s->end) {
            return -1;
        }

        if (*s->p == '}') {
            s->p++;
            break;
        }

        if (*s->p != ',') {
            return -1;
        }

        s->p++;
        pred_jsonl_skip_ws(s);
    }

closed:

    if (role == PRED_JSONL_VALUE && pred_jsonl_scan_checks(s, first) != 0) {
        return -1;
    }

    if (role != PRED_JSONL_ROOT) {
        s->nmembers = first;
    }

    return 0;
}


static int
pred_jsonl_scan_array(pred_jsonl_scan_t *s, int depth)
{
    if (depth > PRED_JSONL_SCAN_DEPTH) {
        return -1;
    }

    s->p++;
    pred_jsonl_skip_ws(s);

    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return 0;
    }

    for ( ;; ) {
        if (s->p == s->end
            || pred_jsonl_scan_value(s, depth, PRED_JSONL_NESTED)
               == PRED_JSONL_BAD)
        {
            return -1;
        }

        pred_jsonl_skip_ws(s);

        if (s->p == s->end) {
            return -1;
        }

        if (*s->p == ']') {
            s->p++;
            return 0;
        }

        if (*s->p != ',') {
            return -1;
        }

        s->p++;
        pred_jsonl_skip_ws(s);
    }
}


/* the string at s->p: jansson's rules for control bytes, escapes, UTF-8 */
static int
pred_jsonl_scan_string(pred_jsonl_scan_t *s)
{
    int             type;
    const char     *p, *end;
    unsigned char   c;

    type = PRED_JSONL_STRING;
    end = s->end;

    for (p = s->p + 1; p < end; ) {
        c = (unsigned char) *p;

        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            p++;
            continue;
        }

        if (c == '"') {
            s->p = p + 1;
            return type;
        }

        if (c == '\\') {
            type = PRED_JSONL_ESCAPED;
            p = pred_jsonl_scan_escape(p, end);

        } else if (c >= 0x80) {
            p = pred_json_utf8(p, end);

        } else {
            return PRED_JSONL_BAD;
        }

        if (p == NULL) {
            return PRED_JSONL_BAD;
        }
    }

    return PRED_JSONL_BAD;
}


/*
 * Past the escape at p, or NULL.  jansson refuses \u0000 (no
 * JSON_ALLOW_NUL) and a surrogate not in a high-low pair.
 */
static const char *
pred_jsonl_scan_escape(const char *p, const char *end)
{
    int  u, lo;

    if (end - p < 2) {
        return NULL;
    }

    switch (p[1]) {

    case '"': case '\\': case '/': case 'b':
    case 'f': case 'n': case 'r': case 't':
        return p + 2;

    case 'u':
        break;

    default:
        return NULL;
    }

    if (end - p < 6 || (u = pred_jsonl_hex4(p + 2)) <= 0
        || (u >= 0xdc00 && u <= 0xdfff))
    {
        return NULL;
    }

    if (u < 0xd800 || u > 0xdbff) {
        return p + 6;
    }

    if (end - p < 12 || p[6] != '\\' || p[7] != 'u') {
        return NULL;
    }

    lo = pred_jsonl_hex4(p + 8);

    if (lo < 0xdc00 || lo > 0xdfff) {
        return NULL;
    }

    return p + 12;
}


/* four hex digits, or -1 */
static int
pred_jsonl_hex4(const char *p)
{
    int            i, u;
    unsigned char  c;

    u = 0;

    for (i = 0; i < 4; i++) {
        c = (unsigned char) p[i];

        if (c >= '0' && c <= '9') {
            u = u << 4 | (c - '0');

        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            u = u << 4 | ((c | 0x20) - 'a' + 10);

        } else {
            return -1;
        }
    }

    return u;
}


/*
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?  jansson keeps an integer
 * in a long long and refuses a bigger one, and refuses a real that
 * overflows a double: those it decides itself.
 */
static int
pred_jsonl_scan_number(pred_jsonl_scan_t *s)
{
    int          real, exp;
    char         buf[64];
    size_t       digits;
    const char  *p, *start, *d;

    start = s->p;

    p = pred_json_number(start, s->end);
    if (p == NULL) {
        return PRED_JSONL_BAD;
    }

    /* the grammar is checked: what jansson decides depends on its parts */
    d = start + (*start == '-');

    for (digits = 0; d + digits < p && d[digits] >= '0' && d[digits] <= '9';
         digits++)
    {
        /* void */
    }

    real = (d + digits < p && d[digits] == '.');
    exp = (memchr(d, 'e', p - d) != NULL || memchr(d, 'E', p - d) != NULL);

    s->p = p;

    if (!real && !exp) {
        if (digits > 18) {
            return PRED_JSONL_BAD;
        }

        /* "-0" is the integer 0, which a key prints as "0" */
        return *start == '-' && start[1] == '0' ? PRED_JSONL_NUMBER
                                                : PRED_JSONL_INTEGER;
    }

    /* without an exponent, 300 digits are far from DBL_MAX */
    if (!exp) {
        return digits <= 300 ? PRED_JSONL_NUMBER : PRED_JSONL_BAD;
    }

    if ((size_t) (p - start) >= sizeof(buf)) {
        return PRED_JSONL_BAD;
    }

    memcpy(buf, start, p - start);
    buf[p - start] = '\0';

    return isinf(strtod(buf, NULL)) ? PRED_JSONL_BAD : PRED_JSONL_NUMBER;
}


/* --require-field and --range on the value's members; -1: not met */
static int
pred_jsonl_scan_checks(pred_jsonl_scan_t *s, size_t first)
{
    size_t                     i;
    double                     d;
    const pred_jsonl_opts_t   *o;
    pred_jsonl_member_t       *m;

    o = s->opts;

    for (i = 0; i < o->nrequire; i++) {
        if (pred_jsonl_find(s, first, o->require[i], strlen(o->require[i]))
            == NULL)
        {
            return -1;
        }
    }

    for (i = 0; i < o->nranges; i++) {
        m = pred_jsonl_find(s, first, o->ranges[i].field,
                            strlen(o->ranges[i].field));

        if (m == NULL || (m->type != PRED_JSONL_INTEGER
                          && m->type != PRED_JSONL_NUMBER))
        {
            return -1;
        }

        /*
         * What jansson reads, the nearest double: an integer's converted
         * from a long long rounds the same way.  The number is followed by
         * a byte of the line that ends it.
         */
        d = strtod(m->start, NULL);

        if (d < o->ranges[i].min || d > o->ranges[i].max) {
            return -1;
        }
    }

    return 0;
}


/* the member called name among the open object's, from first */
static pred_jsonl_member_t *
pred_jsonl_find(pred_jsonl_scan_t *s, size_t first, const char *name,
    size_t len)
{
    size_t  i;

    for (i = first; i < s->nmembers; i++) {
        if (s->members[i].len == len
            && memcmp(s->members[i].name, name, len) == 0)
        {
            return &s->members[i];
        }
    }

    return NULL;
}
