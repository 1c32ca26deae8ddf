/*
 * The delta layers' pointer text (see pred_delta.h).
 */

#include <string.h>

#include "pred_delta.h"
#include "pred_snap.h"


int
pred_delta_file_version(const char *file, size_t len, const char *prefix,
    char *buf)
{
    size_t  plen, vlen;

    plen = strlen(prefix);

    if (len <= plen + 4 || strncmp(file, prefix, plen) != 0
        || memcmp(file + len - 4, ".mdb", 4) != 0)
    {
        return -1;
    }

    vlen = len - plen - 4;

    if (vlen > PRED_SNAP_VERSION_MAX) {
        return -1;
    }

    memcpy(buf, file + plen, vlen);
    buf[vlen] = '\0';

    /* a NUL inside would end the version early */
    if (strlen(buf) != vlen) {
        return -1;
    }

    return pred_snap_valid_version(buf) ? 0 : -1;
}


int
pred_delta_parse_link(const char *text, size_t len,
    pred_delta_stack_t *stack)
{
    char         version[PRED_SNAP_VERSION_MAX + 1];
    size_t       n, i;
    const char  *p, *end, *plus;

    memset(stack, 0, sizeof(pred_delta_stack_t));

    p = text;
    end = text + len;

    for (n = 0; p <= end; n++) {
        plus = memchr(p, '+', end - p);
        if (plus == NULL) {
            plus = end;
        }

        /* the base first, then 1 to PRED_DELTA_MAX deltas */
        if (n > PRED_DELTA_MAX) {
            return -1;
        }

        if (pred_delta_file_version(p, plus - p, n ? "delta-" : "snap-",
                                    version) != 0)
        {
            return -1;
        }

        if (n == 0) {
            memcpy(stack->base, p, plus - p);
            stack->base[plus - p] = '\0';

        } else {
            memcpy(stack->layer[n - 1], p, plus - p);
            stack->layer[n - 1][plus - p] = '\0';

            /* a delta stacked twice would be a publish gone wrong */
            for (i = 0; i + 1 < n; i++) {
                if (strcmp(stack->layer[i], stack->layer[n - 1]) == 0) {
                    return -1;
                }
            }
        }

        p = plus + 1;
    }

    if (n < 2) {
        return -1;
    }

    stack->n = n - 1;

    return 0;
}


int
pred_delta_format_link(const pred_delta_stack_t *stack, char *buf,
    size_t size)
{
    size_t  i, len, need;

    len = strlen(stack->base);

    if (stack->n == 0 || stack->n > PRED_DELTA_MAX || len + 1 > size) {
        return -1;
    }

    memcpy(buf, stack->base, len + 1);

    for (i = 0; i < stack->n; i++) {
        need = strlen(stack->layer[i]);

        if (len + 1 + need + 1 > size) {
            return -1;
        }

        buf[len++] = '+';
        memcpy(buf + len, stack->layer[i], need + 1);
        len += need;
    }

    return 0;
}
