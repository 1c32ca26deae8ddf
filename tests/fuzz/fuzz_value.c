/*
 * A snapshot value's verdict in verify: the fast path (the scanner, jansson
 * only where they could differ) must say exactly what jansson's
 * json_loadb() says, on any bytes.
 */

#include <stdint.h>
#include <stdlib.h>

#include <jansson.h>

#include "pred_snap.h"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int           fast;
    char          why[160];
    json_t       *json;
    json_error_t  err;

    fast = pred_snap_value_valid((const char *) data, size, why, sizeof(why));
    json = json_loadb((const char *) data, size, JSON_DECODE_ANY, &err);

    if ((fast == 0) != (json != NULL)) {
        abort();
    }

    json_decref(json);

    return 0;
}
