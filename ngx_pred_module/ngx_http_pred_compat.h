/*
 * What differs between the nginx versions the module builds against
 * (Debian 12's 1.22.1 to the current mainline), kept to this file so the
 * others are written for one API.
 */

#ifndef NGX_HTTP_PRED_COMPAT_H
#define NGX_HTTP_PRED_COMPAT_H


/*
 * 1.23.0 chains headers of one name through ngx_table_elt_t.next, and
 * ngx_list_push() does not clear it: a header made by hand ends the chain
 * itself, as nginx's own do.
 */
#if (nginx_version >= 1023000)
#define ngx_http_pred_header_end(h)  (h)->next = NULL
#else
#define ngx_http_pred_header_end(h)
#endif


#endif /* NGX_HTTP_PRED_COMPAT_H */
