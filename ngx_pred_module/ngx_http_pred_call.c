/*
 * Outgoing calls: the model call of a miss, a stale-while-revalidate
 * refresh, a batch's model call, the reranker call, and each stage of a
 * cascade.
 *
 * Each call has its own context (ngx_http_pred_call_t), made for it and
 * never reused: its kind, its deadline, what its answer was, and two
 * handlers: done, run in the subrequest when the answer is in (in time or
 * not), and resume, run in the request that waited for it when it ends or
 * its deadline passes.  Every call goes through admission.  What must run
 * exactly once (the in-flight gauge, the breaker's verdict or probe slot,
 * the admission queue, the single-flight marker, the timer) is in
 * ngx_http_pred_call_release(), which the end of the call runs, and which a
 * pool cleanup runs when the request is terminated first: nginx never runs
 * the post-subrequest handler of a terminated request.
 *
 * The subrequest runs in the background: it is not part of the parent's
 * output, so when the call misses its deadline the parent answers at once
 * while the call's answer, if it comes, is still put to use (a model's
 * answer fills the cache; a late reranker's is dropped).  Its answer is
 * captured by this file's header and body filters, not with
 * NGX_HTTP_SUBREQUEST_IN_MEMORY: an answer over that buffer is an
 * NGX_ERROR, on which nginx closes the client's connection; here it is an
 * answer over max_size, and the request answers without it.
 */

#include "ngx_http_pred_module.h"


static void ngx_http_pred_call_shed(ngx_http_pred_call_t *call);
static ngx_int_t ngx_http_pred_call_launch(ngx_http_pred_call_t *call);
static ngx_int_t ngx_http_pred_call_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc);
static void ngx_http_pred_call_status(ngx_http_request_t *sr,
    ngx_http_pred_call_t *call, ngx_int_t rc);
static void ngx_http_pred_call_resume(ngx_http_pred_call_t *call);
static void ngx_http_pred_call_posted(ngx_http_request_t *r);
static void ngx_http_pred_call_answer(ngx_http_pred_call_t *call);
static void ngx_http_pred_call_deadline(ngx_event_t *ev);
static void ngx_http_pred_call_release(ngx_http_pred_call_t *call);
static void ngx_http_pred_call_cleanup(void *data);
static ngx_int_t ngx_http_pred_capture_header(ngx_http_request_t *r);
static ngx_int_t ngx_http_pred_capture_body(ngx_http_request_t *r,
    ngx_chain_t *in);


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


static const char  *ngx_http_pred_call_kinds[] = {
    "model", "refresh", "batch", "rerank", "stage"
};


/*
 * A new call of the request's, in its pool, with the pool cleanup that
 * releases it if the request ends before the call does.  The caller sets
 * what the kind needs (uri, timeout, priority, held, leader, handlers).
 */
