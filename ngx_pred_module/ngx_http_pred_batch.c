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
 *
 * Warming (POST PREFIX/warm on a pred_admin location, the same body):
 * the keys no tier holds go to the same model call, max= of them at a
 * time, one call after another, each admitted as any call; the answer is
 * the counts, not the values.
 */

#include "ngx_http_pred_module.h"

#include <jansson.h>

#include "pred_json.h"


/*
 * Past this many keys a request's keys are told apart by a hash table:
 * comparing each new key with every one before it cost a 1000-key batch
 * half a million comparisons.
 */
#define NGX_HTTP_PRED_BATCH_LINEAR  16


/* the keys added so far, by hash: item index + 1, 0 for a free slot */
typedef struct {
    ngx_uint_t                 *slots;
    ngx_uint_t                  mask;
} ngx_http_pred_batch_seen_t;


static ngx_int_t ngx_http_pred_batch_post(ngx_http_request_t *r);
static void ngx_http_pred_batch_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_pred_batch_plain_body(ngx_str_t *body,
    ngx_str_t *keys, ngx_uint_t *n);
static ngx_int_t ngx_http_pred_batch_keys_plain(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, ngx_str_t *body, ngx_uint_t n,
    const char **reason);
static ngx_int_t ngx_http_pred_batch_keys_parsed(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, ngx_str_t *body, const char **reason);
static ngx_int_t ngx_http_pred_batch_keys_get(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, const char **reason);
static ngx_int_t ngx_http_pred_batch_start(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, ngx_uint_t n, ngx_http_pred_batch_seen_t *seen);
static ngx_int_t ngx_http_pred_batch_add(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, ngx_http_pred_batch_seen_t *seen,
    ngx_str_t *raw, ngx_uint_t decode, ngx_uint_t index,
    const char **reason);
static ngx_http_pred_batch_item_t *ngx_http_pred_batch_find(
    ngx_http_pred_ctx_t *ctx, ngx_http_pred_batch_seen_t *seen,
    ngx_str_t *key, ngx_uint_t **slot);
static ngx_int_t ngx_http_pred_batch_run(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx);
static void ngx_http_pred_batch_lookup(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, ngx_http_pred_batch_item_t *item);
static void ngx_http_pred_batch_done(ngx_http_request_t *sr,
    ngx_http_pred_call_t *call);
static ngx_int_t ngx_http_pred_batch_resume(ngx_http_request_t *r,
    ngx_http_pred_call_t *call);
static ngx_int_t ngx_http_pred_batch_answer(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, const char *why);
static ngx_int_t ngx_http_pred_batch_fail(ngx_http_request_t *r,
    const char *reason);
static ngx_uint_t ngx_http_pred_batch_plain(ngx_str_t *key);
static ngx_http_pred_call_t *ngx_http_pred_batch_call(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, ngx_uint_t *next, ngx_uint_t max,
    ngx_http_pred_call_resume_pt resume);
static ngx_int_t ngx_http_pred_warm_next(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx);
static ngx_int_t ngx_http_pred_warm_resume(ngx_http_request_t *r,
    ngx_http_pred_call_t *call);
static ngx_int_t ngx_http_pred_warm_answer(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx);


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

    ctx = ngx_http_pred_ctx_create(r, NULL);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* there from the start, the metrics count a bad batch as a batch too;
       sized when the keys are counted */
    ctx->batch = ngx_array_create(r->pool, 1,
                                  sizeof(ngx_http_pred_batch_item_t));
    if (ctx->batch == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

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


/*
 * POST PREFIX/warm {"keys":[...]}: the admin location's pred_upstream is
 * its batch model call (its model location sends $pred_keys_json).
 */
ngx_int_t
ngx_http_pred_warm(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_http_pred_ctx_t       *ctx;
    ngx_http_pred_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_pred_module);

    if (plcf->upstream_uri.len == 0 || plcf->cache_zone == NULL) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_pred_send_error(r, NGX_HTTP_NOT_FOUND,
                                        "not_configured", NULL,
                                        "warming needs pred_cache and "
                                        "pred_upstream (a batch model call) "
                                        "in this location");
    }

    rc = ngx_http_pred_admin_length(r, NULL);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    ctx = ngx_http_pred_ctx_create(r, NULL);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->warm = 1;

    ctx->batch = ngx_array_create(r->pool, 1,
                                  sizeof(ngx_http_pred_batch_item_t));
    if (ctx->batch == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_pred_batch_post(r);
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
    ngx_int_t             rc;
    ngx_str_t             body;
    ngx_uint_t            n;
    const char           *reason;
    ngx_http_pred_ctx_t  *ctx;

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

    rc = (ngx_http_pred_batch_plain_body(&body, NULL, &n) == NGX_OK)
         ? ngx_http_pred_batch_keys_plain(r, ctx, &body, n, &reason)
         : ngx_http_pred_batch_keys_parsed(r, ctx, &body, &reason);

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r, ngx_http_pred_batch_fail(r, reason));
        return;
    }

    ngx_http_finalize_request(r, ngx_http_pred_batch_run(r, ctx));
}


