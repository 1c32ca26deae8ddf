/*
 * pred_cache_zone state=PATH: overrides and tombstones (with state_all=on,
 * model answers too) kept across a stop and a start of nginx.
 *
 * Writes are journaled.  Each worker keeps the records of the writes it
 * made (puts and purges, numbered in the zone's order of writes) in its
 * memory, and appends them to the current journal, PATH.jGEN, in one
 * write() every state_sync (1 s) and when it exits: no request waits for
 * the disk, a write costs a copy.  When the journals have grown past twice
 * the last checkpoint (and 1 MB), one worker writes a checkpoint: it moves
 * every worker on to journal GEN + 1, copies the zone's entries under its
 * lock (readers go on without it), writes them to PATH under a temporary
 * name, syncs and renames it, then removes the journals before GEN + 1.
 * Whatever went to a journal before the move was in the zone before the
 * copy, so nothing falls between the two.
 *
 * At start, a new zone reads the checkpoint and the journals from its
 * generation on, and keeps the newest record of each key (a purge removes
 * the keys it names written before it): what has expired is skipped, the
 * rest is written back as it was, with its age.  A file that cannot be
 * read, a record that fails its check, is logged and skipped with the rest
 * of its file, never a failed start; a journal's last record cut short by
 * a crash is logged as what it is.
 *
 * What a crash loses: the writes of the last state_sync of a worker that
 * is killed (kill -9, the OOM killer).  A stop (nginx -s stop or quit)
 * loses nothing.  The file format is in snapshot/pred_state.h.
 */


#include "ngx_http_pred_module.h"

#include <dirent.h>

#include "pred_state.h"


/* a worker's records held at most before it writes them at once */
#define NGX_HTTP_PRED_STATE_BUF_MAX    (16 * 1024 * 1024)

/*
 * Past these, a generation or a place in the order of writes is not one
 * nginx wrote (a write a microsecond for millennia): a file claiming one is
 * not read, so that the counters never wrap.
 */
#define NGX_HTTP_PRED_STATE_GEN_MAX     ((uint64_t) 1 << 40)
#define NGX_HTTP_PRED_STATE_SEQ_MAX     ((uint64_t) 1 << 62)

/* journals smaller than this never call for a checkpoint */
#define NGX_HTTP_PRED_STATE_MIN_JOURNAL (1024 * 1024)


/* a checkpoint being copied from the zone */
typedef struct {
    ngx_http_pred_cache_zone_t *z;
    u_char                     *buf;
    size_t                      len;
    size_t                      size;
    ngx_uint_t                  entries;
    int64_t                     now_ms;
    ngx_uint_t                  failed;
} ngx_http_pred_state_dump_t;


/* what start reads: every record, where it came from */
typedef struct {
    pred_state_rec_t            rec;
    ngx_uint_t                  order;      /* in the files, as read */
} ngx_http_pred_state_item_t;


typedef struct {
    ngx_http_pred_state_item_t *items;
    ngx_uint_t                  n;
    ngx_uint_t                  size;
    u_char                    **files;      /* the buffers read */
    ngx_uint_t                  nfiles;
    uint64_t                    max_seq;
    /* the checkpoint's last write: a journal's records up to it are in it
       (a purge after a put may even have removed what they wrote) */
    uint64_t                    as_of_seq;
    ngx_uint_t                  restored;
    ngx_uint_t                  expired;
    ngx_uint_t                  failed;
    ngx_log_t                  *log;
} ngx_http_pred_state_load_t;


static ngx_int_t ngx_http_pred_state_foreign(ngx_conf_t *cf,
    ngx_http_pred_cache_zone_t *z);
static ngx_uint_t ngx_http_pred_state_kept(ngx_http_pred_cache_zone_t *z,
    ngx_uint_t kind);
static uint64_t ngx_http_pred_state_seq_base(void);
static void ngx_http_pred_state_clean(ngx_http_pred_cache_zone_t *z,
    ngx_log_t *log);
static DIR *ngx_http_pred_state_folder(ngx_http_pred_cache_zone_t *z,
    u_char *dname, u_char **base, size_t *blen);
static int64_t ngx_http_pred_state_now_ms(void);
static ngx_int_t ngx_http_pred_state_reserve(ngx_http_pred_cache_zone_t *z,
    size_t size);
static ngx_int_t ngx_http_pred_state_grow(u_char **buf, size_t *size,
    size_t len, size_t need);
static void ngx_http_pred_state_flush(ngx_http_pred_cache_zone_t *z,
    ngx_log_t *log);
static ngx_fd_t ngx_http_pred_state_journal_open(
    ngx_http_pred_cache_zone_t *z, uint64_t gen, ngx_log_t *log);
static void ngx_http_pred_state_timer(ngx_event_t *ev);
static void ngx_http_pred_state_checkpoint(ngx_http_pred_cache_zone_t *z,
    ngx_log_t *log);
static void ngx_http_pred_state_dump_entry(void *ctx, ngx_uint_t kind,
    ngx_str_t *key, ngx_str_t *value, ngx_msec_int_t left, uint32_t stored,
    uint32_t mask_until);
static ngx_int_t ngx_http_pred_state_dump_room(
    ngx_http_pred_state_dump_t *d, size_t size);
static ngx_int_t ngx_http_pred_state_write_file(
    ngx_http_pred_cache_zone_t *z, u_char *buf, size_t len, ngx_log_t *log);
static void ngx_http_pred_state_remove_journals(
    ngx_http_pred_cache_zone_t *z, uint64_t before, ngx_log_t *log);
static ngx_int_t ngx_http_pred_state_journals(ngx_http_pred_cache_zone_t *z,
    uint64_t **gens, ngx_uint_t *n, ngx_log_t *log);
static u_char *ngx_http_pred_state_read_file(u_char *path, size_t *len,
    ngx_log_t *log);
static ngx_uint_t ngx_http_pred_state_read_checkpoint(
    ngx_http_pred_cache_zone_t *z, ngx_http_pred_state_load_t *ld,
    uint64_t *gen);
static void ngx_http_pred_state_read_journal(ngx_http_pred_cache_zone_t *z,
    ngx_http_pred_state_load_t *ld, uint64_t gen);
static const char *ngx_http_pred_state_resync(const char *p,
    const char *end);
static ngx_int_t ngx_http_pred_state_add(ngx_http_pred_state_load_t *ld,
    pred_state_rec_t *rec);
static void ngx_http_pred_state_apply(ngx_http_pred_cache_zone_t *z,
    ngx_http_pred_state_load_t *ld);
static int ngx_libc_cdecl ngx_http_pred_state_cmp(const void *a,
    const void *b);
static int ngx_libc_cdecl ngx_http_pred_state_gen_cmp(const void *a,
    const void *b);


