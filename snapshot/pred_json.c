/*
 * Raw JSON text helpers.  The input is known to be valid JSON, which keeps
 * these scanners small: they only track strings and nesting.
 */

#include <stdint.h>
#include <string.h>
#include <jansson.h>

#if (__SSE2__)
#include <emmintrin.h>
#endif

#include "pred_json.h"


#define PRED_JSON_TOKEN_MAX  256


static const char *pred_json_skip_string(const char *p, const char *end);
static const char *pred_json_check_string(const char *p, const char *end);
static const char *pred_json_check_literal(const char *p, const char *end,
    const char *lit, size_t len);
static int pred_json_name_is(const char *start, const char *stop,
    const char *name, size_t name_len);
static int pred_json_element(const char *p, const char *end, size_t index,
    const char **start, const char **stop);
static const char *pred_json_member_value(const char *p, const char *end,
    const char **ne, int *escaped);
static int pred_json_member_is(const char *ns, const char *ne, int escaped,
    const char *name, size_t name_len);
static int pred_json_eq8(const char *a, const char *b);
static int pred_json_eq4(const char *a, const char *b);
static const char *pred_json_ws(const char *p, const char *end);
static const char *pred_json_value_end(const char *p, const char *end);
static const char *pred_json_string_end(const char *p, const char *end,
    int *escaped);


/* the bytes that end a number or a literal */
static const unsigned char  pred_json_scalar_end[256] = {
    [','] = 1, ['}'] = 1, [']'] = 1, [' '] = 1, ['\t'] = 1, ['\r'] = 1,
    ['\n'] = 1
};


int
pred_json_validate(const char *text, size_t len, size_t *where)
{
    char         stack[PRED_JSON_MAX_DEPTH];
    size_t       depth;
    const char  *p, *end, *token;

    p = text;
    end = text + len;
    depth = 0;

    /* states: expecting a value; after a value, "," or a closer */

value:

    p = pred_json_skip_ws(p, end);

    if (p == end) {
        goto bad;
    }

    token = p;

    switch (*p) {

    case '{':
    case '[':
        if (depth == sizeof(stack)) {
            goto bad;
        }

        stack[depth++] = *p++;
        p = pred_json_skip_ws(p, end);

        if (p < end && *p == (stack[depth - 1] == '{' ? '}' : ']')) {
            p++;
            depth--;
            goto after;
        }

        if (stack[depth - 1] == '{') {
            goto member;
        }

        goto value;

    case '"':
        p = pred_json_check_string(p, end);
        break;

    case 't':
        p = pred_json_check_literal(p, end, "true", 4);
        break;

    case 'f':
        p = pred_json_check_literal(p, end, "false", 5);
        break;

    case 'n':
        p = pred_json_check_literal(p, end, "null", 4);
        break;

    default:
        p = pred_json_number(p, end);
    }

    if (p == NULL) {
        p = token;
        goto bad;
    }

after:

    p = pred_json_skip_ws(p, end);

    if (depth == 0) {
        if (p == end) {
            return 0;
        }

        goto bad;
    }

    if (p == end) {
        goto bad;
    }

    if (*p == ',') {
        p++;

        if (stack[depth - 1] == '{') {
            p = pred_json_skip_ws(p, end);
            goto member;
        }

        goto value;
    }

    if (*p == (stack[depth - 1] == '{' ? '}' : ']')) {
        p++;
        depth--;
        goto after;
    }

    goto bad;

member:

    /* "name" : */
    if (p == end || *p != '"') {
        goto bad;
    }

    token = p;

    p = pred_json_check_string(p, end);
    if (p == NULL) {
        p = token;
        goto bad;
    }

    p = pred_json_skip_ws(p, end);

    if (p == end || *p != ':') {
        goto bad;
    }

    p++;
    goto value;

bad:

    *where = p - text;

    return -1;
}


