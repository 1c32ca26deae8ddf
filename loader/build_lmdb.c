/*
 * pred-snapshot build: the LMDB writer.  The sorted records are appended
 * (MDB_APPEND fills pages sequentially, which is what makes the build
 * faster than random puts) in transactions of PRED_WRITER_BATCH entries,
 * hashed on the way for the checksum, by a thread of their own that owns
 * those transactions; the metadata goes last.  The file is written without
 * LMDB's syncs and synced once at the end.
 */

/* sync_file_range() */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <jansson.h>

#include "loader.h"
#include "build.h"


static int pred_writer_hand_over(pred_writer_t *w);
static int pred_writer_join(pred_writer_t *w, int abandon);
static void *pred_writer_thread(void *arg);
static int pred_writer_write(pred_writer_t *w);
static void pred_writer_start_writeback(pred_writer_t *w);
static int pred_writer_put_meta(pred_writer_t *w, const pred_build_opts_t *o);
static int pred_writer_put(MDB_txn *txn, MDB_dbi dbi, const char *name,
    const char *value);
static const char *pred_writer_error(MDB_env *env, int rc, char *buf,
    size_t size);


/* records and bytes (keys and values) size the map */
int
pred_writer_open(pred_writer_t *w, const char *path, uint64_t records,
    uint64_t bytes)
{
    int     rc;
    char    why[128];
    size_t  mapsize;

    memset(w, 0, sizeof(pred_writer_t));
    w->path = path;
    w->hash = PRED_SNAP_FNV_INIT;

    rc = mdb_env_create(&w->env);
    if (rc != 0) {
        w->env = NULL;
        pred_error("mdb_env_create: %s", mdb_strerror(rc));
        return -1;
    }

    /* pages are filled in order: data plus per-entry overhead, with room */
    mapsize = (bytes + records * 32) * 2 + 64 * 1024 * 1024;
    mapsize = (mapsize + 65535) & ~(size_t) 65535;

    mdb_env_set_mapsize(w->env, mapsize);
    mdb_env_set_maxdbs(w->env, 3);

    rc = mdb_env_open(w->env, path, MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOSYNC
                                    | MDB_NOMETASYNC, 0644);

    /* both databases made in a transaction of their own: the thread
     * starts its transactions with their handles */
    if (rc == 0) {
        rc = mdb_txn_begin(w->env, NULL, 0, &w->txn);
    }
    if (rc == 0) {
        rc = mdb_dbi_open(w->txn, PRED_SNAP_DB_DATA, MDB_CREATE, &w->data);
    }
    if (rc == 0) {
        rc = mdb_dbi_open(w->txn, PRED_SNAP_DB_META, MDB_CREATE, &w->meta);
    }
    if (rc == 0) {
        rc = mdb_txn_commit(w->txn);
        w->txn = NULL;
    }

    if (rc != 0) {
        pred_error("%s: %s", path,
                   pred_writer_error(w->env, rc, why, sizeof(why)));
        return -1;
    }

    if (pred_buf_reserve(&w->fill, PRED_WRITER_QUEUE) != 0
        || pred_buf_reserve(&w->work, PRED_WRITER_QUEUE) != 0)
    {
        pred_error("out of memory");
        return -1;
    }

    pthread_mutex_init(&w->mutex, NULL);
    pthread_cond_init(&w->cond, NULL);

    rc = pthread_create(&w->thread, NULL, pred_writer_thread, w);
    if (rc != 0) {
        pthread_mutex_destroy(&w->mutex);
        pthread_cond_destroy(&w->cond);
        pred_error("pthread_create: %s", strerror(rc));
        return -1;
    }

    w->started = 1;

    return 0;
}


/* records come in key order, each key once; copied to the queue */
int
pred_writer_append(pred_writer_t *w, const pred_rec_t *r)
{
    size_t  size;

    size = PRED_QUEUED_SIZE(r);

    if (w->fill.len && w->fill.len + size > w->fill.size
        && pred_writer_hand_over(w) != 0)
    {
        return -1;
    }

    /* a record bigger than the queue goes alone */
    if (pred_buf_reserve(&w->fill, w->fill.len + size) != 0) {
        pred_error("out of memory");
        return -1;
    }

    memcpy(w->fill.data + w->fill.len, r, pred_rec_size(r));
    w->fill.len += size;
    w->queued++;

    return 0;
}


