/*
 * The snapshot tier: published LMDB snapshots, one environment per worker.
 *
 * Each worker opens PATH/current in init_process (an LMDB environment must
 * not cross fork) and re-checks the pointer from a timer, never per
 * request.  A new target replaces the old one between two events, so a
 * lookup, which copies its value out at once, never sees a torn state.
 * A target that fails the checks is refused and the old one keeps serving.
 *
 * A canary (PATH/candidate, see pred_canary.h) is a second version open
 * beside the live one, read from the same timer: each check reads the
 * pointer once, so a worker takes a new file and its share together.  A
 * promote finds the new live file already open as the candidate and
 * switches to it without opening it again.
 */

#include "ngx_http_pred_module.h"

#include <sys/mman.h>
#include <sys/stat.h>


/* the staleness warning, per worker and snapshot, at most this often */
#define NGX_HTTP_PRED_STALE_LOG_INTERVAL  60

/* how often workers look for an admin "check now"; one atomic read */
#define NGX_HTTP_PRED_SIGNAL_POLL         50

/*
 * index=on: entries indexed per step, then the event loop runs (a step of
 * 20000 takes a few ms; 10M keys take a few seconds in all)
 */
#define NGX_HTTP_PRED_INDEX_STEP          20000

/* preload: switch once this share of pages is cached, or after the wait */
#define NGX_HTTP_PRED_PRELOAD_RESIDENT    0.99
#define NGX_HTTP_PRED_PRELOAD_WAIT        30000


static ngx_int_t ngx_http_pred_signals_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static u_char *ngx_http_pred_snapshot_file(ngx_conf_t *cf,
    ngx_http_pred_snapshot_t *snap, const char *name);
static void ngx_http_pred_signals_timer(ngx_event_t *ev);
static void ngx_http_pred_snapshot_timer(ngx_event_t *ev);
static void ngx_http_pred_snapshot_check(ngx_http_pred_snapshot_t *snap);
static void ngx_http_pred_snapshot_check_live(ngx_http_pred_snapshot_t *snap);
static void ngx_http_pred_snapshot_check_candidate(
    ngx_http_pred_snapshot_t *snap);
static void ngx_http_pred_snapshot_drop_candidate(
    ngx_http_pred_snapshot_t *snap, const char *why);
static void ngx_http_pred_snapshot_promote(ngx_http_pred_snapshot_t *snap);
static pred_snap_t *ngx_http_pred_snapshot_unindexed(
    ngx_http_pred_snapshot_t *snap);
static void ngx_http_pred_snapshot_index_start(
    ngx_http_pred_snapshot_t *snap);
static void ngx_http_pred_snapshot_refuse(ngx_http_pred_snapshot_t *snap,
    struct stat *st, const char *reason);
static ngx_int_t ngx_http_pred_snapshot_preload_start(
    ngx_http_pred_snapshot_t *snap, pred_snap_t *s);
static ngx_int_t ngx_http_pred_snapshot_preloaded(
    ngx_http_pred_snapshot_t *snap);
static void ngx_http_pred_snapshot_preload_stop(
    ngx_http_pred_snapshot_t *snap);
static void ngx_http_pred_snapshot_switch(ngx_http_pred_snapshot_t *snap,
    pred_snap_t *s, ngx_uint_t noindex);
static void *ngx_http_pred_snapshot_alloc(void *pool, size_t size);
static void ngx_http_pred_snapshot_index(ngx_event_t *ev);
static void ngx_http_pred_snapshot_fault(ngx_http_pred_snapshot_t *snap,
    pred_snap_t *s, ngx_str_t *key, const char *reason);


