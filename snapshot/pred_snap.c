/*
 * Opening, reading and verifying snapshot files.
 */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <jansson.h>
#include <lmdb.h>

#include "pred_key.h"
#include "pred_snap.h"
#include "pred_json.h"


static int pred_snap_open_map(pred_snap_t *s, const char *path,
    int nordahead, char *err, size_t errlen);
static int pred_snap_get_map(pred_snap_t *s, const void *key,
    size_t key_len, MDB_val *v, char *err, size_t errlen);
static int pred_snap_verify_map(pred_snap_t *s, char *err, size_t errlen);
static int pred_snap_verify_entry(void *ctx, const void *key,
    size_t key_len, const void *val, size_t val_len, char *err,
    size_t errlen);
static int pred_snap_each_map(pred_snap_t *s, unsigned int dbi,
    uint64_t expect, pred_snap_each_pt each, void *ctx, char *err,
    size_t errlen);
static int pred_snap_verify_as_of(void *ctx, const void *key,
    size_t key_len, const void *val, size_t val_len, char *err,
    size_t errlen);
static int pred_snap_lookup_map(pred_snap_t *s, unsigned int dbi,
    const void *key, size_t key_len, MDB_val *v, char *err, size_t errlen);
static int pred_snap_index_start(pred_snap_t *s, char *err, size_t errlen);
static int pred_snap_index_map(pred_snap_t *s, uint64_t n, char *err,
    size_t errlen);
static void pred_snap_index_free(pred_snap_t *s);
static int pred_snap_index_get(pred_snap_t *s, const void *key,
    size_t key_len, MDB_val *v);
static uint64_t pred_snap_index_hash(const unsigned char *p, size_t len);
static int pred_snap_transient(int rc);
static void pred_snap_guard_install(void);
static void pred_snap_arm(sigjmp_buf *jb);
static void pred_snap_unwind(pred_snap_t *s);
static void pred_snap_deadline(uint64_t ms);
static void pred_snap_on_fault(int signo, siginfo_t *si, void *uc);
static void pred_snap_on_assert(MDB_env *env, const char *msg);
static void pred_snap_escape(int signo);
static int pred_snap_faulted(char *err, size_t errlen);
static int pred_snap_read_meta(pred_snap_t *s, MDB_txn *txn, char *err,
    size_t errlen);
static int pred_snap_meta_txn(pred_snap_t *s, MDB_txn *txn, const char *name,
    char *buf, size_t size);
static int pred_snap_meta_u64(pred_snap_t *s, MDB_txn *txn,
    const char *name, uint64_t *out, uint64_t dflt, char *err,
    size_t errlen);


/* the guarded call in progress, if any: processes are single-threaded */
static sigjmp_buf * volatile  pred_snap_jmp;
static pthread_t              pred_snap_jmp_thread;
static volatile sig_atomic_t  pred_snap_over_time;
static int                    pred_snap_fault_signo;
static char                   pred_snap_assert_msg[128];
/* the verify walk's cursor, for the fault path to close */
static MDB_cursor            *pred_snap_cursor;
static struct sigaction       pred_snap_old_segv;
static struct sigaction       pred_snap_old_bus;
static struct sigaction       pred_snap_old_fpe;
static struct sigaction       pred_snap_old_vtalrm;


/*
 * Corrupt pages can also send LMDB round a cycle forever; opening and
 * verifying run with a deadline in CPU time (SIGVTALRM, which nginx does
 * not use).  When it passes, the alarm only sets a flag, which the verify
 * walk checks between entries: jumping out at any instruction could leave
 * malloc's own state half-changed.  Only LMDB still looping one period
 * later, inside one call, is jumped out of.  Lookups have no deadline: a
 * timer per lookup would cost two system calls, and a published file has
 * passed verify.
 */
#define PRED_SNAP_OPEN_CPU_MS    500        /* a few pages, whatever the size */
#define PRED_SNAP_VERIFY_CPU_MS  1000
#define PRED_SNAP_VERIFY_RATE    4096       /* bytes per extra ms: 4 MB/s */


/*
 * The index (pred_snap_index_step): open addressing with linear probing, one
 * 64-bit slot per entry, 0 when empty.  A slot holds the address of the
 * entry's leaf node in the map (user addresses are below 2^48) and the top
 * 16 bits of the key's hash, so that a probe for another key seldom reads
 * the map.  A leaf node is LMDB's layout (in the host's byte order): the
 * value's size in two 16-bit halves, flags, the key's size, the key, the
 * value; the build checks it against what LMDB's cursor returned for every
 * entry before trusting it.  At most 3/4 of the slots are used.
 */
#define PRED_SNAP_NODE_SIZE      8
#define PRED_SNAP_INDEX_PTR      ((1ULL << 48) - 1)
#define PRED_SNAP_INDEX_TAG(h)   ((h) & ~PRED_SNAP_INDEX_PTR)

/* LMDB's MDB_node: the halves of the value's size in the host's order */
typedef struct {
#if defined __BYTE_ORDER__ && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    uint16_t  size_hi;
    uint16_t  size_lo;
#else
    uint16_t  size_lo;
    uint16_t  size_hi;
#endif
    uint16_t  flags;
    uint16_t  key_size;
} pred_snap_node_t;

/* an index being built: the next step starts after the last key read */
typedef struct {
    uint64_t  *slots;
    size_t     mask;
    uint64_t   done;
    MDB_val    last;
    int        complete;
} pred_snap_build_t;


/*
 * The public calls that read the map all have this shape: a jump buffer
 * in their own frame, the work in a *_map function, and on a fault the
 * jump back here with nothing modified since sigsetjmp but globals.
 */
int
pred_snap_open(pred_snap_t *s, const char *path, int nordahead, char *err,
    size_t errlen)
{
    int         rc;
    sigjmp_buf  jb;

    pred_snap_guard_install();

    if (sigsetjmp(jb, 0) != 0) {
        pred_snap_deadline(0);
        pred_snap_close(s);
        return pred_snap_faulted(err, errlen);
    }

    pred_snap_arm(&jb);
    pred_snap_deadline(PRED_SNAP_OPEN_CPU_MS);
    rc = pred_snap_open_map(s, path, nordahead, err, errlen);
    pred_snap_deadline(0);
    pred_snap_jmp = NULL;

    return rc;
}