ngx_http_pred_call_t *
ngx_http_pred_call_create(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    ngx_http_pred_call_kind_e kind)
{
    ngx_pool_cleanup_t    *cln;
    ngx_http_pred_call_t  *call;

    call = ngx_pcalloc(r->pool, sizeof(ngx_http_pred_call_t));
    if (call == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_pred_call_cleanup;
    cln->data = call;

    call->kind = kind;
    call->state = NGX_HTTP_PRED_CALL_NEW;
    call->ctx = ctx;
    call->timer.data = call;
    call->timer.log = r->connection->log;

    call->next = ctx->calls;
    ctx->calls = call;

    return call;
}


/*
 * Admits and starts the call.  NGX_DONE: the request waits for it (held:
 * the call runs, or waits in the admission queue); NGX_OK: it runs in the
 * background; NGX_DECLINED: admission said no (call->reason says why, and
 * everything it held is released); NGX_ERROR.
 */
ngx_int_t
ngx_http_pred_call_start(ngx_http_request_t *r, ngx_http_pred_call_t *call)
{
    ngx_int_t             rc;
    ngx_http_pred_ctx_t  *ctx;

    ctx = call->ctx;

    rc = ngx_http_pred_admit(r, call);

    if (rc == NGX_DECLINED) {
        ngx_http_pred_call_shed(call);
        return NGX_DECLINED;
    }

    if (rc == NGX_ERROR) {
        ngx_http_pred_call_release(call);
        return NGX_ERROR;
    }

    if (rc == NGX_AGAIN) {
        /* queued: admission's timer runs ngx_http_pred_call_admitted() */
        call->state = NGX_HTTP_PRED_CALL_QUEUED;

    } else if (ngx_http_pred_call_launch(call) != NGX_OK) {
        ngx_http_pred_call_release(call);
        return NGX_ERROR;
    }

    if (!call->held) {
        return NGX_OK;
    }

    ctx->held = call;

    return ngx_http_pred_hold(r);
}


/*
 * Admission's queue let the call go (call->admitted) or gave up on it: it
 * runs now, or the request waiting for it answers without it.
 */
ngx_int_t
ngx_http_pred_call_admitted(ngx_http_pred_call_t *call)
{
    if (call->admitted) {
        if (ngx_http_pred_call_launch(call) == NGX_OK) {
            /* from a timer: the subrequest starts from the posted ones */
            ngx_http_run_posted_requests(call->ctx->request->connection);
            return NGX_OK;
        }

        call->reason = "the call could not be started";
    }

    ngx_http_pred_call_shed(call);
    ngx_http_pred_call_resume(call);

    return NGX_DECLINED;
}


/* admission said no: given back now; its request answers without it */
static void
ngx_http_pred_call_shed(ngx_http_pred_call_t *call)
{
    call->state = NGX_HTTP_PRED_CALL_SHED;

    /* the client's answer is the fallback's because of it */
    if (call->kind == NGX_HTTP_PRED_CALL_MODEL
        || call->kind == NGX_HTTP_PRED_CALL_BATCH)
    {
        call->ctx->shed = 1;
    }

    ngx_http_pred_call_release(call);
}


static ngx_int_t
ngx_http_pred_call_launch(ngx_http_pred_call_t *call)
{
    ngx_str_t                   *args;
    ngx_msec_t                   timeout;
    ngx_http_request_t          *r, *sr;
    ngx_http_post_subrequest_t  *ps;

    r = call->ctx->request;

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_pred_call_done;
    ps->data = call;

    /* the reranker gets the client's arguments: $arg_device and the like */
    args = (call->kind == NGX_HTTP_PRED_CALL_RERANK) ? &r->args : NULL;

    if (ngx_http_subrequest(r, call->uri, args, &sr, ps,
                            NGX_HTTP_SUBREQUEST_BACKGROUND)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    call->sr = sr;
    call->state = NGX_HTTP_PRED_CALL_RUNNING;
    call->started = ngx_current_msec;

    ngx_http_pred_metrics_call_start(call);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "pred: %s call to \"%V\" for %V started",
                   ngx_http_pred_call_kind_name(call), call->uri,
                   ngx_http_pred_call_about(call));

    if (call->held) {
        timeout = call->timeout;

        /* the time it waited for admission is gone from its deadline */
        if (call->until) {
            timeout = (ngx_msec_int_t) (call->until - ngx_current_msec) > 0
                      ? call->until - ngx_current_msec : 1;
        }

        call->timer.handler = ngx_http_pred_call_deadline;
        ngx_add_timer(&call->timer, timeout);
    }

    return NGX_OK;
}


/* the call's subrequest ended: nginx runs this once, unless terminated */
static ngx_int_t
ngx_http_pred_call_done(ngx_http_request_t *sr, void *data, ngx_int_t rc)
{
    ngx_http_pred_call_t *call = data;

    ngx_msec_t            ms;
    ngx_http_request_t   *r;
    ngx_http_pred_ctx_t  *ctx;

    if (call->state != NGX_HTTP_PRED_CALL_RUNNING) {
        return rc;
    }

    call->state = NGX_HTTP_PRED_CALL_FINISHED;
    ctx = call->ctx;
    r = ctx->request;
    ms = ngx_current_msec - call->started;

    ngx_http_pred_call_status(sr, call, rc);

    call->done(sr, call);

    ngx_log_debug6(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                   "pred: %s call for %V ended in %M ms, status %ui%s%s",
                   ngx_http_pred_call_kind_name(call),
                   ngx_http_pred_call_about(call), ms, call->status,
                   call->late ? ", after its deadline" : "",
                   call->cached ? ", its answer cached" : "");

    /* a cascade's stages add up: the time its model calls took */
    if (call->kind == NGX_HTTP_PRED_CALL_STAGE) {
        ctx->up_time = ngx_max(ctx->up_time, 0) + (ngx_msec_int_t) ms;

    } else if (call->kind != NGX_HTTP_PRED_CALL_RERANK) {
        ctx->up_time = (ngx_msec_int_t) ms;
    }

    ngx_http_pred_metrics_call_done(call, ms);

    ngx_http_pred_call_release(call);

    if (call->held) {
        /* the request answers in its own context, not in the subrequest's */
        r->write_event_handler = ngx_http_pred_call_posted;
        (void) ngx_http_post_request(r, NULL);
    }

    /*
     * The call's failure is recorded and the request answers without it;
     * passed on, an error would make nginx terminate the client's request.
     */
    return sr->connection->error ? rc : NGX_OK;
}


/*
 * The status, and whether the call failed and how: for every kind alike.
 * call->fail is what the breaker and the error metrics count; a 404 and a
 * 4xx are answers of the model's, not failures.
 */
static void
ngx_http_pred_call_status(ngx_http_request_t *sr, ngx_http_pred_call_t *call,
    ngx_int_t rc)
{
    ngx_uint_t  status;

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        status = rc;

    } else if (rc == NGX_ERROR) {
        status = NGX_HTTP_INTERNAL_SERVER_ERROR;

    } else {
        status = sr->headers_out.status;
    }

    call->status = status;

    if (status == NGX_HTTP_NOT_FOUND) {
        return;
    }

    /*
     * A 4xx is the model refusing this key or request, not failing: it
     * answers nothing (the fallback chain does), and the breaker does not
     * count it, or a client sending bad keys would open it for everyone.
     */
    if (status >= 400 && status < 500) {
        call->reason = "the model refused the request (4xx)";
        return;
    }

    if (status < 200 || status > 299) {
        if (status == NGX_HTTP_BAD_GATEWAY) {
            call->fail = NGX_HTTP_PRED_FAIL_CONNECT;
            call->reason = "connect or read failed (502)";

        } else if (status == NGX_HTTP_GATEWAY_TIME_OUT) {
            call->fail = NGX_HTTP_PRED_FAIL_TIMEOUT;
            call->reason = "timed out in the proxy (504)";

        } else {
            call->fail = NGX_HTTP_PRED_FAIL_5XX;
            call->reason = "error status";
        }

        return;
    }

    if (call->too_big) {
        call->fail = NGX_HTTP_PRED_FAIL_TOO_BIG;
        call->reason = "answer over max_size";

        if (ngx_http_pred_warn_allowed(sr->connection->log)) {
            ngx_log_error(NGX_LOG_WARN, sr->connection->log, 0,
                          "pred: %s answer for %V is over max_size %uz",
                          call->kind == NGX_HTTP_PRED_CALL_RERANK
                          ? "reranker" : "upstream",
                          ngx_http_pred_call_about(call),
                          call->ctx->plcf->upstream_max_size);
        }
    }
}