/*
 * Whether body is valid JSON of just the form {"keys":["a",...]} (white
 * space aside) with no escapes in the keys, as clients send it: then each
 * key is its bytes in the body, and a JSON parser would find exactly these
 * keys (one member: no duplicates to refuse).  *n is how many; with keys
 * set, they are written there.  NGX_DECLINED: another form.
 */
static ngx_int_t
ngx_http_pred_batch_plain_body(ngx_str_t *body, ngx_str_t *keys,
    ngx_uint_t *n)
{
    size_t       where;
    const char  *p, *end, *q;

    p = (const char *) body->data;
    end = p + body->len;

    if (keys == NULL && pred_json_validate(p, body->len, &where) != 0) {
        return NGX_DECLINED;
    }

    p = pred_json_skip_ws(p, end);
    if (p == end || *p != '{') {
        return NGX_DECLINED;
    }

    p = pred_json_skip_ws(p + 1, end);
    if (end - p < 6 || ngx_strncmp(p, "\"keys\"", 6) != 0) {
        return NGX_DECLINED;
    }

    p = pred_json_skip_ws(p + 6, end);
    if (p == end || *p != ':') {
        return NGX_DECLINED;
    }

    p = pred_json_skip_ws(p + 1, end);
    if (p == end || *p != '[') {
        return NGX_DECLINED;
    }

    p = pred_json_skip_ws(p + 1, end);
    *n = 0;

    /* valid JSON: a string's first unescaped quote ends it */
    while (p < end && *p == '"') {
        q = memchr(p + 1, '"', end - p - 1);
        if (q == NULL || memchr(p + 1, '\\', q - p - 1) != NULL) {
            return NGX_DECLINED;
        }

        if (keys) {
            keys[*n].data = (u_char *) p + 1;
            keys[*n].len = q - p - 1;
        }

        (*n)++;

        p = pred_json_skip_ws(q + 1, end);
        if (p < end && *p == ',') {
            p = pred_json_skip_ws(p + 1, end);
        }
    }

    if (p == end || *p != ']') {
        return NGX_DECLINED;
    }

    p = pred_json_skip_ws(p + 1, end);

    return (p < end && *p == '}') ? NGX_OK : NGX_DECLINED;
}