/* "state=PATH", "state_all=on|off", "state_sync=TIME" of pred_cache_zone */
ngx_int_t
ngx_http_pred_state_param(ngx_conf_t *cf, ngx_http_pred_main_conf_t *pmcf,
    ngx_http_pred_cache_zone_t *z, ngx_str_t *arg)
{
    u_char                      *p;
    ngx_str_t                    path;
    ngx_uint_t                   i;
    ngx_file_info_t              fi;
    ngx_http_pred_cache_zone_t **zones;

    if (arg->len > 6 && ngx_strncmp(arg->data, "state=", 6) == 0) {
        path.data = arg->data + 6;
        path.len = arg->len - 6;

        if (ngx_conf_full_name(cf->cycle, &path, 0) != NGX_OK) {
            return NGX_ERROR;
        }

        /* NUL-terminated, for the file calls */
        z->state.data = ngx_pnalloc(cf->pool, path.len + 1);
        if (z->state.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(z->state.data, path.data, path.len);
        z->state.data[path.len] = '\0';
        z->state.len = path.len;

        /* a typo in the folder is found by nginx -t, not at the first
           write; the files themselves need not exist */
        p = (u_char *) strrchr((char *) z->state.data, '/');
        *p = '\0';

        if (p > z->state.data
            && (ngx_file_info(z->state.data, &fi) == NGX_FILE_ERROR
                || !ngx_is_dir(&fi)))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                               "the folder of state file \"%s/%s\" is not "
                               "there", z->state.data, p + 1);
            return NGX_ERROR;
        }

        *p = '/';

        /* what is there already must be ours: a checkpoint replaces it */
        if (ngx_http_pred_state_foreign(cf, z) != NGX_OK) {
            return NGX_ERROR;
        }

        zones = pmcf->zones.elts;

        for (i = 0; i < pmcf->zones.nelts; i++) {
            if (zones[i]->state.len == z->state.len
                && ngx_strncmp(zones[i]->state.data, z->state.data,
                               z->state.len) == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "state file \"%V\" is another zone's",
                                   &z->state);
                return NGX_ERROR;
            }
        }

        return NGX_OK;
    }

    if (ngx_strcmp(arg->data, "state_all=on") == 0) {
        z->state_all = 1;
        return NGX_OK;
    }

    if (ngx_strcmp(arg->data, "state_all=off") == 0) {
        z->state_all = 0;
        return NGX_OK;
    }

    return ngx_http_pred_conf_param(cf, arg, "state_sync=", 'm', 0,
                                    &z->state_sync);
}


/*
 * state= names a file nginx will replace with its checkpoints: a folder,
 * or a file that is not a state file (a typo for the config, say), is
 * refused rather than overwritten.  An empty file is taken as ours.
 */
static ngx_int_t
ngx_http_pred_state_foreign(ngx_conf_t *cf, ngx_http_pred_cache_zone_t *z)
{
    u_char           head[sizeof(PRED_STATE_MAGIC) - 1];
    ssize_t          n;
    ngx_fd_t         fd;
    ngx_file_info_t  fi;

    if (ngx_file_info(z->state.data, &fi) == NGX_FILE_ERROR) {
        return NGX_OK;
    }

    if (!ngx_is_file(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "state=\"%V\" is not a file: state= names a "
                           "file, such as \"%V/hot.state\"", &z->state,
                           &z->state);
        return NGX_ERROR;
    }

    fd = ngx_open_file(z->state.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "state file \"%V\" cannot be read", &z->state);
        return NGX_ERROR;
    }

    n = read(fd, head, sizeof(head));
    (void) ngx_close_file(fd);

    if (n != 0
        && (n != (ssize_t) sizeof(head)
            || ngx_memcmp(head, PRED_STATE_MAGIC, sizeof(head)) != 0))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is not a state file (it does not start "
                           "with \"" PRED_STATE_MAGIC "\"): refusing to "
                           "replace it; remove it or name another file",
                           &z->state);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A write the zone just made, with its place in the order of writes, for
 * the journal: kept in the worker's memory until the next state_sync.
 */
void
ngx_http_pred_state_journal(ngx_http_pred_cache_zone_t *z, uint64_t seq,
    ngx_uint_t kind, ngx_str_t *key, ngx_str_t *value, ngx_msec_t ttl,
    uint32_t stored, uint32_t mask_until)
{
    size_t            size;
    pred_state_rec_t  rec;

    if (kind != NGX_HTTP_PRED_CACHE_PURGE
        && !ngx_http_pred_state_kept(z, kind))
    {
        return;
    }

    ngx_memzero(&rec, sizeof(pred_state_rec_t));

    rec.seq = seq;
    rec.key = (char *) key->data;
    rec.key_len = key->len;

    if (kind == NGX_HTTP_PRED_CACHE_PURGE) {
        rec.type = PRED_STATE_PURGE;

    } else {
        rec.type = PRED_STATE_ENTRY;
        rec.kind = kind;
        rec.expires_ms = ngx_http_pred_state_now_ms() + (int64_t) ttl;
        rec.stored = stored;
        rec.mask_until = mask_until;

        if (value) {
            rec.value = (char *) value->data;
            rec.value_len = value->len;
        }
    }

    size = pred_state_size(rec.key_len, rec.value_len);

    if (ngx_http_pred_state_reserve(z, size) != NGX_OK) {
        z->journal_lost++;
        return;
    }

    z->journal_len += pred_state_encode(&rec,
                                        (char *) z->journal + z->journal_len);
}


ngx_int_t
ngx_http_pred_state_init_process(ngx_cycle_t *cycle)
{
    u_char                      *p, lock[NGX_MAX_PATH];
    ngx_uint_t                   i;
    ngx_http_pred_main_conf_t   *pmcf;
    ngx_http_pred_cache_zone_t **zones, *z;

    pmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_pred_module);
    if (pmcf == NULL) {
        return NGX_OK;
    }

    zones = pmcf->zones.elts;

    for (i = 0; i < pmcf->zones.nelts; i++) {
        z = zones[i];

        if (z->state.len == 0) {
            continue;
        }

        z->journal_fd = NGX_INVALID_FILE;

        /* as the worker's user, the one that writes */
        p = (u_char *) strrchr((char *) z->state.data, '/');
        *p = '\0';

        if (access((char *) z->state.data, W_OK | X_OK) == -1) {
            ngx_log_error(NGX_LOG_ERR, cycle->log, ngx_errno,
                          "pred_cache_zone \"%V\": this worker cannot write "
                          "in \"%s\": writes will not be kept across a "
                          "restart", &z->shm_zone->shm.name, z->state.data);
        }

        *p = '/';

        ngx_snprintf(lock, sizeof(lock), "%V.lock%Z", &z->state);

        z->lock_fd = open((char *) lock, O_RDWR | O_CREAT | O_NOFOLLOW,
                          0600);

        if (z->lock_fd == NGX_INVALID_FILE) {
            ngx_log_error(NGX_LOG_ERR, cycle->log, ngx_errno,
                          "pred_cache_zone \"%V\": open(\"%s\") failed: "
                          "this worker writes no checkpoint",
                          &z->shm_zone->shm.name, lock);
        }

        z->state_ev.handler = ngx_http_pred_state_timer;
        z->state_ev.data = z;
        z->state_ev.log = cycle->log;
        /* a sync due never holds up a worker's exit: exit flushes too */
        z->state_ev.cancelable = 1;

        ngx_add_timer(&z->state_ev, z->state_sync);
    }

    return NGX_OK;
}