char *
ngx_http_pred_snapshot_path(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pred_main_conf_t *pmcf = conf;

    ngx_int_t                   rc;
    ngx_str_t                  *value;
    ngx_uint_t                  i;
    ngx_file_info_t             fi;
    ngx_http_pred_snapshot_t   *snap, **snapp;

    value = cf->args->elts;

    if (ngx_http_pred_conf_name(cf, &value[1], "snapshot") != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    snapp = pmcf->snapshots.elts;
    for (i = 0; i < pmcf->snapshots.nelts; i++) {
        if (snapp[i]->name.len == value[1].len
            && ngx_strncmp(snapp[i]->name.data, value[1].data,
                           value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate snapshot \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    if (pmcf->snapshots.nelts == NGX_HTTP_PRED_MAX_SNAPSHOTS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "more than %d snapshots",
                           NGX_HTTP_PRED_MAX_SNAPSHOTS);
        return NGX_CONF_ERROR;
    }

    snap = ngx_pcalloc(cf->pool, sizeof(ngx_http_pred_snapshot_t));
    if (snap == NULL) {
        return NGX_CONF_ERROR;
    }

    snap->name = value[1];
    snap->index = pmcf->snapshots.nelts;
    snap->path = value[2];
    snap->check = 1000;
    snap->preload = 0;

    if (ngx_conf_full_name(cf->cycle, &snap->path, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_file_info(snap->path.data, &fi) == NGX_FILE_ERROR
        || !ngx_is_dir(&fi))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "snapshot \"%V\": \"%V\" is not a directory",
                           &snap->name, &snap->path);
        return NGX_CONF_ERROR;
    }

    for (i = 3; i < cf->args->nelts; i++) {

        rc = ngx_http_pred_conf_param(cf, &value[i], "check=", 'm', 0,
                                      &snap->check);
        if (rc == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        if (rc == NGX_OK) {
            continue;
        }

        if (ngx_strcmp(value[i].data, "preload=on") == 0) {
            snap->preload = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "preload=off") == 0) {
            snap->preload = 0;
            continue;
        }

        if (ngx_strcmp(value[i].data, "index=on") == 0) {
            snap->hash_index = 1;
            continue;
        }

        if (ngx_strcmp(value[i].data, "index=off") == 0) {
            snap->hash_index = 0;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    snap->current = ngx_http_pred_snapshot_file(cf, snap, "current");
    snap->candidate_link = ngx_http_pred_snapshot_file(cf, snap,
                                                       PRED_CANARY_LINK);
    snap->layers_link = ngx_http_pred_snapshot_file(cf, snap,
                                                    PRED_DELTA_LINK);

    if (snap->current == NULL || snap->candidate_link == NULL
        || snap->layers_link == NULL)
    {
        return NGX_CONF_ERROR;
    }

    snapp = ngx_array_push(&pmcf->snapshots);
    if (snapp == NULL) {
        return NGX_CONF_ERROR;
    }

    *snapp = snap;

    return NGX_CONF_OK;
}


/* "PATH/name", NUL-terminated, in the configuration's pool */
static u_char *
ngx_http_pred_snapshot_file(ngx_conf_t *cf, ngx_http_pred_snapshot_t *snap,
    const char *name)
{
    u_char  *file, *p;
    size_t   len;

    len = ngx_strlen(name);

    file = ngx_pnalloc(cf->pool, snap->path.len + 1 + len + 1);
    if (file == NULL) {
        return NULL;
    }

    p = ngx_cpymem(file, snap->path.data, snap->path.len);
    *p++ = '/';
    ngx_memcpy(p, name, len + 1);

    return file;
}


/*
 * The zone of signals between workers: the "check now" generation; from
 * postconfiguration.
 */
ngx_int_t
ngx_http_pred_signals_add(ngx_conf_t *cf)
{
    ngx_http_pred_main_conf_t  *pmcf;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_pred_module);

    pmcf->signals = ngx_http_pred_shm_add(cf, "pred_signals",
                                          sizeof(ngx_atomic_t),
                                          ngx_http_pred_signals_init_zone,
                                          pmcf);

    return pmcf->signals ? NGX_OK : NGX_ERROR;
}


/* "pred_snapshot NAME" may come before "pred_snapshot_path NAME" */
char *
ngx_http_pred_snapshot_merge(ngx_conf_t *cf, ngx_http_pred_loc_conf_t *prev,
    ngx_http_pred_loc_conf_t *conf)
{
    ngx_uint_t                   i;
    ngx_http_pred_snapshot_t   **snapp;
    ngx_http_pred_main_conf_t   *pmcf;

    ngx_conf_merge_str_value(conf->snapshot_name, prev->snapshot_name, "");
    ngx_conf_merge_sec_value(conf->max_age, prev->max_age, NGX_CONF_UNSET);

    if (conf->snapshot_name.len == 0) {
        return NGX_CONF_OK;
    }

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_pred_module);

    snapp = pmcf->snapshots.elts;
    for (i = 0; i < pmcf->snapshots.nelts; i++) {
        if (snapp[i]->name.len == conf->snapshot_name.len
            && ngx_strncmp(snapp[i]->name.data, conf->snapshot_name.data,
                           conf->snapshot_name.len) == 0)
        {
            conf->snapshot = snapp[i];
            return NGX_CONF_OK;
        }
    }

    ngx_http_pred_merge_error(cf, "snapshot \"%V\" is not defined by "
                              "\"pred_snapshot_path\"",
                              &conf->snapshot_name);

    return NGX_CONF_ERROR;
}


ngx_int_t
ngx_http_pred_snapshot_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                   i;
    ngx_http_pred_snapshot_t   **snapp, *snap;
    ngx_http_pred_main_conf_t   *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_pred_module);
    if (pmcf == NULL) {
        return NGX_OK;
    }

    snapp = pmcf->snapshots.elts;

    if (pmcf->generation && pmcf->snapshots.nelts) {
        pmcf->signals_seen = *pmcf->generation;

        pmcf->signals_ev.handler = ngx_http_pred_signals_timer;
        pmcf->signals_ev.data = pmcf;
        pmcf->signals_ev.log = cycle->log;
        pmcf->signals_ev.cancelable = 1;

        ngx_add_timer(&pmcf->signals_ev, NGX_HTTP_PRED_SIGNAL_POLL);
    }

    for (i = 0; i < pmcf->snapshots.nelts; i++) {
        snap = snapp[i];

        snap->log = cycle->log;
        snap->timer.handler = ngx_http_pred_snapshot_timer;
        snap->timer.data = snap;
        snap->timer.log = cycle->log;
        snap->timer.cancelable = 1;

        snap->index_ev.handler = ngx_http_pred_snapshot_index;
        snap->index_ev.data = snap;
        snap->index_ev.log = cycle->log;
        snap->index_ev.cancelable = 1;

        ngx_http_pred_snapshot_check(snap);

        ngx_add_timer(&snap->timer, snap->check);
    }

    return NGX_OK;
}


void
ngx_http_pred_snapshot_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                   i;
    ngx_http_pred_snapshot_t   **snapp;
    ngx_http_pred_main_conf_t   *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_pred_module);
    if (pmcf == NULL) {
        return;
    }

    snapp = pmcf->snapshots.elts;

    for (i = 0; i < pmcf->snapshots.nelts; i++) {
        ngx_http_pred_snapshot_preload_stop(snapp[i]);

        if (snapp[i]->live) {
            pred_snap_close(snapp[i]->live);
            ngx_free(snapp[i]->live);
            snapp[i]->live = NULL;
        }

        if (snapp[i]->cand) {
            pred_snap_close(snapp[i]->cand);
            ngx_free(snapp[i]->cand);
            snapp[i]->cand = NULL;
        }

        ngx_http_pred_layers_drop(snapp[i], NULL);
    }
}