/* the keys of a body of the plain form, n of them, pointing into it */
static ngx_int_t
ngx_http_pred_batch_keys_plain(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, ngx_str_t *body, ngx_uint_t n,
    const char **reason)
{
    ngx_int_t                    rc;
    ngx_str_t                   *keys;
    ngx_uint_t                   i;
    ngx_http_pred_batch_seen_t   seen;

    keys = ngx_palloc(r->pool, ngx_max(n, 1) * sizeof(ngx_str_t));
    if (keys == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_http_pred_batch_plain_body(body, keys, &n);

    if (ngx_http_pred_batch_start(r, ctx, n, &seen) != NGX_OK) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        rc = ngx_http_pred_batch_add(r, ctx, &seen, &keys[i], 0, i, reason);

        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/* any other body, through the JSON parser, which says what is wrong */
static ngx_int_t
ngx_http_pred_batch_keys_parsed(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, ngx_str_t *body, const char **reason)
{
    size_t                       i;
    json_t                      *json, *keys, *k;
    ngx_int_t                    rc;
    ngx_str_t                    key;
    json_error_t                 jerr;
    ngx_http_pred_batch_seen_t   seen;

    json = json_loadb((char *) body->data, body->len, JSON_REJECT_DUPLICATES,
                      &jerr);

    keys = json ? json_object_get(json, "keys") : NULL;

    if (!json_is_array(keys)) {
        json_decref(json);

        /* jerr.text lives on the stack: the reason is copied */
        if (json == NULL) {
            *reason = ngx_pnalloc(r->pool, ngx_strlen(jerr.text) + 1);
            if (*reason == NULL) {
                return NGX_ERROR;
            }

            ngx_memcpy((char *) *reason, jerr.text,
                       ngx_strlen(jerr.text) + 1);

        } else {
            *reason = "the body has no \"keys\" array";
        }

        return NGX_DECLINED;
    }

    if (ngx_http_pred_batch_start(r, ctx, json_array_size(keys), &seen)
        != NGX_OK)
    {
        json_decref(json);
        return NGX_ERROR;
    }

    for (i = 0; i < json_array_size(keys); i++) {
        k = json_array_get(keys, i);

        if (!json_is_string(k)) {
            json_decref(json);
            *reason = "keys must be strings";
            return NGX_DECLINED;
        }

        key.len = json_string_length(k);
        key.data = ngx_pnalloc(r->pool, key.len + 1);
        if (key.data == NULL) {
            json_decref(json);
            return NGX_ERROR;
        }

        ngx_memcpy(key.data, json_string_value(k), key.len);

        rc = ngx_http_pred_batch_add(r, ctx, &seen, &key, 0, i, reason);

        if (rc != NGX_OK) {
            json_decref(json);
            return rc;
        }
    }

    json_decref(json);

    return NGX_OK;
}


/*
 * The pred_key value is "a,b,c"; a key with a comma is sent as %2C.
 * NGX_DECLINED: a bad list, *reason says why.
 */
static ngx_int_t
ngx_http_pred_batch_keys_get(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    const char **reason)
{
    u_char                      *p, *last, *comma;
    ngx_int_t                    rc;
    ngx_str_t                    raw, key;
    ngx_uint_t                   i, n;
    ngx_http_pred_batch_seen_t   seen;

    if (ngx_http_complex_value(r, ctx->plcf->key, &raw) != NGX_OK) {
        return NGX_ERROR;
    }

    p = raw.data;
    last = raw.data + raw.len;

    for (n = 1; p < last; p++) {
        n += (*p == ',');
    }

    if (ngx_http_pred_batch_start(r, ctx, n, &seen) != NGX_OK) {
        return NGX_ERROR;
    }

    p = raw.data;

    for (i = 0; p <= last; i++) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        key.data = p;
        key.len = comma - p;

        rc = ngx_http_pred_batch_add(r, ctx, &seen, &key, 1, i, reason);

        if (rc != NGX_OK) {
            return rc;
        }

        p = comma + 1;
    }

    return NGX_OK;
}


/*
 * The items array for n keys as sent (duplicates count), made once at its
 * size, and past NGX_HTTP_PRED_BATCH_LINEAR keys a hash table with room
 * for twice as many as can be kept.
 */
static ngx_int_t
ngx_http_pred_batch_start(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    ngx_uint_t n, ngx_http_pred_batch_seen_t *seen)
{
    ngx_uint_t  size;

    n = ngx_min(n, ctx->plcf->batch_max);

    if (n > 1
        && ngx_array_init(ctx->batch, r->pool, n,
                          sizeof(ngx_http_pred_batch_item_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    seen->slots = NULL;
    seen->mask = 0;

    if (n <= NGX_HTTP_PRED_BATCH_LINEAR) {
        return NGX_OK;
    }

    for (size = 2 * NGX_HTTP_PRED_BATCH_LINEAR; size < 2 * n; size *= 2) {
        /* void */
    }

    seen->slots = ngx_pcalloc(r->pool, size * sizeof(ngx_uint_t));
    if (seen->slots == NULL) {
        return NGX_ERROR;
    }

    seen->mask = size - 1;

    return NGX_OK;
}


/* adds a key once; NGX_DECLINED with a reason that names it */
static ngx_int_t
ngx_http_pred_batch_add(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    ngx_http_pred_batch_seen_t *seen, ngx_str_t *raw, ngx_uint_t decode,
    ngx_uint_t index, const char **reason)
{
    u_char                      *msg;
    ngx_int_t                    rc;
    ngx_str_t                    key;
    ngx_uint_t                  *slot;
    const char                  *why;
    pred_key_rc_t                krc;
    ngx_http_pred_batch_item_t  *item;

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

    if (ngx_http_pred_batch_find(ctx, seen, &key, &slot) != NULL) {
        return NGX_OK;
    }

    /* a warming asks for them max= at a time */
    if (!ctx->warm && ctx->batch->nelts == ctx->plcf->batch_max) {
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
    item->source = NGX_HTTP_PRED_SRC_NONE;

    if (slot) {
        *slot = ctx->batch->nelts;
    }

    return NGX_OK;
}


/*
 * The item already added for key, or NULL; with a hash table, *slot is
 * where a new one goes (NULL without one).
 */
static ngx_http_pred_batch_item_t *
ngx_http_pred_batch_find(ngx_http_pred_ctx_t *ctx,
    ngx_http_pred_batch_seen_t *seen, ngx_str_t *key, ngx_uint_t **slot)
{
    ngx_uint_t                   i;
    ngx_http_pred_batch_item_t  *items, *item;

    items = ctx->batch->elts;
    *slot = NULL;

    if (seen->slots == NULL) {
        for (i = 0; i < ctx->batch->nelts; i++) {
            if (items[i].key.len == key->len
                && ngx_memcmp(items[i].key.data, key->data, key->len) == 0)
            {
                return &items[i];
            }
        }

        return NULL;
    }

    /*
     * Linear probing; the table is never more than half full.  The keys
     * are the client's: hashed under a secret, they cannot be made to
     * share one run of slots.
     */
    for (i = pred_key_hash(key->data, key->len, pred_key_process_secret())
             & seen->mask;
         seen->slots[i];
         i = (i + 1) & seen->mask)
    {
        item = &items[seen->slots[i] - 1];

        if (item->key.len == key->len
            && ngx_memcmp(item->key.data, key->data, key->len) == 0)
        {
            return item;
        }
    }

    *slot = &seen->slots[i];

    return NULL;
}


/*
 * Every key through the tiers; the keys they all miss go to the model in
 * one call, which the request waits for.
 */
static ngx_int_t
ngx_http_pred_batch_run(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx)
{
    ngx_int_t                    rc;
    ngx_uint_t                   i, n;
    ngx_http_pred_call_t        *call;
    ngx_http_pred_batch_item_t  *items;

    if (ctx->batch->nelts == 0) {
        return ngx_http_pred_batch_fail(r, "no keys");
    }

    items = ctx->batch->elts;
    n = 0;

    for (i = 0; i < ctx->batch->nelts; i++) {
        ngx_http_pred_batch_lookup(r, ctx, &items[i]);

        if (items[i].source == NGX_HTTP_PRED_SRC_NONE) {
            items[i].missed = 1;
            n++;
        }
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "pred: batch of %ui keys, %ui missed every tier",
                   ctx->batch->nelts, n);

    if (ctx->warm) {
        return ngx_http_pred_warm_next(r, ctx);
    }

    if (n == 0 || ctx->plcf->upstream_uri.len == 0) {
        return ngx_http_pred_batch_answer(r, ctx, NULL);
    }

    i = 0;

    call = ngx_http_pred_batch_call(r, ctx, &i, n,
                                    ngx_http_pred_batch_resume);
    if (call == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_pred_call_start(r, call);

    if (rc == NGX_DECLINED) {
        return ngx_http_pred_batch_answer(r, ctx, call->reason);
    }

    return (rc == NGX_DONE) ? NGX_DONE : NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/*
 * The model call for the keys that missed every tier, from *next on and
 * max of them at most (*next moves past them): a batch asks for them all,
 * a warming max= at a time.  Not started yet.
 */
static ngx_http_pred_call_t *
ngx_http_pred_batch_call(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    ngx_uint_t *next, ngx_uint_t max, ngx_http_pred_call_resume_pt resume)
{
    ngx_uint_t                   i;
    ngx_http_pred_call_t        *call;
    ngx_http_pred_batch_item_t  *items;

    call = ngx_http_pred_call_create(r, ctx, NGX_HTTP_PRED_CALL_BATCH);
    if (call == NULL) {
        return NULL;
    }

    call->items = ngx_palloc(r->pool, max * sizeof(ngx_uint_t));
    if (call->items == NULL) {
        return NULL;
    }

    items = ctx->batch->elts;

    for (i = *next; i < ctx->batch->nelts && call->nitems < max; i++) {
        if (items[i].missed) {
            call->items[call->nitems++] = i;
        }
    }

    *next = i;

    call->uri = &ctx->plcf->upstream_uri;
    call->timeout = ctx->plcf->upstream_timeout;
    call->priority = ctx->plcf->priority;
    call->held = 1;
    call->done = ngx_http_pred_batch_done;
    call->resume = resume;

    return call;
}


/* one key through the tiers; a miss leaves item->source NONE */
static void
ngx_http_pred_batch_lookup(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    ngx_http_pred_batch_item_t *item)
{
    ngx_http_pred_lookup_t   res;
    ngx_http_pred_answer_t  *ans;

    if (ngx_http_pred_lookup(r, ctx->plcf, &item->key, &res) != NGX_OK) {
        return;
    }

    ans = &res.answer;

    switch (res.kind) {

    case NGX_HTTP_PRED_LOOKUP_ANSWER:
        if (ans->status == NGX_HTTP_OK) {
            item->value = ans->value;
            item->source = ans->source;

        } else {
            /* a cached 404 says so; a stale snapshot that must fail: error */
            item->source = (ans->source == NGX_HTTP_PRED_SRC_NONE)
                           ? NGX_HTTP_PRED_SRC_ERROR : ans->source;
        }

        return;

    case NGX_HTTP_PRED_LOOKUP_REFRESH:
    case NGX_HTTP_PRED_LOOKUP_MISS:
        /* no refresh per key: the batch's call asks for it */
        item->stale = res.stale;
        return;

    default:
        /* no snapshot, or it failed: the model, if any, or null */
        return;
    }
}


/*
 * The model's answer, in its subrequest: an array in the order of the
 * keys the call asked for; null means the model does not know the key.
 * Each answer is cached, in time or not; the items are set only while
 * the request still waits.
 */
static void
ngx_http_pred_batch_done(ngx_http_request_t *sr, ngx_http_pred_call_t *call)
{
    size_t                       n, j;
    ngx_str_t                    value;
    const char                  *start, *stop, **starts, **stops;
    ngx_http_pred_ctx_t         *ctx;
    ngx_http_pred_batch_item_t  *items, *item;

    ctx = call->ctx;

    if (call->status == NGX_HTTP_NOT_FOUND) {
        call->reason = "the model answered 404";
        return;
    }

    if (!ngx_http_pred_call_answered(call)
        || ngx_http_pred_upstream_extract(sr, call, &start, &stop) != NGX_OK)
    {
        return;
    }

    starts = ngx_palloc(sr->pool, 2 * call->nitems * sizeof(char *));
    if (starts == NULL) {
        call->reason = "out of memory";
        return;
    }

    stops = starts + call->nitems;

    if (pred_json_array(start, stop, starts, stops, call->nitems, &n) != 0
        || n != call->nitems)
    {
        if (ngx_http_pred_warn_allowed(sr->connection->log)) {
            ngx_log_error(NGX_LOG_WARN, sr->connection->log, 0,
                          "pred: batch answer is not an array of %ui "
                          "predictions", call->nitems);
        }

        call->fail = NGX_HTTP_PRED_FAIL_INVALID;
        call->reason = "not an array of one prediction per key";
        return;
    }

    items = ctx->batch->elts;

    for (j = 0; j < call->nitems; j++) {
        item = &items[call->items[j]];

        if (stops[j] - starts[j] == 4
            && ngx_strncmp(starts[j], "null", 4) == 0)
        {
            ngx_str_null(&value);

        } else if (ngx_http_pred_json_copy(sr->pool, starts[j],
                                           stops[j] - starts[j], &value)
                   != NGX_OK)
        {
            call->reason = "out of memory";
            return;
        }

        (void) ngx_http_pred_upstream_store(ctx->plcf, &item->key,
                                            value.len ? &value : NULL,
                                            sr->connection->log);

        if (!call->late) {
            item->value = value;
            item->source = NGX_HTTP_PRED_SRC_UPSTREAM;
        }
    }
}


static ngx_int_t
ngx_http_pred_batch_resume(ngx_http_request_t *r, ngx_http_pred_call_t *call)
{
    return ngx_http_pred_batch_answer(r, call->ctx,
                                      call->late ? "timed out"
                                                 : call->reason);
}


/*
 * Answers every key: what a tier or the model found, else the fallback
 * chain per key ("why" set: the model failed), else null ("none").
 */
static ngx_int_t
ngx_http_pred_batch_answer(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    const char *why)
{
    size_t                       len;
    u_char                      *p;
    ngx_str_t                    body, *src, *esc;
    ngx_uint_t                   i, nmissing;
    ngx_http_pred_answer_t       ans;
    ngx_http_pred_batch_item_t  *items, *item;

    items = ctx->batch->elts;
    nmissing = 0;

    for (i = 0; i < ctx->batch->nelts; i++) {
        item = &items[i];

        if (item->source != NGX_HTTP_PRED_SRC_NONE || why == NULL) {
            continue;
        }

        nmissing++;

        ngx_http_pred_fallback_pick(r, ctx->plcf, &item->key, &item->stale,
                                    why, 0, &ans);

        if (ans.status == NGX_HTTP_OK) {
            item->value = ans.value;
            item->source = ans.source;

        } else {
            item->source = NGX_HTTP_PRED_SRC_ERROR;
        }
    }

    if (nmissing && ngx_http_pred_warn_allowed(r->connection->log)) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "pred: batch upstream for %ui keys failed: %s; "
                      "answering with the fallback chain", nmissing, why);
    }

    /* {"results":{"k":v,...},"sources":{"k":"s",...}} */

    /* each key is escaped once, into "results"; "sources" copies it */
    esc = ngx_palloc(r->pool, ctx->batch->nelts * sizeof(ngx_str_t));
    if (esc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    len = sizeof("{\"results\":{},\"sources\":{}}");

    for (i = 0; i < ctx->batch->nelts; i++) {
        esc[i].len = ngx_http_pred_batch_plain(&items[i].key)
                     ? items[i].key.len
                     : ngx_http_pred_json_escape_len(&items[i].key);

        len += 2 * (esc[i].len + 4)
               + (items[i].value.len ? items[i].value.len : 4)
               + ngx_http_pred_source_names[items[i].source].len + 2;
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

        /* escaping never shortens, and keeps the length only by copying */
        esc[i].data = p;
        p = (esc[i].len == items[i].key.len)
            ? ngx_cpymem(p, items[i].key.data, items[i].key.len)
            : ngx_http_pred_json_escape(p, &items[i].key);
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

        src = &ngx_http_pred_source_names[items[i].source];

        p = ngx_cpymem(p, esc[i].data, esc[i].len);
        p = ngx_cpymem(p, "\":\"", 3);
        p = ngx_cpymem(p, src->data, src->len);
        *p++ = '"';
    }

    p = ngx_cpymem(p, "}}", 2);

    body.len = p - body.data;

    /* an answer at the deadline leaves while the call runs on */
    ngx_http_pred_calls_detach(r, ctx);

    return ngx_http_pred_send(r, NGX_HTTP_OK, &body);
}


/* $pred_keys_json: the keys the call asks the model for, a JSON array */
ngx_int_t
ngx_http_pred_batch_keys_json(ngx_http_request_t *r,
    ngx_http_pred_call_t *call, ngx_str_t *out)
{
    size_t                       len;
    u_char                      *p;
    ngx_uint_t                   j;
    ngx_http_pred_batch_item_t  *items, *item;

    items = call->ctx->batch->elts;
    len = 2;

    for (j = 0; j < call->nitems; j++) {
        len += ngx_http_pred_json_escape_len(&items[call->items[j]].key) + 3;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    *p++ = '[';

    for (j = 0; j < call->nitems; j++) {
        item = &items[call->items[j]];

        if (j) {
            *p++ = ',';
        }

        *p++ = '"';
        p = ngx_http_pred_json_escape(p, &item->key);
        *p++ = '"';
    }

    *p++ = ']';

    out->len = p - out->data;

    return NGX_OK;
}


/*
 * The next max= keys that missed every tier, to the model; the answer once
 * none is left.  A call admission turns away leaves its keys failed, and
 * the next is tried all the same.
 */
static ngx_int_t
ngx_http_pred_warm_next(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx)
{
    ngx_int_t                    rc;
    ngx_uint_t                   n, max;
    ngx_http_pred_call_t        *call;
    ngx_http_pred_batch_item_t  *items;

    items = ctx->batch->elts;
    max = ctx->plcf->batch_max;

    for ( ;; ) {
        while (ctx->warm_next < ctx->batch->nelts
               && !items[ctx->warm_next].missed)
        {
            ctx->warm_next++;
        }

        if (ctx->warm_next == ctx->batch->nelts) {
            return ngx_http_pred_warm_answer(r, ctx);
        }

        call = ngx_http_pred_batch_call(r, ctx, &ctx->warm_next, max,
                                        ngx_http_pred_warm_resume);
        if (call == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        n = call->nitems;

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "pred: warm: %ui keys to the model, %ui keys on",
                       n, ctx->batch->nelts - ctx->warm_next);

        rc = ngx_http_pred_call_start(r, call);

        if (rc == NGX_DONE) {
            return NGX_DONE;
        }

        if (rc != NGX_DECLINED) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_http_pred_warn_allowed(r->connection->log)) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "pred: warm: a call for %ui keys not made: %s", n,
                          call->reason);
        }
    }
}


/* a call ended (its keys that got no answer count as failed): the next */
static ngx_int_t
ngx_http_pred_warm_resume(ngx_http_request_t *r, ngx_http_pred_call_t *call)
{
    if ((call->late || call->reason)
        && ngx_http_pred_warn_allowed(r->connection->log))
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "pred: warm: the model call for %ui keys failed: %s",
                      call->nitems,
                      call->late ? "timed out" : call->reason);
    }

    return ngx_http_pred_warm_next(r, call->ctx);
}


/* {"keys":N,"held":H,"warmed":W,"not_found":U,"failed":F} */
static ngx_int_t
ngx_http_pred_warm_answer(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx)
{
    ngx_str_t                    body;
    ngx_uint_t                   i, held, warmed, unknown, failed;
    ngx_http_pred_batch_item_t  *items, *item;

    items = ctx->batch->elts;
    held = 0;
    warmed = 0;
    unknown = 0;
    failed = 0;

    for (i = 0; i < ctx->batch->nelts; i++) {
        item = &items[i];

        if (!item->missed) {
            held++;

        } else if (item->source != NGX_HTTP_PRED_SRC_UPSTREAM) {
            failed++;

        } else if (item->value.len) {
            warmed++;

        } else {
            unknown++;
        }
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "pred: admin: warm: %ui keys: %ui held, %ui warmed, %ui "
                  "not found, %ui failed", ctx->batch->nelts, held, warmed,
                  unknown, failed);

    body.data = ngx_pnalloc(r->pool, 5 * NGX_INT_T_LEN + 64);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.len = ngx_sprintf(body.data, "{\"keys\":%ui,\"held\":%ui,"
                           "\"warmed\":%ui,\"not_found\":%ui,"
                           "\"failed\":%ui}", ctx->batch->nelts, held,
                           warmed, unknown, failed)
               - body.data;

    /* a late call runs on, and fills the cache if its answer comes */
    ngx_http_pred_calls_detach(r, ctx);

    return ngx_http_pred_send(r, NGX_HTTP_OK, &body);
}


static ngx_int_t
ngx_http_pred_batch_fail(ngx_http_request_t *r, const char *reason)
{
    return ngx_http_pred_send_error(r, NGX_HTTP_BAD_REQUEST, "bad_keys",
                                    NULL, reason);
}


/*
 * Whether the key is its own JSON string contents (printable ASCII but for
 * " and \\), as keys nearly always are: copied, not escaped byte by byte.
 */
static ngx_uint_t
ngx_http_pred_batch_plain(ngx_str_t *key)
{
    u_char  *p, *last;

    for (p = key->data, last = key->data + key->len; p < last; p++) {
        if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\') {
            return 0;
        }
    }

    return 1;
}
