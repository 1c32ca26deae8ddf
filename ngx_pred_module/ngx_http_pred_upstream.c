/*
 * The miss path: the real-time model, reached through a call (see
 * ngx_http_pred_call.c) to a location the user writes with proxy_pass.
 *
 * One request per key asks the model, across all workers, through a
 * marker in the cache zone (single-flight); the others wait for its answer
 * in the cache.  The model's answer is validated, extracted and cached by
 * one step, whether a client still waits for it or not.
 */

#include "ngx_http_pred_module.h"
#include "pred_json.h"


#define NGX_HTTP_PRED_UP_VALUE      1
#define NGX_HTTP_PRED_UP_NOT_FOUND  2


/* how often a request waiting for another's model call looks at the zone */
#define NGX_HTTP_PRED_POLL_MS       5

/* fallback warnings a worker logs a second; an outage logs the rest as a
   count */
#define NGX_HTTP_PRED_WARN_PER_SEC  10


static ngx_http_pred_call_t *ngx_http_pred_upstream_call(
    ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    ngx_http_pred_call_kind_e kind, ngx_uint_t held,
    ngx_http_pred_cache_zone_t *z, ngx_msec_t token);
static void ngx_http_pred_upstream_done(ngx_http_request_t *sr,
    ngx_http_pred_call_t *call);
static ngx_int_t ngx_http_pred_upstream_resume(ngx_http_request_t *r,
    ngx_http_pred_call_t *call);
static void ngx_http_pred_upstream_poll(ngx_event_t *ev);
static void ngx_http_pred_upstream_wait_cleanup(void *data);


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
        ngx_http_pred_merge_error(cf, "pred_upstream_extract needs a JSON "
                                  "pointer such as \"/predictions/0\", "
                                  "not \"%V\"", &conf->upstream_extract);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * A miss: lead the model call for the key, or wait for the leader's
 * answer.  In async mode nobody waits: the fallback answers at once.
 */
ngx_int_t
ngx_http_pred_upstream_miss(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx)
{
    ngx_int_t                    rc;
    ngx_msec_t                   token, timeout;
    ngx_http_pred_call_t        *call;
    ngx_http_pred_cache_zone_t  *z;

    token = 0;
    z = ngx_http_pred_cache_zone_get(ctx->plcf);
    timeout = ngx_http_pred_miss_timeout(ctx, ctx->plcf->upstream_timeout);

    if (z) {
        if (ngx_http_pred_cache_lead(z, &ctx->key, timeout, &token)
            == NGX_BUSY)
        {
            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "pred: key \"%V\": another request leads the "
                           "model call, %s", &ctx->key,
                           ctx->plcf->miss_async ? "not waiting (async)"
                                                 : "waiting for it");

            if (ctx->plcf->miss_async) {
                return ngx_http_pred_fallback_answer(r, ctx, NULL);
            }

            return ngx_http_pred_upstream_wait(r, ctx, timeout);
        }
    }

    call = ngx_http_pred_upstream_call(r, ctx, NGX_HTTP_PRED_CALL_MODEL,
                                       !ctx->plcf->miss_async, z, token);
    if (call == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_pred_call_start(r, call);

    switch (rc) {

    case NGX_DONE:
        return NGX_DONE;

    case NGX_OK:
        /* async: the call fills the cache; the fallback answers now */
        return ngx_http_pred_fallback_answer(r, ctx, NULL);

    case NGX_DECLINED:
        return ngx_http_pred_fallback_answer(r, ctx, call->reason);
    }

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/*
 * Stale-while-revalidate: the expired value answers, and one request
 * across all workers refreshes it in the background.
 */
ngx_int_t
ngx_http_pred_upstream_refresh(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx)
{
    ngx_msec_t                   token;
    ngx_http_pred_call_t        *call;
    ngx_http_pred_cache_zone_t  *z;

    z = ngx_http_pred_cache_zone_get(ctx->plcf);

    if (z == NULL
        || ngx_http_pred_cache_lead(z, &ctx->key, ctx->plcf->upstream_timeout,
                                    &token)
           != NGX_OK)
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "pred: key \"%V\": a refresh is under way",
                       &ctx->key);
        return NGX_OK;
    }

    call = ngx_http_pred_upstream_call(r, ctx, NGX_HTTP_PRED_CALL_REFRESH, 0,
                                       z, token);
    if (call == NULL) {
        return NGX_ERROR;
    }

    /* shed: the marker is gone with the release, the value still answers */
    return ngx_http_pred_call_start(r, call) == NGX_ERROR ? NGX_ERROR
                                                           : NGX_OK;
}