int
pred_snap_get(pred_snap_t *s, const void *key, size_t key_len,
    pred_snap_alloc_pt alloc, void *ctx, void **val, size_t *val_len,
    char *err, size_t errlen)
{
    int         rc;
    void       *p;
    MDB_val     v;
    sigjmp_buf  jb;

    if (sigsetjmp(jb, 0) != 0) {
        goto faulted;
    }

    pred_snap_arm(&jb);
    rc = pred_snap_get_map(s, key, key_len, &v, err, errlen);
    pred_snap_jmp = NULL;

    if (rc != 1 || alloc == NULL) {
        mdb_txn_reset(s->txn);

        /* only whether the key is there, and its value's size */
        if (rc == 1) {
            *val = NULL;
            *val_len = v.mv_size;
        }

        return rc;
    }

    /*
     * The caller's allocator runs outside the guard: a fault in it is not
     * the file's, and must not be swallowed as if it were.  The value stays
     * mapped while the transaction is open; copying it may fault (a file
     * cut short), so the copy is guarded again.
     */
    p = alloc(ctx, v.mv_size ? v.mv_size : 1);
    if (p == NULL) {
        mdb_txn_reset(s->txn);
        return pred_snap_errorf(err, errlen, "out of memory");
    }

    if (sigsetjmp(jb, 0) != 0) {
        goto faulted;
    }

    pred_snap_arm(&jb);
    memcpy(p, v.mv_data, v.mv_size);
    pred_snap_jmp = NULL;

    mdb_txn_reset(s->txn);

    *val = p;
    *val_len = v.mv_size;

    return 1;

faulted:

    mdb_txn_reset(s->txn);
    pred_snap_faulted(err, errlen);

    return PRED_SNAP_FAULT;
}


int
pred_snap_key_as_of(pred_snap_t *s, const void *key, size_t key_len,
    time_t *as_of, char *err, size_t errlen)
{
    int         rc;
    uint64_t    u;
    MDB_val     v;
    sigjmp_buf  jb;

    *as_of = s->as_of;

    if (s->as_of_keys == 0) {
        return 1;
    }

    if (sigsetjmp(jb, 0) != 0) {
        mdb_txn_reset(s->txn);
        pred_snap_faulted(err, errlen);
        return PRED_SNAP_FAULT;
    }

    pred_snap_arm(&jb);

    rc = pred_snap_lookup_map(s, s->key_as_of, key, key_len, &v, err,
                              errlen);

    /* verify checked every value; open did not: checked again here */
    if (rc == 1) {
        if (pred_snap_parse_u64n(v.mv_data, v.mv_size, &u) != 0) {
            rc = pred_snap_errorf(err, errlen, "as_of of the key is not "
                                  "Unix seconds");

        } else if ((time_t) u > *as_of) {
            *as_of = (time_t) u;
        }
    }

    pred_snap_jmp = NULL;
    mdb_txn_reset(s->txn);

    return rc == -1 ? -1 : 1;
}


int
pred_snap_index_step(pred_snap_t *s, uint64_t n, char *err, size_t errlen)
{
    int         rc;
    sigjmp_buf  jb;

    if (s->index) {
        return 1;
    }

    if (s->index_build == NULL
        && pred_snap_index_start(s, err, errlen) != 0)
    {
        return -1;
    }

    if (sigsetjmp(jb, 0) != 0) {
        pred_snap_unwind(s);
        pred_snap_index_free(s);
        pred_snap_faulted(err, errlen);
        return PRED_SNAP_FAULT;
    }

    pred_snap_arm(&jb);
    pred_snap_deadline(PRED_SNAP_OPEN_CPU_MS);
    rc = pred_snap_index_map(s, n, err, errlen);
    pred_snap_deadline(0);
    pred_snap_jmp = NULL;

    if (rc == -1) {
        pred_snap_index_free(s);
    }

    return rc;
}


int
pred_snap_verify(pred_snap_t *s, char *err, size_t errlen)
{
    int         rc;
    sigjmp_buf  jb;

    if (sigsetjmp(jb, 0) != 0) {
        pred_snap_unwind(s);
        return pred_snap_faulted(err, errlen);
    }

    pred_snap_arm(&jb);
    pred_snap_deadline(PRED_SNAP_VERIFY_CPU_MS
                       + s->file_size / PRED_SNAP_VERIFY_RATE);
    rc = pred_snap_verify_map(s, err, errlen);
    pred_snap_deadline(0);
    pred_snap_jmp = NULL;

    return rc;
}


/*
 * No CPU deadline here: each does work of its own (compact writes a new
 * file), and the file was verified before (publish does it).  each runs
 * under the guard, as it reads the mapped records: a fault in its own code
 * would be reported as the file's, and one in another thread (the loader's
 * writer) is left to that thread's handler.
 */
int
pred_snap_each(pred_snap_t *s, int db, pred_snap_each_pt each, void *ctx,
    char *err, size_t errlen)
{
    int         rc;
    sigjmp_buf  jb;

    if (sigsetjmp(jb, 0) != 0) {
        pred_snap_unwind(s);
        return pred_snap_faulted(err, errlen);
    }

    pred_snap_arm(&jb);

    if (db == PRED_SNAP_EACH_AS_OF) {
        rc = s->as_of_keys ? pred_snap_each_map(s, s->key_as_of,
                                                s->as_of_keys, each, ctx,
                                                err, errlen)
                           : 0;
    } else {
        rc = pred_snap_each_map(s, s->data, s->entries, each, ctx, err,
                                errlen);
    }

    pred_snap_jmp = NULL;

    return rc;
}


