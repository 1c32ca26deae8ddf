/*
 * ngx_http_pred_module: serves precomputed predictions.
 *
 * Declarations shared by the module's files; each file owns one concern
 * (README, "Layout").  A request's path through them:
 *
 *   handler / batch     what the client asked for
 *   lookup              one pass through the tiers: a tagged result
 *   upstream            a miss: the model call, single-flight, its answer
 *   cascade             or a miss asked of stages in turn, in one budget
 *   call + admission    every outgoing call: its own context, admission,
 *                       bookkeeping that runs exactly once
 *   fallback            the chain, for one key or each key of a batch
 *   answer              preparing what is sent: rerank, then shape
 *   response            writing it
 */

#ifndef NGX_HTTP_PRED_MODULE_H
#define NGX_HTTP_PRED_MODULE_H

/*
 * Every file includes this before any system header: ngx_config.h defines
 * _GNU_SOURCE, without which ngx_event_udp.h of nginx 1.24 and later
 * (struct in6_pktinfo) does not compile.
 */
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_pred_compat.h"
#include "pred_canary.h"
#include "pred_delta.h"
#include "pred_cond.h"
#include "pred_key.h"
#include "pred_snap.h"


typedef struct ngx_http_pred_snapshot_s  ngx_http_pred_snapshot_t;
typedef struct ngx_http_pred_cache_sh_s  ngx_http_pred_cache_sh_t;
typedef struct ngx_http_pred_ctx_s       ngx_http_pred_ctx_t;
typedef struct ngx_http_pred_call_s      ngx_http_pred_call_t;
typedef struct ngx_http_pred_cascade_s   ngx_http_pred_cascade_t;


/*
 * Who answered.  One table of names (ngx_http_pred_source_names) serves
 * X-Pred-Source, $pred_source, the batch body's "sources" and the
 * metrics' source label; the last three are never sent as a header.
 */
typedef enum {
    NGX_HTTP_PRED_SRC_CACHE = 0,
    NGX_HTTP_PRED_SRC_SNAPSHOT,
    NGX_HTTP_PRED_SRC_UPSTREAM,
    NGX_HTTP_PRED_SRC_STALE,
    NGX_HTTP_PRED_SRC_DEFAULT,
    NGX_HTTP_PRED_SRC_ERROR,
    NGX_HTTP_PRED_SRC_SHED,         /* metrics: admission said no */
    NGX_HTTP_PRED_SRC_NONE,         /* no X-Pred-Source; batch: null */
    NGX_HTTP_PRED_SRC_BATCH,        /* metrics: a multi-key request */
    NGX_HTTP_PRED_SRC_N
} ngx_http_pred_source_e;

extern ngx_str_t  ngx_http_pred_source_names[NGX_HTTP_PRED_SRC_N];

/* the sources X-Pred-Source and $pred_source name */
#define ngx_http_pred_source_sent(src)  ((src) < NGX_HTTP_PRED_SRC_SHED)


#define NGX_HTTP_PRED_CACHE_VALUE      0
#define NGX_HTTP_PRED_CACHE_NEGATIVE   1
#define NGX_HTTP_PRED_CACHE_TOMBSTONE  2
#define NGX_HTTP_PRED_CACHE_EMPTY      3    /* only a single-flight marker */
#define NGX_HTTP_PRED_CACHE_OVERRIDE   4    /* an admin PUT: a value that a
                                               model's answer leaves alone */
#define NGX_HTTP_PRED_CACHE_PURGE      255  /* a state journal's record of a
                                               purge, never an entry */

/* why a model call failed, for the metrics */
#define NGX_HTTP_PRED_FAIL_TIMEOUT     1
#define NGX_HTTP_PRED_FAIL_5XX         2
#define NGX_HTTP_PRED_FAIL_CONNECT     3
#define NGX_HTTP_PRED_FAIL_INVALID     4
#define NGX_HTTP_PRED_FAIL_TOO_BIG     5
#define NGX_HTTP_PRED_FAIL_KINDS       5


typedef struct {
    ngx_http_pred_cache_sh_t   *sh;
    ngx_slab_pool_t            *shpool;
    ngx_shm_zone_t             *shm_zone;
    time_t                      ttl;
    time_t                      negative_ttl;
    size_t                      max_entry;
    size_t                      admin_max;  /* overrides and tombstones */

    /* state=PATH (see ngx_http_pred_state.c); path "" when none */
    ngx_str_t                   state;
    ngx_flag_t                  state_all;  /* model answers too */
    ngx_msec_t                  state_sync;

    /* per worker: the journal records not yet written, and the file */
    u_char                     *journal;
    size_t                      journal_len;
    size_t                      journal_size;
    ngx_fd_t                    journal_fd;
    ngx_fd_t                    lock_fd;    /* PATH.lock: who checkpoints */
    ngx_atomic_uint_t           journal_gen;
    ngx_uint_t                  journal_lost;
    off_t                       journal_dropped;    /* bytes not written */
    ngx_event_t                 state_ev;

    unsigned                    too_big_logged:1;   /* per worker */
    unsigned                    state_logged:1;
} ngx_http_pred_cache_zone_t;


/* the state files' bookkeeping, shared by the workers in the cache zone */
typedef struct {
    ngx_atomic_t                seq;        /* the order of writes */
    ngx_atomic_t                gen;        /* the journal written to */
    ngx_atomic_t                journal_bytes;
    ngx_atomic_t                checkpoint_bytes;
} ngx_http_pred_state_sh_t;


