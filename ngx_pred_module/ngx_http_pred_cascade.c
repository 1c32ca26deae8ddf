/*
 * Cascaded models within one budget:
 *
 *   pred_cascade URI [timeout=T] [exit_if=POINTER:OP:VALUE];   (repeated)
 *   pred_budget T;
 *   pred_cascade_from_snapshot on|off [exit_if=POINTER:OP:VALUE];
 *
 * On a miss, the stages are asked in order, each through a call of its own
 * (kind "stage": its own admission, its own breaker per URI, its own
 * metrics), while the budget has room for the stage's timeout; a stage
 * that has no room is skipped, not started, and so are the ones after it.
 * A stage's answer replaces the previous one; its exit_if, when the answer
 * satisfies it, ends the cascade.  When a stage fails or misses its
 * deadline, the next one is asked if the budget allows, and the last good
 * answer is sent; when none answered, the fallback chain runs.  With
 * pred_cascade_from_snapshot on, a snapshot hit is stage 0: its value is
 * the first answer, and its own exit_if may end the cascade at once.
 *
 * One request per key runs the cascade, across workers, through the cache
 * zone's single-flight marker, held for the budget; the others wait for
 * its answer in the cache (or, with a stage 0 value, answer with it).  The
 * answer sent is cached once, by the request, when the cascade ends; an
 * answer that arrives after its stage's deadline is dropped unread.
 */

#include "ngx_http_pred_module.h"


struct ngx_http_pred_cascade_s {
    ngx_http_pred_ctx_t        *ctx;
    ngx_uint_t                  next;       /* the stage to ask, from 1 */
    ngx_msec_t                  until;      /* the budget's end */
    ngx_http_pred_answer_t      best;       /* the last good answer */
    ngx_uint_t                  best_stage;
    ngx_msec_t                  lead_token;
    unsigned                    answered:1; /* best is set */
    unsigned                    leader:1;   /* holds the key's marker */
    unsigned                    cached:1;   /* left a fresh entry */
    unsigned                    shed:1;     /* admission refused a stage */
    unsigned                    abandoned:1;    /* its request ended first */
};


static pred_cond_t *ngx_http_pred_cascade_exit_if(ngx_conf_t *cf,
    ngx_str_t *arg);
static ngx_int_t ngx_http_pred_cascade_next(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx);
static void ngx_http_pred_cascade_done(ngx_http_request_t *sr,
    ngx_http_pred_call_t *call);
static ngx_int_t ngx_http_pred_cascade_resume(ngx_http_request_t *r,
    ngx_http_pred_call_t *call);
static ngx_int_t ngx_http_pred_cascade_finish(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx);
static ngx_int_t ngx_http_pred_cascade_stage0(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, ngx_http_pred_answer_t *ans,
    ngx_uint_t result);
static void ngx_http_pred_cascade_release(ngx_http_pred_cascade_t *cascade);
static void ngx_http_pred_cascade_cleanup(void *data);


static const char  *ngx_http_pred_stage_results[] = {
    "answered", "exited", "timed out", "failed", "skipped"
};


