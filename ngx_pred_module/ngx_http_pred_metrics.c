/*
 * Metrics: counters shared by all workers, in a small zone of atomics, and
 * "pred_metrics;" to read them as Prometheus text or, with ?format=json,
 * as JSON.  Requests are counted in the log phase, so the answer path only
 * pays for the atomic add.
 */

#include "ngx_http_pred_module.h"


#define NGX_HTTP_PRED_M_LOCATIONS   128
#define NGX_HTTP_PRED_M_SNAPSHOTS   NGX_HTTP_PRED_MAX_SNAPSHOTS
#define NGX_HTTP_PRED_M_BUCKETS     11
#define NGX_HTTP_PRED_M_STAGES      (NGX_HTTP_PRED_MAX_STAGES + 1)
#define NGX_HTTP_PRED_M_DELTAS      9

/* pmcf->name_stages: a name's stages, and whether stage 0 is among them */
#define NGX_HTTP_PRED_M_NSTAGES     0xff
#define NGX_HTTP_PRED_M_STAGE0      0x100


/* a cascade stage's counters in one location */
typedef struct {
    ngx_atomic_t   results[NGX_HTTP_PRED_STAGE_RESULTS];
    ngx_atomic_t   buckets[NGX_HTTP_PRED_M_BUCKETS];
    ngx_atomic_t   finished;
    ngx_atomic_t   ms_sum;
} ngx_http_pred_m_stage_t;


/* whole requests of one location answered by one source */
typedef struct {
    ngx_atomic_t   buckets[NGX_HTTP_PRED_M_BUCKETS];
    ngx_atomic_t   finished;
    ngx_atomic_t   ms_sum;
} ngx_http_pred_m_duration_t;


typedef struct {
    ngx_atomic_t   requests[NGX_HTTP_PRED_M_LOCATIONS]
                           [NGX_HTTP_PRED_SRC_N];
    ngx_http_pred_m_duration_t  durations[NGX_HTTP_PRED_M_LOCATIONS]
                                         [NGX_HTTP_PRED_SRC_N];
    ngx_atomic_t   up_requests;
    ngx_atomic_t   up_finished;
    ngx_atomic_t   up_errors[NGX_HTTP_PRED_FAIL_KINDS];
    ngx_atomic_t   up_buckets[NGX_HTTP_PRED_M_BUCKETS];
    ngx_atomic_t   up_ms_sum;
    ngx_atomic_t   refine_requests;
    ngx_atomic_t   refine_missed;
    ngx_atomic_t   snap_swaps[NGX_HTTP_PRED_M_SNAPSHOTS];
    ngx_atomic_t   snap_refused[NGX_HTTP_PRED_M_SNAPSHOTS];
    ngx_atomic_t   snap_last_swap[NGX_HTTP_PRED_M_SNAPSHOTS];
    ngx_atomic_t   snap_routed[NGX_HTTP_PRED_M_SNAPSHOTS][2];
    ngx_atomic_t   shadow[NGX_HTTP_PRED_M_SNAPSHOTS]
                         [NGX_HTTP_PRED_SHADOW_RESULTS];
    ngx_atomic_t   shadow_buckets[NGX_HTTP_PRED_M_SNAPSHOTS]
                                 [NGX_HTTP_PRED_M_DELTAS];
    ngx_atomic_t   shadow_count[NGX_HTTP_PRED_M_SNAPSHOTS];
    ngx_atomic_t   shadow_sum[NGX_HTTP_PRED_M_SNAPSHOTS];  /* millionths */
    ngx_http_pred_m_stage_t  stages[NGX_HTTP_PRED_M_LOCATIONS]
                                   [NGX_HTTP_PRED_M_STAGES];

    /*
     * Whose counters a slot holds: a hash of the location's pred_name or
     * the snapshot's name (0: free), so that a reload that adds, removes or
     * reorders them leaves each name its own counts.
     */
    uint32_t       loc_key[NGX_HTTP_PRED_M_LOCATIONS];
    uint32_t       snap_key[NGX_HTTP_PRED_M_SNAPSHOTS];
} ngx_http_pred_metrics_sh_t;


static ngx_int_t ngx_http_pred_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static void ngx_http_pred_metrics_stages_merge(
    ngx_http_pred_main_conf_t *pmcf, ngx_http_pred_loc_conf_t *conf);
static void ngx_http_pred_metrics_slots(uint32_t *keys, ngx_uint_t nkeys,
    ngx_str_t **names, ngx_uint_t n, ngx_uint_t *slots, ngx_uint_t *fresh);
static ngx_int_t ngx_http_pred_metrics_log(ngx_http_request_t *r);
static ngx_int_t ngx_http_pred_metrics_handler(ngx_http_request_t *r);
static u_char *ngx_http_pred_metrics_text(ngx_http_request_t *r, u_char *p,
    u_char *last);
static u_char *ngx_http_pred_metrics_json(ngx_http_request_t *r, u_char *p,
    u_char *last);
static u_char *ngx_http_pred_metrics_label(u_char *p, u_char *last,
    ngx_str_t *s);
static u_char *ngx_http_pred_metrics_stages_text(ngx_http_request_t *r,
    u_char *p, u_char *last);
static u_char *ngx_http_pred_metrics_stages_json(ngx_http_request_t *r,
    u_char *p, u_char *last);
static u_char *ngx_http_pred_metrics_durations_text(ngx_http_request_t *r,
    u_char *p, u_char *last);
static u_char *ngx_http_pred_metrics_canary_text(ngx_http_request_t *r,
    u_char *p, u_char *last);
static u_char *ngx_http_pred_metrics_breaker(u_char *p, u_char *last,
    const char *name, ngx_http_pred_main_conf_t *pmcf, ngx_uint_t i);
static void ngx_http_pred_metrics_observe(ngx_atomic_t *buckets,
    ngx_atomic_t *finished, ngx_atomic_t *ms_sum, ngx_msec_t ms);


static const char  *ngx_http_pred_m_fail_names[] = {
    "timeout", "5xx", "connect", "invalid", "too_big"
};

static const char  *ngx_http_pred_m_stage_results[] = {
    "answered", "exited", "timeout", "failed", "skipped"
};

static const char  *ngx_http_pred_m_shadow_results[] = {
    "same", "different", "only_live", "only_candidate"
};

/* pred_shadow_delta's upper bounds, as numbers and as written */
static double  ngx_http_pred_m_delta_bounds[NGX_HTTP_PRED_M_DELTAS] = {
    0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 10, 100
};

static const char  *ngx_http_pred_m_delta_les[NGX_HTTP_PRED_M_DELTAS] = {
    "0.001", "0.01", "0.05", "0.1", "0.25", "0.5", "1", "10", "100"
};

/* upper bounds of the latency histogram, in ms */
static ngx_msec_t  ngx_http_pred_m_bounds[NGX_HTTP_PRED_M_BUCKETS] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500
};

static ngx_http_pred_metrics_sh_t  *ngx_http_pred_m;


/* the zone and the log-phase counter; from postconfiguration */
ngx_int_t
ngx_http_pred_metrics_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_pred_main_conf_t  *pmcf;
    ngx_http_core_main_conf_t  *cmcf;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_pred_module);

    /* filled in when the zone is there: see ngx_http_pred_metrics_slots() */
    pmcf->loc_slots = ngx_pcalloc(cf->pool, (pmcf->names.nelts + 1)
                                            * sizeof(ngx_uint_t));
    pmcf->snap_slots = ngx_pcalloc(cf->pool, (pmcf->snapshots.nelts + 1)
                                             * sizeof(ngx_uint_t));
    if (pmcf->loc_slots == NULL || pmcf->snap_slots == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_pred_shm_add(cf, "pred_metrics",
                              sizeof(ngx_http_pred_metrics_sh_t),
                              ngx_http_pred_metrics_init_zone, pmcf)
        == NULL)
    {
        return NGX_ERROR;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_pred_metrics_log;

    return NGX_OK;
}


