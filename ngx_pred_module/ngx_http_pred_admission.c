/*
 * Admission control for every outgoing call: a cap on calls in flight
 * across all workers, priorities, a bounded wait queue, and a circuit
 * breaker.  Hits never come here.
 *
 *   pred_upstream_limit N [queue=M] [timeout=T];   (http)
 *   pred_upstream_breaker failures=N cooldown=T;   (http)
 *   pred_priority high|normal|low;                 (location)
 *
 * At the cap, low is shed at once (the fallback chain answers), normal
 * waits in the queue for a slot up to T, and high may use reserved
 * capacity (a quarter of N, at least one).  A model call the client waits
 * for and a batch's call have the location's priority; a call that runs
 * after the answer went out (pred_miss_mode async, stale-while-revalidate)
 * and a reranker call are low: the client has an answer without them.
 *
 * The breaker opens after N failed model calls in a row: calls go straight
 * to the fallback chain for the cooldown, then one probe is let through;
 * its success closes it.  Model, refresh and batch calls decide it;
 * reranker calls obey it but never probe and never count, since the
 * breaker speaks for the model.  Each pred_cascade stage URI has a breaker
 * of its own, with the same settings: a failing slow stage is skipped
 * while the fast ones still answer, and it never opens the model's.
 *
 * The state is in this file's zone: the in-flight gauge and the queue
 * length, each with a count per process slot, and the breaker, whose probe
 * names its slot.  A worker that dies mid-call leaves nothing behind: its
 * replacement, in the same slot, takes the dead one's calls, places and
 * probe off; a probe also expires, whatever happened to its worker.
 */

#include "ngx_http_pred_module.h"


#define NGX_HTTP_PRED_QUEUE_POLL_MS   5

#define NGX_HTTP_PRED_SHED_FULL  "shed: too many model calls in flight"


typedef struct {
    ngx_atomic_t                failures;
    ngx_atomic_t                open_until;
    ngx_atomic_t                probing;    /* the prober's slot + 1 */
    ngx_atomic_t                probe_until;
    ngx_atomic_t                trips;
    uint32_t                    key;        /* a stage's: its URI's crc */
} ngx_http_pred_breaker_t;


struct ngx_http_pred_admission_sh_s {
    ngx_atomic_t                in_flight;
    ngx_atomic_t                slot[NGX_MAX_PROCESSES];
    ngx_atomic_t                queued;
    ngx_atomic_t                queued_slot[NGX_MAX_PROCESSES];
    ngx_http_pred_breaker_t     breaker[NGX_HTTP_PRED_BREAKERS];
};


static ngx_int_t ngx_http_pred_admission_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_pred_admission_room(
    ngx_http_pred_main_conf_t *pmcf, ngx_uint_t priority);
static void ngx_http_pred_admission_take(ngx_http_pred_main_conf_t *pmcf,
    ngx_http_pred_call_t *call);
static void ngx_http_pred_admission_unqueue(ngx_http_pred_admission_sh_t *sh,
    ngx_http_pred_call_t *call);
static void ngx_http_pred_admission_poll(ngx_event_t *ev);
static ngx_http_pred_breaker_t *ngx_http_pred_admission_breaker_of(
    ngx_http_pred_main_conf_t *pmcf, ngx_http_pred_call_t *call);
static void ngx_http_pred_admission_verdict(ngx_http_pred_main_conf_t *pmcf,
    ngx_http_pred_breaker_t *b, ngx_http_pred_call_t *call);
static ngx_int_t ngx_http_pred_admission_shed(ngx_http_pred_call_t *call,
    const char *reason);
static ngx_int_t ngx_http_pred_admission_probe(
    ngx_http_pred_main_conf_t *pmcf, ngx_http_pred_call_t *call);