/* a stop or a quit: what this worker has not written yet is written */
void
ngx_http_pred_state_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                   i;
    ngx_http_pred_main_conf_t   *pmcf;
    ngx_http_pred_cache_zone_t **zones, *z;

    pmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_pred_module);
    if (pmcf == NULL) {
        return;
    }

    zones = pmcf->zones.elts;

    for (i = 0; i < pmcf->zones.nelts; i++) {
        z = zones[i];

        if (z->state.len == 0) {
            continue;
        }

        ngx_http_pred_state_flush(z, cycle->log);

        if (z->journal_dropped) {
            ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                          "pred_cache_zone \"%V\": %O bytes of this "
                          "worker's writes could not be journaled: they "
                          "will not survive a restart",
                          &z->shm_zone->shm.name, z->journal_dropped);
        }

        if (z->journal_fd != NGX_INVALID_FILE) {
            (void) ngx_close_file(z->journal_fd);
            z->journal_fd = NGX_INVALID_FILE;
        }

        if (z->lock_fd != NGX_INVALID_FILE) {
            (void) ngx_close_file(z->lock_fd);
            z->lock_fd = NGX_INVALID_FILE;
        }

        if (z->journal) {
            ngx_free(z->journal);
            z->journal = NULL;
            z->journal_size = 0;
        }
    }
}


/*
 * At start, in the master, for a new zone: the checkpoint and the
 * journals after it, the newest record of each key written back.
 */
void
ngx_http_pred_state_load(ngx_http_pred_cache_zone_t *z, ngx_log_t *log)
{
    uint64_t                    gen, *gens, last;
    ngx_uint_t                  i, n, read, from_checkpoint;
    ngx_http_pred_state_sh_t   *sh;
    ngx_http_pred_state_load_t  ld;

    /* nginx -t makes the zones too: it has nothing to restore */
    if (ngx_test_config) {
        return;
    }

    ngx_memzero(&ld, sizeof(ngx_http_pred_state_load_t));
    ld.log = log;

    sh = ngx_http_pred_cache_state(z);

    gen = 0;
    from_checkpoint = ngx_http_pred_state_read_checkpoint(z, &ld, &gen);

    last = gen;
    gens = NULL;
    n = 0;
    read = 0;

    if (ngx_http_pred_state_journals(z, &gens, &n, log) == NGX_OK) {
        for (i = 0; i < n; i++) {
            /* those before the checkpoint's are in it */
            if (gens[i] < gen) {
                continue;
            }

            ngx_http_pred_state_read_journal(z, &ld, gens[i]);
            last = ngx_max(last, gens[i]);
            read++;
        }

        ngx_free(gens);
    }

    ngx_http_pred_state_apply(z, &ld);

    /* new writes come after every one read, in a journal of their own */
    sh->seq = ngx_max(ld.max_seq, ngx_http_pred_state_seq_base());
    sh->gen = last + 1;

    ngx_http_pred_state_clean(z, log);

    /* nothing to say of a first start */
    if (ld.nfiles) {
        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "pred_cache_zone \"%V\": %ui entries restored from "
                      "%ui records in \"%V\"%s and %ui journals (%ui expired "
                      "or not kept, %ui without room)",
                      &z->shm_zone->shm.name, ld.restored, ld.n, &z->state,
                      from_checkpoint ? "" : " (no checkpoint)", read,
                      ld.expired, ld.failed);
    }

    for (i = 0; i < ld.nfiles; i++) {
        ngx_free(ld.files[i]);
    }

    if (ld.files) {
        ngx_free(ld.files);
    }

    if (ld.items) {
        ngx_free(ld.items);
    }
}


/*
 * A zone kept by a reload that now has state= (or another file): it goes
 * on after whatever the folder holds, in a journal of its own.
 */
void
ngx_http_pred_state_adopt(ngx_http_pred_cache_zone_t *z, ngx_log_t *log)
{
    char                       head[PRED_STATE_HEADER_MAX];
    ssize_t                    n;
    uint64_t                  *gens, gen;
    ngx_fd_t                   fd;
    ngx_uint_t                 count;
    ngx_http_pred_state_sh_t  *sh;

    if (ngx_test_config) {
        return;
    }

    sh = ngx_http_pred_cache_state(z);
    gen = sh->gen;

    fd = open((char *) z->state.data, O_RDONLY | O_NONBLOCK | O_NOFOLLOW);

    if (fd != NGX_INVALID_FILE) {
        n = read(fd, head, sizeof(head));
        (void) ngx_close_file(fd);

        if (n > 0) {
            (void) pred_state_parse_header(head, n, "checkpoint", &gen);
        }
    }

    if (ngx_http_pred_state_journals(z, &gens, &count, log) == NGX_OK) {
        gen = ngx_max(gen, gens[count - 1]);
        ngx_free(gens);
    }

    sh->gen = ngx_max(sh->gen, gen + 1);
    sh->seq = ngx_max(sh->seq, ngx_http_pred_state_seq_base());
}


/*
 * The first write of a zone made now comes after every write of an
 * earlier zone, even one whose workers still write as it goes (a reload
 * that resizes it): the order of writes starts from the clock, 16 to a
 * microsecond, more than a zone takes.
 */
static uint64_t
ngx_http_pred_state_seq_base(void)
{
    return (uint64_t) ngx_http_pred_state_now_ms() * 16000;
}


/*
 * The folder of PATH opened to read (its name, with a "/", into dname of
 * NGX_MAX_PATH bytes), and PATH's own name in it; NULL when it cannot be
 * opened.  state= is a full name: there is a "/".
 */
static DIR *
ngx_http_pred_state_folder(ngx_http_pred_cache_zone_t *z, u_char *dname,
    u_char **base, size_t *blen)
{
    *base = (u_char *) strrchr((char *) z->state.data, '/') + 1;
    *blen = z->state.data + z->state.len - *base;

    ngx_snprintf(dname, NGX_MAX_PATH, "%*s%Z",
                 (size_t) (*base - z->state.data), z->state.data);

    return opendir((char *) dname);
}


