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

#include <stdlib.h>

#include "ngx_http_pred_module.h"
#include "pred_json.h"
#include "pred_filter.h"


typedef struct {
    /* the member names read from each item, in one pass: the where
       fields, then the id (for exclude), then the score (for min_score) */
    pred_json_name_t            cond[PRED_FILTER_MAX_ARGS + 2];
    size_t                      ncond;
    pred_json_name_t            proj[PRED_FILTER_MAX_ARGS];

    pred_filter_args_t          a;
} ngx_http_pred_shape_t;


static ngx_int_t ngx_http_pred_filter_args(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_http_pred_shape_t *sh,
    const char **arg, const char **reason);
static ngx_int_t ngx_http_pred_filter_known(ngx_http_pred_loc_conf_t *plcf,
    pred_span_t *field);
static void ngx_http_pred_filter_names(ngx_http_pred_loc_conf_t *plcf,
    ngx_http_pred_shape_t *sh);
static ngx_int_t ngx_http_pred_filter_keep(ngx_http_pred_shape_t *sh,
    const char *p, const char *end);
static ngx_int_t ngx_http_pred_span_is(const char *s, const char *e,
    const char *value, size_t len);
static u_char *ngx_http_pred_filter_project(u_char *d,
    ngx_http_pred_shape_t *sh, const char *p, const char *end);


/*
 * Shapes value in place of the answer.  NGX_OK: shaped (or nothing to do),
 * NGX_DECLINED: bad arguments, *arg and *reason say which and why.
 */
ngx_int_t
ngx_http_pred_filter(ngx_http_request_t *r, ngx_http_pred_loc_conf_t *plcf,
    ngx_str_t *value, const char **arg, const char **reason)
{
    u_char                 *out, *d;
    ngx_int_t               rc;
    ngx_uint_t              kept;
    const char             *v, *vend, *ls, *le, *p, *e;
    ngx_http_pred_shape_t   sh;

    rc = ngx_http_pred_filter_args(r, plcf, &sh, arg, reason);
    if (rc != NGX_OK) {
        return rc;
    }

    if (!sh.a.nwhere && !sh.a.nexclude && !sh.a.nfields && !sh.a.has_limit
        && !sh.a.has_min_score)
    {
        return NGX_OK;
    }

    v = (char *) value->data;
    vend = v + value->len;

    if (pred_json_member(v, vend, (char *) plcf->filter_list.data,
                         plcf->filter_list.len, &ls, &le) != 0
        || *ls != '[')
    {
        goto unshaped;
    }

    ngx_http_pred_filter_names(plcf, &sh);

    /* the new value is never longer than the old one */
    out = ngx_pnalloc(r->pool, value->len);
    if (out == NULL) {
        return NGX_ERROR;
    }

    d = ngx_cpymem(out, v, ls - v);
    *d++ = '[';
    kept = 0;

    p = pred_json_skip_ws(ls + 1, le);

    while (p < le && *p != ']') {
        if (*p != '{') {
            goto unshaped;
        }

        e = pred_json_skip_value(p, le);

        if ((!sh.a.has_limit || kept < sh.a.limit)
            && ngx_http_pred_filter_keep(&sh, p, e))
        {
            if (kept++) {
                *d++ = ',';
            }

            if (sh.a.nfields) {
                d = ngx_http_pred_filter_project(d, &sh, p, e);

            } else {
                d = ngx_cpymem(d, p, e - p);
            }
        }

        p = pred_json_skip_ws(e, le);
        if (p < le && *p == ',') {
            p = pred_json_skip_ws(p + 1, le);
        }
    }

    *d++ = ']';
    d = ngx_cpymem(d, le, vend - le);

    value->data = out;
    value->len = d - out;

    return NGX_OK;

unshaped:

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "pred: value has no \"%V\" list of objects to shape; "
                  "served unfiltered", &plcf->filter_list);

    return NGX_OK;
}


