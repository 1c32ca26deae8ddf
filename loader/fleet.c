/*
 * "fleet-status URL...": what each node serves, from its admin API's
 * GET .../snapshot (and with --metrics PATH, its last swap), in one table;
 * the exit status is 1 when nodes disagree longer than --max-skew after
 * the newest swap, or a node does not answer.
 */

#define _GNU_SOURCE

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "pred_snap.h"
#include "loader.h"
#include "pull.h"
#include "buf.h"


typedef struct {
    const char  *url;
    char        *serves;        /* what is compared between nodes */
    char         live[160];
    char         cand[80];
    char         share[16];
    char         age[32];
    char         stale[8];
    char         swap[48];
    time_t       last_swap;     /* 0: not known */
    int          ok;
} pred_fleet_node_t;


static int pred_fleet_get(pred_pull_t *p, const char *url, pred_buf_t *b,
    char *err, size_t size);
static void pred_fleet_node(pred_pull_t *p, pred_fleet_node_t *n,
    const char *metrics);
static time_t pred_fleet_swap(const char *text, const char *name);


int
pred_cmd_fleet_status(int argc, char **argv)
{
    int                 i, nodes, agree, down, rc, w;
    char                when[32];
    time_t              newest, now;
    uint64_t            skew_ms;
    const char         *metrics;
    pred_pull_t         p;
    pred_fleet_node_t  *n, *first;

    memset(&p, 0, sizeof(p));
    p.timeout_ms = 5000;
    skew_ms = 30000;
    metrics = NULL;

    n = calloc(argc, sizeof(pred_fleet_node_t));
    if (n == NULL) {
        pred_error("fleet-status: out of memory");
        return PRED_EXIT_FAIL;
    }

    nodes = 0;
    rc = PRED_EXIT_USAGE;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--max-skew") == 0 && i + 1 < argc) {
            if (pred_parse_ms(argv[++i], &skew_ms) != 0) {
                pred_usage_error("fleet-status: --max-skew takes a time "
                                 "(\"30s\"): \"%s\"", argv[i]);
                goto done;
            }

        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            if (pred_parse_ms(argv[++i], &p.timeout_ms) != 0
                || p.timeout_ms < 100)
            {
                pred_usage_error("fleet-status: --timeout takes a time of "
                                 "100ms or more: \"%s\"", argv[i]);
                goto done;
            }

        } else if (strcmp(argv[i], "--metrics") == 0 && i + 1 < argc) {
            metrics = argv[++i];

            if (metrics[0] != '/' || strpbrk(metrics, " \r\n")) {
                pred_usage_error("fleet-status: --metrics takes the metrics "
                                 "location's path (\"/metrics\")");
                goto done;
            }

        } else if (strcmp(argv[i], "--header") == 0 && i + 1 < argc) {
            if (pred_pull_header(&p.headers, argv[++i]) != 0) {
                pred_usage_error("fleet-status: --header takes \"Name: "
                                 "value\" on one line");
                goto done;
            }

        } else if (i + 1 == argc && pred_pull_option(argv[i])) {
            pred_usage_error("fleet-status: %s needs a value", argv[i]);
            goto done;

        } else if (strncmp(argv[i], "http://", 7) == 0
                   || strncmp(argv[i], "https://", 8) == 0)
        {
            n[nodes++].url = argv[i];

        } else {
            pred_usage_error("fleet-status: use \"fleet-status [--max-skew "
                             "T] [--metrics PATH] [--timeout T] [--header "
                             "'Name: value'] URL...\", each URL a node's "
                             "admin GET .../snapshot");
            goto done;
        }
    }

    if (nodes == 0) {
        pred_usage_error("fleet-status: no node: give each node's admin "
                         "snapshot URL (http://NODE/pred-admin/snapshot)");
        goto done;
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0
        || (p.curl = curl_easy_init()) == NULL)
    {
        pred_error("fleet-status: libcurl failed to start");
        rc = PRED_EXIT_FAIL;
        goto done;
    }

    for (i = 0; i < nodes; i++) {
        pred_fleet_node(&p, &n[i], metrics);
    }

    /* the NODE column as wide as the longest URL */
    w = 40;

    for (i = 0; i < nodes; i++) {
        if ((int) strlen(n[i].url) > w) {
            w = (int) strlen(n[i].url);
        }
    }

    printf("%-*s %-24s %-12s %-7s %-9s %-5s %s\n", w, "NODE", "LIVE",
           "CANDIDATE", "SHARE", "AGE", "STALE", "LAST SWAP");

    agree = 1;
    down = 0;
    newest = 0;
    first = NULL;

    for (i = 0; i < nodes; i++) {
        printf("%-*s %-24s %-12s %-7s %-9s %-5s %s\n", w, n[i].url,
               n[i].live, n[i].cand, n[i].share, n[i].age, n[i].stale,
               n[i].swap);

        if (!n[i].ok) {
            down++;
            continue;
        }

        if (n[i].last_swap > newest) {
            newest = n[i].last_swap;
        }

        /* the first node that answered is what the others are held to */
        if (first == NULL) {
            first = &n[i];

        } else if (n[i].serves == NULL || first->serves == NULL
                   || strcmp(n[i].serves, first->serves) != 0)
        {
            agree = 0;
        }
    }

    now = time(NULL);
    rc = PRED_EXIT_OK;

    if (down) {
        printf("%d of %d node%s did not say what %s serve%s\n", down,
               nodes, nodes == 1 ? "" : "s", down == 1 ? "it" : "they",
               down == 1 ? "s" : "");
        rc = PRED_EXIT_FAIL;
    }

    if (down == nodes) {
        /* nothing to compare */

    } else if (agree) {
        printf("%d node%s answered%s\n", nodes - down,
               nodes - down == 1 ? "" : "s",
               nodes - down == 1 ? "" : ", all serving the same");

    } else if (newest
               /* either way: a node's clock may run ahead of ours */
               && (uint64_t) (newest > now ? newest - now : now - newest)
                  <= skew_ms / 1000)
    {
        pred_format_time(when, sizeof(when), newest);
        printf("nodes disagree, within --max-skew of the newest swap "
               "(%s)\n", when);

    } else {
        printf("nodes disagree%s\n", newest ? ", past --max-skew of the "
               "newest swap" : "");
        rc = PRED_EXIT_FAIL;
    }

