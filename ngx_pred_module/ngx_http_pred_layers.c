/*
 * Delta layers over the live version (see pred_delta.h): which deltas are
 * live, read from PATH/layers at each check, and lookups through them.
 *
 * A stack is used only over the file it names as its base, and only while
 * that file is the live version: a publish of a new base makes the old
 * stack unused at once, whatever order the two pointers change in.  A
 * stack that cannot be opened is refused, logged once, and the one before
 * it keeps serving, as a bad base version is.
 */


#include "ngx_http_pred_module.h"


static ngx_int_t ngx_http_pred_layers_open(ngx_http_pred_snapshot_t *snap,
    pred_delta_stack_t *stack, ngx_http_pred_layer_t *next, char *err,
    size_t errlen, ngx_uint_t *transient, ngx_uint_t *good);
static void ngx_http_pred_layers_install(ngx_http_pred_snapshot_t *snap,
    ngx_http_pred_layer_t *next, ngx_uint_t n);
static void ngx_http_pred_layers_forget(ngx_http_pred_snapshot_t *snap,
    ngx_http_pred_layer_t *next, ngx_uint_t n);
static ngx_uint_t ngx_http_pred_layers_ours(ngx_http_pred_snapshot_t *snap);
static u_char *ngx_http_pred_layers_path(ngx_http_pred_snapshot_t *snap,
    const char *file);


