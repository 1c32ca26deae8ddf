/*
 * Prediction key decoding and validation.
 */

#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pred_key.h"


static int pred_key_hex(unsigned char c);


/* eight bytes at a time: a byte below n (n <= 128) sets its high bit */
#define PRED_KEY_ONES            0x0101010101010101ULL
#define PRED_KEY_HIGHS           0x8080808080808080ULL
#define pred_key_has_less(w, n)                                              \
    (((w) - PRED_KEY_ONES * (n)) & ~(w) & PRED_KEY_HIGHS)


pred_key_rc_t
pred_key_validate(const unsigned char *key, size_t len)
{
    size_t    i;
    uint64_t  w;

    if (len == 0) {
        return PRED_KEY_EMPTY;
    }

    if (len > PRED_KEY_MAX_LEN) {
        return PRED_KEY_TOO_LONG;
    }

    /* every key is checked on every request: a word at a time */
    for (i = 0; i + 8 <= len; i += 8) {
        memcpy(&w, key + i, 8);

        if (pred_key_has_less(w, 0x20)
            || pred_key_has_less(w ^ (PRED_KEY_ONES * 0x7f), 1))
        {
            return PRED_KEY_CONTROL_BYTE;
        }
    }

    for ( /* void */ ; i < len; i++) {
        if (key[i] < 0x20 || key[i] == 0x7f) {
            return PRED_KEY_CONTROL_BYTE;
        }
    }

    return PRED_KEY_OK;
}


int
pred_key_unescape(const unsigned char *src, size_t len, unsigned char *dst,
    size_t *dst_len)
{
    int                   hi, lo;
    size_t                n;
    const unsigned char  *p, *end, *pct;

    n = 0;
    p = src;
    end = src + len;

    /* most keys have no escape: whole runs between them are copied */
    while (p < end) {
        pct = memchr(p, '%', end - p);

        if (pct == NULL) {
            memcpy(dst + n, p, end - p);
            n += end - p;
            break;
        }

        memcpy(dst + n, p, pct - p);
        n += pct - p;

        if (end - pct < 3) {
            return -1;
        }

        hi = pred_key_hex(pct[1]);
        lo = pred_key_hex(pct[2]);

        if (hi < 0 || lo < 0) {
            return -1;
        }

        dst[n++] = (unsigned char) (hi << 4 | lo);
        p = pct + 3;
    }

    *dst_len = n;

    return 0;
}


pred_key_rc_t
pred_key_decode(const unsigned char *src, size_t len, unsigned char *dst,
    size_t *dst_len)
{
    if (pred_key_unescape(src, len, dst, dst_len) != 0) {
        return PRED_KEY_BAD_ESCAPE;
    }

    return pred_key_validate(dst, *dst_len);
}


const char *
pred_key_strerror(pred_key_rc_t rc)
{
    switch (rc) {

    case PRED_KEY_OK:
        return "ok";

    case PRED_KEY_EMPTY:
        return "key is empty";

    case PRED_KEY_TOO_LONG:
        return "key is longer than 511 bytes";

    case PRED_KEY_CONTROL_BYTE:
        return "key contains a control byte";

    case PRED_KEY_BAD_ESCAPE:
        return "key has a malformed %-escape";
    }

    return "invalid key";
}


static int
pred_key_hex(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    c |= 0x20;

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    return -1;
}


#define PRED_ROTL(x, b)  (uint64_t) (((x) << (b)) | ((x) >> (64 - (b))))

#define PRED_SIPROUND                                                        \
    do {                                                                     \
        v0 += v1; v1 = PRED_ROTL(v1, 13); v1 ^= v0; v0 = PRED_ROTL(v0, 32); \
        v2 += v3; v3 = PRED_ROTL(v3, 16); v3 ^= v2;                          \
        v0 += v3; v3 = PRED_ROTL(v3, 21); v3 ^= v0;                          \
        v2 += v1; v1 = PRED_ROTL(v1, 17); v1 ^= v2; v2 = PRED_ROTL(v2, 32); \
    } while (0)


/* little-endian, whatever the machine: the same key hashes the same */
static uint64_t
pred_key_le64(const unsigned char *p, size_t n)
{
    size_t    i;
    uint64_t  v;

    v = 0;

    for (i = 0; i < n; i++) {
        v |= (uint64_t) p[i] << (8 * i);
    }

    return v;
}


uint64_t
pred_key_hash(const unsigned char *key, size_t len, const uint64_t k[2])
{
    size_t    i, tail;
    uint64_t  v0, v1, v2, v3, m;

    v0 = k[0] ^ 0x736f6d6570736575ULL;
    v1 = k[1] ^ 0x646f72616e646f6dULL;
    v2 = k[0] ^ 0x6c7967656e657261ULL;
    v3 = k[1] ^ 0x7465646279746573ULL;

    tail = len & 7;

    for (i = 0; i < len - tail; i += 8) {
        m = pred_key_le64(key + i, 8);
        v3 ^= m;
        PRED_SIPROUND;
        PRED_SIPROUND;
        v0 ^= m;
    }

    /* the last block: the remaining bytes and the length's low byte */
    m = pred_key_le64(key + i, tail) | ((uint64_t) (len & 0xff) << 56);

    v3 ^= m;
    PRED_SIPROUND;
    PRED_SIPROUND;
    v0 ^= m;

    v2 ^= 0xff;
    PRED_SIPROUND;
    PRED_SIPROUND;
    PRED_SIPROUND;
    PRED_SIPROUND;

    return v0 ^ v1 ^ v2 ^ v3;
}


int
pred_key_secret(uint64_t k[2])
{
    int      fd;
    ssize_t  n;

    n = -1;
    fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

    if (fd != -1) {
        n = read(fd, k, 2 * sizeof(uint64_t));
        close(fd);
    }

    if (n == (ssize_t) (2 * sizeof(uint64_t))) {
        return 0;
    }

    k[0] = (uint64_t) time(NULL) * 0x9e3779b97f4a7c15ULL ^ (uint64_t) getpid();
    k[1] = (uint64_t) (uintptr_t) &n ^ (uint64_t) clock();

    return -1;
}


const uint64_t *
pred_key_process_secret(void)
{
    static int       drawn;
    static uint64_t  k[2];

    if (!drawn) {
        (void) pred_key_secret(k);
        drawn = 1;
    }

    return k;
}