done:

    if (p.curl) {
        curl_easy_cleanup(p.curl);
        curl_global_cleanup();
    }

    curl_slist_free_all(p.headers);

    for (i = 0; i < nodes; i++) {
        free(n[i].serves);
    }

    free(n);

    return rc;
}


/* one node's row */
static void
pred_fleet_node(pred_pull_t *p, pred_fleet_node_t *n, const char *metrics)
{
    int           k;
    char          err[CURL_ERROR_SIZE + 64], url[4200], when[32];
    size_t        i, len;
    json_t       *j, *c, *d, *v, *w;
    pred_buf_t    b;
    const char   *host;

    snprintf(n->live, sizeof(n->live), "-");
    snprintf(n->cand, sizeof(n->cand), "-");
    snprintf(n->share, sizeof(n->share), "-");
    snprintf(n->age, sizeof(n->age), "-");
    snprintf(n->stale, sizeof(n->stale), "-");
    snprintf(n->swap, sizeof(n->swap), "-");

    memset(&b, 0, sizeof(b));

    if (pred_fleet_get(p, n->url, &b, err, sizeof(err)) != 0) {
        /* the admin API's error answer names it: snapshot_unavailable */
        j = b.data ? json_loadb(b.data, b.len, 0, NULL) : NULL;
        v = json_object_get(j, "error");

        if (json_is_string(v)) {
            len = strlen(err);
            snprintf(err + len, sizeof(err) - len, ": %s",
                     json_string_value(v));
        }

        v = json_object_get(j, "reason");
        snprintf(n->swap, sizeof(n->swap), "%.40s", err);
        snprintf(n->live, sizeof(n->live), "%s",
                 j ? "(error answer)" : "(no answer)");
        pred_error("fleet-status: %s: %s%s%s", n->url, err,
                   json_is_string(v) ? ": " : "",
                   json_is_string(v) ? json_string_value(v) : "");
        json_decref(j);
        free(b.data);
        return;
    }

    j = json_loadb(b.data ? b.data : "", b.len, 0, NULL);
    free(b.data);

    v = json_object_get(j, "version");

    if (!json_is_string(v)) {
        snprintf(n->live, sizeof(n->live), "(not a snapshot answer)");
        pred_error("fleet-status: %s: not the admin API's GET .../snapshot",
                   n->url);
        json_decref(j);
        return;
    }

    n->ok = 1;

    len = snprintf(n->live, sizeof(n->live), "%s", json_string_value(v));

    d = json_object_get(j, "deltas");

    for (i = 0; json_is_array(d) && i < json_array_size(d)
                && len < sizeof(n->live); i++)
    {
        v = json_object_get(json_array_get(d, i), "version");
        len += snprintf(n->live + len, sizeof(n->live) - len, "+%s",
                        json_is_string(v) ? json_string_value(v) : "?");
    }

    c = json_object_get(j, "candidate");

    if (json_is_object(c)) {
        v = json_object_get(c, "version");
        snprintf(n->cand, sizeof(n->cand), "%s",
                 json_is_string(v) ? json_string_value(v) : "?");
        snprintf(n->share, sizeof(n->share), "%g%%",
                 json_number_value(json_object_get(c, "percent")));
    }

    v = json_object_get(j, "age");

    /* seconds, and few enough that now - age is a time */
    if (json_is_integer(v) && json_integer_value(v) >= 0
        && json_integer_value(v) < (json_int_t) 1 << 40)
    {
        pred_format_age(n->age, sizeof(n->age),
                        time(NULL) - (time_t) json_integer_value(v));
    }

    v = json_object_get(j, "stale");
    snprintf(n->stale, sizeof(n->stale), "%s",
             json_is_true(v) ? "yes" : json_is_false(v) ? "no" : "-");

    /*
     * Compared whole, not as the columns show it: with long version names
     * or many deltas, two stacks that differ past the column's width
     * would look the same.
     */
    w = json_array();
    json_array_append(w, json_object_get(j, "version"));

    for (i = 0; json_is_array(d) && i < json_array_size(d); i++) {
        v = json_object_get(json_array_get(d, i), "version");
        json_array_append(w, json_is_string(v) ? v : json_null());
    }

    v = json_is_object(c) ? json_object_get(c, "version") : NULL;
    json_array_append(w, json_is_string(v) ? v : json_null());
    json_array_append_new(w, json_string(n->share));

    n->serves = json_dumps(w, JSON_COMPACT);
    json_decref(w);

    if (metrics) {
        /* the same scheme, host and port, the metrics location's path */
        host = strstr(n->url, "://") + 3;
        k = (int) strcspn(host, "/");

        snprintf(url, sizeof(url), "%.*s%s", (int) (host - n->url) + k,
                 n->url, metrics);

        memset(&b, 0, sizeof(b));

        v = json_object_get(j, "name");

        if (pred_fleet_get(p, url, &b, err, sizeof(err)) != 0) {
            pred_error("fleet-status: %s: %s", url, err);

        } else if (json_is_string(v)) {
            n->last_swap = pred_fleet_swap(b.data ? b.data : "",
                                           json_string_value(v));
        }

        free(b.data);

        if (n->last_swap) {
            pred_format_time(when, sizeof(when), n->last_swap);
            snprintf(n->swap, sizeof(n->swap), "%s", when);
        }
    }

    json_decref(j);
}


