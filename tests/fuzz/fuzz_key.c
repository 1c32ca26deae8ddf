/*
 * Key decoding and validation: any bytes as a request's key argument.
 * A key that decodes must satisfy every rule the module relies on.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pred_key.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t          i, len;
    unsigned char  *dst;
    pred_key_rc_t   rc;

    dst = malloc(size ? size : 1);
    if (dst == NULL) {
        return 0;
    }

    rc = pred_key_decode(data, size, dst, &len);

    if (rc == PRED_KEY_OK) {
        if (len == 0 || len > size || len > PRED_KEY_MAX_LEN
            || pred_key_validate(dst, len) != PRED_KEY_OK)
        {
            abort();
        }

        for (i = 0; i < len; i++) {
            if (dst[i] < 0x20 || dst[i] == 0x7f) {
                abort();
            }
        }
    }

    if (pred_key_strerror(rc) == NULL
        || pred_key_strerror(pred_key_validate(data, size)) == NULL)
    {
        abort();
    }

    free(dst);

    return 0;
}