int
pred_snap_meta(pred_snap_t *s, const char *name, char *buf, size_t size)
{
    int         rc;
    sigjmp_buf  jb;

    if (sigsetjmp(jb, 0) != 0) {
        mdb_txn_reset(s->txn);
        return -1;
    }

    pred_snap_arm(&jb);

    rc = -1;

    if (mdb_txn_renew(s->txn) == 0) {
        rc = pred_snap_meta_txn(s, s->txn, name, buf, size);
        mdb_txn_reset(s->txn);
    }

    pred_snap_jmp = NULL;

    return rc;
}


/*
 * After the jump back from a fault: no deadline, no cursor (a fault may
 * leave one open: it is closed here, never read again), the read
 * transaction reset for the next call.
 */
static void
pred_snap_unwind(pred_snap_t *s)
{
    pred_snap_deadline(0);

    if (pred_snap_cursor) {
        mdb_cursor_close(pred_snap_cursor);
        pred_snap_cursor = NULL;
    }

    mdb_txn_reset(s->txn);
}


/* the guard is this thread's until the call ends */
static void
pred_snap_arm(sigjmp_buf *jb)
{
    pred_snap_jmp_thread = pthread_self();
    pred_snap_jmp = jb;
}


static void
pred_snap_guard_install(void)
{
    static int        installed;
    struct sigaction  sa;

    if (installed) {
        return;
    }

    installed = 1;

    memset(&sa, 0, sizeof(struct sigaction));
    sa.sa_sigaction = pred_snap_on_fault;
    /* not blocked in the handler: sigsetjmp(jb, 0) does not restore masks */
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);

    sigaction(SIGSEGV, &sa, &pred_snap_old_segv);
    sigaction(SIGBUS, &sa, &pred_snap_old_bus);
    sigaction(SIGFPE, &sa, &pred_snap_old_fpe);
    sigaction(SIGVTALRM, &sa, &pred_snap_old_vtalrm);
}


static void
pred_snap_deadline(uint64_t ms)
{
    struct itimerval  it;

    pred_snap_over_time = 0;

    /* every ms: the first time a flag, the second time the jump */
    memset(&it, 0, sizeof(struct itimerval));
    it.it_value.tv_sec = ms / 1000;
    it.it_value.tv_usec = (ms % 1000) * 1000;
    it.it_interval = it.it_value;

    (void) setitimer(ITIMER_VIRTUAL, &it, NULL);
}


static void
pred_snap_on_fault(int signo, siginfo_t *si, void *uc)
{
    struct sigaction  *old;

    (void) uc;

    if (signo == SIGVTALRM && pred_snap_jmp != NULL && !pred_snap_over_time)
    {
        pred_snap_over_time = 1;
        return;
    }

    if (si->si_code > 0 || signo == SIGVTALRM) {
        pred_snap_escape(signo);
    }

    /*
     * Not ours: put the previous handler back; the faulting instruction
     * runs again and faults into it, a signal sent by kill is sent again.
     */
    old = signo == SIGSEGV ? &pred_snap_old_segv
          : signo == SIGBUS ? &pred_snap_old_bus
          : signo == SIGFPE ? &pred_snap_old_fpe : &pred_snap_old_vtalrm;

    sigaction(signo, old, NULL);

    if (si->si_code <= 0 || signo == SIGVTALRM) {
        raise(signo);
    }
}


/* LMDB checks some invariants of the pages it reads, and aborts */
static void
pred_snap_on_assert(MDB_env *env, const char *msg)
{
    char  *a;

    (void) env;

    snprintf(pred_snap_assert_msg, sizeof(pred_snap_assert_msg), "%s", msg);

    /*
     * "Assertion ... failed" reads as our own assert failing to log
     * scanners (Test::Nginx fails any test whose log has it): this one is
     * LMDB refusing a corrupt file, handled.
     */
    a = strstr(pred_snap_assert_msg, "Assertion ");
    if (a) {
        *a = 'a';
    }

    pred_snap_escape(0);
}


/* back to the guarded call in progress, if any; signo 0: an assertion */
static void
pred_snap_escape(int signo)
{
    sigjmp_buf  *jb;

    jb = pred_snap_jmp;

    /* a fault in another thread (the loader's writer) is not the map's */
    if (jb != NULL && pthread_equal(pthread_self(), pred_snap_jmp_thread)) {
        pred_snap_jmp = NULL;
        pred_snap_fault_signo = signo;
        siglongjmp(*jb, 1);
    }
}


static int
pred_snap_faulted(char *err, size_t errlen)
{
    if (pred_snap_fault_signo == 0) {
        return pred_snap_errorf(err, errlen, "LMDB gave up reading the "
                                "file (%s): its pages are corrupt",
                                pred_snap_assert_msg);
    }

    if (pred_snap_fault_signo == SIGVTALRM) {
        return pred_snap_errorf(err, errlen, "LMDB was still reading the "
                                "file after its CPU time limit: its pages "
                                "are corrupt (a cycle)");
    }

    return pred_snap_errorf(err, errlen, "%s reading the file: it is "
                            "truncated or its pages are corrupt",
                            pred_snap_fault_signo == SIGBUS ? "SIGBUS"
                            : pred_snap_fault_signo == SIGFPE ? "SIGFPE"
                                                              : "SIGSEGV");
}