/* past the closing quote of a valid string at p, or NULL */
static const char *
pred_json_check_string(const char *p, const char *end)
{
    int             i;
    unsigned char   c;

    for (p++; p < end; ) {
        c = (unsigned char) *p;

        if (c == '"') {
            return p + 1;
        }

        if (c < 0x20) {
            return NULL;
        }

        if (c == '\\') {
            if (end - p < 2) {
                return NULL;
            }

            switch (p[1]) {
            case '"': case '\\': case '/': case 'b':
            case 'f': case 'n': case 'r': case 't':
                p += 2;
                continue;

            case 'u':
                if (end - p < 6) {
                    return NULL;
                }

                for (i = 2; i < 6; i++) {
                    c = (unsigned char) p[i];
                    if (!((c >= '0' && c <= '9') || ((c | 0x20) >= 'a'
                                                     && (c | 0x20) <= 'f')))
                    {
                        return NULL;
                    }
                }

                p += 6;
                continue;
            }

            return NULL;
        }

        if (c < 0x80) {
            p++;
            continue;
        }

        p = pred_json_utf8(p, end);

        if (p == NULL) {
            return NULL;
        }
    }

    return NULL;
}


/*
 * Past the UTF-8 sequence at p, or NULL: a lead byte and its continuation
 * bytes, no overlong forms, no surrogates, nothing past U+10FFFF (the
 * rules jansson's reader has too).
 */
const char *
pred_json_utf8(const char *p, const char *end)
{
    int            i, n;
    unsigned char  c, c1;

    c = (unsigned char) *p;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 1;

    } else if (c >= 0xe0 && c <= 0xef) {
        n = 2;

    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 3;

    } else {
        return NULL;
    }

    if (end - p <= n) {
        return NULL;
    }

    for (i = 1; i <= n; i++) {
        if (((unsigned char) p[i] & 0xc0) != 0x80) {
            return NULL;
        }
    }

    c1 = (unsigned char) p[1];

    if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 > 0x9f)
        || (c == 0xf0 && c1 < 0x90) || (c == 0xf4 && c1 > 0x8f))
    {
        return NULL;
    }

    return p + n + 1;
}


/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
const char *
pred_json_number(const char *p, const char *end)
{
    const char  *s;

    if (p < end && *p == '-') {
        p++;
    }

    if (p == end) {
        return NULL;
    }

    if (*p == '0') {
        p++;

    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }

    } else {
        return NULL;
    }

    if (p < end && *p == '.') {
        s = ++p;
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }

        if (p == s) {
            return NULL;
        }
    }

    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;

        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }

        s = p;
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }

        if (p == s) {
            return NULL;
        }
    }

    return p;
}


static const char *
pred_json_check_literal(const char *p, const char *end, const char *lit,
    size_t len)
{
    if ((size_t) (end - p) < len || memcmp(p, lit, len) != 0) {
        return NULL;
    }

    return p + len;
}


size_t
pred_json_compact(const char *src, size_t len, char *dst)
{
    char        *d;
    const char  *p, *end, *s;

    d = dst;
    p = src;
    end = src + len;

    while (p < end) {
        if (*p == '"') {
            s = pred_json_skip_string(p, end);
            memmove(d, p, s - p);
            d += s - p;
            p = s;
            continue;
        }

        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            *d++ = *p;
        }

        p++;
    }

    return d - dst;
}


const char *
pred_json_skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
        p++;
    }

    return p;
}


const char *
pred_json_skip_value(const char *p, const char *end)
{
    int  depth;

    if (p < end && *p == '"') {
        return pred_json_skip_string(p, end);
    }

    if (p < end && (*p == '{' || *p == '[')) {
        depth = 0;

        while (p < end) {
            if (*p == '"') {
                p = pred_json_skip_string(p, end);
                continue;
            }

            if (*p == '{' || *p == '[') {
                depth++;

            } else if (*p == '}' || *p == ']') {
                if (--depth == 0) {
                    return p + 1;
                }
            }

            p++;
        }

        return end;
    }

    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' '
           && *p != '\t' && *p != '\r' && *p != '\n')
    {
        p++;
    }

    return p;
}