/* "pred_metrics;" */
char *
ngx_http_pred_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    return ngx_http_pred_set_handler(cf, conf, NGX_HTTP_PRED_HANDLER_METRICS,
                                     ngx_http_pred_metrics_handler);
}


/* a location's index in the request counters, by its pred_name */
char *
ngx_http_pred_metrics_merge(ngx_conf_t *cf, ngx_http_pred_loc_conf_t *conf)
{
    ngx_uint_t                  i, *st;
    ngx_str_t                  *names, *n;
    ngx_http_core_loc_conf_t   *clcf;
    ngx_http_pred_main_conf_t  *pmcf;

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    if (conf->name.data == NULL) {
        clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
        conf->name = clcf->name;
    }

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_pred_module);
    names = pmcf->names.elts;

    for (i = 0; i < pmcf->names.nelts; i++) {
        if (names[i].len == conf->name.len
            && ngx_strncmp(names[i].data, conf->name.data, conf->name.len)
               == 0)
        {
            conf->index = i;
            ngx_http_pred_metrics_stages_merge(pmcf, conf);
            return NGX_CONF_OK;
        }
    }

    if (pmcf->names.nelts == NGX_HTTP_PRED_M_LOCATIONS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "more than %d pred_name values: give locations "
                           "a shared pred_name", NGX_HTTP_PRED_M_LOCATIONS);
        return NGX_CONF_ERROR;
    }

    n = ngx_array_push(&pmcf->names);
    if (n == NULL) {
        return NGX_CONF_ERROR;
    }

    *n = conf->name;
    conf->index = pmcf->names.nelts - 1;

    st = ngx_array_push(&pmcf->name_stages);
    if (st == NULL) {
        return NGX_CONF_ERROR;
    }

    *st = 0;
    ngx_http_pred_metrics_stages_merge(pmcf, conf);

    return NGX_CONF_OK;
}


/*
 * The stages a name's lines show: up to the longest cascade of its
 * locations, and stage 0 (the snapshot's) when one of them has it.
 */
static void
ngx_http_pred_metrics_stages_merge(ngx_http_pred_main_conf_t *pmcf,
    ngx_http_pred_loc_conf_t *conf)
{
    ngx_uint_t  *st, n;

    if (conf->cascade == NULL) {
        return;
    }

    st = (ngx_uint_t *) pmcf->name_stages.elts + conf->index;
    n = *st & NGX_HTTP_PRED_M_NSTAGES;

    if (conf->cascade->nelts > n) {
        n = conf->cascade->nelts;
    }

    *st = n | (*st & NGX_HTTP_PRED_M_STAGE0)
          | (conf->cascade_snapshot ? NGX_HTTP_PRED_M_STAGE0 : 0);
}


/*
 * A call started.  Reranker calls have their own counters; the others are
 * the model's (in flight: see admission, which counts every call).
 */
void
ngx_http_pred_metrics_call_start(ngx_http_pred_call_t *call)
{
    /* a cascade's stages have their own lines: see metrics_stage */
    if (ngx_http_pred_m == NULL || call->kind == NGX_HTTP_PRED_CALL_STAGE) {
        return;
    }

    (void) ngx_atomic_fetch_add(call->kind == NGX_HTTP_PRED_CALL_RERANK
                                ? &ngx_http_pred_m->refine_requests
                                : &ngx_http_pred_m->up_requests, 1);
}


/* a model call's or a cascade stage's answer is in, after ms */
void
ngx_http_pred_metrics_call_done(ngx_http_pred_call_t *call, ngx_msec_t ms)
{
    ngx_http_pred_m_stage_t    *st;
    ngx_http_pred_main_conf_t  *pmcf;

    if (ngx_http_pred_m == NULL || call->kind == NGX_HTTP_PRED_CALL_RERANK) {
        return;
    }

    if (call->kind == NGX_HTTP_PRED_CALL_STAGE) {
        pmcf = ngx_http_get_module_main_conf(call->ctx->request,
                                             ngx_http_pred_module);
        st = &ngx_http_pred_m->stages[pmcf->loc_slots[call->ctx->plcf->index]]
                                     [call->stage];

        ngx_http_pred_metrics_observe(st->buckets, &st->finished, &st->ms_sum,
                                      ms);
        return;
    }

    ngx_http_pred_metrics_observe(ngx_http_pred_m->up_buckets,
                                  &ngx_http_pred_m->up_finished,
                                  &ngx_http_pred_m->up_ms_sum, ms);

    if (call->fail) {
        (void) ngx_atomic_fetch_add(&ngx_http_pred_m->up_errors[call->fail
                                                                 - 1], 1);
    }
}


/* one observation of a latency histogram */
static void
ngx_http_pred_metrics_observe(ngx_atomic_t *buckets, ngx_atomic_t *finished,
    ngx_atomic_t *ms_sum, ngx_msec_t ms)
{
    ngx_uint_t  i;

    (void) ngx_atomic_fetch_add(finished, 1);

    for (i = 0; i < NGX_HTTP_PRED_M_BUCKETS; i++) {
        if (ms <= ngx_http_pred_m_bounds[i]) {
            break;
        }
    }

    if (i < NGX_HTTP_PRED_M_BUCKETS) {
        (void) ngx_atomic_fetch_add(&buckets[i], 1);
    }

    (void) ngx_atomic_fetch_add(ms_sum, ms);
}


/* what a cascade's stage came to (stage 0: the snapshot's value) */
void
ngx_http_pred_metrics_stage(ngx_http_pred_ctx_t *ctx, ngx_uint_t stage,
    ngx_uint_t result)
{
    ngx_http_pred_main_conf_t  *pmcf;

    if (ngx_http_pred_m == NULL) {
        return;
    }

    /* the request's configuration: a reload may have come since */
    pmcf = ngx_http_get_module_main_conf(ctx->request, ngx_http_pred_module);

    (void) ngx_atomic_fetch_add(
        &ngx_http_pred_m->stages[pmcf->loc_slots[ctx->plcf->index]][stage]
                               .results[result], 1);
}


/* a client was answered without the call: it missed the deadline */
void
ngx_http_pred_metrics_deadline(ngx_http_pred_call_t *call)
{
    /* a stage's timeout is its cascade's to count */
    if (ngx_http_pred_m == NULL || call->kind == NGX_HTTP_PRED_CALL_STAGE) {
        return;
    }

    if (call->kind == NGX_HTTP_PRED_CALL_RERANK) {
        (void) ngx_atomic_fetch_add(&ngx_http_pred_m->refine_missed, 1);
        return;
    }

    (void) ngx_atomic_fetch_add(
        &ngx_http_pred_m->up_errors[NGX_HTTP_PRED_FAIL_TIMEOUT - 1], 1);
}


void
ngx_http_pred_metrics_snapshot(ngx_http_pred_snapshot_t *snap,
    ngx_uint_t swapped)
{
    ngx_uint_t                  k;
    ngx_http_pred_main_conf_t  *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_pred_module);

    if (ngx_http_pred_m == NULL || pmcf == NULL
        || snap->index >= pmcf->snapshots.nelts)
    {
        return;
    }

    k = pmcf->snap_slots[snap->index];

    if (swapped) {
        (void) ngx_atomic_fetch_add(&ngx_http_pred_m->snap_swaps[k], 1);
        ngx_http_pred_m->snap_last_swap[k] = ngx_time();
        return;
    }

    (void) ngx_atomic_fetch_add(&ngx_http_pred_m->snap_refused[k], 1);
}