static int
pred_snap_open_map(pred_snap_t *s, const char *path, int nordahead,
    char *err, size_t errlen)
{
    int           rc, fd;
    size_t        need;
    MDB_env      *env;
    MDB_txn      *txn;
    MDB_stat      st;
    MDB_envinfo   info;
    struct stat   fst;
    unsigned int  flags;

    memset(s, 0, sizeof(pred_snap_t));

    rc = mdb_env_create(&env);
    if (rc != 0) {
        pred_snap_errorf(err, errlen, "mdb_env_create: %s",
                         mdb_strerror(rc));
        return pred_snap_transient(rc) ? PRED_SNAP_TRANSIENT : -1;
    }

    s->env = env;

    mdb_env_set_maxdbs(s->env, 3);
    mdb_env_set_assert(s->env, pred_snap_on_assert);

    flags = MDB_RDONLY | MDB_NOSUBDIR | MDB_NOLOCK;
    if (nordahead) {
        flags |= MDB_NORDAHEAD;
    }

    rc = mdb_env_open(s->env, path, flags, 0444);
    if (rc != 0) {
        pred_snap_errorf(err, errlen, "not a readable snapshot: %s",
                       rc == MDB_INVALID ? "not an LMDB file"
                                         : mdb_strerror(rc));

        if (pred_snap_transient(rc)) {
            pred_snap_close(s);
            return PRED_SNAP_TRANSIENT;
        }

        goto failed;
    }

    /*
     * LMDB maps pages it is told exist; a file cut short would fault the
     * worker on first touch, so the recorded last page must be in the file.
     */
    if (mdb_env_get_fd(s->env, &fd) != 0 || fstat(fd, &fst) == -1) {
        pred_snap_errorf(err, errlen, "fstat: %s", strerror(errno));
        goto failed;
    }

    mdb_env_info(s->env, &info);
    mdb_env_stat(s->env, &st);

    need = (info.me_last_pgno + 1) * (size_t) st.ms_psize;
    if ((size_t) fst.st_size < need) {
        pred_snap_errorf(err, errlen, "truncated: %jd bytes, %zu expected",
                       (intmax_t) fst.st_size, need);
        goto failed;
    }

    s->file_size = fst.st_size;

    /* in s, so that pred_snap_close() ends it after a fault too */
    rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        pred_snap_errorf(err, errlen, "mdb_txn_begin: %s", mdb_strerror(rc));
        goto failed;
    }

    s->txn = txn;

    rc = mdb_dbi_open(s->txn, PRED_SNAP_DB_DATA, 0, &s->data);
    if (rc == 0) {
        rc = mdb_dbi_open(s->txn, PRED_SNAP_DB_META, 0, &s->meta);
    }

    if (rc != 0) {
        pred_snap_errorf(err, errlen, "no \"%s\" and \"%s\" databases: %s",
                       PRED_SNAP_DB_DATA, PRED_SNAP_DB_META,
                       rc == MDB_NOTFOUND ? "not a pred-snapshot file"
                                          : mdb_strerror(rc));
        goto failed;
    }

    if (pred_snap_read_meta(s, s->txn, err, errlen) != 0) {
        goto failed;
    }

    /* compact's per-key as-of times, only as many as the metadata says */
    rc = mdb_dbi_open(s->txn, PRED_SNAP_DB_AS_OF, 0, &s->key_as_of);

    if (rc == 0) {
        rc = mdb_stat(s->txn, s->key_as_of, &st);
        if (rc == 0 && st.ms_entries != s->as_of_keys) {
            pred_snap_errorf(err, errlen, "holds %zu as_of keys, metadata "
                             "says %" PRIu64, (size_t) st.ms_entries,
                             s->as_of_keys);
            goto failed;
        }

    } else if (rc == MDB_NOTFOUND && s->as_of_keys == 0) {
        rc = 0;
    }

    if (rc != 0) {
        pred_snap_errorf(err, errlen, "the \"%s\" database: %s",
                         PRED_SNAP_DB_AS_OF, mdb_strerror(rc));
        goto failed;
    }

    rc = mdb_stat(s->txn, s->data, &st);
    if (rc != 0) {
        pred_snap_errorf(err, errlen, "mdb_stat: %s", mdb_strerror(rc));
        goto failed;
    }

    if (st.ms_entries != s->entries) {
        pred_snap_errorf(err, errlen, "holds %zu entries, metadata says %"
                       PRIu64, (size_t) st.ms_entries, s->entries);
        goto failed;
    }

    /* a read-only commit is what keeps the database handles open */
    txn = s->txn;
    s->txn = NULL;
    rc = mdb_txn_commit(txn);
    if (rc != 0) {
        pred_snap_errorf(err, errlen, "mdb_txn_commit: %s", mdb_strerror(rc));
        goto failed;
    }

    rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        pred_snap_errorf(err, errlen, "mdb_txn_begin: %s", mdb_strerror(rc));
        goto failed;
    }

    s->txn = txn;

    mdb_txn_reset(s->txn);

    return 0;

failed:

    pred_snap_close(s);

    return -1;
}


void
pred_snap_close(pred_snap_t *s)
{
    if (s->txn) {
        mdb_txn_abort(s->txn);
        s->txn = NULL;
    }

    if (s->env) {
        mdb_env_close(s->env);
        s->env = NULL;
    }

    pred_snap_index_free(s);
}


/* the machine's state, not the file's: worth trying again later */
static int
pred_snap_transient(int rc)
{
    return rc == ENOMEM || rc == EMFILE || rc == ENFILE || rc == EAGAIN
           || rc == EINTR;
}


int
pred_snap_fd(const pred_snap_t *s)
{
    mdb_filehandle_t  fd;

    if (s->env == NULL || mdb_env_get_fd(s->env, &fd) != 0) {
        return -1;
    }

    return fd;
}


/* finds key's value in the map: 1 and *v, 0 (a miss) or -1 */
static int
pred_snap_get_map(pred_snap_t *s, const void *key, size_t key_len,
    MDB_val *v, char *err, size_t errlen)
{
    int  rc;

    /* an entry the index left out is looked up in LMDB below */
    if (s->index) {
        rc = pred_snap_index_get(s, key, key_len, v);
        if (rc == 1 || s->index_complete) {
            return rc;
        }
    }

    return pred_snap_lookup_map(s, s->data, key, key_len, v, err, errlen);
}


/* one key of dbi through LMDB; the transaction is left for the caller */
static int
pred_snap_lookup_map(pred_snap_t *s, unsigned int dbi, const void *key,
    size_t key_len, MDB_val *v, char *err, size_t errlen)
{
    int      rc;
    MDB_val  k;

    rc = mdb_txn_renew(s->txn);
    if (rc != 0) {
        return pred_snap_errorf(err, errlen, "mdb_txn_renew: %s",
                              mdb_strerror(rc));
    }

    k.mv_data = (void *) key;
    k.mv_size = key_len;

    rc = mdb_get(s->txn, dbi, &k, v);

    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc != 0) {
        return pred_snap_errorf(err, errlen, "mdb_get: %s", mdb_strerror(rc));
    }

    return 1;
}


