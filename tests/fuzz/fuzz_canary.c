/*
 * The candidate pointer's text as workers read it (readlink, any bytes):
 * parsing reads nothing past it; what parses names a file of ours (no
 * "/", starting "snap-", ending ".mdb") and a share of at most 100%, and
 * writing it back gives text that parses to the same.  A percent that
 * parses is printed back to itself, and every key's bucket is in range.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pred_canary.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char      *text, file[PRED_CANARY_LINK_MAX], file2[PRED_CANARY_LINK_MAX];
    char       buf[PRED_CANARY_LINK_MAX], pct[16];
    size_t     flen;
    uint32_t   share, share2;

    if (pred_canary_bucket(data, size) >= PRED_CANARY_SCALE) {
        abort();
    }

    /* an exact-size copy: a byte read past it is caught */
    text = malloc(size ? size : 1);
    if (text == NULL) {
        return 0;
    }

    memcpy(text, data, size);

    if (pred_canary_parse_percent(text, size, &share) == 0) {
        if (share > PRED_CANARY_SCALE) {
            abort();
        }

        pred_canary_format_percent(pct, sizeof(pct), share);

        if (pred_canary_parse_percent(pct, strlen(pct), &share2) != 0
            || share2 != share)
        {
            abort();
        }
    }

    if (pred_canary_parse_link(text, size, file, &share) == 0) {
        flen = strlen(file);

        if (share > PRED_CANARY_SCALE || strchr(file, '/') != NULL
            || flen <= 9 || flen > 5 + 64 + 4
            || strncmp(file, "snap-", 5) != 0
            || strcmp(file + flen - 4, ".mdb") != 0)
        {
            abort();
        }

        file[flen - 4] = '\0';

        if (pred_canary_format_link(buf, sizeof(buf), file + 5, share) != 0
            || pred_canary_parse_link(buf, strlen(buf), file2, &share2) != 0
            || share2 != share || strncmp(file2, file, flen - 4) != 0)
        {
            abort();
        }
    }

    free(text);

    return 0;
}
