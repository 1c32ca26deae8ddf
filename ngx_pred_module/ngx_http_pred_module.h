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


typedef struct {
    ngx_flag_t                  enable;
    ngx_http_complex_value_t   *key;
} ngx_http_pred_loc_conf_t;


extern ngx_module_t  ngx_http_pred_module;


/* ngx_http_pred_json.c */
ngx_int_t ngx_http_pred_json_error(ngx_pool_t *pool, ngx_str_t *out,
    const char *code, ngx_str_t *key, const char *reason);
size_t ngx_http_pred_json_escape_len(ngx_str_t *s);
u_char *ngx_http_pred_json_escape(u_char *dst, ngx_str_t *s);

#endif /* NGX_HTTP_PRED_MODULE_H */