static int
pred_snap_index_get(pred_snap_t *s, const void *key, size_t key_len,
    MDB_val *v)
{
    size_t             i;
    uint64_t           h, slot, tag;
    unsigned char     *node;
    pred_snap_node_t   hdr;

    h = pred_snap_index_hash(key, key_len);
    tag = PRED_SNAP_INDEX_TAG(h);

    for (i = h & s->index_mask; (slot = s->index[i]) != 0;
         i = (i + 1) & s->index_mask)
    {
        if (PRED_SNAP_INDEX_TAG(slot) != tag) {
            continue;
        }

        node = (unsigned char *) (uintptr_t) (slot & PRED_SNAP_INDEX_PTR);
        memcpy(&hdr, node, sizeof(pred_snap_node_t));

        if (hdr.key_size == key_len
            && memcmp(node + PRED_SNAP_NODE_SIZE, key, key_len) == 0)
        {
            v->mv_size = hdr.size_lo | ((size_t) hdr.size_hi << 16);
            v->mv_data = node + PRED_SNAP_NODE_SIZE + key_len;
            return 1;
        }
    }

    return 0;
}


/*
 * SipHash under a secret drawn once per process: the keys are the batch
 * job's, which may come from users; without the secret, keys chosen to
 * share one run of slots would make every step and probe walk all of it.
 */
static uint64_t
pred_snap_index_hash(const unsigned char *p, size_t len)
{
    return pred_key_hash(p, len, pred_key_process_secret());
}


static int
pred_snap_index_start(pred_snap_t *s, char *err, size_t errlen)
{
    size_t              slots, size;
    uint64_t           *mem;
    pred_snap_build_t  *b;

    /* a count no memory could index (and that would wrap the sizes) */
    if (s->entries > SIZE_MAX / 32) {
        return pred_snap_errorf(err, errlen, "%" PRIu64 " entries are too "
                                "many to index", s->entries);
    }

    slots = 16;
    while (slots - slots / 4 < s->entries) {
        slots *= 2;
    }


    size = slots * sizeof(uint64_t);

    b = calloc(1, sizeof(pred_snap_build_t));
    if (b == NULL) {
        return pred_snap_errorf(err, errlen, "out of memory");
    }

    mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        free(b);
        return pred_snap_errorf(err, errlen, "mmap(%zu) for the index: %s",
                                size, strerror(errno));
    }

    /* read at random: a 2 MB page per TLB entry instead of 4 KB */
    (void) madvise(mem, size, MADV_HUGEPAGE);

    b->slots = mem;
    b->mask = slots - 1;
    b->complete = 1;
    s->index_build = b;

    return 0;
}


/*
 * Up to n more entries into the empty slots of the index being built; at
 * the end, the index replaces the build.  1, 0 or -1 as index_step.
 */
static int
pred_snap_index_map(pred_snap_t *s, uint64_t n, char *err, size_t errlen)
{
    int                 rc, ret;
    size_t              i, size;
    uint64_t            h;
    MDB_val             k, v;
    MDB_cursor         *cur;
    MDB_cursor_op       op;
    unsigned char      *node;
    pred_snap_node_t    hdr;
    pred_snap_build_t  *b;

    b = s->index_build;

    rc = mdb_txn_renew(s->txn);
    if (rc != 0) {
        return pred_snap_errorf(err, errlen, "mdb_txn_renew: %s",
                                mdb_strerror(rc));
    }

    ret = -1;
    cur = NULL;

    rc = mdb_cursor_open(s->txn, s->data, &cur);
    pred_snap_cursor = cur;

    if (rc != 0) {
        pred_snap_errorf(err, errlen, "mdb_cursor_open: %s", mdb_strerror(rc));
        goto done;
    }

    op = MDB_FIRST;

    if (b->done) {
        /* the last key read is still in the map: the file never changes */
        k = b->last;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET);
        if (rc != 0) {
            pred_snap_errorf(err, errlen, "finding the last key indexed: %s",
                             mdb_strerror(rc));
            goto done;
        }

        op = MDB_NEXT;
    }

    /* past the step's CPU budget, the rest waits for the next step */
    while (n-- && !pred_snap_over_time
           && (rc = mdb_cursor_get(cur, &k, &v, op)) == 0)
    {
        op = MDB_NEXT;
        b->done++;
        b->last = k;

        /* a value on overflow pages is not after its key: LMDB finds it */
        if ((unsigned char *) v.mv_data
            != (unsigned char *) k.mv_data + k.mv_size)
        {
            b->complete = 0;
            continue;
        }

        node = (unsigned char *) k.mv_data - PRED_SNAP_NODE_SIZE;
        memcpy(&hdr, node, sizeof(pred_snap_node_t));
        size = hdr.size_lo | ((size_t) hdr.size_hi << 16);

        if (hdr.key_size != k.mv_size || size != v.mv_size
            || ((uintptr_t) node & ~PRED_SNAP_INDEX_PTR) != 0)
        {
            pred_snap_errorf(err, errlen, "entry %" PRIu64 ": its leaf node "
                             "is not laid out as the index expects", b->done);
            goto done;
        }

        /* the slots are sized for the count open() checked: one stays free */
        if (b->done > s->entries) {
            pred_snap_errorf(err, errlen, "more entries than the metadata's "
                             "%" PRIu64, s->entries);
            goto done;
        }

        h = pred_snap_index_hash(k.mv_data, k.mv_size);

        for (i = h & b->mask; b->slots[i] != 0; i = (i + 1) & b->mask) {
            /* void */
        }

        b->slots[i] = PRED_SNAP_INDEX_TAG(h) | (uintptr_t) node;
    }

    if (rc == 0) {
        ret = 0;
        goto done;
    }

    if (rc != MDB_NOTFOUND) {
        pred_snap_errorf(err, errlen, "reading entries: %s", mdb_strerror(rc));
        goto done;
    }

    s->index = b->slots;
    s->index_mask = b->mask;
    s->index_complete = b->complete;
    s->index_build = NULL;
    free(b);

    ret = 1;

