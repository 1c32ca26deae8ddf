/*
 * The admin API, in a prefix location the operator protects:
 *
 *   PUT    PREFIX/KEY[?ttl=T]   body: JSON; an override in the cache tier
 *   PATCH  PREFIX/KEY[?ttl=T]   body: a JSON merge patch over the key's
 *                               current value (merge.c); an override
 *   DELETE PREFIX/KEY[?ttl=T]   a tombstone: the key goes past the snapshot
 *   POST   PREFIX/bulk          body: JSON Lines of writes (bulk.c)
 *   POST   PREFIX/warm          body: {"keys":[...]} (batch.c)
 *   POST   PREFIX/purge[?prefix=P]
 *   POST   PREFIX/snapshot/check
 *   GET    PREFIX/snapshot
 *
 * Keys are taken from the raw request path and decoded like lookup keys,
 * not from nginx's normalised URI, which would merge slashes inside keys.
 */

#include "ngx_http_pred_module.h"

#include <jansson.h>


static ngx_int_t ngx_http_pred_admin_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_pred_admin_path(ngx_http_request_t *r,
    ngx_str_t *rest);
static ngx_int_t ngx_http_pred_admin_ttl(ngx_http_request_t *r,
    time_t dflt, time_t *ttl);
static ngx_int_t ngx_http_pred_admin_put(ngx_http_request_t *r,
    ngx_http_pred_cache_zone_t *z, ngx_str_t *key);
static void ngx_http_pred_admin_put_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_pred_admin_delete(ngx_http_request_t *r,
    ngx_http_pred_cache_zone_t *z, ngx_str_t *key);
static ngx_int_t ngx_http_pred_admin_purge(ngx_http_request_t *r,
    ngx_http_pred_cache_zone_t *z);
static ngx_int_t ngx_http_pred_admin_snapshot(ngx_http_request_t *r,
    ngx_http_pred_snapshot_t *snap);
static ngx_int_t ngx_http_pred_admin_no_room(ngx_http_request_t *r,
    ngx_str_t *key, ngx_int_t rc);
static ngx_int_t ngx_http_pred_admin_json(ngx_http_request_t *r,
    ngx_uint_t status, json_t *json);
static ngx_int_t ngx_http_pred_admin_written(ngx_http_request_t *r,
    const char *what, ngx_str_t *key, time_t ttl);
static ngx_int_t ngx_http_pred_admin_allow(ngx_http_request_t *r,
    const char *methods);


char *
ngx_http_pred_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pred_loc_conf_t *plcf = conf;

    ngx_int_t                  rc;
    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->exact_match || clcf->named
#if (NGX_PCRE)
        || clcf->regex
