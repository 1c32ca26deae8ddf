/*
 * The fallback chain: "pred_fallback stale | default=JSON | status=404|503
 * ...", walked when the model cannot answer (down, late, shed, invalid) or
 * was not asked (pred_miss_mode async).  One walk serves a single key and
 * each key of a batch; "status=503" ends every chain.
 */

#include "ngx_http_pred_module.h"

#include <jansson.h>


/* "pred_fallback stale | default=JSON | status=404|503 ..." */
char *
ngx_http_pred_fallback(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pred_loc_conf_t *plcf = conf;

    json_t                    *json;
    ngx_str_t                 *value;
    ngx_uint_t                 i;
    json_error_t               jerr;
    ngx_http_pred_fallback_t  *fb;

    if (plcf->fallback != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    plcf->fallback = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                      sizeof(ngx_http_pred_fallback_t));
    if (plcf->fallback == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        fb = ngx_array_push(plcf->fallback);
        if (fb == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(fb, sizeof(ngx_http_pred_fallback_t));

        if (ngx_strcmp(value[i].data, "stale") == 0) {
            fb->type = NGX_HTTP_PRED_FB_STALE;
            continue;
        }

        if (ngx_strncmp(value[i].data, "default=", 8) == 0) {
            fb->type = NGX_HTTP_PRED_FB_DEFAULT;

            json = json_loadb((char *) value[i].data + 8, value[i].len - 8,
                              JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                              &jerr);
            if (json == NULL) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid JSON in \"%V\": %s", &value[i],
                                   jerr.text);
                return NGX_CONF_ERROR;
            }

            json_decref(json);

            if (ngx_http_pred_json_copy(cf->pool, (char *) value[i].data + 8,
                                        value[i].len - 8, &fb->value)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strcmp(value[i].data, "status=404") == 0) {
            fb->type = NGX_HTTP_PRED_FB_STATUS;
            fb->status = NGX_HTTP_NOT_FOUND;
            continue;
        }

        if (ngx_strcmp(value[i].data, "status=503") == 0) {
            fb->type = NGX_HTTP_PRED_FB_STATUS;
            fb->status = NGX_HTTP_SERVICE_UNAVAILABLE;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Walks the chain for a key into *ans.  stale: what the "stale" step may
 * serve, an expired cache value, else the snapshot's, looked up here
 * unless a tombstone masks it: an invalidated value is never served.
 * why: the model's failure, NULL when it was not asked; with warn, a
 * warning names the key, why and the choice.
 */
void
ngx_http_pred_fallback_pick(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_str_t *key,
    ngx_http_pred_stale_t *stale, const char *why, ngx_uint_t warn,
    ngx_http_pred_answer_t *ans)
{
    ngx_uint_t                 i, n;
    const char                *what;
    ngx_http_pred_hit_t        hit;
    ngx_http_pred_fallback_t  *fbs, *fb, last;

    n = plcf->fallback ? plcf->fallback->nelts : 0;
    fbs = n ? plcf->fallback->elts : NULL;

    last.type = NGX_HTTP_PRED_FB_STATUS;
    last.status = NGX_HTTP_SERVICE_UNAVAILABLE;

    for (i = 0; i <= n; i++) {

        fb = (i == n) ? &last : &fbs[i];

        switch (fb->type) {

        case NGX_HTTP_PRED_FB_STALE:
            if (!stale->set && !stale->masked && plcf->snapshot
                && ngx_http_pred_snapshot_lookup(r, plcf->snapshot,
                                                 plcf->max_age, key,
                                                 ngx_http_pred_canary_route(
                                                     r, plcf, key),
                                                 &hit)
                   == NGX_OK)
            {
                stale->value = hit.value;
                stale->age = hit.age;
                stale->set = 1;
            }

            if (!stale->set) {
                continue;
            }

            ngx_http_pred_answer_value(ans, NGX_HTTP_PRED_SRC_STALE,
                                       &stale->value, stale->age);
            ans->stale = 1;
            what = "the stale value";
            break;

        case NGX_HTTP_PRED_FB_DEFAULT:
            ngx_http_pred_answer_value(ans, NGX_HTTP_PRED_SRC_DEFAULT,
                                       &fb->value, 0);
            what = "the default";
            break;

        default: /* NGX_HTTP_PRED_FB_STATUS */
            if (fb->status == NGX_HTTP_NOT_FOUND) {
                ngx_http_pred_answer_error(ans, NGX_HTTP_NOT_FOUND,
                                           NGX_HTTP_PRED_SRC_ERROR,
                                           "not_found", NULL);
                what = "404";

            } else {
                ngx_http_pred_answer_error(ans, NGX_HTTP_SERVICE_UNAVAILABLE,
                                           NGX_HTTP_PRED_SRC_ERROR,
                                           "upstream_unavailable",
                                           why ? why : "asked in the "
                                                       "background");
                ans->retry = 1;
                what = "503";
            }
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "pred: key \"%V\": fallback picked %s", key, what);

        if (warn && why && ngx_http_pred_warn_allowed(r->connection->log)) {
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "pred: upstream for key \"%V\" failed: %s; "
                          "answering %s%s", key, why,
                          fb->type == NGX_HTTP_PRED_FB_STATUS ? "" : "with ",
                          what);
        }

        return;
    }
}


/* the chain answers a single-key request */
ngx_int_t
ngx_http_pred_fallback_answer(ngx_http_request_t *r, ngx_http_pred_ctx_t *ctx,
    const char *why)
{
    ngx_http_pred_answer_t  ans;

    ngx_http_pred_fallback_pick(r, ctx->plcf, &ctx->key, &ctx->stale, why, 1,
                                &ans);

    return ngx_http_pred_answer(r, ctx, &ans);
}
