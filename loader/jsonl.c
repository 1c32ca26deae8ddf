/*
 * JSON Lines records: jansson validates each line strictly; the value is
 * then copied from the line's own bytes, compacted, rather than
 * re-serialised, because jansson prints 0.1 as 0.10000000000000001.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "pred_key.h"
#include "pred_snap.h"
#include "pred_json.h"
#include "jsonl.h"


static int pred_jsonl_checks(json_t *value, const pred_jsonl_opts_t *opts,
    char *err, size_t errlen);


int
pred_jsonl_parse(const char *line, size_t len, const pred_jsonl_opts_t *opts,
    pred_buf_t *key, pred_buf_t *value, char *err, size_t errlen)
{
    int            rc;
    char           num[32];
    size_t         klen;
    json_t        *root, *k, *v;
    const char    *kstr, *start, *stop;
    pred_key_rc_t  krc;
    json_error_t   jerr;

    root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        return pred_snap_errorf(err, errlen, "invalid JSON at column %d: %s",
                               jerr.column, jerr.text);
    }

    rc = -1;

    if (!json_is_object(root)) {
        pred_snap_errorf(err, errlen, "line is not a JSON object");
        goto done;
    }

    k = json_object_get(root, opts->key_field);

    if (json_is_string(k)) {
        kstr = json_string_value(k);
        klen = json_string_length(k);

    } else if (json_is_integer(k)) {
        klen = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
                        json_integer_value(k));
        kstr = num;

    } else {
        pred_snap_errorf(err, errlen, "field \"%s\" is %s, not a string",
                        opts->key_field, k ? "of another type" : "missing");
        goto done;
    }

    krc = pred_key_validate((const unsigned char *) kstr, klen);
    if (krc != PRED_KEY_OK) {
        pred_snap_errorf(err, errlen, "invalid key: %s",
                         pred_key_strerror(krc));
        goto done;
    }

    v = json_object_get(root, opts->value_field);

    if (v == NULL || json_is_null(v)) {
        pred_snap_errorf(err, errlen, "field \"%s\" is %s", opts->value_field,
                        v ? "null" : "missing");
        goto done;
    }

    if (pred_jsonl_checks(v, opts, err, errlen) != 0) {
        goto done;
    }

    if (pred_json_member(line, line + len, opts->value_field,
                         strlen(opts->value_field), &start, &stop) != 0)
    {
        pred_snap_errorf(err, errlen, "field \"%s\" not found in the line",
                        opts->value_field);
        goto done;
    }

    if (pred_buf_reserve(key, klen) != 0 || pred_buf_reserve(value,
                                                             stop - start)
        != 0)
    {
        pred_snap_errorf(err, errlen, "out of memory");
        goto done;
    }

    memcpy(key->data, kstr, klen);
    key->len = klen;

    value->len = pred_json_compact(start, stop - start, value->data);

    rc = 0;

done:

    json_decref(root);

    return rc;
}


int
pred_jsonl_parse_range(const char *spec, pred_jsonl_range_t *r)
{
    char        *end;
    const char  *c1, *c2;

    c2 = strrchr(spec, ':');
    if (c2 == NULL || c2 == spec) {
        return -1;
    }

    for (c1 = c2 - 1; c1 > spec && *c1 != ':'; c1--) { /* void */ }

    if (*c1 != ':' || c1 == spec) {
        return -1;
    }

    r->min = strtod(c1 + 1, &end);
    if (end != c2 || end == c1 + 1) {
        return -1;
    }

    r->max = strtod(c2 + 1, &end);
    if (*end != '\0' || end == c2 + 1 || r->min > r->max) {
        return -1;
    }

    r->field = strndup(spec, c1 - spec);

    return r->field ? 0 : -1;
}


static int
pred_jsonl_checks(json_t *value, const pred_jsonl_opts_t *opts, char *err,
    size_t errlen)
{
    size_t   i;
    double   d;
    json_t  *f;

    if ((opts->nrequire || opts->nranges) && !json_is_object(value)) {
        return pred_snap_errorf(err, errlen, "field \"%s\" is not an object, "
                               "so it has no fields to check",
                               opts->value_field);
    }

    for (i = 0; i < opts->nrequire; i++) {
        if (json_object_get(value, opts->require[i]) == NULL) {
            return pred_snap_errorf(err, errlen, "value has no field \"%s\" "
                                   "(--require-field)", opts->require[i]);
        }
    }

    for (i = 0; i < opts->nranges; i++) {
        f = json_object_get(value, opts->ranges[i].field);

        if (!json_is_number(f)) {
            return pred_snap_errorf(err, errlen, "value field \"%s\" is %s, "
                                   "not a number (--range)",
                                   opts->ranges[i].field,
                                   f ? "of another type" : "missing");
        }

        d = json_number_value(f);

        if (d < opts->ranges[i].min || d > opts->ranges[i].max) {
            return pred_snap_errorf(err, errlen, "value field \"%s\" is %g, "
                                   "outside [%g, %g] (--range)",
                                   opts->ranges[i].field, d,
                                   opts->ranges[i].min, opts->ranges[i].max);
        }
    }

    return 0;
}
