/*
 * The module's variables.
 *
 *   $pred_key, $pred_key_escaped, $pred_key_json
 *                                  the decoded key: raw, safe in a URI, safe
 *                                  in a JSON string; in a call's subrequest,
 *                                  its parent's
 *   $pred_json_arg_NAME            the request argument NAME, %-decoded and
 *                                  safe in a JSON string
 *   $pred_keys_json                the keys a batch call asks for
 *   $pred_candidates               the candidates a reranker call sends
 *   $pred_source, $pred_version, $pred_age, $pred_stale, $pred_refined,
 *   $pred_stage                    what the answer's headers said
 *   $pred_snapshot_role            "live" or "candidate": which of the
 *                                  snapshot's versions X-Pred-Version names
 *   $pred_upstream_time            the model call, in seconds with
 *                                  milliseconds, like $upstream_response_time
 *
 * What was not sent, or a request no pred handler answered, is not found
 * ("-" in logs, as nginx logs any missing variable).
 */

#include "ngx_http_pred_module.h"


#define NGX_HTTP_PRED_VAR_KEY          0
#define NGX_HTTP_PRED_VAR_KEY_ESCAPED  1
#define NGX_HTTP_PRED_VAR_KEYS_JSON    2
#define NGX_HTTP_PRED_VAR_CANDIDATES   3
#define NGX_HTTP_PRED_VAR_KEY_JSON     4

#define NGX_HTTP_PRED_VAR_SOURCE       0
#define NGX_HTTP_PRED_VAR_VERSION      1
#define NGX_HTTP_PRED_VAR_AGE          2
#define NGX_HTTP_PRED_VAR_STALE        3
#define NGX_HTTP_PRED_VAR_REFINED      4
#define NGX_HTTP_PRED_VAR_UP_TIME      5
#define NGX_HTTP_PRED_VAR_STAGE        6
#define NGX_HTTP_PRED_VAR_ROLE         7


static ngx_int_t ngx_http_pred_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_pred_out_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_pred_json_arg_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_pred_variable_json(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, ngx_str_t *s);
static ngx_http_pred_ctx_t *ngx_http_pred_variable_ctx(
    ngx_http_request_t *r);
static void ngx_http_pred_variable_set(ngx_http_variable_value_t *v,
    ngx_str_t *s);