/* a key looked up in the live version or the candidate */
void
ngx_http_pred_metrics_routed(ngx_http_pred_snapshot_t *snap,
    ngx_uint_t role)
{
    ngx_http_pred_main_conf_t  *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_pred_module);

    if (ngx_http_pred_m == NULL || snap->index >= pmcf->snapshots.nelts) {
        return;
    }

    (void) ngx_atomic_fetch_add(
        &ngx_http_pred_m->snap_routed[pmcf->snap_slots[snap->index]][role],
        1);
}


/* a shadow comparison, and with pred_shadow field= the difference */
void
ngx_http_pred_metrics_shadow(ngx_http_pred_snapshot_t *snap,
    ngx_uint_t result, double *delta)
{
    double                      micro;
    ngx_uint_t                  k, i;
    ngx_http_pred_main_conf_t  *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_pred_module);

    if (ngx_http_pred_m == NULL || snap->index >= pmcf->snapshots.nelts) {
        return;
    }

    k = pmcf->snap_slots[snap->index];

    (void) ngx_atomic_fetch_add(&ngx_http_pred_m->shadow[k][result], 1);

    if (delta == NULL) {
        return;
    }

    for (i = 0; i < NGX_HTTP_PRED_M_DELTAS; i++) {
        if (*delta <= ngx_http_pred_m_delta_bounds[i]) {
            (void) ngx_atomic_fetch_add(
                &ngx_http_pred_m->shadow_buckets[k][i], 1);
            break;
        }
    }

    /* a NaN or a difference past 10^12 adds nothing to the sum */
    micro = *delta * 1000000.0;

    if (micro >= 0 && micro < 1e18) {
        (void) ngx_atomic_fetch_add(&ngx_http_pred_m->shadow_sum[k],
                                    (ngx_atomic_uint_t) (micro + 0.5));
    }

    (void) ngx_atomic_fetch_add(&ngx_http_pred_m->shadow_count[k], 1);
}


/*
 * The counters go on across reloads (data: the old cycle's configuration),
 * each name's in its own slot.
 */
static ngx_int_t
ngx_http_pred_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_uint_t                   i, k, fresh[NGX_HTTP_PRED_M_LOCATIONS];
    ngx_str_t                   *names[NGX_HTTP_PRED_M_LOCATIONS];
    ngx_slab_pool_t             *shpool;
    ngx_http_pred_snapshot_t   **snaps;
    ngx_http_pred_main_conf_t   *pmcf;
    ngx_http_pred_metrics_sh_t  *m;

    pmcf = shm_zone->data;
    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (ngx_http_pred_shm_struct(shm_zone, data ? shpool->data : NULL,
                                 sizeof(ngx_http_pred_metrics_sh_t),
                                 (void **) &ngx_http_pred_m)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    m = ngx_http_pred_m;

    for (i = 0; i < pmcf->names.nelts; i++) {
        names[i] = &((ngx_str_t *) pmcf->names.elts)[i];
    }

    ngx_http_pred_metrics_slots(m->loc_key, NGX_HTTP_PRED_M_LOCATIONS, names,
                                pmcf->names.nelts, pmcf->loc_slots, fresh);

    for (i = 0; i < pmcf->names.nelts; i++) {
        if (fresh[i]) {
            for (k = 0; k < NGX_HTTP_PRED_SRC_N; k++) {
                m->requests[pmcf->loc_slots[i]][k] = 0;
            }

            ngx_memzero(m->durations[pmcf->loc_slots[i]],
                        sizeof(m->durations[0]));

            ngx_memzero(m->stages[pmcf->loc_slots[i]],
                        sizeof(m->stages[0]));
        }
    }

    snaps = pmcf->snapshots.elts;

    for (i = 0; i < pmcf->snapshots.nelts; i++) {
        names[i] = &snaps[i]->name;
    }

    ngx_http_pred_metrics_slots(m->snap_key, NGX_HTTP_PRED_M_SNAPSHOTS,
                                names, pmcf->snapshots.nelts,
                                pmcf->snap_slots, fresh);

    for (i = 0; i < pmcf->snapshots.nelts; i++) {
        if (fresh[i]) {
            k = pmcf->snap_slots[i];
            m->snap_swaps[k] = 0;
            m->snap_refused[k] = 0;
            m->snap_last_swap[k] = 0;
            ngx_memzero((void *) m->snap_routed[k],
                        sizeof(m->snap_routed[0]));
            ngx_memzero((void *) m->shadow[k], sizeof(m->shadow[0]));
            ngx_memzero((void *) m->shadow_buckets[k],
                        sizeof(m->shadow_buckets[0]));
            m->shadow_count[k] = 0;
            m->shadow_sum[k] = 0;
        }
    }

    return NGX_OK;
}


/*
 * The slot of each of n names: the one it had, else a free one, else one
 * whose name is no longer configured (fresh: its counters start at 0).
 * There are never more names than slots (checked when they are read).
 */
static void
ngx_http_pred_metrics_slots(uint32_t *keys, ngx_uint_t nkeys,
    ngx_str_t **names, ngx_uint_t n, ngx_uint_t *slots, ngx_uint_t *fresh)
{
    uint32_t    key[NGX_HTTP_PRED_M_LOCATIONS];
    ngx_uint_t  i, j, k, used;

    for (i = 0; i < n; i++) {
        key[i] = ngx_crc32_short(names[i]->data, names[i]->len) | 1;
        fresh[i] = 1;

        for (j = 0; j < nkeys; j++) {
            if (keys[j] == key[i]) {
                slots[i] = j;
                fresh[i] = 0;
                break;
            }
        }
    }

    for (i = 0; i < n; i++) {
        if (!fresh[i]) {
            continue;
        }

        for (j = 0; j < nkeys; j++) {
            used = (keys[j] != 0);

            for (k = 0; used && k < n; k++) {
                if (keys[j] == key[k]) {
                    break;
                }
            }

            /* free, or held by a name no longer configured */
            if (!used || k == n) {
                keys[j] = key[i];
                slots[i] = j;
                break;
            }
        }
    }
}


static ngx_int_t
ngx_http_pred_metrics_log(ngx_http_request_t *r)
{
    ngx_msec_int_t              ms;
    ngx_uint_t                  src, slot;
    ngx_time_t                 *tp;
    ngx_http_pred_ctx_t        *ctx;
    ngx_http_pred_m_duration_t *d;
    ngx_http_pred_loc_conf_t   *plcf;
    ngx_http_pred_main_conf_t  *pmcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_pred_module);

    /* subrequests come here only with log_subrequest on: count them then */
    if (!plcf->enable || ngx_http_pred_m == NULL) {
        return NGX_OK;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_pred_module);

    if (ctx == NULL) {
        src = NGX_HTTP_PRED_SRC_NONE;

    } else if (ctx->batch) {
        src = NGX_HTTP_PRED_SRC_BATCH;

    } else if (ctx->shed) {
        src = NGX_HTTP_PRED_SRC_SHED;

    } else {
        src = ctx->source;
    }

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_pred_module);
    slot = pmcf->loc_slots[plcf->index];

    (void) ngx_atomic_fetch_add(&ngx_http_pred_m->requests[slot][src], 1);

    /* the whole request, as $request_time counts it, by who answered */
    tp = ngx_timeofday();
    ms = (ngx_msec_int_t) ((tp->sec - r->start_sec) * 1000
                           + (tp->msec - r->start_msec));
    ms = ngx_max(ms, 0);

    d = &ngx_http_pred_m->durations[slot][src];
    ngx_http_pred_metrics_observe(d->buckets, &d->finished, &d->ms_sum,
                                  (ngx_msec_t) ms);

    return NGX_OK;
}