int
pred_json_member(const char *p, const char *end, const char *name,
    size_t name_len, const char **start, const char **stop)
{
    const char  *ns, *ne, *vs, *ve;

    p = pred_json_skip_ws(p, end);
    if (p == end || *p != '{') {
        return -1;
    }

    p = pred_json_skip_ws(p + 1, end);
    if (p < end && *p == '}') {
        return -1;
    }

    for ( ;; ) {
        if (p == end || *p != '"') {
            return -1;
        }

        ns = p;
        ne = pred_json_skip_string(p, end);

        p = pred_json_skip_ws(ne, end);
        if (p == end || *p != ':') {
            return -1;
        }

        vs = pred_json_skip_ws(p + 1, end);
        ve = pred_json_skip_value(vs, end);

        if (pred_json_name_is(ns, ne, name, name_len)) {
            *start = vs;
            *stop = ve;
            return 0;
        }

        p = pred_json_skip_ws(ve, end);
        if (p == end || *p != ',') {
            return -1;
        }

        p = pred_json_skip_ws(p + 1, end);
    }
}


int
pred_json_members(const char *p, const char *end,
    const pred_json_name_t *names, size_t n, const char **starts,
    const char **stops)
{
    size_t       i, found;
    const char  *ns, *ne, *vs, *ve;

    for (i = 0; i < n; i++) {
        starts[i] = NULL;
    }

    found = 0;

    p = pred_json_skip_ws(p, end);
    if (p == end || *p != '{') {
        return -1;
    }

    p = pred_json_skip_ws(p + 1, end);

    while (p < end && *p == '"') {
        ns = p;
        ne = pred_json_skip_string(p, end);

        p = pred_json_skip_ws(ne, end);
        if (p == end || *p != ':') {
            return -1;
        }

        vs = pred_json_skip_ws(p + 1, end);
        ve = pred_json_skip_value(vs, end);

        for (i = 0; i < n; i++) {
            if (starts[i] == NULL
                && pred_json_name_is(ns, ne, names[i].name, names[i].len))
            {
                starts[i] = vs;
                stops[i] = ve;

                /* the rest of the object does not matter */
                if (++found == n) {
                    return 0;
                }
            }
        }

        p = pred_json_skip_ws(ve, end);
        if (p < end && *p == ',') {
            p = pred_json_skip_ws(p + 1, end);
        }
    }

    return 0;
}


int
pred_json_pointer(const char *json, size_t len, const char *ptr,
    size_t ptr_len, const char **start, const char **stop)
{
    char         token[PRED_JSON_TOKEN_MAX];
    size_t       i, n, index;
    const char  *p, *end, *q, *qend;

    p = pred_json_skip_ws(json, json + len);
    end = json + len;
    q = ptr;
    qend = ptr + ptr_len;

    if (q < qend && *q != '/') {
        return -1;
    }

    while (q < qend) {

        /* the next reference token, unescaped */
        for (q++, n = 0; q < qend && *q != '/'; q++) {
            if (n == sizeof(token)) {
                return -1;
            }

            if (*q == '~') {
                if (q + 1 == qend || (q[1] != '0' && q[1] != '1')) {
                    return -1;
                }

                token[n++] = (q[1] == '1') ? '/' : '~';
                q++;
                continue;
            }

            token[n++] = *q;
        }

        if (p < end && *p == '{') {
            if (pred_json_member(p, end, token, n, &p, &end) != 0) {
                return -1;
            }

            continue;
        }

        if (p < end && *p == '[') {
            /* an array index: digits, no leading zero */
            if (n == 0 || n > 9 || (n > 1 && token[0] == '0')) {
                return -1;
            }

            for (index = 0, i = 0; i < n; i++) {
                if (token[i] < '0' || token[i] > '9') {
                    return -1;
                }

                index = index * 10 + (token[i] - '0');
            }

            if (pred_json_element(p, end, index, &p, &end) != 0) {
                return -1;
            }

            continue;
        }

        return -1;
    }

    *start = p;
    *stop = pred_json_skip_value(p, end);

    return 0;
}


int
pred_json_array(const char *p, const char *end, const char **starts,
    const char **stops, size_t max, size_t *n)
{
    size_t  i;

    p = pred_json_skip_ws(p, end);
    if (p == end || *p != '[') {
        return -1;
    }

    p = pred_json_skip_ws(p + 1, end);

    for (i = 0; p < end && *p != ']'; i++) {
        if (i == max) {
            return -1;
        }

        starts[i] = p;
        stops[i] = pred_json_skip_value(p, end);

        p = pred_json_skip_ws(stops[i], end);

        if (p < end && *p == ',') {
            p = pred_json_skip_ws(p + 1, end);
        }
    }

    *n = i;

    return 0;
}