/* "pred_upstream_limit N [queue=M] [timeout=T]" */
char *
ngx_http_pred_upstream_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_pred_main_conf_t *pmcf = conf;

    ngx_int_t                    n;
    ngx_str_t                   *value;
    ngx_http_pred_conf_param_t   params[] = {
        { "queue=", 'n', 1, &pmcf->limit_queue },
        { "timeout=", 'm', 0, &pmcf->limit_timeout },
        { NULL, 0, 0, NULL }
    };

    if (pmcf->limit) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    if (n <= 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid limit \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    pmcf->limit = n;
    pmcf->limit_queue = 0;
    pmcf->limit_timeout = 50;

    if (ngx_http_pred_conf_params(cf, 2, params) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* "pred_upstream_breaker failures=N cooldown=T" */
char *
ngx_http_pred_upstream_breaker(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_pred_main_conf_t *pmcf = conf;

    ngx_http_pred_conf_param_t  params[] = {
        { "failures=", 'n', 0, &pmcf->breaker_failures },
        { "cooldown=", 'm', 0, &pmcf->breaker_cooldown },
        { NULL, 0, 0, NULL }
    };

    if (pmcf->breaker_failures) {
        return "is duplicate";
    }

    pmcf->breaker_cooldown = 5000;

    if (ngx_http_pred_conf_params(cf, 1, params) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (pmcf->breaker_failures == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"pred_upstream_breaker\" must have "
                           "\"failures\" parameter");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* the zone; from postconfiguration, always: the gauge is in it */
ngx_int_t
ngx_http_pred_admission_add(ngx_conf_t *cf)
{
    ngx_http_pred_main_conf_t  *pmcf;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_pred_module);

    pmcf->admission = ngx_http_pred_shm_add(cf, "pred_admission",
                          sizeof(ngx_http_pred_admission_sh_t),
                          ngx_http_pred_admission_init_zone, pmcf);
    if (pmcf->admission == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* a reload keeps the calls in flight and the breaker's state */
static ngx_int_t
ngx_http_pred_admission_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_pred_main_conf_t  *opmcf = data;

    ngx_uint_t                     i;
    uint32_t                       key;
    ngx_http_pred_breaker_t       *b;
    ngx_http_pred_main_conf_t     *pmcf;
    ngx_http_pred_breaker_conf_t  *bc;

    pmcf = shm_zone->data;

    if (ngx_http_pred_shm_struct(shm_zone,
                                 opmcf ? opmcf->admission_sh : NULL,
                                 sizeof(ngx_http_pred_admission_sh_t),
                                 (void **) &pmcf->admission_sh)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /*
     * A stage breaker whose index now names another stage starts closed;
     * the old configuration's calls, which know it by the old key, leave
     * it alone (ngx_http_pred_admission_breaker_of()).
     */
    bc = pmcf->breakers.elts;

    for (i = 1; i < pmcf->breakers.nelts; i++) {
        ngx_crc32_init(key);
        ngx_crc32_update(&key, bc[i].server->server_name.data,
                         bc[i].server->server_name.len);
        ngx_crc32_update(&key, (u_char *) " ", 1);
        ngx_crc32_update(&key, bc[i].uri.data, bc[i].uri.len);
        ngx_crc32_final(key);

        bc[i].key = key | 1;
        b = &pmcf->admission_sh->breaker[i];

        if (b->key != bc[i].key) {
            ngx_memzero(b, sizeof(ngx_http_pred_breaker_t));
            b->key = bc[i].key;
        }
    }

    return NGX_OK;
}


/*
 * The call's breaker, or NULL when it has none: no pred_upstream_breaker,
 * or a stage of a configuration that a reload replaced, whose breaker
 * index now belongs to another stage.
 */
static ngx_http_pred_breaker_t *
ngx_http_pred_admission_breaker_of(ngx_http_pred_main_conf_t *pmcf,
    ngx_http_pred_call_t *call)
{
    ngx_http_pred_breaker_t       *b;
    ngx_http_pred_breaker_conf_t  *bc;

    if (pmcf->breaker_failures == 0 || pmcf->admission_sh == NULL) {
        return NULL;
    }

    b = &pmcf->admission_sh->breaker[call->breaker];
    bc = pmcf->breakers.elts;

    if (call->breaker && b->key != bc[call->breaker].key) {
        return NULL;
    }

    return b;
}


/*
 * The breaker of a cascade stage: one per URI in a server block, whichever
 * of its locations ask it (a cascade written at the http level shares its
 * stages' breakers across servers).
 */
ngx_int_t
ngx_http_pred_breaker_index(ngx_conf_t *cf, ngx_str_t *uri,
    ngx_uint_t *index)
{
    ngx_uint_t                     i;
    ngx_http_core_srv_conf_t      *cscf;
    ngx_http_pred_main_conf_t     *pmcf;
    ngx_http_pred_breaker_conf_t  *bc;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_pred_module);
    cscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_core_module);
    bc = pmcf->breakers.elts;

    /* index 0 is the model's: no URI */
    for (i = 1; i < pmcf->breakers.nelts; i++) {
        if (bc[i].server == cscf && bc[i].uri.len == uri->len
            && ngx_strncmp(bc[i].uri.data, uri->data, uri->len) == 0)
        {
            *index = i;
            return NGX_OK;
        }
    }

    if (pmcf->breakers.nelts == NGX_HTTP_PRED_BREAKERS) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "more than %d pred_cascade stage URIs",
                           NGX_HTTP_PRED_BREAKERS - 1);
        return NGX_ERROR;
    }

    bc = ngx_array_push(&pmcf->breakers);
    if (bc == NULL) {
        return NGX_ERROR;
    }

    bc->uri = *uri;
    bc->server = cscf;
    bc->key = 0;
    *index = pmcf->breakers.nelts - 1;

    return NGX_OK;
}


/* a worker's slot may hold the calls of the one that died before it */
void
ngx_http_pred_admission_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                     i;
    ngx_atomic_int_t               left;
    ngx_http_pred_main_conf_t     *pmcf;
    ngx_http_pred_admission_sh_t  *sh;

    pmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_pred_module);
    if (pmcf == NULL || pmcf->admission_sh == NULL) {
        return;
    }

    sh = pmcf->admission_sh;
    left = sh->slot[ngx_process_slot];

    if (left) {
        (void) ngx_atomic_fetch_add(&sh->in_flight, -left);
        sh->slot[ngx_process_slot] = 0;

        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "pred: %A calls in flight of a worker that ended in "
                      "this slot are no longer counted", left);
    }

    left = sh->queued_slot[ngx_process_slot];

    if (left) {
        (void) ngx_atomic_fetch_add(&sh->queued, -left);
        sh->queued_slot[ngx_process_slot] = 0;
    }

    for (i = 0; i < NGX_HTTP_PRED_BREAKERS; i++) {
        if (ngx_atomic_cmp_set(&sh->breaker[i].probing, ngx_process_slot + 1,
                               0))
        {
            ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                          "pred: the breaker's probe of a worker that ended "
                          "in this slot is released");
        }
    }
}


