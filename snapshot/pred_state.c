/*
 * State file records (see pred_state.h).
 */

#include <stdio.h>
#include <string.h>

#include "pred_key.h"
#include "pred_snap.h"
#include "pred_state.h"


static void pred_state_put(char *p, uint64_t v, size_t n);
static uint64_t pred_state_get(const char *p, size_t n);


size_t
pred_state_encode(const pred_state_rec_t *rec, char *out)
{
    char      *p;
    uint64_t   check;

    p = out;

    pred_state_put(p, rec->type, 1);
    pred_state_put(p + 1, rec->kind, 1);
    pred_state_put(p + 2, rec->key_len, 2);
    pred_state_put(p + 4, rec->value_len, 4);
    pred_state_put(p + 8, rec->seq, 8);
    pred_state_put(p + 16, (uint64_t) rec->expires_ms, 8);
    pred_state_put(p + 24, rec->stored, 4);
    pred_state_put(p + 28, rec->mask_until, 4);

    p += PRED_STATE_FIXED;

    /* a purge of every key has an empty prefix, maybe no pointer */
    if (rec->key_len) {
        memcpy(p, rec->key, rec->key_len);
        p += rec->key_len;
    }

    if (rec->value_len) {
        memcpy(p, rec->value, rec->value_len);
        p += rec->value_len;
    }

    check = pred_snap_hash_record(PRED_SNAP_FNV_INIT, out, PRED_STATE_FIXED,
                                  out + PRED_STATE_FIXED,
                                  rec->key_len + rec->value_len);

    pred_state_put(p, check, 8);

    return pred_state_size(rec->key_len, rec->value_len);
}


void
pred_state_reseq(char *buf, size_t len, uint64_t seq)
{
    char      *p, *end;
    size_t     size;
    uint64_t   check;

    for (p = buf, end = buf + len; p + PRED_STATE_FIXED <= end; p += size) {
        size = pred_state_size(pred_state_get(p + 2, 2),
                               pred_state_get(p + 4, 4));

        pred_state_put(p + 8, seq, 8);

        check = pred_snap_hash_record(PRED_SNAP_FNV_INIT, p,
                                      PRED_STATE_FIXED, p + PRED_STATE_FIXED,
                                      size - PRED_STATE_FIXED
                                      - PRED_STATE_CHECK);

        pred_state_put(p + size - PRED_STATE_CHECK, check, 8);
    }
}


int
pred_state_next(const char **p, const char *end, pred_state_rec_t *rec,
    char *err, size_t errlen)
{
    size_t       left, need;
    uint64_t     check;
    const char  *s;

    s = *p;
    left = end - s;

    if (left == 0) {
        return PRED_STATE_DONE;
    }

    if (left < PRED_STATE_FIXED) {
        return PRED_STATE_TORN;
    }

    rec->type = (unsigned) pred_state_get(s, 1);
    rec->kind = (unsigned) pred_state_get(s + 1, 1);
    rec->key_len = (size_t) pred_state_get(s + 2, 2);
    rec->value_len = (size_t) pred_state_get(s + 4, 4);
    rec->seq = pred_state_get(s + 8, 8);
    rec->expires_ms = (int64_t) pred_state_get(s + 16, 8);
    rec->stored = (uint32_t) pred_state_get(s + 24, 4);
    rec->mask_until = (uint32_t) pred_state_get(s + 28, 4);

    /* checked before the lengths are trusted: a value past 1 GiB is not
       a value the zone could have held */
    if (rec->type < PRED_STATE_ENTRY || rec->type > PRED_STATE_END
        || rec->key_len > PRED_KEY_MAX_LEN || rec->value_len > (1u << 30))
    {
        pred_snap_errorf(err, errlen, "not a record (type %u, key length "
                         "%zu, value length %zu)", rec->type, rec->key_len,
                         rec->value_len);
        return PRED_STATE_CORRUPT;
    }

    need = pred_state_size(rec->key_len, rec->value_len);

    if (left < need) {
        return PRED_STATE_TORN;
    }

    check = pred_snap_hash_record(PRED_SNAP_FNV_INIT, s, PRED_STATE_FIXED,
                                  s + PRED_STATE_FIXED,
                                  rec->key_len + rec->value_len);

    if (check != pred_state_get(s + need - PRED_STATE_CHECK, 8)) {
        pred_snap_errorf(err, errlen, "checksum mismatch");
        return PRED_STATE_CORRUPT;
    }

    rec->key = s + PRED_STATE_FIXED;
    rec->value = rec->key + rec->key_len;

    if (rec->type == PRED_STATE_ENTRY
        && pred_key_validate((const unsigned char *) rec->key, rec->key_len)
           != PRED_KEY_OK)
    {
        pred_snap_errorf(err, errlen, "an entry's key is not a valid key");
        return PRED_STATE_CORRUPT;
    }

    *p = s + need;

    return PRED_STATE_OK;
}


int
pred_state_header(char *buf, size_t size, const char *what, uint64_t gen)
{
    int  n;

    n = snprintf(buf, size, PRED_STATE_MAGIC "%s %llu\n", what,
                 (unsigned long long) gen);

    return (n < 0 || (size_t) n >= size) ? -1 : n;
}


int
pred_state_parse_header(const char *p, size_t len, const char *what,
    uint64_t *gen)
{
    char         num[24];
    size_t       mlen, wlen, n;
    const char  *nl, *d;

    nl = memchr(p, '\n', len < PRED_STATE_HEADER_MAX ? len
                                                     : PRED_STATE_HEADER_MAX);
    mlen = sizeof(PRED_STATE_MAGIC) - 1;
    wlen = strlen(what);

    if (nl == NULL || (size_t) (nl - p) <= mlen + wlen + 1
        || memcmp(p, PRED_STATE_MAGIC, mlen) != 0
        || memcmp(p + mlen, what, wlen) != 0 || p[mlen + wlen] != ' ')
    {
        return -1;
    }

    d = p + mlen + wlen + 1;
    n = nl - d;

    if (n >= sizeof(num)) {
        return -1;
    }

    memcpy(num, d, n);
    num[n] = '\0';

    if (pred_snap_parse_u64(num, gen) != 0) {
        return -1;
    }

    return (int) (nl - p + 1);
}


static void
pred_state_put(char *p, uint64_t v, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        p[i] = (char) (v >> (8 * i));
    }
}


static uint64_t
pred_state_get(const char *p, size_t n)
{
    size_t    i;
    uint64_t  v;

    v = 0;

    for (i = 0; i < n; i++) {
        v |= (uint64_t) (unsigned char) p[i] << (8 * i);
    }

    return v;
}