static void *
ngx_http_pred_snapshot_alloc(void *pool, size_t size)
{
    return ngx_pnalloc(pool, size);
}


/*
 * A version's file faulted under the map (truncated or overwritten in
 * place, which publish never does): stop reading it at once, and let the
 * pointer check take the next version that is published.  key is NULL when
 * the index was being built.
 */
static void
ngx_http_pred_snapshot_fault(ngx_http_pred_snapshot_t *snap, pred_snap_t *s,
    ngx_str_t *key, const char *reason)
{
    int                       fd;
    const char               *role;
    struct stat               st;
    ngx_http_pred_file_id_t  *refused;

    role = (s == snap->cand) ? "candidate " : "";

    /*
     * A delta: the version serves without its layers; the next check
     * opens the stack again, but not this file until it changes.
     */
    if (s != snap->cand && s != snap->live) {
        ngx_log_error(NGX_LOG_CRIT, snap->log, 0,
                      "pred: snapshot \"%V\" delta %s: key \"%V\": %s; "
                      "its layers are no longer served", &snap->name,
                      s->version, key, reason);

        fd = pred_snap_fd(s);

        if (fd != -1 && fstat(fd, &st) == 0) {
            ngx_http_pred_file_id(&snap->layers_refused_id, &st);
        }

        ngx_http_pred_layers_drop(snap, NULL);
        snap->layers_seen[0] = '\0';
        return;
    }

    if (key) {
        ngx_log_error(NGX_LOG_CRIT, snap->log, 0,
                      "pred: snapshot \"%V\" %sversion %s: key \"%V\": %s; "
                      "no longer served", &snap->name, role, s->version, key,
                      reason);
    } else {
        ngx_log_error(NGX_LOG_CRIT, snap->log, 0,
                      "pred: snapshot \"%V\" %sversion %s: indexing: %s; "
                      "no longer served", &snap->name, role, s->version,
                      reason);
    }

    ngx_http_pred_metrics_snapshot(snap, 0);

    /* what the file is now: a truncated file stays refused */
    if (s == snap->cand) {
        refused = &snap->cand_refused_id;
        *refused = snap->cand_id;
        snap->cand = NULL;

    } else {
        refused = &snap->refused_id;
        *refused = snap->live_id;
        snap->live = NULL;
    }

    fd = pred_snap_fd(s);

    if (fd != -1 && fstat(fd, &st) == 0) {
        ngx_http_pred_file_id(refused, &st);
    }

    pred_snap_close(s);
    ngx_free(s);
}


/*
 * One version's value for key, copied into the request's pool, for
 * lookups and peeks alike.  NGX_OK: a hit, NGX_DECLINED: a miss,
 * NGX_BUSY: the file faulted (the version is no longer served),
 * NGX_ERROR: LMDB failed (logged).
 */
ngx_int_t
ngx_http_pred_snapshot_read(ngx_http_request_t *r,
    ngx_http_pred_snapshot_t *snap, pred_snap_t *s, ngx_str_t *key,
    ngx_str_t *value, ngx_uint_t copy)
{
    int      rc;
    char     err[PRED_SNAP_ERR_MAX];
    void    *val;
    size_t   len;

    rc = pred_snap_get(s, key->data, key->len,
                       copy ? ngx_http_pred_snapshot_alloc : NULL, r->pool,
                       &val, &len, err, sizeof(err));

    switch (rc) {

    case 1:
        value->data = val;
        value->len = len;
        return NGX_OK;

    case 0:
        return NGX_DECLINED;

    case PRED_SNAP_FAULT:
        ngx_http_pred_snapshot_fault(snap, s, key, err);
        return NGX_BUSY;

    default:
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "pred: snapshot \"%V\" %sversion %s: key \"%V\": %s",
                      &snap->name, s == snap->cand ? "candidate " : "",
                      s->version, key, err);
        return NGX_ERROR;
    }
}


/*
 * NGX_OK: a hit, NGX_DECLINED: a miss, NGX_BUSY: no snapshot is loaded,
 * NGX_ERROR: LMDB failed (logged).
 */
