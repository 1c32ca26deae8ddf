/*
 * ngx_http_pred_module: serves precomputed predictions.
 *
 * Declarations shared by the module's files; each file owns one concern.
 */

#ifndef NGX_HTTP_PRED_MODULE_H
#define NGX_HTTP_PRED_MODULE_H

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "pred_key.h"
#include "pred_snap.h"


typedef struct ngx_http_pred_snapshot_s  ngx_http_pred_snapshot_t;
typedef struct ngx_http_pred_cache_sh_s  ngx_http_pred_cache_sh_t;


#define NGX_HTTP_PRED_CACHE_VALUE      0
#define NGX_HTTP_PRED_CACHE_NEGATIVE   1
#define NGX_HTTP_PRED_CACHE_TOMBSTONE  2
#define NGX_HTTP_PRED_CACHE_EMPTY      3    /* only a single-flight marker */

/* why a model call failed, for the metrics */
#define NGX_HTTP_PRED_FAIL_TIMEOUT     1
#define NGX_HTTP_PRED_FAIL_5XX         2
#define NGX_HTTP_PRED_FAIL_CONNECT     3
#define NGX_HTTP_PRED_FAIL_INVALID     4
#define NGX_HTTP_PRED_FAIL_TOO_BIG     5
#define NGX_HTTP_PRED_FAIL_KINDS       5

/* cache, snapshot, upstream, stale, default, error, shed, none, batch */
#define NGX_HTTP_PRED_M_SOURCES        9


typedef struct {
    ngx_http_pred_cache_sh_t   *sh;
    ngx_slab_pool_t            *shpool;
    ngx_shm_zone_t             *shm_zone;
    time_t                      ttl;
    time_t                      negative_ttl;
    size_t                      max_entry;
    unsigned                    too_big_logged:1;   /* per worker */
} ngx_http_pred_cache_zone_t;


#define NGX_HTTP_PRED_FB_STALE      1
#define NGX_HTTP_PRED_FB_DEFAULT    2
#define NGX_HTTP_PRED_FB_STATUS     3


typedef struct {
    ngx_uint_t                  type;
    ngx_str_t                   value;       /* default=: compact JSON */
    ngx_uint_t                  status;      /* status= */
} ngx_http_pred_fallback_t;


/* what a cache lookup found, copied into the request pool */
typedef struct {
    ngx_uint_t                  kind;
    ngx_str_t                   value;
    time_t                      age;
    ngx_msec_int_t              expired_ms;         /* > 0: expired */
} ngx_http_pred_cached_t;


typedef struct {
    ngx_atomic_t                generation;     /* admin "check now" */
    ngx_atomic_t                queued;         /* misses waiting a slot */
    ngx_atomic_t                breaker_failures;
    ngx_atomic_t                breaker_open_until;
    ngx_atomic_t                breaker_probing;
    ngx_atomic_t                breaker_trips;
} ngx_http_pred_signals_sh_t;


#define NGX_HTTP_PRED_PRIO_NORMAL      0
#define NGX_HTTP_PRED_PRIO_HIGH        1
#define NGX_HTTP_PRED_PRIO_LOW         2


typedef struct {
    ngx_array_t                 snapshots;  /* ngx_http_pred_snapshot_t * */
    ngx_array_t                 zones;      /* ngx_http_pred_cache_zone_t * */
    ngx_array_t                 names;      /* ngx_str_t: pred_name */

    /* "check now" for every worker: a generation in shared memory */
    ngx_shm_zone_t             *signals;
    ngx_http_pred_signals_sh_t *signals_sh;
    ngx_atomic_uint_t           signals_seen;   /* per worker */
    ngx_event_t                 signals_ev;     /* per worker */

    /* admission control */
    ngx_uint_t                  limit;
    ngx_uint_t                  limit_queue;
    ngx_msec_t                  limit_timeout;
    ngx_uint_t                  breaker_failures;
    ngx_msec_t                  breaker_cooldown;
} ngx_http_pred_main_conf_t;


