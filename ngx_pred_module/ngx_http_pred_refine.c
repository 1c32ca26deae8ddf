/*
 * Real-time refinement: "pred_refine URI [timeout=T] [top=N]".
 *
 * Before a list value is sent, its first N candidates go to a reranker
 * location (the user builds the request from $pred_candidates and any
 * request variables); if the reranker answers within the deadline with the
 * ids in its order, the list is reordered (X-Pred-Refined: 1), else the
 * batch order is sent (X-Pred-Refined: 0).  The client never waits longer
 * than the deadline for it.
 */

#include "ngx_http_pred_module.h"
#include "pred_json.h"


static void ngx_http_pred_refine_done(ngx_http_request_t *sr,
    ngx_http_pred_call_t *call);
static ngx_int_t ngx_http_pred_refine_resume(ngx_http_request_t *r,
    ngx_http_pred_call_t *call);
static ngx_int_t ngx_http_pred_refine_reorder(ngx_http_request_t *r,
    ngx_http_pred_call_t *call, ngx_str_t *value);


/* "pred_refine URI [timeout=T] [top=N]" */
char *
ngx_http_pred_refine(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pred_loc_conf_t *plcf = conf;

    ngx_int_t    n, rc;
    ngx_str_t   *value;
    ngx_uint_t   i;

    if (plcf->refine_uri.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].data[0] != '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "pred_refine needs a URI of a location, such as "
                           "\"/_rerank\", not \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    plcf->refine_uri = value[1];

    for (i = 2; i < cf->args->nelts; i++) {

        rc = ngx_http_pred_conf_param(cf, &value[i], "timeout=", 'm', 0,
                                      &plcf->refine_timeout);
        if (rc == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        if (rc == NGX_OK) {
            continue;
        }

        if (ngx_strncmp(value[i].data, "top=", 4) == 0) {
            n = ngx_atoi(value[i].data + 4, value[i].len - 4);
            if (n <= 0 || n > 1000) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid top \"%V\", use 1 to 1000",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            plcf->refine_top = n;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Called while a value answer is prepared: NGX_DONE while the reranker is
 * asked (the answer, kept in ctx->pending, goes out when it answers or its
 * deadline passes), NGX_DECLINED to send it now, unreranked.
 */
ngx_int_t
ngx_http_pred_refine_start(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    ngx_http_pred_answer_t *ans)
{
    u_char                    *d;
    size_t                     n;
    ngx_int_t                  rc;
    const char                *ls, *le, *p, *e;
    ngx_http_pred_call_t      *call;
    ngx_http_pred_loc_conf_t  *plcf;

    plcf = ctx->plcf;

    /* asked once: "0" unless the reranker's order is used */
    ctx->refined = 1;

    if (pred_json_member((char *) ans->value.data,
                         (char *) ans->value.data + ans->value.len,
                         (char *) plcf->filter_list.data,
                         plcf->filter_list.len, &ls, &le) != 0
        || *ls != '[')
    {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "pred: key \"%V\": no candidates to rerank",
                       &ctx->key);
        return NGX_DECLINED;
    }

    call = ngx_http_pred_call_create(r, ctx, NGX_HTTP_PRED_CALL_RERANK);
    if (call == NULL) {
        return NGX_ERROR;
    }

    /* the first top candidates, as written */
    d = ngx_pnalloc(r->pool, le - ls);
    if (d == NULL) {
        return NGX_ERROR;
    }

    call->candidates.data = d;
    *d++ = '[';

    p = pred_json_skip_ws(ls + 1, le);

    for (n = 0; p < le && *p != ']' && n < plcf->refine_top; n++) {
        e = pred_json_skip_value(p, le);

        if (n) {
            *d++ = ',';
        }

        d = ngx_cpymem(d, p, e - p);

        p = pred_json_skip_ws(e, le);
        if (p < le && *p == ',') {
            p = pred_json_skip_ws(p + 1, le);
        }
    }

    *d++ = ']';
    call->candidates.len = d - call->candidates.data;

    call->uri = &plcf->refine_uri;
    call->timeout = plcf->refine_timeout;
    call->priority = NGX_HTTP_PRED_PRIO_LOW;
    call->held = 1;
    call->done = ngx_http_pred_refine_done;
    call->resume = ngx_http_pred_refine_resume;

    /* kept in the pool: ans may be on the caller's stack */
    ctx->pending = *ans;

    rc = ngx_http_pred_call_start(r, call);

    if (rc == NGX_DECLINED) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "pred: key \"%V\": not reranked: %s", &ctx->key,
                       call->reason);
    }

    return rc;
}


/*
 * The reranker's answer, in its subrequest: a JSON array of ids.  Past the
 * deadline, the answer went out without it, and it is dropped unread.
 */
static void
ngx_http_pred_refine_done(ngx_http_request_t *sr, ngx_http_pred_call_t *call)
{
    size_t  where;

    if (call->late || !ngx_http_pred_call_answered(call)) {
        return;
    }

    if (pred_json_validate((char *) call->body.data, call->body.len, &where)
        != 0 || call->body.len == 0 || call->body.data[0] != '[')
    {
        if (ngx_http_pred_warn_allowed(sr->connection->log)) {
            ngx_log_error(NGX_LOG_WARN, sr->connection->log, 0,
                          "pred: reranker answer for key \"%V\" is not a "
                          "JSON array of ids", &call->ctx->key);
        }
        return;
    }

    call->result = 1;
}


/* the reranker answered, failed, was shed or missed its deadline */
static ngx_int_t
ngx_http_pred_refine_resume(ngx_http_request_t *r, ngx_http_pred_call_t *call)
{
    ngx_int_t                rc;
    ngx_http_pred_ctx_t     *ctx;
    ngx_http_pred_answer_t  *ans;

    ctx = call->ctx;
    ans = &ctx->pending;

    if (call->late) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "pred: reranker for key \"%V\" missed its %M ms "
                      "deadline; sending the batch order", &ctx->key,
                      call->timeout);
    }

    rc = (call->result && !call->late)
         ? ngx_http_pred_refine_reorder(r, call, &ans->value)
         : NGX_DECLINED;

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "pred: key \"%V\": %s", &ctx->key,
                   rc == NGX_OK ? "reranked in time" : "sending the batch "
                                                       "order");

    ctx->refined = (rc == NGX_OK) ? 2 : 1;

    return ngx_http_pred_answer(r, ctx, ans);
}