static ngx_int_t
ngx_http_pred_metrics_handler(ngx_http_request_t *r)
{
    size_t                        size;
    u_char                       *p;
    ngx_int_t                     rc;
    ngx_str_t                     body, arg, *names;
    ngx_uint_t                    i, *st;
    ngx_http_pred_snapshot_t    **snaps;
    ngx_http_pred_breaker_conf_t *bc;
    ngx_http_pred_main_conf_t    *pmcf;
    ngx_http_pred_cache_zone_t  **zones;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_http_pred_m == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_pred_module);

    size = 16384;

    /*
     * a location's request and duration lines name it and the source each
     * time; an escaped name is at most twice as long
     */
    names = pmcf->names.elts;

    for (i = 0; i < pmcf->names.nelts; i++) {
        size += NGX_HTTP_PRED_SRC_N * (NGX_HTTP_PRED_M_BUCKETS + 8)
                * (128 + 2 * names[i].len);
    }

    /* a snapshot's lines (about 40 of them) name it each time */
    snaps = pmcf->snapshots.elts;

    for (i = 0; i < pmcf->snapshots.nelts; i++) {
        size += 4096 + 48 * snaps[i]->name.len;
    }

    /* a stage breaker's two lines */
    bc = pmcf->breakers.elts;

    for (i = 1; i < pmcf->breakers.nelts; i++) {
        size += 192 + 4 * (bc[i].uri.len + bc[i].server->server_name.len);
    }

    /* a cascade's stage lines name the location each time */
    st = pmcf->name_stages.elts;
    names = pmcf->names.elts;

    for (i = 0; i < pmcf->name_stages.nelts; i++) {
        if (st[i]) {
            size += NGX_HTTP_PRED_M_STAGES
                    * (NGX_HTTP_PRED_STAGE_RESULTS + NGX_HTTP_PRED_M_BUCKETS
                       + 4)
                    * (128 + 2 * names[i].len);
        }
    }

    /* a zone's lines name it a dozen times */
    zones = pmcf->zones.elts;

    for (i = 0; i < pmcf->zones.nelts; i++) {
        size += 1536 + 16 * zones[i]->shm_zone->shm.name.len;
    }

    body.data = ngx_pnalloc(r->pool, size);
    if (body.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_arg(r, (u_char *) "format", 6, &arg) == NGX_OK
        && arg.len == 4 && ngx_strncmp(arg.data, "json", 4) == 0)
    {
        p = ngx_http_pred_metrics_json(r, body.data, body.data + size);
        ngx_str_set(&r->headers_out.content_type, "application/json");

    } else {
        p = ngx_http_pred_metrics_text(r, body.data, body.data + size);
        ngx_str_set(&r->headers_out.content_type,
                    "text/plain; version=0.0.4; charset=utf-8");
    }

    /* the sizes above are upper bounds: a full buffer is a bug, not data */
    if (p == body.data + size) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "pred: metrics: %uz bytes were not enough", size);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body.len = p - body.data;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = body.len;
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    return ngx_http_pred_send_raw(r, &body);
}


#define ngx_http_pred_m_family(p, last, name, type, help)                   \
    ngx_slprintf(p, last, "# HELP " name " " help "\n# TYPE " name " "       \
                 type "\n")