/* temporary files a crash left behind: PATH.PID.tmp, PATH.jG.PID.tmp */
static void
ngx_http_pred_state_clean(ngx_http_pred_cache_zone_t *z, ngx_log_t *log)
{
    DIR            *dir;
    u_char          dname[NGX_MAX_PATH], path[NGX_MAX_PATH], *base;
    size_t          blen, len;
    struct dirent  *de;

    dir = ngx_http_pred_state_folder(z, dname, &base, &blen);
    if (dir == NULL) {
        return;
    }

    while ((de = readdir(dir)) != NULL) {
        len = ngx_strlen(de->d_name);

        if (len > blen + 5
            && ngx_strncmp(de->d_name, base, blen) == 0
            && de->d_name[blen] == '.'
            && ngx_strcmp(de->d_name + len - 4, ".tmp") == 0)
        {
            ngx_snprintf(path, sizeof(path), "%s%s%Z", dname, de->d_name);

            if (unlink((char *) path) == 0) {
                ngx_log_error(NGX_LOG_NOTICE, log, 0,
                              "pred_cache_zone \"%V\": removed \"%s\", "
                              "left by a crash", &z->shm_zone->shm.name,
                              path);
            }
        }
    }

    (void) closedir(dir);
}


static ngx_uint_t
ngx_http_pred_state_kept(ngx_http_pred_cache_zone_t *z, ngx_uint_t kind)
{
    switch (kind) {

    case NGX_HTTP_PRED_CACHE_TOMBSTONE:
    case NGX_HTTP_PRED_CACHE_OVERRIDE:
        return 1;

    case NGX_HTTP_PRED_CACHE_VALUE:
    case NGX_HTTP_PRED_CACHE_NEGATIVE:
        return z->state_all;

    default:
        return 0;
    }
}


/* wall clock: entries are saved with when they expire, not for how long */
static int64_t
ngx_http_pred_state_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (int64_t) tp->sec * 1000 + tp->msec;
}


/* room for size more bytes of records; written out first when full */
static ngx_int_t
ngx_http_pred_state_reserve(ngx_http_pred_cache_zone_t *z, size_t size)
{
    if (z->journal_len + size <= z->journal_size) {
        return NGX_OK;
    }

    if (z->journal_len + size > NGX_HTTP_PRED_STATE_BUF_MAX
        && z->journal_len)
    {
        ngx_http_pred_state_flush(z, ngx_cycle->log);

        if (z->journal_len + size <= z->journal_size) {
            return NGX_OK;
        }
    }

    return ngx_http_pred_state_grow(&z->journal, &z->journal_size,
                                    z->journal_len, size);
}


/* *buf (of *size bytes, len of them used) with room for need more */
static ngx_int_t
ngx_http_pred_state_grow(u_char **buf, size_t *size, size_t len,
    size_t need)
{
    u_char  *p;
    size_t   want;

    if (len + need <= *size) {
        return NGX_OK;
    }

    want = ngx_max(*size * 2, 64 * 1024);
    want = ngx_max(want, len + need);

    p = ngx_alloc(want, ngx_cycle->log);
    if (p == NULL) {
        return NGX_ERROR;
    }

    if (*buf) {
        ngx_memcpy(p, *buf, len);
        ngx_free(*buf);
    }

    *buf = p;
    *size = want;

    return NGX_OK;
}


/* this worker's records to the current journal, in one append */
static void
ngx_http_pred_state_flush(ngx_http_pred_cache_zone_t *z, ngx_log_t *log)
{
    u_char                    *p;
    size_t                     left;
    ssize_t                    n;
    uint64_t                   gen;
    ngx_http_pred_state_sh_t  *sh;

    if (z->journal_lost) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "pred_cache_zone \"%V\": %ui writes could not be "
                      "kept for the state file (out of memory)",
                      &z->shm_zone->shm.name, z->journal_lost);
        z->journal_lost = 0;
    }

    if (z->journal_len == 0) {
        return;
    }

    sh = ngx_http_pred_cache_state(z);
    gen = sh->gen;

    if (z->journal_fd == NGX_INVALID_FILE || z->journal_gen != gen) {
        if (z->journal_fd != NGX_INVALID_FILE) {
            (void) ngx_close_file(z->journal_fd);
        }

        z->journal_fd = ngx_http_pred_state_journal_open(z, gen, log);
        z->journal_gen = gen;
    }

    p = z->journal;
    left = z->journal_len;

    /* no journal to write to: what is left is dropped, and counted */
    while (left && z->journal_fd != NGX_INVALID_FILE) {
        n = write(z->journal_fd, p, left);

        if (n == -1 && ngx_errno == NGX_EINTR) {
            continue;
        }

        if (n <= 0) {
            if (!z->state_logged) {
                z->state_logged = 1;
                ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                              "pred_cache_zone \"%V\": writing the journal "
                              "\"%V.j%uA\" failed: %uz bytes of writes are "
                              "not kept (logged once until one succeeds)",
                              &z->shm_zone->shm.name, &z->state, gen, left);
            }

            break;
        }

        p += n;
        left -= n;
    }

    if (left == 0) {
        z->state_logged = 0;
    }

    z->journal_dropped += left;

    (void) ngx_atomic_fetch_add(&sh->journal_bytes, z->journal_len - left);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, log, 0,
                   "pred_cache_zone \"%V\": %uz bytes to journal %uA",
                   &z->shm_zone->shm.name, z->journal_len - left, gen);

    z->journal_len = 0;
}


/*
 * The journal of generation gen, opened to append.  A new one is made
 * under another name with its first line and linked into place, so no
 * worker ever appends to a journal without it.
 */
static ngx_fd_t
ngx_http_pred_state_journal_open(ngx_http_pred_cache_zone_t *z,
    uint64_t gen, ngx_log_t *log)
{
    int        n;
    char       header[PRED_STATE_HEADER_MAX];
    u_char     path[NGX_MAX_PATH], tmp[NGX_MAX_PATH];
    ngx_fd_t   fd;
    ngx_err_t  err;

    ngx_snprintf(path, sizeof(path), "%V.j%uA%Z", &z->state, gen);

    fd = open((char *) path, O_WRONLY | O_APPEND);

    if (fd != NGX_INVALID_FILE || ngx_errno != NGX_ENOENT) {
        goto done;
    }

    ngx_snprintf(tmp, sizeof(tmp), "%V.j%uA.%P.tmp%Z", &z->state, gen,
                 ngx_pid);

    n = pred_state_header(header, sizeof(header), "journal", gen);

    (void) unlink((char *) tmp);
    fd = open((char *) tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);

    if (fd != NGX_INVALID_FILE) {
        if (write(fd, header, n) != n) {
            err = ngx_errno;
            (void) ngx_close_file(fd);
            (void) unlink((char *) tmp);
            ngx_set_errno(err);
            fd = NGX_INVALID_FILE;
            goto done;
        }

        (void) ngx_close_file(fd);

        /* another worker may have linked its own first: either serves */
        if (link((char *) tmp, (char *) path) == -1
            && ngx_errno != NGX_EEXIST)
        {
            err = ngx_errno;
            (void) unlink((char *) tmp);
            ngx_set_errno(err);
            fd = NGX_INVALID_FILE;
            goto done;
        }

        (void) unlink((char *) tmp);

        fd = open((char *) path, O_WRONLY | O_APPEND);
    }

done:

    if (fd == NGX_INVALID_FILE && !z->state_logged) {
        z->state_logged = 1;
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "pred_cache_zone \"%V\": cannot open the journal "
                      "\"%s\" (logged once until it opens)",
                      &z->shm_zone->shm.name, path);
    }

    return fd;
}