/* what the state file knows of an entry that is put back at start */
typedef struct {
    uint32_t                    stored;
    uint32_t                    mask_until;
} ngx_http_pred_cache_restore_t;


/* an entry as a checkpoint writes it: see ngx_http_pred_cache_dump() */
typedef void (*ngx_http_pred_cache_each_pt)(void *ctx, ngx_uint_t kind,
    ngx_str_t *key, ngx_str_t *value, ngx_msec_int_t left, uint32_t stored,
    uint32_t mask_until);


#define NGX_HTTP_PRED_FB_STALE      1
#define NGX_HTTP_PRED_FB_DEFAULT    2
#define NGX_HTTP_PRED_FB_STATUS     3


typedef struct {
    ngx_uint_t                  type;
    ngx_str_t                   value;       /* default=: compact JSON */
    ngx_uint_t                  status;      /* status= */
} ngx_http_pred_fallback_t;


/* what a cache lookup found, copied into the request pool */
typedef struct {
    ngx_uint_t                  kind;
    ngx_str_t                   value;
    time_t                      age;
    ngx_msec_int_t              expired_ms;         /* > 0: expired */
    unsigned                    masked:1;   /* the snapshot must not
                                               answer for the key */
    unsigned                    admin:1;    /* an override or tombstone,
                                               written age seconds ago */
} ngx_http_pred_cached_t;


/* what a snapshot lookup found, copied into the request pool */
typedef struct {
    ngx_str_t                   value;
    ngx_str_t                   version;
    time_t                      age;
    pred_snap_stale_t           fallback;
    unsigned                    stale:1;
    unsigned                    candidate:1;    /* the canary answered */
    unsigned                    cand_failed:1;  /* the canary failed the
                                                   lookup: live answered */
} ngx_http_pred_hit_t;


/* which of a snapshot's versions a key is looked up in */
#define NGX_HTTP_PRED_ROLE_LIVE        0
#define NGX_HTTP_PRED_ROLE_CANDIDATE   1

/* pred_shadow's results */
#define NGX_HTTP_PRED_SHADOW_SAME            0
#define NGX_HTTP_PRED_SHADOW_DIFFERENT       1
#define NGX_HTTP_PRED_SHADOW_ONLY_LIVE       2
#define NGX_HTTP_PRED_SHADOW_ONLY_CANDIDATE  3
#define NGX_HTTP_PRED_SHADOW_RESULTS         4


#define NGX_HTTP_PRED_PRIO_NORMAL      0
#define NGX_HTTP_PRED_PRIO_HIGH        1
#define NGX_HTTP_PRED_PRIO_LOW         2


/* snapshots in one configuration, each with its counters */
#define NGX_HTTP_PRED_MAX_SNAPSHOTS    32


/*
 * Circuit breakers: the model's (pred_upstream, batch and refresh calls;
 * reranker calls obey it) and one per cascade stage URI.
 */
#define NGX_HTTP_PRED_BREAKERS         64

/* stages of one pred_cascade, not counting the snapshot's stage 0 */
#define NGX_HTTP_PRED_MAX_STAGES       8


/*
 * A cascade stage's breaker: one per stage URI in each server block (the
 * same URI may name other locations in other servers).  key: the server
 * name and the URI, for the breaker's state to follow them across reloads.
 */
typedef struct {
    ngx_str_t                   uri;
    ngx_http_core_srv_conf_t   *server;
    uint32_t                    key;
} ngx_http_pred_breaker_conf_t;


/* one "pred_cascade URI [timeout=T] [exit_if=P:OP:V]" */
typedef struct {
    ngx_str_t                   uri;
    ngx_msec_t                  timeout;
    pred_cond_t                *exit_if;    /* NULL: never exits early */
    ngx_uint_t                  breaker;    /* its breaker's index */
} ngx_http_pred_stage_t;


/* the content handler a location has: one of them at most */
#define NGX_HTTP_PRED_HANDLER_LOOKUP   1
#define NGX_HTTP_PRED_HANDLER_ADMIN    2
#define NGX_HTTP_PRED_HANDLER_METRICS  3


typedef struct ngx_http_pred_admission_sh_s  ngx_http_pred_admission_sh_t;


typedef struct {
    ngx_array_t                 snapshots;  /* ngx_http_pred_snapshot_t * */
    ngx_array_t                 zones;      /* ngx_http_pred_cache_zone_t * */
    ngx_array_t                 names;      /* ngx_str_t: pred_name */
    ngx_array_t                 name_stages;    /* ngx_uint_t: a name's
                                                   cascade stages, 0x100:
                                                   with the snapshot's */

    /* the metrics' counter slot of each name and snapshot */
    ngx_uint_t                 *loc_slots;
    ngx_uint_t                 *snap_slots;

    /* "check now" for every worker: a generation in shared memory */
    ngx_shm_zone_t             *signals;
    ngx_atomic_t               *generation;
    ngx_atomic_uint_t           signals_seen;   /* per worker */
    ngx_event_t                 signals_ev;     /* per worker */

    /* admission control, and its zone */
    ngx_uint_t                  limit;
    ngx_uint_t                  limit_queue;
    ngx_msec_t                  limit_timeout;
    ngx_uint_t                  breaker_failures;
    ngx_msec_t                  breaker_cooldown;
    ngx_shm_zone_t             *admission;
    ngx_http_pred_admission_sh_t  *admission_sh;

    /* each stage breaker, from index 1 (0: the model's) */
    ngx_array_t                 breakers;   /* ngx_http_pred_breaker_conf_t */
} ngx_http_pred_main_conf_t;