ngx_int_t
ngx_http_pred_snapshot_lookup(ngx_http_request_t *r,
    ngx_http_pred_snapshot_t *snap, time_t max_age, ngx_str_t *key,
    ngx_uint_t role, ngx_http_pred_hit_t *hit)
{
    time_t        limit, *logged;
    ngx_int_t     rc;
    pred_snap_t  *s, *from;

    /* without a candidate (dropped since the route), the live version */
    s = (role == NGX_HTTP_PRED_ROLE_CANDIDATE && snap->cand) ? snap->cand
                                                             : snap->live;
    hit->cand_failed = 0;

again:

    if (s == NULL) {
        return NGX_BUSY;
    }

    hit->candidate = (s == snap->cand);
    from = s;

    /* the live version's deltas first, newest first (not a candidate's) */
    if (s == snap->live && snap->nlayers) {
        rc = ngx_http_pred_layers_lookup(r, snap, key, &hit->value, 1,
                                         &from);

        switch (rc) {

        case NGX_DECLINED:
            break;

        case NGX_DONE:
            return NGX_DECLINED;

        case NGX_OK:
            goto found;

        case NGX_BUSY:
            /* a delta faulted: the layers are dropped, the base answers */
            from = s;
            break;

        default:
            return rc;
        }
    }

    rc = ngx_http_pred_snapshot_read(r, snap, s, key, &hit->value, 1);

    if (rc == NGX_BUSY || rc == NGX_ERROR) {

        /* a candidate's fault or error is no reason to fail: the live
           version answers */
        if (hit->candidate) {
            hit->cand_failed = (rc == NGX_ERROR);
            s = snap->live;
            goto again;
        }

        return rc;
    }

found:

    /* copied: a swap may free the snapshot before the request is done;
       the version and age are those of the file that answered */
    hit->version.len = ngx_strlen(from->version);
    hit->version.data = ngx_pstrdup(r->pool, &(ngx_str_t) {
                                        hit->version.len,
                                        (u_char *) from->version });
    if (hit->version.data == NULL) {
        return NGX_ERROR;
    }

    hit->age = ngx_max(ngx_time() - from->created_at, 0);
    hit->fallback = s->fallback;

    limit = (max_age != NGX_CONF_UNSET) ? max_age : (time_t) s->freshness_sla;
    hit->stale = (limit > 0 && hit->age > limit);

    logged = hit->candidate ? &snap->cand_stale_logged : &snap->stale_logged;

    if (hit->stale && ngx_time() - *logged >= NGX_HTTP_PRED_STALE_LOG_INTERVAL)
    {
        *logged = ngx_time();

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "pred: snapshot \"%V\" %sversion %s is stale: %T s "
                      "old, limit %T s, fallback_if_stale %s", &snap->name,
                      hit->candidate ? "candidate " : "", s->version,
                      hit->age, limit,
                      pred_snap_fallback_name(s->fallback));
    }

    return rc;
}


/*
 * When the live version's data for key is as of (compact records later
 * times for the keys its deltas changed); 0 when there is no live version
 * or its file faulted, the file's own time when the read failed (logged).
 */
time_t
ngx_http_pred_snapshot_as_of(ngx_http_request_t *r,
    ngx_http_pred_snapshot_t *snap, ngx_str_t *key)
{
    int           rc;
    char          err[PRED_SNAP_ERR_MAX];
    time_t        as_of;
    pred_snap_t  *s;

    s = snap->live;

    if (s == NULL) {
        return 0;
    }

    rc = pred_snap_key_as_of(s, key->data, key->len, &as_of, err,
                             sizeof(err));

    if (rc == PRED_SNAP_FAULT) {
        ngx_http_pred_snapshot_fault(snap, s, key, err);
        return 0;
    }

    if (rc != 1) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "pred: snapshot \"%V\" version %s: key \"%V\": %s",
                      &snap->name, s->version, key, err);
        return s->as_of;
    }

    return as_of;
}


/*
 * pred_shadow's lookup: the candidate's value for the key, as stored, with
 * nothing else (no version, no staleness).  NGX_OK: found, NGX_DECLINED:
 * not there, NGX_BUSY: no candidate (or it just faulted), NGX_ERROR.
 */
ngx_int_t
ngx_http_pred_snapshot_peek(ngx_http_request_t *r,
    ngx_http_pred_snapshot_t *snap, ngx_str_t *key, ngx_str_t *value)
{
    if (snap->cand == NULL) {
        return NGX_BUSY;
    }

    return ngx_http_pred_snapshot_read(r, snap, snap->cand, key, value, 1);
}


/*
 * The admin API's "check now": this worker checks at once, the others
 * within NGX_HTTP_PRED_SIGNAL_POLL ms, when they see the generation move.
 */
void
ngx_http_pred_snapshot_check_now(ngx_http_pred_snapshot_t *snap)
{
    ngx_http_pred_main_conf_t  *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_pred_module);

    if (pmcf->generation) {
        pmcf->signals_seen = ngx_atomic_fetch_add(pmcf->generation, 1) + 1;
    }

    ngx_http_pred_snapshot_check(snap);
}


static ngx_int_t
ngx_http_pred_signals_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_pred_main_conf_t  *opmcf = data;

    ngx_http_pred_main_conf_t  *pmcf;

    pmcf = shm_zone->data;

    return ngx_http_pred_shm_struct(shm_zone,
                                    opmcf ? (void *) opmcf->generation : NULL,
                                    sizeof(ngx_atomic_t),
                                    (void **) &pmcf->generation);
}


static void
ngx_http_pred_signals_timer(ngx_event_t *ev)
{
    ngx_http_pred_main_conf_t *pmcf = ev->data;

    ngx_uint_t                  i;
    ngx_atomic_uint_t           gen;
    ngx_http_pred_snapshot_t  **snapp;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    gen = *pmcf->generation;

    if (gen != pmcf->signals_seen) {
        pmcf->signals_seen = gen;

        snapp = pmcf->snapshots.elts;
        for (i = 0; i < pmcf->snapshots.nelts; i++) {
            ngx_http_pred_snapshot_check(snapp[i]);
        }
    }

    ngx_add_timer(ev, NGX_HTTP_PRED_SIGNAL_POLL);
}


static void
ngx_http_pred_snapshot_timer(ngx_event_t *ev)
{
    ngx_http_pred_snapshot_t  *snap = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_http_pred_snapshot_check(snap);

    ngx_add_timer(ev, snap->check);
}


static void
ngx_http_pred_snapshot_check(ngx_http_pred_snapshot_t *snap)
{
    ngx_http_pred_snapshot_check_live(snap);
    ngx_http_pred_snapshot_check_candidate(snap);
    ngx_http_pred_layers_check(snap);
}


