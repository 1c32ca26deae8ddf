/*
 * Unit tests for key decoding and validation (snapshot/pred_key.c).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "pred_key.h"


static pred_key_rc_t
decode(const char *in, char *out, size_t *out_len)
{
    return pred_key_decode((const unsigned char *) in, strlen(in),
                           (unsigned char *) out, out_len);
}


static void
test_plain_key_passes_through(void **state)
{
    char    out[64];
    size_t  len;

    (void) state;

    assert_int_equal(decode("user_42", out, &len), PRED_KEY_OK);
    assert_int_equal(len, 7);
    assert_memory_equal(out, "user_42", 7);
}


static void
test_escapes_decode_once(void **state)
{
    char    out[64];
    size_t  len;

    (void) state;

    assert_int_equal(decode("a%2Fb%2541%c3%A9+", out, &len), PRED_KEY_OK);
    assert_int_equal(len, 9);
    assert_memory_equal(out, "a/b%41\xc3\xa9+", 9);
}


static void
test_malformed_escapes(void **state)
{
    char    out[64];
    size_t  len;

    (void) state;

    assert_int_equal(decode("abc%", out, &len), PRED_KEY_BAD_ESCAPE);
    assert_int_equal(decode("abc%4", out, &len), PRED_KEY_BAD_ESCAPE);
    assert_int_equal(decode("abc%zz", out, &len), PRED_KEY_BAD_ESCAPE);
    assert_int_equal(decode("%g1", out, &len), PRED_KEY_BAD_ESCAPE);
}


static void
test_empty_key(void **state)
{
    char    out[1];
    size_t  len;

    (void) state;

    assert_int_equal(decode("", out, &len), PRED_KEY_EMPTY);
    assert_int_equal(len, 0);
}


static void
test_control_bytes(void **state)
{
    char    out[64];
    size_t  len;

    (void) state;

    assert_int_equal(decode("a%0Ab", out, &len), PRED_KEY_CONTROL_BYTE);
    assert_int_equal(decode("a%00b", out, &len), PRED_KEY_CONTROL_BYTE);
    assert_int_equal(decode("a%7Fb", out, &len), PRED_KEY_CONTROL_BYTE);
    assert_int_equal(pred_key_validate((const unsigned char *) "a\tb", 3),
                     PRED_KEY_CONTROL_BYTE);
    /* bytes >= 0x80 are data (UTF-8 keys), not control bytes */
    assert_int_equal(pred_key_validate((const unsigned char *) "\x80\xff", 2),
                     PRED_KEY_OK);
}


static void
test_length_limit(void **state)
{
    unsigned char  key[PRED_KEY_MAX_LEN + 1];

    (void) state;

    memset(key, 'k', sizeof(key));

    assert_int_equal(pred_key_validate(key, PRED_KEY_MAX_LEN), PRED_KEY_OK);
    assert_int_equal(pred_key_validate(key, PRED_KEY_MAX_LEN + 1),
                     PRED_KEY_TOO_LONG);
}


static void
test_limit_applies_after_decoding(void **state)
{
    char    in[3 * PRED_KEY_MAX_LEN + 1], out[sizeof(in)];
    size_t  i, len;

    (void) state;

    /* 511 escaped bytes are 1533 bytes on the wire and still a valid key */
    for (i = 0; i < PRED_KEY_MAX_LEN; i++) {
        memcpy(in + 3 * i, "%41", 3);
    }
    in[3 * PRED_KEY_MAX_LEN] = '\0';

    assert_int_equal(decode(in, out, &len), PRED_KEY_OK);
    assert_int_equal(len, PRED_KEY_MAX_LEN);
}


static void
test_strerror(void **state)
{
    (void) state;

    assert_string_equal(pred_key_strerror(PRED_KEY_EMPTY), "key is empty");
    assert_string_equal(pred_key_strerror(PRED_KEY_TOO_LONG),
                        "key is longer than 511 bytes");
    assert_string_equal(pred_key_strerror(PRED_KEY_CONTROL_BYTE),
                        "key contains a control byte");
    assert_string_equal(pred_key_strerror(PRED_KEY_BAD_ESCAPE),
                        "key has a malformed %-escape");
}