typedef struct {
    ngx_uint_t                  handler;    /* NGX_HTTP_PRED_HANDLER_* */
    ngx_flag_t                  enable;
    ngx_str_t                   name;       /* pred_name, for metrics */
    ngx_uint_t                  index;      /* its request counters */
    ngx_http_complex_value_t   *key;
    ngx_str_t                   snapshot_name;
    ngx_http_pred_snapshot_t   *snapshot;
    time_t                      max_age;
    ngx_shm_zone_t             *cache_zone;
    time_t                      cache_ttl;
    time_t                      cache_swr;
    size_t                      admin_max_body;
    ngx_str_t                   upstream_uri;
    ngx_msec_t                  upstream_timeout;
    size_t                      upstream_max_size;
    ngx_str_t                   upstream_extract;
    ngx_array_t                *fallback;   /* ngx_http_pred_fallback_t */
    ngx_uint_t                  miss_async;
    ngx_uint_t                  priority;
    ngx_flag_t                  batch;
    ngx_uint_t                  batch_max;
    ngx_flag_t                  filter;
    ngx_str_t                   filter_list;
    ngx_str_t                   filter_id;
    ngx_str_t                   filter_score;
    ngx_array_t                *filter_fields;   /* ngx_str_t */
    ngx_str_t                   filter_args[5];  /* where exclude fields
                                                    limit min_score */
    ngx_str_t                   refine_uri;
    ngx_msec_t                  refine_timeout;
    ngx_uint_t                  refine_top;
    ngx_array_t                *cascade;    /* ngx_http_pred_stage_t */
    ngx_msec_t                  budget;     /* pred_budget */
    ngx_flag_t                  cascade_snapshot;
    pred_cond_t                *snapshot_exit_if;
    ngx_http_complex_value_t   *snapshot_override;
    ngx_uint_t                  shadow_rate;    /* millionths, 0: off */
    ngx_str_t                   shadow_field;
} ngx_http_pred_loc_conf_t;


/* the location asks a model on a miss: pred_upstream or pred_cascade */
#define ngx_http_pred_has_model(plcf)                                        \
    ((plcf)->upstream_uri.len || (plcf)->cascade)


/*
 * What a request answers, prepared before anything is written: a value
 * (status 200) or an error body, and what the headers say about it.
 */
typedef struct {
    ngx_uint_t                  status;
    ngx_http_pred_source_e      source;     /* NONE: no X-Pred-Source */
    ngx_str_t                   value;      /* 200: the JSON sent */
    ngx_str_t                   version;    /* empty: no X-Pred-Version */
    time_t                      age;
    const char                 *code;       /* an error body's */
    const char                 *reason;     /* NULL: none */
    ngx_uint_t                  stage;      /* staged: X-Pred-Stage */
    unsigned                    candidate:1;    /* the version is the
                                                   snapshot's canary */
    unsigned                    staged:1;
    unsigned                    stale:1;
    unsigned                    retry:1;    /* Retry-After: 1 */
    unsigned                    with_key:1; /* the error body names it */
} ngx_http_pred_answer_t;


/* what one pass through the tiers found for a key */
typedef enum {
    NGX_HTTP_PRED_LOOKUP_ANSWER = 0,    /* res->answer says it all */
    NGX_HTTP_PRED_LOOKUP_REFRESH,       /* an expired value within swr:
                                           answer it, refresh it */
    NGX_HTTP_PRED_LOOKUP_MISS,          /* the model's turn, if any */
    NGX_HTTP_PRED_LOOKUP_UNAVAILABLE,   /* no snapshot is loaded */
    NGX_HTTP_PRED_LOOKUP_FAILED         /* the snapshot read failed */
} ngx_http_pred_lookup_e;


/* what the "stale" fallback may serve */
typedef struct {
    ngx_str_t                   value;
    time_t                      age;
    unsigned                    set:1;
    unsigned                    masked:1;   /* never the snapshot's value */
} ngx_http_pred_stale_t;


typedef struct {
    ngx_http_pred_lookup_e      kind;
    ngx_http_pred_answer_t      answer;     /* ANSWER, REFRESH */
    ngx_http_pred_stale_t       stale;      /* MISS */
} ngx_http_pred_lookup_t;


/* one key of a multi-key lookup */
typedef struct {
    ngx_str_t                   key;
    ngx_str_t                   value;      /* JSON; empty: null */
    ngx_http_pred_source_e      source;     /* NONE: not answered yet */
    ngx_http_pred_stale_t       stale;
    unsigned                    missed:1;   /* no tier held it */
} ngx_http_pred_batch_item_t;


/*
 * The kinds of outgoing call.  Each has its own context (a call), its
 * priority in admission (README, "Admission control"), and its handlers.
 */
typedef enum {
    NGX_HTTP_PRED_CALL_MODEL = 0,   /* a miss, the client waits (or not:
                                       pred_miss_mode async) */
    NGX_HTTP_PRED_CALL_REFRESH,     /* stale-while-revalidate */
    NGX_HTTP_PRED_CALL_BATCH,       /* a batch's misses, in one call */
    NGX_HTTP_PRED_CALL_RERANK,      /* pred_refine */
    NGX_HTTP_PRED_CALL_STAGE        /* a stage of pred_cascade */
} ngx_http_pred_call_kind_e;