static void
ngx_http_pred_snapshot_check_live(ngx_http_pred_snapshot_t *snap)
{
    char          err[PRED_SNAP_ERR_MAX];
    ngx_uint_t    level, transient;
    struct stat   st;
    pred_snap_t  *s;

    if (stat((char *) snap->current, &st) == -1) {
        if (!snap->missing_logged) {
            snap->missing_logged = 1;
            /* the errno text goes last, so it closes the stat() part */
            level = snap->live ? NGX_LOG_ERR : NGX_LOG_WARN;
            ngx_log_error(level, snap->log, ngx_errno,
                          "pred: snapshot \"%V\": %s%s: stat(\"%s\") failed",
                          &snap->name,
                          snap->live ? "still serving version "
                                     : "nothing to serve",
                          snap->live ? snap->live->version : "",
                          snap->current);
        }

        return;
    }

    snap->missing_logged = 0;

    if (snap->live) {
        switch (ngx_http_pred_file_same(&snap->live_id, &st)) {

        case 1:
            ngx_http_pred_snapshot_preload_stop(snap);
            return;

        case 2:
            /*
             * Rewritten in place (cp, rsync --inplace): the old map may
             * mix old and new pages, so it is never read again; the file
             * is opened and checked as any new one.
             */
            ngx_log_error(NGX_LOG_CRIT, snap->log, 0,
                          "pred: snapshot \"%V\" version %s: the file was "
                          "rewritten in place (never write a published "
                          "file); no longer served, opening it again",
                          &snap->name, snap->live->version);

            ngx_http_pred_metrics_snapshot(snap, 0);
            pred_snap_close(snap->live);
            ngx_free(snap->live);
            snap->live = NULL;
            break;
        }
    }

    /* a promote: the candidate is open, with its index, and warm */
    if (snap->cand && ngx_http_pred_file_same(&snap->cand_id, &st) == 1) {
        ngx_http_pred_snapshot_promote(snap);
        return;
    }

    if (snap->pending) {
        if (ngx_http_pred_file_same(&snap->pending_id, &st) == 1) {
            if (ngx_http_pred_snapshot_preloaded(snap)) {
                s = snap->pending;
                snap->pending = NULL;
                ngx_http_pred_snapshot_preload_stop(snap);
                ngx_http_pred_snapshot_switch(snap, s, 0);
            }

            return;
        }

        /* the pointer moved on while preloading: start over */
        ngx_http_pred_snapshot_preload_stop(snap);
    }

    /* one log line per bad target, not one per check */
    if (ngx_http_pred_file_same(&snap->refused_id, &st) == 1) {
        return;
    }

    s = ngx_http_pred_snapshot_open(snap, snap->current, &snap->pending_id,
                                    err, sizeof(err), &transient);
    if (s == NULL) {
        if (!transient) {
            ngx_http_pred_snapshot_refuse(snap, &st, err);
            return;
        }

        /* not the file's fault: the next check tries it again */
        if (!snap->transient_logged) {
            snap->transient_logged = 1;
            ngx_log_error(NGX_LOG_ERR, snap->log, 0,
                          "pred: snapshot \"%V\": cannot open \"%s\" now: "
                          "%s; trying again", &snap->name, snap->current,
                          err);
        }

        return;
    }

    snap->transient_logged = 0;

    if (snap->preload && snap->live
        && ngx_http_pred_snapshot_preload_start(snap, s) == NGX_OK)
    {
        return;
    }

    ngx_http_pred_snapshot_switch(snap, s, 0);
}


/*
 * The candidate pointer, read once per check: its file and share come from
 * one readlink(), so a worker never pairs a new share with an old file.
 * A candidate that cannot be read or opened is dropped and logged once;
 * the live version is never touched here.
 */
