/*
 * Shaping a list: the input's first line is the query string, the rest
 * the value, valid JSON or not.  Whatever the bytes, shaping reads none
 * past the value (the fuzzer's AddressSanitizer watches) and writes no
 * more than the value's length.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pred_filter.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                   bad;
    char                 *buf, *value, *out;
    size_t                qlen, len, n;
    const char           *nl, *reason;
    pred_filter_args_t    a;
    static pred_span_t    names[PRED_FILTER_NARGS] = {
        { "where", 5 }, { "exclude", 7 }, { "fields", 6 }, { "limit", 5 },
        { "min_score", 9 }
    };
    static pred_filter_names_t  members = {
        { "items", 5 }, { "id", 2 }, { "score", 5 }
    };

    nl = memchr(data, '\n', size);
    if (nl == NULL) {
        return 0;
    }

    qlen = nl - (const char *) data;
    len = size - qlen - 1;

    buf = malloc(qlen + 1);
    if (buf == NULL) {
        return 0;
    }

    if (pred_filter_parse((const char *) data, qlen, names, buf, &a, &bad,
                          &reason)
        != 0)
    {
        free(buf);
        return 0;
    }

    /* copies of their exact sizes: a byte past either is caught */
    value = malloc(len ? len : 1);
    out = malloc(len ? len : 1);

    if (value != NULL && out != NULL) {
        memcpy(value, nl + 1, len);

        if (pred_filter_shape(value, len, &members, &a, out, &n) == 0
            && n > len)
        {
            abort();
        }
    }

    free(value);
    free(out);
    free(buf);

    return 0;
}
