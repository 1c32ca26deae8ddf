/*
 * The shared-memory tier: fresh answers and pushed overrides, shared by all
 * workers, kept across reloads.
 *
 * A slab zone holds a hash table of entries (chained, a power of two of
 * buckets, SipHash under a secret made with the zone, so that no client
 * can aim its keys at one bucket) and two queues.  The LRU holds what the
 * cache may forget: model answers (values, and negative answers: the model
 * said 404) and single-flight markers.  Expired values are kept, not
 * deleted, because the "stale" fallback serves them; when the slab is
 * full, the least recently used of them make room, a bounded number per
 * insert.  The admin queue holds what an operator wrote: overrides and
 * tombstones (an invalidation that masks the snapshot).  They live for
 * their ttl whatever the cache does, within their own budget (admin=), and
 * a tombstone's mask outlives a model answer that replaces it, so an
 * invalidated snapshot value stays invalidated.
 *
 * Hits take no lock.  Writers hold the zone's mutex and make a sequence
 * number odd while they change the table; a reader walks the chain, copies
 * what it found, and keeps the copy only if the number was even and the
 * same before and after (a seqlock).  A reader that met a writer tries
 * again, and after a few tries takes the mutex.  Nodes it reads may be
 * freed under it: slab memory stays mapped, and every pointer and length
 * is checked against the zone before use, so a torn read is only ever
 * thrown away.  Recency is a "used" bit (second chance, as in CLOCK) set
 * once per entry under a trylock, not a relink on every hit: eviction
 * gives a used entry at the LRU's tail one more round instead.
 */

#include "ngx_http_pred_module.h"


/* entries evicted at most for one insert: bounded time under the lock */
#define NGX_HTTP_PRED_CACHE_EVICT_MAX    64

/* expired admin entries looked at when the admin budget is full */
#define NGX_HTTP_PRED_CACHE_ADMIN_SWEEP  1024

/* lock-free reads tried before a reader takes the mutex */
#define NGX_HTTP_PRED_CACHE_READ_TRIES   4

/* a chain longer than this, read without the lock, is a torn read */
#define NGX_HTTP_PRED_CACHE_CHAIN_MAX    256

/* "pred-z03": the zone's layout; another one in a reused zone is refused */
#define NGX_HTTP_PRED_CACHE_MAGIC        0x707265642d7a3033ULL

#define ngx_http_pred_cache_is_admin(kind)                                   \
    ((kind) == NGX_HTTP_PRED_CACHE_TOMBSTONE                                 \
     || (kind) == NGX_HTTP_PRED_CACHE_OVERRIDE)

/*
 * In the admin queue, never evicted: what an operator wrote, and a model
 * answer that carries a tombstone's mask (evicting it would end the
 * invalidation).  Fixed for a node's life: mask_until never changes.
 */
#define ngx_http_pred_cache_pinned(cn)                                       \
    (ngx_http_pred_cache_is_admin((cn)->kind) || (cn)->mask_until != 0)


typedef struct ngx_http_pred_cache_node_s  ngx_http_pred_cache_node_t;

struct ngx_http_pred_cache_node_s {
    ngx_http_pred_cache_node_t *next;        /* the bucket's chain */
    ngx_queue_t                 queue;       /* the LRU, or the admin one */
    ngx_msec_t                  expires;     /* monotonic, ms */
    ngx_msec_t                  fetch_until; /* a model call leads, or 0 */
    uint32_t                    hash;
    uint32_t                    value_len;
    uint32_t                    stored;      /* wall clock, for Age */
    uint32_t                    mask_until;  /* wall clock: a tombstone's
                                                mask, past the entry that
                                                replaced it; 0: none */
    u_short                     key_len;
    u_char                      kind;
    u_char                      used;        /* hit since the LRU's tail
                                                last passed it */
    u_char                      data[1];     /* key, then value */
};


struct ngx_http_pred_cache_sh_s {
    uint64_t                    magic;
    ngx_atomic_t                seq;          /* odd while a writer works */
    uint64_t                    secret[2];    /* the hash's */
    ngx_http_pred_cache_node_t **buckets;
    ngx_uint_t                  mask;         /* buckets - 1 */
    ngx_queue_t                 queue;        /* the LRU */
    ngx_queue_t                 admin;        /* overrides, tombstones */
    size_t                      admin_bytes;
    ngx_atomic_t                entries;
    ngx_atomic_t                evictions;
    ngx_atomic_t                expirations;  /* expired entries met */
    ngx_atomic_t                tombstones;   /* tombstones written */
    ngx_atomic_t                admin_full;   /* admin writes refused */
    ngx_atomic_t                read_retries; /* reads that met a writer */
    ngx_atomic_t                read_locked;  /* reads that took the lock */
    ngx_http_pred_state_sh_t    state;        /* state=PATH */
};


static ngx_int_t ngx_http_pred_cache_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_pred_cache_wlock(ngx_http_pred_cache_zone_t *z);
static void ngx_http_pred_cache_wunlock(ngx_http_pred_cache_zone_t *z);
static uint32_t ngx_http_pred_cache_hash(ngx_http_pred_cache_zone_t *z,
    ngx_str_t *key);
static ngx_int_t ngx_http_pred_cache_read(ngx_http_request_t *r,
    ngx_http_pred_cache_zone_t *z, ngx_str_t *key, uint32_t hash,
    ngx_uint_t locked, ngx_http_pred_cached_t *out,
    ngx_http_pred_cache_node_t **found);