/* a 2xx answer within max_size: what the done handlers read */
#define ngx_http_pred_call_answered(call)                                    \
    (!(call)->fail && (call)->status >= 200 && (call)->status <= 299)


/* the request waited for the call: it answers now */
typedef ngx_int_t (*ngx_http_pred_call_resume_pt)(ngx_http_request_t *r,
    ngx_http_pred_call_t *call);
/* the call's answer arrived, in its subrequest, in time or not */
typedef void (*ngx_http_pred_call_done_pt)(ngx_http_request_t *sr,
    ngx_http_pred_call_t *call);


#define NGX_HTTP_PRED_CALL_NEW        0
#define NGX_HTTP_PRED_CALL_QUEUED     1     /* waits for admission */
#define NGX_HTTP_PRED_CALL_RUNNING    2
#define NGX_HTTP_PRED_CALL_FINISHED   3     /* the answer is in */
#define NGX_HTTP_PRED_CALL_SHED       4     /* admission said no */


struct ngx_http_pred_call_s {
    ngx_http_pred_call_kind_e   kind;
    ngx_uint_t                  state;      /* NGX_HTTP_PRED_CALL_* */
    ngx_http_pred_ctx_t        *ctx;        /* the request's */
    ngx_http_pred_call_t       *next;       /* in ctx->calls */
    ngx_str_t                  *uri;
    ngx_uint_t                  priority;
    ngx_msec_t                  timeout;    /* the client's deadline */
    ngx_msec_t                  until;      /* 0, or the deadline's end,
                                               the admission queue
                                               included */
    ngx_msec_t                  started;
    ngx_msec_t                  queued_until;
    ngx_msec_t                  lead_token;

    ngx_http_request_t         *sr;
    ngx_event_t                 timer;      /* queue poll, then deadline */

    ngx_http_pred_call_done_pt    done;
    ngx_http_pred_call_resume_pt  resume;

    /* the answer, as the capture filters kept it */
    ngx_str_t                   body;
    ngx_uint_t                  status;
    ngx_uint_t                  fail;       /* NGX_HTTP_PRED_FAIL_* */
    const char                 *reason;

    /* what the done handler made of it */
    ngx_uint_t                  result;
    ngx_str_t                   value;

    /* a batch call: the items it asks for, in order */
    ngx_uint_t                 *items;
    ngx_uint_t                  nitems;

    /* a rerank call: the candidates sent ($pred_candidates) */
    ngx_str_t                   candidates;

    /* a stage call: its stage (from 1); every call: its breaker */
    ngx_uint_t                  stage;
    ngx_uint_t                  breaker;

    unsigned                    held:1;     /* the request waits for it */
    unsigned                    late:1;     /* its deadline passed */
    unsigned                    admitted:1; /* counted in flight */
    unsigned                    queued:1;   /* counted in the queue */
    unsigned                    probe:1;    /* the breaker's probe */
    unsigned                    leader:1;   /* holds a single-flight
                                               marker: lead_token */
    unsigned                    cached:1;   /* left a fresh entry for
                                               the waiters */
    unsigned                    too_big:1;
    unsigned                    released:1;
    unsigned                    judged:1;   /* its breaker has counted it */
    unsigned                    abandoned:1;    /* its request ended
                                                   first */
};


/*
 * The module's context, the only type ever stored in its slot: one per
 * request that a pred handler (lookup, batch or admin) answers.  $pred_key
 * and the capture filters find it from a call's subrequest through
 * r->parent.
 */
struct ngx_http_pred_ctx_s {
    ngx_http_request_t         *request;
    ngx_http_pred_loc_conf_t   *plcf;
    ngx_str_t                   key;        /* admin: the key written */

    /* a multi-key lookup: ngx_http_pred_batch_item_t */
    ngx_array_t                *batch;
    ngx_uint_t                  warm_next;  /* warm: the next key to ask */

    ngx_http_pred_stale_t       stale;

    /* every outgoing call, newest first; the one the request waits for */
    ngx_http_pred_call_t       *calls;
    ngx_http_pred_call_t       *held;

    /* waiting for another request's model call */
    ngx_event_t                 wait;
    ngx_msec_t                  wait_until;

    /* 0, or the end of a miss led after the leader gave up: what was left
       of the wait */
    ngx_msec_t                  miss_until;

    /* the answer kept while the reranker is asked */
    ngx_http_pred_answer_t      pending;

    /* a miss answered by pred_cascade */
    ngx_http_pred_cascade_t    *cascade;

    /* what went out, for the log variables and the metrics */
    ngx_http_pred_source_e      source;
    ngx_str_t                   version;
    time_t                      age;
    ngx_msec_int_t              up_time;    /* -1: no model call ended */
    time_t                      ttl;        /* admin: the ttl written */
    ngx_uint_t                  stage;      /* X-Pred-Stage: stage_sent */

    unsigned                    age_sent:1;
    unsigned                    candidate:1;    /* the version sent is
                                                   the canary */
    unsigned                    stage_sent:1;
    unsigned                    stale_sent:1;
    unsigned                    refined:2;  /* 0: no header, 1: "0",
                                               2: "1" */
    unsigned                    shed:1;     /* admission said no */
    unsigned                    warm:1;     /* POST PREFIX/warm */
};


