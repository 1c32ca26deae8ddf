/*
 * One pass through the tiers for one key, for the single-key and the batch
 * handler alike: the shared-memory tier (model answers, overrides,
 * tombstones), then the snapshot, unless a tombstone masks it, with its
 * staleness policy.  The result is tagged: an answer, a value to refresh,
 * or a miss (with what the "stale" fallback may serve).
 */

#include "ngx_http_pred_module.h"


static ngx_int_t ngx_http_pred_lookup_snapshot(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_str_t *key,
    ngx_http_pred_lookup_t *res);
static ngx_uint_t ngx_http_pred_superseded(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_str_t *key,
    ngx_http_pred_cached_t *cached);


/*
 * The admin API's read of a key's current value, for a merge patch: the
 * cache tier's (a model's answer or an override, not expired), else the
 * live version's (stale or not), with the as-of rule of
 * ngx_http_pred_lookup() but no canary routing, no shadow comparison and
 * no request metrics.  NGX_OK with *value; NGX_DECLINED: no tier holds
 * one (or a tombstone says so); NGX_BUSY: the snapshot cannot be read now
 * (not loaded, or a read error); NGX_ERROR.
 */
ngx_int_t
ngx_http_pred_lookup_current(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_str_t *key, ngx_str_t *value)
{
    ngx_int_t                    rc;
    ngx_http_pred_hit_t          hit;
    ngx_http_pred_cached_t       cached;
    ngx_http_pred_cache_zone_t  *z;
    ngx_http_pred_snapshot_t    *snap;

    z = ngx_http_pred_cache_zone_get(plcf);
    snap = plcf->snapshot;

    if (z) {
        rc = ngx_http_pred_cache_get(r, z, key, &cached);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        /* an admin write a newer batch supersedes neither answers nor
           masks: the snapshot's value is the current one */
        if (rc == NGX_OK && !ngx_http_pred_superseded(r, plcf, key, &cached))
        {
            /* what a client would be answered from the zone: not expired */
            if (cached.expired_ms <= 0) {
                if (cached.kind == NGX_HTTP_PRED_CACHE_VALUE) {
                    *value = cached.value;
                    return NGX_OK;
                }

                /* a cached "not found", or a tombstone: nothing */
                return NGX_DECLINED;
            }

            if (cached.masked) {
                return NGX_DECLINED;
            }
        }
    }

    if (snap == NULL) {
        return NGX_DECLINED;
    }

    rc = ngx_http_pred_snapshot_lookup(r, snap, NGX_CONF_UNSET, key,
                                       NGX_HTTP_PRED_ROLE_LIVE, &hit);

    switch (rc) {

    case NGX_OK:
        *value = hit.value;
        return NGX_OK;

    case NGX_DECLINED:
        return NGX_DECLINED;

    case NGX_ERROR:
        return NGX_BUSY;

    default:
        return NGX_BUSY;
    }
}


/* NGX_OK with res filled in, or NGX_ERROR (out of memory) */
ngx_int_t
ngx_http_pred_lookup(ngx_http_request_t *r, ngx_http_pred_loc_conf_t *plcf,
    ngx_str_t *key, ngx_http_pred_lookup_t *res)
{
    ngx_int_t                    rc;
    ngx_http_pred_cached_t       cached;
    ngx_http_pred_cache_zone_t  *z;

    res->kind = NGX_HTTP_PRED_LOOKUP_MISS;
    res->stale.set = 0;
    res->stale.masked = 0;

    z = ngx_http_pred_cache_zone_get(plcf);

    if (z == NULL) {
        return ngx_http_pred_lookup_snapshot(r, plcf, key, res);
    }

    rc = ngx_http_pred_cache_get(r, z, key, &cached);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "pred: key \"%V\": cache miss", key);

        return ngx_http_pred_lookup_snapshot(r, plcf, key, res);
    }

    if (ngx_http_pred_superseded(r, plcf, key, &cached)) {
        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "pred: key \"%V\": admin write of %T s ago "
                       "superseded by version %s or a delta over it", key,
                       cached.age, plcf->snapshot->live
                                   ? plcf->snapshot->live->version : "-");

        return ngx_http_pred_lookup_snapshot(r, plcf, key, res);
    }

    res->stale.masked = cached.masked;

    if (cached.expired_ms <= 0) {
        switch (cached.kind) {

        case NGX_HTTP_PRED_CACHE_VALUE:
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "pred: key \"%V\": cache hit", key);

            res->kind = NGX_HTTP_PRED_LOOKUP_ANSWER;
            ngx_http_pred_answer_value(&res->answer, NGX_HTTP_PRED_SRC_CACHE,
                                       &cached.value, cached.age);
            return NGX_OK;

        case NGX_HTTP_PRED_CACHE_NEGATIVE:
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "pred: key \"%V\": cached as not found", key);

            res->kind = NGX_HTTP_PRED_LOOKUP_ANSWER;
            ngx_http_pred_answer_error(&res->answer, NGX_HTTP_NOT_FOUND,
                                       NGX_HTTP_PRED_SRC_CACHE, "not_found",
                                       NULL);
            return NGX_OK;
        }

        /* a tombstone: an invalidated key must not fall back to the
           batch answer */

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "pred: key \"%V\": tombstone, the snapshot is "
                       "masked", key);

        return NGX_OK;
    }

    if (cached.kind != NGX_HTTP_PRED_CACHE_VALUE) {
        return cached.masked ? NGX_OK
                             : ngx_http_pred_lookup_snapshot(r, plcf, key,
                                                             res);
    }

    res->stale.value = cached.value;
    res->stale.age = cached.age;
    res->stale.set = 1;

    /* stale-while-revalidate: answer now, one refresh for all (a
       cascade is not run in the background: the expired value is a miss) */
    if (plcf->upstream_uri.len
        && cached.expired_ms <= (ngx_msec_int_t) plcf->cache_swr * 1000)
    {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "pred: key \"%V\": expired %M ms ago, within swr",
                       key, (ngx_msec_t) cached.expired_ms);

        res->kind = NGX_HTTP_PRED_LOOKUP_REFRESH;
        ngx_http_pred_answer_value(&res->answer, NGX_HTTP_PRED_SRC_CACHE,
                                   &cached.value, cached.age);
        res->answer.stale = 1;
        return NGX_OK;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "pred: key \"%V\": cached value expired%s", key,
                   cached.masked ? ", the snapshot masked" : "");

    if (cached.masked) {
        return NGX_OK;
    }

    return ngx_http_pred_lookup_snapshot(r, plcf, key, res);
}