static int
pred_json_element(const char *p, const char *end, size_t index,
    const char **start, const char **stop)
{
    size_t       i;
    const char  *ve;

    p = pred_json_skip_ws(p + 1, end);
    if (p < end && *p == ']') {
        return -1;
    }

    for (i = 0; ; i++) {
        ve = pred_json_skip_value(p, end);

        if (i == index) {
            *start = p;
            *stop = ve;
            return 0;
        }

        p = pred_json_skip_ws(ve, end);
        if (p == end || *p != ',') {
            return -1;
        }

        p = pred_json_skip_ws(p + 1, end);
    }
}


/* a raw member name token (with quotes) against a decoded name */
static int
pred_json_name_is(const char *start, const char *stop, const char *name,
    size_t name_len)
{
    int      eq;
    size_t   len;
    json_t  *s;

    len = stop - start - 2;

    if (memchr(start + 1, '\\', len) == NULL) {
        return len == name_len && memcmp(start + 1, name, len) == 0;
    }

    /* an escaped name is rare: let jansson decode it */
    s = json_loadb(start, stop - start, JSON_DECODE_ANY, NULL);
    eq = json_is_string(s) && json_string_length(s) == name_len
         && memcmp(json_string_value(s), name, name_len) == 0;
    json_decref(s);

    return eq;
}


/* p points at the opening quote; returns just past the closing one */
static const char *
pred_json_skip_string(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\') {
            p++;

        } else if (*p == '"') {
            return p + 1;
        }
    }

    return end;
}


const char *
pred_json_object(const char *p, const char *end,
    const pred_json_name_t *names, size_t n, const char **starts,
    const char **stops)
{
    int          escaped;
    size_t       i, len, found;
    const char  *ns, *ne, *vs;

    for (i = 0; i < n; i++) {
        starts[i] = NULL;
    }

    found = 0;

    p = pred_json_ws(p, end);
    if (p == end || *p != '{') {
        return NULL;
    }

    p = pred_json_ws(p + 1, end);
    if (p < end && *p == '}') {
        return p + 1;
    }

    for ( ;; ) {
        ns = p;

        vs = pred_json_member_value(p, end, &ne, &escaped);
        if (vs == NULL) {
            return NULL;
        }

        p = pred_json_value_end(vs, end);

        for (i = 0, len = ne - ns - 2; found < n && i < n; i++) {
            if ((names[i].len == len || escaped) && starts[i] == NULL
                && pred_json_member_is(ns, ne, escaped, names[i].name,
                                       names[i].len))
            {
                starts[i] = vs;
                stops[i] = p;
                found++;
            }
        }

        p = pred_json_ws(p, end);

        if (p == end) {
            return NULL;
        }

        if (*p == '}') {
            return p + 1;
        }

        if (*p != ',') {
            return NULL;
        }

        p = pred_json_ws(p + 1, end);
    }
}


const char *
pred_json_member_start(const char *p, const char *end, const char *name,
    size_t name_len)
{
    int          escaped;
    const char  *ns, *ne, *vs;

    p = pred_json_ws(p, end);
    if (p == end || *p != '{') {
        return NULL;
    }

    p = pred_json_ws(p + 1, end);

    for ( ;; ) {
        ns = p;

        vs = pred_json_member_value(p, end, &ne, &escaped);
        if (vs == NULL) {
            return NULL;
        }

        if (pred_json_member_is(ns, ne, escaped, name, name_len)) {
            return vs;
        }

        p = pred_json_ws(pred_json_value_end(vs, end), end);
        if (p == end || *p != ',') {
            return NULL;
        }

        p = pred_json_ws(p + 1, end);
    }
}


/*
 * The member whose name's opening quote is at p: past its closing quote in
 * *ne, *escaped when the name has a backslash; returns the first byte of
 * the value, or NULL when p is not at a member.  One read of the name: it
 * is compared afterwards without looking for escapes again.
 */