/*
 * Which file, and which content: a file rewritten in place keeps its inode
 * but not its size and modification time.
 */
typedef struct {
    dev_t                       dev;
    ino_t                       ino;
    off_t                       size;
    struct timespec             mtime;
} ngx_http_pred_file_id_t;


/* a delta over the live version (see pred_delta.h) */
typedef struct {
    pred_snap_t                *snap;
    ngx_http_pred_file_id_t     id;
    u_char                      file[PRED_DELTA_FILE_MAX];
} ngx_http_pred_layer_t;


struct ngx_http_pred_snapshot_s {
    ngx_str_t                   name;
    ngx_uint_t                  index;      /* in the metrics */
    ngx_str_t                   path;
    u_char                     *current;    /* "PATH/current" */
    ngx_msec_t                  check;
    ngx_flag_t                  preload;
    ngx_flag_t                  hash_index; /* index=on */

    /* per worker, after init_process */
    pred_snap_t                *live;
    ngx_http_pred_file_id_t     live_id;
    pred_snap_t                *pending;
    ngx_http_pred_file_id_t     pending_id;
    u_char                     *pending_map;
    size_t                      pending_size;
    ngx_msec_t                  pending_since;
    ngx_http_pred_file_id_t     refused_id;
    time_t                      stale_logged;
    ngx_event_t                 timer;
    ngx_event_t                 index_ev;   /* index=on: the next step */
    ngx_msec_t                  index_since;
    ngx_log_t                  *log;

    /* the canary: PATH/candidate, read each check (see pred_canary.h) */
    u_char                     *candidate_link;
    pred_snap_t                *cand;
    ngx_http_pred_file_id_t     cand_id;
    uint32_t                    cand_share;     /* millionths */
    /* the pointer's text last read (or "\1ERRNO" when readlink() failed,
       "\2" when it was too long), so that each problem is logged once */
    u_char                      cand_seen[PRED_CANARY_LINK_MAX + 2];
    ngx_http_pred_file_id_t     cand_refused_id;
    time_t                      cand_stale_logged;

    /* the deltas over the live version: PATH/layers, read each check */
    u_char                     *layers_link;
    ngx_http_pred_layer_t       layers[PRED_DELTA_MAX];  /* oldest first */
    ngx_uint_t                  nlayers;
    ngx_http_pred_file_id_t     layers_base_id;     /* whose they are */
    /* the pointer's text being served (or not used: another base's) */
    u_char                      layers_seen[PRED_DELTA_LINK_MAX + 2];
    /* the text last refused, as cand_seen: logged once */
    u_char                      layers_logged[PRED_DELTA_LINK_MAX + 2];
    /* the delta that made the last refusal, or faulted: not opened again
       until its file changes */
    ngx_http_pred_file_id_t     layers_refused_id;

    unsigned                    missing_logged:1;
    unsigned                    transient_logged:1;
    unsigned                    live_noindex:1;
    unsigned                    cand_noindex:1;
    unsigned                    cand_transient_logged:1;
    unsigned                    layers_transient_logged:1;
};


/* one "name=value" directive parameter: see ngx_http_pred_conf_param() */
typedef struct {
    const char                  *name;
    u_char                       kind;
    ngx_uint_t                   zero_ok;
    void                        *out;
} ngx_http_pred_conf_param_t;


extern ngx_module_t  ngx_http_pred_module;


/* ngx_http_pred_module.c: directives, configuration */
ngx_int_t ngx_http_pred_conf_name(ngx_conf_t *cf, ngx_str_t *name,
    const char *what);
ngx_int_t ngx_http_pred_conf_param(ngx_conf_t *cf, ngx_str_t *arg,
    const char *name, u_char kind, ngx_uint_t zero_ok, void *out);
char *ngx_http_pred_conf_params(ngx_conf_t *cf, ngx_uint_t from,
    ngx_http_pred_conf_param_t *params);
void ngx_http_pred_merge_error(ngx_conf_t *cf, const char *fmt, ...);
char *ngx_http_pred_set_handler(ngx_conf_t *cf,
    ngx_http_pred_loc_conf_t *plcf, ngx_uint_t which,
    ngx_http_handler_pt handler);
ngx_shm_zone_t *ngx_http_pred_shm_add(ngx_conf_t *cf, char *name,
    size_t size, ngx_shm_zone_init_pt init, void *data);
ngx_int_t ngx_http_pred_shm_struct(ngx_shm_zone_t *shm_zone, void *old,
    size_t size, void **sh);

/* ngx_http_pred_handler.c: single-key lookups */
ngx_int_t ngx_http_pred_handler(ngx_http_request_t *r);
ngx_http_pred_ctx_t *ngx_http_pred_ctx_create(ngx_http_request_t *r,
    ngx_str_t *key);
ngx_int_t ngx_http_pred_decode_key(ngx_http_request_t *r, ngx_str_t *raw,
    ngx_str_t *key, const char **reason);
ngx_int_t ngx_http_pred_hold(ngx_http_request_t *r);
void ngx_http_pred_unhold(ngx_http_request_t *r);

/* ngx_http_pred_variables.c */
ngx_int_t ngx_http_pred_add_variables(ngx_conf_t *cf);

/* ngx_http_pred_lookup.c */
ngx_int_t ngx_http_pred_lookup(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_str_t *key,
    ngx_http_pred_lookup_t *res);
ngx_int_t ngx_http_pred_lookup_current(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_str_t *key, ngx_str_t *value);

