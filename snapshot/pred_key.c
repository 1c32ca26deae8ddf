/*
 * Prediction key decoding and validation.
 */

#include "pred_key.h"


static int pred_key_hex(unsigned char c);


pred_key_rc_t
pred_key_validate(const unsigned char *key, size_t len)
{
    size_t  i;

    if (len == 0) {
        return PRED_KEY_EMPTY;
    }

    if (len > PRED_KEY_MAX_LEN) {
        return PRED_KEY_TOO_LONG;
    }

    for (i = 0; i < len; i++) {
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
    int     hi, lo;
    size_t  i, n;

    n = 0;

    for (i = 0; i < len; i++) {

        if (src[i] != '%') {
            dst[n++] = src[i];
            continue;
        }

        if (len - i < 3) {
            return -1;
        }

        hi = pred_key_hex(src[i + 1]);
        lo = pred_key_hex(src[i + 2]);

        if (hi < 0 || lo < 0) {
            return -1;
        }

        dst[n++] = (unsigned char) (hi << 4 | lo);
        i += 2;
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
