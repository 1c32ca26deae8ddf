/*
 * Admission control for the miss path: a cap on model calls in flight
 * across all workers, priorities, a bounded wait queue, and a circuit
 * breaker.  Only misses pass through here; hits never wait on any of it.
 *
 *   pred_upstream_limit N [queue=M] [timeout=T];   (http)
 *   pred_upstream_breaker failures=N cooldown=T;   (http)
 *   pred_priority high|normal|low;                 (location)
 *
 * At the cap, low is shed at once (the fallback chain answers), normal
 * waits in the queue for a slot up to T, and high may use reserved
 * capacity (a quarter of N, at least one).  The breaker opens after N
 * failed model calls in a row: misses go straight to the fallback chain
 * for the cooldown, then one probe is let through; its success closes it.
 */

#include "ngx_http_pred_module.h"


#define NGX_HTTP_PRED_QUEUE_POLL_MS   5


static void ngx_http_pred_shed_poll(ngx_event_t *ev);
static ngx_int_t ngx_http_pred_shed_room(ngx_http_pred_main_conf_t *pmcf,
    ngx_uint_t priority);


/* "pred_upstream_limit N [queue=M] [timeout=T]" */
char *
ngx_http_pred_upstream_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pred_main_conf_t *pmcf = conf;

    ngx_int_t                    n;
    ngx_str_t                   *value;
    ngx_http_pred_conf_param_t   params[] = {
        { "queue=", 'n', 1, &pmcf->limit_queue },
        { "timeout=", 'm', 0, &pmcf->limit_timeout },
        { NULL, 0, 0, NULL }
    };

    if (pmcf->limit) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    if (n <= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid limit \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    pmcf->limit = n;
    pmcf->limit_queue = 0;
    pmcf->limit_timeout = 50;

    if (ngx_http_pred_conf_params(cf, 2, params) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* "pred_upstream_breaker failures=N cooldown=T" */
char *
ngx_http_pred_upstream_breaker(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_pred_main_conf_t *pmcf = conf;

    ngx_http_pred_conf_param_t  params[] = {
        { "failures=", 'n', 0, &pmcf->breaker_failures },
        { "cooldown=", 'm', 0, &pmcf->breaker_cooldown },
        { NULL, 0, 0, NULL }
    };

    if (pmcf->breaker_failures) {
        return "is duplicate";
    }

    pmcf->breaker_cooldown = 5000;

    if (ngx_http_pred_conf_params(cf, 1, params) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (pmcf->breaker_failures == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"pred_upstream_breaker\" must have "
                           "\"failures\" parameter");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * May this miss call the model now?  NGX_OK: yes; NGX_DECLINED: shed it
 * (ctx->reason says why); NGX_AGAIN: it waits in the queue (the handler
 * returns NGX_DONE, and the poll calls ngx_http_pred_upstream_admitted()).
 */
ngx_int_t
ngx_http_pred_shed_admit(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx)
{
    ngx_http_pred_main_conf_t  *pmcf;
    ngx_http_pred_signals_sh_t *sh;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_pred_module);
    sh = pmcf->signals_sh;

    if (pmcf->breaker_failures && sh) {
        if ((ngx_msec_int_t) (sh->breaker_open_until - ngx_current_msec) > 0)
        {
            ctx->reason = "circuit open";
            ctx->shed = 1;
            return NGX_DECLINED;
        }

        /* the cooldown is over: one probe at a time decides */
        if (sh->breaker_open_until
            && !ngx_atomic_cmp_set(&sh->breaker_probing, 0, 1))
        {
            ctx->reason = "circuit open";
            ctx->shed = 1;
            return NGX_DECLINED;
        }

        if (sh->breaker_open_until) {
            ctx->probe = 1;
        }
    }

    if (pmcf->limit == 0
        || ngx_http_pred_shed_room(pmcf, ctx->plcf->priority) == NGX_OK)
    {
        return NGX_OK;
    }

    if (ctx->plcf->priority == NGX_HTTP_PRED_PRIO_LOW
        || sh == NULL
        || ngx_atomic_fetch_add(&sh->queued, 1) >= pmcf->limit_queue)
    {
        if (ctx->plcf->priority != NGX_HTTP_PRED_PRIO_LOW && sh) {
            (void) ngx_atomic_fetch_add(&sh->queued, -1);
        }

        ctx->reason = "shed: too many model calls in flight";
        ctx->shed = 1;
        return NGX_DECLINED;
    }

    ctx->queued = 1;
    ctx->deadline = ngx_current_msec + pmcf->limit_timeout;

    if (ngx_http_pred_upstream_hold(r, ctx, ngx_http_pred_shed_poll,
                                    NGX_HTTP_PRED_QUEUE_POLL_MS)
        != NGX_DONE)
    {
        return NGX_ERROR;
    }

    return NGX_AGAIN;
}


/* a model call ended: the breaker counts failures in a row */
void
ngx_http_pred_shed_done(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    ngx_uint_t failed)
{
    ngx_http_pred_main_conf_t   *pmcf;
    ngx_http_pred_signals_sh_t  *sh;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_pred_module);
    sh = pmcf->signals_sh;

    if (pmcf->breaker_failures == 0 || sh == NULL) {
        return;
    }

    if (!failed) {
        sh->breaker_failures = 0;

        if (ctx->probe) {
            sh->breaker_open_until = 0;
            sh->breaker_probing = 0;
            ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                          "pred: circuit breaker closed: the probe for key "
                          "\"%V\" succeeded", &ctx->key);
        }

        return;
    }

    if (ctx->probe
        || ngx_atomic_fetch_add(&sh->breaker_failures, 1) + 1
           == pmcf->breaker_failures)
    {
        sh->breaker_open_until = ngx_current_msec + pmcf->breaker_cooldown;
        sh->breaker_probing = 0;
        (void) ngx_atomic_fetch_add(&sh->breaker_trips, 1);

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "pred: circuit breaker open for %M ms after %ui "
                      "failed model calls in a row%s",
                      pmcf->breaker_cooldown, pmcf->breaker_failures,
                      ctx->probe ? " (the probe failed)" : "");
    }
}


