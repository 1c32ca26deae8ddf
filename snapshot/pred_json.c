/*
 * Raw JSON text helpers.  The input is known to be valid JSON, which keeps
 * these scanners small: they only track strings and nesting.
 */

#include <string.h>

#include "pred_json.h"


static const char *pred_json_skip_string(const char *p, const char *end);


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