void
ngx_http_pred_layers_check(ngx_http_pred_snapshot_t *snap)
{
    char                   err[PRED_SNAP_ERR_MAX];
    u_char                 text[PRED_DELTA_LINK_MAX + 1];
    u_char                *path;
    ssize_t                n;
    ngx_uint_t             i, transient, good;
    struct stat            st;
    pred_delta_stack_t     stack;
    ngx_http_pred_layer_t  next[PRED_DELTA_MAX];

    /*
     * A new version being preloaded: the pointers may have moved on to it
     * already, and the live version keeps its deltas until it goes.
     */
    if (snap->pending) {
        return;
    }

    /* a stack belongs to the base it was opened over, and goes with it */
    if (!ngx_http_pred_layers_ours(snap)) {
        ngx_http_pred_layers_drop(snap, "dropped: the live version changed");
        snap->layers_seen[0] = '\0';
    }

    if (snap->live == NULL) {
        return;
    }

    /* whatever is decided below is decided over this version */
    snap->layers_base_id = snap->live_id;

    /* a delta replaced or rewritten under its name is opened again */
    for (i = 0; i < snap->nlayers; i++) {
        path = ngx_http_pred_layers_path(snap, (char *) snap->layers[i].file);

        if (path == NULL) {
            return;
        }

        switch (stat((char *) path, &st) == -1
                ? 0 : ngx_http_pred_file_same(&snap->layers[i].id, &st))
        {
        case 1:
            ngx_free(path);
            continue;

        case 2:
            ngx_log_error(NGX_LOG_CRIT, snap->log, 0,
                          "pred: snapshot \"%V\" delta %s: \"%s\" was "
                          "rewritten in place (never write a published "
                          "file); no longer served, opening it again",
                          &snap->name, snap->layers[i].snap->version, path);
            break;

        default:
            ngx_log_error(NGX_LOG_NOTICE, snap->log, 0,
                          "pred: snapshot \"%V\": \"%s\" is another file "
                          "now: opening the delta layers again",
                          &snap->name, path);
        }

        ngx_free(path);
        ngx_http_pred_layers_drop(snap, NULL);
        snap->layers_seen[0] = '\0';
        break;
    }

    n = readlink((char *) snap->layers_link, (char *) text, sizeof(text));

    if (n == -1 && ngx_errno == NGX_ENOENT) {
        snap->layers_seen[0] = '\0';
        snap->layers_logged[0] = '\0';
        ngx_http_pred_layers_drop(snap, "dropped");
        return;
    }

    if (n == -1 || n == (ssize_t) sizeof(text)) {
        /* the layers being served stay */
        ngx_http_pred_pointer_unreadable(snap, snap->layers_link, n,
                                         snap->layers_logged,
                                         sizeof(snap->layers_logged),
                                         "a delta layers pointer", "");
        return;
    }

    text[n] = '\0';

    /* the common case: the stack being served, nothing changed */
    if (ngx_strcmp(text, snap->layers_seen) == 0) {
        return;
    }

    if (pred_delta_parse_link((char *) text, n, &stack) != 0) {
        if (ngx_strcmp(text, snap->layers_logged) != 0) {
            ngx_cpystrn(snap->layers_logged, text,
                        sizeof(snap->layers_logged));
            ngx_http_pred_pointer_printable(text);

            ngx_log_error(NGX_LOG_ERR, snap->log, 0,
                          "pred: snapshot \"%V\": \"%s\" is not a delta "
                          "layers pointer (\"snap-V.mdb+delta-W.mdb...\"): "
                          "\"%s\"", &snap->name, snap->layers_link, text);
        }

        return;
    }

    path = ngx_http_pred_layers_path(snap, stack.base);
    if (path == NULL) {
        return;
    }

    if (stat((char *) path, &st) == -1
        || ngx_http_pred_file_same(&snap->live_id, &st) != 1)
    {
        /* left from before a rollback, or a base published without them */
        ngx_log_error(NGX_LOG_NOTICE, snap->log, 0,
                      "pred: snapshot \"%V\": the delta layers in \"%s\" "
                      "are over \"%s\", not the live version %s: not used",
                      &snap->name, snap->layers_link, path,
                      snap->live->version);
        ngx_free(path);
        ngx_cpystrn(snap->layers_seen, text, sizeof(snap->layers_seen));
        ngx_http_pred_layers_drop(snap, "dropped");
        return;
    }

    ngx_free(path);

    if (ngx_http_pred_layers_open(snap, &stack, next, err, sizeof(err),
                                  &transient, &good)
        == NGX_OK)
    {
        snap->layers_transient_logged = 0;
        snap->layers_logged[0] = '\0';
        ngx_http_pred_layers_install(snap, next, stack.n);
        ngx_cpystrn(snap->layers_seen, text, sizeof(snap->layers_seen));
        return;
    }

    /*
     * Tried again at each check (a file that failed is not opened again
     * until it changes).  Meanwhile the deltas before the one that failed
     * serve, when they go further than the stack being served: they are
     * what the stack was when that delta was published.
     */
    if (transient) {
        ngx_http_pred_layers_forget(snap, next, good);

        if (!snap->layers_transient_logged) {
            snap->layers_transient_logged = 1;
            ngx_log_error(NGX_LOG_WARN, snap->log, 0,
                          "pred: snapshot \"%V\": cannot open the delta "
                          "layers now: %s; trying again", &snap->name, err);
        }

        return;
    }

    if (good > 0 && good >= snap->nlayers) {
        ngx_http_pred_layers_install(snap, next, good);

    } else {
        ngx_http_pred_layers_forget(snap, next, good);
    }

    if (ngx_strcmp(text, snap->layers_logged) != 0) {
        ngx_cpystrn(snap->layers_logged, text, sizeof(snap->layers_logged));

        ngx_log_error(NGX_LOG_ERR, snap->log, 0,
                      "pred: snapshot \"%V\": refused delta layers \"%s\": "
                      "%s; serving version %s with %ui delta layer%s",
                      &snap->name, text, err, snap->live->version,
                      snap->nlayers, snap->nlayers == 1 ? "" : "s");
    }
}


/*
 * next (n of them) becomes the stack: the layers of the old one it does
 * not keep are closed.  Logged when the stack is another.
 */
static void
ngx_http_pred_layers_install(ngx_http_pred_snapshot_t *snap,
    ngx_http_pred_layer_t *next, ngx_uint_t n)
{
    u_char      names[512], *p;
    ngx_uint_t  i, j, same;

    same = (n == snap->nlayers);

    for (i = 0; i < snap->nlayers; i++) {
        for (j = 0; j < n; j++) {
            if (next[j].snap == snap->layers[i].snap) {
                break;
            }
        }

        same = same && (j == i);

        if (j == n) {
            pred_snap_close(snap->layers[i].snap);
            ngx_free(snap->layers[i].snap);
        }
    }

    ngx_memcpy(snap->layers, next, n * sizeof(ngx_http_pred_layer_t));
    snap->nlayers = n;

    if (same) {
        return;
    }

    p = names;

    for (i = 0; i < n; i++) {
        p = ngx_slprintf(p, names + sizeof(names) - 1, "%s%s",
                         i ? ", " : "", next[i].snap->version);
    }

    *p = '\0';

    ngx_log_error(NGX_LOG_NOTICE, snap->log, 0,
                  "pred: snapshot \"%V\": serving version %s with %ui delta "
                  "layer%s: %s", &snap->name, snap->live->version, n,
                  n == 1 ? "" : "s", names);
}


