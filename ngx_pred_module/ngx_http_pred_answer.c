/*
 * Preparing an answer, before anything is written: the reranker, when the
 * location has one (the request may wait for it), then request-time
 * shaping.  Only then is it sent, and sending starts nothing.
 */

#include "ngx_http_pred_module.h"


/* a value answer: 200 */
void
ngx_http_pred_answer_value(ngx_http_pred_answer_t *ans,
    ngx_http_pred_source_e source, ngx_str_t *value, time_t age)
{
    ngx_memzero(ans, sizeof(ngx_http_pred_answer_t));

    ans->status = NGX_HTTP_OK;
    ans->source = source;
    ans->value = *value;
    ans->age = age;
}


/* an error answer, its body naming the key when it is about the key */
void
ngx_http_pred_answer_error(ngx_http_pred_answer_t *ans, ngx_uint_t status,
    ngx_http_pred_source_e source, const char *code, const char *reason)
{
    ngx_memzero(ans, sizeof(ngx_http_pred_answer_t));

    ans->status = status;
    ans->source = source;
    ans->code = code;
    ans->reason = reason;
    ans->with_key = 1;
}


/*
 * Prepares and sends a single-key request's answer.  NGX_DONE while the
 * reranker is asked: the answer is kept in ctx->pending, and this runs
 * again when the reranker answers or its deadline passes.
 */
ngx_int_t
ngx_http_pred_answer(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    ngx_http_pred_answer_t *ans)
{
    u_char                    *msg;
    ngx_int_t                  rc;
    ngx_str_t                  shaped;
    const char                *arg, *reason;
    ngx_http_pred_answer_t     bad;
    ngx_http_pred_loc_conf_t  *plcf;

    plcf = ctx->plcf;

    /* the reranker first, so that limit= cuts the reranked list */
    if (ans->status == NGX_HTTP_OK && plcf->refine_uri.len
        && ctx->refined == 0)
    {
        rc = ngx_http_pred_refine_start(r, ctx, ans);

        if (rc == NGX_DONE || rc == NGX_ERROR) {
            return rc == NGX_DONE ? NGX_DONE : NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* shaping parses the value: only when the request asks for it */
    if (ans->status == NGX_HTTP_OK && plcf->filter) {
        shaped = ans->value;
        rc = ngx_http_pred_filter(r, plcf, &shaped, &arg, &reason);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_DECLINED) {
            msg = ngx_pnalloc(r->pool, ngx_strlen(arg) + ngx_strlen(reason)
                                       + 3);
            if (msg == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            ngx_sprintf(msg, "%s: %s%Z", arg, reason);

            ngx_http_pred_answer_error(&bad, NGX_HTTP_BAD_REQUEST,
                                       NGX_HTTP_PRED_SRC_NONE,
                                       "bad_argument", (char *) msg);
            bad.with_key = 0;
            ans = &bad;

        } else {
            ans->value = shaped;
        }
    }

    ngx_http_pred_calls_detach(r, ctx);

    return ngx_http_pred_send_answer(r, ctx, ans);
}