static ngx_http_pred_cache_node_t *ngx_http_pred_cache_find(
    ngx_http_pred_cache_zone_t *z, ngx_str_t *key, uint32_t hash,
    ngx_uint_t *torn);
static void ngx_http_pred_cache_link(ngx_http_pred_cache_zone_t *z,
    ngx_http_pred_cache_node_t *cn);
static void ngx_http_pred_cache_free(ngx_http_pred_cache_zone_t *z,
    ngx_http_pred_cache_node_t *cn);
static void *ngx_http_pred_cache_alloc(ngx_http_pred_cache_zone_t *z,
    size_t size, ngx_http_pred_cache_node_t *keep);
static size_t ngx_http_pred_cache_node_size(ngx_http_pred_cache_node_t *cn);
static ngx_uint_t ngx_http_pred_cache_masked(ngx_http_pred_cache_node_t *cn);
static void ngx_http_pred_cache_sweep(ngx_http_pred_cache_zone_t *z,
    ngx_http_pred_cache_node_t *keep);


char *
ngx_http_pred_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pred_main_conf_t *pmcf = conf;

    u_char                      *p;
    ngx_int_t                    rc;
    ngx_http_pred_cache_zone_t **zp;
    ssize_t                      size;
    ngx_str_t                   *value, name, s;
    ngx_uint_t                   i;
    ngx_shm_zone_t              *shm_zone;
    ngx_http_pred_cache_zone_t  *z;

    value = cf->args->elts;

    z = ngx_pcalloc(cf->pool, sizeof(ngx_http_pred_cache_zone_t));
    if (z == NULL) {
        return NGX_CONF_ERROR;
    }

    z->ttl = 600;
    z->negative_ttl = 30;
    z->max_entry = NGX_CONF_UNSET_SIZE;
    z->admin_max = NGX_CONF_UNSET_SIZE;
    z->state_sync = NGX_CONF_UNSET_MSEC;
    z->journal_fd = NGX_INVALID_FILE;
    z->lock_fd = NGX_INVALID_FILE;
    size = 0;
    name.len = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {

            name.data = value[i].data + 5;

            p = (u_char *) ngx_strchr(name.data, ':');
            if (p == NULL) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid zone size \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            name.len = p - name.data;

            s.data = p + 1;
            s.len = value[i].data + value[i].len - s.data;

            size = ngx_parse_size(&s);

            if (size == NGX_ERROR || name.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid zone size \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            if (ngx_http_pred_conf_name(cf, &name, "zone") != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            if (size < (ssize_t) (8 * ngx_pagesize)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "zone \"%V\" is too small", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        rc = ngx_http_pred_conf_param(cf, &value[i], "ttl=", 's', 0, &z->ttl);
        if (rc == NGX_DECLINED) {
            rc = ngx_http_pred_conf_param(cf, &value[i], "negative_ttl=", 's',
                                          1, &z->negative_ttl);
        }
        if (rc == NGX_DECLINED) {
            rc = ngx_http_pred_conf_param(cf, &value[i], "max_entry=", 'z',
                                          0, &z->max_entry);
        }
        if (rc == NGX_DECLINED) {
            rc = ngx_http_pred_conf_param(cf, &value[i], "admin=", 'z', 0,
                                          &z->admin_max);
        }
        if (rc == NGX_DECLINED) {
            rc = ngx_http_pred_state_param(cf, pmcf, z, &value[i]);
        }

        if (rc == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        if (rc == NGX_OK) {
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (name.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"zone\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    if ((z->state_all || z->state_sync != NGX_CONF_UNSET_MSEC)
        && z->state.len == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%s\" needs \"state=\"",
                           z->state_all ? "state_all=on" : "state_sync");
        return NGX_CONF_ERROR;
    }

    if (z->state_sync == NGX_CONF_UNSET_MSEC) {
        z->state_sync = 1000;
    }

    /* one value must never need most of the zone evicted */
    if (z->max_entry == NGX_CONF_UNSET_SIZE) {
        z->max_entry = ngx_min(64 * 1024, (size_t) size / 8);
    }

    if (z->max_entry > (size_t) size / 8) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "max_entry=%uz is too large for zone \"%V\" of "
                           "%z bytes: at most an eighth of the zone",
                           z->max_entry, &name, size);
        return NGX_CONF_ERROR;
    }

    if (z->admin_max == NGX_CONF_UNSET_SIZE) {
        z->admin_max = size / 4;
    }

    if (z->admin_max > (size_t) size / 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "admin=%uz is too large for zone \"%V\" of %z "
                           "bytes: at most half of the zone", z->admin_max,
                           &name, size);
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &name, size, &ngx_http_pred_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &name);
        return NGX_CONF_ERROR;
    }

    z->shm_zone = shm_zone;
    shm_zone->init = ngx_http_pred_cache_init_zone;
    shm_zone->data = z;

    zp = ngx_array_push(&pmcf->zones);
    if (zp == NULL) {
        return NGX_CONF_ERROR;
    }

    *zp = z;

    return NGX_CONF_OK;
}


