/*
 * The shaping arguments of a request (?where=F:V&exclude=..&fields=..
 * &limit=N&min_score=X): parsed from the raw query string, shared by the
 * nginx module and its fuzz target.
 *
 * Plain C, no nginx types.
 */

#ifndef PRED_FILTER_H
#define PRED_FILTER_H

#include <stddef.h>


#define PRED_FILTER_MAX_ARGS  32


enum {
    PRED_FILTER_WHERE = 0,
    PRED_FILTER_EXCLUDE,
    PRED_FILTER_FIELDS,
    PRED_FILTER_LIMIT,
    PRED_FILTER_MIN_SCORE,
    PRED_FILTER_NARGS
};


typedef struct {
    const char  *data;
    size_t       len;
} pred_span_t;


typedef struct {
    pred_span_t  where_field[PRED_FILTER_MAX_ARGS];
    pred_span_t  where_value[PRED_FILTER_MAX_ARGS];
    size_t       nwhere;
    pred_span_t  exclude[PRED_FILTER_MAX_ARGS];
    size_t       nexclude;
    pred_span_t  fields[PRED_FILTER_MAX_ARGS];   /* once each */
    size_t       nfields;
    size_t       limit;
    double       min_score;
    unsigned     has_limit:1;
    unsigned     has_min_score:1;
} pred_filter_args_t;


/*
 * Parses the query string args (len bytes, undecoded).  names holds the
 * PRED_FILTER_NARGS argument names; buf has room for len bytes and keeps
 * the %-decoded values that out points into.  "where" may repeat and each
 * argument may list several comma-separated values; the others count once.
 * Field names (where, fields) are 1 to 64 of A-Z a-z 0-9 _ . -, so they
 * can be written back without escaping.  Returns 0, or -1 with the index of
 * the bad argument in *bad and why in *reason.
 */
int pred_filter_parse(const char *args, size_t len, const pred_span_t *names,
    char *buf, pred_filter_args_t *out, int *bad, const char **reason);

/* the members shaping reads: the list, and in its items the id and score */
typedef struct {
    pred_span_t  list;
    pred_span_t  id;
    pred_span_t  score;
} pred_filter_names_t;


/*
 * Shapes value (len bytes of valid JSON) by a: its list's items that pass
 * where, exclude and min_score, the first limit of them, each with only
 * fields (in their order) when asked.  Numbers and strings keep their
 * bytes; the rest of the value is copied as it is.  out has room for len
 * bytes (the result is never longer).  Returns 0 with the new length in
 * *out_len, or -1 when value is not an object with the list as an array
 * of objects: then it is to be served as it is.
 */
int pred_filter_shape(const char *value, size_t len,
    const pred_filter_names_t *names, const pred_filter_args_t *a,
    char *out, size_t *out_len);

/* whether name is a plain field name as above */
int pred_filter_plain_name(const char *name, size_t len);

#endif /* PRED_FILTER_H */
