/*
 * The shared-memory tier: fresh answers and pushed overrides, shared by all
 * workers, kept across reloads.
 *
 * A slab zone holds an rbtree on the key's CRC32 and two queues.  The LRU
 * holds what the cache may forget: model answers (values, and negative
 * answers: the model said 404) and single-flight markers.  Expired values
 * are kept, not deleted, because the "stale" fallback serves them; when the
 * slab is full, the least recently used of them make room, a bounded
 * number per insert.  The admin queue holds what an operator wrote:
 * overrides and tombstones (an invalidation that masks the snapshot).
 * They live for their ttl whatever the cache does, within their own budget
 * (admin=), and a tombstone's mask outlives a model answer that replaces
 * it, so an invalidated snapshot value stays invalidated.
 */

#include "ngx_http_pred_module.h"


/* entries evicted at most for one insert: bounded time under the lock */
#define NGX_HTTP_PRED_CACHE_EVICT_MAX    64

/* expired admin entries looked at when the admin budget is full */
#define NGX_HTTP_PRED_CACHE_ADMIN_SWEEP  1024

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


typedef struct {
    u_char                      color;
    u_char                      kind;
    u_short                     key_len;
    uint32_t                    value_len;
    ngx_queue_t                 queue;       /* the LRU, or the admin one */
    ngx_msec_t                  expires;     /* monotonic, ms */
    ngx_msec_t                  fetch_until; /* a model call leads, or 0 */
    uint32_t                    stored;      /* wall clock, for Age */
    uint32_t                    mask_until;  /* wall clock: a tombstone's
                                                mask, past the entry that
                                                replaced it; 0: none */
    u_char                      data[1];     /* key, then value */
} ngx_http_pred_cache_node_t;


struct ngx_http_pred_cache_sh_s {
    ngx_rbtree_t                rbtree;
    ngx_rbtree_node_t           sentinel;
    ngx_queue_t                 queue;        /* the LRU */
    ngx_queue_t                 admin;        /* overrides, tombstones */
    size_t                      admin_bytes;
    ngx_atomic_t                entries;
    ngx_atomic_t                evictions;
    ngx_atomic_t                expirations;  /* expired entries met */
    ngx_atomic_t                tombstones;   /* tombstones written */
    ngx_atomic_t                admin_full;   /* admin writes refused */
};


static ngx_int_t ngx_http_pred_cache_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_pred_cache_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel);
static ngx_http_pred_cache_node_t *ngx_http_pred_cache_find(
    ngx_http_pred_cache_zone_t *z, ngx_str_t *key, uint32_t hash);
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
 * Looks a key up and copies what it finds into the request pool.
 * NGX_OK: found (see out->kind, out->expired), NGX_DECLINED: nothing.
 */