/* the request that waited for the call answers now: from a timer */
static void
ngx_http_pred_call_resume(ngx_http_pred_call_t *call)
{
    ngx_connection_t  *c;

    if (call->ctx->held != call) {
        return;
    }

    c = call->ctx->request->connection;

    ngx_http_pred_call_answer(call);

    ngx_http_run_posted_requests(c);
}


/* posted by ngx_http_pred_call_done(): runs from the posted requests */
static void
ngx_http_pred_call_posted(ngx_http_request_t *r)
{
    ngx_http_pred_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_pred_module);

    if (ctx && ctx->held) {
        ngx_http_pred_call_answer(ctx->held);
    }
}


static void
ngx_http_pred_call_answer(ngx_http_pred_call_t *call)
{
    ngx_http_request_t  *r;

    r = call->ctx->request;

    call->ctx->held = NULL;
    call->held = 0;

    if (call->timer.timer_set) {
        ngx_del_timer(&call->timer);
    }

    ngx_http_pred_unhold(r);

    ngx_http_finalize_request(r, call->resume(r, call));
}


/* the deadline passed first: the request answers, the call runs on */
static void
ngx_http_pred_call_deadline(ngx_event_t *ev)
{
    ngx_http_pred_call_t *call = ev->data;

    if (!call->held || call->state != NGX_HTTP_PRED_CALL_RUNNING) {
        return;
    }

    call->late = 1;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "pred: %s call for %V missed its %M ms deadline",
                   ngx_http_pred_call_kind_name(call),
                   ngx_http_pred_call_about(call), call->timeout);

    ngx_http_pred_metrics_deadline(call);

    /*
     * Nothing uses a late reranker's or stage's answer: neither holds a
     * slot of the model's after its deadline, and a stage's breaker counts
     * it at once, not when its proxy gives up
     */
    if (call->kind == NGX_HTTP_PRED_CALL_RERANK) {
        ngx_http_pred_admission_release(call);

    } else if (call->kind == NGX_HTTP_PRED_CALL_STAGE) {
        ngx_http_pred_admission_late(call);
    }

    ngx_http_pred_call_resume(call);
}


/*
 * Everything the call holds, given back once: however it ends (answered,
 * shed, queued out, or its request terminated).
 */
static void
ngx_http_pred_call_release(ngx_http_pred_call_t *call)
{
    ngx_http_pred_cache_zone_t  *z;

    if (call->released) {
        return;
    }

    call->released = 1;

    if (call->timer.timer_set && !call->held) {
        ngx_del_timer(&call->timer);
    }

    ngx_http_pred_admission_release(call);

    /* a leader that leaves no fresh entry must let its waiters go */
    if (call->leader && !call->cached) {
        z = ngx_http_pred_cache_zone_get(call->ctx->plcf);

        if (z) {
            ngx_http_pred_cache_unlead(z, &call->ctx->key,
                                       call->lead_token, call->abandoned);
        }
    }
}


