/*
 * Unit tests for the build's external sort (loader/sort.c), alone: no
 * LMDB, no JSON.  Each test gets an empty folder for run files and checks
 * that it is empty again after pred_sort_cleanup().
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>
#include <cmocka.h>

#include "sort.h"


/* the index starts at 65536 entries, 1 MiB of the budget */
#define INDEX_BYTES  (65536 * sizeof(pred_sort_item_t))


static char         dir[64];
static pred_sort_t  s;
static char        *runs_seen[256];
static size_t       nruns_seen;


static void
on_run(const char *path)
{
    if (nruns_seen < sizeof(runs_seen) / sizeof(runs_seen[0])) {
        runs_seen[nruns_seen++] = strdup(path);
    }
}


static size_t
files_in_dir(void)
{
    size_t          n;
    DIR            *d;
    struct dirent  *e;

    d = opendir(dir);
    assert_non_null(d);

    n = 0;

    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            n++;
        }
    }

    closedir(d);

    return n;
}


static void
add(const char *key, const char *val, uint32_t file, uint64_t line)
{
    assert_int_equal(pred_sort_add(&s, key, strlen(key), val, strlen(val),
                                   file, line), 0);
}


/* the next record must be OK with this key, value and origin */
static void
expect(const char *key, const char *val, uint32_t file, uint64_t line)
{
    const pred_rec_t  *r, *again;

    assert_int_equal(pred_sort_next(&s, &r, &again), PRED_SORT_OK);
    assert_int_equal(r->klen, strlen(key));
    assert_memory_equal(pred_rec_key(r), key, r->klen);
    assert_int_equal(r->vlen, strlen(val));
    assert_memory_equal(pred_rec_val(r), val, r->vlen);
    assert_int_equal(r->file, file);
    assert_int_equal(r->line, line);
}


static void
merge(void)
{
    assert_int_equal(pred_sort_merge_begin(&s), 0);
}


static void
expect_done(void)
{
    const pred_rec_t  *r, *again;

    assert_int_equal(pred_sort_next(&s, &r, &again), PRED_SORT_DONE);
    /* and it stays done */
    assert_int_equal(pred_sort_next(&s, &r, &again), PRED_SORT_DONE);
}


static int
setup(void **state)
{
    (void) state;

    strcpy(dir, "/tmp/test_sort.XXXXXX");
    assert_non_null(mkdtemp(dir));

    pred_sort_init(&s, dir, 512 * 1024 * 1024);
    s.on_run = on_run;
    nruns_seen = 0;

    return 0;
}


static int
teardown(void **state)
{
    size_t  i;

    (void) state;

    pred_sort_cleanup(&s);

    /* every run file is gone, whether the test merged or not */
    assert_int_equal(files_in_dir(), 0);
    assert_int_equal(rmdir(dir), 0);

    for (i = 0; i < nruns_seen; i++) {
        assert_int_equal(access(runs_seen[i], F_OK), -1);
        free(runs_seen[i]);
    }

    return 0;
}


typedef struct {
    const char  *key;
    const char  *val;
    uint32_t     file;
    uint64_t     line;
} rec_t;


static void
test_in_memory_order(void **state)
{
    size_t               i;
    static const rec_t   in[] = {
        { "b", "1", 0, 1 }, { "ab", "2", 0, 2 }, { "abc", "3", 0, 3 },
        { "a", "4", 0, 4 }, { "\xff", "5", 1, 1 }, { "B", "6", 1, 2 },
        { "a\x01", "7", 1, 3 }, { "aa", "8", 1, 4 }
    };
    /* bytes first, then length: a key before the longer keys it starts */
    static const size_t  order[] = { 5, 3, 6, 7, 1, 2, 0, 4 };

    (void) state;

    for (i = 0; i < 8; i++) {
        add(in[i].key, in[i].val, in[i].file, in[i].line);
    }

    merge();

    for (i = 0; i < 8; i++) {
        expect(in[order[i]].key, in[order[i]].val, in[order[i]].file,
               in[order[i]].line);
    }

    expect_done();

    assert_int_equal(s.records, 8);
    assert_int_equal(s.bytes, 13 + 8);
    assert_int_equal(s.nruns, 0);
    assert_int_equal(nruns_seen, 0);
    assert_int_equal(files_in_dir(), 0);
}