static ngx_int_t
ngx_http_pred_shed_room(ngx_http_pred_main_conf_t *pmcf, ngx_uint_t priority)
{
    ngx_uint_t  cap;

    cap = pmcf->limit;

    if (priority == NGX_HTTP_PRED_PRIO_HIGH) {
        cap += ngx_max(pmcf->limit / 4, 1);
    }

    return ngx_http_pred_metrics_in_flight() < cap ? NGX_OK : NGX_BUSY;
}


static void
ngx_http_pred_shed_poll(ngx_event_t *ev)
{
    ngx_http_pred_ctx_t *ctx = ev->data;

    ngx_int_t                   rc;
    ngx_connection_t           *c;
    ngx_http_request_t         *r;
    ngx_http_pred_main_conf_t  *pmcf;

    r = ctx->request;
    c = r->connection;
    pmcf = ngx_http_get_module_main_conf(r, ngx_http_pred_module);

    rc = ngx_http_pred_shed_room(pmcf, ctx->plcf->priority);

    if (rc != NGX_OK
        && (ngx_msec_int_t) (ctx->deadline - ngx_current_msec) > 0)
    {
        ngx_add_timer(ev, NGX_HTTP_PRED_QUEUE_POLL_MS);
        return;
    }

    ctx->waiting = 0;
    ctx->queued = 0;
    (void) ngx_atomic_fetch_add(&pmcf->signals_sh->queued, -1);

    if (rc != NGX_OK) {
        ctx->reason = "shed: no model call slot within the queue timeout";
        ctx->shed = 1;
        rc = ngx_http_pred_fallback_answer(r, ctx, ctx->reason);

    } else {
        rc = ngx_http_pred_upstream_admitted(r, ctx);
    }

    ngx_http_finalize_request(r, rc);

    ngx_http_run_posted_requests(c);
}


/* a queued request went away: free its place in the queue */
void
ngx_http_pred_shed_cleanup(ngx_http_pred_ctx_t *ctx)
{
    ngx_http_pred_main_conf_t  *pmcf;

    if (!ctx->queued) {
        return;
    }

    ctx->queued = 0;

    pmcf = ngx_http_get_module_main_conf(ctx->request, ngx_http_pred_module);
    (void) ngx_atomic_fetch_add(&pmcf->signals_sh->queued, -1);
}