/*
 * May the call run now?  NGX_OK: yes, it is counted in flight;
 * NGX_DECLINED: shed it (call->reason says why); NGX_AGAIN: it waits in
 * the queue, and ngx_http_pred_call_admitted() runs when that ends.
 */
ngx_int_t
ngx_http_pred_admit(ngx_http_request_t *r, ngx_http_pred_call_t *call)
{
    ngx_http_pred_breaker_t       *b;
    ngx_http_pred_main_conf_t     *pmcf;
    ngx_http_pred_admission_sh_t  *sh;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_pred_module);
    sh = pmcf->admission_sh;

    if (sh == NULL) {
        return NGX_ERROR;
    }

    b = ngx_http_pred_admission_breaker_of(pmcf, call);

    if (b) {
        if ((ngx_msec_int_t) (b->open_until - ngx_current_msec) > 0) {
            return ngx_http_pred_admission_shed(call,
                                                NGX_HTTP_PRED_SHED_BREAKER);
        }

        /*
         * The cooldown is over: one model call at a time probes.  A
         * reranker call neither probes nor waits for one: the breaker
         * speaks for the model, and only stops it while it is open.
         */
        if (b->open_until && call->kind != NGX_HTTP_PRED_CALL_RERANK) {
            if (ngx_http_pred_admission_probe(pmcf, call) != NGX_OK) {
                return ngx_http_pred_admission_shed(call,
                                                NGX_HTTP_PRED_SHED_BREAKER);
            }

            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "pred: the call for %V is the breaker's probe",
                           ngx_http_pred_call_about(call));
        }
    }

    if (pmcf->limit == 0
        || ngx_http_pred_admission_room(pmcf, call->priority) == NGX_OK)
    {
        ngx_http_pred_admission_take(pmcf, call);

        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "pred: %s call for %V admitted",
                       ngx_http_pred_call_kind_name(call),
                       ngx_http_pred_call_about(call));
        return NGX_OK;
    }

    /* only a call the client waits for may wait for a slot */
    if (call->priority == NGX_HTTP_PRED_PRIO_LOW || !call->held) {
        return ngx_http_pred_admission_shed(call, NGX_HTTP_PRED_SHED_FULL);
    }

    if (ngx_atomic_fetch_add(&sh->queued, 1) >= pmcf->limit_queue) {
        (void) ngx_atomic_fetch_add(&sh->queued, -1);
        return ngx_http_pred_admission_shed(call, NGX_HTTP_PRED_SHED_FULL);
    }

    call->queued = 1;
    call->queued_until = ngx_current_msec + pmcf->limit_timeout;

    /* a call whose deadline counts its wait waits no longer than it */
    if (call->until
        && (ngx_msec_int_t) (call->until - call->queued_until) < 0)
    {
        call->queued_until = call->until;
    }
    (void) ngx_atomic_fetch_add(&sh->queued_slot[ngx_process_slot], 1);
    call->timer.handler = ngx_http_pred_admission_poll;

    ngx_add_timer(&call->timer, NGX_HTTP_PRED_QUEUE_POLL_MS);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "pred: call for %V waits for a slot",
                   ngx_http_pred_call_about(call));

    return NGX_AGAIN;
}


