/*
 * Multi-key lookups: "pred_batch on".
 *
 *   GET  ?keys=a,b,c        (pred_key gives the list; each key %-decoded)
 *   POST {"keys":["a","b"]}
 *   -> {"results":{"a":{...},"b":null},"sources":{"a":"snapshot","b":"none"}}
 *
 * Each key goes through the cache and the snapshot; the keys both miss go
 * to the model in one request, its body built from $pred_keys_json, and
 * the answer, an array in the same order, is split back per key and cached.
 */

#include <jansson.h>

#include "ngx_http_pred_module.h"
#include "pred_json.h"


static ngx_int_t ngx_http_pred_batch_post(ngx_http_request_t *r);
static void ngx_http_pred_batch_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_pred_batch_keys_get(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, const char **reason);
static ngx_int_t ngx_http_pred_batch_add(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, ngx_str_t *raw, ngx_uint_t decode,
    ngx_uint_t index, const char **reason);
static ngx_int_t ngx_http_pred_batch_run(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx);
static void ngx_http_pred_batch_lookup(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, ngx_http_pred_batch_item_t *item);
static ngx_int_t ngx_http_pred_batch_fail(ngx_http_request_t *r,
    const char *reason);


static ngx_str_t  ngx_http_pred_src_cache = ngx_string("cache");
static ngx_str_t  ngx_http_pred_src_snapshot = ngx_string("snapshot");
static ngx_str_t  ngx_http_pred_src_upstream = ngx_string("upstream");
static ngx_str_t  ngx_http_pred_src_stale = ngx_string("stale");
static ngx_str_t  ngx_http_pred_src_default = ngx_string("default");
static ngx_str_t  ngx_http_pred_src_error = ngx_string("error");
static ngx_str_t  ngx_http_pred_src_none = ngx_string("none");


/* "pred_batch on|off [max=N]" */
char *
ngx_http_pred_batch(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pred_loc_conf_t *plcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (plcf->batch != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "on") == 0) {
        plcf->batch = 1;

    } else if (ngx_strcmp(value[1].data, "off") == 0) {
        plcf->batch = 0;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\", use \"on\" or \"off\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "max=", 4) != 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        n = ngx_atoi(value[2].data + 4, value[2].len - 4);
        if (n <= 0 || n > 10000) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid max \"%V\", use 1 to 10000",
                               &value[2]);
            return NGX_CONF_ERROR;
        }

        plcf->batch_max = n;
    }

    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_pred_batch_handler(ngx_http_request_t *r)
{
    ngx_int_t             rc;
    const char           *reason;
    ngx_http_pred_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_pred_module);

    if (r->method == NGX_HTTP_POST) {
        return ngx_http_pred_batch_post(r);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_pred_batch_keys_get(r, ctx, &reason);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_pred_batch_fail(r, reason);
    }

    return ngx_http_pred_batch_run(r, ctx);
}


static ngx_int_t
ngx_http_pred_batch_post(ngx_http_request_t *r)
{
    ngx_int_t  rc;

    rc = ngx_http_read_client_request_body(r, ngx_http_pred_batch_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


/* {"keys":["a","b"]} */
static void
ngx_http_pred_batch_body(ngx_http_request_t *r)
{
    size_t                 i;
    json_t                *json, *keys, *k;
    ngx_int_t              rc;
    ngx_str_t              body, key;
    const char            *reason;
    json_error_t           jerr;
    ngx_http_pred_ctx_t   *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_pred_module);

    rc = ngx_http_pred_read_body(r, &body);

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r,
            ngx_http_pred_batch_fail(r, "the body is too large"));
        return;
    }

    json = json_loadb((char *) body.data, body.len, JSON_REJECT_DUPLICATES,
                      &jerr);

    keys = json ? json_object_get(json, "keys") : NULL;

    if (!json_is_array(keys)) {
        json_decref(json);
        ngx_http_finalize_request(r,
            ngx_http_pred_batch_fail(r, json ? "the body has no \"keys\" "
                                               "array" : jerr.text));
        return;
    }

    for (i = 0; i < json_array_size(keys); i++) {
        k = json_array_get(keys, i);

        if (!json_is_string(k)) {
            json_decref(json);
            ngx_http_finalize_request(r,
                ngx_http_pred_batch_fail(r, "keys must be strings"));
            return;
        }

        key.len = json_string_length(k);
        key.data = ngx_pnalloc(r->pool, key.len + 1);
        if (key.data == NULL) {
            json_decref(json);
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_memcpy(key.data, json_string_value(k), key.len);

        rc = ngx_http_pred_batch_add(r, ctx, &key, 0, i, &reason);

        if (rc != NGX_OK) {
            json_decref(json);
            ngx_http_finalize_request(r, rc == NGX_ERROR
                ? NGX_HTTP_INTERNAL_SERVER_ERROR
                : ngx_http_pred_batch_fail(r, reason));
            return;
        }
    }

    json_decref(json);

    ngx_http_finalize_request(r, ngx_http_pred_batch_run(r, ctx));
}