static void
ngx_http_pred_snapshot_check_candidate(ngx_http_pred_snapshot_t *snap)
{
    char                     err[PRED_SNAP_ERR_MAX], pct[16];
    u_char                   text[PRED_CANARY_LINK_MAX + 1];
    u_char                   file[PRED_CANARY_LINK_MAX], *p, *path;
    size_t                   len;
    ssize_t                  n;
    uint32_t                 share;
    ngx_uint_t               transient, again, level;
    struct stat              st;
    pred_snap_t             *s;
    ngx_http_pred_file_id_t  id;

    n = readlink((char *) snap->candidate_link, (char *) text,
                 sizeof(text));

    if (n == -1 && ngx_errno == NGX_ENOENT) {
        snap->cand_seen[0] = '\0';

        /*
         * A promote that moved "current" between this check's two reads:
         * the candidate is the live version now, open and warm.
         */
        if (snap->cand && stat((char *) snap->current, &st) == 0
            && ngx_http_pred_file_same(&snap->cand_id, &st) == 1)
        {
            ngx_http_pred_snapshot_promote(snap);
            return;
        }

        ngx_http_pred_snapshot_drop_candidate(snap, "dropped");
        return;
    }

    if (n == -1 || n == (ssize_t) sizeof(text)) {
        ngx_http_pred_pointer_unreadable(snap, snap->candidate_link, n,
                                         snap->cand_seen,
                                         sizeof(snap->cand_seen),
                                         "a candidate pointer",
                                         "; serving the live version alone");
        ngx_http_pred_snapshot_drop_candidate(snap, "dropped");
        return;
    }

    text[n] = '\0';

    /* one log line for each pointer that cannot be served */
    again = (ngx_strcmp(text, snap->cand_seen) == 0);
    ngx_cpystrn(snap->cand_seen, text, sizeof(snap->cand_seen));

    if (!again) {
        snap->cand_transient_logged = 0;
    }

    if (pred_canary_parse_link((char *) text, n, (char *) file, &share)
        != 0)
    {
        if (!again) {
            ngx_http_pred_pointer_printable(text);

            ngx_log_error(NGX_LOG_ERR, snap->log, 0,
                          "pred: snapshot \"%V\": \"%s\" is not a "
                          "candidate pointer (\"snap-VERSION.mdb@PERCENT\"):"
                          " \"%s\"; serving the live version alone",
                          &snap->name, snap->candidate_link, text);
        }

        ngx_http_pred_snapshot_drop_candidate(snap, "dropped");
        return;
    }

    len = snap->path.len + 1 + ngx_strlen(file);

    path = ngx_alloc(len + 1, snap->log);
    if (path == NULL) {
        return;
    }

    p = ngx_cpymem(path, snap->path.data, snap->path.len);
    *p++ = '/';
    ngx_cpystrn(p, file, ngx_strlen(file) + 1);

    if (stat((char *) path, &st) == -1) {
        /* a new pointer's, or the file of the candidate being served */
        if (!again || snap->cand) {
            ngx_log_error(NGX_LOG_ERR, snap->log, ngx_errno,
                          "pred: snapshot \"%V\": candidate \"%s\": "
                          "stat() failed; serving the live version alone",
                          &snap->name, path);
        }

        ngx_free(path);
        ngx_http_pred_snapshot_drop_candidate(snap, "dropped");
        return;
    }

    pred_canary_format_percent(pct, sizeof(pct), share);

    /* a promote between its two steps: the live version serves alone */
    if (snap->live && ngx_http_pred_file_same(&snap->live_id, &st) == 1) {
        ngx_free(path);
        ngx_http_pred_snapshot_drop_candidate(snap, "is live now");
        return;
    }

    if (snap->cand && ngx_http_pred_file_same(&snap->cand_id, &st) == 1) {
        ngx_free(path);

        if (snap->cand_share != share) {
            ngx_log_error(NGX_LOG_NOTICE, snap->log, 0,
                          "pred: snapshot \"%V\": candidate version %s "
                          "at %s%% of keys", &snap->name,
                          snap->cand->version, pct);
            snap->cand_share = share;
        }

        return;
    }

    if (ngx_http_pred_file_same(&snap->cand_refused_id, &st) == 1) {
        ngx_free(path);
        ngx_http_pred_snapshot_drop_candidate(snap, "dropped");
        return;
    }

    s = ngx_http_pred_snapshot_open(snap, path, &id, err, sizeof(err),
                                    &transient);
    if (s == NULL) {
        ngx_http_pred_snapshot_drop_candidate(snap, "dropped");

        if (transient) {
            /* not the file's fault: the next check tries it again */
            if (snap->cand_transient_logged) {
                ngx_free(path);
                return;
            }

            snap->cand_transient_logged = 1;

        } else {
            ngx_http_pred_metrics_snapshot(snap, 0);
            ngx_http_pred_file_id(&snap->cand_refused_id, &st);
        }

        level = transient ? NGX_LOG_WARN : NGX_LOG_ERR;

        ngx_log_error(level, snap->log, 0,
                      "pred: snapshot \"%V\": refused candidate \"%s\": "
                      "%s; serving %s%s alone", &snap->name, path, err,
                      snap->live ? "version " : "nothing",
                      snap->live ? snap->live->version : "");
        ngx_free(path);
        return;
    }

    ngx_free(path);

    ngx_http_pred_snapshot_drop_candidate(snap, NULL);

    snap->cand_transient_logged = 0;
    snap->cand_stale_logged = 0;
    snap->cand = s;
    snap->cand_id = id;
    snap->cand_share = share;
    snap->cand_noindex = 0;

    ngx_log_error(NGX_LOG_NOTICE, snap->log, 0,
                  "pred: snapshot \"%V\": candidate version %s (%uL "
                  "entries) at %s%% of keys, beside version %s",
                  &snap->name, s->version, (uint64_t) s->entries, pct,
                  snap->live ? snap->live->version : "(none)");

    ngx_http_pred_snapshot_index_start(snap);
}


/*
 * A pointer (DIR/candidate, DIR/layers) that readlink() could not read (n
 * is -1) or that is too long (n is the buffer's size): one log line per
 * problem, remembered in seen as "\1ERRNO" or "\2".
 */
void
ngx_http_pred_pointer_unreadable(ngx_http_pred_snapshot_t *snap,
    u_char *link, ssize_t n, u_char *seen, size_t size, const char *what,
    const char *then)
{
    u_char     text[NGX_INT_T_LEN + 2];
    ngx_err_t  err_no;

    err_no = (n == -1) ? ngx_errno : 0;

    if (n == -1) {
        ngx_sprintf(text, "\1%d%Z", (int) err_no);
    } else {
        ngx_sprintf(text, "\2%Z");
    }

    if (ngx_strcmp(text, seen) == 0) {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, snap->log, err_no,
                  "pred: snapshot \"%V\": \"%s\" cannot be read as %s%s%s",
                  &snap->name, link, what,
                  n == -1 ? ": readlink() failed" : ": too long", then);

    ngx_cpystrn(seen, text, size);
}