/* pred_snapshot_last_swap_timestamp_seconds{snapshot="NAME"}; 0: none */
static time_t
pred_fleet_swap(const char *text, const char *name)
{
    char         want[256];
    const char  *s;

    snprintf(want, sizeof(want), "\npred_snapshot_last_swap_timestamp_"
             "seconds{snapshot=\"%s\"} ", name);

    s = strstr(text, want);

    return s ? (time_t) strtoll(s + strlen(want), NULL, 10) : 0;
}


static int
pred_fleet_get(pred_pull_t *p, const char *url, pred_buf_t *b, char *err,
    size_t size)
{
    long      code;
    CURLcode  rc;

    pred_pull_setup(p, url, p->headers);
    curl_easy_setopt(p->curl, CURLOPT_TIMEOUT_MS, (long) p->timeout_ms);
    curl_easy_setopt(p->curl, CURLOPT_WRITEFUNCTION, pred_pull_body);
    curl_easy_setopt(p->curl, CURLOPT_WRITEDATA, b);

    rc = curl_easy_perform(p->curl);

    if (rc != CURLE_OK) {
        snprintf(err, size, "%s", pred_pull_error(p, rc));
        return -1;
    }

    curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, &code);

    if (code != 200) {
        snprintf(err, size, "HTTP status %ld", code);
        return -1;
    }

    return 0;
}