/* "pred_cache NAME [ttl=T] [swr=T]" */
char *
ngx_http_pred_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pred_loc_conf_t *plcf = conf;

    ngx_str_t                   *value;
    ngx_shm_zone_t              *shm_zone;
    ngx_http_pred_conf_param_t   params[] = {
        { "ttl=", 's', 0, &plcf->cache_ttl },
        { "swr=", 's', 1, &plcf->cache_swr },
        { NULL, 0, 0, NULL }
    };

    if (plcf->cache_zone != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        plcf->cache_zone = NULL;
        return NGX_CONF_OK;
    }

    shm_zone = ngx_shared_memory_add(cf, &value[1], 0, &ngx_http_pred_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    plcf->cache_zone = shm_zone;

    if (ngx_http_pred_conf_params(cf, 2, params) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* the zone named by "pred_cache" must exist: checked once all is parsed */
char *
ngx_http_pred_cache_merge(ngx_conf_t *cf, ngx_http_pred_loc_conf_t *prev,
    ngx_http_pred_loc_conf_t *conf)
{
    ngx_shm_zone_t  *shm_zone;

    ngx_conf_merge_ptr_value(conf->cache_zone, prev->cache_zone, NULL);
    ngx_conf_merge_sec_value(conf->cache_ttl, prev->cache_ttl,
                             NGX_CONF_UNSET);
    ngx_conf_merge_sec_value(conf->cache_swr, prev->cache_swr, 0);

    shm_zone = conf->cache_zone;

    if (shm_zone && shm_zone->data == NULL) {
        ngx_http_pred_merge_error(cf, "unknown pred_cache_zone \"%V\"",
                                  &shm_zone->shm.name);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}



/*
 * Looks a key up and copies what it finds into the request pool, without
 * the lock unless writers keep getting in the way.
 * NGX_OK: found (see out->kind, out->expired), NGX_DECLINED: nothing.
 */
ngx_int_t
ngx_http_pred_cache_get(ngx_http_request_t *r, ngx_http_pred_cache_zone_t *z,
    ngx_str_t *key, ngx_http_pred_cached_t *out)
{
    uint32_t                     hash;
    ngx_int_t                    rc;
    ngx_uint_t                   i;
    ngx_atomic_uint_t            seq;
    ngx_http_pred_cache_node_t  *cn;

    hash = ngx_http_pred_cache_hash(z, key);

    for (i = 0; i < NGX_HTTP_PRED_CACHE_READ_TRIES; i++) {

        seq = z->sh->seq;
        ngx_memory_barrier();

        if (seq & 1) {
            (void) ngx_atomic_fetch_add(&z->sh->read_retries, 1);
            ngx_cpu_pause();
            continue;
        }

        rc = ngx_http_pred_cache_read(r, z, key, hash, 0, out, &cn);

        ngx_memory_barrier();

        if (rc == NGX_AGAIN || z->sh->seq != seq) {
            (void) ngx_atomic_fetch_add(&z->sh->read_retries, 1);
            continue;
        }

        if (rc != NGX_OK) {
            return rc;
        }

        /*
         * The first hit marks the entry used.  Under the lock and with
         * the sequence unchanged, cn is still the entry read; when the
         * lock is busy the mark waits for a later hit.
         */
        if (!cn->used && ngx_shmtx_trylock(&z->shpool->mutex)) {
            if (z->sh->seq == seq) {
                cn->used = 1;
            }

            ngx_shmtx_unlock(&z->shpool->mutex);
        }

        goto found;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "pred: cache: key \"%V\": writers busy, read locked",
                   key);

    (void) ngx_atomic_fetch_add(&z->sh->read_locked, 1);

    ngx_shmtx_lock(&z->shpool->mutex);

    /*
     * No writer holds the mutex now: an odd number is one that died
     * mid-change.  Even again, the next hits need not take the lock.
     */
    if (z->sh->seq & 1) {
        ngx_memory_barrier();
        z->sh->seq++;
    }

    rc = ngx_http_pred_cache_read(r, z, key, hash, 1, out, &cn);

    if (rc == NGX_OK) {
        cn->used = 1;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    if (rc != NGX_OK) {
        return rc;
    }

found:

    if (out->expired_ms > 0) {
        (void) ngx_atomic_fetch_add(&z->sh->expirations, 1);
    }

    return NGX_OK;
}


/*
 * Writes an entry.  NGX_OK; NGX_DECLINED: over max_entry, or a model's
 * answer meeting a live override (kept); NGX_BUSY: an override or
 * tombstone over the admin budget; NGX_ERROR: no room even after the
 * bounded eviction.
 */
ngx_int_t
ngx_http_pred_cache_put(ngx_http_pred_cache_zone_t *z, ngx_str_t *key,
    ngx_uint_t kind, ngx_str_t *value, time_t ttl, ngx_log_t *log)
{
    return ngx_http_pred_cache_write(z, key, kind, value,
                                     (ngx_msec_t) ttl * 1000, NULL, log);
}


/*
 * ngx_http_pred_cache_put(), with the ttl in ms; restore: an entry the
 * state files give back at start, as it was (its age and mask), written
 * over whatever is there and not journaled again.
 */
ngx_int_t
ngx_http_pred_cache_write(ngx_http_pred_cache_zone_t *z, ngx_str_t *key,
    ngx_uint_t kind, ngx_str_t *value, ngx_msec_t ttl,
    ngx_http_pred_cache_restore_t *restore, ngx_log_t *log)
{
    size_t                       size, vlen, freed;
    uint32_t                     hash, mask;
    uint64_t                     seq;
    ngx_uint_t                   pinned;
    ngx_msec_int_t               left;
    ngx_http_pred_cache_node_t  *cn, *nn;

    vlen = value ? value->len : 0;

    if (vlen > z->max_entry) {
        if (!z->too_big_logged) {
            z->too_big_logged = 1;
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "pred: cache \"%V\": key \"%V\": value of %uz "
                          "bytes is over max_entry %uz, not cached (logged "
                          "once)", &z->shm_zone->shm.name, key, vlen,
                          z->max_entry);
        }

        return NGX_DECLINED;
    }

    hash = ngx_http_pred_cache_hash(z, key);

    size = offsetof(ngx_http_pred_cache_node_t, data) + key->len + vlen;

    ngx_http_pred_cache_wlock(z);

    cn = ngx_http_pred_cache_find(z, key, hash, NULL);
    mask = restore ? restore->mask_until : 0;

    if (restore) {
        if ((time_t) mask <= ngx_time()) {
            mask = 0;
        }

    } else if (cn) {
        left = (ngx_msec_int_t) (cn->expires - ngx_current_msec);

        /*
         * A model's answer never replaces a live override: the call may
         * have started before the operator's PUT, and would undo it.
         */
        if (cn->kind == NGX_HTTP_PRED_CACHE_OVERRIDE && left > 0
            && !ngx_http_pred_cache_is_admin(kind))
        {
            ngx_http_pred_cache_wunlock(z);

            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                           "pred: key \"%V\": a live override is kept over "
                           "the model's answer", key);
            return NGX_DECLINED;
        }

        /* what replaces a live tombstone keeps masking the snapshot */
        mask = cn->mask_until;

        if (cn->kind == NGX_HTTP_PRED_CACHE_TOMBSTONE && left > 0) {
            mask = ngx_max(mask, (uint32_t) (ngx_time() + left / 1000 + 1));
        }

        if ((time_t) mask <= ngx_time()) {
            mask = 0;
        }
    }

    pinned = ngx_http_pred_cache_is_admin(kind) || mask != 0;

    if (pinned) {
        freed = (cn && ngx_http_pred_cache_pinned(cn))
                ? ngx_http_pred_cache_node_size(cn) : 0;

        /* the entry replaced is not swept: it is freed below, once */
        if (z->sh->admin_bytes - freed + size > z->admin_max) {
            ngx_http_pred_cache_sweep(z, cn);
        }

        if (z->sh->admin_bytes - freed + size > z->admin_max) {
            z->sh->admin_full++;
            ngx_http_pred_cache_wunlock(z);

            /* a restore counts what had no room, and says so once */
            if (restore) {
                return NGX_BUSY;
            }

            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "pred: cache \"%V\": key \"%V\": the admin budget "
                          "of %uz bytes for overrides and tombstones is "
                          "full", &z->shm_zone->shm.name, key, z->admin_max);
            return NGX_BUSY;
        }
    }

    /* allocated first: a failure leaves the entry there as it was */
    nn = ngx_http_pred_cache_alloc(z, size, cn);

    if (nn == NULL) {
        ngx_http_pred_cache_wunlock(z);

        if (restore) {
            return NGX_ERROR;
        }

        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "pred: cache \"%V\": key \"%V\": no room for %uz "
                      "bytes after evicting %d entries",
                      &z->shm_zone->shm.name, key, size,
                      NGX_HTTP_PRED_CACHE_EVICT_MAX);
        return NGX_ERROR;
    }

    if (cn) {
        ngx_http_pred_cache_free(z, cn);
    }

    cn = nn;

    cn->hash = hash;
    cn->kind = (u_char) kind;
    cn->used = 0;
    cn->key_len = (u_short) key->len;
    cn->value_len = (uint32_t) vlen;
    cn->expires = ngx_current_msec + ttl;
    cn->stored = restore ? restore->stored : (uint32_t) ngx_time();
    cn->fetch_until = 0;
    cn->mask_until = mask;

    ngx_memcpy(cn->data, key->data, key->len);
    if (vlen) {
        ngx_memcpy(cn->data + key->len, value->data, vlen);
    }

    ngx_http_pred_cache_link(z, cn);

    if (pinned) {
        ngx_queue_insert_head(&z->sh->admin, &cn->queue);
        z->sh->admin_bytes += size;

    } else {
        ngx_queue_insert_head(&z->sh->queue, &cn->queue);
    }

    if (kind == NGX_HTTP_PRED_CACHE_TOMBSTONE) {
        z->sh->tombstones++;
    }

    /* the order of writes, for the state files: taken under the lock */
    seq = ++z->sh->state.seq;

    ngx_http_pred_cache_wunlock(z);

    if (z->state.len && restore == NULL) {
        ngx_http_pred_state_journal(z, seq, kind, key, value, ttl,
                                    (uint32_t) ngx_time(), mask);
    }

    return NGX_OK;
}