/* "pred_cascade URI [timeout=T] [exit_if=POINTER:OP:VALUE]", or "off" */
char *
ngx_http_pred_cascade(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pred_loc_conf_t *plcf = conf;

    ngx_str_t              *value;
    ngx_uint_t              i;
    ngx_http_pred_stage_t  *st;

    value = cf->args->elts;

    /* "off": no cascade here, whatever the levels above have */
    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0
        && cf->args->nelts == 2)
    {
        if (plcf->cascade != NGX_CONF_UNSET_PTR) {
            return "is duplicate";
        }

        plcf->cascade = NULL;
        return NGX_CONF_OK;
    }

    if (plcf->cascade == NULL) {
        return "cannot follow \"pred_cascade off\" in a location";
    }

    if (value[1].len == 0 || value[1].data[0] != '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "pred_cascade needs a URI of a location, such "
                           "as \"/_rules\", not \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (plcf->cascade == NGX_CONF_UNSET_PTR) {
        plcf->cascade = ngx_array_create(cf->pool, 4,
                                         sizeof(ngx_http_pred_stage_t));
        if (plcf->cascade == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (plcf->cascade->nelts == NGX_HTTP_PRED_MAX_STAGES) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "more than %d pred_cascade stages in a location",
                           NGX_HTTP_PRED_MAX_STAGES);
        return NGX_CONF_ERROR;
    }

    st = ngx_array_push(plcf->cascade);
    if (st == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(st, sizeof(ngx_http_pred_stage_t));

    st->uri = value[1];
    st->timeout = 100;

    for (i = 2; i < cf->args->nelts; i++) {

        switch (ngx_http_pred_conf_param(cf, &value[i], "timeout=", 'm', 0,
                                         &st->timeout))
        {
        case NGX_OK:
            continue;
        case NGX_ERROR:
            return NGX_CONF_ERROR;
        }

        if (value[i].len >= 8
            && ngx_strncmp(value[i].data, "exit_if=", 8) == 0)
        {
            if (st->exit_if) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "duplicate exit_if \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            st->exit_if = ngx_http_pred_cascade_exit_if(cf, &value[i]);
            if (st->exit_if == NULL) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_pred_breaker_index(cf, &st->uri, &st->breaker) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* "pred_cascade_from_snapshot on|off [exit_if=POINTER:OP:VALUE]" */
char *
ngx_http_pred_cascade_snapshot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_pred_loc_conf_t *plcf = conf;

    ngx_str_t  *value;

    if (plcf->cascade_snapshot != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 2 && ngx_strncmp(value[1].data, "on", 2) == 0) {
        plcf->cascade_snapshot = 1;

    } else if (value[1].len == 3
               && ngx_strncmp(value[1].data, "off", 3) == 0)
    {
        plcf->cascade_snapshot = 0;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\", it must be \"on\" or "
                           "\"off\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 3) {
        if (value[2].len < 8
            || ngx_strncmp(value[2].data, "exit_if=", 8) != 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }

        plcf->snapshot_exit_if = ngx_http_pred_cascade_exit_if(cf, &value[2]);
        if (plcf->snapshot_exit_if == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* "exit_if=POINTER:OP:VALUE": pred_cond.h says what it means */
static pred_cond_t *
ngx_http_pred_cascade_exit_if(ngx_conf_t *cf, ngx_str_t *arg)
{
    const char   *err;
    pred_cond_t  *c;

    c = ngx_pcalloc(cf->pool, sizeof(pred_cond_t));
    if (c == NULL) {
        return NULL;
    }

    if (pred_cond_parse((char *) arg->data + 8, arg->len - 8, c, &err) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid exit_if \"%V\": %s",
                           arg, err);
        return NULL;
    }

    return c;
}


char *
ngx_http_pred_cascade_merge(ngx_conf_t *cf, ngx_http_pred_loc_conf_t *prev,
    ngx_http_pred_loc_conf_t *conf)
{
    ngx_msec_t              sum;
    ngx_uint_t              i, own;
    ngx_http_pred_stage_t  *st;

    /* pred_cascade at this level, not inherited */
    own = (conf->cascade != NGX_CONF_UNSET_PTR);

    ngx_conf_merge_ptr_value(conf->cascade, prev->cascade, NULL);

    /*
     * What a level writes wins over what it inherits: its own cascade over
     * an inherited pred_upstream (merged before this: then the same string
     * as the level above's), its own pred_upstream over an inherited
     * cascade.  Both its own, or both inherited, is an error below.
     */
    if (conf->cascade && conf->upstream_uri.len) {
        if (own && conf->upstream_uri.data == prev->upstream_uri.data) {
            ngx_str_null(&conf->upstream_uri);

        } else if (!own && conf->upstream_uri.data != prev->upstream_uri.data)
        {
            conf->cascade = NULL;
        }
    }

    /* "on" here without exit_if: every hit asks the stages */
    if (conf->cascade_snapshot == NGX_CONF_UNSET) {
        conf->snapshot_exit_if = prev->snapshot_exit_if;
    }

    ngx_conf_merge_value(conf->cascade_snapshot, prev->cascade_snapshot, 0);

    /* above a pred location: the default is the location's to take */
    if (!conf->enable) {
        if (conf->budget == NGX_CONF_UNSET_MSEC) {
            conf->budget = prev->budget;
        }

        return NGX_CONF_OK;
    }

    if (conf->cascade == NULL) {
        if (conf->cascade_snapshot) {
            ngx_http_pred_merge_error(cf, "pred_cascade_from_snapshot needs "
                                      "pred_cascade stages");
            return NGX_CONF_ERROR;
        }

        /* the miss path is one model call: the budget bounds it */
        ngx_conf_merge_msec_value(conf->budget, prev->budget, 0);

        if (conf->budget && conf->budget < conf->upstream_timeout) {
            conf->upstream_timeout = conf->budget;
        }

        return NGX_CONF_OK;
    }

    if (conf->upstream_uri.len) {
        ngx_http_pred_merge_error(cf, "pred_cascade and pred_upstream both "
                                  "answer a miss: use one of them");
        return NGX_CONF_ERROR;
    }

    if (conf->batch) {
        ngx_http_pred_merge_error(cf, "pred_cascade answers one key: it "
                                  "cannot be used with pred_batch");
        return NGX_CONF_ERROR;
    }

    if (conf->miss_async) {
        ngx_http_pred_merge_error(cf, "pred_cascade needs pred_miss_mode "
                                  "sync: the client waits for its stages");
        return NGX_CONF_ERROR;
    }

    /* merged before this: see ngx_http_pred_merge_loc_conf() */
    if (conf->cascade_snapshot && conf->snapshot == NULL) {
        ngx_http_pred_merge_error(cf, "pred_cascade_from_snapshot needs "
                                  "pred_snapshot");
        return NGX_CONF_ERROR;
    }

    st = conf->cascade->elts;
    sum = 0;

    for (i = 0; i < conf->cascade->nelts; i++) {
        sum += st[i].timeout;
    }

    /* no pred_budget: every stage may run to its timeout */
    ngx_conf_merge_msec_value(conf->budget, prev->budget, sum);

    /* a stage whose timeout is over the budget would never be asked */
    for (i = 0; i < conf->cascade->nelts; i++) {
        if (conf->budget < st[i].timeout) {
            ngx_http_pred_merge_error(cf, "pred_budget %M ms leaves no room "
                                      "for stage %ui's timeout of %M ms",
                                      conf->budget, i + 1, st[i].timeout);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * A miss, or with stage0 a snapshot hit of a location that makes it stage
 * 0: the cascade runs, or the request waits for the one that runs it.
 */
ngx_int_t
ngx_http_pred_cascade_start(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    ngx_http_pred_answer_t *stage0)
{
    ngx_msec_t                   token, budget;
    ngx_pool_cleanup_t          *cln;
    ngx_http_pred_cascade_t     *cascade;
    ngx_http_pred_loc_conf_t    *plcf;
    ngx_http_pred_cache_zone_t  *z;

    plcf = ctx->plcf;

    /* a waiter that leads after the leader gave up: what is left of it */
    budget = ngx_http_pred_miss_timeout(ctx, plcf->budget);

    if (stage0 && plcf->snapshot_exit_if
        && pred_cond_eval(plcf->snapshot_exit_if, (char *) stage0->value.data,
                          stage0->value.len))
    {
        return ngx_http_pred_cascade_stage0(r, ctx, stage0,
                                            NGX_HTTP_PRED_STAGE_EXITED);
    }

    token = 0;
    z = ngx_http_pred_cache_zone_get(plcf);

    if (z
        && ngx_http_pred_cache_lead(z, &ctx->key, budget, &token)
           == NGX_BUSY)
    {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "pred: key \"%V\": another request runs the "
                       "cascade, %s", &ctx->key,
                       stage0 ? "answering stage 0" : "waiting for it");

        if (stage0) {
            return ngx_http_pred_cascade_stage0(r, ctx, stage0,
                                                NGX_HTTP_PRED_STAGE_ANSWERED);
        }

        return ngx_http_pred_upstream_wait(r, ctx, budget);
    }

    cascade = ngx_pcalloc(r->pool, sizeof(ngx_http_pred_cascade_t));
    cln = cascade ? ngx_pool_cleanup_add(r->pool, 0) : NULL;

    if (cln == NULL) {
        if (z) {
            ngx_http_pred_cache_unlead(z, &ctx->key, token, 0);
        }

        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the marker is given back however the request ends */
    cln->handler = ngx_http_pred_cascade_cleanup;
    cln->data = cascade;

    cascade->ctx = ctx;
    cascade->leader = (z != NULL);
    cascade->lead_token = token;
    cascade->next = 1;
    cascade->until = ngx_current_msec + budget;

    ctx->cascade = cascade;

    if (stage0) {
        cascade->best = *stage0;
        cascade->answered = 1;

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "pred: key \"%V\": cascade stage 0 answered from "
                       "the snapshot", &ctx->key);

        ngx_http_pred_metrics_stage(ctx, 0, NGX_HTTP_PRED_STAGE_ANSWERED);
    }

    return ngx_http_pred_cascade_next(r, ctx);
}


/* the snapshot's value answers as stage 0, without asking a stage */
static ngx_int_t
ngx_http_pred_cascade_stage0(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    ngx_http_pred_answer_t *ans, ngx_uint_t result)
{
    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "pred: key \"%V\": cascade stage 0 %s", &ctx->key,
                   ngx_http_pred_stage_results[result]);

    ngx_http_pred_metrics_stage(ctx, 0, result);

    ans->stage = 0;
    ans->staged = 1;

    return ngx_http_pred_answer(r, ctx, ans);
}


/*
 * Asks the next stage that the budget has room for.  NGX_DONE while the
 * request waits for it; else what the cascade ends with.
 */
static ngx_int_t
ngx_http_pred_cascade_next(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx)
{
    ngx_int_t                  rc;
    ngx_uint_t                 i, n;
    ngx_msec_int_t             left;
    ngx_http_pred_call_t      *call;
    ngx_http_pred_stage_t     *st;
    ngx_http_pred_cascade_t   *cascade;
    ngx_http_pred_loc_conf_t  *plcf;

    cascade = ctx->cascade;
    plcf = ctx->plcf;
    st = plcf->cascade->elts;
    n = plcf->cascade->nelts;

    while (cascade->next <= n) {
        i = cascade->next++;
        left = (ngx_msec_int_t) (cascade->until - ngx_current_msec);

        if (left < (ngx_msec_int_t) st[i - 1].timeout) {
            ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "pred: key \"%V\": %M ms of the budget left, "
                           "stage %ui needs %M ms: it and the rest are "
                           "skipped", &ctx->key, (ngx_msec_t) ngx_max(left, 0),
                           i, st[i - 1].timeout);

            for ( /* void */ ; i <= n; i++) {
                ngx_http_pred_metrics_stage(ctx, i,
                                            NGX_HTTP_PRED_STAGE_SKIPPED);
            }

            cascade->next = n + 1;
            break;
        }

        call = ngx_http_pred_call_create(r, ctx, NGX_HTTP_PRED_CALL_STAGE);
        if (call == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        call->uri = &st[i - 1].uri;
        call->timeout = st[i - 1].timeout;
        call->until = ngx_current_msec + call->timeout;
        call->priority = plcf->priority;
        call->held = 1;
        call->stage = i;
        call->breaker = st[i - 1].breaker;
        call->done = ngx_http_pred_cascade_done;
        call->resume = ngx_http_pred_cascade_resume;

        rc = ngx_http_pred_call_start(r, call);

        if (rc == NGX_DONE) {
            return NGX_DONE;
        }

        if (rc != NGX_DECLINED) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        /* not started: the breaker is open, or no call slot */
        if (ngx_http_pred_warn_allowed(r->connection->log)) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "pred: cascade stage %ui \"%V\" for key \"%V\" "
                          "skipped: %s", i, call->uri, &ctx->key,
                          call->reason);
        }

        cascade->shed = 1;
        ngx_http_pred_metrics_stage(ctx, i, NGX_HTTP_PRED_STAGE_SKIPPED);
    }

    return ngx_http_pred_cascade_finish(r, ctx);
}


/*
 * A stage's answer, in its subrequest.  Past its deadline the cascade has
 * moved on: the answer is dropped unread, and counted a timeout by the
 * stage's breaker.
 */
static void
ngx_http_pred_cascade_done(ngx_http_request_t *sr, ngx_http_pred_call_t *call)
{
    if (call->late) {
        call->fail = NGX_HTTP_PRED_FAIL_TIMEOUT;
        call->reason = "missed its deadline";
        return;
    }

    call->result = (ngx_http_pred_upstream_value(sr, call) == NGX_OK);
}


/* the stage answered, failed, missed its deadline or was queued out */
static ngx_int_t
ngx_http_pred_cascade_resume(ngx_http_request_t *r, ngx_http_pred_call_t *call)
{
    ngx_uint_t                result;
    ngx_http_pred_ctx_t      *ctx;
    ngx_http_pred_stage_t    *st;
    ngx_http_pred_cascade_t  *cascade;

    ctx = call->ctx;
    cascade = ctx->cascade;
    st = (ngx_http_pred_stage_t *) ctx->plcf->cascade->elts
         + call->stage - 1;

    if (call->state == NGX_HTTP_PRED_CALL_SHED) {
        result = NGX_HTTP_PRED_STAGE_SKIPPED;
        cascade->shed = 1;

    } else if (call->late || call->fail == NGX_HTTP_PRED_FAIL_TIMEOUT) {
        result = NGX_HTTP_PRED_STAGE_TIMEOUT;

    } else if (call->result) {
        ngx_http_pred_answer_value(&cascade->best, NGX_HTTP_PRED_SRC_UPSTREAM,
                                   &call->value, 0);
        cascade->best_stage = call->stage;
        cascade->answered = 1;

        result = (st->exit_if
                  && pred_cond_eval(st->exit_if, (char *) call->value.data,
                                    call->value.len))
                 ? NGX_HTTP_PRED_STAGE_EXITED : NGX_HTTP_PRED_STAGE_ANSWERED;

    } else {
        result = NGX_HTTP_PRED_STAGE_FAILED;
    }

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "pred: key \"%V\": stage %ui %s", &ctx->key,
                   call->stage, ngx_http_pred_stage_results[result]);

    /* an invalid or oversized answer was logged when it was read */
    if (result >= NGX_HTTP_PRED_STAGE_TIMEOUT
        && call->fail != NGX_HTTP_PRED_FAIL_INVALID
        && call->fail != NGX_HTTP_PRED_FAIL_TOO_BIG
        && ngx_http_pred_warn_allowed(r->connection->log))
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "pred: cascade stage %ui \"%V\" for key \"%V\" %s: "
                      "%s", call->stage, call->uri, &ctx->key,
                      ngx_http_pred_stage_results[result],
                      result == NGX_HTTP_PRED_STAGE_TIMEOUT
                      ? "no answer within its deadline"
                      : call->reason ? call->reason
                      : call->status == NGX_HTTP_NOT_FOUND
                      ? "the model has no answer (404)" : "no answer");
    }

    ngx_http_pred_metrics_stage(ctx, call->stage, result);

    if (result == NGX_HTTP_PRED_STAGE_EXITED) {
        cascade->next = ctx->plcf->cascade->nelts + 1;
    }

    return ngx_http_pred_cascade_next(r, ctx);
}


