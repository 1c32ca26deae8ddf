/*
 * Raw JSON text helpers.  The input is known to be valid JSON, which keeps
 * these scanners small: they only track strings and nesting.
 */

#include <string.h>
#include <jansson.h>

#include "pred_json.h"


#define PRED_JSON_TOKEN_MAX  256


static const char *pred_json_skip_string(const char *p, const char *end);
static int pred_json_name_is(const char *start, const char *stop,
    const char *name, size_t name_len);
static int pred_json_element(const char *p, const char *end, size_t index,
    const char **start, const char **stop);


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
            memcpy(d, p, s - p);
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
