/*
 * Canary releases of a snapshot: see pred_canary.h.
 */

#include <stdio.h>
#include <string.h>

#include "pred_canary.h"
#include "pred_key.h"
#include "pred_snap.h"


/* fixed, not secret: every node must put a key in the same bucket */
static const uint64_t  pred_canary_key[2] = { 0, 0 };


uint32_t
pred_canary_bucket(const void *key, size_t len)
{
    return (uint32_t) (pred_key_hash(key, len, pred_canary_key)
                       % PRED_CANARY_SCALE);
}


int
pred_canary_parse_percent(const char *s, size_t len, uint32_t *share)
{
    size_t    i, decimals;
    uint64_t  whole, frac;

    whole = 0;
    frac = 0;
    decimals = 0;

    for (i = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
        whole = whole * 10 + (s[i] - '0');

        if (whole > 100) {
            return -1;
        }
    }

    /* "5", "5.5", never ".5", "5." or "05x" */
    if (i == 0 || (i > 1 && s[0] == '0')) {
        return -1;
    }

    if (i < len) {
        if (s[i] != '.' || i + 1 == len) {
            return -1;
        }

        for (i++; i < len; i++) {
            if (s[i] < '0' || s[i] > '9' || ++decimals > 4) {
                return -1;
            }

            frac = frac * 10 + (s[i] - '0');
        }
    }

    while (decimals++ < 4) {
        frac *= 10;
    }

    whole = whole * (PRED_CANARY_SCALE / 100) + frac;

    if (whole > PRED_CANARY_SCALE) {
        return -1;
    }

    *share = (uint32_t) whole;

    return 0;
}


void
pred_canary_format_percent(char *buf, size_t size, uint32_t share)
{
    int  n;

    n = snprintf(buf, size, "%u.%04u", share / (PRED_CANARY_SCALE / 100),
                 share % (PRED_CANARY_SCALE / 100));

    if (n <= 0 || (size_t) n >= size) {
        return;
    }

    /* trailing zeros, then the point if nothing is left after it */
    while (buf[n - 1] == '0') {
        buf[--n] = '\0';
    }

    if (buf[n - 1] == '.') {
        buf[--n] = '\0';
    }
}


int
pred_canary_parse_link(const char *text, size_t len, char *file,
    uint32_t *share)
{
    char        version[PRED_SNAP_VERSION_MAX + 1];
    size_t      flen, vlen;
    const char  *at;

    at = memchr(text, '@', len);
    if (at == NULL) {
        return -1;
    }

    flen = at - text;

    if (flen <= 9 || memcmp(text, "snap-", 5) != 0
        || memcmp(at - 4, ".mdb", 4) != 0)
    {
        return -1;
    }

    vlen = flen - 9;
    if (vlen > PRED_SNAP_VERSION_MAX) {
        return -1;
    }

    memcpy(version, text + 5, vlen);
    version[vlen] = '\0';

    /* no "/", "..", or bytes that a file name of ours cannot hold */
    if (strlen(version) != vlen || !pred_snap_valid_version(version)) {
        return -1;
    }

    if (pred_canary_parse_percent(at + 1, len - flen - 1, share) != 0) {
        return -1;
    }

    memcpy(file, text, flen);
    file[flen] = '\0';

    return 0;
}


int
pred_canary_format_link(char *buf, size_t size, const char *version,
    uint32_t share)
{
    int   n;
    char  pct[16];

    pred_canary_format_percent(pct, sizeof(pct), share);

    n = snprintf(buf, size, "snap-%s.mdb@%s", version, pct);

    return (n > 0 && (size_t) n < size) ? 0 : -1;
}