static u_char *
ngx_http_pred_metrics_text(ngx_http_request_t *r, u_char *p, u_char *last)
{
    time_t                        age;
    uint64_t                      cum;
    ngx_uint_t                    i, k, used, total, open;
    ngx_atomic_uint_t             trips, fin;
    ngx_str_t                    *names;
    pred_snap_t                  *s;
    ngx_http_pred_snapshot_t    **snaps;
    ngx_http_pred_cache_zone_t  **zones;
    ngx_http_pred_main_conf_t    *pmcf;
    ngx_http_pred_metrics_sh_t   *m;

    m = ngx_http_pred_m;
    pmcf = ngx_http_get_module_main_conf(r, ngx_http_pred_module);

    p = ngx_http_pred_m_family(p, last, "pred_requests_total", "counter",
                               "Requests answered, by location and by who "
                               "answered.");

    names = pmcf->names.elts;

    for (i = 0; i < pmcf->names.nelts; i++) {
        for (k = 0; k < NGX_HTTP_PRED_SRC_N; k++) {
            p = ngx_slprintf(p, last, "pred_requests_total{location=\"");
            p = ngx_http_pred_metrics_label(p, last, &names[i]);
            p = ngx_slprintf(p, last, "\",source=\"%V\"} %uA\n",
                             &ngx_http_pred_source_names[k],
                             m->requests[pmcf->loc_slots[i]][k]);
        }
    }

    p = ngx_http_pred_metrics_durations_text(r, p, last);

    p = ngx_http_pred_m_family(p, last, "pred_upstream_requests_total",
                               "counter", "Model calls started.");
    p = ngx_slprintf(p, last, "pred_upstream_requests_total %uA\n",
                     m->up_requests);

    p = ngx_http_pred_m_family(p, last, "pred_upstream_in_flight", "gauge",
                               "Outgoing calls under way (model, refresh, "
                               "batch, reranker and cascade stage calls), "
                               "as pred_upstream_limit counts them.");
    p = ngx_slprintf(p, last, "pred_upstream_in_flight %uA\n",
                     ngx_http_pred_admission_in_flight(pmcf));

    p = ngx_http_pred_m_family(p, last, "pred_upstream_errors_total",
                               "counter", "Failed model calls, by kind "
                               "(timeout: a client got the fallback at the "
                               "deadline).");

    for (i = 0; i < NGX_HTTP_PRED_FAIL_KINDS; i++) {
        p = ngx_slprintf(p, last, "pred_upstream_errors_total{kind=\"%s\"} "
                         "%uA\n", ngx_http_pred_m_fail_names[i],
                         m->up_errors[i]);
    }

    p = ngx_http_pred_m_family(p, last, "pred_upstream_duration_seconds",
                               "histogram", "Duration of finished model "
                               "calls.");

    for (i = 0, cum = 0; i < NGX_HTTP_PRED_M_BUCKETS; i++) {
        cum += m->up_buckets[i];
        p = ngx_slprintf(p, last, "pred_upstream_duration_seconds_bucket"
                         "{le=\"%M.%03M\"} %uL\n",
                         ngx_http_pred_m_bounds[i] / 1000,
                         ngx_http_pred_m_bounds[i] % 1000, cum);
    }

    /*
     * finished calls (the in-flight ones are not in the histogram), read
     * once after the buckets, as the requests' are
     */
    fin = m->up_finished;
    p = ngx_slprintf(p, last, "pred_upstream_duration_seconds_bucket"
                     "{le=\"+Inf\"} %uA\n"
                     "pred_upstream_duration_seconds_sum %uA.%03uA\n"
                     "pred_upstream_duration_seconds_count %uA\n",
                     fin, m->up_ms_sum / 1000, m->up_ms_sum % 1000, fin);

    p = ngx_http_pred_m_family(p, last, "pred_upstream_breaker_open", "gauge",
                               "1 while the circuit breaker keeps misses "
                               "off the model.");
    open = ngx_http_pred_admission_breaker(pmcf, 0, &trips);
    p = ngx_slprintf(p, last, "pred_upstream_breaker_open %ui\n", open);

    p = ngx_http_pred_m_family(p, last, "pred_upstream_breaker_trips_total",
                               "counter", "Times the circuit breaker "
                               "opened.");
    p = ngx_slprintf(p, last, "pred_upstream_breaker_trips_total %uA\n",
                     trips);

    p = ngx_http_pred_m_family(p, last, "pred_refine_requests_total",
                               "counter", "Reranker calls started.");
    p = ngx_slprintf(p, last, "pred_refine_requests_total %uA\n",
                     m->refine_requests);

    p = ngx_http_pred_m_family(p, last, "pred_refine_deadline_missed_total",
                               "counter", "Reranker calls that missed the "
                               "deadline.");
    p = ngx_slprintf(p, last, "pred_refine_deadline_missed_total %uA\n",
                     m->refine_missed);

    p = ngx_http_pred_metrics_stages_text(r, p, last);

    zones = pmcf->zones.elts;

    p = ngx_http_pred_m_family(p, last, "pred_cache_bytes", "gauge",
                               "Cache zone size, the bytes in use, and the "
                               "budget of overrides and tombstones.");

    for (i = 0; i < pmcf->zones.nelts; i++) {
        total = zones[i]->shm_zone->shm.size;
        used = total - zones[i]->shpool->pfree * ngx_pagesize;

        p = ngx_slprintf(p, last, "pred_cache_bytes{zone=\"%V\",kind="
                         "\"total\"} %ui\n", &zones[i]->shm_zone->shm.name,
                         total);
        p = ngx_slprintf(p, last, "pred_cache_bytes{zone=\"%V\",kind="
                         "\"used\"} %ui\n", &zones[i]->shm_zone->shm.name,
                         used);
        p = ngx_slprintf(p, last, "pred_cache_bytes{zone=\"%V\",kind="
                         "\"admin_limit\"} %uz\n",
                         &zones[i]->shm_zone->shm.name,
                         zones[i]->admin_max);
        p = ngx_slprintf(p, last, "pred_cache_bytes{zone=\"%V\",kind="
                         "\"admin_used\"} %uA\n",
                         &zones[i]->shm_zone->shm.name,
                         ngx_http_pred_cache_stat(zones[i], 4));
    }

    p = ngx_http_pred_m_family(p, last, "pred_cache_entries", "gauge",
                               "Entries in the cache zone.");

    for (i = 0; i < pmcf->zones.nelts; i++) {
        p = ngx_slprintf(p, last, "pred_cache_entries{zone=\"%V\"} %uA\n",
                         &zones[i]->shm_zone->shm.name,
                         ngx_http_pred_cache_stat(zones[i], 0));
    }

    p = ngx_http_pred_m_family(p, last, "pred_cache_events_total",
                               "counter", "Cache evictions, expired "
                               "entries met, tombstones written, admin "
                               "writes refused (admin= full), lock-free "
                               "reads that met a writer and read again, "
                               "reads that then took the lock.");

    for (i = 0; i < pmcf->zones.nelts; i++) {
        p = ngx_slprintf(p, last, "pred_cache_events_total{zone=\"%V\","
                         "event=\"eviction\"} %uA\n"
                         "pred_cache_events_total{zone=\"%V\","
                         "event=\"expiration\"} %uA\n"
                         "pred_cache_events_total{zone=\"%V\","
                         "event=\"tombstone\"} %uA\n"
                         "pred_cache_events_total{zone=\"%V\","
                         "event=\"admin_full\"} %uA\n"
                         "pred_cache_events_total{zone=\"%V\","
                         "event=\"read_retry\"} %uA\n"
                         "pred_cache_events_total{zone=\"%V\","
                         "event=\"read_locked\"} %uA\n",
                         &zones[i]->shm_zone->shm.name,
                         ngx_http_pred_cache_stat(zones[i], 1),
                         &zones[i]->shm_zone->shm.name,
                         ngx_http_pred_cache_stat(zones[i], 2),
                         &zones[i]->shm_zone->shm.name,
                         ngx_http_pred_cache_stat(zones[i], 3),
                         &zones[i]->shm_zone->shm.name,
                         ngx_http_pred_cache_stat(zones[i], 5),
                         &zones[i]->shm_zone->shm.name,
                         ngx_http_pred_cache_stat(zones[i], 6),
                         &zones[i]->shm_zone->shm.name,
                         ngx_http_pred_cache_stat(zones[i], 7));
    }

    snaps = pmcf->snapshots.elts;

    p = ngx_http_pred_m_family(p, last, "pred_snapshot_info", "gauge",
                               "The live version and the candidate, as "
                               "seen by the worker that answered.");

    for (i = 0; i < pmcf->snapshots.nelts; i++) {
        s = snaps[i]->live;
        if (s) {
            p = ngx_slprintf(p, last, "pred_snapshot_info{snapshot=\"%V\","
                             "version=\"%s\",role=\"live\"} 1\n",
                             &snaps[i]->name, s->version);
        }

        s = snaps[i]->cand;
        if (s) {
            p = ngx_slprintf(p, last, "pred_snapshot_info{snapshot=\"%V\","
                             "version=\"%s\",role=\"candidate\"} 1\n",
                             &snaps[i]->name, s->version);
        }
    }

    p = ngx_http_pred_m_family(p, last, "pred_snapshot_entries", "gauge",
                               "Entries in the live snapshot.");

    for (i = 0; i < pmcf->snapshots.nelts; i++) {
        s = snaps[i]->live;
        p = ngx_slprintf(p, last, "pred_snapshot_entries{snapshot=\"%V\"} "
                         "%uL\n", &snaps[i]->name,
                         s ? (uint64_t) s->entries : (uint64_t) 0);
    }

    p = ngx_http_pred_m_family(p, last, "pred_snapshot_age_seconds",
                               "gauge", "Seconds since the live snapshot "
                               "was built.");

    for (i = 0; i < pmcf->snapshots.nelts; i++) {
        s = snaps[i]->live;
        age = s ? ngx_max(ngx_time() - s->created_at, 0) : 0;
        p = ngx_slprintf(p, last, "pred_snapshot_age_seconds{snapshot=\"%V\"}"
                         " %T\n", &snaps[i]->name, age);
    }

    p = ngx_http_pred_m_family(p, last, "pred_snapshot_freshness_sla_seconds",
                               "gauge", "The live snapshot's freshness SLA "
                               "(0: none).");

    for (i = 0; i < pmcf->snapshots.nelts; i++) {
        s = snaps[i]->live;
        p = ngx_slprintf(p, last, "pred_snapshot_freshness_sla_seconds"
                         "{snapshot=\"%V\"} %uL\n", &snaps[i]->name,
                         s ? (uint64_t) s->freshness_sla : (uint64_t) 0);
    }

    p = ngx_http_pred_m_family(p, last, "pred_snapshot_stale", "gauge",
                               "1 when the live snapshot is older than its "
                               "SLA, or when none is live.");

    for (i = 0; i < pmcf->snapshots.nelts; i++) {
        s = snaps[i]->live;
        p = ngx_slprintf(p, last, "pred_snapshot_stale{snapshot=\"%V\"} %d\n",
                         &snaps[i]->name,
                         s == NULL
                         || (s->freshness_sla
                             && (uint64_t) (ngx_time() - s->created_at)
                                > s->freshness_sla));
    }

    p = ngx_http_pred_m_family(p, last, "pred_snapshot_swaps_total",
                               "counter", "Versions switched to, summed "
                               "over workers.");

    for (i = 0; i < pmcf->snapshots.nelts && i < NGX_HTTP_PRED_M_SNAPSHOTS;
         i++)
    {
        p = ngx_slprintf(p, last, "pred_snapshot_swaps_total{snapshot=\"%V\"}"
                         " %uA\n", &snaps[i]->name,
                         m->snap_swaps[pmcf->snap_slots[i]]);
    }

    p = ngx_http_pred_m_family(p, last, "pred_snapshot_refused_total",
                               "counter", "Snapshot files refused, summed "
                               "over workers.");

    for (i = 0; i < pmcf->snapshots.nelts && i < NGX_HTTP_PRED_M_SNAPSHOTS;
         i++)
    {
        p = ngx_slprintf(p, last, "pred_snapshot_refused_total{snapshot="
                         "\"%V\"} %uA\n", &snaps[i]->name,
                         m->snap_refused[pmcf->snap_slots[i]]);
    }

    p = ngx_http_pred_m_family(p, last,
                               "pred_snapshot_last_swap_timestamp_seconds",
                               "gauge", "When a worker last switched "
                               "versions (0: never).");

    for (i = 0; i < pmcf->snapshots.nelts && i < NGX_HTTP_PRED_M_SNAPSHOTS;
         i++)
    {
        p = ngx_slprintf(p, last, "pred_snapshot_last_swap_timestamp_seconds"
                         "{snapshot=\"%V\"} %uA\n", &snaps[i]->name,
                         m->snap_last_swap[pmcf->snap_slots[i]]);
    }

    return ngx_http_pred_metrics_canary_text(r, p, last);
}


