/*
 * The delta layers pointer's text as workers read it (readlink, any
 * bytes): parsing reads nothing past it; what parses is a base file and 1
 * to PRED_DELTA_MAX distinct delta files, every name ours (no "/", the
 * right prefix, ".mdb"), and writing it back gives the same text.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pred_delta.h"


static void
pred_fuzz_name(const char *file, const char *prefix)
{
    size_t  len, plen;

    len = strlen(file);
    plen = strlen(prefix);

    if (len <= plen + 4 || len >= PRED_DELTA_FILE_MAX
        || strchr(file, '/') != NULL || strchr(file, '+') != NULL
        || strncmp(file, prefix, plen) != 0
        || strcmp(file + len - 4, ".mdb") != 0)
    {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                *text, buf[PRED_DELTA_LINK_MAX];
    size_t               i, j;
    pred_delta_stack_t   st, back;

    /* an exact-size copy: a byte read past it is caught */
    text = malloc(size ? size : 1);
    if (text == NULL) {
        return 0;
    }

    memcpy(text, data, size);

    if (pred_delta_parse_link(text, size, &st) == 0) {
        if (st.n == 0 || st.n > PRED_DELTA_MAX) {
            abort();
        }

        pred_fuzz_name(st.base, "snap-");

        for (i = 0; i < st.n; i++) {
            pred_fuzz_name(st.layer[i], "delta-");

            for (j = 0; j < i; j++) {
                if (strcmp(st.layer[i], st.layer[j]) == 0) {
                    abort();
                }
            }
        }

        if (pred_delta_format_link(&st, buf, sizeof(buf)) != 0
            || strlen(buf) != size || memcmp(buf, text, size) != 0
            || pred_delta_parse_link(buf, size, &back) != 0
            || memcmp(&st, &back, sizeof(st)) != 0)
        {
            abort();
        }
    }

    free(text);

    return 0;
}
