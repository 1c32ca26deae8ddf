/*
 * Unit tests for canary routing and the candidate pointer
 * (snapshot/pred_canary.c).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pred_canary.h"
#include "pred_key.h"


static uint32_t
bucket(const char *key)
{
    return pred_canary_bucket(key, strlen(key));
}


static void
assert_percent(const char *text, int ok, uint32_t share)
{
    uint32_t  got;

    got = 12345678;

    if (!ok) {
        assert_int_equal(pred_canary_parse_percent(text, strlen(text), &got),
                         -1);
        assert_int_equal(got, 12345678);
        return;
    }

    assert_int_equal(pred_canary_parse_percent(text, strlen(text), &got), 0);
    assert_int_equal(got, share);
}


static void
test_parse_percent(void **state)
{
    (void) state;

    assert_percent("0", 1, 0);
    assert_percent("100", 1, 1000000);
    assert_percent("0.5", 1, 5000);
    assert_percent("12.25", 1, 122500);
    assert_percent("0.0001", 1, 1);
    assert_percent("99.9999", 1, 999999);
    assert_percent("100.0", 1, 1000000);
    assert_percent("7", 1, 70000);

    assert_percent("", 0, 0);
    assert_percent("100.0001", 0, 0);
    assert_percent("101", 0, 0);
    assert_percent("1000000000000000000000", 0, 0);
    assert_percent("0.00001", 0, 0);
    assert_percent(".5", 0, 0);
    assert_percent("5.", 0, 0);
    assert_percent("05", 0, 0);
    assert_percent("-1", 0, 0);
    assert_percent("+1", 0, 0);
    assert_percent("1e1", 0, 0);
    assert_percent("5%", 0, 0);
    assert_percent(" 5", 0, 0);
    assert_percent("1.2.3", 0, 0);
}


static void
test_format_percent(void **state)
{
    char  buf[16];

    (void) state;

    pred_canary_format_percent(buf, sizeof(buf), 0);
    assert_string_equal(buf, "0");
    pred_canary_format_percent(buf, sizeof(buf), 5000);
    assert_string_equal(buf, "0.5");
    pred_canary_format_percent(buf, sizeof(buf), 1);
    assert_string_equal(buf, "0.0001");
    pred_canary_format_percent(buf, sizeof(buf), 1000000);
    assert_string_equal(buf, "100");
    pred_canary_format_percent(buf, sizeof(buf), 122500);
    assert_string_equal(buf, "12.25");
    pred_canary_format_percent(buf, sizeof(buf), 100000);
    assert_string_equal(buf, "10");
}


static void
test_links(void **state)
{
    char      buf[PRED_CANARY_LINK_MAX], file[PRED_CANARY_LINK_MAX];
    uint32_t  share;

    (void) state;

    assert_int_equal(pred_canary_format_link(buf, sizeof(buf), "v2", 5000),
                     0);
    assert_string_equal(buf, "snap-v2.mdb@0.5");

    assert_int_equal(pred_canary_parse_link(buf, strlen(buf), file, &share),
                     0);
    assert_string_equal(file, "snap-v2.mdb");
    assert_int_equal(share, 5000);

    /* the longest version and share fit */
    assert_int_equal(pred_canary_format_link(buf, sizeof(buf),
        "0123456789012345678901234567890123456789012345678901234567890123",
        999999), 0);
    assert_int_equal(pred_canary_parse_link(buf, strlen(buf), file, &share),
                     0);
    assert_int_equal(share, 999999);

#define BAD(t)                                                               \
    assert_int_equal(pred_canary_parse_link(t, strlen(t), file, &share), -1)

    BAD("");
    BAD("snap-v2.mdb");
    BAD("snap-v2.mdb@");
    BAD("snap-v2.mdb@101");
    BAD("snap-.mdb@1");
    BAD("snap-../x.mdb@1");
    BAD("snap-a/b.mdb@1");
    BAD("snap-.x.mdb@1");
    BAD("snap-v2.lmdb@1");
    BAD("other-v2.mdb@1");
    BAD("/etc/snap-v2.mdb@1");
    BAD("snap-v2.mdb@1@2");
    BAD("snap-v 2.mdb@1");

#undef BAD

    /* a NUL inside the version is not cut short */
    assert_int_equal(pred_canary_parse_link("snap-v\0x.mdb@1", 14, file,
                                            &share), -1);
}


/*
 * The bucket is public interface: a fleet of nodes, and every release of
 * the module, must put a key in the same one.
 */
static void
test_bucket_pinned(void **state)
{
    int             i;
    unsigned char   m[15];
    const uint64_t  k[2] = { 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL };

    (void) state;

    /* the hash is SipHash-2-4: the reference's test vector of 15 bytes */
    for (i = 0; i < 15; i++) {
        m[i] = (unsigned char) i;
    }

    assert_true(pred_key_hash(m, 15, k) == 0xa129ca6149be45e5ULL);

    assert_int_equal(bucket(""), 721367);
    assert_int_equal(bucket("user:1"), 933596);
    assert_int_equal(bucket("user:42"), 382985);
    assert_int_equal(pred_canary_bucket("a\0b", 3), 174394);
}


static void
test_share_and_stickiness(void **state)
{
    int       i, n10, n50, n1, moved_back;
    char      key[32];
    uint32_t  b, none;

    (void) state;

    n1 = n10 = n50 = moved_back = 0;
    none = 0;

    for (i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "user:%d", i);
        b = bucket(key);

        assert_true(b < PRED_CANARY_SCALE);

        n1 += pred_canary_routed(b, 10000);
        n10 += pred_canary_routed(b, 100000);
        n50 += pred_canary_routed(b, 500000);

        /* raising the share only moves keys to the candidate */
        if (pred_canary_routed(b, 100000) && !pred_canary_routed(b, 500000)) {
            moved_back++;
        }

        assert_false(pred_canary_routed(b, none));
        assert_true(pred_canary_routed(b, PRED_CANARY_SCALE));
    }

    /* within one percentage point of the target over 20k keys */
    assert_in_range(n1, 0, 400);
    assert_in_range(n10, 1800, 2200);
    assert_in_range(n50, 9800, 10200);
    assert_int_equal(moved_back, 0);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_percent),
        cmocka_unit_test(test_format_percent),
        cmocka_unit_test(test_links),
        cmocka_unit_test(test_bucket_pinned),
        cmocka_unit_test(test_share_and_stickiness),
    };

    return cmocka_run_group_tests_name("pred_canary", tests, NULL, NULL);
}