static void
ngx_http_pred_call_cleanup(void *data)
{
    ngx_http_pred_call_t *call = data;

    if (call->timer.timer_set) {
        ngx_del_timer(&call->timer);
    }

    call->held = 0;

    /* if it still holds a marker, a waiter may lead in its place */
    call->abandoned = 1;

    ngx_http_pred_call_release(call);
}


/*
 * An answer goes out: if one of the request's calls still runs, nginx
 * holds the request until it ends, and with it the client's next request
 * on a kept-alive connection, which would wait for a call this answer does
 * not wait for; the connection closes after this answer instead.
 */
void
ngx_http_pred_calls_detach(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx)
{
    ngx_http_pred_call_t  *call;

    for (call = ctx->calls; call; call = call->next) {
        if (call->state == NGX_HTTP_PRED_CALL_RUNNING) {
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "pred: key \"%V\": answered while a call runs "
                           "on, closing the connection after it", &ctx->key);

            r->main->keepalive = 0;
            return;
        }
    }
}


const char *
ngx_http_pred_call_kind_name(ngx_http_pred_call_t *call)
{
    return ngx_http_pred_call_kinds[call->kind];
}


/*
 * What a warning about the call names: key "K", or the number of keys of a
 * batch.  In the pool: warnings are rare (rate-limited).
 */
ngx_str_t *
ngx_http_pred_call_about(ngx_http_pred_call_t *call)
{
    size_t               len;
    ngx_str_t           *s;
    ngx_http_request_t  *r;

    static ngx_str_t     unknown = ngx_string("a call");

    r = call->ctx->request;
    len = call->ctx->key.len + sizeof("key \"\"") + NGX_INT_T_LEN
          + sizeof(" keys of a batch");

    s = ngx_palloc(r->pool, sizeof(ngx_str_t) + len);
    if (s == NULL) {
        return &unknown;
    }

    s->data = (u_char *) (s + 1);

    if (call->kind == NGX_HTTP_PRED_CALL_BATCH) {
        s->len = ngx_sprintf(s->data, "%ui keys of a batch", call->nitems)
                 - s->data;

    } else {
        s->len = ngx_sprintf(s->data, "key \"%V\"", &call->ctx->key)
                 - s->data;
    }

    return s;
}


/* the call whose subrequest r is, or NULL */
ngx_http_pred_call_t *
ngx_http_pred_call_of(ngx_http_request_t *r)
{
    ngx_http_pred_ctx_t   *ctx;
    ngx_http_pred_call_t  *call;

    if (r->parent == NULL) {
        return NULL;
    }

    /* the parent may itself be a subrequest: SSI, echo_location, ... */
    ctx = ngx_http_get_module_ctx(r->parent, ngx_http_pred_module);

    if (ctx == NULL) {
        return NULL;
    }

    for (call = ctx->calls; call; call = call->next) {
        if (call->sr == r) {
            return call;
        }
    }

    return NULL;
}


ngx_int_t
ngx_http_pred_call_init_filters(ngx_conf_t *cf)
{
    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_pred_capture_header;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_pred_capture_body;

    return NGX_OK;
}


static ngx_int_t
ngx_http_pred_capture_header(ngx_http_request_t *r)
{
    if (r != r->main && ngx_http_pred_call_of(r)) {
        return NGX_OK;
    }

    return ngx_http_next_header_filter(r);
}


/* keeps the call's answer, up to max_size, and sends nothing on */
static ngx_int_t
ngx_http_pred_capture_body(ngx_http_request_t *r, ngx_chain_t *in)
{
    off_t                  len;
    u_char                *p;
    size_t                 max;
    ssize_t                n;
    ngx_buf_t             *b;
    ngx_chain_t           *cl;
    ngx_http_pred_call_t  *call;

    call = (r != r->main) ? ngx_http_pred_call_of(r) : NULL;

    if (call == NULL) {
        return ngx_http_next_body_filter(r, in);
    }

    max = call->ctx->plcf->upstream_max_size;

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        len = b->in_file ? b->file_last - b->file_pos : b->last - b->pos;

        if (len && !call->too_big) {
            if (call->body.len + len > max) {
                call->too_big = 1;

            } else {
                if (call->body.data == NULL) {
                    call->body.data = ngx_pnalloc(r->pool, max);
                    if (call->body.data == NULL) {
                        return NGX_ERROR;
                    }
                }

                p = call->body.data + call->body.len;

                if (b->in_file) {
                    n = ngx_read_file(b->file, p, (size_t) len,
                                      b->file_pos);
                    if (n != len) {
                        return NGX_ERROR;
                    }

                } else {
                    ngx_memcpy(p, b->pos, (size_t) len);
                }

                call->body.len += (size_t) len;
            }
        }

        b->pos = b->last;
        b->file_pos = b->file_last;
    }

    return NGX_OK;
}