static ngx_int_t
ngx_http_pred_lookup_snapshot(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_str_t *key,
    ngx_http_pred_lookup_t *res)
{
    ngx_int_t               rc;
    ngx_uint_t              role;
    ngx_http_pred_hit_t     hit;
    ngx_http_pred_answer_t *ans;

    if (plcf->snapshot == NULL) {
        return NGX_OK;
    }

    role = ngx_http_pred_canary_route(r, plcf, key);

    rc = ngx_http_pred_snapshot_lookup(r, plcf->snapshot, plcf->max_age, key,
                                       role, &hit);

    if (rc == NGX_OK || rc == NGX_DECLINED) {
        ngx_http_pred_metrics_routed(plcf->snapshot,
                                     hit.candidate
                                     ? NGX_HTTP_PRED_ROLE_CANDIDATE
                                     : NGX_HTTP_PRED_ROLE_LIVE);

        if (plcf->shadow_rate) {
            ngx_http_pred_canary_shadow(r, plcf, key, rc, &hit);
        }
    }

    switch (rc) {

    case NGX_DECLINED:
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "pred: key \"%V\": not in the snapshot", key);
        return NGX_OK;

    case NGX_BUSY:
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "pred: key \"%V\": no snapshot is loaded", key);

        if (!ngx_http_pred_has_model(plcf)) {
            res->kind = NGX_HTTP_PRED_LOOKUP_UNAVAILABLE;
        }

        return NGX_OK;

    case NGX_ERROR:
        res->kind = NGX_HTTP_PRED_LOOKUP_FAILED;
        return NGX_OK;
    }

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "pred: key \"%V\": snapshot hit, %sversion %V, age %T%s",
                   key, hit.candidate ? "candidate " : "", &hit.version,
                   hit.age, hit.stale ? ", stale" : "");

    /* stale, and the snapshot asks for the model: keep it for later */
    if (hit.stale && hit.fallback == PRED_SNAP_STALE_UPSTREAM
        && ngx_http_pred_has_model(plcf))
    {
        res->stale.value = hit.value;
        res->stale.age = hit.age;
        res->stale.set = 1;
        return NGX_OK;
    }

    res->kind = NGX_HTTP_PRED_LOOKUP_ANSWER;
    ans = &res->answer;

    /* "upstream" without a model answers like "serve" */
    if (hit.stale && hit.fallback == PRED_SNAP_STALE_FAIL) {
        ngx_http_pred_answer_error(ans, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   NGX_HTTP_PRED_SRC_NONE, "stale", NULL);

    } else {
        ngx_http_pred_answer_value(ans, NGX_HTTP_PRED_SRC_SNAPSHOT,
                                   &hit.value, hit.age);
        ans->stale = hit.stale;
    }

    ans->version = hit.version;
    ans->candidate = hit.candidate;

    return NGX_OK;
}


/*
 * The newest information wins: an override or tombstone written before
 * the time the live version's data is as of gives way to it, and so does
 * one written before a delta over it that changes the key (it stays in
 * the zone until it expires, and is no longer read).  The deltas are read
 * only for admin writes older than the newest delta.
 */
static ngx_uint_t
ngx_http_pred_superseded(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_str_t *key,
    ngx_http_pred_cached_t *cached)
{
    time_t                     written, newest;
    ngx_uint_t                 i;
    ngx_http_pred_snapshot_t  *snap;

    snap = plcf->snapshot;

    if (!cached->admin || snap == NULL || snap->live == NULL) {
        return 0;
    }

    written = ngx_time() - cached->age;

    if (written < snap->live->as_of) {
        return 1;
    }

    /* a compacted base: the keys its deltas changed are as of later */
    if (snap->live->as_of_keys
        && written < ngx_http_pred_snapshot_as_of(r, snap, key))
    {
        return 1;
    }

    if (snap->live == NULL) {
        return 0;
    }

    newest = 0;

    for (i = 0; i < snap->nlayers; i++) {
        newest = ngx_max(newest, snap->layers[i].snap->as_of);
    }

    return written < newest
           && written < ngx_http_pred_layers_as_of(r, snap, key);
}