static void
ngx_http_pred_state_timer(ngx_event_t *ev)
{
    ngx_http_pred_cache_zone_t  *z = ev->data;

    ngx_http_pred_state_flush(z, ev->log);
    ngx_http_pred_state_checkpoint(z, ev->log);

    ngx_add_timer(ev, z->state_sync);
}


/*
 * When the journals have grown past twice the last checkpoint: a new one,
 * by one worker at a time: the one that holds the lock on PATH.lock (the
 * kernel lets it go when the worker dies, whatever way).
 */
static void
ngx_http_pred_state_checkpoint(ngx_http_pred_cache_zone_t *z, ngx_log_t *log)
{
    int                         n;
    char                        header[PRED_STATE_HEADER_MAX];
    size_t                      due;
    uint64_t                    gen, seq;
    ngx_msec_t                  start;
    pred_state_rec_t            end;
    ngx_http_pred_state_sh_t   *sh;
    ngx_http_pred_state_dump_t  d;

    sh = ngx_http_pred_cache_state(z);

    due = ngx_max(2 * (size_t) sh->checkpoint_bytes,
                  NGX_HTTP_PRED_STATE_MIN_JOURNAL);

    if ((size_t) sh->journal_bytes < due) {
        return;
    }

    if (z->lock_fd == NGX_INVALID_FILE
        || ngx_trylock_fd(z->lock_fd) != 0)
    {
        return;
    }

    start = ngx_current_msec;

    /* this worker's records go where they belong first */
    ngx_http_pred_state_flush(z, log);

    /* from now on every worker appends to the next journal */
    gen = sh->gen + 1;
    sh->gen = gen;
    sh->journal_bytes = 0;
    ngx_memory_barrier();

    ngx_memzero(&d, sizeof(ngx_http_pred_state_dump_t));
    d.z = z;
    d.now_ms = ngx_http_pred_state_now_ms();

    n = pred_state_header(header, sizeof(header), "checkpoint", gen);

    /* about what the copy takes: no growing under the zone's lock */
    d.size = (z->state_all
              ? z->shm_zone->shm.size - z->shpool->pfree * ngx_pagesize
              : (size_t) ngx_http_pred_cache_stat(z, 4))
             + (size_t) ngx_http_pred_cache_stat(z, 0)
               * (PRED_STATE_FIXED + PRED_STATE_CHECK)
             + 64 * 1024;
    d.buf = ngx_alloc(d.size, log);

    if (d.buf == NULL) {
        goto done;
    }

    ngx_memcpy(d.buf, header, n);
    d.len = n;

    seq = ngx_http_pred_cache_dump(z, z->state_all,
                                   ngx_http_pred_state_dump_entry, &d);

    if (d.failed) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "pred_cache_zone \"%V\": no memory for a checkpoint; "
                      "the journals are kept", &z->shm_zone->shm.name);
        goto done;
    }

    /* every entry is as of the last write the copy saw */
    pred_state_reseq((char *) d.buf + n, d.len - n, seq);

    ngx_memzero(&end, sizeof(pred_state_rec_t));
    end.type = PRED_STATE_END;
    end.seq = d.entries;
    end.expires_ms = (int64_t) seq;
    end.key = "";

    if (ngx_http_pred_state_dump_room(&d, pred_state_size(0, 0)) != NGX_OK)
    {
        goto done;
    }

    d.len += pred_state_encode(&end, (char *) d.buf + d.len);

    if (ngx_http_pred_state_write_file(z, d.buf, d.len, log) != NGX_OK) {
        goto done;
    }

    sh->checkpoint_bytes = d.len;

    ngx_http_pred_state_remove_journals(z, gen, log);

    /* the cached clock stood still while this ran */
    ngx_time_update();

    ngx_log_error(NGX_LOG_INFO, log, 0,
                  "pred_cache_zone \"%V\": checkpoint of %ui entries "
                  "(%uz bytes) in %M ms", &z->shm_zone->shm.name, d.entries,
                  d.len, ngx_current_msec - start);

done:

    if (d.buf) {
        ngx_free(d.buf);
    }

    (void) ngx_unlock_fd(z->lock_fd);
}


/*
 * One entry of the zone into the checkpoint, under the zone's lock.  A
 * model answer that masks the snapshot (it replaced a tombstone), not kept
 * itself, is kept as the tombstone it carries.
 */
static void
ngx_http_pred_state_dump_entry(void *ctx, ngx_uint_t kind, ngx_str_t *key,
    ngx_str_t *value, ngx_msec_int_t left, uint32_t stored,
    uint32_t mask_until)
{
    ngx_http_pred_state_dump_t *d = ctx;

    pred_state_rec_t  rec;

    ngx_memzero(&rec, sizeof(pred_state_rec_t));

    rec.type = PRED_STATE_ENTRY;
    rec.key = (char *) key->data;
    rec.key_len = key->len;
    rec.stored = stored;

    if (ngx_http_pred_state_kept(d->z, kind) && left > 0) {
        rec.kind = kind;
        rec.expires_ms = d->now_ms + left;
        rec.mask_until = mask_until;
        rec.value = (char *) value->data;
        rec.value_len = value->len;

    } else if ((int64_t) mask_until * 1000 > d->now_ms) {
        rec.kind = NGX_HTTP_PRED_CACHE_TOMBSTONE;
        rec.expires_ms = (int64_t) mask_until * 1000;

    } else {
        return;
    }

    if (ngx_http_pred_state_dump_room(d, pred_state_size(rec.key_len,
                                                         rec.value_len))
        != NGX_OK)
    {
        return;
    }

    d->len += pred_state_encode(&rec, (char *) d->buf + d->len);
    d->entries++;
}