static ngx_http_variable_t  ngx_http_pred_vars[] = {

    { ngx_string("pred_key"), NULL, ngx_http_pred_key_variable,
      NGX_HTTP_PRED_VAR_KEY, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("pred_key_escaped"), NULL, ngx_http_pred_key_variable,
      NGX_HTTP_PRED_VAR_KEY_ESCAPED, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("pred_key_json"), NULL, ngx_http_pred_key_variable,
      NGX_HTTP_PRED_VAR_KEY_JSON, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("pred_json_arg_"), NULL, ngx_http_pred_json_arg_variable,
      0, NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_PREFIX, 0 },

    { ngx_string("pred_keys_json"), NULL, ngx_http_pred_key_variable,
      NGX_HTTP_PRED_VAR_KEYS_JSON, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("pred_candidates"), NULL, ngx_http_pred_key_variable,
      NGX_HTTP_PRED_VAR_CANDIDATES, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("pred_source"), NULL, ngx_http_pred_out_variable,
      NGX_HTTP_PRED_VAR_SOURCE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("pred_version"), NULL, ngx_http_pred_out_variable,
      NGX_HTTP_PRED_VAR_VERSION, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("pred_age"), NULL, ngx_http_pred_out_variable,
      NGX_HTTP_PRED_VAR_AGE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("pred_stale"), NULL, ngx_http_pred_out_variable,
      NGX_HTTP_PRED_VAR_STALE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("pred_refined"), NULL, ngx_http_pred_out_variable,
      NGX_HTTP_PRED_VAR_REFINED, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("pred_upstream_time"), NULL, ngx_http_pred_out_variable,
      NGX_HTTP_PRED_VAR_UP_TIME, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("pred_stage"), NULL, ngx_http_pred_out_variable,
      NGX_HTTP_PRED_VAR_STAGE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("pred_snapshot_role"), NULL, ngx_http_pred_out_variable,
      NGX_HTTP_PRED_VAR_ROLE, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_pred_var_one = ngx_string("1");
static ngx_str_t  ngx_http_pred_var_live = ngx_string("live");
static ngx_str_t  ngx_http_pred_var_candidate = ngx_string("candidate");
static ngx_str_t  ngx_http_pred_var_zero = ngx_string("0");


ngx_int_t
ngx_http_pred_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_pred_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_pred_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                *p;
    uintptr_t              n;
    ngx_str_t              s;
    ngx_http_pred_ctx_t   *ctx;
    ngx_http_pred_call_t  *call;

    if (data == NGX_HTTP_PRED_VAR_KEYS_JSON
        || data == NGX_HTTP_PRED_VAR_CANDIDATES)
    {
        /* what the call whose subrequest this is sends */
        call = ngx_http_pred_call_of(r);

        if (call && data == NGX_HTTP_PRED_VAR_KEYS_JSON
            && call->kind == NGX_HTTP_PRED_CALL_BATCH)
        {
            if (ngx_http_pred_batch_keys_json(r, call, &s) != NGX_OK) {
                return NGX_ERROR;
            }

            ngx_http_pred_variable_set(v, &s);
            return NGX_OK;
        }

        if (call && data == NGX_HTTP_PRED_VAR_CANDIDATES
            && call->kind == NGX_HTTP_PRED_CALL_RERANK)
        {
            ngx_http_pred_variable_set(v, &call->candidates);
            return NGX_OK;
        }

        v->not_found = 1;
        return NGX_OK;
    }

    ctx = ngx_http_pred_variable_ctx(r);

    if (ctx == NULL || ctx->key.data == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    if (data == NGX_HTTP_PRED_VAR_KEY) {
        ngx_http_pred_variable_set(v, &ctx->key);
        return NGX_OK;
    }

    if (data == NGX_HTTP_PRED_VAR_KEY_JSON) {
        return ngx_http_pred_variable_json(r, v, &ctx->key);
    }

    /* "." and ".." would be path segments to the model host: not as %2E */
    if ((ctx->key.len == 1 || ctx->key.len == 2)
        && ctx->key.data[0] == '.' && ctx->key.data[ctx->key.len - 1] == '.')
    {
        ngx_str_set(&s, "%2E%2E");
        s.len = 3 * ctx->key.len;
        ngx_http_pred_variable_set(v, &s);
        return NGX_OK;
    }

    n = ngx_escape_uri(NULL, ctx->key.data, ctx->key.len,
                       NGX_ESCAPE_URI_COMPONENT);

    p = ngx_pnalloc(r->pool, ctx->key.len + 2 * n);
    if (p == NULL) {
        return NGX_ERROR;
    }

    s.data = p;
    s.len = (u_char *) ngx_escape_uri(p, ctx->key.data, ctx->key.len,
                                      NGX_ESCAPE_URI_COMPONENT) - p;

    ngx_http_pred_variable_set(v, &s);

    return NGX_OK;
}


/*
 * $pred_json_arg_NAME: the argument as a client would mean it (%-decoded,
 * "+" a space), escaped for the inside of a JSON string, so that a request
 * argument can go into a model's JSON body and never change its shape.
 */
static ngx_int_t
ngx_http_pred_json_arg_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t *name = (ngx_str_t *) data;

    u_char               *dst, *src, *p;
    ngx_str_t             arg, value;
    ngx_uint_t            i;
    ngx_http_pred_ctx_t  *ctx;

    arg.data = name->data + sizeof("pred_json_arg_") - 1;
    arg.len = name->len - (sizeof("pred_json_arg_") - 1);

    /* in a call's subrequest, the arguments of the request it is for */
    ctx = ngx_http_pred_variable_ctx(r);

    if (ngx_http_arg(ctx ? ctx->request : r, arg.data, arg.len, &value)
        != NGX_OK)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, value.len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < value.len; i++) {
        p[i] = (value.data[i] == '+') ? ' ' : value.data[i];
    }

    dst = p;
    src = p;
    ngx_unescape_uri(&dst, &src, value.len, 0);

    value.data = p;
    value.len = dst - p;

    return ngx_http_pred_variable_json(r, v, &value);
}