/*
 * A model call for the key.  z: the call leads the key's model call across
 * workers, through the marker that token names; if no call can be made,
 * the marker is dropped so that nobody waits for it.
 */
static ngx_http_pred_call_t *
ngx_http_pred_upstream_call(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    ngx_http_pred_call_kind_e kind, ngx_uint_t held,
    ngx_http_pred_cache_zone_t *z, ngx_msec_t token)
{
    ngx_http_pred_call_t  *call;

    call = ngx_http_pred_call_create(r, ctx, kind);
    if (call == NULL) {
        if (z) {
            ngx_http_pred_cache_unlead(z, &ctx->key, token, 0);
        }

        return NULL;
    }

    call->leader = (z != NULL);
    call->lead_token = token;

    call->uri = &ctx->plcf->upstream_uri;
    call->timeout = ngx_http_pred_miss_timeout(ctx,
                                               ctx->plcf->upstream_timeout);
    call->held = held;

    /*
     * pred_budget, or a wait that ended early, bounds the client's wait,
     * the admission queue included
     */
    if (held && (ctx->plcf->budget || ctx->miss_until)) {
        call->until = ngx_current_msec + call->timeout;
    }

    /* a refresh's stale value answers: it comes last; an async miss keeps
       the location's priority, but does not wait in the queue */
    call->priority = (kind == NGX_HTTP_PRED_CALL_REFRESH)
                     ? NGX_HTTP_PRED_PRIO_LOW : ctx->plcf->priority;
    call->done = ngx_http_pred_upstream_done;
    call->resume = ngx_http_pred_upstream_resume;

    return call;
}


/*
 * The model's answer for one key, in time or not: a value is validated,
 * extracted and cached, a 404 cached as a negative answer.
 */
static void
ngx_http_pred_upstream_done(ngx_http_request_t *sr,
    ngx_http_pred_call_t *call)
{
    ngx_http_pred_ctx_t  *ctx;

    ctx = call->ctx;

    if (call->status == NGX_HTTP_NOT_FOUND) {
        call->result = NGX_HTTP_PRED_UP_NOT_FOUND;
        call->cached = (ngx_http_pred_upstream_store(ctx->plcf, &ctx->key,
                                                     NULL, sr->connection->log)
                        == NGX_OK);
        return;
    }

    if (ngx_http_pred_upstream_value(sr, call) != NGX_OK) {
        return;
    }

    call->result = NGX_HTTP_PRED_UP_VALUE;

    call->cached = (ngx_http_pred_upstream_store(ctx->plcf, &ctx->key,
                                                 &call->value,
                                                 sr->connection->log)
                    == NGX_OK);
}


/* the client waited for the call: its answer, or the fallback chain */
static ngx_int_t
ngx_http_pred_upstream_resume(ngx_http_request_t *r,
    ngx_http_pred_call_t *call)
{
    ngx_http_pred_ctx_t     *ctx;
    ngx_http_pred_answer_t   ans;

    ctx = call->ctx;

    if (call->late) {
        return ngx_http_pred_fallback_answer(r, ctx, "timed out");
    }

    switch (call->result) {

    case NGX_HTTP_PRED_UP_VALUE:
        ngx_http_pred_answer_value(&ans, NGX_HTTP_PRED_SRC_UPSTREAM,
                                   &call->value, 0);
        return ngx_http_pred_answer(r, ctx, &ans);

    case NGX_HTTP_PRED_UP_NOT_FOUND:
        ngx_http_pred_answer_error(&ans, NGX_HTTP_NOT_FOUND,
                                   NGX_HTTP_PRED_SRC_UPSTREAM, "not_found",
                                   NULL);
        return ngx_http_pred_answer(r, ctx, &ans);
    }

    return ngx_http_pred_fallback_answer(r, ctx, call->reason);
}


