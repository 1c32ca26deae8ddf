/*
 * pred-snapshot pull and fleet-status: the HTTP side, with libcurl.
 */

#ifndef PRED_PULL_H
#define PRED_PULL_H

#include <stdint.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>


typedef struct {
    const char         *url;
    const char         *dir;
    char                base[4096];     /* the origin folder's URL */
    CURL               *curl;
    struct curl_slist  *headers;        /* --header */
    uint64_t            watch_ms;       /* 0: one check */
    uint64_t            timeout_ms;
    curl_off_t          rate;           /* --rate-limit, 0: none */

    json_t             *manifest;       /* the last one read */
    char                etag[256];      /* its ETag */
    char                new_etag[256];
    time_t              activate_at;    /* its, 0: none */
    int                 synced;         /* DIR matched it */
    int                 kept;           /* DIR has its previous version */

    time_t              last_check;
    time_t              last_success;
    time_t              last_error_at;
    time_t              next_check;
    char                last_error[1024];
    char                pending[32];    /* waiting to activate at */
    unsigned            failures;       /* checks in a row */
    uint64_t            files;          /* downloaded */
    uint64_t            bytes;
    uint64_t            resumed;        /* transfers that resumed */

    curl_off_t          stall_bytes;    /* bytes at stall_since */
    uint64_t            stall_since;    /* ms, monotonic */
    int                 stalled;        /* the callback cut the transfer */
} pred_pull_t;


#define PRED_PULL_BODY_MAX  (4 * 1024 * 1024)


/* resets the handle and sets what every request shares */
void pred_pull_setup(pred_pull_t *p, const char *url,
    struct curl_slist *headers);

/* adds one --header after checking it; 0, or -1 */
int pred_pull_header(struct curl_slist **headers, const char *h);

/* 1 when arg is an option of pull or fleet-status that takes a value */
int pred_pull_option(const char *arg);

/* why a transfer failed: curl's reason, or a stall */
const char *pred_pull_error(pred_pull_t *p, CURLcode rc);

/* CURLOPT_WRITEFUNCTION into a pred_buf_t, NUL-terminated; at most
   PRED_PULL_BODY_MAX bytes (past them b->len says how many came) */
size_t pred_pull_body(char *data, size_t size, size_t n, void *ctx);

#endif /* PRED_PULL_H */