#endif
       )
    {
        return "needs a prefix location, such as \"location /pred-admin/\"";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2) {
        rc = ngx_http_pred_conf_param(cf, &value[1], "max_body=", 'z', 0,
                                      &plcf->admin_max_body);
        if (rc == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        if (rc == NGX_DECLINED) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    return ngx_http_pred_set_handler(cf, plcf, NGX_HTTP_PRED_HANDLER_ADMIN,
                                     ngx_http_pred_admin_handler);
}


static ngx_int_t
ngx_http_pred_admin_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_str_t                    rest, key;
    const char                  *reason;
    ngx_http_pred_loc_conf_t    *plcf;
    ngx_http_pred_cache_zone_t  *z;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_pred_module);
    z = ngx_http_pred_cache_zone_get(plcf);

    if (ngx_http_pred_admin_path(r, &rest) != NGX_OK) {
        if (ngx_http_discard_request_body(r) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_pred_send_error(r, NGX_HTTP_BAD_REQUEST,
                                        "bad_path", NULL,
                                        "the path must start with the "
                                        "admin location");
    }

    if (rest.len == 5 && ngx_strncmp(rest.data, "purge", 5) == 0
        && r->method == NGX_HTTP_POST)
    {
        return ngx_http_pred_admin_purge(r, z);
    }

    if (rest.len == 4 && ngx_strncmp(rest.data, "bulk", 4) == 0
        && r->method == NGX_HTTP_POST)
    {
        return ngx_http_pred_bulk(r, z);
    }

    if (rest.len == 4 && ngx_strncmp(rest.data, "warm", 4) == 0
        && r->method == NGX_HTTP_POST)
    {
        return ngx_http_pred_warm(r);
    }

    /* PUT, PATCH and DELETE write keys, whatever their names */
    if (rest.len == 8 && ngx_strncmp(rest.data, "snapshot", 8) == 0
        && !(r->method & (NGX_HTTP_PUT|NGX_HTTP_PATCH|NGX_HTTP_DELETE)))
    {
        if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
            return ngx_http_pred_admin_allow(r, "GET, HEAD, PUT, PATCH, "
                                                "DELETE");
        }

        return ngx_http_pred_admin_snapshot(r, plcf->snapshot);
    }

    if (rest.len == 14 && ngx_strncmp(rest.data, "snapshot/check", 14) == 0
        && !(r->method & (NGX_HTTP_PUT|NGX_HTTP_PATCH|NGX_HTTP_DELETE)))
    {
        if (r->method != NGX_HTTP_POST) {
            return ngx_http_pred_admin_allow(r, "POST, PUT, PATCH, DELETE");
        }

        if (plcf->snapshot) {
            ngx_http_pred_snapshot_check_now(plcf->snapshot);
        }

        return ngx_http_pred_admin_snapshot(r, plcf->snapshot);
    }

    if (!(r->method & (NGX_HTTP_PUT|NGX_HTTP_PATCH|NGX_HTTP_DELETE))) {
        return ngx_http_pred_admin_allow(r, ((rest.len == 5
                                              && ngx_strncmp(rest.data,
                                                             "purge", 5)
                                                 == 0)
                                             || (rest.len == 4
                                                 && (ngx_strncmp(rest.data,
                                                                 "bulk", 4)
                                                     == 0
                                                     || ngx_strncmp(
                                                            rest.data,
                                                            "warm", 4)
                                                        == 0)))
                                            ? "POST, PUT, PATCH, DELETE"
                                            : "PUT, PATCH, DELETE");
    }

    rc = ngx_http_pred_decode_key(r, &rest, &key, &reason);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* an answer before the body is read must read it and let it go */
    if ((rc == NGX_DECLINED || z == NULL)
        && ngx_http_discard_request_body(r) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_pred_send_error(r, NGX_HTTP_BAD_REQUEST, "bad_key",
                                        NULL, reason);
    }

    if (z == NULL) {
        return ngx_http_pred_send_error(r, NGX_HTTP_NOT_FOUND,
                                        "not_configured", NULL,
                                        "this location has no pred_cache");
    }

    if (r->method & (NGX_HTTP_PUT|NGX_HTTP_PATCH)) {
        return ngx_http_pred_admin_put(r, z, &key);
    }

    return ngx_http_pred_admin_delete(r, z, &key);
}


