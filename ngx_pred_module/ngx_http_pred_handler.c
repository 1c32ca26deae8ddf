/*
 * The "pred" content handler for one key: decode and validate the key,
 * one pass through the tiers, then the answer, or on a miss the model or
 * the cascade.
 */

#include "ngx_http_pred_module.h"
#include "pred_key.h"


/* a long key is already refused; this only keeps log lines short */
#define NGX_HTTP_PRED_LOG_KEY_MAX  128


static ngx_str_t  ngx_http_pred_methods = ngx_string("GET, HEAD");
static ngx_str_t  ngx_http_pred_methods_post = ngx_string("GET, HEAD, POST");


ngx_int_t
ngx_http_pred_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_str_t                  raw, key;
    const char                *reason;
    ngx_http_pred_ctx_t       *ctx;
    ngx_http_pred_lookup_t     res;
    ngx_http_pred_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_pred_module);

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))
        && !(plcf->batch && r->method == NGX_HTTP_POST))
    {
        return ngx_http_pred_send_not_allowed(r,
                   plcf->batch ? &ngx_http_pred_methods_post
                               : &ngx_http_pred_methods,
                   plcf->batch ? "only GET, HEAD and POST are allowed"
                               : "only GET and HEAD are allowed");
    }

    if (plcf->batch) {
        return ngx_http_pred_batch_handler(r);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_complex_value(r, plcf->key, &raw) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_pred_decode_key(r, &raw, &key, &reason);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_pred_send_error(r, NGX_HTTP_BAD_REQUEST, "bad_key",
                                        NULL, reason);
    }

    ctx = ngx_http_pred_ctx_create(r, &key);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_pred_lookup(r, plcf, &key, &res) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    switch (res.kind) {

    case NGX_HTTP_PRED_LOOKUP_ANSWER:
        /* a snapshot's value may be a cascade's stage 0 */
        if (plcf->cascade_snapshot && plcf->cascade
            && res.answer.source == NGX_HTTP_PRED_SRC_SNAPSHOT
            && res.answer.status == NGX_HTTP_OK)
        {
            ctx->stale = res.stale;
            return ngx_http_pred_cascade_start(r, ctx, &res.answer);
        }

        return ngx_http_pred_answer(r, ctx, &res.answer);

    case NGX_HTTP_PRED_LOOKUP_REFRESH:
        if (ngx_http_pred_upstream_refresh(r, ctx) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_pred_answer(r, ctx, &res.answer);

    case NGX_HTTP_PRED_LOOKUP_UNAVAILABLE:
        ngx_http_pred_answer_error(&res.answer, NGX_HTTP_SERVICE_UNAVAILABLE,
                                   NGX_HTTP_PRED_SRC_NONE,
                                   "snapshot_unavailable", NULL);
        res.answer.retry = 1;
        return ngx_http_pred_answer(r, ctx, &res.answer);

    case NGX_HTTP_PRED_LOOKUP_FAILED:
        ngx_http_pred_answer_error(&res.answer,
                                   NGX_HTTP_INTERNAL_SERVER_ERROR,
                                   NGX_HTTP_PRED_SRC_NONE, "internal_error",
                                   "snapshot read failed");
        return ngx_http_pred_answer(r, ctx, &res.answer);

    default: /* NGX_HTTP_PRED_LOOKUP_MISS */
        break;
    }

    if (!ngx_http_pred_has_model(plcf)) {
        ngx_http_pred_answer_error(&res.answer, NGX_HTTP_NOT_FOUND,
                                   NGX_HTTP_PRED_SRC_NONE, "not_found",
                                   NULL);
        return ngx_http_pred_answer(r, ctx, &res.answer);
    }

    ctx->stale = res.stale;

    /* each stage has its own breaker, consulted when it is asked */
    if (plcf->cascade) {
        return ngx_http_pred_cascade_start(r, ctx, NULL);
    }

    /*
     * An open breaker would shed the call: the fallback answers before a
     * single-flight marker is taken in the cache zone or a call is made.
     */
    if (ngx_http_pred_breaker_open(r)) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "pred: key \"%V\": the breaker is open, no call",
                       &key);
        ctx->shed = 1;
        return ngx_http_pred_fallback_answer(r, ctx,
                                             NGX_HTTP_PRED_SHED_BREAKER);
    }

    return ngx_http_pred_upstream_miss(r, ctx);
}


/* the module's context for a request; the only type in its slot */
ngx_http_pred_ctx_t *
ngx_http_pred_ctx_create(ngx_http_request_t *r, ngx_str_t *key)
{
    ngx_http_pred_ctx_t  *ctx;

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_pred_ctx_t));
    if (ctx == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     ctx->batch = NULL;
     *     ctx->calls = NULL;
     *     ctx->held = NULL;
     *     ctx->version = { 0, NULL };
     *     ctx->refined = 0;
     */

    ctx->request = r;
    ctx->plcf = ngx_http_get_module_loc_conf(r, ngx_http_pred_module);
    ctx->source = NGX_HTTP_PRED_SRC_NONE;
    ctx->up_time = -1;

    if (key) {
        ctx->key = *key;
    }

    ngx_http_set_ctx(r, ctx, ngx_http_pred_module);

    return ctx;
}


/*
 * Holds the request until something answers it: a call's resume handler,
 * the end of a wait.  The handler returns this.
 */
ngx_int_t
ngx_http_pred_hold(ngx_http_request_t *r)
{
    r->write_event_handler = ngx_http_request_empty_handler;

    /*
     * A client that goes away (a closed connection, an HTTP/2 stream
     * reset) ends the request now, as proxy_pass does, rather than at the
     * deadline: its queue place and its call are given back at once.
     */
    if (r == r->main) {
        r->read_event_handler = ngx_http_test_reading;
    }

    /* held until the answer is sent */
    r->main->count++;

    return NGX_DONE;
}


/*
 * The wait is over and the answer goes out: from now on a client that
 * reads it and leaves must not end a call that runs on (an async miss, a
 * refresh, a call past its deadline) before it fills the cache.
 */
void
ngx_http_pred_unhold(ngx_http_request_t *r)
{
    r->write_event_handler = ngx_http_request_empty_handler;

    if (r == r->main) {
        r->read_event_handler = ngx_http_block_reading;
    }
}


/*
 * Decodes and validates a raw key into the pool.  NGX_DECLINED: the key is
 * bad (logged at info, the client's fault), *reason says why.
 */
ngx_int_t
ngx_http_pred_decode_key(ngx_http_request_t *r, ngx_str_t *raw,
    ngx_str_t *key, const char **reason)
{
    size_t         log_len;
    pred_key_rc_t  krc;

    /* decoding never grows a key; +1 keeps an empty key's buffer valid */
    key->data = ngx_pnalloc(r->pool, raw->len + 1);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    krc = pred_key_decode(raw->data, raw->len, key->data, &key->len);

    if (krc == PRED_KEY_OK) {
        return NGX_OK;
    }

    log_len = ngx_min(raw->len, NGX_HTTP_PRED_LOG_KEY_MAX);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "pred: bad key \"%*s%s\": %s", log_len, raw->data,
                  raw->len > log_len ? "..." : "", pred_key_strerror(krc));

    *reason = pred_key_strerror(krc);

    return NGX_DECLINED;
}
