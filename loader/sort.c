/*
 * The build's external sort (see sort.h).
 *
 * The arena is a list of blocks kept across spills, so a build that spills
 * allocates its memory once.  A run file is its records one after another,
 * each a pred_rec_t header and its bytes, in key order.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sort.h"


#define PRED_SORT_BLOCK    (16 * 1024 * 1024)
#define PRED_SORT_INDEX    65536              /* first size of the index */
#define PRED_SORT_AHEAD    8                  /* records prefetched */
#define PRED_SORT_IO_BUF   (1024 * 1024)


struct pred_sort_block_s {
    pred_sort_block_t  *next;
    size_t              used;
    size_t              size;
    /* data follows */
};


struct pred_sort_run_s {
    FILE          *fp;          /* a run file, or NULL: the memory run */
    const char    *path;
    pred_sort_item_t  *recs;
    size_t         nrecs;
    size_t         pos;
    pred_buf_t     buf;         /* the current record of a run file */
    pred_rec_t    *cur;
};


static int pred_sort_out_of_memory(pred_sort_t *s);
static int pred_rec_cmp(const pred_rec_t *a, const pred_rec_t *b);
static void pred_sort_index(pred_sort_t *s);
static void pred_sort_items(pred_sort_item_t *a, size_t n);
static void pred_sort_prefetch(const pred_rec_t *r);
static int pred_sort_run_next(pred_sort_t *s, pred_sort_run_t *run);
static int pred_sort_pop(pred_sort_t *s);
static void pred_sort_heap_down(pred_sort_run_t **heap, size_t n, size_t i);


void
pred_sort_init(pred_sort_t *s, const char *dir, size_t memory)
{
    memset(s, 0, sizeof(pred_sort_t));

    s->dir = dir;
    s->memory = memory;
}


int
pred_sort_add(pred_sort_t *s, const char *key, size_t klen, const char *val,
    size_t vlen, uint32_t file, uint64_t line)
{
    size_t              need, size, i;
    const char         *first;
    pred_rec_t         *r;
    pred_sort_item_t   *recs;
    pred_sort_block_t  *blk;

    need = sizeof(pred_rec_t) + klen + vlen;
    need = (need + 7) & ~(size_t) 7;

    if (s->arena_used + s->recs_size * sizeof(pred_sort_item_t) + need
        > s->memory && s->nrecs)
    {
        if (pred_sort_spill(s) != 0) {
            return -1;
        }
    }

    blk = s->block;

    if (blk == NULL || blk->size - blk->used < need) {
        /* reuse the blocks kept from before a spill */
        blk = blk ? blk->next : s->blocks;

        if (blk == NULL || blk->size < need) {
            size = need > PRED_SORT_BLOCK ? need : PRED_SORT_BLOCK;
            blk = malloc(sizeof(pred_sort_block_t) + size);
            if (blk == NULL) {
                return pred_sort_out_of_memory(s);
            }

            blk->size = size;
            blk->next = s->block ? s->block->next : s->blocks;

            if (s->block) {
                s->block->next = blk;
            } else {
                s->blocks = blk;
            }
        }

        blk->used = 0;
        s->block = blk;
    }

    if (s->nrecs == s->recs_size) {
        size = s->recs_size ? s->recs_size * 2 : PRED_SORT_INDEX;
        recs = realloc(s->recs, size * sizeof(pred_sort_item_t));
        if (recs == NULL) {
            return pred_sort_out_of_memory(s);
        }

        s->recs = recs;
        s->recs_size = size;
    }

    r = (pred_rec_t *) ((char *) blk + sizeof(pred_sort_block_t) + blk->used);
    blk->used += need;
    s->arena_used += need;

    r->klen = klen;
    r->vlen = vlen;
    r->file = file;
    r->pad = 0;
    r->line = line;
    memcpy(pred_rec_key(r), key, klen);

    /* a delta's deletion has no value, and maybe no buffer */
    if (vlen) {
        memcpy(pred_rec_val(r), val, vlen);
    }

    /* how far the keys agree with the first: where their prefixes start */
    if (s->nrecs == 0) {
        s->common = klen;

    } else {
        first = pred_rec_key(s->recs[0].rec);

        for (i = 0; i < s->common && i < klen && first[i] == key[i]; i++) {
            /* void */
        }

        s->common = i;
    }

    s->recs[s->nrecs++].rec = r;
    s->records++;
    s->bytes += klen + vlen;

    return 0;
}