done:

    if (cur) {
        mdb_cursor_close(cur);
        pred_snap_cursor = NULL;
    }

    mdb_txn_reset(s->txn);

    return ret;
}


static void
pred_snap_index_free(pred_snap_t *s)
{
    pred_snap_build_t  *b;

    b = s->index_build;

    if (b) {
        munmap(b->slots, (b->mask + 1) * sizeof(uint64_t));
        free(b);
        s->index_build = NULL;
    }

    if (s->index) {
        munmap(s->index, (s->index_mask + 1) * sizeof(uint64_t));
        s->index = NULL;
    }
}


/* pred_snap_verify()'s count and checksum, entry by entry */
typedef struct {
    pred_snap_t  *snap;
    uint64_t      hash;
    uint64_t      deletes;
} pred_snap_verify_t;


static int
pred_snap_verify_map(pred_snap_t *s, char *err, size_t errlen)
{
    char                sum[32];
    pred_snap_verify_t  v;

    v.snap = s;
    v.hash = PRED_SNAP_FNV_INIT;
    v.deletes = 0;

    if (pred_snap_each_map(s, s->data, s->entries, pred_snap_verify_entry,
                           &v, err, errlen)
        != 0)
    {
        return -1;
    }

    if (v.deletes != s->deletes) {
        return pred_snap_errorf(err, errlen, "found %" PRIu64 " deletions, "
                                "metadata says %" PRIu64, v.deletes,
                                s->deletes);
    }

    snprintf(sum, sizeof(sum), "fnv1a64:%016" PRIx64, v.hash);

    if (strcmp(sum, s->checksum) != 0) {
        return pred_snap_errorf(err, errlen, "checksum mismatch: content is "
                                "%s, metadata says %s", sum, s->checksum);
    }

    if (s->as_of_keys) {
        v.hash = PRED_SNAP_FNV_INIT;

        if (pred_snap_each_map(s, s->key_as_of, s->as_of_keys,
                               pred_snap_verify_as_of, &v, err, errlen)
            != 0)
        {
            return -1;
        }

        snprintf(sum, sizeof(sum), "fnv1a64:%016" PRIx64, v.hash);

        if (strcmp(sum, s->as_of_checksum) != 0) {
            return pred_snap_errorf(err, errlen, "as_of checksum mismatch: "
                                    "content is %s, metadata says %s", sum,
                                    s->as_of_checksum);
        }
    }

    return 0;
}


static int
pred_snap_verify_entry(void *ctx, const void *key, size_t key_len,
    const void *val, size_t val_len, char *err, size_t errlen)
{
    pred_snap_verify_t  *v = ctx;

    char           why[160];
    pred_key_rc_t  rc;

    rc = pred_key_validate((const unsigned char *) key, key_len);

    if (rc != PRED_KEY_OK) {
        return pred_snap_errorf(err, errlen, "key \"%.*s\": invalid key: %s",
                                (int) (key_len > 64 ? 64 : key_len),
                                (char *) key, pred_key_strerror(rc));
    }

    /* a delta's deletion */
    if (val_len == 0 && v->snap->delta_of[0]) {
        v->deletes++;

    } else if (pred_snap_value_valid(val, val_len, why, sizeof(why)) != 0) {
        return pred_snap_errorf(err, errlen, "key \"%.*s\": value is not "
                                "valid JSON: %s",
                                (int) (key_len > 64 ? 64 : key_len),
                                (char *) key, why);
    }

    v->hash = pred_snap_hash_record(v->hash, key, key_len, val, val_len);

    return 0;
}


/*
 * What jansson's json_loadb() accepts is a valid value: the builder reads
 * values with it.  Most values are plain, and for those the allocation-free
 * scanner gives the same verdict at a fraction of the cost (a full verify
 * of 1M values: 1.9 s of CPU with jansson alone); jansson decides wherever
 * the two could differ: a \u escape (NUL, lone surrogates), a run of 16 or
 * more digits but after a "." (integers past 64 bits, reals past DBL_MAX;
 * a fraction's digits only round, as 17-digit floats have them), an
 * exponent (overflow), or a value the scanner refuses (nesting deeper than
 * its limit).
 */
int
pred_snap_value_valid(const char *val, size_t len, char *why, size_t size)
{
    int           fraction;
    size_t        i, digits, where;
    json_t       *json;
    json_error_t  jerr;

    /*
     * The scanner first: like jansson it stops at the first bad byte, so a
     * value whose length runs past the map is refused by its key before
     * anything reads past the end (a fault names no key).
     */
    if (pred_json_validate(val, len, &where) != 0) {
        goto jansson;
    }

    digits = 0;
    fraction = 0;

    for (i = 0; i < len; i++) {
        if (val[i] >= '0' && val[i] <= '9') {
            if (++digits == 16 && !fraction) {
                goto jansson;
            }

            continue;
        }

        if ((val[i] == 'e' || val[i] == 'E') && digits) {
            goto jansson;
        }

        if (val[i] == '\\' && i + 1 < len && val[i + 1] == 'u') {
            goto jansson;
        }

        digits = 0;
        fraction = (val[i] == '.');
    }

    return 0;

jansson:

    json = json_loadb(val, len, JSON_DECODE_ANY, &jerr);
    if (json == NULL) {
        snprintf(why, size, "%s", jerr.text);
        return -1;
    }

    json_decref(json);

    return 0;
}