/*
 * pred_request_duration_seconds{location,source}: whole requests as the
 * client waited for them, by who answered, for p50/p95/p99 per tier and
 * an SLA's latency objective.
 */
static u_char *
ngx_http_pred_metrics_durations_text(ngx_http_request_t *r, u_char *p,
    u_char *last)
{
    uint64_t                     cum;
    ngx_uint_t                   i, k, b;
    ngx_str_t                   *names;
    ngx_atomic_uint_t            fin;
    ngx_http_pred_main_conf_t   *pmcf;
    ngx_http_pred_m_duration_t  *d;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_pred_module);
    names = pmcf->names.elts;

    p = ngx_http_pred_m_family(p, last, "pred_request_duration_seconds",
                               "histogram", "Duration of whole requests, "
                               "by location and by who answered.");

    for (i = 0; i < pmcf->names.nelts; i++) {
        for (k = 0; k < NGX_HTTP_PRED_SRC_N; k++) {
            d = &ngx_http_pred_m->durations[pmcf->loc_slots[i]][k];

            for (b = 0, cum = 0; b <= NGX_HTTP_PRED_M_BUCKETS; b++) {
                p = ngx_slprintf(p, last, "pred_request_duration_seconds_"
                                 "bucket{location=\"");
                p = ngx_http_pred_metrics_label(p, last, &names[i]);
                p = ngx_slprintf(p, last, "\",source=\"%V\",le=\"",
                                 &ngx_http_pred_source_names[k]);

                if (b == NGX_HTTP_PRED_M_BUCKETS) {
                    /*
                     * read once, after the buckets: an observation counts
                     * here before its bucket, so +Inf and _count are never
                     * below the last bucket
                     */
                    fin = d->finished;
                    p = ngx_slprintf(p, last, "+Inf\"} %uA\n", fin);
                    break;
                }

                cum += d->buckets[b];
                p = ngx_slprintf(p, last, "%M.%03M\"} %uL\n",
                                 ngx_http_pred_m_bounds[b] / 1000,
                                 ngx_http_pred_m_bounds[b] % 1000, cum);
            }

            p = ngx_slprintf(p, last, "pred_request_duration_seconds_sum"
                             "{location=\"");
            p = ngx_http_pred_metrics_label(p, last, &names[i]);
            p = ngx_slprintf(p, last, "\",source=\"%V\"} %uA.%03uA\n"
                             "pred_request_duration_seconds_count"
                             "{location=\"", &ngx_http_pred_source_names[k],
                             d->ms_sum / 1000, d->ms_sum % 1000);
            p = ngx_http_pred_metrics_label(p, last, &names[i]);
            p = ngx_slprintf(p, last, "\",source=\"%V\"} %uA\n",
                             &ngx_http_pred_source_names[k], fin);
        }
    }

    return p;
}


/*
 * The canary's families: the share, the keys each version was asked for,
 * and pred_shadow's comparisons.
 */
static u_char *
ngx_http_pred_metrics_canary_text(ngx_http_request_t *r, u_char *p,
    u_char *last)
{
    char                          pct[16];
    uint64_t                      cum;
    ngx_uint_t                    i, j, k;
    ngx_http_pred_snapshot_t    **snaps;
    ngx_http_pred_main_conf_t    *pmcf;
    ngx_http_pred_metrics_sh_t   *m;

    m = ngx_http_pred_m;
    pmcf = ngx_http_get_module_main_conf(r, ngx_http_pred_module);
    snaps = pmcf->snapshots.elts;

    p = ngx_http_pred_m_family(p, last, "pred_snapshot_canary_percent",
                               "gauge", "The candidate's share of keys, "
                               "in percent (0: none), as seen by the worker "
                               "that answered.");

    for (i = 0; i < pmcf->snapshots.nelts; i++) {
        pred_canary_format_percent(pct, sizeof(pct),
                                   snaps[i]->cand ? snaps[i]->cand_share : 0);
        p = ngx_slprintf(p, last, "pred_snapshot_canary_percent"
                         "{snapshot=\"%V\"} %s\n", &snaps[i]->name, pct);
    }

    p = ngx_http_pred_m_family(p, last, "pred_snapshot_requests_total",
                               "counter", "Keys looked up in each version, "
                               "by role.");

    for (i = 0; i < pmcf->snapshots.nelts && i < NGX_HTTP_PRED_M_SNAPSHOTS;
         i++)
    {
        k = pmcf->snap_slots[i];
        p = ngx_slprintf(p, last, "pred_snapshot_requests_total{snapshot="
                         "\"%V\",role=\"live\"} %uA\n"
                         "pred_snapshot_requests_total{snapshot="
                         "\"%V\",role=\"candidate\"} %uA\n",
                         &snaps[i]->name, m->snap_routed[k][0],
                         &snaps[i]->name, m->snap_routed[k][1]);
    }

    p = ngx_http_pred_m_family(p, last, "pred_shadow_total", "counter",
                               "Keys the live version was asked for, also "
                               "looked up in the candidate, by how the two "
                               "compared.");

    for (i = 0; i < pmcf->snapshots.nelts && i < NGX_HTTP_PRED_M_SNAPSHOTS;
         i++)
    {
        k = pmcf->snap_slots[i];

        for (j = 0; j < NGX_HTTP_PRED_SHADOW_RESULTS; j++) {
            p = ngx_slprintf(p, last, "pred_shadow_total{snapshot=\"%V\","
                             "result=\"%s\"} %uA\n", &snaps[i]->name,
                             ngx_http_pred_m_shadow_results[j],
                             m->shadow[k][j]);
        }
    }

    p = ngx_http_pred_m_family(p, last, "pred_shadow_delta", "histogram",
                               "pred_shadow field=: the absolute difference "
                               "of the field between the versions.");

    for (i = 0; i < pmcf->snapshots.nelts && i < NGX_HTTP_PRED_M_SNAPSHOTS;
         i++)
    {
        k = pmcf->snap_slots[i];
        cum = 0;

        for (j = 0; j < NGX_HTTP_PRED_M_DELTAS; j++) {
            cum += m->shadow_buckets[k][j];
            p = ngx_slprintf(p, last, "pred_shadow_delta_bucket{snapshot="
                             "\"%V\",le=\"%s\"} %uL\n", &snaps[i]->name,
                             ngx_http_pred_m_delta_les[j], cum);
        }

        p = ngx_slprintf(p, last, "pred_shadow_delta_bucket{snapshot=\"%V\","
                         "le=\"+Inf\"} %uA\n"
                         "pred_shadow_delta_sum{snapshot=\"%V\"} %uA.%06uA\n"
                         "pred_shadow_delta_count{snapshot=\"%V\"} %uA\n",
                         &snaps[i]->name, m->shadow_count[k],
                         &snaps[i]->name, m->shadow_sum[k] / 1000000,
                         m->shadow_sum[k] % 1000000,
                         &snaps[i]->name, m->shadow_count[k]);
    }

    return p;
}


