/*
 * Request-time shaping of list values, e.g. a batch job's candidates
 * {"items":[{"id":..,"score":..,"category":..},...],...}:
 *
 *   ?where=category:books   keep items whose field equals (several allowed,
 *                           as repeated arguments or comma-separated)
 *   ?exclude=id1,id2        drop items by id (say, already seen)
 *   ?min_score=0.5          keep items whose score is at least this
 *   ?limit=10               keep the first N that pass
 *   ?fields=id,score        keep only these fields of each item
 *
 * The value is rewritten on its raw bytes, with the scanner that keeps
 * numbers as written; without shaping arguments nothing is parsed at all.
 */

#include "ngx_http_pred_module.h"
#include "pred_json.h"
#include "pred_filter.h"


static ngx_int_t ngx_http_pred_filter_args(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, pred_filter_args_t *a,
    const char **arg, const char **reason);
static ngx_int_t ngx_http_pred_filter_known(ngx_http_pred_loc_conf_t *plcf,
    pred_span_t *field);
static ngx_int_t ngx_http_pred_span_is(const char *s, const char *e,
    const char *value, size_t len);


/*
 * Shapes value in place of the answer.  NGX_OK: shaped (or nothing to do),
 * NGX_DECLINED: bad arguments, *arg and *reason say which and why.
 */
