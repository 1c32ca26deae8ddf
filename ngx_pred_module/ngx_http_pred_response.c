/*
 * Every response the module writes, and the request body it reads.  An
 * answer's headers say where it came from and how old it is; what they
 * say is recorded in the context for the log variables and the metrics.
 */

#include "ngx_http_pred_module.h"


static ngx_int_t ngx_http_pred_add_header(ngx_http_request_t *r,
    ngx_str_t *name, ngx_str_t *value);


ngx_str_t  ngx_http_pred_source_names[NGX_HTTP_PRED_SRC_N] = {
    ngx_string("cache"),
    ngx_string("snapshot"),
    ngx_string("upstream"),
    ngx_string("stale"),
    ngx_string("default"),
    ngx_string("error"),
    ngx_string("shed"),
    ngx_string("none"),
    ngx_string("batch")
};


static ngx_str_t  ngx_http_pred_h_allow = ngx_string("Allow");
static ngx_str_t  ngx_http_pred_h_source = ngx_string("X-Pred-Source");
static ngx_str_t  ngx_http_pred_h_version = ngx_string("X-Pred-Version");
static ngx_str_t  ngx_http_pred_h_stale = ngx_string("X-Pred-Stale");
static ngx_str_t  ngx_http_pred_h_refined = ngx_string("X-Pred-Refined");
static ngx_str_t  ngx_http_pred_h_stage = ngx_string("X-Pred-Stage");
static ngx_str_t  ngx_http_pred_h_age = ngx_string("Age");
static ngx_str_t  ngx_http_pred_h_retry = ngx_string("Retry-After");

static ngx_str_t  ngx_http_pred_zero = ngx_string("0");
static ngx_str_t  ngx_http_pred_one = ngx_string("1");


/* writes a prepared answer: its headers, then its value or error body */
ngx_int_t
ngx_http_pred_send_answer(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    ngx_http_pred_answer_t *ans)
{
    ngx_str_t  a, s, body;

    if (ngx_http_pred_source_sent(ans->source)) {
        if (ngx_http_pred_add_header(r, &ngx_http_pred_h_source,
                                     &ngx_http_pred_source_names[ans->source])
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->source = ans->source;
    }

    if (ans->version.len) {
        if (ngx_http_pred_add_header(r, &ngx_http_pred_h_version,
                                     &ans->version)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->version = ans->version;
        ctx->candidate = ans->candidate;
    }

    if (ans->staged) {
        s.data = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (s.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        s.len = ngx_sprintf(s.data, "%ui", ans->stage) - s.data;

        if (ngx_http_pred_add_header(r, &ngx_http_pred_h_stage, &s)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->stage = ans->stage;
        ctx->stage_sent = 1;
    }

    if (ctx->refined
        && ngx_http_pred_add_header(r, &ngx_http_pred_h_refined,
                                    ctx->refined == 2 ? &ngx_http_pred_one
                                                      : &ngx_http_pred_zero)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ans->status != NGX_HTTP_OK) {
        if (ans->retry
            && ngx_http_pred_add_header(r, &ngx_http_pred_h_retry,
                                        &ngx_http_pred_one)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "pred: key \"%V\": answering %ui %s", &ctx->key,
                       ans->status, ans->code);

        if (ngx_http_pred_json_error(r->pool, &body, ans->code,
                                     ans->with_key ? &ctx->key : NULL,
                                     ans->reason)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_pred_send(r, ans->status, &body);
    }

    a.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (a.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a.len = ngx_sprintf(a.data, "%T", ans->age) - a.data;

    if (ngx_http_pred_add_header(r, &ngx_http_pred_h_age, &a) != NGX_OK
        || (ans->stale
            && ngx_http_pred_add_header(r, &ngx_http_pred_h_stale,
                                        &ngx_http_pred_one)
               != NGX_OK))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->age = ans->age;
    ctx->age_sent = 1;
    ctx->stale_sent = ans->stale;

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "pred: key \"%V\": answering from %V%s%V, age %T",
                   &ctx->key, &ngx_http_pred_source_names[ans->source],
                   ans->version.len ? " version " : "", &ans->version,
                   ans->age);

    return ngx_http_pred_send(r, NGX_HTTP_OK, &ans->value);
}


ngx_int_t
ngx_http_pred_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, ngx_str_t *key, const char *reason)
{
    ngx_str_t  body;

    if (ngx_http_pred_json_error(r->pool, &body, code, key, reason)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_pred_send(r, status, &body);
}


/* a 405 with Allow */
ngx_int_t
ngx_http_pred_send_not_allowed(ngx_http_request_t *r, ngx_str_t *methods,
    const char *reason)
{
    if (ngx_http_pred_add_header(r, &ngx_http_pred_h_allow, methods)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_pred_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                    "method_not_allowed", NULL, reason);
}


ngx_int_t
ngx_http_pred_send(ngx_http_request_t *r, ngx_uint_t status, ngx_str_t *body)
{
    r->headers_out.status = status;
    r->headers_out.content_length_n = body->len;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    return ngx_http_pred_send_raw(r, body);
}


/* sends body, the status and headers being set already */
ngx_int_t
ngx_http_pred_send_raw(ngx_http_request_t *r, ngx_str_t *body)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = body->data;
    b->last = body->data + body->len;
    b->memory = body->len ? 1 : 0;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static ngx_int_t
ngx_http_pred_add_header(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key = *name;
    h->value = *value;
    ngx_http_pred_header_end(h);

    return NGX_OK;
}


/* the whole body in one buffer; NGX_DECLINED: it was too big to keep */
ngx_int_t
ngx_http_pred_read_body(ngx_http_request_t *r, ngx_str_t *body)
{
    off_t         len;
    u_char       *p;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    body->len = 0;
    body->data = (u_char *) "";

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    /* one buffer in memory: used where it is, not copied */
    cl = r->request_body->bufs;
    b = cl->buf;

    if (cl->next == NULL && !b->in_file) {
        body->data = b->pos;
        body->len = b->last - b->pos;
        return NGX_OK;
    }

    len = 0;
    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        len += b->in_file ? b->file_last - b->file_pos : b->last - b->pos;
    }

    if (len > (off_t) NGX_MAX_SIZE_T_VALUE / 2) {
        return NGX_DECLINED;
    }

    p = ngx_pnalloc(r->pool, (size_t) len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    body->data = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, b->file_last - b->file_pos,
                              b->file_pos);
            if (n == NGX_ERROR) {
                return NGX_ERROR;
            }

            p += n;
            continue;
        }

        p = ngx_cpymem(p, b->pos, b->last - b->pos);
    }

    body->len = p - body->data;

    return NGX_OK;
}