/* the last records, the metadata, the last commit, and the one sync */
int
pred_writer_commit(pred_writer_t *w, const pred_build_opts_t *o)
{
    int   rc;
    char  why[128];

    if (w->fill.len && pred_writer_hand_over(w) != 0) {
        return -1;
    }

    if (pred_writer_join(w, 0) != 0) {
        return -1;
    }

    rc = mdb_txn_begin(w->env, NULL, 0, &w->txn);
    if (rc != 0) {
        pred_error("%s: %s", w->path,
                   pred_writer_error(w->env, rc, why, sizeof(why)));
        return -1;
    }

    if (pred_writer_put_meta(w, o) != 0) {
        return -1;
    }

    rc = mdb_txn_commit(w->txn);
    w->txn = NULL;

    if (rc == 0) {
        rc = mdb_env_sync(w->env, 1);
    }

    if (rc != 0) {
        pred_error("%s: %s", w->path,
                   pred_writer_error(w->env, rc, why, sizeof(why)));
        return -1;
    }

    return 0;
}


void
pred_writer_close(pred_writer_t *w)
{
    (void) pred_writer_join(w, 1);

    if (w->txn) {
        mdb_txn_abort(w->txn);
        w->txn = NULL;
    }

    if (w->env) {
        mdb_env_close(w->env);
        w->env = NULL;
    }

    pred_buf_free(&w->fill);
    pred_buf_free(&w->work);
}


/* waits for the thread to be done with its buffer, then gives it fill */
static int
pred_writer_hand_over(pred_writer_t *w)
{
    pred_buf_t  t;

    pthread_mutex_lock(&w->mutex);

    while (w->busy) {
        pthread_cond_wait(&w->cond, &w->mutex);
    }

    if (w->failed) {
        pthread_mutex_unlock(&w->mutex);
        return -1;
    }

    t = w->work;
    w->work = w->fill;
    w->fill = t;
    w->fill.len = 0;
    w->busy = 1;

    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mutex);

    return 0;
}


/*
 * Stops the thread once it has written what it was given (its last
 * transaction committed), or, abandoning, at once (aborted); -1 when it
 * failed.  Does nothing when no thread runs.
 */
static int
pred_writer_join(pred_writer_t *w, int abandon)
{
    int  failed;

    if (!w->started) {
        return 0;
    }

    pthread_mutex_lock(&w->mutex);
    w->stop = 1;
    w->abandon = abandon;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mutex);

    pthread_join(w->thread, NULL);
    pthread_mutex_destroy(&w->mutex);
    pthread_cond_destroy(&w->cond);

    w->started = 0;
    failed = w->failed;

    return failed ? -1 : 0;
}


static void *
pred_writer_thread(void *arg)
{
    int             rc;
    char            why[128];
    pred_writer_t  *w;

    w = arg;
    rc = 0;

    pthread_mutex_lock(&w->mutex);

    for ( ;; ) {
        while (!w->busy && !w->stop) {
            pthread_cond_wait(&w->cond, &w->mutex);
        }

        if (!w->busy || w->abandon) {
            break;
        }

        pthread_mutex_unlock(&w->mutex);

        rc = pred_writer_write(w);

        pthread_mutex_lock(&w->mutex);

        w->busy = 0;
        w->failed = rc != 0;
        pthread_cond_broadcast(&w->cond);

        if (rc != 0) {
            break;
        }
    }

    if (w->txn && (rc != 0 || w->abandon)) {
        mdb_txn_abort(w->txn);
        w->txn = NULL;

    } else if (w->txn) {
        rc = mdb_txn_commit(w->txn);
        w->txn = NULL;

        if (rc != 0) {
            pred_error("%s: %s", w->path,
                       pred_writer_error(w->env, rc, why, sizeof(why)));
            w->failed = 1;
        }
    }

    pthread_mutex_unlock(&w->mutex);

    return NULL;
}