/* the raw path after the location's prefix */
static ngx_int_t
ngx_http_pred_admin_path(ngx_http_request_t *r, ngx_str_t *rest)
{
    size_t                     len;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    len = r->args_start ? (size_t) (r->args_start - 1 - r->unparsed_uri.data)
                        : r->unparsed_uri.len;

    if (len < clcf->name.len
        || ngx_strncmp(r->unparsed_uri.data, clcf->name.data,
                       clcf->name.len) != 0)
    {
        return NGX_DECLINED;
    }

    rest->data = r->unparsed_uri.data + clcf->name.len;
    rest->len = len - clcf->name.len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_pred_admin_ttl(ngx_http_request_t *r, time_t dflt, time_t *ttl)
{
    ngx_str_t  arg;

    if (ngx_http_arg(r, (u_char *) "ttl", 3, &arg) != NGX_OK) {
        *ttl = dflt;
        return NGX_OK;
    }

    *ttl = ngx_parse_time(&arg, 1);

    /* a year at most: the zone counts expiry in milliseconds */
    return (*ttl == (time_t) NGX_ERROR || *ttl <= 0
            || *ttl > NGX_HTTP_PRED_ADMIN_TTL_MAX)
           ? NGX_DECLINED : NGX_OK;
}


static ngx_int_t
ngx_http_pred_admin_put(ngx_http_request_t *r, ngx_http_pred_cache_zone_t *z,
    ngx_str_t *key)
{
    time_t                     ttl;
    ngx_int_t                  rc;
    ngx_http_pred_ctx_t       *ctx;
    ngx_http_pred_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_pred_module);

    rc = ngx_http_pred_admin_length(r, key);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    if (ngx_http_pred_admin_ttl(r, ngx_http_pred_cache_ttl(plcf, z), &ttl)
        != NGX_OK)
    {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_pred_send_error(r, NGX_HTTP_BAD_REQUEST, "bad_ttl",
                                        key, "ttl must be a time, such as "
                                        "60 or 10m");
    }

    /* the module's one context type: $pred_key is the key written */
    ctx = ngx_http_pred_ctx_create(r, key);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->ttl = ttl;

    rc = ngx_http_read_client_request_body(r, ngx_http_pred_admin_put_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_pred_admin_put_body(ngx_http_request_t *r)
{
    json_t                      *json;
    ngx_int_t                    rc;
    ngx_str_t                    body, value;
    const char                  *reason;
    json_error_t                 jerr;
    ngx_http_pred_loc_conf_t    *plcf;
    ngx_http_pred_ctx_t         *ctx;
    ngx_http_pred_cache_zone_t  *z;

    ctx = ngx_http_get_module_ctx(r, ngx_http_pred_module);
    plcf = ngx_http_get_module_loc_conf(r, ngx_http_pred_module);
    z = ngx_http_pred_cache_zone_get(plcf);

    if (ngx_http_pred_admin_body(r, &ctx->key, &body) != NGX_OK) {
        return;
    }

    json = json_loadb((char *) body.data, body.len,
                      JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);

    if (json == NULL || json_is_null(json)) {
        json_decref(json);
        ngx_http_finalize_request(r,
            ngx_http_pred_send_error(r, NGX_HTTP_BAD_REQUEST, "bad_json",
                                     &ctx->key, json ? "the value is null"
                                                     : jerr.text));
        return;
    }

    json_decref(json);

    if (r->method == NGX_HTTP_PATCH) {
        rc = ngx_http_pred_merge_value(r, plcf, &ctx->key, &body, &value,
                                       &reason);

    } else {
        rc = ngx_http_pred_json_copy(r->pool, (char *) body.data, body.len,
                                     &value);
    }

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r,
            ngx_http_pred_send_error(r, NGX_HTTP_BAD_REQUEST, "bad_json",
                                     &ctx->key, reason));
        return;
    }

    if (rc == NGX_BUSY) {
        ngx_http_finalize_request(r,
            ngx_http_pred_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                     "unavailable", &ctx->key, reason));
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_pred_cache_put(z, &ctx->key, NGX_HTTP_PRED_CACHE_OVERRIDE,
                                 &value, ctx->ttl, r->connection->log);

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r,
            ngx_http_pred_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                     "value_too_large", &ctx->key,
                                     "the value is over the cache's "
                                     "max_entry"));
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, ngx_http_pred_admin_no_room(r, &ctx->key,
                                                                 rc));
        return;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "pred: admin: stored \"%V\" for %T s", &ctx->key,
                  ctx->ttl);

    ngx_http_finalize_request(r,
        ngx_http_pred_admin_written(r, "stored", &ctx->key, ctx->ttl));
}


static ngx_int_t
ngx_http_pred_admin_delete(ngx_http_request_t *r,
    ngx_http_pred_cache_zone_t *z, ngx_str_t *key)
{
    time_t                     ttl;
    ngx_int_t                  rc;
    ngx_http_pred_ctx_t       *ctx;
    ngx_http_pred_loc_conf_t  *plcf;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_pred_module);

    if (ngx_http_pred_admin_ttl(r, ngx_http_pred_cache_ttl(plcf, z), &ttl)
        != NGX_OK)
    {
        return ngx_http_pred_send_error(r, NGX_HTTP_BAD_REQUEST, "bad_ttl",
                                        key, "ttl must be a time, such as "
                                        "60 or 10m");
    }

    rc = ngx_http_pred_cache_put(z, key, NGX_HTTP_PRED_CACHE_TOMBSTONE, NULL,
                                 ttl, r->connection->log);
    if (rc != NGX_OK) {
        return ngx_http_pred_admin_no_room(r, key, rc);
    }

    ctx = ngx_http_pred_ctx_create(r, key);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->ttl = ttl;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "pred: admin: invalidated \"%V\" for %T s", key, ttl);

    return ngx_http_pred_admin_written(r, "invalidated", key, ttl);
}