/* s as the inside of a JSON string: invalid UTF-8 as \ufffd */
static ngx_int_t
ngx_http_pred_variable_json(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, ngx_str_t *s)
{
    ngx_str_t  out;

    out.data = ngx_pnalloc(r->pool, ngx_http_pred_json_escape_len(s));
    if (out.data == NULL) {
        return NGX_ERROR;
    }

    out.len = ngx_http_pred_json_escape(out.data, s) - out.data;

    ngx_http_pred_variable_set(v, &out);

    return NGX_OK;
}


static ngx_int_t
ngx_http_pred_out_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char               *p;
    ngx_str_t             s;
    ngx_http_pred_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_pred_module);

    v->not_found = 1;

    if (ctx == NULL) {
        return NGX_OK;
    }

    switch (data) {

    case NGX_HTTP_PRED_VAR_SOURCE:
        if (ngx_http_pred_source_sent(ctx->source)) {
            ngx_http_pred_variable_set(v,
                &ngx_http_pred_source_names[ctx->source]);
        }
        break;

    case NGX_HTTP_PRED_VAR_VERSION:
        if (ctx->version.len) {
            ngx_http_pred_variable_set(v, &ctx->version);
        }
        break;

    case NGX_HTTP_PRED_VAR_AGE:
        if (ctx->age_sent) {
            p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
            if (p == NULL) {
                return NGX_ERROR;
            }

            s.data = p;
            s.len = ngx_sprintf(p, "%T", ctx->age) - p;
            ngx_http_pred_variable_set(v, &s);
        }
        break;

    case NGX_HTTP_PRED_VAR_STALE:
        if (ctx->stale_sent) {
            ngx_http_pred_variable_set(v, &ngx_http_pred_var_one);
        }
        break;

    case NGX_HTTP_PRED_VAR_REFINED:
        if (ctx->refined) {
            ngx_http_pred_variable_set(v, ctx->refined == 2
                                          ? &ngx_http_pred_var_one
                                          : &ngx_http_pred_var_zero);
        }
        break;

    case NGX_HTTP_PRED_VAR_STAGE:
        if (ctx->stage_sent) {
            p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
            if (p == NULL) {
                return NGX_ERROR;
            }

            s.data = p;
            s.len = ngx_sprintf(p, "%ui", ctx->stage) - p;
            ngx_http_pred_variable_set(v, &s);
        }
        break;

    case NGX_HTTP_PRED_VAR_ROLE:
        if (ctx->version.len) {
            ngx_http_pred_variable_set(v, ctx->candidate
                                          ? &ngx_http_pred_var_candidate
                                          : &ngx_http_pred_var_live);
        }
        break;

    default: /* NGX_HTTP_PRED_VAR_UP_TIME */
        if (ctx->up_time >= 0) {
            p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + 4);
            if (p == NULL) {
                return NGX_ERROR;
            }

            s.data = p;
            s.len = ngx_sprintf(p, "%T.%03M", (time_t) ctx->up_time / 1000,
                                (ngx_msec_t) ctx->up_time % 1000) - p;
            ngx_http_pred_variable_set(v, &s);
        }
    }

    return NGX_OK;
}


/* the request's context, or in a call's subrequest its parent's */
static ngx_http_pred_ctx_t *
ngx_http_pred_variable_ctx(ngx_http_request_t *r)
{
    ngx_http_pred_ctx_t  *ctx;

    for (ctx = NULL; r && ctx == NULL; r = r->parent) {
        ctx = ngx_http_get_module_ctx(r, ngx_http_pred_module);
    }

    return ctx;
}


static void
ngx_http_pred_variable_set(ngx_http_variable_value_t *v, ngx_str_t *s)
{
    v->data = s->data;
    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
}
