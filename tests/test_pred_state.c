/*
 * Unit tests for the cache zone's state file records
 * (snapshot/pred_state.c).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pred_state.h"


static pred_state_rec_t
entry(const char *key, const char *value, uint64_t seq)
{
    pred_state_rec_t  r;

    memset(&r, 0, sizeof(r));
    r.type = PRED_STATE_ENTRY;
    r.kind = 4;
    r.seq = seq;
    r.expires_ms = 1796000000123LL;
    r.stored = 1796000000;
    r.mask_until = 7;
    r.key = key;
    r.key_len = strlen(key);
    r.value = value;
    r.value_len = strlen(value);

    return r;
}


static void
test_round_trip(void **state)
{
    char               buf[512], err[128];
    size_t             n;
    const char        *p;
    pred_state_rec_t   in[2], out;

    (void) state;

    in[0] = entry("user_1", "{\"score\":0.5}", 41);
    in[1] = entry("u2", "", 42);
    in[1].type = PRED_STATE_PURGE;
    in[1].kind = 0;

    n = pred_state_encode(&in[0], buf);
    assert_int_equal(n, pred_state_size(6, 13));
    n += pred_state_encode(&in[1], buf + n);

    p = buf;
    assert_int_equal(pred_state_next(&p, buf + n, &out, err, sizeof(err)),
                     PRED_STATE_OK);
    assert_int_equal(out.type, PRED_STATE_ENTRY);
    assert_int_equal(out.kind, 4);
    assert_int_equal(out.seq, 41);
    assert_true(out.expires_ms == 1796000000123LL);
    assert_int_equal(out.stored, 1796000000);
    assert_int_equal(out.mask_until, 7);
    assert_memory_equal(out.key, "user_1", 6);
    assert_int_equal(out.value_len, 13);
    assert_memory_equal(out.value, "{\"score\":0.5}", 13);

    assert_int_equal(pred_state_next(&p, buf + n, &out, err, sizeof(err)),
                     PRED_STATE_OK);
    assert_int_equal(out.type, PRED_STATE_PURGE);
    assert_int_equal(out.key_len, 2);

    assert_int_equal(pred_state_next(&p, buf + n, &out, err, sizeof(err)),
                     PRED_STATE_DONE);
}


static void
test_torn_and_corrupt(void **state)
{
    char               buf[512], err[128];
    size_t             n, cut;
    const char        *p;
    pred_state_rec_t   in, out;

    (void) state;

    in = entry("k", "1", 1);
    n = pred_state_encode(&in, buf);

    /* every cut short of the whole record is torn, never corrupt */
    for (cut = 1; cut < n; cut++) {
        p = buf;
        assert_int_equal(pred_state_next(&p, buf + cut, &out, err,
                                         sizeof(err)),
                         PRED_STATE_TORN);
        assert_ptr_equal(p, buf);
    }

    /* any byte changed fails the check (or the header's sanity) */
    for (cut = 0; cut < n; cut++) {
        buf[cut] ^= 0x20;
        p = buf;
        assert_int_not_equal(pred_state_next(&p, buf + n, &out, err,
                                             sizeof(err)),
                             PRED_STATE_OK);
        buf[cut] ^= 0x20;
    }

    /* an entry's key must be a key */
    in = entry("a\nb", "1", 1);
    n = pred_state_encode(&in, buf);
    p = buf;
    assert_int_equal(pred_state_next(&p, buf + n, &out, err, sizeof(err)),
                     PRED_STATE_CORRUPT);
    assert_string_equal(err, "an entry's key is not a valid key");
}


static void
test_reseq(void **state)
{
    char               buf[512], err[128];
    size_t             n;
    const char        *p;
    pred_state_rec_t   in, out;

    (void) state;

    in = entry("a", "1", 0);
    n = pred_state_encode(&in, buf);
    in = entry("bb", "22", 0);
    n += pred_state_encode(&in, buf + n);

    pred_state_reseq(buf, n, 99);

    p = buf;
    assert_int_equal(pred_state_next(&p, buf + n, &out, err, sizeof(err)),
                     PRED_STATE_OK);
    assert_int_equal(out.seq, 99);
    assert_int_equal(pred_state_next(&p, buf + n, &out, err, sizeof(err)),
                     PRED_STATE_OK);
    assert_int_equal(out.seq, 99);
    assert_memory_equal(out.key, "bb", 2);
}


static void
test_header(void **state)
{
    char      buf[PRED_STATE_HEADER_MAX];
    int       n;
    uint64_t  gen;

    (void) state;

    n = pred_state_header(buf, sizeof(buf), "journal", 12);
    assert_string_equal(buf, "pred-state/1 journal 12\n");
    assert_int_equal(pred_state_parse_header(buf, n, "journal", &gen), n);
    assert_int_equal(gen, 12);

    assert_int_equal(pred_state_parse_header(buf, n, "checkpoint", &gen),
                     -1);
    assert_int_equal(pred_state_parse_header("pred-state/1 journal \n", 22,
                                             "journal", &gen), -1);
    assert_int_equal(pred_state_parse_header("pred-state/1 journal 1x\n",
                                             24, "journal", &gen), -1);
    assert_int_equal(pred_state_parse_header("pred-state/1 journal 1", 22,
                                             "journal", &gen), -1);
    assert_int_equal(pred_state_parse_header("pred-state/2 journal 1\n",
                                             23, "journal", &gen), -1);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_torn_and_corrupt),
        cmocka_unit_test(test_reseq),
        cmocka_unit_test(test_header),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