/*
 * entries, evictions, expirations, tombstones, admin bytes, admin writes
 * refused, read retries, locked reads: read without the lock
 */
ngx_atomic_uint_t
ngx_http_pred_cache_stat(ngx_http_pred_cache_zone_t *z, ngx_uint_t what)
{
    switch (what) {
    case 0:
        return z->sh->entries;
    case 1:
        return z->sh->evictions;
    case 2:
        return z->sh->expirations;
    case 3:
        return z->sh->tombstones;
    case 4:
        return z->sh->admin_bytes;
    case 5:
        return z->sh->admin_full;
    case 6:
        return z->sh->read_retries;
    default:
        return z->sh->read_locked;
    }
}



/*
 * Single-flight: NGX_OK makes the caller the one request, across all
 * workers, that asks the model for key; NGX_BUSY means another leads and
 * the caller should wait for its answer in the cache.  The marker expires
 * with the timeout, so a worker that dies mid-call cannot wedge a key.
 */
ngx_int_t
ngx_http_pred_cache_lead(ngx_http_pred_cache_zone_t *z, ngx_str_t *key,
    ngx_msec_t timeout, ngx_msec_t *token)
{
    size_t                       size;
    uint32_t                     hash;
    ngx_http_pred_cache_node_t  *cn;

    hash = ngx_http_pred_cache_hash(z, key);

    ngx_http_pred_cache_wlock(z);

    cn = ngx_http_pred_cache_find(z, key, hash, NULL);

    if (cn && cn->fetch_until
        && (ngx_msec_int_t) (cn->fetch_until - ngx_current_msec) > 0)
    {
        ngx_http_pred_cache_wunlock(z);
        return NGX_BUSY;
    }

    if (cn == NULL) {
        /* an empty entry carries the marker; lookups do not see it */
        size = offsetof(ngx_http_pred_cache_node_t, data) + key->len;

        cn = ngx_http_pred_cache_alloc(z, size, NULL);

        if (cn == NULL) {
            ngx_http_pred_cache_wunlock(z);
            *token = 0;
            return NGX_OK;
        }

        cn->hash = hash;
        cn->kind = NGX_HTTP_PRED_CACHE_EMPTY;
        cn->used = 0;
        cn->key_len = (u_short) key->len;
        cn->value_len = 0;
        cn->expires = ngx_current_msec;
        cn->stored = (uint32_t) ngx_time();
        cn->mask_until = 0;
        ngx_memcpy(cn->data, key->data, key->len);

        ngx_http_pred_cache_link(z, cn);
        ngx_queue_insert_head(&z->sh->queue, &cn->queue);
    }

    /* the deadline is the leader's token: no later leader has the same */
    cn->fetch_until = ngx_current_msec + timeout;

    if (cn->fetch_until == 0) {
        cn->fetch_until = 1;
    }

    *token = cn->fetch_until;

    ngx_http_pred_cache_wunlock(z);

    return NGX_OK;
}