/* the thread: the records in work, hashed for the checksum */
static int
pred_writer_write(pred_writer_t *w)
{
    int                rc;
    char               why[128], *p, *end;
    MDB_val            k, v;
    const pred_rec_t  *r;

    rc = 0;
    p = w->work.data;
    end = p + w->work.len;

    for ( /* void */ ; p < end; p += PRED_QUEUED_SIZE(r)) {
        r = (const pred_rec_t *) p;

        if (w->txn == NULL) {
            rc = mdb_txn_begin(w->env, NULL, 0, &w->txn);
            if (rc != 0) {
                break;
            }
        }

        k.mv_data = pred_rec_key(r);
        k.mv_size = r->klen;
        v.mv_data = pred_rec_val(r);
        v.mv_size = r->vlen;

        rc = mdb_put(w->txn, w->data, &k, &v, MDB_APPEND);

        if (rc == 0 && ++w->written % PRED_WRITER_BATCH == 0) {
            rc = mdb_txn_commit(w->txn);
            w->txn = NULL;

            pred_writer_start_writeback(w);
        }

        if (rc != 0) {
            break;
        }

        w->hash = pred_snap_hash_record(w->hash, k.mv_data, k.mv_size,
                                        v.mv_data, v.mv_size);

        /* only a delta's input has them (see pred_jsonl_opts_t) */
        w->deletes += (v.mv_size == 0);
    }

    if (rc != 0) {
        pred_error("writing entry %" PRIu64 ": %s", w->written + 1,
                   pred_writer_error(w->env, rc, why, sizeof(why)));
        return -1;
    }

    return 0;
}


/*
 * The disk starts on what is committed while the build goes on, rather
 * than all of it waiting for the one sync at the end (a gigabyte at 10M
 * records).  Only a start: the sync still makes it durable, and a failure
 * here shows there.
 */
static void
pred_writer_start_writeback(pred_writer_t *w)
{
    int  fd;

    if (mdb_env_get_fd(w->env, &fd) == 0) {
        (void) sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
    }
}


