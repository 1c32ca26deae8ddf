/*
 * ngx_http_pred_module: directives and the content handler.
 *
 * The handler decodes and validates the key, then asks each tier in turn.
 */

#include "ngx_http_pred_module.h"
#include "pred_key.h"


/* a long key is already refused; this only keeps log lines short */
#define NGX_HTTP_PRED_LOG_KEY_MAX  128


static ngx_int_t ngx_http_pred_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_pred_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, ngx_str_t *key, const char *reason);
static ngx_int_t ngx_http_pred_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body);
static void *ngx_http_pred_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_pred_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_pred(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);


static ngx_command_t  ngx_http_pred_commands[] = {

    { ngx_string("pred"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_pred,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("pred_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pred_loc_conf_t, key),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_pred_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_pred_create_loc_conf,         /* create location configuration */
    ngx_http_pred_merge_loc_conf           /* merge location configuration */
};


ngx_module_t  ngx_http_pred_module = {
    NGX_MODULE_V1,
    &ngx_http_pred_module_ctx,             /* module context */
    ngx_http_pred_commands,                /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_pred_handler(ngx_http_request_t *r)
{
    size_t                     log_len;
    ngx_int_t                  rc;
    ngx_str_t                  raw, key;
    pred_key_rc_t              krc;
    ngx_table_elt_t           *allow;
    ngx_http_pred_loc_conf_t  *plcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        allow = ngx_list_push(&r->headers_out.headers);
        if (allow == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        allow->hash = 1;
        ngx_str_set(&allow->key, "Allow");
        ngx_str_set(&allow->value, "GET, HEAD");

        return ngx_http_pred_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed", NULL,
                                        "only GET and HEAD are allowed");
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_pred_module);

    if (ngx_http_complex_value(r, plcf->key, &raw) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* decoding never grows a key; +1 keeps an empty key's buffer valid */
    key.data = ngx_pnalloc(r->pool, raw.len + 1);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    krc = pred_key_decode(raw.data, raw.len, key.data, &key.len);

    if (krc != PRED_KEY_OK) {
        log_len = ngx_min(raw.len, NGX_HTTP_PRED_LOG_KEY_MAX);

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "pred: bad key \"%*s%s\": %s", log_len, raw.data,
                      raw.len > log_len ? "..." : "", pred_key_strerror(krc));

        return ngx_http_pred_send_error(r, NGX_HTTP_BAD_REQUEST, "bad_key",
                                        NULL, pred_key_strerror(krc));
    }

    return ngx_http_pred_send_error(r, NGX_HTTP_NOT_FOUND, "not_found", &key,
                                    NULL);
}


static ngx_int_t
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


static ngx_int_t
ngx_http_pred_send(ngx_http_request_t *r, ngx_uint_t status, ngx_str_t *body)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_length_n = body->len;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

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


static void *
ngx_http_pred_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_pred_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_pred_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->key = NULL;
     */

    conf->enable = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_pred_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_pred_loc_conf_t *prev = parent;
    ngx_http_pred_loc_conf_t *conf = child;

    /* "pred" is not inherited: it names the location that answers */
    ngx_conf_init_value(conf->enable, 0);

    if (conf->key == NULL) {
        conf->key = prev->key;
    }

    if (conf->enable && conf->key == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"pred\" requires \"pred_key\" in the same "
                           "location or above it");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_pred(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pred_loc_conf_t *plcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (plcf->enable != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    plcf->enable = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_pred_handler;

    return NGX_CONF_OK;
}