/*
 * A single key's value from a model's 2xx answer (a model call's or a
 * cascade stage's): checked, extracted, and copied to call->value.
 * NGX_DECLINED: there is none; call->fail and call->reason say why.
 */
ngx_int_t
ngx_http_pred_upstream_value(ngx_http_request_t *sr,
    ngx_http_pred_call_t *call)
{
    const char  *start, *stop;

    if (!ngx_http_pred_call_answered(call)
        || ngx_http_pred_upstream_extract(sr, call, &start, &stop) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (ngx_http_pred_json_copy(sr->pool, start, stop - start, &call->value)
        != NGX_OK)
    {
        call->reason = "out of memory";
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* who gave the answer, in a warning: the model, or a cascade's stage */
#define ngx_http_pred_upstream_noun(call)                                    \
    ((call)->kind == NGX_HTTP_PRED_CALL_STAGE ? "cascade stage" : "upstream")


/*
 * The one check of a model's answer, for one key or a batch: valid JSON
 * (checked without allocating), and the value at pred_upstream_extract.
 * NGX_DECLINED: call->fail and call->reason say why (and it is logged).
 */
ngx_int_t
ngx_http_pred_upstream_extract(ngx_http_request_t *sr,
    ngx_http_pred_call_t *call, const char **start, const char **stop)
{
    size_t                     where;
    ngx_str_t                 *body;
    ngx_http_pred_loc_conf_t  *plcf;

    body = &call->body;
    plcf = call->ctx->plcf;

    if (pred_json_validate((char *) body->data, body->len, &where) != 0) {
        call->fail = NGX_HTTP_PRED_FAIL_INVALID;
        call->reason = "invalid JSON";

        if (ngx_http_pred_warn_allowed(sr->connection->log)) {
            ngx_log_error(NGX_LOG_WARN, sr->connection->log, 0,
                          "pred: %s answer for %V is not valid JSON "
                          "at byte %uz", ngx_http_pred_upstream_noun(call),
                          ngx_http_pred_call_about(call), where);
        }

        return NGX_DECLINED;
    }

    *start = (char *) body->data;
    *stop = (char *) body->data + body->len;

    if (plcf->upstream_extract.len
        && pred_json_pointer((char *) body->data, body->len,
                             (char *) plcf->upstream_extract.data,
                             plcf->upstream_extract.len, start, stop)
           != 0)
    {
        call->fail = NGX_HTTP_PRED_FAIL_INVALID;
        call->reason = "nothing at the extract pointer";

        if (ngx_http_pred_warn_allowed(sr->connection->log)) {
            ngx_log_error(NGX_LOG_WARN, sr->connection->log, 0,
                          "pred: %s answer for %V has nothing at \"%V\"",
                          ngx_http_pred_upstream_noun(call),
                          ngx_http_pred_call_about(call),
                          &plcf->upstream_extract);
        }

        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * Caches a model's answer for a key: a value for the location's ttl, or
 * (value NULL) a negative answer for the zone's negative_ttl.  NGX_OK: a
 * fresh entry is there for the key's waiters.
 */
ngx_int_t
ngx_http_pred_upstream_store(ngx_http_pred_loc_conf_t *plcf, ngx_str_t *key,
    ngx_str_t *value, ngx_log_t *log)
{
    ngx_http_pred_cache_zone_t  *z;

    z = ngx_http_pred_cache_zone_get(plcf);

    if (z == NULL) {
        return NGX_DECLINED;
    }

    if (value == NULL) {
        if (z->negative_ttl == 0) {
            return NGX_DECLINED;
        }

        return ngx_http_pred_cache_put(z, key, NGX_HTTP_PRED_CACHE_NEGATIVE,
                                       NULL, z->negative_ttl, log);
    }

    return ngx_http_pred_cache_put(z, key, NGX_HTTP_PRED_CACHE_VALUE, value,
                                   ngx_http_pred_cache_ttl(plcf, z), log);
}


/*
 * Another request leads the key's model call or cascade: wait for its
 * answer, up to timeout.
 */
ngx_int_t
ngx_http_pred_upstream_wait(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    ngx_msec_t timeout)
{
    ngx_pool_cleanup_t  *cln;

    /* the request may go away before the timer fires */
    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_pred_upstream_wait_cleanup;
    cln->data = ctx;

    ctx->wait_until = ngx_current_msec + timeout;
    ctx->wait.handler = ngx_http_pred_upstream_poll;
    ctx->wait.data = ctx;
    ctx->wait.log = r->connection->log;

    ngx_add_timer(&ctx->wait, NGX_HTTP_PRED_POLL_MS);

    return ngx_http_pred_hold(r);
}


static void
ngx_http_pred_upstream_poll(ngx_event_t *ev)
{
    ngx_http_pred_ctx_t *ctx = ev->data;

    ngx_int_t                    rc;
    ngx_connection_t            *c;
    ngx_http_request_t          *r;
    ngx_http_pred_answer_t       ans;
    ngx_http_pred_cached_t       cached;
    ngx_http_pred_cache_zone_t  *z;

    r = ctx->request;
    c = r->connection;
    z = ngx_http_pred_cache_zone_get(ctx->plcf);

    rc = ngx_http_pred_cache_poll(r, z, &ctx->key, &cached);

    if (rc == NGX_AGAIN
        && (ngx_msec_int_t) (ctx->wait_until - ngx_current_msec) > 0)
    {
        ngx_add_timer(ev, NGX_HTTP_PRED_POLL_MS);
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "pred: key \"%V\": the wait ended: %s", &ctx->key,
                   rc == NGX_OK ? "the leader's answer is in the cache"
                   : rc == NGX_AGAIN ? "timed out"
                   : rc == NGX_ABORT ? "the leader was abandoned"
                                     : "the leader gave up");

    ngx_http_pred_unhold(r);

    /*
     * The leader's request ended before its call (its client went away)
     * while this request still has time: it leads now, once, within what
     * is left of its wait, so that a client that asks and leaves cannot
     * make every waiter fall back.  A leader whose call failed is not
     * asked again: its waiters fall back at once.
     */
    if (rc == NGX_ABORT && ctx->miss_until == 0
        && (ngx_msec_int_t) (ctx->wait_until - ngx_current_msec) > 0)
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "pred: key \"%V\": leading the miss in its place",
                       &ctx->key);

        ctx->miss_until = ctx->wait_until;

        rc = ctx->plcf->cascade ? ngx_http_pred_cascade_start(r, ctx, NULL)
                                : ngx_http_pred_upstream_miss(r, ctx);

        ngx_http_finalize_request(r, rc);
        ngx_http_run_posted_requests(c);
        return;
    }

    if (rc == NGX_OK && cached.kind == NGX_HTTP_PRED_CACHE_VALUE) {
        ngx_http_pred_answer_value(&ans, NGX_HTTP_PRED_SRC_CACHE,
                                   &cached.value, cached.age);
        rc = ngx_http_pred_answer(r, ctx, &ans);

    } else if (rc == NGX_OK && cached.kind == NGX_HTTP_PRED_CACHE_NEGATIVE) {
        ngx_http_pred_answer_error(&ans, NGX_HTTP_NOT_FOUND,
                                   NGX_HTTP_PRED_SRC_CACHE, "not_found",
                                   NULL);
        rc = ngx_http_pred_answer(r, ctx, &ans);

    } else {
        rc = ngx_http_pred_fallback_answer(r, ctx,
                 (rc == NGX_AGAIN) ? "timed out waiting for another "
                                     "request's model call"
                                   : "another request's model call failed");
    }

    ngx_http_finalize_request(r, rc);

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_pred_upstream_wait_cleanup(void *data)
{
    ngx_http_pred_ctx_t *ctx = data;

    if (ctx->wait.timer_set) {
        ngx_del_timer(&ctx->wait);
    }
}


/*
 * A miss's timeout: the configured one, or what is left of it when the
 * request leads after waiting for a leader that gave up (at least 1 ms).
 */
ngx_msec_t
ngx_http_pred_miss_timeout(ngx_http_pred_ctx_t *ctx, ngx_msec_t timeout)
{
    ngx_msec_int_t  left;

    if (ctx->miss_until == 0) {
        return timeout;
    }

    left = (ngx_msec_int_t) (ctx->miss_until - ngx_current_msec);

    return left <= 0 ? 1 : ngx_min((ngx_msec_t) left, timeout);
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
