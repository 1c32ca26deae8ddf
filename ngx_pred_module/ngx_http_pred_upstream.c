/*
 * The miss path: the real-time model, reached through a subrequest to a
 * location the user writes with proxy_pass, and the fallback chain.
 *
 * The subrequest runs in the background: it is not part of the parent's
 * output, so when the model misses the deadline the parent answers from the
 * fallback chain at once while the model's answer, if it comes, still fills
 * the cache.  The post-subrequest handler only records the result and posts
 * the parent, as auth_request does.
 *
 * The answer is captured by this file's own header and body filters, not
 * with NGX_HTTP_SUBREQUEST_IN_MEMORY: an answer over that buffer is an
 * NGX_ERROR, on which nginx closes the client's connection; here it is just
 * an answer over max_size, and the fallback chain replies.
 */

#include <jansson.h>

#include "ngx_http_pred_module.h"
#include "pred_json.h"


#define NGX_HTTP_PRED_UP_VALUE      1
#define NGX_HTTP_PRED_UP_NOT_FOUND  2
#define NGX_HTTP_PRED_UP_FAILED     3


/* how often a request waiting for another's model call looks at the zone */
#define NGX_HTTP_PRED_POLL_MS       5

/* fallback warnings a worker logs a second; an outage logs the rest as a
   count */
#define NGX_HTTP_PRED_WARN_PER_SEC  10