int
pred_sort_spill(pred_sort_t *s)
{
    int      fd, err, failed;
    char     path[4096], **runs;
    FILE    *fp;
    size_t   i;

    pred_sort_index(s);

    runs = realloc(s->runs, (s->nruns + 1) * sizeof(char *));
    if (runs == NULL) {
        return pred_sort_out_of_memory(s);
    }

    s->runs = runs;

    if (snprintf(path, sizeof(path), "%s/.pred-build.%d.run%zu", s->dir,
                 (int) getpid(), s->nruns)
        >= (int) sizeof(path))
    {
        snprintf(s->err, sizeof(s->err), "%s: path too long", s->dir);
        return -1;
    }

    s->runs[s->nruns] = strdup(path);
    if (s->runs[s->nruns] == NULL) {
        return pred_sort_out_of_memory(s);
    }

    /* named before it exists, so that nothing is ever left unnamed */
    if (s->on_run) {
        s->on_run(s->runs[s->nruns]);
    }

    s->nruns++;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    fp = fd == -1 ? NULL : fdopen(fd, "wb");

    if (fp == NULL) {
        snprintf(s->err, sizeof(s->err), "%s: %s", path, strerror(errno));
        if (fd != -1) {
            close(fd);
        }
        return -1;
    }

    setvbuf(fp, NULL, _IOFBF, PRED_SORT_IO_BUF);

    for (i = 0; i < s->nrecs; i++) {
        if (i + PRED_SORT_AHEAD < s->nrecs) {
            pred_sort_prefetch(s->recs[i + PRED_SORT_AHEAD].rec);
        }

        if (fwrite(s->recs[i].rec, pred_rec_size(s->recs[i].rec), 1, fp)
            != 1)
        {
            break;
        }
    }

    failed = i < s->nrecs;
    err = errno;

    /*
     * A run is read back by this process and then removed: it needs no
     * fsync, but fclose() reports the last buffered write a full disk
     * refused.
     */
    if (fclose(fp) != 0 && !failed) {
        failed = 1;
        err = errno;
    }

    if (failed) {
        snprintf(s->err, sizeof(s->err), "%s: write error: %s", path,
                 strerror(err));
        return -1;
    }

    s->nrecs = 0;
    s->arena_used = 0;
    s->block = NULL;

    return 0;
}


int
pred_sort_merge_begin(pred_sort_t *s)
{
    int     rc;
    size_t  i, n;

    pred_sort_index(s);

    n = s->nruns + 1;
    s->merge = calloc(n, sizeof(pred_sort_run_t));
    s->heap = calloc(n, sizeof(pred_sort_run_t *));

    if (s->merge == NULL || s->heap == NULL) {
        return pred_sort_out_of_memory(s);
    }

    for (i = 0; i < s->nruns; i++) {
        s->merge[i].path = s->runs[i];
        s->merge[i].fp = fopen(s->runs[i], "rb");

        if (s->merge[i].fp == NULL) {
            snprintf(s->err, sizeof(s->err), "%s: %s", s->runs[i],
                     strerror(errno));
            return -1;
        }

        setvbuf(s->merge[i].fp, NULL, _IOFBF, PRED_SORT_IO_BUF);
    }

    s->merge[s->nruns].recs = s->recs;
    s->merge[s->nruns].nrecs = s->nrecs;

    s->nheap = 0;

    for (i = 0; i < n; i++) {
        rc = pred_sort_run_next(s, &s->merge[i]);
        if (rc < 0) {
            return -1;
        }

        if (rc) {
            s->heap[s->nheap++] = &s->merge[i];
        }
    }

    for (i = s->nheap / 2; i-- > 0; ) {
        pred_sort_heap_down(s->heap, s->nheap, i);
    }

    return 0;
}


/*
 * One record is held back (a copy, since its run's buffer moves on) until
 * the next one shows whether it repeats the key; "take" says that the top
 * of the heap is to be held next, replacing the record held.
 */
