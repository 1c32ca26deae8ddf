/*
 * The build's external sort.  Records (a key, a value and where they came
 * from) go into an arena; when the arena passes the memory budget its
 * records are sorted and spilled to a run file; at the end the runs and the
 * records still in memory are merged with a heap, in key order.  Plain C:
 * no LMDB, no JSON.
 *
 *     pred_sort_init(&s, dir, memory);
 *     pred_sort_add(&s, ...) ...
 *     pred_sort_merge_begin(&s);
 *     while ((rc = pred_sort_next(&s, &rec, &again)) > 0) { ... }
 *     pred_sort_cleanup(&s);
 *
 * A function that fails returns -1 with the reason in s.err.
 */

#ifndef PRED_SORT_H
#define PRED_SORT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"


/* room for a path of 4095 bytes and a reason */
#define PRED_SORT_ERR_MAX  4352

/* pred_sort_next() */
#define PRED_SORT_ERROR    -1
#define PRED_SORT_DONE     0
#define PRED_SORT_OK       1
#define PRED_SORT_DUP      2


typedef struct {
    uint32_t  klen;
    uint32_t  vlen;
    uint32_t  file;        /* origin: the caller's input number */
    uint32_t  pad;
    uint64_t  line;        /* and line in it */
    /* key bytes, then value bytes */
} pred_rec_t;

#define pred_rec_key(r)  ((char *) (r) + sizeof(pred_rec_t))
#define pred_rec_val(r)  (pred_rec_key(r) + (r)->klen)
#define pred_rec_size(r) (sizeof(pred_rec_t) + (r)->klen + (r)->vlen)


/*
 * An entry of the index sorted in memory: 8 bytes of the key, from where
 * the keys in memory start to differ, big-endian, so that most comparisons
 * are one of integers and touch no record.
 */
typedef struct {
    uint64_t     prefix;
    pred_rec_t  *rec;
} pred_sort_item_t;


typedef struct pred_sort_block_s  pred_sort_block_t;
typedef struct pred_sort_run_s    pred_sort_run_t;


typedef struct {
    const char          *dir;          /* where run files go */
    size_t               memory;       /* the arena and its index */

    /*
     * Called with each run file's name before the file is created; the
     * name stays valid until pred_sort_cleanup() (the build registers it
     * with its signal handler).
     */
    void               (*on_run)(const char *path);

    uint64_t             records;      /* added */
    uint64_t             bytes;        /* key and value bytes added */
    size_t               nruns;        /* run files spilled */
    char                 err[PRED_SORT_ERR_MAX];

    /* private */
    pred_sort_block_t   *blocks;
    pred_sort_block_t   *block;
    size_t               arena_used;
    pred_sort_item_t    *recs;
    size_t               nrecs;
    size_t               common;       /* bytes all keys in memory share */
    size_t               recs_size;
    char               **runs;
    pred_sort_run_t     *merge;
    pred_sort_run_t    **heap;
    size_t               nheap;
    pred_buf_t           hold;
    unsigned             held:1;
    unsigned             take:1;
} pred_sort_t;


/* dir and memory as above; nothing is allocated before the first record */
void pred_sort_init(pred_sort_t *s, const char *dir, size_t memory);

/* Copies one record in; spills first when it would pass the budget. */
int pred_sort_add(pred_sort_t *s, const char *key, size_t klen,
    const char *val, size_t vlen, uint32_t file, uint64_t line);

/* Sorts the records in memory and writes them to a new run file. */
int pred_sort_spill(pred_sort_t *s);

/* Sorts what is in memory and opens every run; then pred_sort_next(). */
int pred_sort_merge_begin(pred_sort_t *s);

/*
 * The next record in key order: LMDB's default order, the key's bytes and
 * then its length, so a key comes before the longer keys it starts; equal
 * keys in input order (file, then line).  Returns:
 *
 *   PRED_SORT_OK     *rec is the next record
 *   PRED_SORT_DUP    *rec and *again have the same key, *again the later;
 *                    the next call drops *rec, so the last one stays
 *   PRED_SORT_DONE   no more records
 *   PRED_SORT_ERROR  s->err says why
 *
 * The records are valid until the next call.
 */
int pred_sort_next(pred_sort_t *s, const pred_rec_t **rec,
    const pred_rec_t **again);

/* Frees everything and removes the run files; safe after any failure. */
void pred_sort_cleanup(pred_sort_t *s);

#endif /* PRED_SORT_H */