/* size more bytes in the checkpoint's buffer; d->failed when there are not */
static ngx_int_t
ngx_http_pred_state_dump_room(ngx_http_pred_state_dump_t *d, size_t size)
{
    if (d->failed
        || ngx_http_pred_state_grow(&d->buf, &d->size, d->len, size)
           != NGX_OK)
    {
        d->failed = 1;
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* the checkpoint in place: written under another name, synced, renamed */
static ngx_int_t
ngx_http_pred_state_write_file(ngx_http_pred_cache_zone_t *z, u_char *buf,
    size_t len, ngx_log_t *log)
{
    u_char    *p, tmp[NGX_MAX_PATH];
    size_t     left;
    ssize_t    n;
    ngx_fd_t   fd;
    ngx_err_t  err;

    ngx_snprintf(tmp, sizeof(tmp), "%V.%P.tmp%Z", &z->state, ngx_pid);

    (void) unlink((char *) tmp);
    fd = open((char *) tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);
    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "pred_cache_zone \"%V\": open(\"%s\") failed; the "
                      "journals are kept", &z->shm_zone->shm.name, tmp);
        return NGX_ERROR;
    }

    for (left = len; left; left -= n, buf += n) {
        n = write(fd, buf, left);

        if (n == -1 && ngx_errno == NGX_EINTR) {
            n = 0;
            continue;
        }

        if (n <= 0) {
            goto failed;
        }
    }

    if (fsync(fd) == -1) {
        goto failed;
    }

    (void) ngx_close_file(fd);

    if (rename((char *) tmp, (char *) z->state.data) == -1) {
        err = ngx_errno;
        (void) unlink((char *) tmp);
        ngx_log_error(NGX_LOG_ERR, log, err,
                      "pred_cache_zone \"%V\": rename(\"%s\", \"%V\") "
                      "failed; the journals are kept",
                      &z->shm_zone->shm.name, tmp, &z->state);
        return NGX_ERROR;
    }

    /* the new name on disk before the journals it replaces go */
    p = (u_char *) strrchr((char *) tmp, '/');
    *p = '\0';

    fd = open((char *) tmp, O_RDONLY | O_DIRECTORY);

    if (fd == NGX_INVALID_FILE || fsync(fd) == -1) {
        err = ngx_errno;

        if (fd != NGX_INVALID_FILE) {
            (void) ngx_close_file(fd);
        }

        ngx_log_error(NGX_LOG_ERR, log, err,
                      "pred_cache_zone \"%V\": syncing the folder \"%s\" "
                      "failed; the journals are kept",
                      &z->shm_zone->shm.name, tmp);
        return NGX_ERROR;
    }

    (void) ngx_close_file(fd);

    return NGX_OK;

failed:

    err = ngx_errno;
    (void) ngx_close_file(fd);
    (void) unlink((char *) tmp);

    ngx_log_error(NGX_LOG_ERR, log, err,
                  "pred_cache_zone \"%V\": writing \"%s\" failed; the "
                  "journals are kept", &z->shm_zone->shm.name, tmp);

    return NGX_ERROR;
}


/* the journals a checkpoint of generation before holds */
static void
ngx_http_pred_state_remove_journals(ngx_http_pred_cache_zone_t *z,
    uint64_t before, ngx_log_t *log)
{
    u_char      path[NGX_MAX_PATH];
    uint64_t   *gens;
    ngx_uint_t  i, n;

    if (ngx_http_pred_state_journals(z, &gens, &n, log) != NGX_OK) {
        return;
    }

    for (i = 0; i < n && gens[i] < before; i++) {
        ngx_snprintf(path, sizeof(path), "%V.j%uA%Z", &z->state, gens[i]);

        if (unlink((char *) path) == -1 && ngx_errno != NGX_ENOENT) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          "pred_cache_zone \"%V\": unlink(\"%s\") failed",
                          &z->shm_zone->shm.name, path);
        }
    }

    ngx_free(gens);
}


/* the generations of PATH.jGEN beside PATH, in order (ngx_free them) */
static ngx_int_t
ngx_http_pred_state_journals(ngx_http_pred_cache_zone_t *z, uint64_t **gens,
    ngx_uint_t *n, ngx_log_t *log)
{
    DIR            *dir;
    u_char          dname[NGX_MAX_PATH], *base, *name, *p;
    size_t          blen, len;
    uint64_t        gen, *list, *more;
    ngx_uint_t      count, size;
    struct dirent  *de;

    *gens = NULL;
    *n = 0;

    dir = ngx_http_pred_state_folder(z, dname, &base, &blen);
    if (dir == NULL) {
        if (ngx_errno != NGX_ENOENT) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          "pred_cache_zone \"%V\": opendir(\"%s\") failed",
                          &z->shm_zone->shm.name, dname);
        }

        return NGX_ERROR;
    }

    list = NULL;
    count = 0;
    size = 0;

    while ((de = readdir(dir)) != NULL) {
        name = (u_char *) de->d_name;
        len = ngx_strlen(name);

        /* "BASE.jDIGITS", nothing after: a temporary name is not one */
        if (len <= blen + 2 || ngx_strncmp(name, base, blen) != 0
            || name[blen] != '.' || name[blen + 1] != 'j')
        {
            continue;
        }

        gen = 0;

        for (p = name + blen + 2; *p >= '0' && *p <= '9'; p++) {
            if (gen > (UINT64_MAX - 9) / 10) {
                break;
            }

            gen = gen * 10 + (*p - '0');
        }

        if (*p != '\0' || gen > NGX_HTTP_PRED_STATE_GEN_MAX) {
            continue;
        }

        if (count == size) {
            size = size ? 2 * size : 16;

            more = ngx_alloc(size * sizeof(uint64_t), log);
            if (more == NULL) {
                break;
            }

            if (list) {
                ngx_memcpy(more, list, count * sizeof(uint64_t));
                ngx_free(list);
            }

            list = more;
        }

        list[count++] = gen;
    }

    (void) closedir(dir);

    if (count) {
        ngx_qsort(list, count, sizeof(uint64_t),
                  ngx_http_pred_state_gen_cmp);
    }

    *gens = list;
    *n = count;

    return list ? NGX_OK : NGX_ERROR;
}


/* a whole file into memory (ngx_free it); NULL when it is not there */
static u_char *
ngx_http_pred_state_read_file(u_char *path, size_t *len, ngx_log_t *log)
{
    u_char           *buf;
    size_t            got;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_file_info_t   fi;

    /* a FIFO or a link put there is not read (nor waited on) */
    fd = open((char *) path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW);
    if (fd == NGX_INVALID_FILE) {
        if (ngx_errno != NGX_ENOENT) {
            ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                          "pred state: open(\"%s\") failed; skipped", path);
        }

        return NULL;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR || !ngx_is_file(&fi)) {
        ngx_log_error(NGX_LOG_ERR, log, ngx_errno,
                      "pred state: \"%s\" is not a file; skipped", path);
        (void) ngx_close_file(fd);
        return NULL;
    }

    *len = (size_t) ngx_file_size(&fi);

    buf = ngx_alloc(*len + 1, log);
    if (buf == NULL) {
        (void) ngx_close_file(fd);
        return NULL;
    }

    for (got = 0; got < *len; got += n) {
        n = read(fd, buf + got, *len - got);

        if (n == -1 && ngx_errno == NGX_EINTR) {
            n = 0;
            continue;
        }

        if (n <= 0) {
            break;
        }
    }

    (void) ngx_close_file(fd);

    /* a file that shrank under the read is read as far as it goes */
    *len = got;

    return buf;
}


