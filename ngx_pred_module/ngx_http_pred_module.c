/*
 * ngx_http_pred_module: the module's directives, its configuration, and
 * the process hooks.  The request path starts in ngx_http_pred_handler.c.
 */

#include "ngx_http_pred_module.h"


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

    { ngx_string("pred_snapshot_override"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pred_loc_conf_t, snapshot_override),
      NULL },

    { ngx_string("pred_shadow"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_ANY,
      ngx_http_pred_shadow,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
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

    { ngx_string("pred_cascade"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_pred_cascade,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("pred_budget"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_pred_loc_conf_t, budget),
      NULL },

    { ngx_string("pred_cascade_from_snapshot"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_pred_cascade_snapshot,
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


/*
 * A snapshot's or a cache zone's name: letters, digits, "_", "-" and ".",
 * since it goes as it is into metrics labels, JSON keys, log lines and the
 * admin API's answers; NGX_ERROR after logging "invalid WHAT name".
 */
ngx_int_t
ngx_http_pred_conf_name(ngx_conf_t *cf, ngx_str_t *name, const char *what)
{
    ngx_uint_t  i;

    for (i = 0; i < name->len; i++) {
        if (pred_key_name_char(name->data[i])) {
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid %s name \"%V\": only letters, digits, "
                           "\"_\", \"-\" and \".\" are allowed", what, name);
        return NGX_ERROR;
    }

    if (name->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "empty %s name", what);
        return NGX_ERROR;
    }

    return NGX_OK;
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
 * An error found when configurations are merged: nginx names the end of
 * the http block as its place, so the message names the location.
 */
void
ngx_http_pred_merge_error(ngx_conf_t *cf, const char *fmt, ...)
{
    u_char                    *p, *last, buf[NGX_MAX_CONF_ERRSTR];
    va_list                    args;
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    p = buf;
    last = buf + sizeof(buf);

    if (clcf && clcf->name.len) {
        p = ngx_slprintf(p, last, "location \"%V\": ", &clcf->name);
    }

    va_start(args, fmt);
    p = ngx_vslprintf(p, last, fmt, args);
    va_end(args);

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%*s", p - buf, buf);
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


static ngx_int_t
ngx_http_pred_postconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_pred_call_init_filters(cf) != NGX_OK
        || ngx_http_pred_signals_add(cf) != NGX_OK
        || ngx_http_pred_admission_add(cf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_pred_metrics_init(cf);
}


static ngx_int_t
ngx_http_pred_init_process(ngx_cycle_t *cycle)
{
    ngx_http_pred_admission_init_process(cycle);

    if (ngx_http_pred_state_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_pred_snapshot_init_process(cycle);
}


static void
ngx_http_pred_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_pred_state_exit_process(cycle);
    ngx_http_pred_snapshot_exit_process(cycle);
}


static void *
ngx_http_pred_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_pred_main_conf_t     *conf;
    ngx_http_pred_breaker_conf_t  *bc;

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
           != NGX_OK
        || ngx_array_init(&conf->name_stages, cf->pool, 8,
                          sizeof(ngx_uint_t))
           != NGX_OK
        || ngx_array_init(&conf->breakers, cf->pool, 4,
                          sizeof(ngx_http_pred_breaker_conf_t))
           != NGX_OK)
    {
        return NULL;
    }

    /* breaker 0 is the model's: it has no URI */
    bc = ngx_array_push(&conf->breakers);
    if (bc == NULL) {
        return NULL;
    }

    ngx_memzero(bc, sizeof(ngx_http_pred_breaker_conf_t));

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
    conf->cascade = NGX_CONF_UNSET_PTR;
    conf->budget = NGX_CONF_UNSET_MSEC;
    conf->cascade_snapshot = NGX_CONF_UNSET;
    conf->shadow_rate = NGX_CONF_UNSET_UINT;

    return conf;
}


static char *
ngx_http_pred_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_pred_loc_conf_t *prev = parent;
    ngx_http_pred_loc_conf_t *conf = child;

    ngx_http_core_loc_conf_t  *clcf;

    /* "pred" is not inherited: it names the location that answers */
    ngx_conf_init_value(conf->enable, 0);

    if (conf->key == NULL) {
        conf->key = prev->key;
    }

    if (conf->enable && conf->key == NULL) {
        ngx_http_pred_merge_error(cf, "\"pred\" requires \"pred_key\" in "
                                  "the same location or above it");
        return NGX_CONF_ERROR;
    }

    ngx_conf_merge_size_value(conf->admin_max_body, prev->admin_max_body,
                              NGX_HTTP_PRED_ADMIN_MAX_BODY);

    /*
     * nginx's own limit (1m by default), checked before the handler runs,
     * would refuse a bulk body with an HTML page: an admin location takes
     * twice max_body, so that a body over max_body gets the module's JSON
     * 413 (core's merge ran before this one: the value is final).
     */
    if (conf->handler == NGX_HTTP_PRED_HANDLER_ADMIN) {
        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

        if (clcf->client_max_body_size
            && clcf->client_max_body_size < (off_t) conf->admin_max_body * 2)
        {
            clcf->client_max_body_size = (off_t) conf->admin_max_body * 2;
        }
    }
    ngx_conf_merge_uint_value(conf->miss_async, prev->miss_async, 0);
    ngx_conf_merge_uint_value(conf->priority, prev->priority,
                              NGX_HTTP_PRED_PRIO_NORMAL);
    ngx_conf_merge_value(conf->batch, prev->batch, 0);
    ngx_conf_merge_uint_value(conf->batch_max, prev->batch_max, 100);
    ngx_http_pred_filter_merge(prev, conf);
    ngx_conf_merge_str_value(conf->refine_uri, prev->refine_uri, "");
    ngx_conf_merge_msec_value(conf->refine_timeout, prev->refine_timeout, 30);
    ngx_conf_merge_uint_value(conf->refine_top, prev->refine_top, 50);

    /* the cascade's checks read what the others merged */
    if (ngx_http_pred_cache_merge(cf, prev, conf) != NGX_CONF_OK
        || ngx_http_pred_upstream_merge(cf, prev, conf) != NGX_CONF_OK
        || ngx_http_pred_snapshot_merge(cf, prev, conf) != NGX_CONF_OK
        || ngx_http_pred_cascade_merge(cf, prev, conf) != NGX_CONF_OK
        || ngx_http_pred_canary_merge(cf, prev, conf) != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    return ngx_http_pred_metrics_merge(cf, conf);
}


static char *
ngx_http_pred(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pred_loc_conf_t *plcf = conf;

    char  *rv;

    rv = ngx_http_pred_set_handler(cf, plcf, NGX_HTTP_PRED_HANDLER_LOOKUP,
                                   ngx_http_pred_handler);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    plcf->enable = 1;

    return NGX_CONF_OK;
}


/*
 * A small zone of the module's (metrics, admission, signals), named
 * "pred_NAME", holding one struct of size bytes, which init finds or makes
 * with ngx_http_pred_shm_struct().
 */
ngx_shm_zone_t *
ngx_http_pred_shm_add(ngx_conf_t *cf, char *name, size_t size,
    ngx_shm_zone_init_pt init, void *data)
{
    ngx_str_t        zname;
    ngx_shm_zone_t  *shm_zone;

    zname.data = (u_char *) name;
    zname.len = ngx_strlen(name);

    /* the slab pool's own pages come first */
    shm_zone = ngx_shared_memory_add(cf, &zname, 8 * ngx_pagesize + size,
                                     &ngx_http_pred_module);
    if (shm_zone == NULL) {
        return NULL;
    }

    shm_zone->init = init;
    shm_zone->data = data;

    return shm_zone;
}


/*
 * The struct a small zone holds (metrics, admission, signals): the old
 * cycle's on reload, the one already there when the zone exists, else a
 * new one, zeroed.
 */
ngx_int_t
ngx_http_pred_shm_struct(ngx_shm_zone_t *shm_zone, void *old, size_t size,
    void **sh)
{
    ngx_slab_pool_t  *shpool;

    if (old) {
        *sh = old;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        *sh = shpool->data;
        return NGX_OK;
    }

    *sh = ngx_slab_calloc(shpool, size);
    if (*sh == NULL) {
        return NGX_ERROR;
    }

    shpool->data = *sh;

    return NGX_OK;
}


/*
 * "pred", "pred_admin" and "pred_metrics" each answer a location: two of
 * them in one location would be one handler answering with the other's
 * configuration (and counting in its metrics), so nginx -t refuses that.
 */
char *
ngx_http_pred_set_handler(ngx_conf_t *cf, ngx_http_pred_loc_conf_t *plcf,
    ngx_uint_t which, ngx_http_handler_pt handler)
{
    ngx_http_core_loc_conf_t  *clcf;

    static const char  *names[] = { "", "pred", "pred_admin", "pred_metrics" };

    if (plcf->handler == which) {
        return "is duplicate";
    }

    if (plcf->handler) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%s\" and \"%s\" cannot be in one location: "
                           "each answers the requests of the location it "
                           "is in", names[plcf->handler], names[which]);
        return NGX_CONF_ERROR;
    }

    plcf->handler = which;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = handler;

    return NGX_CONF_OK;
}
