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


#define NGX_HTTP_PRED_FILTER_MAX_ARGS  32


typedef struct {
    ngx_str_t                   field;
    ngx_str_t                   value;
} ngx_http_pred_where_t;


typedef struct {
    /* the member names read from each item, in one pass: the where
       fields, then the id (for exclude), then the score (for min_score) */
    pred_json_name_t            cond[NGX_HTTP_PRED_FILTER_MAX_ARGS + 2];
    size_t                      ncond;
    pred_json_name_t            proj[NGX_HTTP_PRED_FILTER_MAX_ARGS];

    ngx_http_pred_where_t       where[NGX_HTTP_PRED_FILTER_MAX_ARGS];
    ngx_uint_t                  nwhere;
    ngx_str_t                   exclude[NGX_HTTP_PRED_FILTER_MAX_ARGS];
    ngx_uint_t                  nexclude;
    ngx_str_t                   fields[NGX_HTTP_PRED_FILTER_MAX_ARGS];
    ngx_uint_t                  nfields;
    ngx_uint_t                  limit;
    double                      min_score;
    unsigned                    has_limit:1;
    unsigned                    has_min_score:1;
} ngx_http_pred_shape_t;


static ngx_int_t ngx_http_pred_filter_args(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_http_pred_shape_t *sh,
    const char **arg, const char **reason);
static ngx_uint_t ngx_http_pred_arg_values(ngx_http_request_t *r,
    ngx_str_t *name, ngx_str_t *out, ngx_uint_t max);
static const char *ngx_http_pred_filter_known(
    ngx_http_pred_loc_conf_t *plcf, ngx_str_t *field);
static void ngx_http_pred_filter_names(ngx_http_pred_loc_conf_t *plcf,
    ngx_http_pred_shape_t *sh);
static ngx_int_t ngx_http_pred_filter_keep(ngx_http_pred_shape_t *sh,
    const char *p, const char *end);
