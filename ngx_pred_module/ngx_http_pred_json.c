/*
 * JSON shaping: the error bodies, string escaping, and compact copies.
 *
 * Error bodies are built by hand rather than with jansson: they sit on the
 * request path and need nothing but escaping.
 */

#include "ngx_http_pred_module.h"
#include "pred_json.h"


static ngx_uint_t ngx_http_pred_json_char(u_char **p, u_char *last,
    u_char *buf);


/*
 * Builds {"error":CODE[,"key":KEY][,"reason":REASON]} in the pool.
 * code is constant ASCII; key and reason are escaped.
 */
ngx_int_t
ngx_http_pred_json_error(ngx_pool_t *pool, ngx_str_t *out, const char *code,
    ngx_str_t *key, const char *reason)
{
    size_t     len;
    u_char    *p;
    ngx_str_t  why;

    why.data = (u_char *) reason;
    why.len = reason ? ngx_strlen(reason) : 0;

    len = sizeof("{\"error\":\"\"}") - 1 + ngx_strlen(code);

    if (key) {
        len += sizeof(",\"key\":\"\"") - 1 + ngx_http_pred_json_escape_len(key);
    }

    if (reason) {
        len += sizeof(",\"reason\":\"\"") - 1
               + ngx_http_pred_json_escape_len(&why);
    }

    p = ngx_pnalloc(pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;

    p = ngx_cpymem(p, "{\"error\":\"", sizeof("{\"error\":\"") - 1);
    p = ngx_cpymem(p, code, ngx_strlen(code));
    *p++ = '"';

    if (key) {
        p = ngx_cpymem(p, ",\"key\":\"", sizeof(",\"key\":\"") - 1);
        p = ngx_http_pred_json_escape(p, key);
        *p++ = '"';
    }

    if (reason) {
        p = ngx_cpymem(p, ",\"reason\":\"", sizeof(",\"reason\":\"") - 1);
        p = ngx_http_pred_json_escape(p, &why);
        *p++ = '"';
    }

    *p++ = '}';

    out->len = p - out->data;

    return NGX_OK;
}


size_t
ngx_http_pred_json_escape_len(ngx_str_t *s)
{
    size_t   len;
    u_char  *p, *last, buf[8];

    len = 0;
    p = s->data;
    last = s->data + s->len;

    while (p < last) {
        len += ngx_http_pred_json_char(&p, last, buf);
    }

    return len;
}


u_char *
ngx_http_pred_json_escape(u_char *dst, ngx_str_t *s)
{
    u_char  *p, *last;

    p = s->data;
    last = s->data + s->len;

    while (p < last) {
        dst += ngx_http_pred_json_char(&p, last, dst);
    }

    return dst;
}


/*
 * Writes the JSON form of the character at *p to buf (at most 6 bytes) and
 * advances *p.  Keys are client bytes: invalid UTF-8 becomes U+FFFD so that
 * the body stays valid JSON whatever was sent.
 */
static ngx_uint_t
ngx_http_pred_json_char(u_char **p, u_char *last, u_char *buf)
{
    u_char      c, *start;
    uint32_t    u;
    ngx_uint_t  n;

    static u_char  hex[] = "0123456789abcdef";

    c = **p;

    if (c >= 0x80) {
        start = *p;
        u = ngx_utf8_decode(p, last - start);

        if (u > 0x10ffff || (u >= 0xd800 && u <= 0xdfff)) {
            *p = start + 1;
            ngx_memcpy(buf, "\\ufffd", 6);
            return 6;
        }

        n = *p - start;
        ngx_memcpy(buf, start, n);
        return n;
    }

    (*p)++;

    if (c == '"' || c == '\\') {
        buf[0] = '\\';
        buf[1] = c;
        return 2;
    }

    if (c < 0x20 || c == 0x7f) {
        buf[0] = '\\';
        buf[1] = 'u';
        buf[2] = '0';
        buf[3] = '0';
        buf[4] = hex[c >> 4];
        buf[5] = hex[c & 0xf];
        return 6;
    }

    buf[0] = c;
    return 1;
}


/*
 * A copy of valid JSON in the pool, without white space outside strings
 * (never longer than the original): how every value is stored and sent.
 */
ngx_int_t
ngx_http_pred_json_copy(ngx_pool_t *pool, const char *json, size_t len,
    ngx_str_t *out)
{
    out->data = ngx_pnalloc(pool, len ? len : 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    out->len = pred_json_compact(json, len, (char *) out->data);

    return NGX_OK;
}
