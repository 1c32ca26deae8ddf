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
static ngx_int_t ngx_http_pred_send_hit(ngx_http_request_t *r,
    ngx_str_t *key, ngx_http_pred_hit_t *hit);
static ngx_int_t ngx_http_pred_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_pred_out_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_pred_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_pred_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_pred_init_process(ngx_cycle_t *cycle);
static void ngx_http_pred_exit_process(ngx_cycle_t *cycle);
static void *ngx_http_pred_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_pred_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_pred_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_pred(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);


static ngx_conf_enum_t  ngx_http_pred_priorities[] = {
    { ngx_string("normal"), NGX_HTTP_PRED_PRIO_NORMAL },
    { ngx_string("high"), NGX_HTTP_PRED_PRIO_HIGH },
    { ngx_string("low"), NGX_HTTP_PRED_PRIO_LOW },
    { ngx_null_string, 0 }
};


static ngx_conf_enum_t  ngx_http_pred_miss_modes[] = {
    { ngx_string("sync"), 0 },
    { ngx_string("async"), 1 },
    { ngx_null_string, 0 }
};


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

    { ngx_string("pred_snapshot_path"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_pred_snapshot_path,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("pred_snapshot"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pred_loc_conf_t, snapshot_name),
      NULL },

    { ngx_string("pred_cache_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_pred_cache_zone,
      0,
      0,
      NULL },

    { ngx_string("pred_cache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_pred_cache,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("pred_admin"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_pred_admin,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("pred_upstream"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_pred_upstream,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("pred_upstream_extract"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pred_loc_conf_t, upstream_extract),
      NULL },

    { ngx_string("pred_fallback"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_pred_fallback,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("pred_miss_mode"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pred_loc_conf_t, miss_async),
      &ngx_http_pred_miss_modes },

    { ngx_string("pred_batch"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_pred_batch,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("pred_filter"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pred_loc_conf_t, filter),
      NULL },

    { ngx_string("pred_filter_list"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pred_loc_conf_t, filter_list),
      NULL },

    { ngx_string("pred_filter_id"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pred_loc_conf_t, filter_id),
      NULL },

    { ngx_string("pred_filter_score"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pred_loc_conf_t, filter_score),
      NULL },

    { ngx_string("pred_filter_fields"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_pred_filter_fields_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("pred_filter_args"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_pred_filter_args_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("pred_refine"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_pred_refine,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("pred_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_pred_metrics,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("pred_name"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pred_loc_conf_t, name),
      NULL },

    { ngx_string("pred_upstream_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE123,
      ngx_http_pred_upstream_limit,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("pred_upstream_breaker"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_pred_upstream_breaker,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("pred_priority"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pred_loc_conf_t, priority),
      &ngx_http_pred_priorities },

    { ngx_string("pred_max_age"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pred_loc_conf_t, max_age),
      NULL },

      ngx_null_command
};


static ngx_http_variable_t  ngx_http_pred_vars[] = {

    { ngx_string("pred_key"), NULL, ngx_http_pred_key_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("pred_key_escaped"), NULL, ngx_http_pred_key_variable, 1,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("pred_keys_json"), NULL, ngx_http_pred_key_variable, 2,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("pred_candidates"), NULL, ngx_http_pred_key_variable, 3,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("pred_source"), NULL, ngx_http_pred_out_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("pred_version"), NULL, ngx_http_pred_out_variable, 1,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("pred_age"), NULL, ngx_http_pred_out_variable, 2,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("pred_stale"), NULL, ngx_http_pred_out_variable, 3,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("pred_refined"), NULL, ngx_http_pred_out_variable, 4,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("pred_upstream_time"), NULL, ngx_http_pred_out_variable, 5,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_http_module_t  ngx_http_pred_module_ctx = {
    ngx_http_pred_add_variables,           /* preconfiguration */
    ngx_http_pred_postconfiguration,       /* postconfiguration */

    ngx_http_pred_create_main_conf,        /* create main configuration */
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
    ngx_http_pred_init_process,            /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_pred_exit_process,            /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


ngx_str_t  ngx_http_pred_h_source = ngx_string("X-Pred-Source");
ngx_str_t  ngx_http_pred_h_refined = ngx_string("X-Pred-Refined");
static ngx_str_t  ngx_http_pred_h_version = ngx_string("X-Pred-Version");
static ngx_str_t  ngx_http_pred_h_stale = ngx_string("X-Pred-Stale");
static ngx_str_t  ngx_http_pred_h_age = ngx_string("Age");
static ngx_str_t  ngx_http_pred_h_allow = ngx_string("Allow");
ngx_str_t  ngx_http_pred_h_retry = ngx_string("Retry-After");

static ngx_str_t  ngx_http_pred_snapshot_source = ngx_string("snapshot");
static ngx_str_t  ngx_http_pred_cache_source = ngx_string("cache");
ngx_str_t  ngx_http_pred_one = ngx_string("1");
static ngx_str_t  ngx_http_pred_methods = ngx_string("GET, HEAD");
static ngx_str_t  ngx_http_pred_methods_post = ngx_string("GET, HEAD, POST");


static ngx_int_t
ngx_http_pred_handler(ngx_http_request_t *r)
{
    ngx_int_t                    rc;
    ngx_str_t                    raw, key;
    ngx_uint_t                   masked;
    const char                  *reason;
    ngx_http_pred_hit_t          hit;
    ngx_http_pred_ctx_t         *ctx;
    ngx_http_pred_cached_t       cached;
    ngx_http_pred_loc_conf_t    *plcf;
    ngx_http_pred_cache_zone_t  *z;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_pred_module);

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))
        && !(plcf->batch && r->method == NGX_HTTP_POST))
    {
        if (ngx_http_pred_add_header(r, &ngx_http_pred_h_allow,
                                     plcf->batch ? &ngx_http_pred_methods_post
                                                 : &ngx_http_pred_methods)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_pred_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                        "method_not_allowed", NULL,
                                        plcf->batch
                                        ? "only GET, HEAD and POST are "
                                          "allowed"
                                        : "only GET and HEAD are allowed");
    }

    if (plcf->batch) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_pred_ctx_t));
        if (ctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->plcf = plcf;
        ctx->up_time = -1;
        ngx_http_set_ctx(r, ctx, ngx_http_pred_module);

        return ngx_http_pred_batch_handler(r);
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_complex_value(r, plcf->key, &raw) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_pred_decode_key(r, &raw, &key, &reason);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_DECLINED) {
        return ngx_http_pred_send_error(r, NGX_HTTP_BAD_REQUEST, "bad_key",
                                        NULL, reason);
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_pred_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->key = key;
    ctx->plcf = plcf;
    ctx->up_time = -1;
    ngx_http_set_ctx(r, ctx, ngx_http_pred_module);

    /* the shared-memory tier first: fresh answers and overrides */

    masked = 0;
    z = ngx_http_pred_cache_zone_get(plcf);

    if (z) {
        rc = ngx_http_pred_cache_get(r, z, &key, &cached);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_OK && cached.expired_ms <= 0) {
            switch (cached.kind) {

            case NGX_HTTP_PRED_CACHE_VALUE:
                return ngx_http_pred_send_value(r,
                                                &ngx_http_pred_cache_source,
                                                NULL, cached.age, 0,
                                                &cached.value);

            case NGX_HTTP_PRED_CACHE_NEGATIVE:
                if (ngx_http_pred_add_header(r, &ngx_http_pred_h_source,
                                             &ngx_http_pred_cache_source)
                    != NGX_OK)
                {
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }

                return ngx_http_pred_send_error(r, NGX_HTTP_NOT_FOUND,
                                                "not_found", &key, NULL);

            default: /* NGX_HTTP_PRED_CACHE_TOMBSTONE */
                masked = 1;
            }

        } else if (rc == NGX_OK && cached.kind == NGX_HTTP_PRED_CACHE_VALUE) {

            /* stale-while-revalidate: answer now, one refresh for all */
            if (plcf->upstream_uri.len
                && cached.expired_ms
                   <= (ngx_msec_int_t) plcf->cache_swr * 1000)
            {
                if (ngx_http_pred_cache_lead(z, &key, plcf->upstream_timeout)
                    == NGX_OK)
                {
                    ctx->leader = 1;

                    if (ngx_http_pred_upstream_call(r, ctx,
                                                    &plcf->upstream_uri)
                        != NGX_OK)
                    {
                        return NGX_HTTP_INTERNAL_SERVER_ERROR;
                    }

                    ngx_http_pred_upstream_detach(r, ctx);
                }

                return ngx_http_pred_send_value(r,
                                                &ngx_http_pred_cache_source,
                                                NULL, cached.age, 1,
                                                &cached.value);
            }

            ctx->stale = cached.value;
            ctx->stale_age = cached.age;
            ctx->has_stale = 1;
        }
    }

    /* an invalidated key must not fall back to the batch answer */

    if (plcf->snapshot && !masked) {
        rc = ngx_http_pred_snapshot_lookup(r, plcf->snapshot, plcf->max_age,
                                           &key, &hit);
        switch (rc) {

        case NGX_OK:
            if (!(hit.stale && hit.fallback == PRED_SNAP_STALE_UPSTREAM
                  && plcf->upstream_uri.len))
            {
                return ngx_http_pred_send_hit(r, &key, &hit);
            }

            /* stale, and the snapshot asks for the model: keep it for later */
            ctx->stale = hit.value;
            ctx->stale_age = hit.age;
            ctx->has_stale = 1;
            break;

        case NGX_BUSY:
            if (plcf->upstream_uri.len) {
                break;
            }

            if (ngx_http_pred_add_header(r, &ngx_http_pred_h_retry,
                                         &ngx_http_pred_one)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return ngx_http_pred_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                            "snapshot_unavailable", &key,
                                            NULL);

        case NGX_ERROR:
            return ngx_http_pred_send_error(r,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR,
                                            "internal_error", &key,
                                            "snapshot read failed");
        }
    }

    if (plcf->upstream_uri.len) {
        return ngx_http_pred_upstream_miss(r, ctx);
    }

    return ngx_http_pred_send_error(r, NGX_HTTP_NOT_FOUND, "not_found", &key,
                                    NULL);
}


/*
 * One "name=value" directive parameter (name ends with "="): NGX_DECLINED
 * when arg is another one, NGX_OK with the value in *out, or NGX_ERROR
 * after logging "invalid name "arg"".  kind: 's' seconds (time_t),
 * 'm' milliseconds (ngx_msec_t), 'z' a size (size_t), 'n' a number
 * (ngx_uint_t).
 */
ngx_int_t
ngx_http_pred_conf_param(ngx_conf_t *cf, ngx_str_t *arg, const char *name,
    u_char kind, ngx_uint_t zero_ok, void *out)
{
    size_t     len;
    ngx_int_t  n;
    ngx_str_t  v;

    len = ngx_strlen(name);

    if (arg->len < len || ngx_strncmp(arg->data, name, len) != 0) {
        return NGX_DECLINED;
    }

    v.data = arg->data + len;
    v.len = arg->len - len;

    switch (kind) {
    case 's':
        n = ngx_parse_time(&v, 1);
        break;
    case 'm':
        n = ngx_parse_time(&v, 0);
        break;
    case 'z':
        n = ngx_parse_size(&v);
        break;
    default:
        n = ngx_atoi(v.data, v.len);
    }

    if (n == NGX_ERROR || (n == 0 && !zero_ok)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid %*s \"%V\"",
                           len - 1, name, arg);
        return NGX_ERROR;
    }

    switch (kind) {
    case 's':
        *(time_t *) out = (time_t) n;
        break;
    case 'm':
        *(ngx_msec_t *) out = (ngx_msec_t) n;
        break;
    case 'z':
        *(size_t *) out = (size_t) n;
        break;
    default:
        *(ngx_uint_t *) out = (ngx_uint_t) n;
    }

    return NGX_OK;
}


/*
 * The directive's arguments from "from" on, each one of params (a table
 * ended by a NULL name); anything else is an invalid parameter.
 */
char *
ngx_http_pred_conf_params(ngx_conf_t *cf, ngx_uint_t from,
    ngx_http_pred_conf_param_t *params)
{
    ngx_int_t                    rc;
    ngx_str_t                   *value;
    ngx_uint_t                   i;
    ngx_http_pred_conf_param_t  *p;

    value = cf->args->elts;

    for (i = from; i < cf->args->nelts; i++) {

        rc = NGX_DECLINED;

        for (p = params; p->name && rc == NGX_DECLINED; p++) {
            rc = ngx_http_pred_conf_param(cf, &value[i], p->name, p->kind,
                                          p->zero_ok, p->out);
        }

        if (rc == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        if (rc == NGX_DECLINED) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/*
 * Decodes and validates a raw key into the pool.  NGX_DECLINED: the key is
 * bad (logged at info, the client's fault), *reason says why.
 */
ngx_int_t
ngx_http_pred_decode_key(ngx_http_request_t *r, ngx_str_t *raw,
    ngx_str_t *key, const char **reason)
{
    size_t         log_len;
    pred_key_rc_t  krc;

    /* decoding never grows a key; +1 keeps an empty key's buffer valid */
    key->data = ngx_pnalloc(r->pool, raw->len + 1);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    krc = pred_key_decode(raw->data, raw->len, key->data, &key->len);

    if (krc == PRED_KEY_OK) {
        return NGX_OK;
    }

    log_len = ngx_min(raw->len, NGX_HTTP_PRED_LOG_KEY_MAX);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "pred: bad key \"%*s%s\": %s", log_len, raw->data,
                  raw->len > log_len ? "..." : "", pred_key_strerror(krc));

    *reason = pred_key_strerror(krc);

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_pred_send_hit(ngx_http_request_t *r, ngx_str_t *key,
    ngx_http_pred_hit_t *hit)
{
    /* "upstream" answers like "serve" until there is a miss path */
    if (hit->stale && hit->fallback == PRED_SNAP_STALE_FAIL) {
        if (ngx_http_pred_add_header(r, &ngx_http_pred_h_version,
                                     &hit->version)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_pred_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                        "stale", key, NULL);
    }

    return ngx_http_pred_send_value(r, &ngx_http_pred_snapshot_source,
                                    &hit->version, hit->age, hit->stale,
                                    &hit->value);
}


ngx_int_t
ngx_http_pred_send_value(ngx_http_request_t *r, ngx_str_t *source,
    ngx_str_t *version, time_t age, ngx_uint_t stale, ngx_str_t *value)
{
    u_char                    *msg;
    ngx_str_t                  a, shaped;
    ngx_int_t                  rc;
    const char                *arg, *reason;
    ngx_http_pred_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_pred_module);

    /* the reranker first, so that limit= cuts the reranked list */
    if (plcf->refine_uri.len) {
        rc = ngx_http_pred_refine_start(r, source, version, age, stale,
                                        value);
        if (rc == NGX_DONE) {
            return NGX_DONE;
        }

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* shaping parses the value: only when the request asks for it */
    if (plcf->filter) {
        shaped = *value;
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

            return ngx_http_pred_send_error(r, NGX_HTTP_BAD_REQUEST,
                                            "bad_argument", NULL,
                                            (char *) msg);
        }

        value = &shaped;
    }

    a.data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (a.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    a.len = ngx_sprintf(a.data, "%T", age) - a.data;

    if (ngx_http_pred_add_header(r, &ngx_http_pred_h_source, source)
        != NGX_OK
        || (version && ngx_http_pred_add_header(r, &ngx_http_pred_h_version,
                                                version)
                       != NGX_OK)
        || ngx_http_pred_add_header(r, &ngx_http_pred_h_age, &a) != NGX_OK
        || (stale && ngx_http_pred_add_header(r, &ngx_http_pred_h_stale,
                                              &ngx_http_pred_one)
                     != NGX_OK))
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_pred_send(r, NGX_HTTP_OK, value);
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


ngx_int_t
ngx_http_pred_add_header(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value)
{
    ngx_uint_t            i;
    ngx_table_elt_t      *h;
    ngx_http_pred_ctx_t  *ctx;

    static ngx_str_t     *logged[] = {
        &ngx_http_pred_h_source, &ngx_http_pred_h_version,
        &ngx_http_pred_h_age, &ngx_http_pred_h_stale,
        &ngx_http_pred_h_refined
    };

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key = *name;
    h->value = *value;

    /* the log variables say what the headers said */
    ctx = ngx_http_get_module_ctx(r, ngx_http_pred_module);

    for (i = 0; ctx && i < sizeof(logged) / sizeof(logged[0]); i++) {
        if (name == logged[i]) {
            ctx->out[i] = *value;
        }
    }

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


/*
 * $pred_key: the decoded key; $pred_key_escaped: safe in a URI;
 * $pred_keys_json: a batch's keys for the model, as a JSON array
 */
static ngx_int_t
ngx_http_pred_key_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char               *p;
    uintptr_t             n;
    ngx_http_request_t   *pr;
    ngx_http_pred_ctx_t  *ctx;

    /* in the model call's subrequest, the key is its parent's */
    ctx = NULL;
    for (pr = r; pr && ctx == NULL; pr = pr->parent) {
        ctx = ngx_http_get_module_ctx(pr, ngx_http_pred_module);
    }

    if (data == 2) {
        return ngx_http_pred_batch_keys_variable(r, v, ctx);
    }

    if (data == 3) {
        if (ctx == NULL || ctx->candidates.data == NULL) {
            v->not_found = 1;
            return NGX_OK;
        }

        v->data = ctx->candidates.data;
        v->len = ctx->candidates.len;
        v->valid = 1;
        v->no_cacheable = 1;
        v->not_found = 0;
        return NGX_OK;
    }

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    if (data == 0) {
        v->data = ctx->key.data;
        v->len = ctx->key.len;
        return NGX_OK;
    }

    n = ngx_escape_uri(NULL, ctx->key.data, ctx->key.len,
                       NGX_ESCAPE_URI_COMPONENT);

    p = ngx_pnalloc(r->pool, ctx->key.len + 2 * n);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;
    v->len = (u_char *) ngx_escape_uri(p, ctx->key.data, ctx->key.len,
                                       NGX_ESCAPE_URI_COMPONENT) - p;

    return NGX_OK;
}


/*
 * $pred_source, $pred_version, $pred_age, $pred_stale, $pred_refined: as
 * sent in the headers; $pred_upstream_time: the model call, in seconds with
 * milliseconds, like $upstream_response_time.  Unsent: not found ("-" in
 * logs, as nginx logs any empty variable).
 */
static ngx_int_t
ngx_http_pred_out_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char               *p;
    ngx_http_pred_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_pred_module);

    if (ctx == NULL || (data < 5 && ctx->out[data].len == 0)
        || (data == 5 && ctx->up_time < 0))
    {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    if (data < 5) {
        v->len = ctx->out[data].len;
        v->data = ctx->out[data].data;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + 4);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;
    v->len = ngx_sprintf(p, "%T.%03M", (time_t) ctx->up_time / 1000,
                         (ngx_msec_t) ctx->up_time % 1000) - p;

    return NGX_OK;
}


static ngx_int_t
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
ngx_http_pred_postconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_pred_upstream_init_filters(cf) != NGX_OK
        || ngx_http_pred_signals_add(cf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_pred_metrics_init(cf);
}


static ngx_int_t
ngx_http_pred_init_process(ngx_cycle_t *cycle)
{
    ngx_http_pred_metrics_init_process();

    return ngx_http_pred_snapshot_init_process(cycle);
}


static void
ngx_http_pred_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_pred_snapshot_exit_process(cycle);
}


static void *
ngx_http_pred_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_pred_main_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_pred_main_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&conf->snapshots, cf->pool, 4,
                       sizeof(ngx_http_pred_snapshot_t *))
        != NGX_OK
        || ngx_array_init(&conf->zones, cf->pool, 4,
                          sizeof(ngx_http_pred_cache_zone_t *))
           != NGX_OK
        || ngx_array_init(&conf->names, cf->pool, 8, sizeof(ngx_str_t))
           != NGX_OK)
    {
        return NULL;
    }

    return conf;
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
     *     conf->snapshot_name = { 0, NULL };
     *     conf->snapshot = NULL;
     */

    conf->enable = NGX_CONF_UNSET;
    conf->max_age = NGX_CONF_UNSET;
    conf->cache_zone = NGX_CONF_UNSET_PTR;
    conf->cache_ttl = NGX_CONF_UNSET;
    conf->cache_swr = NGX_CONF_UNSET;
    conf->admin_max_body = NGX_CONF_UNSET_SIZE;
    conf->upstream_timeout = NGX_CONF_UNSET_MSEC;
    conf->upstream_max_size = NGX_CONF_UNSET_SIZE;
    conf->miss_async = NGX_CONF_UNSET_UINT;
    conf->priority = NGX_CONF_UNSET_UINT;
    conf->batch = NGX_CONF_UNSET;
    conf->batch_max = NGX_CONF_UNSET_UINT;
    conf->filter = NGX_CONF_UNSET;
    conf->refine_timeout = NGX_CONF_UNSET_MSEC;
    conf->refine_top = NGX_CONF_UNSET_UINT;
    conf->filter_fields = NGX_CONF_UNSET_PTR;
    conf->fallback = NGX_CONF_UNSET_PTR;

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

    ngx_conf_merge_size_value(conf->admin_max_body, prev->admin_max_body,
                              64 * 1024);
    ngx_conf_merge_uint_value(conf->miss_async, prev->miss_async, 0);
    ngx_conf_merge_uint_value(conf->priority, prev->priority,
                              NGX_HTTP_PRED_PRIO_NORMAL);
    ngx_conf_merge_value(conf->batch, prev->batch, 0);
    ngx_conf_merge_uint_value(conf->batch_max, prev->batch_max, 100);
    ngx_http_pred_filter_merge(prev, conf);
    ngx_conf_merge_str_value(conf->refine_uri, prev->refine_uri, "");
    ngx_conf_merge_msec_value(conf->refine_timeout, prev->refine_timeout, 30);
    ngx_conf_merge_uint_value(conf->refine_top, prev->refine_top, 50);

    if (ngx_http_pred_cache_merge(cf, prev, conf) != NGX_CONF_OK
        || ngx_http_pred_upstream_merge(cf, prev, conf) != NGX_CONF_OK
        || ngx_http_pred_metrics_merge(cf, conf) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    return ngx_http_pred_snapshot_merge(cf, prev, conf);
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