/*
 * Before an admin body is read: NGX_DECLINED when its Content-Length is
 * within max_body, else the 413 sent (the body read and let go).  key may
 * be NULL.
 */
ngx_int_t
ngx_http_pred_admin_length(ngx_http_request_t *r, ngx_str_t *key)
{
    ngx_int_t                  rc;
    ngx_http_pred_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_pred_module);

    if (r->headers_in.content_length_n <= (off_t) plcf->admin_max_body) {
        return NGX_DECLINED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    return ngx_http_pred_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                    "body_too_large", key,
                                    "the body is over the admin max_body");
}


/*
 * In an admin body handler: NGX_OK with the body, within max_body (a body
 * sent chunked has no Content-Length to check first); otherwise the
 * request is finalized, with a 413 or a 500.
 */
ngx_int_t
ngx_http_pred_admin_body(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *body)
{
    ngx_int_t                  rc;
    ngx_http_pred_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_pred_module);

    rc = ngx_http_pred_read_body(r, body);

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED || body->len > plcf->admin_max_body) {
        ngx_http_finalize_request(r,
            ngx_http_pred_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                     "body_too_large", key,
                                     "the body is over the admin "
                                     "max_body"));
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* a write the zone could not take: 507, saying which budget is full */
static ngx_int_t
ngx_http_pred_admin_no_room(ngx_http_request_t *r, ngx_str_t *key,
    ngx_int_t rc)
{
    if (rc == NGX_BUSY) {
        return ngx_http_pred_send_error(r, NGX_HTTP_INSUFFICIENT_STORAGE,
                                        "admin_budget_full", key,
                                        "the zone's budget for overrides "
                                        "and tombstones (admin=) is full");
    }

    return ngx_http_pred_send_error(r, NGX_HTTP_INSUFFICIENT_STORAGE,
                                    "no_room", key,
                                    "the cache zone has no room");
}


/*
 * {"stored":"KEY","ttl":N}: the key is client bytes, escaped by the
 * module's own writer (invalid UTF-8 as \ufffd), which jansson would
 * refuse after the entry was written.
 */
static ngx_int_t
ngx_http_pred_admin_written(ngx_http_request_t *r, const char *what,
    ngx_str_t *key, time_t ttl)
{
    u_char     *p;
    ngx_str_t   body;

    body.data = ngx_pnalloc(r->pool, sizeof("{\"\":\"\",\"ttl\":}")
                                     + ngx_strlen(what) + NGX_TIME_T_LEN
                                     + ngx_http_pred_json_escape_len(key));
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(body.data, "{\"%s\":\"", what);
    p = ngx_http_pred_json_escape(p, key);
    p = ngx_sprintf(p, "\",\"ttl\":%T}", ttl);

    body.len = p - body.data;

    return ngx_http_pred_send(r, NGX_HTTP_OK, &body);
}


static ngx_int_t
ngx_http_pred_admin_purge(ngx_http_request_t *r,
    ngx_http_pred_cache_zone_t *z)
{
    ngx_int_t   rc;
    ngx_str_t   prefix, raw;
    ngx_uint_t  n;
    const char *reason;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (z == NULL) {
        return ngx_http_pred_send_error(r, NGX_HTTP_NOT_FOUND,
                                        "not_configured", NULL,
                                        "this location has no pred_cache");
    }

    ngx_str_null(&prefix);

    if (ngx_http_arg(r, (u_char *) "prefix", 6, &raw) == NGX_OK) {
        rc = ngx_http_pred_decode_key(r, &raw, &prefix, &reason);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_DECLINED) {
            return ngx_http_pred_send_error(r, NGX_HTTP_BAD_REQUEST,
                                            "bad_prefix", NULL, reason);
        }
    }

    n = ngx_http_pred_cache_purge(z, &prefix);

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "pred: admin: purged %ui entries with prefix \"%V\"", n,
                  &prefix);

    return ngx_http_pred_admin_json(r, NGX_HTTP_OK,
                                    json_pack("{s:I}", "purged",
                                              (json_int_t) n));
}