static u_char *
ngx_http_pred_metrics_json(ngx_http_request_t *r, u_char *p, u_char *last)
{
    char                          pct[16];
    ngx_uint_t                    i, k;
    ngx_str_t                    *names;
    pred_snap_t                  *s;
    ngx_http_pred_snapshot_t    **snaps;
    ngx_http_pred_cache_zone_t  **zones;
    ngx_http_pred_main_conf_t    *pmcf;
    ngx_http_pred_metrics_sh_t   *m;

    m = ngx_http_pred_m;
    pmcf = ngx_http_get_module_main_conf(r, ngx_http_pred_module);
    names = pmcf->names.elts;

    p = ngx_slprintf(p, last, "{\"requests\":{");

    for (i = 0; i < pmcf->names.nelts; i++) {
        p = ngx_slprintf(p, last, "%s\"", i ? "," : "");
        p = ngx_http_pred_metrics_label(p, last, &names[i]);
        p = ngx_slprintf(p, last, "\":{");

        for (k = 0; k < NGX_HTTP_PRED_SRC_N; k++) {
            p = ngx_slprintf(p, last, "%s\"%V\":%uA", k ? "," : "",
                             &ngx_http_pred_source_names[k],
                             m->requests[pmcf->loc_slots[i]][k]);
        }

        p = ngx_slprintf(p, last, "}");
    }

    p = ngx_slprintf(p, last, "},\"upstream\":{\"requests\":%uA,"
                     "\"in_flight\":%uA,\"errors\":{", m->up_requests,
                     ngx_http_pred_admission_in_flight(pmcf));

    for (i = 0; i < NGX_HTTP_PRED_FAIL_KINDS; i++) {
        p = ngx_slprintf(p, last, "%s\"%s\":%uA", i ? "," : "",
                         ngx_http_pred_m_fail_names[i], m->up_errors[i]);
    }

    p = ngx_slprintf(p, last, "},\"duration_ms_sum\":%uA},"
                     "\"refine\":{\"requests\":%uA,\"deadline_missed\":%uA},",
                     m->up_ms_sum, m->refine_requests, m->refine_missed);

    p = ngx_http_pred_metrics_stages_json(r, p, last);

    p = ngx_slprintf(p, last, "\"caches\":{");

    zones = pmcf->zones.elts;

    for (i = 0; i < pmcf->zones.nelts; i++) {
        p = ngx_slprintf(p, last, "%s\"%V\":{\"entries\":%uA,"
                         "\"evictions\":%uA,\"expirations\":%uA,"
                         "\"tombstones\":%uA,\"admin_full\":%uA,"
                         "\"read_retry\":%uA,\"read_locked\":%uA}",
                         i ? "," : "",
                         &zones[i]->shm_zone->shm.name,
                         ngx_http_pred_cache_stat(zones[i], 0),
                         ngx_http_pred_cache_stat(zones[i], 1),
                         ngx_http_pred_cache_stat(zones[i], 2),
                         ngx_http_pred_cache_stat(zones[i], 3),
                         ngx_http_pred_cache_stat(zones[i], 5),
                         ngx_http_pred_cache_stat(zones[i], 6),
                         ngx_http_pred_cache_stat(zones[i], 7));
    }

    p = ngx_slprintf(p, last, "},\"snapshots\":{");

    snaps = pmcf->snapshots.elts;

    for (i = 0; i < pmcf->snapshots.nelts; i++) {
        s = snaps[i]->live;

        k = pmcf->snap_slots[i];

        p = ngx_slprintf(p, last, "%s\"%V\":{\"version\":%s%s%s,"
                         "\"entries\":%uL,\"swaps\":%uA,\"refused\":%uA,",
                         i ? "," : "", &snaps[i]->name, s ? "\"" : "",
                         s ? s->version : "null", s ? "\"" : "",
                         s ? (uint64_t) s->entries : (uint64_t) 0,
                         m->snap_swaps[k], m->snap_refused[k]);

        s = snaps[i]->cand;

        if (s) {
            pred_canary_format_percent(pct, sizeof(pct), snaps[i]->cand_share);
            p = ngx_slprintf(p, last, "\"candidate\":{\"version\":\"%s\","
                             "\"entries\":%uL,\"percent\":%s},",
                             s->version, (uint64_t) s->entries, pct);

        } else {
            p = ngx_slprintf(p, last, "\"candidate\":null,");
        }

        p = ngx_slprintf(p, last, "\"requests\":{\"live\":%uA,"
                         "\"candidate\":%uA},\"shadow\":{\"same\":%uA,"
                         "\"different\":%uA,\"only_live\":%uA,"
                         "\"only_candidate\":%uA}}",
                         m->snap_routed[k][0], m->snap_routed[k][1],
                         m->shadow[k][0], m->shadow[k][1], m->shadow[k][2],
                         m->shadow[k][3]);
    }

    return ngx_slprintf(p, last, "}}");
}


/*
 * pred_cascade_stage_total{location,stage,result} and the latency of each
 * stage's calls, for the names whose locations have a cascade.
 */
