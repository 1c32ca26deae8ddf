/*
 * A state file as nginx reads it at start (any bytes): the header, then
 * records up to the end, a cut, or damage.  Nothing is read past the
 * bytes; a record that decodes lies inside them, has a valid key when it
 * is an entry, and encodes back to the very same bytes.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pred_key.h"
#include "pred_state.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                rc, h;
    char              *text, *again, err[128];
    size_t             n;
    uint64_t           gen;
    const char        *p, *end, *at;
    pred_state_rec_t   rec;

    /* an exact-size copy: a byte read past it is caught */
    text = malloc(size ? size : 1);
    if (text == NULL) {
        return 0;
    }

    memcpy(text, data, size);

    p = text;
    end = text + size;

    h = pred_state_parse_header(p, size, "journal", &gen);
    if (h < 0) {
        h = pred_state_parse_header(p, size, "checkpoint", &gen);
    }

    if (h > 0) {
        if ((size_t) h > size || text[h - 1] != '\n') {
            abort();
        }

        p += h;
    }

    for ( ;; ) {
        at = p;
        rc = pred_state_next(&p, end, &rec, err, sizeof(err));

        if (rc != PRED_STATE_OK) {
            if (p != at || (rc == PRED_STATE_CORRUPT && err[0] == '\0')) {
                abort();
            }

            break;
        }

        n = pred_state_size(rec.key_len, rec.value_len);

        if (p != at + n || p > end || rec.key != at + PRED_STATE_FIXED
            || (rec.type == PRED_STATE_ENTRY
                && pred_key_validate((const unsigned char *) rec.key,
                                     rec.key_len) != PRED_KEY_OK))
        {
            abort();
        }

        again = malloc(n);
        if (again == NULL) {
            break;
        }

        if (pred_state_encode(&rec, again) != n
            || memcmp(again, at, n) != 0)
        {
            abort();
        }

        free(again);
    }

    free(text);

    return 0;
}
