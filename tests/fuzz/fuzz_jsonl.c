/*
 * One JSON Lines record as pred-snapshot build reads it, with a required
 * field and a range check.  A record that parses must give a valid key and
 * a value that is valid, compact JSON.  A line the fast scanner accepts,
 * with or without the checks, jansson must accept too, with the same key
 * and value.  With deletions allowed (a delta's input), a record is a
 * valid key and a valid value or none.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pred_key.h"
#include "pred_json.h"
#include "jsonl.h"


static void
same_as_jansson(const uint8_t *data, size_t size,
    const pred_jsonl_opts_t *opts)
{
    char              err[256], *v;
    size_t            vlen;
    pred_buf_t        key, value;
    pred_jsonl_rec_t  rec;

    if (pred_jsonl_scan((const char *) data, size, opts, &rec) != 0) {
        return;
    }

    memset(&key, 0, sizeof(pred_buf_t));
    memset(&value, 0, sizeof(pred_buf_t));

    if (pred_jsonl_parse_jansson((const char *) data, size, opts, &key,
                                 &value, err, sizeof(err))
        != 0)
    {
        abort();
    }

    v = malloc(rec.vlen + 1);
    if (v == NULL) {
        abort();
    }

    vlen = pred_json_compact(rec.value, rec.vlen, v);

    if (rec.klen != key.len || memcmp(rec.key, key.data, key.len) != 0
        || vlen != value.len || memcmp(v, value.data, vlen) != 0
        || (!rec.compact && vlen != rec.vlen))
    {
        abort();
    }

    free(v);
    pred_buf_free(&key);
    pred_buf_free(&value);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                 err[256];
    size_t               where;
    pred_buf_t           key, value;
    pred_jsonl_opts_t    opts;
    pred_jsonl_range_t   range;
    static const char   *require[] = { "value" };

    memset(&key, 0, sizeof(pred_buf_t));
    memset(&value, 0, sizeof(pred_buf_t));
    memset(&opts, 0, sizeof(pred_jsonl_opts_t));

    range.field = "score";
    range.min = 0;
    range.max = 1;

    opts.key_field = "key";
    opts.value_field = "value";
    opts.require = require;
    opts.nrequire = 1;
    opts.ranges = &range;
    opts.nranges = 1;

    if (pred_jsonl_parse((const char *) data, size, &opts, &key, &value, err,
                         sizeof(err))
        == 0)
    {
        if (pred_key_validate((unsigned char *) key.data, key.len)
            != PRED_KEY_OK
            || pred_json_validate(value.data, value.len, &where) != 0
            || value.len > size)
        {
            abort();
        }

    } else if (strlen(err) == 0) {
        abort();
    }

    pred_buf_free(&key);
    pred_buf_free(&value);

    same_as_jansson(data, size, &opts);

    opts.nrequire = 0;
    opts.nranges = 0;
    same_as_jansson(data, size, &opts);

    /* a delta's input: a deletion is an empty value, the rest as above */
    opts.deletes = 1;

    if (pred_jsonl_parse((const char *) data, size, &opts, &key, &value, err,
                         sizeof(err))
        == 0)
    {
        if (pred_key_validate((unsigned char *) key.data, key.len)
            != PRED_KEY_OK
            || (value.len
                && pred_json_validate(value.data, value.len, &where) != 0))
        {
            abort();
        }

    } else if (strlen(err) == 0) {
        abort();
    }

    pred_buf_free(&key);
    pred_buf_free(&value);

    return 0;
}