static int
cmp_keys(const void *a, const void *b)
{
    /* the keys have no NUL bytes: strcmp is the sort's order */
    return strcmp(*(char * const *) a, *(char * const *) b);
}


/* a budget of a few KiB past the index: many runs, merged */
static void
test_spilled_runs_merge(void **state)
{
    char               key[32], val[64], **ref;
    size_t             i, n;
    uint32_t           x;
    const pred_rec_t  *r, *again;

    (void) state;

    n = 20000;
    s.memory = INDEX_BYTES + 64 * 1024;

    ref = calloc(n, sizeof(char *));
    assert_non_null(ref);

    /* distinct keys of varied length, in a scrambled order */
    x = 12345;

    for (i = 0; i < n; i++) {
        x = x * 1103515245 + 12345;
        snprintf(key, sizeof(key), "k%u.%zu", (unsigned) (x >> 8) % 1000,
                 i);
        snprintf(val, sizeof(val), "{\"i\":%zu}", i);
        add(key, val, 0, i + 1);
        ref[i] = strdup(key);
        assert_non_null(ref[i]);
    }

    assert_true(s.nruns >= 5);
    assert_int_equal(nruns_seen, s.nruns);
    assert_int_equal(files_in_dir(), s.nruns);

    qsort(ref, n, sizeof(char *), cmp_keys);

    merge();

    for (i = 0; i < n; i++) {
        assert_int_equal(pred_sort_next(&s, &r, &again), PRED_SORT_OK);
        assert_int_equal(r->klen, strlen(ref[i]));
        assert_memory_equal(pred_rec_key(r), ref[i], r->klen);

        /* the value and the origin travel with the key */
        snprintf(val, sizeof(val), "{\"i\":%zu}", (size_t) r->line - 1);
        assert_int_equal(r->vlen, strlen(val));
        assert_memory_equal(pred_rec_val(r), val, r->vlen);

        free(ref[i]);
    }

    expect_done();
    free(ref);
}


/* both origins of a duplicate, across runs; the last one stays */
static void
test_duplicates(void **state)
{
    const pred_rec_t  *r, *again;

    (void) state;

    add("a", "first", 0, 1);
    add("b", "only", 0, 2);
    assert_int_equal(pred_sort_spill(&s), 0);
    add("a", "second", 1, 5);
    add("c", "one", 1, 6);
    assert_int_equal(pred_sort_spill(&s), 0);
    add("c", "two", 2, 1);
    add("a", "third", 2, 2);

    /* the origin orders equal keys, not the order they were added in */
    add("d", "later", 2, 9);
    add("d", "earlier", 2, 3);

    assert_int_equal(s.nruns, 2);
    merge();

    assert_int_equal(pred_sort_next(&s, &r, &again), PRED_SORT_DUP);
    assert_memory_equal(pred_rec_val(r), "first", 5);
    assert_int_equal(r->file, 0);
    assert_int_equal(r->line, 1);
    assert_int_equal(again->klen, 1);
    assert_memory_equal(pred_rec_key(again), "a", 1);
    assert_memory_equal(pred_rec_val(again), "second", 6);
    assert_int_equal(again->file, 1);
    assert_int_equal(again->line, 5);

    assert_int_equal(pred_sort_next(&s, &r, &again), PRED_SORT_DUP);
    assert_int_equal(r->file, 1);
    assert_int_equal(r->line, 5);
    assert_int_equal(again->file, 2);
    assert_int_equal(again->line, 2);

    expect("a", "third", 2, 2);
    expect("b", "only", 0, 2);

    assert_int_equal(pred_sort_next(&s, &r, &again), PRED_SORT_DUP);
    assert_memory_equal(pred_rec_val(r), "one", 3);
    assert_memory_equal(pred_rec_val(again), "two", 3);

    expect("c", "two", 2, 1);

    assert_int_equal(pred_sort_next(&s, &r, &again), PRED_SORT_DUP);
    assert_int_equal(r->line, 3);
    assert_int_equal(again->line, 9);

    expect("d", "later", 2, 9);
    expect_done();
}


static void
test_empty(void **state)
{
    (void) state;

    merge();
    expect_done();
    assert_int_equal(s.records, 0);
}


static void
test_empty_run(void **state)
{
    (void) state;

    /* a spill of nothing is an empty run, merged like any other */
    assert_int_equal(pred_sort_spill(&s), 0);
    assert_int_equal(files_in_dir(), 1);
    merge();
    expect_done();
}


