/*
 * Bulk writes to the cache tier: POST PREFIX/bulk on a pred_admin
 * location, a body of JSON Lines, one write a line:
 *
 *   {"key":K,"value":V}             an override, for the zone's ttl
 *   {"key":K,"value":V,"ttl":"10m"} for its own ttl (or seconds: 600)
 *   {"key":K,"delete":true}         a tombstone
 *   {"key":K,"merge":{...}}         an RFC 7386 merge patch over the key's
 *                                   current value (ngx_http_pred_merge.c)
 *
 * All or nothing: every line is checked before any is written, and a bad
 * one is a 400 naming its line number.  The body is read once into memory
 * (a single buffer is used where it is); keys and values point into it,
 * values compacted in place (so $request_body, if logged, shows them
 * compacted, followed by what is left of the originals).
 */

#include "ngx_http_pred_module.h"

#include <jansson.h>

#include "pred_json.h"


#define NGX_HTTP_PRED_BULK_UPSERT   0
#define NGX_HTTP_PRED_BULK_DELETE   1
#define NGX_HTTP_PRED_BULK_MERGE    2


/* a line's write, pointing into the body */
typedef struct {
    ngx_str_t                   key;
    ngx_str_t                   value;      /* MERGE: the patch */
    time_t                      ttl;
    ngx_uint_t                  line;
    ngx_uint_t                  kind;
} ngx_http_pred_bulk_op_t;


static void ngx_http_pred_bulk_body(ngx_http_request_t *r);
static ngx_int_t ngx_http_pred_bulk_parse(ngx_http_request_t *r,
    ngx_http_pred_cache_zone_t *z, ngx_str_t *body, ngx_array_t *ops,
    const char **reason);
static const char *ngx_http_pred_bulk_line(ngx_http_request_t *r,
    ngx_http_pred_cache_zone_t *z, char *p, char *end,
    ngx_http_pred_bulk_op_t *op);
static const char *ngx_http_pred_bulk_key(ngx_http_request_t *r,
    const char *start, const char *stop, ngx_str_t *key);
static const char *ngx_http_pred_bulk_ttl(const char *start,
    const char *stop, time_t *ttl);
static const char *ngx_http_pred_bulk_reason(ngx_http_request_t *r,
    ngx_uint_t line, const char *why);
static ngx_int_t ngx_http_pred_bulk_stopped(ngx_http_request_t *r,
    ngx_http_pred_bulk_op_t *op, ngx_uint_t written, ngx_uint_t status,
    const char *code, const char *why);


static pred_json_name_t  ngx_http_pred_bulk_names[] = {
    { "key", 3 }, { "value", 5 }, { "ttl", 3 }, { "delete", 6 },
    { "merge", 5 }
};


/* from the admin handler: POST PREFIX/bulk */
ngx_int_t
ngx_http_pred_bulk(ngx_http_request_t *r, ngx_http_pred_cache_zone_t *z)
{
    ngx_int_t  rc;

    if (z == NULL) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_pred_send_error(r, NGX_HTTP_NOT_FOUND,
                                        "not_configured", NULL,
                                        "this location has no pred_cache");
    }

    rc = ngx_http_pred_admin_length(r, NULL);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    rc = ngx_http_read_client_request_body(r, ngx_http_pred_bulk_body);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_pred_bulk_body(ngx_http_request_t *r)
{
    u_char                      *p;
    ngx_int_t                    rc;
    ngx_str_t                    body, out, value;
    ngx_uint_t                   i, upserts, deletes;
    const char                  *reason;
    ngx_array_t                  ops;
    ngx_http_pred_bulk_op_t     *op;
    ngx_http_pred_loc_conf_t    *plcf;
    ngx_http_pred_cache_zone_t  *z;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_pred_module);
    z = ngx_http_pred_cache_zone_get(plcf);

    if (ngx_http_pred_admin_body(r, NULL, &body) != NGX_OK) {
        return;
    }

    rc = ngx_http_pred_bulk_parse(r, z, &body, &ops, &reason);

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_finalize_request(r,
            ngx_http_pred_send_error(r, NGX_HTTP_BAD_REQUEST, "bad_line",
                                     NULL, reason));
        return;
    }

    /* every line is good: now the writes, in order (the last one wins) */
    op = ops.elts;
    upserts = 0;
    deletes = 0;

    for (i = 0; i < ops.nelts; i++) {
        value = op[i].value;

        if (op[i].kind == NGX_HTTP_PRED_BULK_MERGE) {
            rc = ngx_http_pred_merge_value(r, plcf, &op[i].key,
                                           &op[i].value, &value, &reason);

            /* checked with its line: only the current value can fail */
            if (rc == NGX_BUSY || rc == NGX_DECLINED) {
                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "pred: admin: bulk: line %ui, key \"%V\": "
                              "%s; %ui of %ui lines written", op[i].line,
                              &op[i].key, reason, i, ops.nelts);

                ngx_http_finalize_request(r,
                    ngx_http_pred_bulk_stopped(r, &op[i], i,
                                               NGX_HTTP_SERVICE_UNAVAILABLE,
                                               "unavailable", reason));
                return;
            }

            if (rc != NGX_OK) {
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
                return;
            }
        }

        rc = ngx_http_pred_cache_put(z, &op[i].key,
                                     op[i].kind == NGX_HTTP_PRED_BULK_DELETE
                                     ? NGX_HTTP_PRED_CACHE_TOMBSTONE
                                     : NGX_HTTP_PRED_CACHE_OVERRIDE,
                                     op[i].kind == NGX_HTTP_PRED_BULK_DELETE
                                     ? NULL : &value,
                                     op[i].ttl, r->connection->log);

        if (rc != NGX_OK) {
            /* full, or a merged value past max_entry: what was written
               stays, and is said */
            ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                          "pred: admin: bulk: line %ui, key \"%V\": not "
                          "written; %ui of %ui lines written",
                          op[i].line, &op[i].key, i, ops.nelts);

            ngx_http_finalize_request(r,
                ngx_http_pred_bulk_stopped(r, &op[i], i,
                    rc == NGX_DECLINED ? NGX_HTTP_REQUEST_ENTITY_TOO_LARGE
                                       : NGX_HTTP_INSUFFICIENT_STORAGE,
                    rc == NGX_DECLINED ? "value_too_large"
                    : rc == NGX_BUSY ? "admin_budget_full" : "no_room",
                    rc == NGX_DECLINED
                    ? "the merged value is over the cache's max_entry"
                    : rc == NGX_BUSY
                    ? "the zone's budget for overrides and tombstones "
                      "(admin=) is full"
                    : "the cache zone has no room"));
            return;
        }

        if (op[i].kind == NGX_HTTP_PRED_BULK_DELETE) {
            deletes++;

        } else {
            upserts++;
        }
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "pred: admin: bulk: %ui upserts, %ui deletes", upserts,
                  deletes);

    p = ngx_pnalloc(r->pool, sizeof("{\"applied\":,\"upserts\":,"
                                    "\"deletes\":}") + 3 * NGX_INT_T_LEN);
    if (p == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    out.data = p;
    out.len = ngx_sprintf(p, "{\"applied\":%ui,\"upserts\":%ui,"
                          "\"deletes\":%ui}", ops.nelts, upserts, deletes)
              - p;

    ngx_http_finalize_request(r, ngx_http_pred_send(r, NGX_HTTP_OK, &out));
}


