/*
 * The shaping arguments: any bytes as a request's query string.  What
 * parses must point into the decode buffer and keep the documented limits.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pred_filter.h"


static void
pred_fuzz_in(const char *buf, size_t size, pred_span_t *s)
{
    if (s->data < buf || s->data + s->len > buf + size) {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                  bad;
    char                *buf;
    size_t               i;
    const char          *reason;
    pred_filter_args_t   a;
    static pred_span_t   names[PRED_FILTER_NARGS] = {
        { "where", 5 }, { "exclude", 7 }, { "fields", 6 }, { "limit", 5 },
        { "min_score", 9 }
    };

    buf = malloc(size ? size : 1);
    if (buf == NULL) {
        return 0;
    }

    if (pred_filter_parse((const char *) data, size, names, buf, &a, &bad,
                          &reason)
        != 0)
    {
        if (bad < 0 || bad >= PRED_FILTER_NARGS || reason == NULL) {
            abort();
        }

        free(buf);
        return 0;
    }

    if (a.nwhere > PRED_FILTER_MAX_ARGS || a.nexclude > PRED_FILTER_MAX_ARGS
        || a.nfields > PRED_FILTER_MAX_ARGS
        || (a.has_min_score && a.min_score != a.min_score))
    {
        abort();
    }

    for (i = 0; i < a.nwhere; i++) {
        pred_fuzz_in(buf, size, &a.where_field[i]);
        pred_fuzz_in(buf, size, &a.where_value[i]);

        if (!pred_filter_plain_name(a.where_field[i].data,
                                    a.where_field[i].len))
        {
            abort();
        }
    }

    for (i = 0; i < a.nexclude; i++) {
        pred_fuzz_in(buf, size, &a.exclude[i]);
    }

    for (i = 0; i < a.nfields; i++) {
        pred_fuzz_in(buf, size, &a.fields[i]);

        if (!pred_filter_plain_name(a.fields[i].data, a.fields[i].len)) {
            abort();
        }
    }

    free(buf);

    return 0;
}
