/*
 * A growable byte buffer.
 */

#include <stdlib.h>

#include "buf.h"


int
pred_buf_reserve(pred_buf_t *b, size_t n)
{
    char    *p;
    size_t   size;

    if (n <= b->size) {
        return 0;
    }

    size = b->size ? b->size : 256;
    while (size < n) {
        size *= 2;
    }

    p = realloc(b->data, size);
    if (p == NULL) {
        return -1;
    }

    b->data = p;
    b->size = size;

    return 0;
}


void
pred_buf_free(pred_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->size = 0;
}