static void
single_record(int spill)
{
    add("only", "{}", 3, 7);

    if (spill) {
        assert_int_equal(pred_sort_spill(&s), 0);
        assert_int_equal(files_in_dir(), 1);
    }

    merge();
    expect("only", "{}", 3, 7);
    expect_done();
}


static void
test_single_record(void **state)
{
    (void) state;

    single_record(0);
}


static void
test_single_record_spilled(void **state)
{
    (void) state;

    single_record(1);
}


/* records larger than an arena block and than the run's read buffer */
static void
test_long_keys_and_values(void **state)
{
    char              *big, *key;
    size_t             i, klen, vlen;
    const pred_rec_t  *r, *again;

    (void) state;

    klen = 100 * 1024;
    vlen = 20 * 1024 * 1024;
    key = malloc(klen + 1);
    big = malloc(vlen + 1);
    assert_non_null(key);
    assert_non_null(big);

    memset(big, 'v', vlen);
    big[vlen] = '\0';

    /* every record past the budget: each spills the one before */
    s.memory = INDEX_BYTES + 1024 * 1024;

    for (i = 0; i < 3; i++) {
        memset(key, 'a' + 2 - i, klen);
        key[klen] = '\0';
        big[0] = '0' + i;
        add(key, big, 0, i + 1);
    }

    add("short", "1", 0, 4);

    assert_int_equal(s.nruns, 3);
    merge();

    for (i = 3; i-- > 0; ) {
        assert_int_equal(pred_sort_next(&s, &r, &again), PRED_SORT_OK);
        assert_int_equal(r->klen, klen);
        assert_int_equal(r->vlen, vlen);
        assert_int_equal((unsigned char) pred_rec_key(r)[klen - 1],
                         'a' + 2 - i);
        assert_int_equal(pred_rec_val(r)[0], '0' + (int) i);
        assert_int_equal(pred_rec_val(r)[vlen - 1], 'v');
        assert_int_equal(r->line, i + 1);
    }

    expect("short", "1", 0, 4);
    expect_done();

    free(key);
    free(big);
}


/* n records, keys descending, a budget of a few KiB past the index */
static void
add_many_runs(size_t n)
{
    size_t  i;
    char    key[16];

    s.memory = INDEX_BYTES + 4096;

    for (i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "%05zu", n - i);
        add(key, "x", 0, i + 1);
    }

    assert_true(s.nruns > 2);
    assert_int_equal(files_in_dir(), s.nruns);
}


/* the runs of a build that fails before its merge are removed too */
static void
test_cleanup_without_merge(void **state)
{
    (void) state;

    add_many_runs(1000);
}


static void
test_cleanup_after_part_of_a_merge(void **state)
{
    const pred_rec_t  *r, *again;

    (void) state;

    add_many_runs(1000);
    merge();
    assert_int_equal(pred_sort_next(&s, &r, &again), PRED_SORT_OK);
    assert_memory_equal(pred_rec_key(r), "00001", 5);
}


static void
test_truncated_run(void **state)
{
    char               want[160];
    const pred_rec_t  *r, *again;

    (void) state;

    add("a", "1", 0, 1);
    add("b", "2", 0, 2);
    assert_int_equal(pred_sort_spill(&s), 0);

    /* the second record loses its last byte */
    assert_int_equal(truncate(runs_seen[0], 2 * (sizeof(pred_rec_t) + 2) - 1),
                     0);

    /* the first record is held back until the second is read: it fails */
    merge();
    assert_int_equal(pred_sort_next(&s, &r, &again), PRED_SORT_ERROR);

    snprintf(want, sizeof(want), "%s: read error: the run is cut short",
             runs_seen[0]);
    assert_string_equal(s.err, want);
}


static void
test_spill_error_names_the_file(void **state)
{
    char  missing[96], want[160];

    (void) state;

    snprintf(missing, sizeof(missing), "%s/missing", dir);
    s.dir = missing;

    add("a", "1", 0, 1);
    assert_int_equal(pred_sort_spill(&s), -1);

    snprintf(want, sizeof(want), "%s/.pred-build.%d.run0: No such file or "
             "directory", missing, (int) getpid());
    assert_string_equal(s.err, want);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_in_memory_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_spilled_runs_merge, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_single_record, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_single_record_spilled, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_long_keys_and_values, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cleanup_without_merge, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cleanup_after_part_of_a_merge,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spill_error_names_the_file,
                                        setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