/* the layers of next (n of them) opened for it, not the stack's: closed */
static void
ngx_http_pred_layers_forget(ngx_http_pred_snapshot_t *snap,
    ngx_http_pred_layer_t *next, ngx_uint_t n)
{
    ngx_uint_t  i, j;

    for (i = 0; i < n; i++) {
        for (j = 0; j < snap->nlayers; j++) {
            if (snap->layers[j].snap == next[i].snap) {
                break;
            }
        }

        if (j == snap->nlayers) {
            pred_snap_close(next[i].snap);
            ngx_free(next[i].snap);
        }
    }
}


/* closes every layer; why: what the log says happened, NULL: nothing */
void
ngx_http_pred_layers_drop(ngx_http_pred_snapshot_t *snap, const char *why)
{
    ngx_uint_t  i;

    if (snap->nlayers == 0) {
        return;
    }

    if (why) {
        ngx_log_error(NGX_LOG_NOTICE, snap->log, 0,
                      "pred: snapshot \"%V\": %ui delta layer%s %s",
                      &snap->name, snap->nlayers,
                      snap->nlayers == 1 ? "" : "s", why);
    }

    for (i = 0; i < snap->nlayers; i++) {
        if (snap->layers[i].snap) {
            pred_snap_close(snap->layers[i].snap);
            ngx_free(snap->layers[i].snap);
            snap->layers[i].snap = NULL;
        }
    }

    snap->nlayers = 0;
}


/*
 * The deltas' answer for key, newest first.  NGX_OK: *value (copied when
 * copy is set, else only its length), from *from; NGX_DONE: a delta
 * deleted the key; NGX_DECLINED: no delta has it; NGX_BUSY: a delta
 * faulted (the layers are dropped); NGX_ERROR (logged).
 */
ngx_int_t
ngx_http_pred_layers_lookup(ngx_http_request_t *r,
    ngx_http_pred_snapshot_t *snap, ngx_str_t *key, ngx_str_t *value,
    ngx_uint_t copy, pred_snap_t **from)
{
    ngx_int_t     rc;
    ngx_uint_t    i;
    pred_snap_t  *s;

    for (i = snap->nlayers; i-- > 0; /* void */) {
        s = snap->layers[i].snap;

        rc = ngx_http_pred_snapshot_read(r, snap, s, key, value, copy);

        if (rc == NGX_DECLINED) {
            continue;
        }

        if (rc != NGX_OK) {
            return rc;
        }

        *from = s;

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "pred: key \"%V\": %s in delta %s", key,
                       value->len ? "found" : "deleted", s->version);

        return value->len ? NGX_OK : NGX_DONE;
    }

    return NGX_DECLINED;
}


/*
 * The as-of time of the newest delta that changes key (an upsert or a
 * deletion), for the as-of rule of admin writes; 0 when none does.
 */
time_t
ngx_http_pred_layers_as_of(ngx_http_request_t *r,
    ngx_http_pred_snapshot_t *snap, ngx_str_t *key)
{
    ngx_str_t     value;
    ngx_int_t     rc;
    pred_snap_t  *from;

    /* only which delta: nothing is copied */
    rc = ngx_http_pred_layers_lookup(r, snap, key, &value, 0, &from);

    return (rc == NGX_OK || rc == NGX_DONE) ? from->as_of : 0;
}


/*
 * Opens the stack's deltas into next, reusing the layers already open:
 * each must be what its name says, a delta of the live version's very
 * content.  On failure nothing changed, and the file that failed (unless
 * the failure was not its fault) is not opened again until it changes.
 */