/* the cascade is over: its last good answer, or the fallback chain */
static ngx_int_t
ngx_http_pred_cascade_finish(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx)
{
    ngx_http_pred_answer_t    ans;
    ngx_http_pred_cascade_t  *cascade;

    cascade = ctx->cascade;

    if (!cascade->answered) {
        /* the waiters stop waiting now */
        ngx_http_pred_cascade_release(cascade);

        if (cascade->shed) {
            ctx->shed = 1;
        }

        return ngx_http_pred_fallback_answer(r, ctx,
                   cascade->shed ? "no stage answered, some were shed"
                                 : "no stage answered");
    }

    /* what is cached is the last stage's answer, once, for the waiters */
    if (cascade->best_stage) {
        cascade->cached = (ngx_http_pred_upstream_store(ctx->plcf, &ctx->key,
                                                  &cascade->best.value,
                                                  r->connection->log)
                           == NGX_OK);
    }

    ngx_http_pred_cascade_release(cascade);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "pred: key \"%V\": the cascade answers with stage %ui%s",
                   &ctx->key, cascade->best_stage,
                   cascade->cached ? ", cached" : "");

    ans = cascade->best;
    ans.stage = cascade->best_stage;
    ans.staged = 1;

    return ngx_http_pred_answer(r, ctx, &ans);
}


/*
 * The key's single-flight marker, given back once: at the end of the
 * cascade, or by the pool cleanup when the request ends first.  A cached
 * answer replaced it already.
 */
static void
ngx_http_pred_cascade_release(ngx_http_pred_cascade_t *cascade)
{
    ngx_http_pred_cache_zone_t  *z;

    if (cascade->leader && !cascade->cached) {
        z = ngx_http_pred_cache_zone_get(cascade->ctx->plcf);

        if (z) {
            ngx_http_pred_cache_unlead(z, &cascade->ctx->key,
                                       cascade->lead_token,
                                       cascade->abandoned);
        }
    }

    cascade->leader = 0;
}


/* the request ends: if it still leads, a waiter may lead in its place */
static void
ngx_http_pred_cascade_cleanup(void *data)
{
    ngx_http_pred_cascade_t *cascade = data;

    cascade->abandoned = 1;

    ngx_http_pred_cascade_release(cascade);
}