/*
 * The leader failed: waiters must stop waiting, and fall back at once.
 * Only its own marker: when it was late, another request may lead now.
 * A leader abandoned (its request ended first) leaves an empty marker
 * with no deadline: its first waiter leads in its place.
 */
void
ngx_http_pred_cache_unlead(ngx_http_pred_cache_zone_t *z, ngx_str_t *key,
    ngx_msec_t token, ngx_uint_t abandoned)
{
    uint32_t                     hash;
    ngx_http_pred_cache_node_t  *cn;

    if (token == 0) {
        return;
    }

    hash = ngx_http_pred_cache_hash(z, key);

    ngx_http_pred_cache_wlock(z);

    cn = ngx_http_pred_cache_find(z, key, hash, NULL);

    if (cn && cn->fetch_until == token) {
        if (cn->kind == NGX_HTTP_PRED_CACHE_EMPTY && !abandoned) {
            ngx_http_pred_cache_free(z, cn);

        } else {
            cn->fetch_until = 0;
        }
    }

    ngx_http_pred_cache_wunlock(z);
}


/*
 * A waiter's poll: NGX_OK and a fresh answer in out, NGX_AGAIN while the
 * leader is still at it, NGX_DECLINED when it gave up without an answer,
 * NGX_ABORT when it was abandoned (see ngx_http_pred_cache_unlead()).
 */
ngx_int_t
ngx_http_pred_cache_poll(ngx_http_request_t *r, ngx_http_pred_cache_zone_t *z,
    ngx_str_t *key, ngx_http_pred_cached_t *out)
{
    ngx_int_t                    rc;
    ngx_http_pred_cache_node_t  *cn;

    ngx_shmtx_lock(&z->shpool->mutex);

    cn = ngx_http_pred_cache_find(z, key, ngx_http_pred_cache_hash(z, key),
                                  NULL);

    if (cn && cn->fetch_until
        && (ngx_msec_int_t) (cn->fetch_until - ngx_current_msec) > 0)
    {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_AGAIN;
    }

    if (cn && cn->kind == NGX_HTTP_PRED_CACHE_EMPTY && cn->fetch_until == 0) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_ABORT;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    rc = ngx_http_pred_cache_get(r, z, key, out);

    if (rc == NGX_OK && out->expired_ms > 0) {
        return NGX_DECLINED;
    }

    return rc;
}


/*
 * Removes every entry whose key starts with prefix, overrides and
 * tombstones too (an operator's reset); returns how many.
 */
