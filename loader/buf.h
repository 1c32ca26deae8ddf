/*
 * A growable byte buffer: the parser's key and value, the sort's records
 * read back from a run.  Plain C.
 */

#ifndef PRED_BUF_H
#define PRED_BUF_H

#include <stddef.h>


typedef struct {
    char    *data;
    size_t   len;
    size_t   size;
} pred_buf_t;


/* Makes room for n bytes in all; 0 or -1 (out of memory). */
int pred_buf_reserve(pred_buf_t *b, size_t n);

void pred_buf_free(pred_buf_t *b);

#endif /* PRED_BUF_H */