static ngx_int_t ngx_http_pred_capture_header(ngx_http_request_t *r);
static ngx_int_t ngx_http_pred_capture_body(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_http_pred_ctx_t *ngx_http_pred_capturing(ngx_http_request_t *r);
static ngx_int_t ngx_http_pred_upstream_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static ngx_int_t ngx_http_pred_upstream_status(ngx_http_request_t *sr,
    ngx_http_pred_ctx_t *ctx, ngx_int_t rc);
static void ngx_http_pred_upstream_result(ngx_http_request_t *sr,
    ngx_http_pred_ctx_t *ctx, ngx_int_t rc);
static ngx_int_t ngx_http_pred_upstream_wait(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx);
static void ngx_http_pred_upstream_poll(ngx_event_t *ev);
static void ngx_http_pred_upstream_unlead(ngx_http_pred_ctx_t *ctx);
static void ngx_http_pred_upstream_resume(ngx_http_request_t *r);
static void ngx_http_pred_upstream_timeout(ngx_event_t *ev);
static void ngx_http_pred_upstream_cleanup(void *data);
static ngx_int_t ngx_http_pred_upstream_answer(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;

static ngx_str_t  ngx_http_pred_upstream_source = ngx_string("upstream");
static ngx_str_t  ngx_http_pred_cache_source = ngx_string("cache");
static ngx_str_t  ngx_http_pred_stale_source = ngx_string("stale");
static ngx_str_t  ngx_http_pred_default_source = ngx_string("default");
static ngx_str_t  ngx_http_pred_error_source = ngx_string("error");


/* "pred_upstream URI [timeout=T] [max_size=SIZE]" */
char *
ngx_http_pred_upstream(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pred_loc_conf_t *plcf = conf;

    ngx_str_t                   *value;
    ngx_http_pred_conf_param_t   params[] = {
        { "timeout=", 'm', 0, &plcf->upstream_timeout },
        { "max_size=", 'z', 0, &plcf->upstream_max_size },
        { NULL, 0, 0, NULL }
    };

    if (plcf->upstream_uri.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].data[0] != '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "pred_upstream needs a URI of a location, such "
                           "as \"/_model\", not \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    plcf->upstream_uri = value[1];

    if (ngx_http_pred_conf_params(cf, 2, params) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* "pred_fallback stale | default=JSON | status=404|503 ..." */
char *
ngx_http_pred_fallback(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pred_loc_conf_t *plcf = conf;

    json_t                    *json;
    ngx_str_t                 *value;
    ngx_uint_t                 i;
    json_error_t               jerr;
    ngx_http_pred_fallback_t  *fb;

    if (plcf->fallback != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    plcf->fallback = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                      sizeof(ngx_http_pred_fallback_t));
    if (plcf->fallback == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        fb = ngx_array_push(plcf->fallback);
        if (fb == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(fb, sizeof(ngx_http_pred_fallback_t));

        if (ngx_strcmp(value[i].data, "stale") == 0) {
            fb->type = NGX_HTTP_PRED_FB_STALE;
            continue;
        }

        if (ngx_strncmp(value[i].data, "default=", 8) == 0) {
            fb->type = NGX_HTTP_PRED_FB_DEFAULT;

            json = json_loadb((char *) value[i].data + 8, value[i].len - 8,
                              JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                              &jerr);
            if (json == NULL) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid JSON in \"%V\": %s", &value[i],
                                   jerr.text);
                return NGX_CONF_ERROR;
            }

            json_decref(json);

            fb->value.data = ngx_pnalloc(cf->pool, value[i].len - 8);
            if (fb->value.data == NULL) {
                return NGX_CONF_ERROR;
            }

            fb->value.len = pred_json_compact((char *) value[i].data + 8,
                                              value[i].len - 8,
                                              (char *) fb->value.data);
            continue;
        }

        if (ngx_strcmp(value[i].data, "status=404") == 0) {
            fb->type = NGX_HTTP_PRED_FB_STATUS;
            fb->status = NGX_HTTP_NOT_FOUND;
            continue;
        }

        if (ngx_strcmp(value[i].data, "status=503") == 0) {
            fb->type = NGX_HTTP_PRED_FB_STATUS;
            fb->status = NGX_HTTP_SERVICE_UNAVAILABLE;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_pred_upstream_merge(ngx_conf_t *cf, ngx_http_pred_loc_conf_t *prev,
    ngx_http_pred_loc_conf_t *conf)
{
    u_char  *p;

    ngx_conf_merge_str_value(conf->upstream_uri, prev->upstream_uri, "");
    ngx_conf_merge_msec_value(conf->upstream_timeout, prev->upstream_timeout,
                              100);
    ngx_conf_merge_size_value(conf->upstream_max_size,
                              prev->upstream_max_size, 256 * 1024);
    ngx_conf_merge_str_value(conf->upstream_extract,
                             prev->upstream_extract, "");
    ngx_conf_merge_ptr_value(conf->fallback, prev->fallback, NULL);

    p = conf->upstream_extract.data;

    if (conf->upstream_extract.len && p[0] != '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "pred_upstream_extract needs a JSON pointer "
                           "such as \"/predictions/0\", not \"%V\"",
                           &conf->upstream_extract);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * A miss: one request per key asks the model, across all workers, and the
 * others wait for its answer in the cache.  In async mode nobody waits.
 */
ngx_int_t
ngx_http_pred_upstream_miss(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx)
{
    ngx_int_t                    rc;
    ngx_http_pred_cache_zone_t  *z;

    z = ngx_http_pred_cache_zone_get(ctx->plcf);

    if (z) {
        rc = ngx_http_pred_cache_lead(z, &ctx->key,
                                      ctx->plcf->upstream_timeout);

        if (rc == NGX_BUSY) {
            if (ctx->plcf->miss_async) {
                return ngx_http_pred_fallback_answer(r, ctx, NULL);
            }

            return ngx_http_pred_upstream_wait(r, ctx);
        }

        ctx->leader = 1;
    }

    /* the one request that would call the model: may it, now? */
    switch (ngx_http_pred_shed_admit(r, ctx)) {

    case NGX_OK:
        return ngx_http_pred_upstream_admitted(r, ctx);

    case NGX_AGAIN:
        return NGX_DONE;

    case NGX_DECLINED:
        ngx_http_pred_upstream_unlead(ctx);
        return ngx_http_pred_fallback_answer(r, ctx, ctx->reason);
    }

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/* the model call of an admitted miss */
ngx_int_t
ngx_http_pred_upstream_admitted(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx)
{
    if (ngx_http_pred_upstream_call(r, ctx, &ctx->plcf->upstream_uri)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->plcf->miss_async) {
        ngx_http_pred_upstream_detach(r, ctx);
        return ngx_http_pred_fallback_answer(r, ctx, NULL);
    }

    return ngx_http_pred_upstream_hold(r, ctx, ngx_http_pred_upstream_timeout,
                                       ctx->plcf->upstream_timeout);
}


/* one model call for all the keys of a batch that every tier missed */
ngx_int_t
ngx_http_pred_upstream_batch(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx)
{
    if (ngx_http_pred_upstream_call(r, ctx, &ctx->plcf->upstream_uri)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_pred_upstream_hold(r, ctx, ngx_http_pred_upstream_timeout,
                                       ctx->plcf->upstream_timeout);
}


/*
 * Starts the model call in the background.  Nothing waits for it unless
 * the caller holds the request; its answer goes to the cache either way.
 */
ngx_int_t
ngx_http_pred_upstream_call(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    ngx_str_t *uri)
{
    ngx_http_request_t          *sr;
    ngx_http_post_subrequest_t  *ps;

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_pred_upstream_done;
    ps->data = ctx;

    /* the reranker gets the client's arguments: $arg_device and the like */
    if (ngx_http_subrequest(r, uri, ctx->refining ? &r->args : NULL, &sr, ps,
                            NGX_HTTP_SUBREQUEST_BACKGROUND)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->sr = sr;
    ctx->request = r;
    ctx->started = ngx_current_msec;
    ctx->fail = 0;
    ctx->done = 0;

    ngx_http_pred_metrics_upstream_start(ctx);

    return NGX_OK;
}


/*
 * The answer goes out while ctx's model call runs on.  nginx holds a
 * request until its subrequests end, and with it the client's next request
 * on a kept-alive connection, which would wait for a call the answer gave
 * up on: the connection closes after this answer instead.
 */
void
ngx_http_pred_upstream_detach(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx)
{
    if (ctx->sr && !ctx->done) {
        r->main->keepalive = 0;
    }
}


/* holds the request until handler answers it; the handler returns this */
ngx_int_t
ngx_http_pred_upstream_hold(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    ngx_event_handler_pt handler, ngx_msec_t timer)
{
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the request may go away before the timer fires */
    cln->handler = ngx_http_pred_upstream_cleanup;
    cln->data = ctx;

    ctx->request = r;
    ctx->waiting = 1;

    ctx->timeout.handler = handler;
    ctx->timeout.data = ctx;
    ctx->timeout.log = r->connection->log;

    ngx_add_timer(&ctx->timeout, timer);

    r->write_event_handler = ngx_http_request_empty_handler;

    /* held until the answer or the fallback is sent */
    r->main->count++;

    return NGX_DONE;
}


static ngx_int_t
ngx_http_pred_upstream_wait(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx)
{
    ctx->deadline = ngx_current_msec + ctx->plcf->upstream_timeout;

    return ngx_http_pred_upstream_hold(r, ctx, ngx_http_pred_upstream_poll,
                                       NGX_HTTP_PRED_POLL_MS);
}


static void
ngx_http_pred_upstream_poll(ngx_event_t *ev)
{
    ngx_http_pred_ctx_t *ctx = ev->data;

    ngx_int_t                    rc;
    ngx_connection_t            *c;
    ngx_http_request_t          *r;
    ngx_http_pred_cached_t       cached;
    ngx_http_pred_cache_zone_t  *z;

    r = ctx->request;
    c = r->connection;
    z = ngx_http_pred_cache_zone_get(ctx->plcf);

    rc = ngx_http_pred_cache_poll(r, z, &ctx->key, &cached);

    if (rc == NGX_AGAIN
        && (ngx_msec_int_t) (ctx->deadline - ngx_current_msec) > 0)
    {
        ngx_add_timer(ev, NGX_HTTP_PRED_POLL_MS);
        return;
    }

    ctx->waiting = 0;

    if (rc == NGX_OK && cached.kind == NGX_HTTP_PRED_CACHE_VALUE) {
        rc = ngx_http_pred_send_value(r, &ngx_http_pred_cache_source, NULL,
                                      cached.age, 0, &cached.value);

    } else if (rc == NGX_OK && cached.kind == NGX_HTTP_PRED_CACHE_NEGATIVE) {
        rc = ngx_http_pred_add_header(r, &ngx_http_pred_h_source,
                                      &ngx_http_pred_cache_source);
        if (rc == NGX_OK) {
            rc = ngx_http_pred_send_error(r, NGX_HTTP_NOT_FOUND,
                                          "not_found", &ctx->key, NULL);
        }

    } else {
        rc = ngx_http_pred_fallback_answer(r, ctx,
                 (rc == NGX_AGAIN) ? "timed out waiting for another "
                                     "request's model call"
                                   : "another request's model call failed");
    }

    ngx_http_finalize_request(r, rc);

    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_pred_upstream_done(ngx_http_request_t *sr, void *data, ngx_int_t rc)
{
    ngx_http_pred_ctx_t *ctx = data;

    if (ctx->done) {
        return rc;
    }

    ctx->done = 1;

    if (!ctx->refining) {
        ctx->up_time = (ngx_msec_int_t) (ngx_current_msec - ctx->started);
    }

    if (ctx->refining) {
        if (ngx_http_pred_upstream_status(sr, ctx, rc) == NGX_OK) {
            ngx_http_pred_refine_result(sr, ctx);
        }

    } else if (ctx->batch) {
        if (ngx_http_pred_upstream_status(sr, ctx, rc) == NGX_OK) {
            ngx_http_pred_batch_result(sr, ctx, &ctx->body);
        }

    } else {
        ngx_http_pred_upstream_result(sr, ctx, rc);
    }

    ngx_http_pred_metrics_upstream_done(ctx);

    if (!ctx->refining) {
        ngx_http_pred_shed_done(ctx->request, ctx, ctx->fail != 0);
    }

    if (ctx->waiting) {
        ctx->request->write_event_handler = ngx_http_pred_upstream_resume;
        ngx_http_post_request(ctx->request, NULL);
    }

    /*
     * The model's failure is recorded and answered by the fallback chain;
     * passed on, an error would make nginx terminate the client's request.
     */
    return sr->connection->error ? rc : NGX_OK;
}


/*
 * The model's status; NGX_OK for a 2xx answer that fits max_size, else
 * ctx->reason says what went wrong (a 404 is NGX_DECLINED, no reason).
 */
static ngx_int_t
ngx_http_pred_upstream_status(ngx_http_request_t *sr,
    ngx_http_pred_ctx_t *ctx, ngx_int_t rc)
{
    ngx_uint_t  status;

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        status = rc;

    } else if (rc == NGX_ERROR) {
        status = NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else {
        status = sr->headers_out.status;
    }

    ctx->status = status;

    if (status == NGX_HTTP_NOT_FOUND) {
        ctx->reason = ctx->batch ? "the model answered 404" : NULL;
        return NGX_DECLINED;
    }

    if (status < 200 || status > 299) {
        ctx->reason = (status == NGX_HTTP_BAD_GATEWAY)
                      ? "connect or read failed (502)"
                      : (status == NGX_HTTP_GATEWAY_TIME_OUT)
                        ? "timed out in the proxy (504)" : "error status";
        ctx->fail = (status == NGX_HTTP_BAD_GATEWAY)
                    ? NGX_HTTP_PRED_FAIL_CONNECT
                    : (status == NGX_HTTP_GATEWAY_TIME_OUT)
                      ? NGX_HTTP_PRED_FAIL_TIMEOUT : NGX_HTTP_PRED_FAIL_5XX;
        return NGX_ERROR;
    }

    if (ctx->too_big) {
        ctx->fail = NGX_HTTP_PRED_FAIL_TOO_BIG;

        if (ngx_http_pred_warn_allowed(sr->connection->log)) {
            ngx_log_error(NGX_LOG_WARN, sr->connection->log, 0,
                          "pred: upstream answer for key \"%V\" is over "
                          "max_size %uz", &ctx->key,
                          ctx->plcf->upstream_max_size);
        }
        ctx->reason = "answer over max_size";
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* classifies the model's answer and caches what is worth caching */
static void
ngx_http_pred_upstream_result(ngx_http_request_t *sr,
    ngx_http_pred_ctx_t *ctx, ngx_int_t rc)
{
    size_t                       where;
    ngx_str_t                    body;
    ngx_int_t                    st;
    const char                  *start, *stop;
    ngx_http_pred_cache_zone_t  *z;

    ctx->result = NGX_HTTP_PRED_UP_FAILED;

    st = ngx_http_pred_upstream_status(sr, ctx, rc);

    z = ngx_http_pred_cache_zone_get(ctx->plcf);

    if (st == NGX_DECLINED) {
        ctx->result = NGX_HTTP_PRED_UP_NOT_FOUND;

        if (z == NULL || z->negative_ttl == 0
            || ngx_http_pred_cache_put(z, &ctx->key,
                                       NGX_HTTP_PRED_CACHE_NEGATIVE, NULL,
                                       z->negative_ttl, sr->connection->log)
               != NGX_OK)
        {
            ngx_http_pred_upstream_unlead(ctx);
        }

        return;
    }

    if (st != NGX_OK) {
        ngx_http_pred_upstream_unlead(ctx);
        return;
    }

    body = ctx->body;

    /* every answer is checked, so the check allocates nothing */
    if (pred_json_validate((char *) body.data, body.len, &where) != 0) {
        ctx->fail = NGX_HTTP_PRED_FAIL_INVALID;
        ngx_http_pred_upstream_unlead(ctx);

        if (ngx_http_pred_warn_allowed(sr->connection->log)) {
            ngx_log_error(NGX_LOG_WARN, sr->connection->log, 0,
                          "pred: upstream answer for key \"%V\" is not "
                          "valid JSON at byte %uz", &ctx->key, where);
        }
        ctx->reason = "invalid JSON";
        return;
    }

    start = (char *) body.data;
    stop = (char *) body.data + body.len;

    if (ctx->plcf->upstream_extract.len
        && pred_json_pointer((char *) body.data, body.len,
                             (char *) ctx->plcf->upstream_extract.data,
                             ctx->plcf->upstream_extract.len, &start, &stop)
           != 0)
    {
        ctx->fail = NGX_HTTP_PRED_FAIL_INVALID;
        ngx_http_pred_upstream_unlead(ctx);

        if (ngx_http_pred_warn_allowed(sr->connection->log)) {
            ngx_log_error(NGX_LOG_WARN, sr->connection->log, 0,
                          "pred: upstream answer for key \"%V\" has nothing "
                          "at \"%V\"", &ctx->key,
                          &ctx->plcf->upstream_extract);
        }
        ctx->reason = "nothing at the extract pointer";
        return;
    }

    ctx->value.data = ngx_pnalloc(sr->pool, stop - start);
    if (ctx->value.data == NULL) {
        ngx_http_pred_upstream_unlead(ctx);
        ctx->reason = "out of memory";
        return;
    }

    ctx->value.len = pred_json_compact(start, stop - start,
                                       (char *) ctx->value.data);
    ctx->result = NGX_HTTP_PRED_UP_VALUE;

    if (z == NULL
        || ngx_http_pred_cache_put(z, &ctx->key, NGX_HTTP_PRED_CACHE_VALUE,
                                   &ctx->value,
                                   ctx->plcf->cache_ttl != NGX_CONF_UNSET
                                   ? ctx->plcf->cache_ttl : z->ttl,
                                   sr->connection->log)
           != NGX_OK)
    {
        ngx_http_pred_upstream_unlead(ctx);
    }
}


/* a leader that leaves no fresh entry must let its waiters go */
static void
ngx_http_pred_upstream_unlead(ngx_http_pred_ctx_t *ctx)
{
    ngx_http_pred_cache_zone_t  *z;

    z = ngx_http_pred_cache_zone_get(ctx->plcf);

    if (ctx->leader && z) {
        ngx_http_pred_cache_unlead(z, &ctx->key);
    }
}


static void
ngx_http_pred_upstream_resume(ngx_http_request_t *r)
{
    ngx_http_pred_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_pred_module);

    if (ctx == NULL || !ctx->waiting) {
        return;
    }

    ctx->waiting = 0;

    if (ctx->timeout.timer_set) {
        ngx_del_timer(&ctx->timeout);
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    if (ctx->refining) {
        ngx_http_finalize_request(r, ngx_http_pred_refine_resume(r, ctx));
        return;
    }

    ngx_http_finalize_request(r, ctx->batch
                                 ? ngx_http_pred_batch_answer(r, ctx,
                                                              ctx->reason)
                                 : ngx_http_pred_upstream_answer(r, ctx));
}


static void
ngx_http_pred_upstream_timeout(ngx_event_t *ev)
{
    ngx_http_pred_ctx_t *ctx = ev->data;

    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ctx->request;
    c = r->connection;

    if (!ctx->waiting) {
        return;
    }

    ctx->waiting = 0;
    ctx->reason = "timed out";

    ngx_http_pred_metrics_deadline(ctx);
    ngx_http_pred_upstream_detach(r, ctx);

    ngx_http_finalize_request(r, ctx->batch
                                 ? ngx_http_pred_batch_answer(r, ctx,
                                                              ctx->reason)
                                 : ngx_http_pred_fallback_answer(r, ctx,
                                                                 ctx->reason));

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_pred_upstream_cleanup(void *data)
{
    ngx_http_pred_ctx_t *ctx = data;

    if (ctx->timeout.timer_set) {
        ngx_del_timer(&ctx->timeout);
    }

    ngx_http_pred_shed_cleanup(ctx);
}


static ngx_int_t
ngx_http_pred_upstream_answer(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx)
{
    switch (ctx->result) {

    case NGX_HTTP_PRED_UP_VALUE:
        return ngx_http_pred_send_value(r, &ngx_http_pred_upstream_source,
                                        NULL, 0, 0, &ctx->value);

    case NGX_HTTP_PRED_UP_NOT_FOUND:
        if (ngx_http_pred_add_header(r, &ngx_http_pred_h_source,
                                     &ngx_http_pred_upstream_source)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_pred_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        &ctx->key, NULL);
    }

    return ngx_http_pred_fallback_answer(r, ctx, ctx->reason);
}


/*
 * Walks the location's fallback chain; "status=503" ends it when nothing
 * else answers.  Every answer names its fallback in X-Pred-Source.
 */
ngx_int_t
ngx_http_pred_fallback_answer(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    const char *why)
{
    ngx_uint_t                 i, n;
    ngx_http_pred_hit_t        hit;
    ngx_http_pred_fallback_t  *fbs, *fb, last;

    n = ctx->plcf->fallback ? ctx->plcf->fallback->nelts : 0;
    fbs = n ? ctx->plcf->fallback->elts : NULL;

    last.type = NGX_HTTP_PRED_FB_STATUS;
    last.status = NGX_HTTP_SERVICE_UNAVAILABLE;

    for (i = 0; i <= n; i++) {

        fb = (i == n) ? &last : &fbs[i];

        switch (fb->type) {

        case NGX_HTTP_PRED_FB_STALE:

            /* an expired cache value, else the snapshot's, even if masked */
            if (!ctx->has_stale && ctx->plcf->snapshot
                && ngx_http_pred_snapshot_lookup(r, ctx->plcf->snapshot,
                                                 ctx->plcf->max_age,
                                                 &ctx->key, &hit)
                   == NGX_OK)
            {
                ctx->stale = hit.value;
                ctx->stale_age = hit.age;
                ctx->has_stale = 1;
            }

            if (!ctx->has_stale) {
                continue;
            }

            if (why && ngx_http_pred_warn_allowed(r->connection->log)) {
                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "pred: upstream for key \"%V\" failed: %s; "
                              "answering with the stale value", &ctx->key,
                              why);
            }

            return ngx_http_pred_send_value(r, &ngx_http_pred_stale_source,
                                            NULL, ctx->stale_age, 1,
                                            &ctx->stale);

        case NGX_HTTP_PRED_FB_DEFAULT:
            if (why && ngx_http_pred_warn_allowed(r->connection->log)) {
                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "pred: upstream for key \"%V\" failed: %s; "
                              "answering with the default", &ctx->key, why);
            }

            return ngx_http_pred_send_value(r, &ngx_http_pred_default_source,
                                            NULL, 0, 0, &fb->value);

        default: /* NGX_HTTP_PRED_FB_STATUS */
            if (why && ngx_http_pred_warn_allowed(r->connection->log)) {
                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "pred: upstream for key \"%V\" failed: %s; "
                              "answering %ui", &ctx->key, why, fb->status);
            }

            if (ngx_http_pred_add_header(r, &ngx_http_pred_h_source,
                                         &ngx_http_pred_error_source)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            if (fb->status == NGX_HTTP_NOT_FOUND) {
                return ngx_http_pred_send_error(r, NGX_HTTP_NOT_FOUND,
                                                "not_found", &ctx->key,
                                                NULL);
            }

            if (ngx_http_pred_add_header(r, &ngx_http_pred_h_retry,
                                         &ngx_http_pred_one)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return ngx_http_pred_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                            "upstream_unavailable",
                                            &ctx->key,
                                            why ? why : "asked in the "
                                                        "background");
        }
    }

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


ngx_int_t
ngx_http_pred_upstream_init_filters(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_pred_capture_header;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_pred_capture_body;

    return NGX_OK;
}


/* the context of the model call whose output r is, or NULL */
static ngx_http_pred_ctx_t *
ngx_http_pred_capturing(ngx_http_request_t *r)
{
    ngx_http_pred_ctx_t  *ctx;

    if (r->parent == NULL) {
        return NULL;
    }

    /* the parent may itself be a subrequest: SSI, echo_location, ... */
    ctx = ngx_http_get_module_ctx(r->parent, ngx_http_pred_module);

    return (ctx && ctx->sr == r) ? ctx : NULL;
}


static ngx_int_t
ngx_http_pred_capture_header(ngx_http_request_t *r)
{
    if (ngx_http_pred_capturing(r)) {
        return NGX_OK;
    }

    return ngx_http_next_header_filter(r);
}


/* keeps the model's answer, up to max_size, and sends nothing on */
static ngx_int_t
ngx_http_pred_capture_body(ngx_http_request_t *r, ngx_chain_t *in)
{
    off_t                 len;
    u_char               *p;
    size_t                max;
    ssize_t               n;
    ngx_buf_t            *b;
    ngx_chain_t          *cl;
    ngx_http_pred_ctx_t  *ctx;

    ctx = ngx_http_pred_capturing(r);

    if (ctx == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    max = ctx->plcf->upstream_max_size;

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        len = b->in_file ? b->file_last - b->file_pos : b->last - b->pos;

        if (len && !ctx->too_big) {
            if (ctx->body.len + len > max) {
                ctx->too_big = 1;

            } else {
                if (ctx->body.data == NULL) {
                    ctx->body.data = ngx_pnalloc(r->pool, max);
                    if (ctx->body.data == NULL) {
                        return NGX_ERROR;
                    }
                }

                p = ctx->body.data + ctx->body.len;

                if (b->in_file) {
                    n = ngx_read_file(b->file, p, (size_t) len,
                                      b->file_pos);
                    if (n != len) {
                        return NGX_ERROR;
                    }

                } else {
                    ngx_memcpy(p, b->pos, (size_t) len);
                }

                ctx->body.len += (size_t) len;
            }
        }

        b->pos = b->last;
        b->file_pos = b->file_last;
    }

    return NGX_OK;
}


/*
 * The budget of fallback warnings: NGX_HTTP_PRED_WARN_PER_SEC a second per
 * worker; what is over it is counted and reported with the next second's
 * first warning, so a model outage cannot flood the log.
 */
ngx_uint_t
ngx_http_pred_warn_allowed(ngx_log_t *log)
{
    static time_t      second;
    static ngx_uint_t  logged, suppressed;

    if (ngx_time() != second) {
        if (suppressed) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "pred: %ui more fallback warnings suppressed in "
                          "the previous second", suppressed);
        }

        second = ngx_time();
        logged = 0;
        suppressed = 0;
    }

    if (logged < NGX_HTTP_PRED_WARN_PER_SEC) {
        logged++;
        return 1;
    }

    suppressed++;

    return 0;
}