typedef struct {
    ngx_flag_t                  enable;
    ngx_str_t                   name;       /* pred_name, for metrics */
    ngx_uint_t                  index;      /* its request counters */
    ngx_http_complex_value_t   *key;
    ngx_str_t                   snapshot_name;
    ngx_http_pred_snapshot_t   *snapshot;
    time_t                      max_age;
    ngx_shm_zone_t             *cache_zone;
    time_t                      cache_ttl;
    time_t                      cache_swr;
    size_t                      admin_max_body;
    ngx_str_t                   upstream_uri;
    ngx_msec_t                  upstream_timeout;
    size_t                      upstream_max_size;
    ngx_str_t                   upstream_extract;
    ngx_array_t                *fallback;   /* ngx_http_pred_fallback_t */
    ngx_uint_t                  miss_async;
    ngx_uint_t                  priority;
    ngx_flag_t                  batch;
    ngx_uint_t                  batch_max;
    ngx_flag_t                  filter;
    ngx_str_t                   filter_list;
    ngx_str_t                   filter_id;
    ngx_str_t                   filter_score;
    ngx_array_t                *filter_fields;   /* ngx_str_t */
    ngx_str_t                   filter_args[5];  /* where exclude fields
                                                    limit min_score */
    ngx_str_t                   refine_uri;
    ngx_msec_t                  refine_timeout;
    ngx_uint_t                  refine_top;
} ngx_http_pred_loc_conf_t;


/* one key of a multi-key lookup */
typedef struct {
    ngx_str_t                   key;
    ngx_str_t                   value;      /* JSON; empty: null */
    ngx_str_t                  *source;     /* NULL: not found yet */
    ngx_str_t                   stale;
    unsigned                    has_stale:1;
} ngx_http_pred_batch_item_t;


/* per request, on the main request; $pred_key reads it */
typedef struct {
    ngx_str_t                   key;
    ngx_http_pred_loc_conf_t   *plcf;
    ngx_http_request_t         *request;

    /* a multi-key lookup: ngx_http_pred_batch_item_t */
    ngx_array_t                *batch;
    ngx_uint_t                  nmissing;

    /* what the "stale" fallback may serve */
    ngx_str_t                   stale;
    time_t                      stale_age;

    /* the model call */
    ngx_http_request_t         *sr;
    ngx_event_t                 timeout;
    ngx_msec_t                  started;
    ngx_msec_t                  deadline;   /* a waiter's */
    ngx_str_t                   body;       /* the model's answer */
    ngx_uint_t                  status;
    ngx_uint_t                  result;
    ngx_str_t                   value;
    const char                 *reason;

    unsigned                    has_stale:1;
    unsigned                    waiting:1;
    unsigned                    done:1;
    /* the answer held back while the reranker is asked */
    ngx_str_t                   candidates;
    ngx_str_t                  *ans_source;
    ngx_str_t                  *ans_version;    /* NULL or &ans_ver */
    ngx_str_t                   ans_ver;
    time_t                      ans_age;
    ngx_uint_t                  ans_stale;
    ngx_str_t                   ans_value;

    /* what the answer said about itself, for the log variables */
    ngx_str_t                   out[5];     /* source version age stale
                                               refined */
    ngx_msec_int_t              up_time;    /* -1: no model call */
    ngx_uint_t                  fail;       /* NGX_HTTP_PRED_FAIL_* */

    unsigned                    too_big:1;
    unsigned                    leader:1;
    unsigned                    refining:1;
    unsigned                    refine_done:1;
    unsigned                    shed:1;         /* admission said no */
    unsigned                    probe:1;        /* the breaker's probe */
    unsigned                    queued:1;
} ngx_http_pred_ctx_t;


/* what a snapshot lookup found, copied into the request pool */
typedef struct {
    ngx_str_t                   value;
    ngx_str_t                   version;
    time_t                      age;
    pred_snap_stale_t           fallback;
    unsigned                    stale:1;
} ngx_http_pred_hit_t;


struct ngx_http_pred_snapshot_s {
    ngx_str_t                   name;
    ngx_uint_t                  index;      /* in the metrics */
    ngx_str_t                   path;
    u_char                     *current;    /* "PATH/current" */
    ngx_msec_t                  check;
    ngx_flag_t                  preload;

    /* per worker, after init_process */
    pred_snap_t                *live;
    dev_t                       live_dev;
    ino_t                       live_ino;
    pred_snap_t                *pending;
    dev_t                       pending_dev;
    ino_t                       pending_ino;
    u_char                     *pending_map;
    size_t                      pending_size;
    ngx_msec_t                  pending_since;
    dev_t                       refused_dev;
    ino_t                       refused_ino;
    time_t                      refused_mtime;
    time_t                      stale_logged;
    ngx_event_t                 timer;
    ngx_log_t                  *log;
    unsigned                    missing_logged:1;
};