static int
pred_snap_verify_as_of(void *ctx, const void *key, size_t key_len,
    const void *val, size_t val_len, char *err, size_t errlen)
{
    pred_snap_verify_t  *v = ctx;

    uint64_t       u;
    pred_key_rc_t  rc;

    v->hash = pred_snap_hash_record(v->hash, key, key_len, val, val_len);

    rc = pred_key_validate((const unsigned char *) key, key_len);

    if (rc != PRED_KEY_OK) {
        return pred_snap_errorf(err, errlen, "as_of key \"%.*s\": invalid "
                                "key: %s", (int) (key_len > 64 ? 64 : key_len),
                                (char *) key, pred_key_strerror(rc));
    }

    if (pred_snap_parse_u64n(val, val_len, &u) == 0) {
        return 0;
    }

    return pred_snap_errorf(err, errlen, "as_of key \"%.*s\": not Unix "
                            "seconds", (int) (key_len > 64 ? 64 : key_len),
                            (char *) key);
}


/* every entry of dbi in key order; their count must be expect */
static int
pred_snap_each_map(pred_snap_t *s, unsigned int dbi, uint64_t expect,
    pred_snap_each_pt each, void *ctx, char *err, size_t errlen)
{
    int           rc, ret;
    uint64_t      n;
    MDB_val       k, v;
    MDB_stat      st;
    MDB_cursor   *cur;

    rc = mdb_txn_renew(s->txn);
    if (rc != 0) {
        return pred_snap_errorf(err, errlen, "mdb_txn_renew: %s",
                              mdb_strerror(rc));
    }

    ret = -1;
    cur = NULL;

    /*
     * mdb_stat reads the database's root with a cursor on the stack: a
     * corrupt root faults there, before mdb_cursor_open has allocated one
     * that a fault could not give back.
     */
    rc = mdb_stat(s->txn, dbi, &st);
    if (rc != 0) {
        pred_snap_errorf(err, errlen, "mdb_stat: %s", mdb_strerror(rc));
        goto done;
    }

    rc = mdb_cursor_open(s->txn, dbi, &cur);
    pred_snap_cursor = cur;

    if (rc != 0) {
        pred_snap_errorf(err, errlen, "mdb_cursor_open: %s", mdb_strerror(rc));
        goto done;
    }

    n = 0;

    while ((rc = mdb_cursor_get(cur, &k, &v, n ? MDB_NEXT : MDB_FIRST))
           == 0)
    {
        n++;

        if (pred_snap_over_time) {
            pred_snap_errorf(err, errlen, "entry %" PRIu64 ": still reading "
                             "after the CPU time limit: its pages are "
                             "corrupt (a cycle)", n);
            goto done;
        }

        if (each(ctx, k.mv_data, k.mv_size, v.mv_data, v.mv_size, err,
                 errlen) != 0)
        {
            goto done;
        }
    }

    if (rc != MDB_NOTFOUND) {
        pred_snap_errorf(err, errlen, "reading entries: %s", mdb_strerror(rc));
        goto done;
    }

    if (n != expect) {
        pred_snap_errorf(err, errlen, "found %" PRIu64 " %s, metadata "
                       "says %" PRIu64, n, dbi == s->data ? "entries"
                                                          : "as_of keys",
                       expect);
        goto done;
    }

    ret = 0;

done:

    if (cur) {
        mdb_cursor_close(cur);
        pred_snap_cursor = NULL;
    }

    mdb_txn_reset(s->txn);

    return ret;
}


uint64_t
pred_snap_hash_record(uint64_t h, const void *key, size_t key_len,
    const void *val, size_t val_len)
{
    size_t          i, j;
    unsigned char   len[4];
    const void     *part[2];
    size_t          part_len[2];
    const uint8_t  *p;

    part[0] = key;
    part_len[0] = key_len;
    part[1] = val;
    part_len[1] = val_len;

    for (j = 0; j < 2; j++) {
        len[0] = (unsigned char) part_len[j];
        len[1] = (unsigned char) (part_len[j] >> 8);
        len[2] = (unsigned char) (part_len[j] >> 16);
        len[3] = (unsigned char) (part_len[j] >> 24);

        for (i = 0; i < 4; i++) {
            h = (h ^ len[i]) * 0x100000001b3ULL;
        }

        p = part[j];

        for (i = 0; i < part_len[j]; i++) {
            h = (h ^ p[i]) * 0x100000001b3ULL;
        }
    }

    return h;
}


int
pred_snap_parse_fallback(const char *s, pred_snap_stale_t *out)
{
    if (strcmp(s, "serve") == 0) {
        *out = PRED_SNAP_STALE_SERVE;

    } else if (strcmp(s, "upstream") == 0) {
        *out = PRED_SNAP_STALE_UPSTREAM;

    } else if (strcmp(s, "fail") == 0) {
        *out = PRED_SNAP_STALE_FAIL;

    } else {
        return -1;
    }

    return 0;
}


const char *
pred_snap_fallback_name(pred_snap_stale_t f)
{
    static const char  *names[] = { "serve", "upstream", "fail" };

    return names[f];
}


int
pred_snap_valid_version(const char *v)
{
    size_t  i;

    if (v[0] == '\0' || v[0] == '.') {
        return 0;
    }

    for (i = 0; v[i]; i++) {
        if (i == PRED_SNAP_VERSION_MAX) {
            return 0;
        }

        if (!pred_key_name_char((unsigned char) v[i])) {
            return 0;
        }
    }

    return 1;
}


