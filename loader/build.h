/*
 * pred-snapshot build: declarations shared by the build's files only.
 *
 *   build.c        the command: the phases in order, checks, cleanup
 *   build_args.c   the command line
 *   build_input.c  finding the input files and reading their records
 *   sort.c         the external sort (sort.h; plain C, unit-tested alone)
 *   build_lmdb.c   writing the sorted records to the LMDB file
 */

#ifndef PRED_BUILD_H
#define PRED_BUILD_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <pthread.h>

#include <lmdb.h>

#include "pred_snap.h"
#include "jsonl.h"
#include "sort.h"


/* entries per LMDB write transaction, and so between progress lines */
#define PRED_WRITER_BATCH  65536

/* bytes of records handed to the writer's thread at a time */
#define PRED_WRITER_QUEUE  (1024 * 1024)

/* a record in the queue, 8-byte aligned */
#define PRED_QUEUED_SIZE(r)  ((pred_rec_size(r) + 7) & ~(size_t) 7)


/* a key whose data is as of a later time than the file's (compact) */
typedef struct {
    char               *key;
    size_t              klen;
    time_t              as_of;
} pred_key_time_t;


typedef struct {
    char               *dir;
    char               *version;
    char              **inputs;
    size_t              ninputs;
    int                 no_success_marker;
    int                 dedupe;
    int                 quiet;
    uint64_t            min_entries;
    int                 max_shrink;       /* percent, -1: off */
    uint64_t            freshness_sla;
    const char         *owner;
    const char         *invalidated_by;
    const char         *fallback;
    time_t              created_at;
    time_t              as_of;          /* 0: created_at */
    const char         *delta_of;       /* a delta over this base */
    char                delta_of_checksum[32];
    pred_key_time_t    *key_as_of;      /* the "as_of" database */
    size_t              nkey_as_of;
    size_t              memory;
    pred_jsonl_opts_t   jsonl;
} pred_build_opts_t;


/*
 * The records are written by a thread of their own, on the second core,
 * while the build merges the next ones: the build fills one buffer of
 * records while the thread writes (and hashes) the other.
 */
typedef struct {
    MDB_env            *env;
    MDB_txn            *txn;            /* the thread's, then the meta's */
    MDB_dbi             data;
    MDB_dbi             meta;
    const char         *path;
    uint64_t            queued;         /* records handed over */
    uint64_t            written;        /* by the thread; read after it */
    uint64_t            deletes;        /* a delta's, among written */
    uint64_t            hash;

    pthread_t           thread;
    pthread_mutex_t     mutex;
    pthread_cond_t      cond;
    pred_buf_t          fill;           /* the build's */
    pred_buf_t          work;           /* the thread's while busy */
    /* not bit fields: started is this thread's alone, the rest shared
     * under the mutex */
    unsigned            started;
    unsigned            busy;           /* work is the thread's */
    unsigned            stop;           /* no more records */
    unsigned            abandon;        /* and drop what was written */
    unsigned            failed;         /* the thread printed an error */
} pred_writer_t;


typedef struct {
    pred_build_opts_t  *opts;

    char              **files;          /* every file read, for messages */
    size_t              nfiles;
    uint64_t            total_bytes;    /* on disk, for the progress line */
    uint64_t            read_bytes;     /* of files already read */

    pred_sort_t         sort;
    pred_writer_t       writer;
    pred_buf_t          key;            /* a line's, parsed */
    pred_buf_t          val;

    struct timespec     started;
    double              last_progress;
} pred_build_t;


/* build_args.c: PRED_EXIT_OK, or the exit code of a message printed */
int pred_build_parse_args(int argc, char **argv, pred_build_opts_t *o);
void pred_build_free_args(pred_build_opts_t *o);
/* created_at (SOURCE_DATE_EPOCH when set), as_of, a default version */
void pred_build_defaults(pred_build_opts_t *o);

/* build_input.c */
int pred_build_add_input(pred_build_t *b, const char *arg);
int pred_build_read(pred_build_t *b, uint32_t file);

/*
 * build_lmdb.c: every failure is reported; pred_writer_close() always.
 * pred_writer_append() copies the record; written counts once
 * pred_writer_commit() has returned.
 */
int pred_writer_open(pred_writer_t *w, const char *path, uint64_t records,
    uint64_t bytes);
int pred_writer_append(pred_writer_t *w, const pred_rec_t *r);
int pred_writer_commit(pred_writer_t *w, const pred_build_opts_t *o);
void pred_writer_close(pred_writer_t *w);

/* build.c */
void pred_build_progress(pred_build_t *b, const char *phase, uint64_t done);

#endif /* PRED_BUILD_H */