/* one "name=value" directive parameter: see ngx_http_pred_conf_param() */
typedef struct {
    const char                  *name;
    u_char                       kind;
    ngx_uint_t                   zero_ok;
    void                        *out;
} ngx_http_pred_conf_param_t;


extern ngx_module_t  ngx_http_pred_module;


/* ngx_http_pred_snapshot.c */
char *ngx_http_pred_snapshot_path(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_pred_snapshot_merge(ngx_conf_t *cf,
    ngx_http_pred_loc_conf_t *prev, ngx_http_pred_loc_conf_t *conf);
ngx_int_t ngx_http_pred_snapshot_init_process(ngx_cycle_t *cycle);
void ngx_http_pred_snapshot_exit_process(ngx_cycle_t *cycle);
void ngx_http_pred_snapshot_check_now(ngx_http_pred_snapshot_t *snap);
ngx_int_t ngx_http_pred_signals_add(ngx_conf_t *cf);
ngx_int_t ngx_http_pred_snapshot_lookup(ngx_http_request_t *r,
    ngx_http_pred_snapshot_t *snap, time_t max_age, ngx_str_t *key,
    ngx_http_pred_hit_t *hit);

/* ngx_http_pred_cache.c */
char *ngx_http_pred_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_pred_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_pred_cache_merge(ngx_conf_t *cf,
    ngx_http_pred_loc_conf_t *prev, ngx_http_pred_loc_conf_t *conf);
ngx_int_t ngx_http_pred_cache_get(ngx_http_request_t *r,
    ngx_http_pred_cache_zone_t *z, ngx_str_t *key,
    ngx_http_pred_cached_t *out);
ngx_int_t ngx_http_pred_cache_put(ngx_http_pred_cache_zone_t *z,
    ngx_str_t *key, ngx_uint_t kind, ngx_str_t *value, time_t ttl,
    ngx_log_t *log);
ngx_int_t ngx_http_pred_cache_lead(ngx_http_pred_cache_zone_t *z,
    ngx_str_t *key, ngx_msec_t timeout);
void ngx_http_pred_cache_unlead(ngx_http_pred_cache_zone_t *z,
    ngx_str_t *key);
ngx_int_t ngx_http_pred_cache_poll(ngx_http_request_t *r,
    ngx_http_pred_cache_zone_t *z, ngx_str_t *key,
    ngx_http_pred_cached_t *out);
ngx_uint_t ngx_http_pred_cache_purge(ngx_http_pred_cache_zone_t *z,
    ngx_str_t *prefix);
ngx_http_pred_cache_zone_t *ngx_http_pred_cache_zone_get(
    ngx_http_pred_loc_conf_t *plcf);
ngx_atomic_uint_t ngx_http_pred_cache_stat(ngx_http_pred_cache_zone_t *z,
    ngx_uint_t what);

/* ngx_http_pred_upstream.c */
char *ngx_http_pred_upstream(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_pred_fallback(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_pred_upstream_merge(ngx_conf_t *cf,
    ngx_http_pred_loc_conf_t *prev, ngx_http_pred_loc_conf_t *conf);
ngx_int_t ngx_http_pred_upstream_miss(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx);
ngx_int_t ngx_http_pred_upstream_admitted(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx);
void ngx_http_pred_upstream_detach(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx);
ngx_int_t ngx_http_pred_upstream_call(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, ngx_str_t *uri);
ngx_int_t ngx_http_pred_upstream_hold(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, ngx_event_handler_pt handler,
    ngx_msec_t timer);
ngx_int_t ngx_http_pred_upstream_batch(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx);
ngx_int_t ngx_http_pred_upstream_init_filters(ngx_conf_t *cf);
ngx_int_t ngx_http_pred_fallback_answer(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, const char *why);
ngx_uint_t ngx_http_pred_warn_allowed(ngx_log_t *log);

/* ngx_http_pred_batch.c */
char *ngx_http_pred_batch(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_pred_batch_handler(ngx_http_request_t *r);
void ngx_http_pred_batch_result(ngx_http_request_t *sr,
    ngx_http_pred_ctx_t *ctx, ngx_str_t *body);
ngx_int_t ngx_http_pred_batch_answer(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, const char *why);
ngx_int_t ngx_http_pred_batch_keys_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, ngx_http_pred_ctx_t *ctx);

/* ngx_http_pred_filter.c */
char *ngx_http_pred_filter_args_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_pred_filter_fields_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_pred_filter(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_str_t *value, const char **arg,
    const char **reason);
void ngx_http_pred_filter_merge(ngx_http_pred_loc_conf_t *prev,
    ngx_http_pred_loc_conf_t *conf);
ngx_int_t ngx_http_pred_filter_match(const char *obj, const char *end,
    ngx_str_t *field, ngx_str_t *value);

/* ngx_http_pred_refine.c */
char *ngx_http_pred_refine(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_pred_refine_start(ngx_http_request_t *r,
    ngx_str_t *source, ngx_str_t *version, time_t age, ngx_uint_t stale,
    ngx_str_t *value);
void ngx_http_pred_refine_result(ngx_http_request_t *sr,
    ngx_http_pred_ctx_t *ctx);
ngx_int_t ngx_http_pred_refine_resume(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx);

/* ngx_http_pred_metrics.c */
ngx_int_t ngx_http_pred_metrics_init(ngx_conf_t *cf);
char *ngx_http_pred_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_pred_metrics_merge(ngx_conf_t *cf,
    ngx_http_pred_loc_conf_t *conf);
void ngx_http_pred_metrics_upstream_start(ngx_http_pred_ctx_t *ctx);
void ngx_http_pred_metrics_upstream_done(ngx_http_pred_ctx_t *ctx);
void ngx_http_pred_metrics_deadline(ngx_http_pred_ctx_t *ctx);
void ngx_http_pred_metrics_snapshot(ngx_http_pred_snapshot_t *snap,
    ngx_uint_t swapped);
ngx_atomic_uint_t ngx_http_pred_metrics_in_flight(void);
void ngx_http_pred_metrics_init_process(void);

/* ngx_http_pred_shed.c */
char *ngx_http_pred_upstream_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_pred_upstream_breaker(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_pred_shed_admit(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx);
void ngx_http_pred_shed_done(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    ngx_uint_t failed);
void ngx_http_pred_shed_cleanup(ngx_http_pred_ctx_t *ctx);

/* ngx_http_pred_admin.c */
char *ngx_http_pred_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);

/* ngx_http_pred_module.c: the answers every handler shares */
extern ngx_str_t  ngx_http_pred_h_source;
extern ngx_str_t  ngx_http_pred_h_refined;
extern ngx_str_t  ngx_http_pred_h_retry;
extern ngx_str_t  ngx_http_pred_one;

ngx_int_t ngx_http_pred_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body);
ngx_int_t ngx_http_pred_send_raw(ngx_http_request_t *r, ngx_str_t *body);
ngx_int_t ngx_http_pred_send_value(ngx_http_request_t *r, ngx_str_t *source,
    ngx_str_t *version, time_t age, ngx_uint_t stale, ngx_str_t *value);
ngx_int_t ngx_http_pred_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, ngx_str_t *key, const char *reason);
ngx_int_t ngx_http_pred_add_header(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *value);
ngx_int_t ngx_http_pred_read_body(ngx_http_request_t *r, ngx_str_t *body);
ngx_int_t ngx_http_pred_conf_param(ngx_conf_t *cf, ngx_str_t *arg,
    const char *name, u_char kind, ngx_uint_t zero_ok, void *out);
char *ngx_http_pred_conf_params(ngx_conf_t *cf, ngx_uint_t from,
    ngx_http_pred_conf_param_t *params);
ngx_int_t ngx_http_pred_decode_key(ngx_http_request_t *r, ngx_str_t *raw,
    ngx_str_t *key, const char **reason);

/* ngx_http_pred_json.c */
ngx_int_t ngx_http_pred_json_error(ngx_pool_t *pool, ngx_str_t *out,
    const char *code, ngx_str_t *key, const char *reason);
size_t ngx_http_pred_json_escape_len(ngx_str_t *s);
u_char *ngx_http_pred_json_escape(u_char *dst, ngx_str_t *s);

#endif /* NGX_HTTP_PRED_MODULE_H */