static inline const char *
pred_json_member_value(const char *p, const char *end, const char **ne,
    int *escaped)
{
    *escaped = 0;

    if (p == end || *p != '"') {
        return NULL;
    }

    p = pred_json_string_end(p, end, escaped);
    if (p == NULL) {
        return NULL;
    }

    *ne = p;

    p = pred_json_ws(p, end);
    if (p == end || *p != ':') {
        return NULL;
    }

    p = pred_json_ws(p + 1, end);

    return (p == end) ? NULL : p;
}


/* a raw member name (with quotes) against a decoded name, escapes known */
static inline int
pred_json_member_is(const char *ns, const char *ne, int escaped,
    const char *name, size_t name_len)
{
    if (escaped) {
        return pred_json_name_is(ns, ne, name, name_len);
    }

    if ((size_t) (ne - ns - 2) != name_len) {
        return 0;
    }

    ns++;

    /*
     * Names are short: a call to memcmp, or a loop that ends after a
     * different count of bytes for each name, costs more than comparing
     * the first and the last (overlapping) 2, 4 or 8 bytes.
     */
    if (name_len >= 8 && name_len <= 16) {
        return pred_json_eq8(ns, name) && pred_json_eq8(ns + name_len - 8,
                                                        name + name_len - 8);
    }

    if (name_len >= 4 && name_len < 8) {
        return pred_json_eq4(ns, name) && pred_json_eq4(ns + name_len - 4,
                                                        name + name_len - 4);
    }

    if (name_len >= 2 && name_len < 4) {
        return ns[0] == name[0] && ns[1] == name[1]
               && ns[name_len - 1] == name[name_len - 1];
    }

    return memcmp(ns, name, name_len) == 0;
}


static inline int
pred_json_eq8(const char *a, const char *b)
{
    uint64_t  x, y;

    memcpy(&x, a, 8);
    memcpy(&y, b, 8);

    return x == y;
}


static inline int
pred_json_eq4(const char *a, const char *b)
{
    uint32_t  x, y;

    memcpy(&x, a, 4);
    memcpy(&y, b, 4);

    return x == y;
}


/*
 * pred_json_skip_ws and pred_json_skip_value for the per-item scanners,
 * where a call per member (through the PLT, in a shared object) cost more
 * than the bytes it reads: strings and scalars here, containers there.
 */
static inline const char *
pred_json_ws(const char *p, const char *end)
{
    /* one test for the usual byte: values are stored compacted */
    while (p < end && (unsigned char) *p <= ' '
           && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
    {
        p++;
    }

    return p;
}


static inline const char *
pred_json_value_end(const char *p, const char *end)
{
    int          escaped;
    const char  *e;

    if (*p == '"') {
        e = pred_json_string_end(p, end, &escaped);
        return (e == NULL) ? end : e;
    }

    if (*p == '{' || *p == '[') {
        return pred_json_skip_value(p, end);
    }

    while (p < end && !pred_json_scalar_end[(unsigned char) *p]) {
        p++;
    }

    return p;
}


/*
 * Past the closing quote of the string at p, or NULL when it has none;
 * *escaped set when it has a backslash.  With SSE2 (every x86-64), 16
 * bytes are compared with '"' and '\\' at once and the lowest bit of the
 * two masks is the first of either: a short string costs one step, not a
 * loop that ends after a different count of bytes each time.
 */
static inline const char *
pred_json_string_end(const char *p, const char *end, int *escaped)
{
#if (__SSE2__)
    int      m, q;
    __m128i  w;

    for (p++; end - p >= 16; ) {
        w = _mm_loadu_si128((const __m128i *) p);
        q = _mm_movemask_epi8(_mm_cmpeq_epi8(w, _mm_set1_epi8('"')));
        m = q | _mm_movemask_epi8(_mm_cmpeq_epi8(w, _mm_set1_epi8('\\')));

        if (m == 0) {
            p += 16;
            continue;
        }

        /* the first quote or backslash */
        p += __builtin_ctz(m);

        if (q & m & -m) {
            return p + 1;
        }

        /* a backslash: it and the byte it escapes */
        *escaped = 1;

        if (end - p < 2) {
            return NULL;
        }

        p += 2;
    }
#else
    p++;
#endif

    for ( /* void */ ; p < end; p++) {
        if (*p == '"') {
            return p + 1;
        }

        if (*p == '\\') {
            *escaped = 1;

            if (++p == end) {
                return NULL;
            }
        }
    }

    return NULL;
}
