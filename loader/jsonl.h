/*
 * One JSON Lines record of a batch job's output: parsing and the sanity
 * checks that pred-snapshot build applies to every line.
 */

#ifndef PRED_JSONL_H
#define PRED_JSONL_H

#include <stddef.h>

#include "buf.h"


typedef struct {
    const char  *field;
    double       min;
    double       max;
} pred_jsonl_range_t;


typedef struct {
    const char          *key_field;      /* "key" */
    const char          *value_field;    /* "value" */
    const char         **require;        /* --require-field, top level */
    size_t               nrequire;
    pred_jsonl_range_t  *ranges;         /* --range F:MIN:MAX, top level */
    size_t               nranges;
    int                  deletes;        /* a delta's input: a line
                                            {"key":K,"delete":true} is a
                                            deletion, an empty value */
} pred_jsonl_opts_t;


/*
 * Parses one line (without its newline).  On success fills key with the key
 * bytes and value with the value's JSON exactly as written but without
 * insignificant white space, so numbers keep their original digits.
 * Returns 0, or -1 with the reason in err.
 */
int pred_jsonl_parse(const char *line, size_t len,
    const pred_jsonl_opts_t *opts, pred_buf_t *key, pred_buf_t *value,
    char *err, size_t errlen);

/* Where a record's key and value are in its line. */
typedef struct {
    const char  *key;
    size_t       klen;
    const char  *value;        /* as written */
    size_t       vlen;
    int          compact;      /* has white space to drop, outside strings */
} pred_jsonl_rec_t;


/*
 * The fast path of pred_jsonl_parse(): one pass over the line, no
 * allocation.  Returns 0 only for a line that pred_jsonl_parse_jansson()
 * accepts with the same key and value (the key's bytes are in the line:
 * a string without escapes, or an integer as jansson prints it); -1 for
 * every other line, valid or not, which pred_jsonl_parse() then hands to
 * jansson for the verdict and the message.
 */
int pred_jsonl_scan(const char *line, size_t len,
    const pred_jsonl_opts_t *opts, pred_jsonl_rec_t *rec);

/* The reference: jansson's DOM parse, as the loader always did it. */
int pred_jsonl_parse_jansson(const char *line, size_t len,
    const pred_jsonl_opts_t *opts, pred_buf_t *key, pred_buf_t *value,
    char *err, size_t errlen);

/* Parses "F:MIN:MAX"; 0 or -1. */
int pred_jsonl_parse_range(const char *spec, pred_jsonl_range_t *r);

#endif /* PRED_JSONL_H */