static u_char *
ngx_http_pred_metrics_stages_text(ngx_http_request_t *r, u_char *p,
    u_char *last)
{
    uint64_t                       cum;
    ngx_str_t                     *names;
    ngx_uint_t                     i, k, j, from, open, *st;
    ngx_atomic_uint_t              trips, fin;
    ngx_http_pred_m_stage_t       *ms;
    ngx_http_pred_main_conf_t     *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_pred_module);
    names = pmcf->names.elts;
    st = pmcf->name_stages.elts;

    p = ngx_http_pred_m_family(p, last, "pred_cascade_stage_total",
                               "counter", "Cascade stages, by location, "
                               "stage (0: the snapshot's value) and what "
                               "each came to.");

    for (i = 0; i < pmcf->names.nelts; i++) {
        from = (st[i] & NGX_HTTP_PRED_M_STAGE0) ? 0 : 1;

        for (k = from; st[i] && k <= (st[i] & NGX_HTTP_PRED_M_NSTAGES); k++) {
            ms = &ngx_http_pred_m->stages[pmcf->loc_slots[i]][k];

            for (j = 0; j < NGX_HTTP_PRED_STAGE_RESULTS; j++) {
                p = ngx_slprintf(p, last,
                                 "pred_cascade_stage_total{location=\"");
                p = ngx_http_pred_metrics_label(p, last, &names[i]);
                p = ngx_slprintf(p, last, "\",stage=\"%ui\",result=\"%s\"} "
                                 "%uA\n", k, ngx_http_pred_m_stage_results[j],
                                 ms->results[j]);
            }
        }
    }

    p = ngx_http_pred_m_family(p, last,
                               "pred_cascade_stage_duration_seconds",
                               "histogram", "Duration of finished cascade "
                               "stage calls, late ones included.");

    for (i = 0; i < pmcf->names.nelts; i++) {
        for (k = 1; st[i] && k <= (st[i] & NGX_HTTP_PRED_M_NSTAGES); k++) {
            ms = &ngx_http_pred_m->stages[pmcf->loc_slots[i]][k];

            for (j = 0, cum = 0; j <= NGX_HTTP_PRED_M_BUCKETS; j++) {
                p = ngx_slprintf(p, last, "pred_cascade_stage_duration_"
                                 "seconds_bucket{location=\"");
                p = ngx_http_pred_metrics_label(p, last, &names[i]);

                if (j == NGX_HTTP_PRED_M_BUCKETS) {
                    /* once, after the buckets: see the requests' */
                    fin = ms->finished;
                    p = ngx_slprintf(p, last, "\",stage=\"%ui\",le=\"+Inf\"}"
                                     " %uA\n", k, fin);
                    break;
                }

                cum += ms->buckets[j];
                p = ngx_slprintf(p, last, "\",stage=\"%ui\",le=\"%M.%03M\"}"
                                 " %uL\n", k,
                                 ngx_http_pred_m_bounds[j] / 1000,
                                 ngx_http_pred_m_bounds[j] % 1000, cum);
            }

            p = ngx_slprintf(p, last, "pred_cascade_stage_duration_seconds_"
                             "sum{location=\"");
            p = ngx_http_pred_metrics_label(p, last, &names[i]);
            p = ngx_slprintf(p, last, "\",stage=\"%ui\"} %uA.%03uA\n", k,
                             ms->ms_sum / 1000, ms->ms_sum % 1000);

            p = ngx_slprintf(p, last, "pred_cascade_stage_duration_seconds_"
                             "count{location=\"");
            p = ngx_http_pred_metrics_label(p, last, &names[i]);
            p = ngx_slprintf(p, last, "\",stage=\"%ui\"} %uA\n", k, fin);
        }
    }

    /* each stage's breaker, from index 1 (0 is the model's) */
    p = ngx_http_pred_m_family(p, last, "pred_cascade_breaker_open", "gauge",
                               "1 while the circuit breaker of a cascade "
                               "stage URI (in a server) keeps calls off "
                               "it.");

    for (i = 1; i < pmcf->breakers.nelts; i++) {
        open = ngx_http_pred_admission_breaker(pmcf, i, &trips);
        p = ngx_http_pred_metrics_breaker(p, last,
                                          "pred_cascade_breaker_open", pmcf,
                                          i);
        p = ngx_slprintf(p, last, " %ui\n", open);
    }

    p = ngx_http_pred_m_family(p, last, "pred_cascade_breaker_trips_total",
                               "counter", "Times the circuit breaker of a "
                               "cascade stage URI (in a server) opened.");

    for (i = 1; i < pmcf->breakers.nelts; i++) {
        (void) ngx_http_pred_admission_breaker(pmcf, i, &trips);
        p = ngx_http_pred_metrics_breaker(p, last,
                                          "pred_cascade_breaker_trips_total",
                                          pmcf, i);
        p = ngx_slprintf(p, last, " %uA\n", trips);
    }

    return p;
}


/*
 * NAME{server="...",uri="..."} of the i-th breaker.  Breakers are per
 * server block, and two blocks may share a server_name (or have none):
 * those get "NAME#1", "NAME#2" in their order, as two series with one
 * label set would be one to Prometheus.
 */
static u_char *
ngx_http_pred_metrics_breaker(u_char *p, u_char *last, const char *name,
    ngx_http_pred_main_conf_t *pmcf, ngx_uint_t i)
{
    ngx_str_t                     *sn;
    ngx_uint_t                     j, nth, same;
    ngx_http_pred_breaker_conf_t  *bc;

    bc = pmcf->breakers.elts;
    sn = &bc[i].server->server_name;
    nth = 0;
    same = 0;

    for (j = 1; j < pmcf->breakers.nelts; j++) {
        if (bc[j].server != bc[i].server
            && bc[j].uri.len == bc[i].uri.len
            && ngx_strncmp(bc[j].uri.data, bc[i].uri.data, bc[i].uri.len)
               == 0
            && bc[j].server->server_name.len == sn->len
            && (sn->len == 0
                || ngx_strncmp(bc[j].server->server_name.data, sn->data,
                               sn->len) == 0))
        {
            same++;
            nth += (j < i);
        }
    }

    p = ngx_slprintf(p, last, "%s{server=\"", name);
    p = ngx_http_pred_metrics_label(p, last, sn);

    if (same) {
        p = ngx_slprintf(p, last, "#%ui", nth + 1);
    }

    p = ngx_slprintf(p, last, "\",uri=\"");
    p = ngx_http_pred_metrics_label(p, last, &bc[i].uri);

    return ngx_slprintf(p, last, "\"}");
}


/* "cascade":{"LOCATION":{"1":{"answered":N,...,"duration_ms_sum":N}}}, */
static u_char *
ngx_http_pred_metrics_stages_json(ngx_http_request_t *r, u_char *p,
    u_char *last)
{
    ngx_str_t                  *names;
    ngx_uint_t                  i, k, j, from, n, *st;
    ngx_http_pred_m_stage_t    *ms;
    ngx_http_pred_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_pred_module);
    names = pmcf->names.elts;
    st = pmcf->name_stages.elts;

    p = ngx_slprintf(p, last, "\"cascade\":{");

    for (i = 0, n = 0; i < pmcf->names.nelts; i++) {
        if (st[i] == 0) {
            continue;
        }

        p = ngx_slprintf(p, last, "%s\"", n++ ? "," : "");
        p = ngx_http_pred_metrics_label(p, last, &names[i]);
        p = ngx_slprintf(p, last, "\":{");

        from = (st[i] & NGX_HTTP_PRED_M_STAGE0) ? 0 : 1;

        for (k = from; k <= (st[i] & NGX_HTTP_PRED_M_NSTAGES); k++) {
            ms = &ngx_http_pred_m->stages[pmcf->loc_slots[i]][k];

            p = ngx_slprintf(p, last, "%s\"%ui\":{", k > from ? "," : "", k);

            for (j = 0; j < NGX_HTTP_PRED_STAGE_RESULTS; j++) {
                p = ngx_slprintf(p, last, "\"%s\":%uA,",
                                 ngx_http_pred_m_stage_results[j],
                                 ms->results[j]);
            }

            p = ngx_slprintf(p, last, "\"finished\":%uA,"
                             "\"duration_ms_sum\":%uA}", ms->finished,
                             ms->ms_sum);
        }

        p = ngx_slprintf(p, last, "}");
    }

    return ngx_slprintf(p, last, "},");
}


/*
 * A label value (a location's name, pred_name: any bytes the configuration
 * has) as Prometheus and JSON both read it: \, " and newline escaped; other
 * control characters and bytes that are not UTF-8, which either reader
 * refuses, become "?".  At most twice the name's length.
 */
static u_char *
ngx_http_pred_metrics_label(u_char *p, u_char *last, ngx_str_t *s)
{
    u_char      c, *q;
    size_t      n;
    ngx_uint_t  i;

    i = 0;

    while (i < s->len && p + 2 < last) {
        c = s->data[i];

        if (c >= 0x80) {
            q = &s->data[i];

            if (ngx_utf8_decode(&q, s->len - i) > 0x10ffff) {
                *p++ = '?';
                i++;
                continue;
            }

            n = q - &s->data[i];

            if (p + n >= last) {
                break;
            }

            p = ngx_cpymem(p, &s->data[i], n);
            i += n;
            continue;
        }

        i++;

        if (c == '\\' || c == '"') {
            *p++ = '\\';
            *p++ = c;

        } else if (c == '\n') {
            *p++ = '\\';
            *p++ = 'n';

        } else if (c < 0x20 || c == 0x7f) {
            *p++ = '?';

        } else {
            *p++ = c;
        }
    }

    return p;
}