static ngx_int_t
ngx_http_pred_layers_open(ngx_http_pred_snapshot_t *snap,
    pred_delta_stack_t *stack, ngx_http_pred_layer_t *next, char *err,
    size_t errlen, ngx_uint_t *transient, ngx_uint_t *good)
{
    char                      why[PRED_SNAP_ERR_MAX];
    char                      version[PRED_SNAP_VERSION_MAX + 1];
    u_char                   *path;
    ngx_uint_t                i, j, reused[PRED_DELTA_MAX];
    struct stat               st;
    pred_snap_t              *s;
    ngx_http_pred_file_id_t   id;

    *transient = 0;
    ngx_memzero(reused, sizeof(reused));
    path = NULL;

    for (i = 0; i < stack->n; i++) {
        next[i].snap = NULL;
        ngx_cpystrn(next[i].file, (u_char *) stack->layer[i],
                    sizeof(next[i].file));

        path = ngx_http_pred_layers_path(snap, stack->layer[i]);
        if (path == NULL) {
            ngx_cpystrn((u_char *) err, (u_char *) "out of memory", errlen);
            *transient = 1;
            goto failed;
        }

        if (stat((char *) path, &st) == -1) {
            ngx_snprintf((u_char *) err, errlen, "\"%s\": stat() failed "
                         "(%d)%Z", path, (int) ngx_errno);
            goto failed;
        }

        for (j = 0; j < snap->nlayers; j++) {
            if (!reused[j]
                && ngx_http_pred_file_same(&snap->layers[j].id, &st) == 1)
            {
                break;
            }
        }

        if (j < snap->nlayers) {
            reused[j] = 1;
            next[i] = snap->layers[j];
            ngx_free(path);
            continue;
        }

        if (ngx_http_pred_file_same(&snap->layers_refused_id, &st) == 1) {
            ngx_snprintf((u_char *) err, errlen, "\"%s\" was refused "
                         "before and has not changed since%Z", path);
            goto failed;
        }

        s = ngx_http_pred_snapshot_open(snap, path, &id, why, sizeof(why),
                                        transient);
        if (s == NULL) {
            ngx_snprintf((u_char *) err, errlen, "\"%s\": %s%Z", path, why);
            goto refused;
        }

        next[i].snap = s;
        next[i].id = id;

        /* the file is the version, over the live one as it is now */
        (void) pred_delta_file_version(stack->layer[i],
                                       ngx_strlen(stack->layer[i]),
                                       "delta-", version);

        if (ngx_strcmp(s->version, version) != 0) {
            ngx_snprintf((u_char *) err, errlen, "\"%s\" says it is "
                         "version %s%Z", path, s->version);
            goto refused;
        }

        if (ngx_strcmp(s->delta_of, snap->live->version) != 0) {
            ngx_snprintf((u_char *) err, errlen, "\"%s\" is %s%s, not of "
                         "the live version %s%Z", path,
                         s->delta_of[0] ? "a delta of version "
                                        : "not a delta",
                         s->delta_of, snap->live->version);
            goto refused;
        }

        if (ngx_strcmp(s->base_checksum, snap->live->checksum) != 0) {
            ngx_snprintf((u_char *) err, errlen, "\"%s\" was built over "
                         "another version %s (%s, the live one is %s)%Z",
                         path, s->delta_of, s->base_checksum,
                         snap->live->checksum);
            goto refused;
        }

        ngx_free(path);
        path = NULL;
    }

    *good = stack->n;

    return NGX_OK;

refused:

    if (!*transient) {
        ngx_http_pred_file_id(&snap->layers_refused_id, &st);
    }

    /* i's own file, opened above: never one of the stack's */
    if (next[i].snap) {
        pred_snap_close(next[i].snap);
        ngx_free(next[i].snap);
        next[i].snap = NULL;
    }

failed:

    if (path) {
        ngx_free(path);
    }

    /* next[0 .. i) are open: the caller keeps or forgets them */
    *good = i;

    return NGX_ERROR;
}


/* the layers were opened over the version that is live now */
static ngx_uint_t
ngx_http_pred_layers_ours(ngx_http_pred_snapshot_t *snap)
{
    ngx_http_pred_file_id_t  *a, *b;

    if (snap->live == NULL) {
        return 0;
    }

    a = &snap->layers_base_id;
    b = &snap->live_id;

    return a->dev == b->dev && a->ino == b->ino && a->size == b->size
           && a->mtime.tv_sec == b->mtime.tv_sec
           && a->mtime.tv_nsec == b->mtime.tv_nsec;
}


/* "PATH/file", NUL-terminated, ngx_alloc()ed */
static u_char *
ngx_http_pred_layers_path(ngx_http_pred_snapshot_t *snap, const char *file)
{
    u_char  *path, *p;
    size_t   len;

    len = ngx_strlen(file);

    path = ngx_alloc(snap->path.len + 1 + len + 1, snap->log);
    if (path == NULL) {
        return NULL;
    }

    p = ngx_cpymem(path, snap->path.data, snap->path.len);
    *p++ = '/';
    ngx_memcpy(p, file, len + 1);

    return path;
}