/* a pointer's text as a log line may show it: any bytes may be there */
void
ngx_http_pred_pointer_printable(u_char *text)
{
    for ( /* void */ ; *text; text++) {
        if (*text < 0x20 || *text == 0x7f || *text == '"') {
            *text = '?';
        }
    }
}


/* the candidate becomes the live version, as it is: open and indexed */
static void
ngx_http_pred_snapshot_promote(ngx_http_pred_snapshot_t *snap)
{
    pred_snap_t  *s;

    ngx_http_pred_snapshot_preload_stop(snap);

    s = snap->cand;
    snap->cand = NULL;
    snap->cand_share = 0;
    snap->pending_id = snap->cand_id;

    ngx_http_pred_snapshot_switch(snap, s, snap->cand_noindex);
}


/* why: what the log says happened to it; NULL: replaced, nothing logged */
static void
ngx_http_pred_snapshot_drop_candidate(ngx_http_pred_snapshot_t *snap,
    const char *why)
{
    if (snap->cand == NULL) {
        return;
    }

    if (why) {
        ngx_log_error(NGX_LOG_NOTICE, snap->log, 0,
                      "pred: snapshot \"%V\": candidate version %s %s",
                      &snap->name, snap->cand->version, why);
    }

    pred_snap_close(snap->cand);
    ngx_free(snap->cand);
    snap->cand = NULL;
    snap->cand_share = 0;
}


static void
ngx_http_pred_snapshot_refuse(ngx_http_pred_snapshot_t *snap,
    struct stat *st, const char *reason)
{
    u_char   target[NGX_MAX_PATH];
    ssize_t  n;

    ngx_http_pred_metrics_snapshot(snap, 0);

    ngx_http_pred_file_id(&snap->refused_id, st);

    n = readlink((char *) snap->current, (char *) target,
                 sizeof(target) - 1);
    target[n < 0 ? 0 : n] = '\0';

    ngx_log_error(NGX_LOG_ERR, snap->log, 0,
                  "pred: snapshot \"%V\": refused \"%s\" -> \"%s\": %s%s%s",
                  &snap->name, snap->current, target, reason,
                  snap->live ? "; still serving version " : "",
                  snap->live ? snap->live->version : "");
}


/* opens path (the live pointer or a candidate's file); id: what was opened */
pred_snap_t *
ngx_http_pred_snapshot_open(ngx_http_pred_snapshot_t *snap, u_char *path,
    ngx_http_pred_file_id_t *id, char *err, size_t errlen,
    ngx_uint_t *transient)
{
    int           fd, nordahead, rc;
    struct stat   st;
    pred_snap_t  *s;

    *transient = 0;

    s = ngx_alloc(sizeof(pred_snap_t), snap->log);
    if (s == NULL) {
        ngx_cpystrn((u_char *) err, (u_char *) "out of memory", errlen);
        *transient = 1;
        return NULL;
    }

    /* read-ahead only helps while the file fits in memory */
    nordahead = (stat((char *) path, &st) == 0
                 && (uint64_t) st.st_size
                    > (uint64_t) sysconf(_SC_PHYS_PAGES) * ngx_pagesize / 2);

    rc = pred_snap_open(s, (char *) path, nordahead, err, errlen);

    if (rc != 0) {
        *transient = (rc == PRED_SNAP_TRANSIENT);
        ngx_free(s);
        return NULL;
    }

    /* what was really opened: the pointer may have moved since the stat */
    fd = pred_snap_fd(s);

    if (fd == -1 || fstat(fd, &st) == -1) {
        ngx_cpystrn((u_char *) err, (u_char *) "fstat failed", errlen);
        *transient = 1;
        pred_snap_close(s);
        ngx_free(s);
        return NULL;
    }

    ngx_http_pred_file_id(id, &st);

    return s;
}


void
ngx_http_pred_file_id(ngx_http_pred_file_id_t *id, struct stat *st)
{
    id->dev = st->st_dev;
    id->ino = st->st_ino;
    id->size = st->st_size;
    id->mtime = st->st_mtim;
}


/*
 * 1: the same file, 2: the same file with other content, 0: another.
 * Content is size and mtime: a chmod, chown or hard link changes only the
 * ctime, and is no reason to stop serving the file.
 */
ngx_uint_t
ngx_http_pred_file_same(ngx_http_pred_file_id_t *id, struct stat *st)
{
    if (id->dev != st->st_dev || id->ino != st->st_ino) {
        return 0;
    }

    if (id->size != st->st_size
        || id->mtime.tv_sec != st->st_mtim.tv_sec
        || id->mtime.tv_nsec != st->st_mtim.tv_nsec)
    {
        return 2;
    }

    return 1;
}


/* noindex: s failed to build its index (a promoted candidate) */
static void
ngx_http_pred_snapshot_switch(ngx_http_pred_snapshot_t *snap,
    pred_snap_t *s, ngx_uint_t noindex)
{
    pred_snap_t  *old;

    old = snap->live;

    ngx_http_pred_metrics_snapshot(snap, 1);

    snap->live_noindex = noindex;
    snap->live = s;
    snap->live_id = snap->pending_id;
    snap->stale_logged = 0;

    ngx_http_pred_snapshot_index_start(snap);

    ngx_log_error(NGX_LOG_NOTICE, snap->log, 0,
                  "pred: snapshot \"%V\": serving version %s (%uL entries)"
                  "%s%s", &snap->name, s->version, (uint64_t) s->entries,
                  old ? ", was " : "", old ? old->version : "");

    if (old) {
        pred_snap_close(old);
        ngx_free(old);
    }
}