static ngx_int_t
ngx_http_pred_filter_args(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_http_pred_shape_t *sh,
    const char **arg, const char **reason)
{
    int           bad;
    u_char       *buf;
    ngx_uint_t    i;
    pred_span_t   names[PRED_FILTER_NARGS];

    ngx_memzero(sh, sizeof(ngx_http_pred_shape_t));

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
                          (char *) buf, &sh->a, &bad, reason)
        != 0)
    {
        *arg = names[bad].data;
        return NGX_DECLINED;
    }

    *reason = "unknown field";

    for (i = 0; i < sh->a.nwhere; i++) {
        if (!ngx_http_pred_filter_known(plcf, &sh->a.where_field[i])) {
            *arg = names[PRED_FILTER_WHERE].data;
            return NGX_DECLINED;
        }
    }

    for (i = 0; i < sh->a.nfields; i++) {
        if (!ngx_http_pred_filter_known(plcf, &sh->a.fields[i])) {
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


static void
ngx_http_pred_filter_names(ngx_http_pred_loc_conf_t *plcf,
    ngx_http_pred_shape_t *sh)
{
    ngx_uint_t  i;

    for (i = 0; i < sh->a.nwhere; i++) {
        sh->cond[sh->ncond].name = sh->a.where_field[i].data;
        sh->cond[sh->ncond++].len = sh->a.where_field[i].len;
    }

    if (sh->a.nexclude) {
        sh->cond[sh->ncond].name = (char *) plcf->filter_id.data;
        sh->cond[sh->ncond++].len = plcf->filter_id.len;
    }

    if (sh->a.has_min_score) {
        sh->cond[sh->ncond].name = (char *) plcf->filter_score.data;
        sh->cond[sh->ncond++].len = plcf->filter_score.len;
    }

    for (i = 0; i < sh->a.nfields; i++) {
        sh->proj[i].name = sh->a.fields[i].data;
        sh->proj[i].len = sh->a.fields[i].len;
    }
}


/* one pass over the item for every condition */
static ngx_int_t
ngx_http_pred_filter_keep(ngx_http_pred_shape_t *sh, const char *p,
    const char *end)
{
    char         num[64];
    size_t       len;
    ngx_uint_t   i, k;
    const char  *vs[PRED_FILTER_MAX_ARGS + 2];
    const char  *ve[PRED_FILTER_MAX_ARGS + 2];

    if (sh->ncond == 0) {
        return 1;
    }

    if (pred_json_members(p, end, sh->cond, sh->ncond, vs, ve) != 0) {
        return 0;
    }

    for (k = 0; k < sh->a.nwhere; k++) {
        if (!ngx_http_pred_span_is(vs[k], ve[k], sh->a.where_value[k].data,
                                   sh->a.where_value[k].len))
        {
            return 0;
        }
    }

    if (sh->a.nexclude) {
        for (i = 0; i < sh->a.nexclude; i++) {
            if (ngx_http_pred_span_is(vs[k], ve[k], sh->a.exclude[i].data,
                                      sh->a.exclude[i].len))
            {
                return 0;
            }
        }

        k++;
    }

    if (sh->a.has_min_score) {
        if (vs[k] == NULL) {
            return 0;
        }

        len = ve[k] - vs[k];
        if (len == 0 || len >= sizeof(num) || *vs[k] == '"'
            || *vs[k] == '{' || *vs[k] == '[')
        {
            return 0;
        }

        ngx_memcpy(num, vs[k], len);
        num[len] = '\0';

        if (strtod(num, NULL) < sh->a.min_score) {
            return 0;
        }
    }

    return 1;
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


/* the item with only the requested fields, in the order requested */
static u_char *
ngx_http_pred_filter_project(u_char *d, ngx_http_pred_shape_t *sh,
    const char *p, const char *end)
{
    ngx_uint_t   i, n;
    const char  *vs[PRED_FILTER_MAX_ARGS];
    const char  *ve[PRED_FILTER_MAX_ARGS];

    (void) pred_json_members(p, end, sh->proj, sh->a.nfields, vs, ve);

    *d++ = '{';

    for (i = 0, n = 0; i < sh->a.nfields; i++) {
        if (vs[i] == NULL) {
            continue;
        }

        if (n++) {
            *d++ = ',';
        }

        /* plain names: no escaping needed */
        *d++ = '"';
        d = ngx_cpymem(d, sh->a.fields[i].data, sh->a.fields[i].len);
        *d++ = '"';
        *d++ = ':';
        d = ngx_cpymem(d, vs[i], ve[i] - vs[i]);
    }

    *d++ = '}';

    return d;
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
