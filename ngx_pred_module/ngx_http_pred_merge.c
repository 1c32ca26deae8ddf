/*
 * Nearline fields over batch values: an RFC 7386 JSON merge patch applied
 * to a key's current value, from whichever tier holds it (see
 * ngx_http_pred_lookup_current()), for PATCH PREFIX/KEY and the "merge"
 * lines of a bulk body.  A key no tier holds (or a tombstone) starts from
 * {}.
 *
 * The merge works on the JSON text, as the rest of the module does: what
 * the patch does not touch keeps its bytes (0.1 stays 0.1, 1e5 stays 1e5,
 * integers past 64 bits stay whole), members keep their order, and new
 * ones follow.
 */

#include "ngx_http_pred_module.h"

#include <jansson.h>

#include "pred_json.h"


/* one object member: its name as written (quotes included) and value */
typedef struct {
    const char                 *name;
    const char                 *name_end;
    const char                 *value;
    const char                 *value_end;
} ngx_http_pred_member_t;


static ngx_int_t ngx_http_pred_merge_text(ngx_http_request_t *r,
    const char *target, const char *target_end, const char *patch,
    const char *patch_end, u_char **out, ngx_uint_t depth,
    const char **reason);
static const char *ngx_http_pred_member_next(const char *p,
    const char *end, ngx_http_pred_member_t *m);
static ngx_int_t ngx_http_pred_member_find(ngx_http_request_t *r,
    ngx_http_pred_member_t *m, const char *obj, const char *end,
    const char **start, const char **stop);
static ngx_uint_t ngx_http_pred_is_object(const char *p, const char *end);


static const char  ngx_http_pred_empty[] = "{}";


/*
 * The merged value of key into *out (the request's pool).  NGX_DECLINED
 * with *reason when the patch is not a JSON object (or names a member
 * twice); NGX_BUSY when the current value cannot be read now (no snapshot
 * loaded, or a read error); NGX_ERROR when memory ran out.
 */
ngx_int_t
ngx_http_pred_merge_value(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_str_t *key, ngx_str_t *patch_text,
    ngx_str_t *out, const char **reason)
{
    u_char      *p;
    size_t       where;
    ngx_int_t    rc;
    ngx_str_t    cur, patch;
    const char  *q;

    q = pred_json_skip_ws((char *) patch_text->data,
                          (char *) patch_text->data + patch_text->len);

    if (pred_json_validate((char *) patch_text->data, patch_text->len,
                           &where) != 0
        || !ngx_http_pred_is_object(q, (char *) patch_text->data
                                       + patch_text->len))
    {
        *reason = "a merge patch must be a JSON object";
        return NGX_DECLINED;
    }

    /* compact, so that what is copied from it is too */
    if (ngx_http_pred_json_copy(r->pool, (char *) patch_text->data,
                                patch_text->len, &patch)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    rc = ngx_http_pred_lookup_current(r, plcf, key, &cur);

    if (rc == NGX_ERROR || rc == NGX_BUSY) {
        *reason = "the key's current value cannot be read now";
        return rc;
    }

    if (rc == NGX_DECLINED) {
        ngx_str_set(&cur, "{}");
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "pred: admin: merge into \"%V\"%s", key,
                   rc == NGX_DECLINED ? ", from {}" : "");

    /* every member of the result comes from one of the two, once */
    p = ngx_pnalloc(r->pool, cur.len + patch.len + 16);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    rc = ngx_http_pred_merge_text(r, (char *) cur.data,
                                  (char *) cur.data + cur.len,
                                  (char *) patch.data,
                                  (char *) patch.data + patch.len, &p, 0,
                                  reason);
    if (rc != NGX_OK) {
        return rc;
    }

    out->len = p - out->data;

    return NGX_OK;
}


/*
 * A bulk line's patch, before anything is written: NGX_DECLINED with
 * *reason when it would be refused (a member named twice, too deep).
 */
ngx_int_t
ngx_http_pred_merge_check(ngx_http_request_t *r, ngx_str_t *patch,
    const char **reason)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, patch->len + 16);
    if (p == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_pred_merge_text(r, ngx_http_pred_empty,
                                    ngx_http_pred_empty + 2,
                                    (char *) patch->data,
                                    (char *) patch->data + patch->len, &p,
                                    0, reason);
}


/*
 * RFC 7386, section 2, on compact JSON text: writes the merge of patch
 * into target at *out.  A target that is not an object counts as {}.
 */