/*
 * Every line of the body into ops; blank lines are skipped.  NGX_DECLINED
 * with the first bad line in *reason ("line N: why").
 */
static ngx_int_t
ngx_http_pred_bulk_parse(ngx_http_request_t *r, ngx_http_pred_cache_zone_t *z,
    ngx_str_t *body, ngx_array_t *ops, const char **reason)
{
    char                     *p, *end, *eol;
    ngx_uint_t                n, line;
    const char               *why;
    ngx_http_pred_bulk_op_t  *op;

    p = (char *) body->data;
    end = p + body->len;

    /*
     * As many writes as lines, at most, and one per 20 bytes (the shortest
     * line is {"key":"k","value":1}): blank lines reserve nothing.
     */
    n = 1;
    for (eol = p; (eol = memchr(eol, '\n', end - eol)) != NULL; eol++) {
        n++;
    }

    n = ngx_min(n, body->len / 20 + 1);

    if (ngx_array_init(ops, r->pool, n, sizeof(ngx_http_pred_bulk_op_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (line = 1; p < end; line++, p = eol + 1) {
        eol = memchr(p, '\n', end - p);
        if (eol == NULL) {
            eol = end;
        }

        if (pred_json_skip_ws(p, eol) == eol) {
            continue;
        }

        op = ngx_array_push(ops);
        if (op == NULL) {
            return NGX_ERROR;
        }

        op->line = line;

        why = ngx_http_pred_bulk_line(r, z, p, eol, op);

        if (why == NULL) {
            continue;
        }

        if (why == (const char *) NGX_ERROR) {
            return NGX_ERROR;
        }

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "pred: admin: bulk: line %ui: %s", line, why);

        *reason = ngx_http_pred_bulk_reason(r, line, why);

        return *reason ? NGX_DECLINED : NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * One line into op: NULL when it is good, else why it is not, or
 * NGX_ERROR as a pointer when memory ran out.
 */
static const char *
ngx_http_pred_bulk_line(ngx_http_request_t *r, ngx_http_pred_cache_zone_t *z,
    char *p, char *end, ngx_http_pred_bulk_op_t *op)
{
    size_t       where;
    const char  *q, *why, *starts[5], *stops[5];

    if (pred_json_validate(p, end - p, &where) != 0) {
        return "not valid JSON";
    }

    q = pred_json_skip_ws(p, end);

    if (*q != '{'
        || pred_json_members(q, end, ngx_http_pred_bulk_names, 5, starts,
                             stops)
           != 0)
    {
        return "not a JSON object";
    }

    if (starts[0] == NULL) {
        return "no \"key\"";
    }

    why = ngx_http_pred_bulk_key(r, starts[0], stops[0], &op->key);
    if (why) {
        return why;
    }

    op->ttl = ngx_http_pred_cache_ttl(
                  ngx_http_get_module_loc_conf(r, ngx_http_pred_module), z);

    if (starts[2]) {
        why = ngx_http_pred_bulk_ttl(starts[2], stops[2], &op->ttl);
        if (why) {
            return why;
        }
    }

    if ((starts[1] != NULL) + (starts[3] != NULL) + (starts[4] != NULL)
        > 1)
    {
        return "more than one of \"value\", \"delete\" and \"merge\"";
    }

    if (starts[3]) {
        if (stops[3] - starts[3] != 4
            || ngx_strncmp(starts[3], "true", 4) != 0)
        {
            return "\"delete\" must be true";
        }

        op->kind = NGX_HTTP_PRED_BULK_DELETE;
        ngx_str_null(&op->value);
        return NULL;
    }

    if (starts[4]) {
        if (*starts[4] != '{') {
            return "\"merge\" must be a JSON object";
        }

        op->kind = NGX_HTTP_PRED_BULK_MERGE;
        op->value.data = (u_char *) starts[4];
        op->value.len = pred_json_compact(starts[4], stops[4] - starts[4],
                                          (char *) starts[4]);

        switch (ngx_http_pred_merge_check(r, &op->value, &why)) {
        case NGX_OK:
            return NULL;
        case NGX_DECLINED:
            return why;
        default:
            return (const char *) NGX_ERROR;
        }
    }

    if (starts[1] == NULL) {
        return "no \"value\", \"delete\":true or \"merge\"";
    }

    op->kind = NGX_HTTP_PRED_BULK_UPSERT;

    if (stops[1] - starts[1] == 4 && ngx_strncmp(starts[1], "null", 4) == 0)
    {
        return "the value is null";
    }

    /* in place: the value's own bytes, less white space */
    op->value.data = (u_char *) starts[1];
    op->value.len = pred_json_compact(starts[1], stops[1] - starts[1],
                                      (char *) starts[1]);

    if (op->value.len > z->max_entry) {
        return "the value is over the cache's max_entry";
    }

    return NULL;
}


/* a JSON string's bytes, checked as a lookup key is */
static const char *
ngx_http_pred_bulk_key(ngx_http_request_t *r, const char *start,
    const char *stop, ngx_str_t *key)
{
    json_t         *json;
    pred_key_rc_t   rc;

    if (*start != '"') {
        return "\"key\" is not a string";
    }

    /* most keys have no escapes: their bytes are in the line */
    if (memchr(start, '\\', stop - start) == NULL) {
        key->data = (u_char *) start + 1;
        key->len = stop - start - 2;

    } else {
        json = json_loadb(start, stop - start, JSON_DECODE_ANY
                                               | JSON_ALLOW_NUL, NULL);
        if (json == NULL) {
            return "\"key\" is not a string";
        }

        key->len = json_string_length(json);
        key->data = ngx_pnalloc(r->pool, key->len + 1);

        if (key->data == NULL) {
            json_decref(json);
            return (const char *) NGX_ERROR;
        }

        ngx_memcpy(key->data, json_string_value(json), key->len);
        json_decref(json);
    }

    rc = pred_key_validate(key->data, key->len);

    return rc == PRED_KEY_OK ? NULL : pred_key_strerror(rc);
}


/* seconds (600) or an nginx time ("10m"); a year at most */
static const char *
ngx_http_pred_bulk_ttl(const char *start, const char *stop, time_t *ttl)
{
    ngx_str_t  s;

    s.data = (u_char *) start;
    s.len = stop - start;

    if (s.len >= 2 && *start == '"') {
        s.data++;
        s.len -= 2;
    }

    *ttl = ngx_parse_time(&s, 1);

    if (*ttl == (time_t) NGX_ERROR || *ttl <= 0
        || *ttl > NGX_HTTP_PRED_ADMIN_TTL_MAX)
    {
        return "\"ttl\" must be a time, such as 600 or \"10m\", up to a "
               "year";
    }

    return NULL;
}


/* "line N: why", in the request's pool; NULL when memory ran out */
static const char *
ngx_http_pred_bulk_reason(ngx_http_request_t *r, ngx_uint_t line,
    const char *why)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, sizeof("line : ") + NGX_INT_T_LEN
                             + ngx_strlen(why));
    if (p == NULL) {
        return NULL;
    }

    ngx_sprintf(p, "line %ui: %s%Z", line, why);

    return (const char *) p;
}


/*
 * A write the zone or the current value refused after the lines before it
 * were written: the error names the key, the line and how many were.
 */
static ngx_int_t
ngx_http_pred_bulk_stopped(ngx_http_request_t *r, ngx_http_pred_bulk_op_t *op,
    ngx_uint_t written, ngx_uint_t status, const char *code, const char *why)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, ngx_strlen(why)
                             + sizeof("line : ; the  lines before it were "
                                      "written")
                             + 2 * NGX_INT_T_LEN);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_sprintf(p, "line %ui: %s; the %ui lines before it were written%Z",
                op->line, why, written);

    return ngx_http_pred_send_error(r, status, code, &op->key, (char *) p);
}
