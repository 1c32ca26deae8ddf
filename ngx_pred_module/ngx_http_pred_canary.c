/*
 * Canary releases on the request path: which of a snapshot's versions a
 * key is looked up in (pred_snapshot_override, then the key's bucket; see
 * pred_canary.h), and pred_shadow, which looks a key the live version
 * answered up in the candidate too and counts how the two compare.
 */

#include "ngx_http_pred_module.h"
#include "pred_json.h"


/* pred_shadow field=: upper bounds of |live - candidate| */
#define NGX_HTTP_PRED_SHADOW_FIELD_MAX  64


static ngx_uint_t ngx_http_pred_canary_forced(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_uint_t *role);
static ngx_int_t ngx_http_pred_canary_number(ngx_str_t *value,
    ngx_str_t *field, double *out);


static ngx_str_t  ngx_http_pred_role_live = ngx_string("live");
static ngx_str_t  ngx_http_pred_role_candidate = ngx_string("candidate");


/* pred_shadow [rate=PERCENT] [field=NAME] | off */
char *
ngx_http_pred_shadow(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pred_loc_conf_t *plcf = conf;

    uint32_t     share;
    ngx_str_t   *value, arg;
    ngx_uint_t   i, rate;

    if (plcf->shadow_rate != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        plcf->shadow_rate = 0;
        return NGX_CONF_OK;
    }

    plcf->shadow_rate = PRED_CANARY_SCALE;
    rate = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "rate=", 5) == 0) {
            if (rate++) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "duplicate rate \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            arg.data = value[i].data + 5;
            arg.len = value[i].len - 5;

            if (arg.len && arg.data[arg.len - 1] == '%') {
                arg.len--;
            }

            if (pred_canary_parse_percent((char *) arg.data, arg.len, &share)
                != 0 || share == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid rate \"%V\": a percent above 0, "
                                   "at most 100, with at most 4 decimals",
                                   &value[i]);
                return NGX_CONF_ERROR;
            }

            plcf->shadow_rate = share;
            continue;
        }

        if (ngx_strncmp(value[i].data, "field=", 6) == 0) {
            if (plcf->shadow_field.data) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "duplicate field \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            plcf->shadow_field.data = value[i].data + 6;
            plcf->shadow_field.len = value[i].len - 6;

            if (plcf->shadow_field.len == 0
                || plcf->shadow_field.len > NGX_HTTP_PRED_SHADOW_FIELD_MAX)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid field \"%V\": a top-level "
                                   "member's name, 1 to %d bytes",
                                   &value[i],
                                   NGX_HTTP_PRED_SHADOW_FIELD_MAX);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_pred_canary_merge(ngx_conf_t *cf, ngx_http_pred_loc_conf_t *prev,
    ngx_http_pred_loc_conf_t *conf)
{
    ngx_uint_t  own;

    if (conf->snapshot_override == NULL) {
        conf->snapshot_override = prev->snapshot_override;
    }

    own = (conf->shadow_rate != NGX_CONF_UNSET_UINT);

    if (!own) {
        conf->shadow_rate = prev->shadow_rate;
        conf->shadow_field = prev->shadow_field;
    }

    ngx_conf_merge_uint_value(conf->shadow_rate, prev->shadow_rate, 0);

    /*
     * Inherited, it applies where there is a snapshot to compare (a
     * location without one never looks a key up in a snapshot); in a
     * pred location of its own, one is needed.
     */
    if (own && conf->shadow_rate && conf->snapshot == NULL
        && conf->handler == NGX_HTTP_PRED_HANDLER_LOOKUP)
    {
        ngx_http_pred_merge_error(cf, "\"pred_shadow\" requires "
                                  "\"pred_snapshot\"");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * The version a key is looked up in: the one pred_snapshot_override
 * names, else the candidate when the key's bucket is below its share.
 */
ngx_uint_t
ngx_http_pred_canary_route(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_str_t *key)
{
    ngx_uint_t                 role;
    ngx_http_pred_snapshot_t  *snap;

    snap = plcf->snapshot;

    if (plcf->snapshot_override
        && ngx_http_pred_canary_forced(r, plcf, &role))
    {
        return role;
    }

    role = NGX_HTTP_PRED_ROLE_LIVE;

    if (snap->cand && snap->cand_share
        && pred_canary_routed(pred_canary_bucket(key->data, key->len),
                              snap->cand_share))
    {
        role = NGX_HTTP_PRED_ROLE_CANDIDATE;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "pred: key \"%V\": routed to the %V version", key,
                   role == NGX_HTTP_PRED_ROLE_CANDIDATE
                   ? &ngx_http_pred_role_candidate
                   : &ngx_http_pred_role_live);

    return role;
}


/*
 * pred_snapshot_override: "live", "candidate", or the version name of
 * either; anything else (and empty) leaves the key to its bucket.
 */
static ngx_uint_t
ngx_http_pred_canary_forced(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_uint_t *role)
{
    ngx_str_t                  v;
    ngx_http_pred_snapshot_t  *snap;

    if (ngx_http_complex_value(r, plcf->snapshot_override, &v) != NGX_OK
        || v.len == 0)
    {
        return 0;
    }

    snap = plcf->snapshot;

    if ((v.len == ngx_http_pred_role_candidate.len
         && ngx_strncmp(v.data, "candidate", v.len) == 0)
        || (snap->cand && v.len == ngx_strlen(snap->cand->version)
            && ngx_strncmp(v.data, snap->cand->version, v.len) == 0))
    {
        *role = NGX_HTTP_PRED_ROLE_CANDIDATE;

    } else if ((v.len == ngx_http_pred_role_live.len
                && ngx_strncmp(v.data, "live", v.len) == 0)
               || (snap->live && v.len == ngx_strlen(snap->live->version)
                   && ngx_strncmp(v.data, snap->live->version, v.len) == 0))
    {
        *role = NGX_HTTP_PRED_ROLE_LIVE;

    } else {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "pred: override \"%V\" names no version here", &v);
        return 0;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "pred: override \"%V\": the %V version", &v,
                   *role == NGX_HTTP_PRED_ROLE_CANDIDATE
                   ? &ngx_http_pred_role_candidate
                   : &ngx_http_pred_role_live);

    return 1;
}


/*
 * After the live version's lookup (rc and hit, as the snapshot lookup left
 * them), for pred_shadow's share of keys: the candidate's value for the
 * key, compared, never sent.  One more lookup, into the request pool.
 */
void
ngx_http_pred_canary_shadow(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_str_t *key, ngx_int_t rc,
    ngx_http_pred_hit_t *hit)
{
    double                     a, b, delta;
    ngx_int_t                  crc;
    ngx_str_t                  cval;
    ngx_uint_t                 result;
    ngx_http_pred_snapshot_t  *snap;

    snap = plcf->snapshot;

    if (snap->cand == NULL || hit->candidate || hit->cand_failed
        || (rc != NGX_OK && rc != NGX_DECLINED)
        || (plcf->shadow_rate < PRED_CANARY_SCALE
            && (ngx_uint_t) ngx_random() % PRED_CANARY_SCALE
               >= plcf->shadow_rate))
    {
        return;
    }

    crc = ngx_http_pred_snapshot_peek(r, snap, key, &cval);

    if (crc != NGX_OK && crc != NGX_DECLINED) {
        return;
    }

    if (rc == NGX_OK && crc == NGX_OK) {
        result = (hit->value.len == cval.len
                  && ngx_memcmp(hit->value.data, cval.data, cval.len) == 0)
                 ? NGX_HTTP_PRED_SHADOW_SAME
                 : NGX_HTTP_PRED_SHADOW_DIFFERENT;

    } else if (rc == NGX_OK) {
        result = NGX_HTTP_PRED_SHADOW_ONLY_LIVE;

    } else if (crc == NGX_OK) {
        result = NGX_HTTP_PRED_SHADOW_ONLY_CANDIDATE;

    } else {
        /* in neither: nothing to compare */
        return;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "pred: key \"%V\": shadow lookup, result %ui", key,
                   result);

    if (plcf->shadow_field.len && rc == NGX_OK && crc == NGX_OK
        && ngx_http_pred_canary_number(&hit->value, &plcf->shadow_field, &a)
           == NGX_OK
        && ngx_http_pred_canary_number(&cval, &plcf->shadow_field, &b)
           == NGX_OK)
    {
        delta = (a > b) ? a - b : b - a;
        ngx_http_pred_metrics_shadow(snap, result, &delta);
        return;
    }

    ngx_http_pred_metrics_shadow(snap, result, NULL);
}


/* the number a top-level member of the value holds; NGX_DECLINED: none */
static ngx_int_t
ngx_http_pred_canary_number(ngx_str_t *value, ngx_str_t *field, double *out)
{
    char         buf[64], *end;
    size_t       len;
    const char  *start, *stop, *last;

    last = (const char *) value->data + value->len;

    if (pred_json_member((const char *) value->data, last,
                         (const char *) field->data, field->len, &start,
                         &stop)
        != 0
        || pred_json_number(start, stop) != stop)
    {
        return NGX_DECLINED;
    }

    len = stop - start;
    if (len >= sizeof(buf)) {
        return NGX_DECLINED;
    }

    ngx_memcpy(buf, start, len);
    buf[len] = '\0';

    *out = strtod(buf, &end);

    return (end == buf + len) ? NGX_OK : NGX_DECLINED;
}