/*
 * Takes the probe slot: free, or held past its expiry by a probe that
 * never ended (its worker died, or its request was lost).  The expiry is
 * the cooldown plus the call's deadline.
 */
static ngx_int_t
ngx_http_pred_admission_probe(ngx_http_pred_main_conf_t *pmcf,
    ngx_http_pred_call_t *call)
{
    ngx_atomic_uint_t         owner;
    ngx_http_pred_breaker_t  *b;

    b = ngx_http_pred_admission_breaker_of(pmcf, call);
    owner = b->probing;

    if (owner && (ngx_msec_int_t) (b->probe_until - ngx_current_msec) > 0) {
        return NGX_BUSY;
    }

    if (!ngx_atomic_cmp_set(&b->probing, owner, ngx_process_slot + 1)) {
        return NGX_BUSY;
    }

    b->probe_until = ngx_current_msec + pmcf->breaker_cooldown
                     + call->timeout;
    call->probe = 1;

    return NGX_OK;
}


static ngx_int_t
ngx_http_pred_admission_shed(ngx_http_pred_call_t *call, const char *reason)
{
    call->reason = reason;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, call->timer.log, 0,
                   "pred: %s call for %V shed: %s",
                   ngx_http_pred_call_kind_name(call),
                   ngx_http_pred_call_about(call), reason);

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_pred_admission_room(ngx_http_pred_main_conf_t *pmcf,
    ngx_uint_t priority)
{
    ngx_uint_t  cap;

    cap = pmcf->limit;

    if (priority == NGX_HTTP_PRED_PRIO_HIGH) {
        cap += ngx_max(pmcf->limit / 4, 1);
    }

    return pmcf->admission_sh->in_flight < cap ? NGX_OK : NGX_BUSY;
}