static int
pred_snap_read_meta(pred_snap_t *s, MDB_txn *txn, char *err, size_t errlen)
{
    char      buf[PRED_SNAP_VERSION_MAX + 1];
    uint64_t  u;

    if (pred_snap_meta_txn(s, txn, PRED_SNAP_META_FORMAT, buf, sizeof(buf))
        != 1 || strcmp(buf, PRED_SNAP_FORMAT) != 0)
    {
        return pred_snap_errorf(err, errlen,
                                "metadata \"format\" is not \"%s\"",
                                PRED_SNAP_FORMAT);
    }

    if (pred_snap_meta_txn(s, txn, PRED_SNAP_META_VERSION, s->version,
                           sizeof(s->version)) != 1
        || !pred_snap_valid_version(s->version))
    {
        return pred_snap_errorf(err, errlen, "metadata \"version\" is missing "
                              "or invalid");
    }

    if (pred_snap_meta_txn(s, txn, PRED_SNAP_META_CREATED_AT, buf,
                           sizeof(buf)) != 1
        || pred_snap_parse_u64(buf, &u) != 0)
    {
        return pred_snap_errorf(err, errlen, "metadata \"created_at\" is "
                              "missing or invalid");
    }

    s->created_at = (time_t) u;

    if (pred_snap_meta_u64(s, txn, PRED_SNAP_META_AS_OF, &u, u, err,
                           errlen) != 0)
    {
        return -1;
    }

    s->as_of = (time_t) u;

    if (pred_snap_meta_txn(s, txn, PRED_SNAP_META_ENTRIES, buf, sizeof(buf))
        != 1 || pred_snap_parse_u64(buf, &s->entries) != 0)
    {
        return pred_snap_errorf(err, errlen, "metadata \"entries\" is missing "
                              "or invalid");
    }

    if (s->entries == 0) {
        return pred_snap_errorf(err, errlen, "snapshot has no entries");
    }

    switch (pred_snap_meta_txn(s, txn, PRED_SNAP_META_DELTA_OF, s->delta_of,
                               sizeof(s->delta_of)))
    {
    case 0:
        s->delta_of[0] = '\0';
        break;

    case 1:
        if (pred_snap_valid_version(s->delta_of)) {
            break;
        }

        /* fall through */

    default:
        return pred_snap_errorf(err, errlen, "metadata \"delta_of\" is "
                                "invalid");
    }

    /* a delta's deletions, and compact's per-key as-of times in a base */
    if (pred_snap_meta_u64(s, txn, PRED_SNAP_META_DELETES, &s->deletes, 0,
                           err, errlen) != 0
        || pred_snap_meta_u64(s, txn, PRED_SNAP_META_AS_OF_KEYS,
                              &s->as_of_keys, 0, err, errlen) != 0)
    {
        return -1;
    }

    if (s->deletes > s->entries || (s->deletes && !s->delta_of[0])) {
        return pred_snap_errorf(err, errlen, "metadata \"%s\" is invalid",
                                PRED_SNAP_META_DELETES);
    }

    if (s->as_of_keys && s->delta_of[0]) {
        return pred_snap_errorf(err, errlen, "metadata \"%s\" is invalid",
                                PRED_SNAP_META_AS_OF_KEYS);
    }

    if (s->as_of_keys
        && pred_snap_meta_txn(s, txn, PRED_SNAP_META_AS_OF_SUM,
                              s->as_of_checksum, sizeof(s->as_of_checksum))
           != 1)
    {
        return pred_snap_errorf(err, errlen, "metadata \"%s\" is missing",
                                PRED_SNAP_META_AS_OF_SUM);
    }

    if (s->delta_of[0]
        && pred_snap_meta_txn(s, txn, PRED_SNAP_META_BASE_SUM,
                              s->base_checksum, sizeof(s->base_checksum))
           != 1)
    {
        return pred_snap_errorf(err, errlen, "metadata \"%s\" is missing",
                                PRED_SNAP_META_BASE_SUM);
    }

    if (pred_snap_meta_txn(s, txn, PRED_SNAP_META_CHECKSUM, s->checksum,
                           sizeof(s->checksum)) != 1)
    {
        return pred_snap_errorf(err, errlen, "metadata \"checksum\" is "
                              "missing");
    }

    if (pred_snap_meta_u64(s, txn, PRED_SNAP_META_SLA, &s->freshness_sla, 0,
                           err, errlen) != 0)
    {
        return -1;
    }

    switch (pred_snap_meta_txn(s, txn, PRED_SNAP_META_FALLBACK, buf,
                               sizeof(buf)))
    {
    case 0:
        s->fallback = PRED_SNAP_STALE_SERVE;
        break;

    case 1:
        if (pred_snap_parse_fallback(buf, &s->fallback) == 0) {
            break;
        }

        /* fall through */

    default:
        return pred_snap_errorf(err, errlen, "metadata \"fallback_if_stale\" "
                              "is invalid");
    }

    return 0;
}


/* an optional number of seconds or items: dflt when absent; 0 or -1 */
static int
pred_snap_meta_u64(pred_snap_t *s, MDB_txn *txn, const char *name,
    uint64_t *out, uint64_t dflt, char *err, size_t errlen)
{
    char  buf[PRED_SNAP_VERSION_MAX + 1];

    switch (pred_snap_meta_txn(s, txn, name, buf, sizeof(buf))) {

    case 0:
        *out = dflt;
        return 0;

    case 1:
        if (pred_snap_parse_u64(buf, out) == 0) {
            return 0;
        }

        /* fall through */

    default:
        return pred_snap_errorf(err, errlen, "metadata \"%s\" is invalid",
                                name);
    }
}


/* 1: found, 0: absent, -1: error or does not fit */
static int
pred_snap_meta_txn(pred_snap_t *s, MDB_txn *txn, const char *name, char *buf,
    size_t size)
{
    int      rc;
    MDB_val  k, v;

    k.mv_data = (void *) name;
    k.mv_size = strlen(name);

    rc = mdb_get(txn, s->meta, &k, &v);

    if (rc == MDB_NOTFOUND) {
        return 0;
    }

    if (rc != 0 || v.mv_size >= size || memchr(v.mv_data, '\0', v.mv_size)) {
        return -1;
    }

    memcpy(buf, v.mv_data, v.mv_size);
    buf[v.mv_size] = '\0';

    return 1;
}


int
pred_snap_parse_u64(const char *s, uint64_t *out)
{
    return pred_snap_parse_u64n(s, strlen(s), out);
}


int
pred_snap_parse_u64n(const void *p, size_t len, uint64_t *out)
{
    uint64_t       u;
    const char    *s, *end;

    if (len == 0) {
        return -1;
    }

    for (s = p, end = s + len, u = 0; s < end; s++) {
        if (*s < '0' || *s > '9' || u > (UINT64_MAX - 9) / 10) {
            return -1;
        }

        u = u * 10 + (*s - '0');
    }

    *out = u;

    return 0;
}


int
pred_snap_errorf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(err, errlen, fmt, args);
    va_end(args);

    return -1;
}
