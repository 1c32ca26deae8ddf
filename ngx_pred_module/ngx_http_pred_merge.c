/*
 * Nearline fields over batch values: an RFC 7386 JSON merge patch applied
 * to a key's current value, from whichever tier holds it (an override or
 * a model's answer in the cache, else the snapshot), for PATCH
 * PREFIX/KEY and the "merge" lines of a bulk body.  A key no tier holds
 * (or a tombstone) starts from {}.
 *
 * The result is written back through jansson: numbers that are not
 * integers are printed with up to 15 significant digits (0.1 stays 0.1).
 */

#include <jansson.h>

#include "ngx_http_pred_module.h"


static json_t *ngx_http_pred_merge_patch(json_t *target, json_t *patch);


/*
 * The merged value of key into *out (the request's pool).  NGX_DECLINED
 * with *reason when the patch is not a JSON object or the result cannot be
 * stored; NGX_ERROR when memory ran out.
 */
ngx_int_t
ngx_http_pred_merge_value(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_str_t *key, ngx_str_t *patch_text,
    ngx_str_t *out, const char **reason)
{
    char                   *text;
    size_t                  len;
    json_t                 *patch, *cur, *res;
    ngx_int_t               rc;
    json_error_t            jerr;
    ngx_http_pred_lookup_t  found;

    patch = json_loadb((char *) patch_text->data, patch_text->len,
                       JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);

    if (!json_is_object(patch)) {
        json_decref(patch);
        *reason = "a merge patch must be a JSON object";
        return NGX_DECLINED;
    }

    rc = ngx_http_pred_lookup(r, plcf, key, &found);
    if (rc != NGX_OK) {
        json_decref(patch);
        return NGX_ERROR;
    }

    cur = NULL;

    if ((found.kind == NGX_HTTP_PRED_LOOKUP_ANSWER
         || found.kind == NGX_HTTP_PRED_LOOKUP_REFRESH)
        && found.answer.status == NGX_HTTP_OK)
    {
        cur = json_loadb((char *) found.answer.value.data,
                         found.answer.value.len, JSON_DECODE_ANY, NULL);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "pred: admin: merge into \"%V\": %s", key,
                   cur ? "its current value" : "{}");

    res = ngx_http_pred_merge_patch(cur, patch);
    json_decref(patch);

    if (res == NULL) {
        return NGX_ERROR;
    }

    text = json_dumps(res, JSON_COMPACT | JSON_PRESERVE_ORDER
                           | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    json_decref(res);

    if (text == NULL) {
        return NGX_ERROR;
    }

    len = ngx_strlen(text);

    out->data = ngx_pnalloc(r->pool, len);
    if (out->data == NULL) {
        free(text);
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, text, len);
    out->len = len;
    free(text);

    return NGX_OK;
}


/*
 * RFC 7386, section 2: the patch's members replace the target's, a null
 * removes one, objects merge recursively.  Takes target's reference (it
 * may be NULL) and returns a new one; NULL when memory ran out.
 */
static json_t *
ngx_http_pred_merge_patch(json_t *target, json_t *patch)
{
    void        *it;
    json_t      *value, *merged;
    const char  *name;

    if (!json_is_object(patch)) {
        json_decref(target);
        return json_deep_copy(patch);
    }

    if (!json_is_object(target)) {
        json_decref(target);

        target = json_object();
        if (target == NULL) {
            return NULL;
        }
    }

    for (it = json_object_iter(patch); it;
         it = json_object_iter_next(patch, it))
    {
        name = json_object_iter_key(it);
        value = json_object_iter_value(it);

        if (json_is_null(value)) {
            (void) json_object_del(target, name);
            continue;
        }

        merged = ngx_http_pred_merge_patch(json_incref(
                                               json_object_get(target, name)),
                                           value);
        if (merged == NULL
            || json_object_set_new(target, name, merged) != 0)
        {
            json_decref(target);
            return NULL;
        }
    }

    return target;
}