ngx_int_t
ngx_http_pred_filter(ngx_http_request_t *r, ngx_http_pred_loc_conf_t *plcf,
    ngx_str_t *value, const char **arg, const char **reason)
{
    u_char               *out;
    size_t                len;
    ngx_int_t             rc;
    pred_filter_args_t    a;
    pred_filter_names_t   names;

    rc = ngx_http_pred_filter_args(r, plcf, &a, arg, reason);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!a.nwhere && !a.nexclude && !a.nfields && !a.has_limit
        && !a.has_min_score)
    {
        return NGX_OK;
    }

    /* the new value is never longer than the old one */
    out = ngx_pnalloc(r->pool, value->len);
    if (out == NULL) {
        return NGX_ERROR;
    }

    names.list.data = (char *) plcf->filter_list.data;
    names.list.len = plcf->filter_list.len;
    names.id.data = (char *) plcf->filter_id.data;
    names.id.len = plcf->filter_id.len;
    names.score.data = (char *) plcf->filter_score.data;
    names.score.len = plcf->filter_score.len;

    if (pred_filter_shape((char *) value->data, value->len, &names, &a,
                          (char *) out, &len)
        != 0)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "pred: value has no \"%V\" list of objects to shape; "
                      "served unfiltered", &plcf->filter_list);
        return NGX_OK;
    }

    value->data = out;
    value->len = len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_pred_filter_args(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, pred_filter_args_t *a,
    const char **arg, const char **reason)
{
    int           bad;
    u_char       *buf;
    ngx_uint_t    i;
    pred_span_t   names[PRED_FILTER_NARGS];

    ngx_memzero(a, sizeof(pred_filter_args_t));

    if (r->args.len == 0) {
        return NGX_OK;
    }

    buf = ngx_pnalloc(r->pool, r->args.len);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < PRED_FILTER_NARGS; i++) {
        names[i].data = (char *) plcf->filter_args[i].data;
        names[i].len = plcf->filter_args[i].len;
    }

    if (pred_filter_parse((char *) r->args.data, r->args.len, names,
                          (char *) buf, a, &bad, reason)
        != 0)
    {
        *arg = names[bad].data;
        return NGX_DECLINED;
    }

    *reason = "unknown field";

    for (i = 0; i < a->nwhere; i++) {
        if (!ngx_http_pred_filter_known(plcf, &a->where_field[i])) {
            *arg = names[PRED_FILTER_WHERE].data;
            return NGX_DECLINED;
        }
    }

    for (i = 0; i < a->nfields; i++) {
        if (!ngx_http_pred_filter_known(plcf, &a->fields[i])) {
            *arg = names[PRED_FILTER_FIELDS].data;
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* whether a field may be named: with pred_filter_fields, only those */
static ngx_int_t
ngx_http_pred_filter_known(ngx_http_pred_loc_conf_t *plcf, pred_span_t *field)
{
    ngx_uint_t   i;
    ngx_str_t   *known;

    if (plcf->filter_fields == NULL) {
        return 1;
    }

    known = plcf->filter_fields->elts;

    for (i = 0; i < plcf->filter_fields->nelts; i++) {
        if (known[i].len == field->len
            && ngx_strncmp(known[i].data, field->data, field->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * Whether a member's value (s NULL: absent) equals value: a string by its
 * contents as written (escapes are not decoded), any other value by its
 * JSON text.
 */
static ngx_int_t
ngx_http_pred_span_is(const char *s, const char *e, const char *value,
    size_t len)
{
    if (s == NULL) {
        return 0;
    }

    if (*s == '"') {
        s++;
        e--;
    }

    return (size_t) (e - s) == len && ngx_strncmp(s, value, len) == 0;
}


/* whether the object's field equals value; the reranker's ids use it */
ngx_int_t
ngx_http_pred_filter_match(const char *obj, const char *end,
    ngx_str_t *field, ngx_str_t *value)
{
    const char  *s, *e;

    if (pred_json_member(obj, end, (char *) field->data, field->len, &s, &e)
        != 0)
    {
        return 0;
    }

    return ngx_http_pred_span_is(s, e, (char *) value->data, value->len);
}


static ngx_str_t  ngx_http_pred_filter_arg_names[] = {
    ngx_string("where"),
    ngx_string("exclude"),
    ngx_string("fields"),
    ngx_string("limit"),
    ngx_string("min_score")
};


/* "pred_filter_args where=ARG exclude=ARG fields=ARG limit=ARG ..." */
char *
ngx_http_pred_filter_args_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_pred_loc_conf_t *plcf = conf;

    u_char      *eq;
    ngx_str_t   *value, *name;
    ngx_uint_t   i, k;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        eq = ngx_strlchr(value[i].data, value[i].data + value[i].len, '=');

        for (k = 0; eq && k < PRED_FILTER_NARGS; k++) {
            name = &ngx_http_pred_filter_arg_names[k];

            if ((size_t) (eq - value[i].data) == name->len
                && ngx_strncmp(value[i].data, name->data, name->len) == 0
                && eq + 1 < value[i].data + value[i].len)
            {
                plcf->filter_args[k].data = eq + 1;
                plcf->filter_args[k].len = value[i].data + value[i].len
                                           - eq - 1;
                break;
            }
        }

        if (eq == NULL || k == PRED_FILTER_NARGS) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* "pred_filter_fields F ...": every name, which the str_array slot is not */
char *
ngx_http_pred_filter_fields_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_pred_loc_conf_t *plcf = conf;

    ngx_str_t   *value, *f;
    ngx_uint_t   i;

    if (plcf->filter_fields != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    plcf->filter_fields = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                           sizeof(ngx_str_t));
    if (plcf->filter_fields == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        f = ngx_array_push(plcf->filter_fields);
        if (f == NULL) {
            return NGX_CONF_ERROR;
        }

        *f = value[i];
    }

    return NGX_CONF_OK;
}


void
ngx_http_pred_filter_merge(ngx_http_pred_loc_conf_t *prev,
    ngx_http_pred_loc_conf_t *conf)
{
    ngx_uint_t  k;

    ngx_conf_merge_value(conf->filter, prev->filter, 0);
    ngx_conf_merge_str_value(conf->filter_list, prev->filter_list, "items");
    ngx_conf_merge_str_value(conf->filter_id, prev->filter_id, "id");
    ngx_conf_merge_str_value(conf->filter_score, prev->filter_score,
                             "score");
    ngx_conf_merge_ptr_value(conf->filter_fields, prev->filter_fields, NULL);

    for (k = 0; k < PRED_FILTER_NARGS; k++) {
        if (conf->filter_args[k].data == NULL) {
            conf->filter_args[k] = prev->filter_args[k].data
                                   ? prev->filter_args[k]
                                   : ngx_http_pred_filter_arg_names[k];
        }
    }
}