/*
 * index=on: the version whose index is to be built next, the live one's
 * first; NULL when none is.  A version is served through LMDB until its
 * index is built, and for good when building it failed.
 */
static pred_snap_t *
ngx_http_pred_snapshot_unindexed(ngx_http_pred_snapshot_t *snap)
{
    if (!snap->hash_index) {
        return NULL;
    }

    if (snap->live && snap->live->index == NULL && !snap->live_noindex) {
        return snap->live;
    }

    if (snap->cand && snap->cand->index == NULL && !snap->cand_noindex) {
        return snap->cand;
    }

    return NULL;
}


static void
ngx_http_pred_snapshot_index_start(ngx_http_pred_snapshot_t *snap)
{
    if (!snap->index_ev.timer_set && ngx_http_pred_snapshot_unindexed(snap))
    {
        snap->index_since = ngx_current_msec;
        ngx_add_timer(&snap->index_ev, 1);
    }
}


/*
 * index=on: one step of building an index per timer tick, so that requests
 * are served between steps.  A step that finds another version there
 * builds that one's index from the start.
 */
static void
ngx_http_pred_snapshot_index(ngx_event_t *ev)
{
    ngx_http_pred_snapshot_t  *snap = ev->data;

    int           rc;
    char          err[PRED_SNAP_ERR_MAX];
    const char   *role;
    pred_snap_t  *s;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    s = ngx_http_pred_snapshot_unindexed(snap);
    if (s == NULL) {
        return;
    }

    role = (s == snap->cand) ? "candidate " : "";

    rc = pred_snap_index_step(s, NGX_HTTP_PRED_INDEX_STEP, err, sizeof(err));

    switch (rc) {

    case 0:
        ngx_add_timer(ev, 1);
        return;

    case 1:
        ngx_log_error(NGX_LOG_NOTICE, snap->log, 0,
                      "pred: snapshot \"%V\" %sversion %s: indexed %uL "
                      "keys in %M ms, %uz MB%s", &snap->name, role,
                      s->version, (uint64_t) s->entries,
                      ngx_current_msec - snap->index_since,
                      ((s->index_mask + 1) * sizeof(uint64_t)) >> 20,
                      s->index_complete ? "" : " (values on overflow pages "
                                               "are found through LMDB)");
        break;

    case PRED_SNAP_FAULT:
        ngx_http_pred_snapshot_fault(snap, s, NULL, err);
        break;

    default:
        ngx_log_error(NGX_LOG_WARN, snap->log, 0,
                      "pred: snapshot \"%V\" %sversion %s: no index: %s; "
                      "serving through LMDB", &snap->name, role, s->version,
                      err);

        if (s == snap->cand) {
            snap->cand_noindex = 1;

        } else {
            snap->live_noindex = 1;
        }
    }

    /* the other version's turn */
    ngx_http_pred_snapshot_index_start(snap);
}


/*
 * Preload asks the kernel to read the file into the page cache and waits,
 * on later ticks, until it is there; the event loop never blocks on it.
 */
static ngx_int_t
ngx_http_pred_snapshot_preload_start(ngx_http_pred_snapshot_t *snap,
    pred_snap_t *s)
{
    int     fd;
    u_char *map;

    fd = pred_snap_fd(s);

    if (fd == -1) {
        return NGX_DECLINED;
    }

    map = mmap(NULL, s->file_size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        ngx_log_error(NGX_LOG_WARN, snap->log, ngx_errno,
                      "pred: snapshot \"%V\": mmap() for preload failed, "
                      "switching without it", &snap->name);
        return NGX_DECLINED;
    }

    (void) madvise(map, s->file_size, MADV_WILLNEED);

    snap->pending = s;
    snap->pending_map = map;
    snap->pending_size = s->file_size;
    snap->pending_since = ngx_current_msec;

    ngx_log_error(NGX_LOG_INFO, snap->log, 0,
                  "pred: snapshot \"%V\": preloading version %s (%uz bytes)",
                  &snap->name, s->version, s->file_size);

    return NGX_OK;
}


static ngx_int_t
ngx_http_pred_snapshot_preloaded(ngx_http_pred_snapshot_t *snap)
{
    u_char     *vec;
    size_t      pages, i, resident;
    ngx_uint_t  done;

    if (ngx_current_msec - snap->pending_since >= NGX_HTTP_PRED_PRELOAD_WAIT)
    {
        ngx_log_error(NGX_LOG_WARN, snap->log, 0,
                      "pred: snapshot \"%V\": version %s not fully cached "
                      "after %M ms, switching anyway", &snap->name,
                      snap->pending->version, NGX_HTTP_PRED_PRELOAD_WAIT);
        return 1;
    }

    pages = (snap->pending_size + ngx_pagesize - 1) / ngx_pagesize;

    vec = ngx_alloc(pages, snap->log);
    if (vec == NULL) {
        return 1;
    }

    done = 1;

    if (mincore(snap->pending_map, snap->pending_size, vec) == 0) {
        resident = 0;
        for (i = 0; i < pages; i++) {
            resident += vec[i] & 1;
        }

        done = (resident >= pages * NGX_HTTP_PRED_PRELOAD_RESIDENT);
    }

    ngx_free(vec);

    return done;
}


static void
ngx_http_pred_snapshot_preload_stop(ngx_http_pred_snapshot_t *snap)
{
    if (snap->pending_map) {
        munmap(snap->pending_map, snap->pending_size);
        snap->pending_map = NULL;
    }

    if (snap->pending) {
        pred_snap_close(snap->pending);
        ngx_free(snap->pending);
        snap->pending = NULL;
    }
}
