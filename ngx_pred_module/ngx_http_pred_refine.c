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


static void ngx_http_pred_refine_timeout(ngx_event_t *ev);
static ngx_int_t ngx_http_pred_refine_finish(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx);
static ngx_int_t ngx_http_pred_refine_reorder(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, ngx_str_t *value);


static ngx_str_t  ngx_http_pred_zero = ngx_string("0");


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
 * Called on the way out of a list value: NGX_DONE while the reranker is
 * asked (the answer goes out later), NGX_DECLINED to send it now.
 */
ngx_int_t
ngx_http_pred_refine_start(ngx_http_request_t *r, ngx_str_t *source,
    ngx_str_t *version, time_t age, ngx_uint_t stale, ngx_str_t *value)
{
    u_char               *d;
    size_t                n;
    const char           *ls, *le, *p, *e;
    ngx_http_pred_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_pred_module);

    if (ctx == NULL || ctx->refine_done || ctx->batch) {
        return NGX_DECLINED;
    }

    ctx->refine_done = 1;

    /*
     * A background model call (swr, async) still runs on this context:
     * its answer must stay captured, so no second subrequest now.
     */
    if (ctx->sr && !ctx->done) {
        return ngx_http_pred_add_header(r, &ngx_http_pred_h_refined,
                                        &ngx_http_pred_zero) == NGX_OK
               ? NGX_DECLINED : NGX_ERROR;
    }

    if (pred_json_member((char *) value->data,
                         (char *) value->data + value->len,
                         (char *) ctx->plcf->filter_list.data,
                         ctx->plcf->filter_list.len, &ls, &le) != 0
        || *ls != '[')
    {
        return ngx_http_pred_add_header(r, &ngx_http_pred_h_refined,
                                        &ngx_http_pred_zero) == NGX_OK
               ? NGX_DECLINED : NGX_ERROR;
    }

    /* the first top candidates, as written */
    d = ngx_pnalloc(r->pool, le - ls);
    if (d == NULL) {
        return NGX_ERROR;
    }

    ctx->candidates.data = d;
    *d++ = '[';

    p = pred_json_skip_ws(ls + 1, le);

    for (n = 0; p < le && *p != ']' && n < ctx->plcf->refine_top; n++) {
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
    ctx->candidates.len = d - ctx->candidates.data;

    /* copied: version may point into the handler's stack */
    ctx->ans_source = source;
    ctx->ans_version = NULL;

    if (version) {
        ctx->ans_ver = *version;
        ctx->ans_version = &ctx->ans_ver;
    }

    ctx->ans_age = age;
    ctx->ans_stale = stale;
    ctx->ans_value = *value;

    /* a fresh subrequest for the reranker */
    ctx->refining = 1;
    ctx->done = 0;
    ctx->too_big = 0;
    ctx->result = 0;
    ctx->body.len = 0;

    if (ngx_http_pred_upstream_call(r, ctx, &ctx->plcf->refine_uri)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_pred_upstream_hold(r, ctx, ngx_http_pred_refine_timeout,
                                       ctx->plcf->refine_timeout);
}


/* the reranker's answer, in its subrequest: a JSON array of ids */
void
ngx_http_pred_refine_result(ngx_http_request_t *sr, ngx_http_pred_ctx_t *ctx)
{
    size_t  where;

    if (pred_json_validate((char *) ctx->body.data, ctx->body.len, &where)
        != 0 || ctx->body.len == 0 || ctx->body.data[0] != '[')
    {
        if (ngx_http_pred_warn_allowed(sr->connection->log)) {
            ngx_log_error(NGX_LOG_WARN, sr->connection->log, 0,
                          "pred: reranker answer for key \"%V\" is not a "
                          "JSON array of ids", &ctx->key);
        }
        return;
    }

    ctx->result = 1;
}


ngx_int_t
ngx_http_pred_refine_resume(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx)
{
    return ngx_http_pred_refine_finish(r, ctx);
}


static void
ngx_http_pred_refine_timeout(ngx_event_t *ev)
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
    ctx->result = 0;

    ngx_http_pred_metrics_deadline(ctx);
    ngx_http_pred_upstream_detach(r, ctx);

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "pred: reranker for key \"%V\" missed its %M ms deadline; "
                  "sending the batch order", &ctx->key,
                  ctx->plcf->refine_timeout);

    ngx_http_finalize_request(r, ngx_http_pred_refine_finish(r, ctx));

    ngx_http_run_posted_requests(c);
}


static ngx_int_t
ngx_http_pred_refine_finish(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx)
{
    ngx_int_t  rc;
    ngx_str_t  value;

    ctx->refining = 0;
    value = ctx->ans_value;

    rc = ctx->result ? ngx_http_pred_refine_reorder(r, ctx, &value)
                     : NGX_DECLINED;

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_pred_add_header(r, &ngx_http_pred_h_refined,
                                 rc == NGX_OK ? &ngx_http_pred_one
                                              : &ngx_http_pred_zero)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_pred_send_value(r, ctx->ans_source, ctx->ans_version,
                                    ctx->ans_age, ctx->ans_stale, &value);
}


/*
 * The items the reranker named, in its order, then the rest of the first
 * top in the batch order, then the tail as it was.
 */
static ngx_int_t
ngx_http_pred_refine_reorder(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    ngx_str_t *value)
{
    u_char       *out, *d, *used;
    size_t        n, i, k, nids, kept;
    ngx_str_t     id;
    const char   *v, *vend, *ls, *le, *p, **is, **ie, **ids, **ide;

    v = (char *) value->data;
    vend = v + value->len;

    if (pred_json_member(v, vend, (char *) ctx->plcf->filter_list.data,
                         ctx->plcf->filter_list.len, &ls, &le) != 0)
    {
        return NGX_DECLINED;
    }

    n = ctx->plcf->refine_top;

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

    if (pred_json_array((char *) ctx->body.data,
                        (char *) ctx->body.data + ctx->body.len, ids, ide,
                        ctx->plcf->refine_top, &nids)
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
                                                       &ctx->plcf->filter_id,
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
