/*
 * The model's answer as the miss path reads it: the strict validator on any
 * bytes, then, on what it accepts, JSON pointer extraction (the first line
 * of the input is the pointer) and the raw member and array scanners.
 * Whatever they point at must lie inside the text and be valid JSON.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pred_json.h"


static void
pred_fuzz_span(const char *text, size_t len, const char *s, const char *e)
{
    size_t  where;

    if (s < text || e > text + len || s >= e
        || pred_json_validate(s, e - s, &where) != 0)
    {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char               *copy, *out;
    size_t              plen, len, where, n, i;
    const char         *text, *ptr, *nl, *s, *e, *p;
    const char         *starts[16], *stops[16];
    const char         *ms[2], *me[2];
    pred_json_name_t    names[2] = { { "id", 2 }, { "score", 5 } };

    nl = memchr(data, '\n', size);
    if (nl == NULL) {
        return 0;
    }

    ptr = (const char *) data;
    plen = nl - ptr;
    len = size - plen - 1;

    /* an exact-size copy, so a read past the end is caught */
    copy = malloc(len ? len : 1);
    if (copy == NULL) {
        return 0;
    }

    memcpy(copy, nl + 1, len);
    text = copy;

    if (pred_json_validate(text, len, &where) != 0) {
        if (where > len) {
            abort();
        }

        free(copy);
        return 0;
    }

    if (pred_json_pointer(text, len, ptr, plen, &s, &e) == 0) {
        pred_fuzz_span(text, len, s, e);
    }

    p = pred_json_skip_ws(text, text + len);

    if (pred_json_members(p, text + len, names, 2, ms, me) == 0) {
        for (i = 0; i < 2; i++) {
            if (ms[i]) {
                pred_fuzz_span(text, len, ms[i], me[i]);
            }
        }
    }

    if (pred_json_array(p, text + len, starts, stops, 16, &n) == 0) {
        for (i = 0; i < n; i++) {
            pred_fuzz_span(text, len, starts[i], stops[i]);
        }
    }

    out = malloc(len ? len : 1);
    if (out == NULL) {
        free(copy);
        return 0;
    }

    n = pred_json_compact(text, len, out);
    if (n > len || pred_json_validate(out, n, &where) != 0) {
        abort();
    }

    free(out);
    free(copy);

    return 0;
}