static void
ngx_http_pred_admission_take(ngx_http_pred_main_conf_t *pmcf,
    ngx_http_pred_call_t *call)
{
    ngx_http_pred_admission_sh_t  *sh;

    sh = pmcf->admission_sh;

    (void) ngx_atomic_fetch_add(&sh->in_flight, 1);
    (void) ngx_atomic_fetch_add(&sh->slot[ngx_process_slot], 1);

    call->admitted = 1;
}


static void
ngx_http_pred_admission_poll(ngx_event_t *ev)
{
    ngx_http_pred_call_t *call = ev->data;

    ngx_int_t                   rc;
    ngx_http_pred_main_conf_t  *pmcf;

    /* the request's own configuration: a reload may have come since */
    pmcf = ngx_http_get_module_main_conf(call->ctx->request,
                                         ngx_http_pred_module);

    rc = ngx_http_pred_admission_room(pmcf, call->priority);

    if (rc != NGX_OK
        && (ngx_msec_int_t) (call->queued_until - ngx_current_msec) > 0)
    {
        ngx_add_timer(ev, NGX_HTTP_PRED_QUEUE_POLL_MS);
        return;
    }

    ngx_http_pred_admission_unqueue(pmcf->admission_sh, call);

    /* a slot at the end of a deadline that counts the wait is no use */
    if (rc == NGX_OK && call->until
        && (ngx_msec_int_t) (call->until - ngx_current_msec) <= 0)
    {
        (void) ngx_http_pred_admission_shed(call, "shed: no time left "
                                            "after the wait for a slot");

    } else if (rc == NGX_OK) {
        ngx_http_pred_admission_take(pmcf, call);

    } else {
        (void) ngx_http_pred_admission_shed(call,
                                            "shed: no model call slot "
                                            "within the queue timeout");
    }

    (void) ngx_http_pred_call_admitted(call);
}


static void
ngx_http_pred_admission_unqueue(ngx_http_pred_admission_sh_t *sh,
    ngx_http_pred_call_t *call)
{
    if (call->queued) {
        call->queued = 0;
        (void) ngx_atomic_fetch_add(&sh->queued, -1);
        (void) ngx_atomic_fetch_add(&sh->queued_slot[ngx_process_slot], -1);
    }
}


/*
 * Gives back what admission gave the call: once, from its release; a
 * reranker's place in flight also at its deadline, since nothing waits for
 * it after that.
 */
void
ngx_http_pred_admission_release(ngx_http_pred_call_t *call)
{
    ngx_http_pred_breaker_t       *b;
    ngx_http_pred_main_conf_t     *pmcf;
    ngx_http_pred_admission_sh_t  *sh;

    /* the request's own configuration, valid until its pool is gone */
    pmcf = ngx_http_get_module_main_conf(call->ctx->request,
                                         ngx_http_pred_module);
    sh = pmcf->admission_sh;

    if (sh == NULL) {
        return;
    }

    ngx_http_pred_admission_unqueue(sh, call);

    if (call->admitted) {
        call->admitted = 0;
        (void) ngx_atomic_fetch_add(&sh->in_flight, -1);
        (void) ngx_atomic_fetch_add(&sh->slot[ngx_process_slot], -1);
    }

    b = ngx_http_pred_admission_breaker_of(pmcf, call);

    if (b == NULL || call->kind == NGX_HTTP_PRED_CALL_RERANK || call->judged)
    {
        return;
    }

    call->judged = 1;

    if (call->state == NGX_HTTP_PRED_CALL_FINISHED) {
        ngx_http_pred_admission_verdict(pmcf, b, call);
        return;
    }

    /* shed, queued out or terminated: no verdict; the next call probes */
    if (call->probe) {
        call->probe = 0;
        (void) ngx_atomic_cmp_set(&b->probing, ngx_process_slot + 1, 0);
    }
}


/*
 * A stage past its deadline: its answer will be dropped, so its place in
 * flight is given back now, and its breaker judges it now: a failure if
 * the model had the stage's whole timeout, else (it waited in the queue)
 * nothing.  The call's end judges nothing again.
 */
