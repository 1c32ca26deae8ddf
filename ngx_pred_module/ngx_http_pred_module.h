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

#include "pred_snap.h"


typedef struct ngx_http_pred_snapshot_s  ngx_http_pred_snapshot_t;


typedef struct {
    ngx_array_t                 snapshots;  /* ngx_http_pred_snapshot_t * */
} ngx_http_pred_main_conf_t;


typedef struct {
    ngx_flag_t                  enable;
    ngx_http_complex_value_t   *key;
    ngx_str_t                   snapshot_name;
    ngx_http_pred_snapshot_t   *snapshot;
    time_t                      max_age;
} ngx_http_pred_loc_conf_t;


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


extern ngx_module_t  ngx_http_pred_module;


/* ngx_http_pred_snapshot.c */
char *ngx_http_pred_snapshot_path(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_pred_snapshot_merge(ngx_conf_t *cf,
    ngx_http_pred_loc_conf_t *prev, ngx_http_pred_loc_conf_t *conf);
ngx_int_t ngx_http_pred_snapshot_init_process(ngx_cycle_t *cycle);
void ngx_http_pred_snapshot_exit_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_pred_snapshot_lookup(ngx_http_request_t *r,
    ngx_http_pred_snapshot_t *snap, time_t max_age, ngx_str_t *key,
    ngx_http_pred_hit_t *hit);

/* ngx_http_pred_json.c */
ngx_int_t ngx_http_pred_json_error(ngx_pool_t *pool, ngx_str_t *out,
    const char *code, ngx_str_t *key, const char *reason);
size_t ngx_http_pred_json_escape_len(ngx_str_t *s);
u_char *ngx_http_pred_json_escape(u_char *dst, ngx_str_t *s);

#endif /* NGX_HTTP_PRED_MODULE_H */