int
pred_sort_next(pred_sort_t *s, const pred_rec_t **rec,
    const pred_rec_t **again)
{
    pred_rec_t  *r, *p;

    for ( ;; ) {
        if (s->take) {
            r = s->heap[0]->cur;

            if (pred_buf_reserve(&s->hold, pred_rec_size(r)) != 0) {
                pred_sort_out_of_memory(s);
                return PRED_SORT_ERROR;
            }

            memcpy(s->hold.data, r, pred_rec_size(r));
            s->held = 1;
            s->take = 0;

            if (pred_sort_pop(s) != 0) {
                return PRED_SORT_ERROR;
            }
        }

        r = s->nheap ? s->heap[0]->cur : NULL;

        if (!s->held) {
            if (r == NULL) {
                return PRED_SORT_DONE;
            }

            s->take = 1;
            continue;
        }

        p = (pred_rec_t *) s->hold.data;
        *rec = p;

        if (r && r->klen == p->klen
            && memcmp(pred_rec_key(r), pred_rec_key(p), r->klen) == 0)
        {
            *again = r;
            s->take = 1;
            return PRED_SORT_DUP;
        }

        s->held = 0;

        return PRED_SORT_OK;
    }
}


void
pred_sort_cleanup(pred_sort_t *s)
{
    size_t              i;
    pred_sort_block_t  *blk, *next;

    if (s->merge) {
        for (i = 0; i < s->nruns; i++) {
            if (s->merge[i].fp) {
                fclose(s->merge[i].fp);
            }

            pred_buf_free(&s->merge[i].buf);
        }
    }

    for (i = 0; i < s->nruns; i++) {
        unlink(s->runs[i]);
        free(s->runs[i]);
    }

    for (blk = s->blocks; blk; blk = next) {
        next = blk->next;
        free(blk);
    }

    free(s->runs);
    free(s->recs);
    free(s->merge);
    free(s->heap);
    pred_buf_free(&s->hold);

    s->runs = NULL;
    s->nruns = 0;
    s->recs = NULL;
    s->nrecs = 0;
    s->recs_size = 0;
    s->blocks = NULL;
    s->block = NULL;
    s->arena_used = 0;
    s->merge = NULL;
    s->heap = NULL;
    s->nheap = 0;
    s->held = 0;
    s->take = 0;
}


static int
pred_sort_out_of_memory(pred_sort_t *s)
{
    snprintf(s->err, sizeof(s->err), "out of memory");

    return -1;
}


/* LMDB's default order: bytes, then length; ties in input order */
static int
pred_rec_cmp(const pred_rec_t *a, const pred_rec_t *b)
{
    int     c;
    size_t  n;

    n = a->klen < b->klen ? a->klen : b->klen;
    c = memcmp(pred_rec_key(a), pred_rec_key(b), n);

    if (c != 0) {
        return c;
    }

    if (a->klen != b->klen) {
        return a->klen < b->klen ? -1 : 1;
    }

    if (a->file != b->file) {
        return a->file < b->file ? -1 : 1;
    }

    return a->line < b->line ? -1 : (a->line > b->line);
}


/*
 * Sorts the index: the prefixes are read from the bytes all keys share on,
 * padded with zeros.  Where two prefixes differ they order the keys as
 * pred_rec_cmp() does (a key that ends inside the prefix has zeros where
 * the longer one has a byte); equal ones leave it to pred_rec_cmp().
 */
static void
pred_sort_index(pred_sort_t *s)
{
    size_t       i, j, n;
    uint64_t     prefix;
    const char  *key;
    pred_rec_t  *r;

    for (i = 0; i < s->nrecs; i++) {
        r = s->recs[i].rec;
        key = pred_rec_key(r) + s->common;
        n = r->klen - s->common;
        prefix = 0;

        for (j = 0; j < 8; j++) {
            prefix = prefix << 8 | (j < n ? (unsigned char) key[j] : 0);
        }

        s->recs[i].prefix = prefix;
    }

    pred_sort_items(s->recs, s->nrecs);
}


static int
pred_sort_item_lt(const pred_sort_item_t *a, const pred_sort_item_t *b)
{
    if (a->prefix != b->prefix) {
        return a->prefix < b->prefix;
    }

    /* the partition meets its pivot: not worth a cache miss */
    if (a->rec == b->rec) {
        return 0;
    }

    return pred_rec_cmp(a->rec, b->rec) < 0;
}


/*
 * Quicksort (median of three, Hoare's partition; insertion sort for short
 * ranges), looping on the larger side so the stack stays O(log n).  No two
 * items are equal: records tie on file and line at worst.
 */