/*
 * The items the reranker named, in its order, then the rest of the first
 * top in the batch order, then the tail as it was.
 */
static ngx_int_t
ngx_http_pred_refine_reorder(ngx_http_request_t *r,
    ngx_http_pred_call_t *call, ngx_str_t *value)
{
    u_char                    *out, *d, *used;
    size_t                     n, i, k, nids, kept;
    ngx_str_t                  id;
    const char                *v, *vend, *ls, *le, *p, **is, **ie, **ids,
                             **ide;
    ngx_http_pred_loc_conf_t  *plcf;

    plcf = call->ctx->plcf;
    v = (char *) value->data;
    vend = v + value->len;

    if (pred_json_member(v, vend, (char *) plcf->filter_list.data,
                         plcf->filter_list.len, &ls, &le) != 0)
    {
        return NGX_DECLINED;
    }

    n = plcf->refine_top;

    is = ngx_palloc(r->pool, 4 * n * sizeof(char *) + n);
    if (is == NULL) {
        return NGX_ERROR;
    }

    ie = is + n;
    ids = ie + n;
    ide = ids + n;
    used = (u_char *) (ide + n);
    ngx_memzero(used, n);

    /* the first top items: the candidates that were sent */
    p = pred_json_skip_ws(ls + 1, le);

    for (i = 0; p < le && *p != ']' && i < n; i++) {
        is[i] = p;
        ie[i] = pred_json_skip_value(p, le);

        p = pred_json_skip_ws(ie[i], le);
        if (p < le && *p == ',') {
            p = pred_json_skip_ws(p + 1, le);
        }
    }

    n = i;

    if (pred_json_array((char *) call->body.data,
                        (char *) call->body.data + call->body.len, ids, ide,
                        plcf->refine_top, &nids)
        != 0)
    {
        return NGX_DECLINED;
    }

    out = ngx_pnalloc(r->pool, value->len);
    if (out == NULL) {
        return NGX_ERROR;
    }

    d = ngx_cpymem(out, v, ls - v);
    *d++ = '[';
    kept = 0;

    for (k = 0; k < nids; k++) {
        id.data = (u_char *) ids[k];
        id.len = ide[k] - ids[k];

        if (id.len >= 2 && id.data[0] == '"') {
            id.data++;
            id.len -= 2;
        }

        for (i = 0; i < n; i++) {
            if (!used[i] && ngx_http_pred_filter_match(is[i], ie[i],
                                                       &plcf->filter_id,
                                                       &id))
            {
                used[i] = 1;
                if (kept++) {
                    *d++ = ',';
                }
                d = ngx_cpymem(d, is[i], ie[i] - is[i]);
                break;
            }
        }
    }

    for (i = 0; i < n; i++) {
        if (!used[i]) {
            if (kept++) {
                *d++ = ',';
            }
            d = ngx_cpymem(d, is[i], ie[i] - is[i]);
        }
    }

    /* the tail beyond the first top, unchanged */
    if (p < le && *p != ']') {
        if (kept) {
            *d++ = ',';
        }

        d = ngx_cpymem(d, p, le - 1 - p);
    }

    *d++ = ']';
    d = ngx_cpymem(d, le, vend - le);

    value->data = out;
    value->len = d - out;

    return NGX_OK;
}