static ngx_int_t
ngx_http_pred_admin_snapshot(ngx_http_request_t *r,
    ngx_http_pred_snapshot_t *snap)
{
    char          owner[256], inv[256];
    json_t       *json, *cand, *deltas;
    time_t        age, cage;
    ngx_int_t     rc;
    ngx_uint_t    i;
    pred_snap_t  *s, *c, *d;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (snap == NULL) {
        return ngx_http_pred_send_error(r, NGX_HTTP_NOT_FOUND,
                                        "not_configured", NULL,
                                        "this location has no pred_snapshot");
    }

    s = snap->live;

    if (s == NULL) {
        return ngx_http_pred_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "snapshot_unavailable", NULL,
                                        "no valid snapshot is published");
    }

    if (pred_snap_meta(s, PRED_SNAP_META_OWNER, owner, sizeof(owner)) != 1) {
        owner[0] = '\0';
    }

    if (pred_snap_meta(s, PRED_SNAP_META_INVALIDATED, inv, sizeof(inv))
        != 1)
    {
        inv[0] = '\0';
    }

    age = ngx_max(ngx_time() - s->created_at, 0);

    c = snap->cand;

    if (c) {
        cage = ngx_max(ngx_time() - c->created_at, 0);

        /* its own SLA holds for the keys it answers */
        cand = json_pack("{s:s,s:I,s:I,s:I,s:I,s:b,s:o}",
                         "version", c->version,
                         "entries", (json_int_t) c->entries,
                         "created_at", (json_int_t) c->created_at,
                         "age", (json_int_t) cage,
                         "freshness_sla", (json_int_t) c->freshness_sla,
                         "stale", c->freshness_sla
                                  && (uint64_t) cage > c->freshness_sla,
                         "percent",
                         json_real((double) snap->cand_share
                                   / (PRED_CANARY_SCALE / 100)));
    } else {
        cand = json_null();
    }

    /* the live version's deltas, oldest first, as they are looked up in */
    deltas = json_array();

    for (i = 0; deltas && i < snap->nlayers; i++) {
        d = snap->layers[i].snap;

        if (json_array_append_new(deltas, json_pack(
                "{s:s,s:I,s:I,s:I,s:I}",
                "version", d->version,
                "upserts", (json_int_t) (d->entries - d->deletes),
                "deletes", (json_int_t) d->deletes,
                "created_at", (json_int_t) d->created_at,
                "as_of", (json_int_t) d->as_of))
            != 0)
        {
            json_decref(deltas);
            deltas = NULL;
        }
    }

    json = json_pack("{s:s%,s:s,s:I,s:I,s:I,s:I,s:s,s:b,s:s,s:s,s:s,s:o,"
                     "s:o*}",
                     "name", snap->name.data, snap->name.len,
                     "version", s->version,
                     "entries", (json_int_t) s->entries,
                     "created_at", (json_int_t) s->created_at,
                     "age", (json_int_t) age,
                     "freshness_sla", (json_int_t) s->freshness_sla,
                     "fallback_if_stale",
                     pred_snap_fallback_name(s->fallback),
                     "stale", s->freshness_sla
                              && (uint64_t) age > s->freshness_sla,
                     "owner", owner,
                     "invalidated_by", inv,
                     "checksum", s->checksum,
                     "candidate", cand,
                     "deltas", deltas);

    return ngx_http_pred_admin_json(r, NGX_HTTP_OK, json);
}


/* sends json (and frees it); NULL means json_pack failed */
static ngx_int_t
ngx_http_pred_admin_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *json)
{
    char       *text;
    ngx_str_t   body;

    if (json == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* reals (a canary's share) as written: 0.1, not 0.10000000000000001 */
    text = json_dumps(json, JSON_COMPACT | JSON_PRESERVE_ORDER
                            | JSON_REAL_PRECISION(10));
    json_decref(json);

    if (text == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.len = ngx_strlen(text);
    body.data = ngx_pnalloc(r->pool, body.len);

    if (body.data == NULL) {
        free(text);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(body.data, text, body.len);
    free(text);

    return ngx_http_pred_send(r, status, &body);
}


static ngx_int_t
ngx_http_pred_admin_allow(ngx_http_request_t *r, const char *methods)
{
    ngx_str_t  value;

    /* a body sent with the wrong method is read and let go */
    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    value.data = (u_char *) methods;
    value.len = ngx_strlen(methods);

    return ngx_http_pred_send_not_allowed(r, &value, methods);
}