static int
pred_writer_put_meta(pred_writer_t *w, const pred_build_opts_t *o)
{
    int       rc;
    char      why[128];
    char      entries[32], created[32], sla[32], sum[32], asof[32];
    char      deletes[32], keys[32], when[32], ksum[32];
    size_t    j;
    uint64_t  h;
    MDB_val   k, v;
    MDB_dbi   kdbi;
    char     *source;
    size_t    i;
    json_t   *arr;
    MDB_txn  *txn;
    MDB_dbi   dbi;

    arr = json_array();
    for (i = 0; i < o->ninputs; i++) {
        json_array_append_new(arr, json_string(o->inputs[i]));
    }

    source = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);

    if (source == NULL) {
        pred_error("out of memory");
        return -1;
    }

    snprintf(sum, sizeof(sum), "fnv1a64:%016" PRIx64, w->hash);
    snprintf(entries, sizeof(entries), "%" PRIu64, w->written);
    snprintf(created, sizeof(created), "%jd", (intmax_t) o->created_at);
    snprintf(asof, sizeof(asof), "%jd", (intmax_t) o->as_of);
    snprintf(sla, sizeof(sla), "%" PRIu64, o->freshness_sla);
    snprintf(deletes, sizeof(deletes), "%" PRIu64, w->deletes);

    txn = w->txn;
    dbi = w->meta;

    rc = pred_writer_put(txn, dbi, PRED_SNAP_META_FORMAT, PRED_SNAP_FORMAT);
    rc = rc ? rc : pred_writer_put(txn, dbi, PRED_SNAP_META_VERSION,
                                   o->version);
    rc = rc ? rc : pred_writer_put(txn, dbi, PRED_SNAP_META_CREATED_AT,
                                   created);
    rc = rc ? rc : pred_writer_put(txn, dbi, PRED_SNAP_META_AS_OF, asof);
    rc = rc ? rc : pred_writer_put(txn, dbi, PRED_SNAP_META_ENTRIES, entries);
    rc = rc ? rc : pred_writer_put(txn, dbi, PRED_SNAP_META_CHECKSUM, sum);
    rc = rc ? rc : pred_writer_put(txn, dbi, PRED_SNAP_META_SOURCE, source);
    rc = rc ? rc : pred_writer_put(txn, dbi, PRED_SNAP_META_BUILDER,
                                   PRED_LOADER_NAME " " PRED_LOADER_VERSION);
    rc = rc ? rc : pred_writer_put(txn, dbi, PRED_SNAP_META_SLA, sla);
    rc = rc ? rc : pred_writer_put(txn, dbi, PRED_SNAP_META_FALLBACK,
                                   o->fallback);

    if (o->delta_of) {
        rc = rc ? rc : pred_writer_put(txn, dbi, PRED_SNAP_META_DELTA_OF,
                                       o->delta_of);
        rc = rc ? rc : pred_writer_put(txn, dbi, PRED_SNAP_META_BASE_SUM,
                                       o->delta_of_checksum);
        rc = rc ? rc : pred_writer_put(txn, dbi, PRED_SNAP_META_DELETES,
                                       deletes);
    }

    /* in key order (compact sorts them), hashed as verify reads them */
    if (o->nkey_as_of) {
        rc = rc ? rc : mdb_dbi_open(txn, PRED_SNAP_DB_AS_OF, MDB_CREATE,
                                    &kdbi);
        h = PRED_SNAP_FNV_INIT;

        for (j = 0; rc == 0 && j < o->nkey_as_of; j++) {
            snprintf(when, sizeof(when), "%jd",
                     (intmax_t) o->key_as_of[j].as_of);
            k.mv_data = o->key_as_of[j].key;
            k.mv_size = o->key_as_of[j].klen;
            v.mv_data = when;
            v.mv_size = strlen(when);
            rc = mdb_put(txn, kdbi, &k, &v, MDB_APPEND);
            h = pred_snap_hash_record(h, k.mv_data, k.mv_size, v.mv_data,
                                      v.mv_size);
        }

        snprintf(keys, sizeof(keys), "%zu", o->nkey_as_of);
        snprintf(ksum, sizeof(ksum), "fnv1a64:%016" PRIx64, h);
        rc = rc ? rc : pred_writer_put(txn, dbi, PRED_SNAP_META_AS_OF_KEYS,
                                       keys);
        rc = rc ? rc : pred_writer_put(txn, dbi, PRED_SNAP_META_AS_OF_SUM,
                                       ksum);
    }

    if (o->owner) {
        rc = rc ? rc : pred_writer_put(txn, dbi, PRED_SNAP_META_OWNER,
                                       o->owner);
    }

    if (o->invalidated_by) {
        rc = rc ? rc : pred_writer_put(txn, dbi, PRED_SNAP_META_INVALIDATED,
                                       o->invalidated_by);
    }

    free(source);

    if (rc != 0) {
        pred_error("writing metadata: %s",
                   pred_writer_error(w->env, rc, why, sizeof(why)));
        return -1;
    }

    return 0;
}


static int
pred_writer_put(MDB_txn *txn, MDB_dbi dbi, const char *name,
    const char *value)
{
    MDB_val  k, v;

    k.mv_data = (void *) name;
    k.mv_size = strlen(name);
    v.mv_data = (void *) value;
    v.mv_size = strlen(value);

    return mdb_put(txn, dbi, &k, &v, 0);
}


/*
 * LMDB reports a short write, which is what a full disk gives, as EIO:
 * say so when the file system is all but out of space.
 */
static const char *
pred_writer_error(MDB_env *env, int rc, char *buf, size_t size)
{
    const char      *path;
    struct statvfs   vfs;

    if ((rc == EIO || rc == ENOSPC)
        && mdb_env_get_path(env, &path) == 0
        && statvfs(path, &vfs) == 0
        && (uint64_t) vfs.f_bavail * vfs.f_frsize < 1024 * 1024)
    {
        snprintf(buf, size, "no space left on device (%" PRIu64 " KiB free; "
                 "LMDB: %s)", (uint64_t) vfs.f_bavail * vfs.f_frsize / 1024,
                 mdb_strerror(rc));
        return buf;
    }

    return mdb_strerror(rc);
}