/*
 * The checkpoint's records.  A checkpoint is written whole, so one that
 * does not read back whole (a record failing its check, no end record) is
 * damaged: the records before the damage are kept (each passed its
 * check), the file is kept aside as PATH.damaged for a person to look at,
 * and the journals from its generation on are read all the same.  Returns
 * 1 when it was read whole.
 */
static ngx_uint_t
ngx_http_pred_state_read_checkpoint(ngx_http_pred_cache_zone_t *z,
    ngx_http_pred_state_load_t *ld, uint64_t *gen)
{
    int                rc, hlen;
    char               err[128];
    u_char            *buf, aside[NGX_MAX_PATH];
    size_t             len;
    uint64_t           count;
    ngx_uint_t         ended;
    const char        *p, *end;
    pred_state_rec_t   rec;

    buf = ngx_http_pred_state_read_file(z->state.data, &len, ld->log);
    if (buf == NULL) {
        return 0;
    }

    /* the buffer is the records' until they are applied */
    if (ngx_http_pred_state_add(ld, NULL) != NGX_OK) {
        ngx_free(buf);
        return 0;
    }

    ld->files[ld->nfiles++] = buf;

    count = 0;
    ended = 0;
    p = (char *) buf;
    end = p + len;
    err[0] = '\0';

    hlen = pred_state_parse_header(p, len, "checkpoint", gen);

    if (hlen < 0 || *gen > NGX_HTTP_PRED_STATE_GEN_MAX) {
        *gen = 0;
        ngx_cpystrn((u_char *) err, (u_char *) "not a checkpoint",
                    sizeof(err));
        goto damaged;
    }

    p += hlen;

    for ( ;; ) {
        rc = pred_state_next(&p, end, &rec, err, sizeof(err));

        if (rc == PRED_STATE_DONE || rc == PRED_STATE_TORN) {
            ngx_cpystrn((u_char *) err, (u_char *) "no end record",
                        sizeof(err));
            goto damaged;
        }

        if (rc == PRED_STATE_CORRUPT) {
            goto damaged;
        }

        if (rec.type == PRED_STATE_END) {
            ended = (rec.seq == count && p == end);
            ld->as_of_seq = (uint64_t) rec.expires_ms;
            break;
        }

        if (ngx_http_pred_state_add(ld, &rec) != NGX_OK) {
            ngx_cpystrn((u_char *) err, (u_char *) "out of memory",
                        sizeof(err));
            goto damaged;
        }

        count++;
    }

    if (ended) {
        return 1;
    }

    ngx_cpystrn((u_char *) err, (u_char *) "its end record does not match",
                sizeof(err));

damaged:

    /* its records all carry the write it is as of */
    ld->as_of_seq = count ? ld->max_seq : 0;

    ngx_snprintf(aside, sizeof(aside), "%V.damaged%Z", &z->state);

    if (rename((char *) z->state.data, (char *) aside) == -1) {
        ngx_log_error(NGX_LOG_ERR, ld->log, ngx_errno,
                      "pred_cache_zone \"%V\": rename(\"%V\", \"%s\") "
                      "failed", &z->shm_zone->shm.name, &z->state, aside);
    }

    ngx_log_error(NGX_LOG_ERR, ld->log, 0,
                  "pred_cache_zone \"%V\": the state checkpoint \"%V\" is "
                  "damaged (%s at byte %uz): the %uL records before it are "
                  "read, the journals beside it too; the file is kept as "
                  "\"%s\"", &z->shm_zone->shm.name, &z->state, err,
                  (size_t) (p - (char *) buf), count, aside);

    return 0;
}


/*
 * A journal's records up to its end, or to a record cut short (a crash
 * while appending: its last), or to one that fails its check (the rest of
 * the file is skipped).
 */
static void
ngx_http_pred_state_read_journal(ngx_http_pred_cache_zone_t *z,
    ngx_http_pred_state_load_t *ld, uint64_t gen)
{
    int                rc, hlen;
    char               err[128];
    u_char            *buf, path[NGX_MAX_PATH];
    size_t             len;
    uint64_t           hgen;
    ngx_uint_t         count;
    const char        *p, *end, *at, *next;
    pred_state_rec_t   rec;

    ngx_snprintf(path, sizeof(path), "%V.j%uA%Z", &z->state, gen);

    buf = ngx_http_pred_state_read_file(path, &len, ld->log);
    if (buf == NULL) {
        return;
    }

    if (ngx_http_pred_state_add(ld, NULL) != NGX_OK) {
        ngx_free(buf);
        return;
    }

    ld->files[ld->nfiles++] = buf;

    p = (char *) buf;
    end = p + len;

    hlen = pred_state_parse_header(p, len, "journal", &hgen);

    if (hlen < 0 || hgen != gen) {
        ngx_log_error(NGX_LOG_ERR, ld->log, 0,
                      "pred_cache_zone \"%V\": \"%s\" is not a journal of "
                      "generation %uA: skipped", &z->shm_zone->shm.name,
                      path, gen);
        return;
    }

    p += hlen;

    for (count = 0; /* void */; count++) {
        at = p;
        rc = pred_state_next(&p, end, &rec, err, sizeof(err));

        if (rc == PRED_STATE_DONE) {
            return;
        }

        if (rc == PRED_STATE_OK && rec.type == PRED_STATE_END) {
            rc = PRED_STATE_CORRUPT;
            ngx_cpystrn((u_char *) err, (u_char *) "an end record",
                        sizeof(err));
        }

        if (rc != PRED_STATE_OK) {
            /*
             * Workers append to one journal: a write cut short by a full
             * disk (or a kill) leaves part of a record with whole ones
             * after it.  The next record that passes its check goes on.
             */
            next = ngx_http_pred_state_resync(at + 1, end);

            if (next == NULL && rc == PRED_STATE_TORN) {
                ngx_log_error(NGX_LOG_WARN, ld->log, 0,
                              "pred_cache_zone \"%V\": the journal \"%s\" "
                              "ends in a record cut short (a crash while "
                              "writing it): the %ui records before it are "
                              "read", &z->shm_zone->shm.name, path, count);
                return;
            }

            ngx_log_error(NGX_LOG_ERR, ld->log, 0,
                          "pred_cache_zone \"%V\": the journal \"%s\" is "
                          "damaged (%s at byte %uz): %s",
                          &z->shm_zone->shm.name, path,
                          rc == PRED_STATE_TORN ? "a record cut short" : err,
                          (size_t) (at - (char *) buf),
                          next ? "the bytes up to the next whole record are "
                                 "skipped"
                               : "the rest is skipped");

            if (next == NULL) {
                return;
            }

            p = next;
            continue;
        }

        if (rec.seq <= ld->as_of_seq) {
            continue;
        }

        if (ngx_http_pred_state_add(ld, &rec) != NGX_OK) {
            return;
        }
    }
}