void
ngx_http_pred_admission_late(ngx_http_pred_call_t *call)
{
    ngx_http_pred_breaker_t    *b;
    ngx_http_pred_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(call->ctx->request,
                                         ngx_http_pred_module);

    b = ngx_http_pred_admission_breaker_of(pmcf, call);

    if (b && !call->judged
        && ngx_current_msec - call->started >= call->timeout)
    {
        call->judged = 1;
        call->fail = NGX_HTTP_PRED_FAIL_TIMEOUT;
        ngx_http_pred_admission_verdict(pmcf, b, call);
    }

    /* no verdict: the probe slot, if it held it, is given back */
    ngx_http_pred_admission_release(call);
}


/*
 * A finished call: its breaker counts failures in a row.  The log names a
 * stage's breaker by its URI; the model's has none.
 */
static void
ngx_http_pred_admission_verdict(ngx_http_pred_main_conf_t *pmcf,
    ngx_http_pred_breaker_t *b, ngx_http_pred_call_t *call)
{
    ngx_str_t         *uri;
    const char        *pre, *post;

    static ngx_str_t   none = ngx_null_string;

    /* the log's " of stage "URI"" */
    pre = call->breaker ? " of stage \"" : "";
    post = call->breaker ? "\"" : "";
    uri = call->breaker ? call->uri : &none;

    if (call->fail == 0) {
        b->failures = 0;

        if (call->probe) {
            b->open_until = 0;
            b->probing = 0;
            ngx_log_error(NGX_LOG_NOTICE, call->timer.log, 0,
                          "pred: circuit breaker%s%V%s closed: the probe for "
                          "%V succeeded", pre, uri, post,
                          ngx_http_pred_call_about(call));
        }

        return;
    }

    if (call->probe
        || ngx_atomic_fetch_add(&b->failures, 1) + 1
           == pmcf->breaker_failures)
    {
        b->open_until = ngx_current_msec + pmcf->breaker_cooldown;
        b->probing = 0;
        (void) ngx_atomic_fetch_add(&b->trips, 1);

        ngx_log_error(NGX_LOG_WARN, call->timer.log, 0,
                      "pred: circuit breaker%s%V%s open for %M ms after %ui "
                      "failed %s calls in a row%s", pre, uri, post,
                      pmcf->breaker_cooldown, pmcf->breaker_failures,
                      call->breaker ? "stage" : "model",
                      call->probe ? " (the probe failed)" : "");
    }
}


ngx_atomic_uint_t
ngx_http_pred_admission_in_flight(ngx_http_pred_main_conf_t *pmcf)
{
    return pmcf->admission_sh ? pmcf->admission_sh->in_flight : 0;
}


/*
 * 1 while the breaker is open and its cooldown runs: every model call
 * would be shed now (after the cooldown, one call may probe)
 */
ngx_uint_t
ngx_http_pred_breaker_open(ngx_http_request_t *r)
{
    ngx_http_pred_main_conf_t     *pmcf;
    ngx_http_pred_admission_sh_t  *sh;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_pred_module);
    sh = pmcf->admission_sh;

    return pmcf->breaker_failures && sh
           && (ngx_msec_int_t) (sh->breaker[0].open_until - ngx_current_msec)
              > 0;
}


/*
 * 1 while the breaker (0: the model's, else a stage URI's) is open;
 * *trips: how often it opened
 */
ngx_uint_t
ngx_http_pred_admission_breaker(ngx_http_pred_main_conf_t *pmcf,
    ngx_uint_t index, ngx_atomic_uint_t *trips)
{
    ngx_http_pred_breaker_t  *b;

    if (pmcf->admission_sh == NULL) {
        *trips = 0;
        return 0;
    }

    b = &pmcf->admission_sh->breaker[index];
    *trips = b->trips;

    return (ngx_msec_int_t) (b->open_until - ngx_current_msec) > 0;
}