/*
 * The pred_key value is "a,b,c"; a key with a comma is sent as %2C.
 * NGX_DECLINED: a bad list, *reason says why.
 */
static ngx_int_t
ngx_http_pred_batch_keys_get(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    const char **reason)
{
    u_char      *p, *last, *comma;
    ngx_int_t    rc;
    ngx_str_t    raw, key;
    ngx_uint_t   i;

    if (ngx_http_complex_value(r, ctx->plcf->key, &raw) != NGX_OK) {
        return NGX_ERROR;
    }

    p = raw.data;
    last = raw.data + raw.len;

    for (i = 0; p <= last; i++) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        key.data = p;
        key.len = comma - p;

        rc = ngx_http_pred_batch_add(r, ctx, &key, 1, i, reason);

        if (rc != NGX_OK) {
            return rc;
        }

        p = comma + 1;
    }

    return NGX_OK;
}


/* adds a key once; NGX_DECLINED with a reason that names it */
static ngx_int_t
ngx_http_pred_batch_add(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    ngx_str_t *raw, ngx_uint_t decode, ngx_uint_t index, const char **reason)
{
    u_char                      *msg;
    ngx_int_t                    rc;
    ngx_str_t                    key;
    ngx_uint_t                   i;
    const char                  *why;
    pred_key_rc_t                krc;
    ngx_http_pred_batch_item_t  *items, *item;

    if (ctx->batch == NULL) {
        ctx->batch = ngx_array_create(r->pool, 8,
                                      sizeof(ngx_http_pred_batch_item_t));
        if (ctx->batch == NULL) {
            return NGX_ERROR;
        }
    }

    if (decode) {
        rc = ngx_http_pred_decode_key(r, raw, &key, &why);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

    } else {
        key = *raw;
        krc = pred_key_validate(key.data, key.len);
        rc = (krc == PRED_KEY_OK) ? NGX_OK : NGX_DECLINED;
        why = pred_key_strerror(krc);
    }

    if (rc == NGX_DECLINED) {
        msg = ngx_pnalloc(r->pool, 64 + ngx_strlen(why));
        if (msg == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(msg, "keys[%ui]: %s%Z", index, why);
        *reason = (char *) msg;

        return NGX_DECLINED;
    }

    items = ctx->batch->elts;

    for (i = 0; i < ctx->batch->nelts; i++) {
        if (items[i].key.len == key.len
            && ngx_memcmp(items[i].key.data, key.data, key.len) == 0)
        {
            return NGX_OK;
        }
    }

    if (ctx->batch->nelts == ctx->plcf->batch_max) {
        msg = ngx_pnalloc(r->pool, 64);
        if (msg == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf(msg, "more than %ui keys%Z", ctx->plcf->batch_max);
        *reason = (char *) msg;

        return NGX_DECLINED;
    }

    item = ngx_array_push(ctx->batch);
    if (item == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(item, sizeof(ngx_http_pred_batch_item_t));
    item->key = key;

    return NGX_OK;
}


static ngx_int_t
ngx_http_pred_batch_run(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx)
{
    ngx_uint_t                   i;
    ngx_http_pred_batch_item_t  *items;

    if (ctx->batch == NULL || ctx->batch->nelts == 0) {
        return ngx_http_pred_batch_fail(r, "no keys");
    }

    items = ctx->batch->elts;
    ctx->nmissing = 0;

    for (i = 0; i < ctx->batch->nelts; i++) {
        ngx_http_pred_batch_lookup(r, ctx, &items[i]);

        if (items[i].source == NULL) {
            ctx->nmissing++;
        }
    }

    if (ctx->nmissing && ctx->plcf->upstream_uri.len) {
        return ngx_http_pred_upstream_batch(r, ctx);
    }

    return ngx_http_pred_batch_answer(r, ctx, NULL);
}


/* the cache, then the snapshot; a miss leaves item->source NULL */
static void
ngx_http_pred_batch_lookup(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    ngx_http_pred_batch_item_t *item)
{
    ngx_int_t                    rc;
    ngx_uint_t                   masked;
    ngx_http_pred_hit_t          hit;
    ngx_http_pred_cached_t       cached;
    ngx_http_pred_cache_zone_t  *z;

    masked = 0;
    z = ngx_http_pred_cache_zone_get(ctx->plcf);

    if (z && ngx_http_pred_cache_get(r, z, &item->key, &cached) == NGX_OK) {

        if (cached.expired_ms <= 0) {
            if (cached.kind == NGX_HTTP_PRED_CACHE_VALUE) {
                item->value = cached.value;
                item->source = &ngx_http_pred_src_cache;
                return;
            }

            if (cached.kind == NGX_HTTP_PRED_CACHE_NEGATIVE) {
                item->source = &ngx_http_pred_src_cache;
                return;
            }

            masked = 1;

        } else if (cached.kind == NGX_HTTP_PRED_CACHE_VALUE) {
            item->stale = cached.value;
            item->has_stale = 1;
        }
    }

    if (ctx->plcf->snapshot == NULL || masked) {
        return;
    }

    rc = ngx_http_pred_snapshot_lookup(r, ctx->plcf->snapshot,
                                       ctx->plcf->max_age, &item->key, &hit);
    if (rc != NGX_OK) {
        return;
    }

    if (!hit.stale || hit.fallback == PRED_SNAP_STALE_SERVE
        || (hit.fallback == PRED_SNAP_STALE_UPSTREAM
            && ctx->plcf->upstream_uri.len == 0))
    {
        item->value = hit.value;
        item->source = &ngx_http_pred_src_snapshot;
        return;
    }

    if (hit.fallback == PRED_SNAP_STALE_FAIL) {
        item->source = &ngx_http_pred_src_error;
        return;
    }

    item->stale = hit.value;
    item->has_stale = 1;
}


/*
 * The model's answer, in the subrequest: an array in the order of the
 * missing keys; null means the model does not know the key.
 */
void
ngx_http_pred_batch_result(ngx_http_request_t *sr, ngx_http_pred_ctx_t *ctx,
    ngx_str_t *body)
{
    size_t                       n, i, j, where;
    ngx_str_t                    value;
    const char                  *start, *stop, **starts, **stops;
    ngx_http_pred_batch_item_t  *items;
    ngx_http_pred_cache_zone_t  *z;

    if (pred_json_validate((char *) body->data, body->len, &where) != 0) {
        ctx->fail = NGX_HTTP_PRED_FAIL_INVALID;
        ctx->reason = "invalid JSON";
        return;
    }

    start = (char *) body->data;
    stop = (char *) body->data + body->len;

    if (ctx->plcf->upstream_extract.len
        && pred_json_pointer((char *) body->data, body->len,
                             (char *) ctx->plcf->upstream_extract.data,
                             ctx->plcf->upstream_extract.len, &start, &stop)
           != 0)
    {
        ctx->fail = NGX_HTTP_PRED_FAIL_INVALID;
        ctx->reason = "nothing at the extract pointer";
        return;
    }

    starts = ngx_palloc(sr->pool, 2 * ctx->nmissing * sizeof(char *));
    if (starts == NULL) {
        ctx->reason = "out of memory";
        return;
    }

    stops = starts + ctx->nmissing;

    if (pred_json_array(start, stop, starts, stops, ctx->nmissing, &n) != 0
        || n != ctx->nmissing)
    {
        if (ngx_http_pred_warn_allowed(sr->connection->log)) {
            ngx_log_error(NGX_LOG_WARN, sr->connection->log, 0,
                          "pred: batch answer is not an array of %ui "
                          "predictions", ctx->nmissing);
        }
        ctx->fail = NGX_HTTP_PRED_FAIL_INVALID;
        ctx->reason = "not an array of one prediction per key";
        return;
    }

    z = ngx_http_pred_cache_zone_get(ctx->plcf);
    items = ctx->batch->elts;

    for (i = 0, j = 0; i < ctx->batch->nelts; i++) {
        if (items[i].source) {
            continue;
        }

        items[i].source = &ngx_http_pred_src_upstream;

        if (stops[j] - starts[j] == 4 && ngx_strncmp(starts[j], "null", 4)
                                         == 0)
        {
            if (z && z->negative_ttl) {
                (void) ngx_http_pred_cache_put(z, &items[i].key,
                                               NGX_HTTP_PRED_CACHE_NEGATIVE,
                                               NULL, z->negative_ttl,
                                               sr->connection->log);
            }

            j++;
            continue;
        }

        value.data = ngx_pnalloc(sr->pool, stops[j] - starts[j]);
        if (value.data == NULL) {
            items[i].source = NULL;
            ctx->reason = "out of memory";
            return;
        }

        value.len = pred_json_compact(starts[j], stops[j] - starts[j],
                                      (char *) value.data);
        items[i].value = value;

        if (z) {
            (void) ngx_http_pred_cache_put(z, &items[i].key,
                                           NGX_HTTP_PRED_CACHE_VALUE, &value,
                                           ctx->plcf->cache_ttl
                                           != NGX_CONF_UNSET
                                           ? ctx->plcf->cache_ttl : z->ttl,
                                           sr->connection->log);
        }

        j++;
    }
}


/*
 * Answers every key: what a tier or the model found, else the fallback
 * chain per key ("why" set: the model failed), else null ("none").
 */
ngx_int_t
ngx_http_pred_batch_answer(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    const char *why)
{
    size_t                       len;
    u_char                      *p;
    ngx_str_t                    body;
    ngx_uint_t                   i, k, n;
    ngx_http_pred_hit_t          hit;
    ngx_http_pred_fallback_t    *fbs;
    ngx_http_pred_batch_item_t  *items, *item;

    items = ctx->batch->elts;
    n = ctx->plcf->fallback ? ctx->plcf->fallback->nelts : 0;
    fbs = n ? ctx->plcf->fallback->elts : NULL;

    if (why && ctx->nmissing
        && ngx_http_pred_warn_allowed(r->connection->log))
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "pred: batch upstream for %ui keys failed: %s; "
                      "answering with the fallback chain", ctx->nmissing,
                      why);
    }

    for (i = 0; i < ctx->batch->nelts; i++) {
        item = &items[i];

        for (k = 0; item->source == NULL && why && k < n; k++) {

            if (fbs[k].type == NGX_HTTP_PRED_FB_STALE) {
                if (!item->has_stale && ctx->plcf->snapshot
                    && ngx_http_pred_snapshot_lookup(r, ctx->plcf->snapshot,
                                                     ctx->plcf->max_age,
                                                     &item->key, &hit)
                       == NGX_OK)
                {
                    item->stale = hit.value;
                    item->has_stale = 1;
                }

                if (item->has_stale) {
                    item->value = item->stale;
                    item->source = &ngx_http_pred_src_stale;
                }

            } else if (fbs[k].type == NGX_HTTP_PRED_FB_DEFAULT) {
                item->value = fbs[k].value;
                item->source = &ngx_http_pred_src_default;

            } else {
                item->source = &ngx_http_pred_src_error;
            }
        }

        if (item->source == NULL) {
            item->source = why ? &ngx_http_pred_src_error
                               : &ngx_http_pred_src_none;
        }
    }

    /* {"results":{"k":v,...},"sources":{"k":"s",...}} */

    len = sizeof("{\"results\":{},\"sources\":{}}");

    for (i = 0; i < ctx->batch->nelts; i++) {
        len += 2 * (ngx_http_pred_json_escape_len(&items[i].key) + 4)
               + (items[i].value.len ? items[i].value.len : 4)
               + items[i].source->len + 2;
    }

    body.data = ngx_pnalloc(r->pool, len);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(body.data, "{\"results\":{", 12);

    for (i = 0; i < ctx->batch->nelts; i++) {
        *p++ = i ? ',' : '"';
        if (i) {
            *p++ = '"';
        }

        p = ngx_http_pred_json_escape(p, &items[i].key);
        *p++ = '"';
        *p++ = ':';

        p = items[i].value.len
            ? ngx_cpymem(p, items[i].value.data, items[i].value.len)
            : ngx_cpymem(p, "null", 4);
    }

    p = ngx_cpymem(p, "},\"sources\":{", 13);

    for (i = 0; i < ctx->batch->nelts; i++) {
        *p++ = i ? ',' : '"';
        if (i) {
            *p++ = '"';
        }

        p = ngx_http_pred_json_escape(p, &items[i].key);
        p = ngx_cpymem(p, "\":\"", 3);
        p = ngx_cpymem(p, items[i].source->data, items[i].source->len);
        *p++ = '"';
    }

    p = ngx_cpymem(p, "}}", 2);

    body.len = p - body.data;

    return ngx_http_pred_send(r, NGX_HTTP_OK, &body);
}


/* $pred_keys_json: the keys the model is asked for, as a JSON array */
ngx_int_t
ngx_http_pred_batch_keys_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, ngx_http_pred_ctx_t *ctx)
{
    size_t                       len;
    u_char                      *p;
    ngx_uint_t                   i, first;
    ngx_http_pred_batch_item_t  *items;

    if (ctx == NULL || ctx->batch == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    items = ctx->batch->elts;
    len = 2;

    for (i = 0; i < ctx->batch->nelts; i++) {
        len += ngx_http_pred_json_escape_len(&items[i].key) + 3;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;
    *p++ = '[';

    for (i = 0, first = 1; i < ctx->batch->nelts; i++) {
        if (items[i].source) {
            continue;
        }

        if (!first) {
            *p++ = ',';
        }

        first = 0;
        *p++ = '"';
        p = ngx_http_pred_json_escape(p, &items[i].key);
        *p++ = '"';
    }

    *p++ = ']';

    v->len = p - v->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_pred_batch_fail(ngx_http_request_t *r, const char *reason)
{
    return ngx_http_pred_send_error(r, NGX_HTTP_BAD_REQUEST, "bad_keys",
                                    NULL, reason);
}