static ngx_int_t
ngx_http_pred_merge_text(ngx_http_request_t *r, const char *target,
    const char *target_end, const char *patch, const char *patch_end,
    u_char **out, ngx_uint_t depth, const char **reason)
{
    u_char                  *p;
    ngx_int_t                rc;
    ngx_uint_t               first;
    const char              *t, *q, *start, *stop;
    ngx_http_pred_member_t   m;

    p = *out;

    if (!ngx_http_pred_is_object(patch, patch_end)) {
        *out = ngx_cpymem(p, patch, patch_end - patch);
        return NGX_OK;
    }

    if (depth == PRED_JSON_MAX_DEPTH) {
        *reason = "the patch is nested too deep";
        return NGX_DECLINED;
    }

    if (!ngx_http_pred_is_object(target, target_end)) {
        target = ngx_http_pred_empty;
        target_end = target + 2;
    }

    *p++ = '{';
    first = 1;

    /* the target's members, in order: kept, replaced, merged or removed */
    for (t = ngx_http_pred_member_next(target + 1, target_end, &m);
         t;
         t = ngx_http_pred_member_next(t, target_end, &m))
    {
        rc = ngx_http_pred_member_find(r, &m, patch, patch_end, &start,
                                       &stop);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_OK && stop - start == 4
            && ngx_strncmp(start, "null", 4) == 0)
        {
            continue;
        }

        if (!first) {
            *p++ = ',';
        }

        first = 0;
        p = ngx_cpymem(p, m.name, m.name_end - m.name);
        *p++ = ':';

        if (rc == NGX_DECLINED) {
            p = ngx_cpymem(p, m.value, m.value_end - m.value);
            continue;
        }

        rc = ngx_http_pred_merge_text(r, m.value, m.value_end, start, stop,
                                      &p, depth + 1, reason);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    /* the patch's other members, once each: merged into {} */
    for (q = ngx_http_pred_member_next(patch + 1, patch_end, &m);
         q;
         q = ngx_http_pred_member_next(q, patch_end, &m))
    {
        rc = ngx_http_pred_member_find(r, &m, patch, patch_end, &start,
                                       &stop);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (start != m.value) {
            *reason = "the patch names a member twice";
            return NGX_DECLINED;
        }

        if (m.value_end - m.value == 4
            && ngx_strncmp(m.value, "null", 4) == 0)
        {
            continue;
        }

        rc = ngx_http_pred_member_find(r, &m, target, target_end, &start,
                                       &stop);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_OK) {
            continue;
        }

        if (!first) {
            *p++ = ',';
        }

        first = 0;
        p = ngx_cpymem(p, m.name, m.name_end - m.name);
        *p++ = ':';

        rc = ngx_http_pred_merge_text(r, ngx_http_pred_empty,
                                      ngx_http_pred_empty + 2, m.value,
                                      m.value_end, &p, depth + 1, reason);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    *p++ = '}';
    *out = p;

    return NGX_OK;
}


/*
 * The member at p (just after "{" or the one before it) of valid compact
 * JSON; returns where the next one starts, NULL at the object's end.
 */
static const char *
ngx_http_pred_member_next(const char *p, const char *end,
    ngx_http_pred_member_t *m)
{
    if (p >= end || *p == '}') {
        return NULL;
    }

    if (*p == ',') {
        p++;
    }

    m->name = p;
    m->name_end = pred_json_skip_value(p, end);
    m->value = m->name_end + 1;                     /* past ":" */
    m->value_end = pred_json_skip_value(m->value, end);

    return m->value_end;
}


/*
 * The value of the member of obj named as m is (names compared decoded);
 * NGX_OK with start and stop, NGX_DECLINED: none, NGX_ERROR.
 */
static ngx_int_t
ngx_http_pred_member_find(ngx_http_request_t *r, ngx_http_pred_member_t *m,
    const char *obj, const char *end, const char **start, const char **stop)
{
    json_t      *name;
    ngx_int_t    rc;
    const char  *raw;
    size_t       len;

    raw = m->name + 1;
    len = m->name_end - m->name - 2;

    if (memchr(raw, '\\', len) == NULL) {
        return pred_json_member(obj, end, raw, len, start, stop) == 0
               ? NGX_OK : NGX_DECLINED;
    }

    name = json_loadb(m->name, m->name_end - m->name,
                      JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (name == NULL) {
        return NGX_ERROR;
    }

    rc = pred_json_member(obj, end, json_string_value(name),
                          json_string_length(name), start, stop) == 0
         ? NGX_OK : NGX_DECLINED;

    json_decref(name);

    return rc;
}


static ngx_uint_t
ngx_http_pred_is_object(const char *p, const char *end)
{
    return p < end && *p == '{';
}