/* ngx_http_pred_snapshot.c */
char *ngx_http_pred_snapshot_path(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_pred_snapshot_merge(ngx_conf_t *cf,
    ngx_http_pred_loc_conf_t *prev, ngx_http_pred_loc_conf_t *conf);
ngx_int_t ngx_http_pred_snapshot_init_process(ngx_cycle_t *cycle);
void ngx_http_pred_snapshot_exit_process(ngx_cycle_t *cycle);
void ngx_http_pred_snapshot_check_now(ngx_http_pred_snapshot_t *snap);
ngx_int_t ngx_http_pred_signals_add(ngx_conf_t *cf);
ngx_int_t ngx_http_pred_snapshot_lookup(ngx_http_request_t *r,
    ngx_http_pred_snapshot_t *snap, time_t max_age, ngx_str_t *key,
    ngx_uint_t role,
    ngx_http_pred_hit_t *hit);
ngx_int_t ngx_http_pred_snapshot_peek(ngx_http_request_t *r,
    ngx_http_pred_snapshot_t *snap, ngx_str_t *key, ngx_str_t *value);
time_t ngx_http_pred_snapshot_as_of(ngx_http_request_t *r,
    ngx_http_pred_snapshot_t *snap, ngx_str_t *key);
ngx_int_t ngx_http_pred_snapshot_read(ngx_http_request_t *r,
    ngx_http_pred_snapshot_t *snap, pred_snap_t *s, ngx_str_t *key,
    ngx_str_t *value, ngx_uint_t copy);
pred_snap_t *ngx_http_pred_snapshot_open(ngx_http_pred_snapshot_t *snap,
    u_char *path, ngx_http_pred_file_id_t *id, char *err, size_t errlen,
    ngx_uint_t *transient);
void ngx_http_pred_file_id(ngx_http_pred_file_id_t *id, struct stat *st);
ngx_uint_t ngx_http_pred_file_same(ngx_http_pred_file_id_t *id,
    struct stat *st);
void ngx_http_pred_pointer_unreadable(ngx_http_pred_snapshot_t *snap,
    u_char *link, ssize_t n, u_char *seen, size_t size, const char *what,
    const char *then);
void ngx_http_pred_pointer_printable(u_char *text);

/* ngx_http_pred_layers.c: delta layers over the live version */
void ngx_http_pred_layers_check(ngx_http_pred_snapshot_t *snap);
void ngx_http_pred_layers_drop(ngx_http_pred_snapshot_t *snap,
    const char *why);
ngx_int_t ngx_http_pred_layers_lookup(ngx_http_request_t *r,
    ngx_http_pred_snapshot_t *snap, ngx_str_t *key, ngx_str_t *value,
    ngx_uint_t copy, pred_snap_t **from);
time_t ngx_http_pred_layers_as_of(ngx_http_request_t *r,
    ngx_http_pred_snapshot_t *snap, ngx_str_t *key);

/* ngx_http_pred_state.c: pred_cache_zone state=PATH */
ngx_int_t ngx_http_pred_state_param(ngx_conf_t *cf,
    ngx_http_pred_main_conf_t *pmcf, ngx_http_pred_cache_zone_t *z,
    ngx_str_t *arg);
void ngx_http_pred_state_load(ngx_http_pred_cache_zone_t *z, ngx_log_t *log);
void ngx_http_pred_state_adopt(ngx_http_pred_cache_zone_t *z,
    ngx_log_t *log);
void ngx_http_pred_state_journal(ngx_http_pred_cache_zone_t *z,
    uint64_t seq, ngx_uint_t kind, ngx_str_t *key, ngx_str_t *value,
    ngx_msec_t ttl, uint32_t stored, uint32_t mask_until);
ngx_int_t ngx_http_pred_state_init_process(ngx_cycle_t *cycle);
void ngx_http_pred_state_exit_process(ngx_cycle_t *cycle);

/* ngx_http_pred_cache.c */
char *ngx_http_pred_cache_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_pred_cache(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_pred_cache_merge(ngx_conf_t *cf,
    ngx_http_pred_loc_conf_t *prev, ngx_http_pred_loc_conf_t *conf);
ngx_int_t ngx_http_pred_cache_get(ngx_http_request_t *r,
    ngx_http_pred_cache_zone_t *z, ngx_str_t *key,
    ngx_http_pred_cached_t *out);
ngx_int_t ngx_http_pred_cache_write(ngx_http_pred_cache_zone_t *z,
    ngx_str_t *key, ngx_uint_t kind, ngx_str_t *value, ngx_msec_t ttl,
    ngx_http_pred_cache_restore_t *restore, ngx_log_t *log);
uint64_t ngx_http_pred_cache_dump(ngx_http_pred_cache_zone_t *z,
    ngx_uint_t all, ngx_http_pred_cache_each_pt each, void *ctx);
ngx_http_pred_state_sh_t *ngx_http_pred_cache_state(
    ngx_http_pred_cache_zone_t *z);
ngx_int_t ngx_http_pred_cache_put(ngx_http_pred_cache_zone_t *z,
    ngx_str_t *key, ngx_uint_t kind, ngx_str_t *value, time_t ttl,
    ngx_log_t *log);
time_t ngx_http_pred_cache_ttl(ngx_http_pred_loc_conf_t *plcf,
    ngx_http_pred_cache_zone_t *z);
ngx_int_t ngx_http_pred_cache_lead(ngx_http_pred_cache_zone_t *z,
    ngx_str_t *key, ngx_msec_t timeout, ngx_msec_t *token);
void ngx_http_pred_cache_unlead(ngx_http_pred_cache_zone_t *z,
    ngx_str_t *key, ngx_msec_t token, ngx_uint_t abandoned);
ngx_int_t ngx_http_pred_cache_poll(ngx_http_request_t *r,
    ngx_http_pred_cache_zone_t *z, ngx_str_t *key,
    ngx_http_pred_cached_t *out);
ngx_uint_t ngx_http_pred_cache_purge(ngx_http_pred_cache_zone_t *z,
    ngx_str_t *prefix);
ngx_http_pred_cache_zone_t *ngx_http_pred_cache_zone_get(
    ngx_http_pred_loc_conf_t *plcf);
ngx_atomic_uint_t ngx_http_pred_cache_stat(ngx_http_pred_cache_zone_t *z,
    ngx_uint_t what);

/* ngx_http_pred_upstream.c: the miss path */
char *ngx_http_pred_upstream(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_pred_upstream_merge(ngx_conf_t *cf,
    ngx_http_pred_loc_conf_t *prev, ngx_http_pred_loc_conf_t *conf);
ngx_int_t ngx_http_pred_upstream_miss(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx);
ngx_int_t ngx_http_pred_upstream_refresh(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx);
ngx_int_t ngx_http_pred_upstream_value(ngx_http_request_t *sr,
    ngx_http_pred_call_t *call);
ngx_int_t ngx_http_pred_upstream_extract(ngx_http_request_t *sr,
    ngx_http_pred_call_t *call, const char **start, const char **stop);
ngx_int_t ngx_http_pred_upstream_store(ngx_http_pred_loc_conf_t *plcf,
    ngx_str_t *key, ngx_str_t *value, ngx_log_t *log);
ngx_int_t ngx_http_pred_upstream_wait(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, ngx_msec_t timeout);
ngx_msec_t ngx_http_pred_miss_timeout(ngx_http_pred_ctx_t *ctx,
    ngx_msec_t timeout);
ngx_uint_t ngx_http_pred_warn_allowed(ngx_log_t *log);

/* ngx_http_pred_call.c: outgoing calls */
ngx_http_pred_call_t *ngx_http_pred_call_create(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, ngx_http_pred_call_kind_e kind);
ngx_int_t ngx_http_pred_call_start(ngx_http_request_t *r,
    ngx_http_pred_call_t *call);
ngx_int_t ngx_http_pred_call_admitted(ngx_http_pred_call_t *call);
void ngx_http_pred_calls_detach(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx);
ngx_http_pred_call_t *ngx_http_pred_call_of(ngx_http_request_t *r);
ngx_int_t ngx_http_pred_call_init_filters(ngx_conf_t *cf);
const char *ngx_http_pred_call_kind_name(ngx_http_pred_call_t *call);
ngx_str_t *ngx_http_pred_call_about(ngx_http_pred_call_t *call);

/* ngx_http_pred_admission.c */
char *ngx_http_pred_upstream_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_pred_upstream_breaker(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_pred_admission_add(ngx_conf_t *cf);
void ngx_http_pred_admission_init_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_pred_admit(ngx_http_request_t *r,
    ngx_http_pred_call_t *call);
void ngx_http_pred_admission_release(ngx_http_pred_call_t *call);
void ngx_http_pred_admission_late(ngx_http_pred_call_t *call);
ngx_atomic_uint_t ngx_http_pred_admission_in_flight(
    ngx_http_pred_main_conf_t *pmcf);
ngx_uint_t ngx_http_pred_admission_breaker(ngx_http_pred_main_conf_t *pmcf,
    ngx_uint_t index, ngx_atomic_uint_t *trips);
ngx_uint_t ngx_http_pred_breaker_open(ngx_http_request_t *r);
ngx_int_t ngx_http_pred_breaker_index(ngx_conf_t *cf, ngx_str_t *uri,
    ngx_uint_t *index);

/* the reason a call is shed while the breaker is open, in the log */
#define NGX_HTTP_PRED_SHED_BREAKER  "circuit open"

/* what a cascade stage came to: pred_cascade_stage_total's result */
#define NGX_HTTP_PRED_STAGE_ANSWERED  0
#define NGX_HTTP_PRED_STAGE_EXITED    1
#define NGX_HTTP_PRED_STAGE_TIMEOUT   2
#define NGX_HTTP_PRED_STAGE_FAILED    3
#define NGX_HTTP_PRED_STAGE_SKIPPED   4
#define NGX_HTTP_PRED_STAGE_RESULTS   5

/* ngx_http_pred_fallback.c */
char *ngx_http_pred_fallback(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
void ngx_http_pred_fallback_pick(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_str_t *key,
    ngx_http_pred_stale_t *stale, const char *why, ngx_uint_t warn,
    ngx_http_pred_answer_t *ans);
ngx_int_t ngx_http_pred_fallback_answer(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, const char *why);

/* ngx_http_pred_answer.c: preparing what is sent */
ngx_int_t ngx_http_pred_answer(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, ngx_http_pred_answer_t *ans);
void ngx_http_pred_answer_value(ngx_http_pred_answer_t *ans,
    ngx_http_pred_source_e source, ngx_str_t *value, time_t age);
void ngx_http_pred_answer_error(ngx_http_pred_answer_t *ans,
    ngx_uint_t status, ngx_http_pred_source_e source, const char *code,
    const char *reason);

/* ngx_http_pred_cascade.c */
char *ngx_http_pred_cascade(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_pred_cascade_snapshot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_pred_cascade_merge(ngx_conf_t *cf,
    ngx_http_pred_loc_conf_t *prev, ngx_http_pred_loc_conf_t *conf);
ngx_int_t ngx_http_pred_cascade_start(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, ngx_http_pred_answer_t *stage0);

/* ngx_http_pred_batch.c */
char *ngx_http_pred_batch(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_pred_batch_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_pred_warm(ngx_http_request_t *r);
ngx_int_t ngx_http_pred_batch_keys_json(ngx_http_request_t *r,
    ngx_http_pred_call_t *call, ngx_str_t *out);

/* ngx_http_pred_filter.c */
char *ngx_http_pred_filter_args_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_pred_filter_fields_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_pred_filter(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_str_t *value, const char **arg,
    const char **reason);
void ngx_http_pred_filter_merge(ngx_http_pred_loc_conf_t *prev,
    ngx_http_pred_loc_conf_t *conf);
ngx_int_t ngx_http_pred_filter_match(const char *obj, const char *end,
    ngx_str_t *field, ngx_str_t *value);

/* ngx_http_pred_refine.c */
char *ngx_http_pred_refine(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_pred_refine_start(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, ngx_http_pred_answer_t *ans);

/* ngx_http_pred_metrics.c */
ngx_int_t ngx_http_pred_metrics_init(ngx_conf_t *cf);
char *ngx_http_pred_metrics(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_pred_metrics_merge(ngx_conf_t *cf,
    ngx_http_pred_loc_conf_t *conf);
void ngx_http_pred_metrics_call_start(ngx_http_pred_call_t *call);
void ngx_http_pred_metrics_call_done(ngx_http_pred_call_t *call,
    ngx_msec_t ms);
void ngx_http_pred_metrics_deadline(ngx_http_pred_call_t *call);
void ngx_http_pred_metrics_snapshot(ngx_http_pred_snapshot_t *snap,
    ngx_uint_t swapped);
void ngx_http_pred_metrics_stage(ngx_http_pred_ctx_t *ctx, ngx_uint_t stage,
    ngx_uint_t result);
void ngx_http_pred_metrics_routed(ngx_http_pred_snapshot_t *snap,
    ngx_uint_t role);
void ngx_http_pred_metrics_shadow(ngx_http_pred_snapshot_t *snap,
    ngx_uint_t result, double *delta);

/* ngx_http_pred_canary.c */
char *ngx_http_pred_shadow(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_pred_canary_merge(ngx_conf_t *cf,
    ngx_http_pred_loc_conf_t *prev, ngx_http_pred_loc_conf_t *conf);
ngx_uint_t ngx_http_pred_canary_route(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_str_t *key);
void ngx_http_pred_canary_shadow(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_str_t *key, ngx_int_t rc,
    ngx_http_pred_hit_t *hit);

/* ngx_http_pred_admin.c */
#define NGX_HTTP_PRED_ADMIN_TTL_MAX   (365 * 24 * 60 * 60)
#define NGX_HTTP_PRED_ADMIN_MAX_BODY  (4 * 1024 * 1024)

char *ngx_http_pred_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_pred_admin_length(ngx_http_request_t *r, ngx_str_t *key);
ngx_int_t ngx_http_pred_admin_body(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *body);

/* ngx_http_pred_merge.c */
ngx_int_t ngx_http_pred_merge_value(ngx_http_request_t *r,
    ngx_http_pred_loc_conf_t *plcf, ngx_str_t *key, ngx_str_t *patch_text,
    ngx_str_t *out, const char **reason);
ngx_int_t ngx_http_pred_merge_check(ngx_http_request_t *r, ngx_str_t *patch,
    const char **reason);

/* ngx_http_pred_bulk.c */
ngx_int_t ngx_http_pred_bulk(ngx_http_request_t *r,
    ngx_http_pred_cache_zone_t *z);

/* ngx_http_pred_response.c: every response the module writes */
ngx_int_t ngx_http_pred_send_answer(ngx_http_request_t *r,
    ngx_http_pred_ctx_t *ctx, ngx_http_pred_answer_t *ans);
ngx_int_t ngx_http_pred_send(ngx_http_request_t *r, ngx_uint_t status,
    ngx_str_t *body);
ngx_int_t ngx_http_pred_send_raw(ngx_http_request_t *r, ngx_str_t *body);
ngx_int_t ngx_http_pred_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, ngx_str_t *key, const char *reason);
ngx_int_t ngx_http_pred_send_not_allowed(ngx_http_request_t *r,
    ngx_str_t *methods, const char *reason);
ngx_int_t ngx_http_pred_read_body(ngx_http_request_t *r, ngx_str_t *body);

/* ngx_http_pred_json.c */
ngx_int_t ngx_http_pred_json_error(ngx_pool_t *pool, ngx_str_t *out,
    const char *code, ngx_str_t *key, const char *reason);
size_t ngx_http_pred_json_escape_len(ngx_str_t *s);
u_char *ngx_http_pred_json_escape(u_char *dst, ngx_str_t *s);
ngx_int_t ngx_http_pred_json_copy(ngx_pool_t *pool, const char *json,
    size_t len, ngx_str_t *out);

#endif /* NGX_HTTP_PRED_MODULE_H */