ngx_int_t
ngx_http_pred_cache_get(ngx_http_request_t *r, ngx_http_pred_cache_zone_t *z,
    ngx_str_t *key, ngx_http_pred_cached_t *out)
{
    uint32_t                     hash;
    ngx_http_pred_cache_node_t  *cn;

    hash = ngx_crc32_short(key->data, key->len);

    ngx_shmtx_lock(&z->shpool->mutex);

    cn = ngx_http_pred_cache_find(z, key, hash);

    if (cn == NULL || cn->kind == NGX_HTTP_PRED_CACHE_EMPTY) {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_DECLINED;
    }

    /* only the LRU learns what is used: admin entries are never evicted */
    if (!ngx_http_pred_cache_pinned(cn)) {
        ngx_queue_remove(&cn->queue);
        ngx_queue_insert_head(&z->sh->queue, &cn->queue);
    }

    out->masked = ngx_http_pred_cache_masked(cn);

    /* to a reader an override is a value */
    out->kind = (cn->kind == NGX_HTTP_PRED_CACHE_OVERRIDE)
                ? NGX_HTTP_PRED_CACHE_VALUE : cn->kind;
    out->expired_ms = (ngx_msec_int_t) (ngx_current_msec - cn->expires);

    if (out->expired_ms > 0) {
        z->sh->expirations++;
    }
    out->age = ngx_max(ngx_time() - (time_t) cn->stored, 0);
    out->value.len = cn->value_len;
    out->value.data = NULL;

    if (cn->value_len) {
        out->value.data = ngx_pnalloc(r->pool, cn->value_len);
        if (out->value.data) {
            ngx_memcpy(out->value.data, cn->data + cn->key_len,
                       cn->value_len);
        }
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    if (out->value.len && out->value.data == NULL) {
        return NGX_ERROR;
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
    size_t                       size, vlen, freed;
    uint32_t                     hash, mask;
    ngx_uint_t                   pinned;
    ngx_msec_int_t               left;
    ngx_rbtree_node_t           *node;
    ngx_http_pred_cache_node_t  *cn;

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

    hash = ngx_crc32_short(key->data, key->len);

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_pred_cache_node_t, data)
           + key->len + vlen;

    ngx_shmtx_lock(&z->shpool->mutex);

    cn = ngx_http_pred_cache_find(z, key, hash);
    mask = 0;

    if (cn) {
        left = (ngx_msec_int_t) (cn->expires - ngx_current_msec);

        /*
         * A model's answer never replaces a live override: the call may
         * have started before the operator's PUT, and would undo it.
         */
        if (cn->kind == NGX_HTTP_PRED_CACHE_OVERRIDE && left > 0
            && !ngx_http_pred_cache_is_admin(kind))
        {
            ngx_shmtx_unlock(&z->shpool->mutex);

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
            ngx_shmtx_unlock(&z->shpool->mutex);

            ngx_log_error(NGX_LOG_ERR, log, 0,
                          "pred: cache \"%V\": key \"%V\": the admin budget "
                          "of %uz bytes for overrides and tombstones is "
                          "full", &z->shm_zone->shm.name, key, z->admin_max);
            return NGX_BUSY;
        }
    }

    /* allocated first: a failure leaves the entry there as it was */
    node = ngx_http_pred_cache_alloc(z, size, cn);

    if (node == NULL) {
        ngx_shmtx_unlock(&z->shpool->mutex);
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

    node->key = hash;

    cn = (ngx_http_pred_cache_node_t *) &node->color;

    cn->kind = (u_char) kind;
    cn->key_len = (u_short) key->len;
    cn->value_len = (uint32_t) vlen;
    cn->expires = ngx_current_msec + (ngx_msec_t) ttl * 1000;
    cn->stored = (uint32_t) ngx_time();
    cn->fetch_until = 0;
    cn->mask_until = mask;

    ngx_memcpy(cn->data, key->data, key->len);
    if (vlen) {
        ngx_memcpy(cn->data + key->len, value->data, vlen);
    }

    ngx_rbtree_insert(&z->sh->rbtree, node);
    z->sh->entries++;

    if (pinned) {
        ngx_queue_insert_head(&z->sh->admin, &cn->queue);
        z->sh->admin_bytes += size;

    } else {
        ngx_queue_insert_head(&z->sh->queue, &cn->queue);
    }

    if (kind == NGX_HTTP_PRED_CACHE_TOMBSTONE) {
        z->sh->tombstones++;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_OK;
}


/*
 * entries, evictions, expirations, tombstones, admin bytes, admin writes
 * refused: read without the lock
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
    default:
        return z->sh->admin_full;
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
    ngx_rbtree_node_t           *node;
    ngx_http_pred_cache_node_t  *cn;

    hash = ngx_crc32_short(key->data, key->len);

    ngx_shmtx_lock(&z->shpool->mutex);

    cn = ngx_http_pred_cache_find(z, key, hash);

    if (cn && cn->fetch_until
        && (ngx_msec_int_t) (cn->fetch_until - ngx_current_msec) > 0)
    {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_BUSY;
    }

    if (cn == NULL) {
        /* an empty entry carries the marker; lookups do not see it */
        size = offsetof(ngx_rbtree_node_t, color)
               + offsetof(ngx_http_pred_cache_node_t, data) + key->len;

        node = ngx_http_pred_cache_alloc(z, size, NULL);

        if (node == NULL) {
            ngx_shmtx_unlock(&z->shpool->mutex);
            *token = 0;
            return NGX_OK;
        }

        node->key = hash;
        cn = (ngx_http_pred_cache_node_t *) &node->color;

        cn->kind = NGX_HTTP_PRED_CACHE_EMPTY;
        cn->key_len = (u_short) key->len;
        cn->value_len = 0;
        cn->expires = ngx_current_msec;
        cn->stored = (uint32_t) ngx_time();
        cn->mask_until = 0;
        ngx_memcpy(cn->data, key->data, key->len);

        ngx_rbtree_insert(&z->sh->rbtree, node);
        ngx_queue_insert_head(&z->sh->queue, &cn->queue);
        z->sh->entries++;
    }

    /* the deadline is the leader's token: no later leader has the same */
    cn->fetch_until = ngx_current_msec + timeout;

    if (cn->fetch_until == 0) {
        cn->fetch_until = 1;
    }

    *token = cn->fetch_until;

    ngx_shmtx_unlock(&z->shpool->mutex);

    return NGX_OK;
}


/*
 * The leader failed: waiters must stop waiting, and fall back at once.
 * Only its own marker: when it was late, another request may lead now.
 */
void
ngx_http_pred_cache_unlead(ngx_http_pred_cache_zone_t *z, ngx_str_t *key,
    ngx_msec_t token)
{
    ngx_http_pred_cache_node_t  *cn;

    if (token == 0) {
        return;
    }

    ngx_shmtx_lock(&z->shpool->mutex);

    cn = ngx_http_pred_cache_find(z, key, ngx_crc32_short(key->data,
                                                          key->len));
    if (cn && cn->fetch_until == token) {
        if (cn->kind == NGX_HTTP_PRED_CACHE_EMPTY) {
            ngx_http_pred_cache_free(z, cn);

        } else {
            cn->fetch_until = 0;
        }
    }

    ngx_shmtx_unlock(&z->shpool->mutex);
}


/*
 * A waiter's poll: NGX_OK and a fresh answer in out, NGX_AGAIN while the
 * leader is still at it, NGX_DECLINED when it gave up without an answer.
 */
ngx_int_t
ngx_http_pred_cache_poll(ngx_http_request_t *r, ngx_http_pred_cache_zone_t *z,
    ngx_str_t *key, ngx_http_pred_cached_t *out)
{
    ngx_int_t                    rc;
    ngx_http_pred_cache_node_t  *cn;

    ngx_shmtx_lock(&z->shpool->mutex);

    cn = ngx_http_pred_cache_find(z, key, ngx_crc32_short(key->data,
                                                          key->len));

    if (cn && cn->fetch_until
        && (ngx_msec_int_t) (cn->fetch_until - ngx_current_msec) > 0)
    {
        ngx_shmtx_unlock(&z->shpool->mutex);
        return NGX_AGAIN;
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
    ngx_uint_t                   n;
    ngx_queue_t                 *q, *next, *queues[2];
    ngx_uint_t                   i;
    ngx_http_pred_cache_node_t  *cn;

    n = 0;

    ngx_shmtx_lock(&z->shpool->mutex);

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

    ngx_shmtx_unlock(&z->shpool->mutex);

    return n;
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
    ngx_http_pred_cache_zone_t  *z;

    z = shm_zone->data;

    /* a reload keeps the entries: the zone's size did not change */
    if (oz) {
        z->sh = oz->sh;
        z->shpool = oz->shpool;
        return NGX_OK;
    }

    z->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        z->sh = z->shpool->data;
        return NGX_OK;
    }

    z->sh = ngx_slab_alloc(z->shpool, sizeof(ngx_http_pred_cache_sh_t));
    if (z->sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(z->sh, sizeof(ngx_http_pred_cache_sh_t));

    z->shpool->data = z->sh;

    ngx_rbtree_init(&z->sh->rbtree, &z->sh->sentinel,
                    ngx_http_pred_cache_rbtree_insert);

    ngx_queue_init(&z->sh->queue);
    ngx_queue_init(&z->sh->admin);

    len = sizeof(" in pred_cache_zone \"\"") + shm_zone->shm.name.len;

    z->shpool->log_ctx = ngx_slab_alloc(z->shpool, len);
    if (z->shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(z->shpool->log_ctx, " in pred_cache_zone \"%V\"%Z",
                &shm_zone->shm.name);

    /* a full slab is expected: eviction makes room, so no "no memory" */
    z->shpool->log_nomem = 0;

    return NGX_OK;
}


static void
ngx_http_pred_cache_rbtree_insert(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t           **p;
    ngx_http_pred_cache_node_t   *cn, *cnt;

    for ( ;; ) {

        if (node->key < temp->key) {
            p = &temp->left;

        } else if (node->key > temp->key) {
            p = &temp->right;

        } else {
            cn = (ngx_http_pred_cache_node_t *) &node->color;
            cnt = (ngx_http_pred_cache_node_t *) &temp->color;

            p = (ngx_memn2cmp(cn->data, cnt->data, cn->key_len,
                              cnt->key_len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_http_pred_cache_node_t *
ngx_http_pred_cache_find(ngx_http_pred_cache_zone_t *z, ngx_str_t *key,
    uint32_t hash)
{
    ngx_int_t                    rc;
    ngx_rbtree_node_t           *node, *sentinel;
    ngx_http_pred_cache_node_t  *cn;

    node = z->sh->rbtree.root;
    sentinel = z->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        cn = (ngx_http_pred_cache_node_t *) &node->color;

        rc = ngx_memn2cmp(key->data, cn->data, key->len, cn->key_len);

        if (rc == 0) {
            return cn;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_pred_cache_free(ngx_http_pred_cache_zone_t *z,
    ngx_http_pred_cache_node_t *cn)
{
    ngx_rbtree_node_t  *node;

    node = (ngx_rbtree_node_t *)
               ((u_char *) cn - offsetof(ngx_rbtree_node_t, color));

    if (ngx_http_pred_cache_pinned(cn)) {
        z->sh->admin_bytes -= ngx_http_pred_cache_node_size(cn);
    }

    ngx_queue_remove(&cn->queue);
    ngx_rbtree_delete(&z->sh->rbtree, node);
    ngx_slab_free_locked(z->shpool, node);

    z->sh->entries--;
}


static size_t
ngx_http_pred_cache_node_size(ngx_http_pred_cache_node_t *cn)
{
    return offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_pred_cache_node_t, data)
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
 */
static void *
ngx_http_pred_cache_alloc(ngx_http_pred_cache_zone_t *z, size_t size,
    ngx_http_pred_cache_node_t *keep)
{
    void                        *p;
    ngx_uint_t                   n;
    ngx_queue_t                 *q;
    ngx_http_pred_cache_node_t  *cn;

    for (n = 0; ; n++) {
        p = ngx_slab_alloc_locked(z->shpool, size);
        if (p) {
            return p;
        }

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

        ngx_http_pred_cache_free(z, cn);
        z->sh->evictions++;
    }
}