static void
pred_sort_items(pred_sort_item_t *a, size_t n)
{
    size_t            i, j, m;
    pred_sort_item_t  p, t;

    while (n > 16) {
        m = (n - 1) / 2;

        if (pred_sort_item_lt(&a[m], &a[0])) {
            t = a[m]; a[m] = a[0]; a[0] = t;
        }

        if (pred_sort_item_lt(&a[n - 1], &a[m])) {
            t = a[n - 1]; a[n - 1] = a[m]; a[m] = t;

            if (pred_sort_item_lt(&a[m], &a[0])) {
                t = a[m]; a[m] = a[0]; a[0] = t;
            }
        }

        p = a[m];
        i = 0;
        j = n - 1;

        /* a[0] <= p <= a[n - 1] stop both scans inside the range */
        for ( ;; ) {
            while (pred_sort_item_lt(&a[i], &p)) {
                i++;
            }

            while (pred_sort_item_lt(&p, &a[j])) {
                j--;
            }

            if (i >= j) {
                break;
            }

            t = a[i]; a[i] = a[j]; a[j] = t;
            i++;
            j--;
        }

        /* [0, j] and [j + 1, n): sort the smaller one first */
        if (j + 1 < n - j - 1) {
            pred_sort_items(a, j + 1);
            a += j + 1;
            n -= j + 1;

        } else {
            pred_sort_items(a + j + 1, n - j - 1);
            n = j + 1;
        }
    }

    for (i = 1; i < n; i++) {
        t = a[i];

        for (j = i; j > 0 && pred_sort_item_lt(&t, &a[j - 1]); j--) {
            a[j] = a[j - 1];
        }

        a[j] = t;
    }
}


static void
pred_sort_prefetch(const pred_rec_t *r)
{
    /* a header and about 110 bytes: up to three cache lines */
    __builtin_prefetch(r);
    __builtin_prefetch((const char *) r + 64);
    __builtin_prefetch((const char *) r + 128);
}


/* 1: run->cur is the next record, 0: the run is done, -1: s->err */
static int
pred_sort_run_next(pred_sort_t *s, pred_sort_run_t *run)
{
    size_t      n;
    pred_rec_t  hdr;

    if (run->fp == NULL) {
        if (run->pos == run->nrecs) {
            return 0;
        }

        /* records are read in key order, far apart in the arena */
        if (run->pos + PRED_SORT_AHEAD < run->nrecs) {
            pred_sort_prefetch(run->recs[run->pos + PRED_SORT_AHEAD].rec);
        }

        run->cur = run->recs[run->pos++].rec;
        return 1;
    }

    n = fread(&hdr, 1, sizeof(pred_rec_t), run->fp);

    if (n == 0 && !ferror(run->fp)) {
        return 0;
    }

    if (n != sizeof(pred_rec_t)) {
        goto failed;
    }

    if (pred_buf_reserve(&run->buf, pred_rec_size(&hdr)) != 0) {
        return pred_sort_out_of_memory(s);
    }

    memcpy(run->buf.data, &hdr, sizeof(pred_rec_t));

    if (fread(run->buf.data + sizeof(pred_rec_t), hdr.klen + hdr.vlen, 1,
              run->fp) != 1 && hdr.klen + hdr.vlen)
    {
        goto failed;
    }

    run->cur = (pred_rec_t *) run->buf.data;

    return 1;

failed:

    if (ferror(run->fp)) {
        snprintf(s->err, sizeof(s->err), "%s: read error: %s", run->path,
                 strerror(errno));

    } else {
        snprintf(s->err, sizeof(s->err), "%s: read error: the run is cut "
                 "short", run->path);
    }

    return -1;
}


/* moves the top run on to its next record, or takes it off the heap */
static int
pred_sort_pop(pred_sort_t *s)
{
    int  rc;

    rc = pred_sort_run_next(s, s->heap[0]);
    if (rc < 0) {
        return -1;
    }

    if (rc == 0) {
        s->heap[0] = s->heap[--s->nheap];
    }

    pred_sort_heap_down(s->heap, s->nheap, 0);

    return 0;
}


static void
pred_sort_heap_down(pred_sort_run_t **heap, size_t n, size_t i)
{
    size_t            l, m;
    pred_sort_run_t  *t;

    for ( ;; ) {
        l = 2 * i + 1;
        m = i;

        if (l < n && pred_rec_cmp(heap[l]->cur, heap[m]->cur) < 0) {
            m = l;
        }

        if (l + 1 < n && pred_rec_cmp(heap[l + 1]->cur, heap[m]->cur) < 0) {
            m = l + 1;
        }

        if (m == i) {
            return;
        }

        t = heap[i];
        heap[i] = heap[m];
        heap[m] = t;
        i = m;
    }
}
