/*
 * The snapshot file format, shared by the nginx module and pred-snapshot.
 *
 * A snapshot is one LMDB environment in one file (MDB_NOSUBDIR), written
 * once and never modified.  It has two named databases:
 *
 *   "data"  key: the prediction key, 1..511 bytes, no control bytes
 *           value: the prediction, compact JSON, sent as is
 *   "meta"  key: a metadata name below, value: its text
 *
 * A delta (see pred_delta.h) has the same two databases and metadata, and
 * "delta_of" naming its base version: there an empty value is a deletion.
 *
 * A delta also records its base's checksum ("delta_of_checksum"): a base
 * rebuilt under the same version is another base.
 *
 * A base made by compact may have a third, "as_of": key: a key the deltas
 * changed (deleted ones too), value: the Unix seconds its data is as of,
 * when later than the file's "as_of" (metadata "as_of_keys" counts them,
 * "as_of_checksum" is the checksum's hash over them).
 *
 * The content checksum is FNV-1a 64 over every data record in key order,
 * each record hashed as: key length (4 bytes, little endian), key bytes,
 * value length (4 bytes, little endian), value bytes (a delta's deletions
 * too, with length 0).
 *
 * Plain C, no nginx types.
 */

#ifndef PRED_SNAP_H
#define PRED_SNAP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>


#define PRED_SNAP_FORMAT           "pred-snapshot/1"

#define PRED_SNAP_DB_DATA          "data"
#define PRED_SNAP_DB_META          "meta"
#define PRED_SNAP_DB_AS_OF         "as_of"

#define PRED_SNAP_META_FORMAT      "format"
#define PRED_SNAP_META_VERSION     "version"
#define PRED_SNAP_META_CREATED_AT  "created_at"
#define PRED_SNAP_META_ENTRIES     "entries"
#define PRED_SNAP_META_CHECKSUM    "checksum"
#define PRED_SNAP_META_SOURCE      "source"
#define PRED_SNAP_META_BUILDER     "builder"
#define PRED_SNAP_META_SLA         "freshness_sla"
#define PRED_SNAP_META_OWNER       "owner"
#define PRED_SNAP_META_INVALIDATED "invalidated_by"
#define PRED_SNAP_META_FALLBACK    "fallback_if_stale"
#define PRED_SNAP_META_AS_OF       "as_of"
#define PRED_SNAP_META_DELTA_OF    "delta_of"
#define PRED_SNAP_META_DELETES     "deletes"
#define PRED_SNAP_META_AS_OF_KEYS  "as_of_keys"
#define PRED_SNAP_META_AS_OF_SUM   "as_of_checksum"
#define PRED_SNAP_META_BASE_SUM    "delta_of_checksum"

#define PRED_SNAP_VERSION_MAX      64
#define PRED_SNAP_ERR_MAX          512

#define PRED_SNAP_FNV_INIT         0xcbf29ce484222325ULL

/* pred_snap_get(): the map faulted; the snapshot must be closed */
#define PRED_SNAP_FAULT            -2

/* pred_snap_open(): out of memory or file descriptors; try again later */
#define PRED_SNAP_TRANSIENT        -3


typedef enum {
    PRED_SNAP_STALE_SERVE = 0,
    PRED_SNAP_STALE_UPSTREAM,
    PRED_SNAP_STALE_FAIL
} pred_snap_stale_t;


/* LMDB is pred_snap.c's alone: its handles are opaque here */
typedef struct {
    void               *env;            /* MDB_env * */
    unsigned int        data;           /* MDB_dbi */
    unsigned int        meta;           /* MDB_dbi */
    unsigned int        key_as_of;      /* MDB_dbi, when as_of_keys */
    void               *txn;            /* MDB_txn *, kept reset between
                                           lookups */

    uint64_t           *index;          /* once built, or NULL */
    size_t              index_mask;     /* slots - 1 */
    int                 index_complete; /* every entry is in the index */
    void               *index_build;    /* the index being built */

    char                version[PRED_SNAP_VERSION_MAX + 1];
    time_t              created_at;
    time_t              as_of;          /* what the data is as of; default
                                           created_at */
    uint64_t            entries;        /* a delta's deletions included */
    uint64_t            deletes;        /* a delta's */
    char                delta_of[PRED_SNAP_VERSION_MAX + 1];
                                        /* a delta's base; "" in a base */
    uint64_t            as_of_keys;     /* entries of the "as_of" db */
    char                as_of_checksum[32];
    char                base_checksum[32];  /* a delta's base's */
    uint64_t            freshness_sla;  /* seconds, 0: none */
    pred_snap_stale_t   fallback;
    char                checksum[32];
    size_t              file_size;
} pred_snap_t;