static ngx_int_t ngx_http_pred_span_is(const char *s, const char *e,
    ngx_str_t *value);
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

    if (!sh.nwhere && !sh.nexclude && !sh.nfields && !sh.has_limit
        && !sh.has_min_score)
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

        if ((!sh.has_limit || kept < sh.limit)
            && ngx_http_pred_filter_keep(&sh, p, e))
        {
            if (kept++) {
                *d++ = ',';
            }

            if (sh.nfields) {
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
    char        *end, num[64];
    u_char      *colon, *c, *last;
    ngx_str_t    vals[NGX_HTTP_PRED_FILTER_MAX_ARGS], v, *names;
    ngx_int_t    n;
    ngx_uint_t   i, nvals;

    ngx_memzero(sh, sizeof(ngx_http_pred_shape_t));
    names = plcf->filter_args;

    if (r->args.len == 0) {
        return NGX_OK;
    }

    /* where=F:V, repeated or comma-separated */
    nvals = ngx_http_pred_arg_values(r, &names[0], vals,
                                     NGX_HTTP_PRED_FILTER_MAX_ARGS);

    for (i = 0; i < nvals; i++) {
        for (c = vals[i].data, last = c + vals[i].len; c <= last; c++) {
            v.data = c;
            c = ngx_strlchr(c, last, ',');
            if (c == NULL) {
                c = last;
            }

            v.len = c - v.data;
            colon = ngx_strlchr(v.data, c, ':');

            if (colon == NULL || sh->nwhere == NGX_HTTP_PRED_FILTER_MAX_ARGS)
            {
                *arg = (char *) names[0].data;
                *reason = "use FIELD:VALUE, at most 32";
                return NGX_DECLINED;
            }

            sh->where[sh->nwhere].field.data = v.data;
            sh->where[sh->nwhere].field.len = colon - v.data;
            sh->where[sh->nwhere].value.data = colon + 1;
            sh->where[sh->nwhere].value.len = c - colon - 1;

            *reason = ngx_http_pred_filter_known(plcf,
                                                 &sh->where[sh->nwhere].field);
            if (*reason) {
                *arg = (char *) names[0].data;
                return NGX_DECLINED;
            }

            sh->nwhere++;
        }
    }

    /* exclude=ID,ID and fields=F,F: comma-separated lists */
    for (n = 1; n <= 2; n++) {
        nvals = ngx_http_pred_arg_values(r, &names[n], vals, 1);
        if (nvals == 0) {
            continue;
        }

        for (c = vals[0].data, last = c + vals[0].len; c <= last; c++) {
            v.data = c;
            c = ngx_strlchr(c, last, ',');
            if (c == NULL) {
                c = last;
            }

            v.len = c - v.data;

            if (v.len == 0
                || (n == 1 ? sh->nexclude : sh->nfields)
                   == NGX_HTTP_PRED_FILTER_MAX_ARGS)
            {
                *arg = (char *) names[n].data;
                *reason = "use a comma-separated list, at most 32";
                return NGX_DECLINED;
            }

            if (n == 1) {
                sh->exclude[sh->nexclude++] = v;
                continue;
            }

            *reason = ngx_http_pred_filter_known(plcf, &v);
            if (*reason) {
                *arg = (char *) names[n].data;
                return NGX_DECLINED;
            }

            /* once each: the shaped value must stay within the original */
            for (i = 0; i < sh->nfields; i++) {
                if (sh->fields[i].len == v.len
                    && ngx_strncmp(sh->fields[i].data, v.data, v.len) == 0)
                {
                    break;
                }
            }

            if (i == sh->nfields) {
                sh->fields[sh->nfields++] = v;
            }
        }
    }

    /* limit=N */
    if (ngx_http_pred_arg_values(r, &names[3], vals, 1)) {
        n = ngx_atoi(vals[0].data, vals[0].len);
        if (n == NGX_ERROR) {
            *arg = (char *) names[3].data;
            *reason = "not a whole number";
            return NGX_DECLINED;
        }

        sh->limit = n;
        sh->has_limit = 1;
    }

    /* min_score=X */
    if (ngx_http_pred_arg_values(r, &names[4], vals, 1)) {
        if (vals[0].len == 0 || vals[0].len >= sizeof(num)) {
            *arg = (char *) names[4].data;
            *reason = "not a number";
            return NGX_DECLINED;
        }

        ngx_memcpy(num, vals[0].data, vals[0].len);
        num[vals[0].len] = '\0';

        sh->min_score = strtod(num, &end);

        if (*end != '\0' || sh->min_score != sh->min_score) {
            *arg = (char *) names[4].data;
            *reason = "not a number";
            return NGX_DECLINED;
        }

        sh->has_min_score = 1;
    }

    return NGX_OK;
}


/* every value of argument "name", %-decoded, up to max */
static ngx_uint_t
ngx_http_pred_arg_values(ngx_http_request_t *r, ngx_str_t *name,
    ngx_str_t *out, ngx_uint_t max)
{
    u_char      *p, *last, *next, *dst, *src;
    ngx_uint_t   n;

    n = 0;
    p = r->args.data;
    last = r->args.data + r->args.len;

    for ( /* void */ ; p < last && n < max; p = next + 1) {
        next = ngx_strlchr(p, last, '&');
        if (next == NULL) {
            next = last;
        }

        if ((size_t) (next - p) > name->len && p[name->len] == '='
            && ngx_strncmp(p, name->data, name->len) == 0)
        {
            src = p + name->len + 1;
            dst = ngx_pnalloc(r->pool, next - src + 1);
            if (dst == NULL) {
                return n;
            }

            out[n].data = dst;
            ngx_unescape_uri(&dst, &src, next - (p + name->len + 1), 0);
            out[n].len = dst - out[n].data;
            n++;
        }
    }

    return n;
}


/*
 * NULL if a field may be named, else why not.  Plain names only: they are
 * written back unescaped, which keeps a shaped value within the original's
 * length.  With pred_filter_fields, only those fields.
 */
static const char *
ngx_http_pred_filter_known(ngx_http_pred_loc_conf_t *plcf, ngx_str_t *field)
{
    u_char      c;
    ngx_uint_t  i;
    ngx_str_t  *known;

    if (field->len == 0 || field->len > 64) {
        return "field names are 1 to 64 of A-Z a-z 0-9 _ . -";
    }

    for (i = 0; i < field->len; i++) {
        c = field->data[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
        {
            return "field names are 1 to 64 of A-Z a-z 0-9 _ . -";
        }
    }

    if (plcf->filter_fields == NULL) {
        return NULL;
    }

    known = plcf->filter_fields->elts;

    for (i = 0; i < plcf->filter_fields->nelts; i++) {
        if (known[i].len == field->len
            && ngx_strncmp(known[i].data, field->data, field->len) == 0)
        {
            return NULL;
        }
    }

    return "unknown field";
}


static void
ngx_http_pred_filter_names(ngx_http_pred_loc_conf_t *plcf,
    ngx_http_pred_shape_t *sh)
{
    ngx_uint_t  i;

    for (i = 0; i < sh->nwhere; i++) {
        sh->cond[sh->ncond].name = (char *) sh->where[i].field.data;
        sh->cond[sh->ncond++].len = sh->where[i].field.len;
    }

    if (sh->nexclude) {
        sh->cond[sh->ncond].name = (char *) plcf->filter_id.data;
        sh->cond[sh->ncond++].len = plcf->filter_id.len;
    }

    if (sh->has_min_score) {
        sh->cond[sh->ncond].name = (char *) plcf->filter_score.data;
        sh->cond[sh->ncond++].len = plcf->filter_score.len;
    }

    for (i = 0; i < sh->nfields; i++) {
        sh->proj[i].name = (char *) sh->fields[i].data;
        sh->proj[i].len = sh->fields[i].len;
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
    const char  *vs[NGX_HTTP_PRED_FILTER_MAX_ARGS + 2];
    const char  *ve[NGX_HTTP_PRED_FILTER_MAX_ARGS + 2];

    if (sh->ncond == 0) {
        return 1;
    }

    if (pred_json_members(p, end, sh->cond, sh->ncond, vs, ve) != 0) {
        return 0;
    }

    for (k = 0; k < sh->nwhere; k++) {
        if (!ngx_http_pred_span_is(vs[k], ve[k], &sh->where[k].value)) {
            return 0;
        }
    }

    if (sh->nexclude) {
        for (i = 0; i < sh->nexclude; i++) {
            if (ngx_http_pred_span_is(vs[k], ve[k], &sh->exclude[i])) {
                return 0;
            }
        }

        k++;
    }

    if (sh->has_min_score) {
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

        if (strtod(num, NULL) < sh->min_score) {
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
ngx_http_pred_span_is(const char *s, const char *e, ngx_str_t *value)
{
    if (s == NULL) {
        return 0;
    }

    if (*s == '"') {
        s++;
        e--;
    }

    return (size_t) (e - s) == value->len
           && ngx_strncmp(s, value->data, value->len) == 0;
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

    return ngx_http_pred_span_is(s, e, value);
}


/* the item with only the requested fields, in the order requested */
static u_char *
ngx_http_pred_filter_project(u_char *d, ngx_http_pred_shape_t *sh,
    const char *p, const char *end)
{
    ngx_uint_t   i, n;
    const char  *vs[NGX_HTTP_PRED_FILTER_MAX_ARGS];
    const char  *ve[NGX_HTTP_PRED_FILTER_MAX_ARGS];

    (void) pred_json_members(p, end, sh->proj, sh->nfields, vs, ve);

    *d++ = '{';

    for (i = 0, n = 0; i < sh->nfields; i++) {
        if (vs[i] == NULL) {
            continue;
        }

        if (n++) {
            *d++ = ',';
        }

        /* plain names: no escaping needed */
        *d++ = '"';
        d = ngx_cpymem(d, sh->fields[i].data, sh->fields[i].len);
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

        for (k = 0; eq && k < 5; k++) {
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

        if (eq == NULL || k == 5) {
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

    for (k = 0; k < 5; k++) {
        if (conf->filter_args[k].data == NULL) {
            conf->filter_args[k] = prev->filter_args[k].data
                                   ? prev->filter_args[k]
                                   : ngx_http_pred_filter_arg_names[k];
        }
    }
}