ngx_uint_t
ngx_http_pred_cache_purge(ngx_http_pred_cache_zone_t *z, ngx_str_t *prefix)
{
    uint64_t                     seq;
    ngx_uint_t                   n;
    ngx_queue_t                 *q, *next, *queues[2];
    ngx_uint_t                   i;
    ngx_http_pred_cache_node_t  *cn;

    n = 0;

    ngx_http_pred_cache_wlock(z);

    queues[0] = &z->sh->queue;
    queues[1] = &z->sh->admin;

    for (i = 0; i < 2; i++) {
        for (q = ngx_queue_head(queues[i]);
             q != ngx_queue_sentinel(queues[i]);
             q = next)
        {
            next = ngx_queue_next(q);
            cn = ngx_queue_data(q, ngx_http_pred_cache_node_t, queue);

            if (cn->key_len >= prefix->len
                && ngx_memcmp(cn->data, prefix->data, prefix->len) == 0)
            {
                ngx_http_pred_cache_free(z, cn);
                n++;
            }
        }
    }

    seq = ++z->sh->state.seq;

    ngx_http_pred_cache_wunlock(z);

    /* a restart must not bring back what was purged */
    if (z->state.len) {
        ngx_http_pred_state_journal(z, seq, NGX_HTTP_PRED_CACHE_PURGE,
                                    prefix, NULL, 0, 0, 0);
    }

    return n;
}


/*
 * A checkpoint's view of the zone, taken under the lock: each(ctx, ...)
 * for every override and tombstone (and, with all, every model answer),
 * expired ones too (each decides); returns the order of writes it is as
 * of.  A model answer that carries a tombstone's mask is given as it is.
 */
uint64_t
ngx_http_pred_cache_dump(ngx_http_pred_cache_zone_t *z, ngx_uint_t all,
    ngx_http_pred_cache_each_pt each, void *ctx)
{
    uint64_t                     seq;
    ngx_str_t                    key, value;
    ngx_uint_t                   i;
    ngx_queue_t                 *q, *queues[2];
    ngx_http_pred_cache_node_t  *cn;

    queues[0] = &z->sh->admin;
    queues[1] = &z->sh->queue;

    /* only read: the sequence stays even, readers go on without the lock */
    ngx_shmtx_lock(&z->shpool->mutex);

    for (i = 0; i < (all ? 2 : 1); i++) {
        for (q = ngx_queue_head(queues[i]);
             q != ngx_queue_sentinel(queues[i]);
             q = ngx_queue_next(q))
        {
            cn = ngx_queue_data(q, ngx_http_pred_cache_node_t, queue);

            if (cn->kind == NGX_HTTP_PRED_CACHE_EMPTY) {
                continue;
            }

            key.data = cn->data;
            key.len = cn->key_len;
            value.data = cn->data + cn->key_len;
            value.len = cn->value_len;

            each(ctx, cn->kind, &key, &value,
                 (ngx_msec_int_t) (cn->expires - ngx_current_msec),
                 cn->stored, cn->mask_until);
        }
    }

    seq = z->sh->state.seq;

    ngx_shmtx_unlock(&z->shpool->mutex);

    return seq;
}


ngx_http_pred_state_sh_t *
ngx_http_pred_cache_state(ngx_http_pred_cache_zone_t *z)
{
    return &z->sh->state;
}


ngx_http_pred_cache_zone_t *
ngx_http_pred_cache_zone_get(ngx_http_pred_loc_conf_t *plcf)
{
    return plcf->cache_zone ? plcf->cache_zone->data : NULL;
}


/* how long a value lives: the location's pred_cache ttl, else the zone's */
time_t
ngx_http_pred_cache_ttl(ngx_http_pred_loc_conf_t *plcf,
    ngx_http_pred_cache_zone_t *z)
{
    return (plcf->cache_ttl != NGX_CONF_UNSET) ? plcf->cache_ttl : z->ttl;
}



static ngx_int_t
ngx_http_pred_cache_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_pred_cache_zone_t  *oz = data;

    size_t                       len;
    ngx_uint_t                   buckets;
    ngx_http_pred_cache_zone_t  *z;

    z = shm_zone->data;
    z->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    /*
     * A reload keeps the entries: the zone's size did not change.  Entries
     * a module of another layout wrote would be misread: such a zone is
     * refused, and the running configuration keeps serving.
     */
    if (oz || shm_zone->shm.exists) {
        z->sh = z->shpool->data;

        if (z->sh == NULL || z->sh->magic != NGX_HTTP_PRED_CACHE_MAGIC) {
            ngx_log_error(NGX_LOG_EMERG, shm_zone->shm.log, 0,
                          "pred_cache_zone \"%V\" was made by another "
                          "version of the module: restart nginx to make "
                          "it anew", &shm_zone->shm.name);
            return NGX_ERROR;
        }

        if (z->state.len) {
            ngx_http_pred_state_adopt(z, shm_zone->shm.log);
        }

        return NGX_OK;
    }

#if (NGX_LINUX && defined MADV_HUGEPAGE)

    /*
     * A hit's two reads (the bucket, the entry) land anywhere in the zone:
     * with 4k pages each is a TLB miss and a page walk.  Where the system
     * lets shared memory have huge pages on request (shmem_enabled set to
     * "advise"), ask for them; elsewhere this is a no-op.
     */
    if (madvise(shm_zone->shm.addr, shm_zone->shm.size, MADV_HUGEPAGE)
        != 0)
    {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, shm_zone->shm.log, ngx_errno,
                       "pred_cache_zone \"%V\": no huge pages for %uz "
                       "bytes", &shm_zone->shm.name, shm_zone->shm.size);
    }