/*
 * Every call below that reads the map runs under a fault guard: a SIGBUS,
 * SIGSEGV or SIGFPE inside LMDB (a file truncated under the map, corrupt
 * pages that LMDB trusts) becomes an error return instead of killing the
 * process.  The first pred_snap_open() installs the handlers; a fault
 * outside a guarded call goes to the handler that was there before.
 *
 * Opens a published snapshot read-only (MDB_RDONLY | MDB_NOSUBDIR |
 * MDB_NOLOCK, plus MDB_NORDAHEAD when nordahead is set) and checks what is
 * cheap to check: the file is not truncated, both databases and the
 * metadata are there and well-formed, and the entry count matches.
 * On error returns -1 with a reason in err and leaves s closed, or
 * PRED_SNAP_TRANSIENT when what failed was the process's resources
 * (memory, file descriptors), not the file.
 */
int pred_snap_open(pred_snap_t *s, const char *path, int nordahead,
    char *err, size_t errlen);

void pred_snap_close(pred_snap_t *s);

/* The open file's descriptor, for fstat and mmap; -1 if none. */
int pred_snap_fd(const pred_snap_t *s);

typedef void *(*pred_snap_alloc_pt)(void *ctx, size_t size);

/*
 * Looks a key up and copies the value out into alloc(ctx, len) (alloc
 * NULL: no copy, *val NULL, only *val_len).  Returns 1
 * with *val and *val_len on a hit, 0 on a miss, -1 on error and
 * PRED_SNAP_FAULT when the map faulted (reason in err; the value may have
 * been allocated by then and stays the caller's; after a fault the
 * snapshot must be closed, not read again).
 */
int pred_snap_get(pred_snap_t *s, const void *key, size_t key_len,
    pred_snap_alloc_pt alloc, void *ctx, void **val, size_t *val_len,
    char *err, size_t errlen);

/*
 * Builds an in-memory hash index of the data database (a reader's option;
 * the file is unchanged): each lookup then reads one slot and the entry's
 * node in the map instead of walking the B-tree, which at millions of keys
 * costs a cache and TLB miss per level.  8 to 16 bytes per key of anonymous
 * memory (huge pages where the kernel allows it).  Entries whose value is
 * not stored inline (overflow pages) are left out and found through LMDB.
 *
 * Built in steps, so that an event loop is never blocked for long: each
 * call reads up to n more entries.  Returns 1 once the index is built and
 * used by pred_snap_get() (lookups before that go through LMDB), 0 while
 * entries remain, -1 on error (reason in err) or PRED_SNAP_FAULT; after an
 * error the snapshot serves without an index, and after a fault it must be
 * closed.
 */
int pred_snap_index_step(pred_snap_t *s, uint64_t n, char *err,
    size_t errlen);

/*
 * The full check that publish relies on: every key valid, every value valid
 * JSON (or, in a delta, empty: a deletion), the counts and the content
 * checksum as recorded.
 */
int pred_snap_verify(pred_snap_t *s, char *err, size_t errlen);

/*
 * When the data of key is as of: the file's as_of, or later for a key
 * the "as_of" database names.  Returns 1 with *as_of, -1 on error or
 * PRED_SNAP_FAULT (reason in err).
 */
int pred_snap_key_as_of(pred_snap_t *s, const void *key, size_t key_len,
    time_t *as_of, char *err, size_t errlen);

/*
 * Calls each(ctx, ...) for every entry of a database in key order (data:
 * a delta's deletions with an empty value; as_of: the seconds as text),
 * under the fault guard; 0, or -1 with a reason in err (each's own when it
 * returns -1), or PRED_SNAP_FAULT.
 */
typedef int (*pred_snap_each_pt)(void *ctx, const void *key, size_t key_len,
    const void *val, size_t val_len, char *err, size_t errlen);

#define PRED_SNAP_EACH_DATA   0
#define PRED_SNAP_EACH_AS_OF  1

int pred_snap_each(pred_snap_t *s, int db, pred_snap_each_pt each,
    void *ctx, char *err, size_t errlen);

/* Reads one metadata value into buf as a C string; 0 if absent. */
int pred_snap_meta(pred_snap_t *s, const char *name, char *buf,
    size_t size);

uint64_t pred_snap_hash_record(uint64_t h, const void *key, size_t key_len,
    const void *val, size_t val_len);

/* "serve", "upstream", "fail" */
int pred_snap_parse_fallback(const char *s, pred_snap_stale_t *out);
const char *pred_snap_fallback_name(pred_snap_stale_t f);

/* Formats a reason into err; always returns -1, for "return fail(...)" */
int pred_snap_errorf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * 0 when val is a value the snapshot may hold (what jansson's json_loadb()
 * accepts, any JSON type), else -1 with jansson's reason in why.
 */
int pred_snap_value_valid(const char *val, size_t len, char *why,
    size_t size);

/* Decimal digits only, no sign or blanks; 0 or -1 */
int pred_snap_parse_u64(const char *s, uint64_t *out);
int pred_snap_parse_u64n(const void *p, size_t len, uint64_t *out);

/* A version is 1..64 of [A-Za-z0-9._-], not starting with "." */
int pred_snap_valid_version(const char *v);

#endif /* PRED_SNAP_H */