/* a control byte is found at any place, word-at-a-time or not */
static void
test_control_byte_anywhere(void **state)
{
    size_t          len, at;
    unsigned char   key[24];
    unsigned char   bad[] = { 0x00, 0x01, 0x1f, 0x7f };
    unsigned char   good[] = { 0x20, 0x7e, 0x80, 0x9f, 0xff, '%' };
    size_t          b;

    (void) state;

    for (len = 1; len <= sizeof(key); len++) {
        for (at = 0; at < len; at++) {
            for (b = 0; b < sizeof(bad); b++) {
                memset(key, 'a', len);
                key[at] = bad[b];
                assert_int_equal(pred_key_validate(key, len),
                                 PRED_KEY_CONTROL_BYTE);
            }

            for (b = 0; b < sizeof(good); b++) {
                memset(key, 'a', len);
                key[at] = good[b];
                assert_int_equal(pred_key_validate(key, len), PRED_KEY_OK);
            }
        }
    }
}


/* the reference vectors of the SipHash paper: key 00..0f, message 00.. */
static void
test_hash_reference_vectors(void **state)
{
    size_t          i;
    unsigned char   msg[16];
    const uint64_t  k[2] = { 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL };

    (void) state;

    for (i = 0; i < 16; i++) {
        msg[i] = (unsigned char) i;
    }

    assert_true(pred_key_hash(msg, 0, k) == 0x726fdb47dd0e0e31ULL);
    assert_true(pred_key_hash(msg, 1, k) == 0x74f839c593dc67fdULL);
    assert_true(pred_key_hash(msg, 8, k) == 0x93f5f5799a932462ULL);
    assert_true(pred_key_hash(msg, 15, k) == 0xa129ca6149be45e5ULL);
}


/* another secret, another hash: what keeps keys from being aimed */
static void
test_hash_depends_on_secret(void **state)
{
    uint64_t  a[2] = { 1, 2 }, b[2] = { 1, 3 };

    (void) state;

    assert_true(pred_key_hash((const unsigned char *) "user:1", 6, a)
                != pred_key_hash((const unsigned char *) "user:1", 6, b));
    assert_true(pred_key_hash((const unsigned char *) "user:1", 6, a)
                == pred_key_hash((const unsigned char *) "user:1", 6, a));
}


/* two secrets drawn from /dev/urandom: not zero, not the same */
static void
test_secret(void **state)
{
    uint64_t  a[2], b[2];

    (void) state;

    assert_int_equal(pred_key_secret(a), 0);
    assert_int_equal(pred_key_secret(b), 0);
    assert_true((a[0] | a[1]) != 0);
    assert_true(a[0] != b[0] || a[1] != b[1]);
}


/* the process's secret is drawn once: the same on every call */
static void
test_process_secret(void **state)
{
    const uint64_t  *a, *b;

    (void) state;

    a = pred_key_process_secret();
    b = pred_key_process_secret();

    assert_ptr_equal(a, b);
    assert_true((a[0] | a[1]) != 0);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_key_passes_through),
        cmocka_unit_test(test_escapes_decode_once),
        cmocka_unit_test(test_malformed_escapes),
        cmocka_unit_test(test_empty_key),
        cmocka_unit_test(test_control_bytes),
        cmocka_unit_test(test_length_limit),
        cmocka_unit_test(test_limit_applies_after_decoding),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_control_byte_anywhere),
        cmocka_unit_test(test_hash_reference_vectors),
        cmocka_unit_test(test_hash_depends_on_secret),
        cmocka_unit_test(test_secret),
        cmocka_unit_test(test_process_secret),
    };

    return cmocka_run_group_tests_name("pred_key", tests, NULL, NULL);
}