/*
 * The first place from p on where a whole record passing its check
 * starts, looked for over NGX_HTTP_PRED_STATE_BUF_MAX bytes at most (a
 * worker appends that much at once at the most); NULL when none does.
 */
static const char *
ngx_http_pred_state_resync(const char *p, const char *end)
{
    char               err[128];
    const char        *q, *last;
    pred_state_rec_t   rec;

    last = (end - p > NGX_HTTP_PRED_STATE_BUF_MAX)
           ? p + NGX_HTTP_PRED_STATE_BUF_MAX : end;

    for ( /* void */ ; p < last; p++) {
        q = p;

        if (pred_state_next(&q, end, &rec, err, sizeof(err))
            == PRED_STATE_OK
            && rec.type != PRED_STATE_END)
        {
            return p;
        }
    }

    return NULL;
}


/* one more record, or (rec NULL) room for one more file's buffer */
static ngx_int_t
ngx_http_pred_state_add(ngx_http_pred_state_load_t *ld,
    pred_state_rec_t *rec)
{
    void        *more;
    ngx_uint_t   size;

    if (rec == NULL) {
        more = ngx_alloc((ld->nfiles + 1) * sizeof(u_char *), ld->log);
        if (more == NULL) {
            return NGX_ERROR;
        }

        if (ld->files) {
            ngx_memcpy(more, ld->files, ld->nfiles * sizeof(u_char *));
            ngx_free(ld->files);
        }

        ld->files = more;

        return NGX_OK;
    }

    if (rec->seq > NGX_HTTP_PRED_STATE_SEQ_MAX) {
        return NGX_OK;
    }

    if (ld->n == ld->size) {
        size = ld->size ? 2 * ld->size : 1024;

        more = ngx_alloc(size * sizeof(ngx_http_pred_state_item_t), ld->log);
        if (more == NULL) {
            return NGX_ERROR;
        }

        if (ld->items) {
            ngx_memcpy(more, ld->items,
                       ld->n * sizeof(ngx_http_pred_state_item_t));
            ngx_free(ld->items);
        }

        ld->items = more;
        ld->size = size;
    }

    ld->items[ld->n].rec = *rec;
    ld->items[ld->n].order = ld->n;
    ld->n++;

    ld->max_seq = ngx_max(ld->max_seq, rec->seq);

    return NGX_OK;
}


/*
 * The newest record of each key, unless a later purge names it, written
 * back if it has not expired.
 */
static void
ngx_http_pred_state_apply(ngx_http_pred_cache_zone_t *z,
    ngx_http_pred_state_load_t *ld)
{
    int64_t                        now_ms, expires;
    ngx_str_t                      key, value;
    ngx_uint_t                     i, j, kind;
    ngx_http_pred_state_item_t    *it, *purge;
    ngx_http_pred_cache_restore_t  rs;

    if (ld->n == 0) {
        return;
    }

    /* by key, then newest first; purges (by prefix) come last */
    ngx_qsort(ld->items, ld->n, sizeof(ngx_http_pred_state_item_t),
              ngx_http_pred_state_cmp);

    for (purge = ld->items + ld->n;
         purge > ld->items && purge[-1].rec.type == PRED_STATE_PURGE;
         purge--)
    {
        /* void */
    }

    now_ms = ngx_http_pred_state_now_ms();

    for (i = 0; i < (ngx_uint_t) (purge - ld->items); i++) {
        it = &ld->items[i];

        if (i > 0 && it->rec.key_len == it[-1].rec.key_len
            && ngx_memcmp(it->rec.key, it[-1].rec.key, it->rec.key_len) == 0)
        {
            continue;
        }

        for (j = 0; purge + j < ld->items + ld->n; j++) {
            if (purge[j].rec.seq > it->rec.seq
                && it->rec.key_len >= purge[j].rec.key_len
                && ngx_memcmp(it->rec.key, purge[j].rec.key,
                              purge[j].rec.key_len) == 0)
            {
                break;
            }
        }

        if (purge + j < ld->items + ld->n) {
            continue;
        }

        key.data = (u_char *) it->rec.key;
        key.len = it->rec.key_len;
        value.data = (u_char *) it->rec.value;
        value.len = it->rec.value_len;

        kind = it->rec.kind;
        expires = it->rec.expires_ms;

        rs.stored = it->rec.stored;
        rs.mask_until = it->rec.mask_until;

        /* what the zone keeps now: model answers only with state_all */
        if (expires <= now_ms || !ngx_http_pred_state_kept(z, kind)) {

            /* an entry gone that still carried a tombstone's mask: the
               invalidation goes on, as the checkpoint writes it */
            if ((int64_t) it->rec.mask_until * 1000 <= now_ms) {
                ld->expired++;
                continue;
            }

            kind = NGX_HTTP_PRED_CACHE_TOMBSTONE;
            expires = (int64_t) it->rec.mask_until * 1000;
            value.len = 0;
            rs.mask_until = 0;
        }

        if (ngx_http_pred_cache_write(z, &key, kind, &value,
                                      (ngx_msec_t) (expires - now_ms),
                                      &rs, ld->log)
            == NGX_OK)
        {
            ld->restored++;

        } else {
            ld->failed++;
        }
    }
}


static int ngx_libc_cdecl
ngx_http_pred_state_cmp(const void *a, const void *b)
{
    const ngx_http_pred_state_item_t  *x = a, *y = b;

    int  c;

    /* purges after every entry */
    if ((x->rec.type == PRED_STATE_PURGE) != (y->rec.type == PRED_STATE_PURGE))
    {
        return x->rec.type == PRED_STATE_PURGE ? 1 : -1;
    }

    c = ngx_memn2cmp((u_char *) x->rec.key, (u_char *) y->rec.key,
                     x->rec.key_len, y->rec.key_len);
    if (c != 0) {
        return c;
    }

    /* the newest first; of two the same, the one read last */
    if (x->rec.seq != y->rec.seq) {
        return x->rec.seq > y->rec.seq ? -1 : 1;
    }

    return x->order > y->order ? -1 : (x->order < y->order);
}


static int ngx_libc_cdecl
ngx_http_pred_state_gen_cmp(const void *a, const void *b)
{
    const uint64_t  *x = a, *y = b;

    return *x < *y ? -1 : (*x > *y);
}