#endif

    z->sh = ngx_slab_calloc(z->shpool, sizeof(ngx_http_pred_cache_sh_t));
    if (z->sh == NULL) {
        return NGX_ERROR;
    }

    /* about one bucket per smallest slab chunk an answer takes */
    for (buckets = 16; buckets < shm_zone->shm.size / 256; buckets <<= 1) {
        /* void */
    }

    z->sh->buckets = ngx_slab_calloc(z->shpool,
                               buckets * sizeof(ngx_http_pred_cache_node_t *));
    if (z->sh->buckets == NULL) {
        return NGX_ERROR;
    }

    z->sh->mask = buckets - 1;

    if (pred_key_secret(z->sh->secret) != 0) {
        ngx_log_error(NGX_LOG_WARN, shm_zone->shm.log, ngx_errno,
                      "pred_cache_zone \"%V\": no secret from "
                      "/dev/urandom, the hash's is guessable",
                      &shm_zone->shm.name);
    }

    ngx_queue_init(&z->sh->queue);
    ngx_queue_init(&z->sh->admin);

    z->sh->magic = NGX_HTTP_PRED_CACHE_MAGIC;
    z->shpool->data = z->sh;

    len = sizeof(" in pred_cache_zone \"\"") + shm_zone->shm.name.len;

    z->shpool->log_ctx = ngx_slab_alloc(z->shpool, len);
    if (z->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(z->shpool->log_ctx, " in pred_cache_zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full slab is expected: eviction makes room, so no "no memory" */
    z->shpool->log_nomem = 0;

    /* a new zone (a start, or a new zone in a reload): what was saved */
    if (z->state.len) {
        ngx_http_pred_state_load(z, shm_zone->shm.log);
    }

    return NGX_OK;
}


/* a writer's lock: readers that overlap it see the sequence move */
static void
ngx_http_pred_cache_wlock(ngx_http_pred_cache_zone_t *z)
{
    ngx_shmtx_lock(&z->shpool->mutex);

    /* odd, and new even when a writer died mid-change and left it odd */
    z->sh->seq = (z->sh->seq + 1) | 1;
    ngx_memory_barrier();
}


static void
ngx_http_pred_cache_wunlock(ngx_http_pred_cache_zone_t *z)
{
    ngx_memory_barrier();
    z->sh->seq++;

    ngx_shmtx_unlock(&z->shpool->mutex);
}


static uint32_t
ngx_http_pred_cache_hash(ngx_http_pred_cache_zone_t *z, ngx_str_t *key)
{
    return (uint32_t) pred_key_hash(key->data, key->len, z->sh->secret);
}


/*
 * Finds key and copies it out, with the lock or without (locked 0).
 * Without it, anything read may be torn by a writer: pointers and lengths
 * are checked against the zone before use, NGX_AGAIN says the read made no
 * sense, and the caller's sequence check throws away whatever else it
 * found.
 */
static ngx_int_t
ngx_http_pred_cache_read(ngx_http_request_t *r, ngx_http_pred_cache_zone_t *z,
    ngx_str_t *key, uint32_t hash, ngx_uint_t locked,
    ngx_http_pred_cached_t *out, ngx_http_pred_cache_node_t **found)
{
    size_t                       vlen;
    ngx_uint_t                   kind, torn;
    ngx_http_pred_cache_node_t  *cn;

    torn = 0;

    cn = ngx_http_pred_cache_find(z, key, hash, locked ? NULL : &torn);

    if (torn) {
        return NGX_AGAIN;
    }

    if (cn == NULL) {
        return NGX_DECLINED;
    }

    kind = cn->kind;

    if (kind == NGX_HTTP_PRED_CACHE_EMPTY) {
        return NGX_DECLINED;
    }

    vlen = cn->value_len;

    /*
     * The bound is the zone's, not max_entry: a reload may lower that and
     * keep the zone, whose entries written before stay readable.  No
     * value may be over an eighth of the zone, whatever the configuration.
     */
    if (!locked
        && (vlen > z->shm_zone->shm.size / 8
            || cn->data + key->len + vlen > z->shpool->end))
    {
        return NGX_AGAIN;
    }

    out->masked = ngx_http_pred_cache_masked(cn);
    out->admin = (kind == NGX_HTTP_PRED_CACHE_OVERRIDE
                  || kind == NGX_HTTP_PRED_CACHE_TOMBSTONE);

    /* to a reader an override is a value */
    out->kind = (kind == NGX_HTTP_PRED_CACHE_OVERRIDE)
                ? NGX_HTTP_PRED_CACHE_VALUE : kind;
    out->expired_ms = (ngx_msec_int_t) (ngx_current_msec - cn->expires);
    out->age = ngx_max(ngx_time() - (time_t) cn->stored, 0);
    out->value.len = vlen;
    out->value.data = NULL;

    if (vlen) {
        out->value.data = ngx_pnalloc(r->pool, vlen);
        if (out->value.data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(out->value.data, cn->data + key->len, vlen);
    }

    *found = cn;

    return NGX_OK;
}


/*
 * The entry for key in its bucket's chain, or NULL.  Under the lock torn
 * is NULL.  Without it, each node is checked against the zone before it
 * is read, and a walk that leaves the zone, is misaligned or goes round
 * in circles (a chain longer than any real one) sets *torn.
 */
static ngx_http_pred_cache_node_t *
ngx_http_pred_cache_find(ngx_http_pred_cache_zone_t *z, ngx_str_t *key,
    uint32_t hash, ngx_uint_t *torn)
{
    ngx_uint_t                   n;
    ngx_http_pred_cache_node_t  *cn;

    for (n = 0, cn = z->sh->buckets[hash & z->sh->mask];
         cn;
         n++, cn = cn->next)
    {
        if (torn
            && ((u_char *) cn < (u_char *) z->shpool->start
                || (u_char *) cn + offsetof(ngx_http_pred_cache_node_t, data)
                   + key->len > z->shpool->end
                || ((uintptr_t) cn & (sizeof(void *) - 1))
                || n == NGX_HTTP_PRED_CACHE_CHAIN_MAX))
        {
            *torn = 1;
            return NULL;
        }

        if (cn->hash == hash && cn->key_len == key->len
            && ngx_memcmp(cn->data, key->data, key->len) == 0)
        {
            return cn;
        }
    }

    return NULL;
}


/* under the lock: the node is complete before a reader can reach it */
static void
ngx_http_pred_cache_link(ngx_http_pred_cache_zone_t *z,
    ngx_http_pred_cache_node_t *cn)
{
    ngx_http_pred_cache_node_t  **bucket;

    bucket = &z->sh->buckets[cn->hash & z->sh->mask];

    cn->next = *bucket;
    *bucket = cn;

    z->sh->entries++;
}


static void
ngx_http_pred_cache_free(ngx_http_pred_cache_zone_t *z,
    ngx_http_pred_cache_node_t *cn)
{
    ngx_http_pred_cache_node_t  **p;

    for (p = &z->sh->buckets[cn->hash & z->sh->mask]; *p; p = &(*p)->next) {
        if (*p == cn) {
            *p = cn->next;
            break;
        }
    }

    if (ngx_http_pred_cache_pinned(cn)) {
        z->sh->admin_bytes -= ngx_http_pred_cache_node_size(cn);
    }

    ngx_queue_remove(&cn->queue);
    ngx_slab_free_locked(z->shpool, cn);

    z->sh->entries--;
}


static size_t
ngx_http_pred_cache_node_size(ngx_http_pred_cache_node_t *cn)
{
    return offsetof(ngx_http_pred_cache_node_t, data)
           + cn->key_len + cn->value_len;
}

/* the snapshot must not answer for the key: a live tombstone's doing */
static ngx_uint_t
ngx_http_pred_cache_masked(ngx_http_pred_cache_node_t *cn)
{
    if (cn->kind == NGX_HTTP_PRED_CACHE_TOMBSTONE
        && (ngx_msec_int_t) (cn->expires - ngx_current_msec) > 0)
    {
        return 1;
    }

    return cn->mask_until && (time_t) cn->mask_until > ngx_time();
}



/*
 * Under the lock: frees expired admin entries whose mask has ended too,
 * oldest first, a bounded number looked at; keep is left alone.
 */
static void
ngx_http_pred_cache_sweep(ngx_http_pred_cache_zone_t *z,
    ngx_http_pred_cache_node_t *keep)
{
    ngx_uint_t                   n;
    ngx_queue_t                 *q, *prev;
    ngx_http_pred_cache_node_t  *cn;

    q = ngx_queue_last(&z->sh->admin);

    for (n = 0;
         n < NGX_HTTP_PRED_CACHE_ADMIN_SWEEP
         && q != ngx_queue_sentinel(&z->sh->admin);
         n++)
    {
        prev = ngx_queue_prev(q);
        cn = ngx_queue_data(q, ngx_http_pred_cache_node_t, queue);

        if (cn != keep
            && (ngx_msec_int_t) (cn->expires - ngx_current_msec) <= 0
            && (time_t) cn->mask_until <= ngx_time())
        {
            ngx_http_pred_cache_free(z, cn);
        }

        q = prev;
    }
}


/*
 * Under the lock: allocates, evicting the least recently used model
 * answers first, NGX_HTTP_PRED_CACHE_EVICT_MAX of them at most (a large
 * value needs contiguous pages, which freeing small entries may not give).
 * An entry used since the tail last passed it goes back to the head
 * instead, as many times at most.
 */
static void *
ngx_http_pred_cache_alloc(ngx_http_pred_cache_zone_t *z, size_t size,
    ngx_http_pred_cache_node_t *keep)
{
    void                        *p;
    ngx_uint_t                   n, turns;
    ngx_queue_t                 *q;
    ngx_http_pred_cache_node_t  *cn;

    p = ngx_slab_alloc_locked(z->shpool, size);

    for (n = 0, turns = 0; p == NULL; ) {

        if (n == NGX_HTTP_PRED_CACHE_EVICT_MAX) {
            return NULL;
        }

        /* the entry about to be replaced is freed by its caller */
        q = ngx_queue_last(&z->sh->queue);

        if (q != ngx_queue_sentinel(&z->sh->queue)
            && ngx_queue_data(q, ngx_http_pred_cache_node_t, queue) == keep)
        {
            q = ngx_queue_prev(q);
        }

        if (q == ngx_queue_sentinel(&z->sh->queue)) {
            return NULL;
        }

        cn = ngx_queue_data(q, ngx_http_pred_cache_node_t, queue);

        if (cn->used && turns < NGX_HTTP_PRED_CACHE_EVICT_MAX) {
            cn->used = 0;
            ngx_queue_remove(q);
            ngx_queue_insert_head(&z->sh->queue, q);
            turns++;
            continue;
        }

        ngx_http_pred_cache_free(z, cn);
        z->sh->evictions++;
        n++;

        p = ngx_slab_alloc_locked(z->shpool, size);
    }

    return p;
}
