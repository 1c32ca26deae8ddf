/*
 * "pull URL DIR": makes DIR serve what the origin's manifest says.
 *
 * The origin is any static HTTP server over a snapshot folder.  A check
 * reads URL/manifest.json (conditional GET), downloads what DIR lacks into
 * DIR/.pull-FILE.part (resumed with Range after a cut), and moves a file
 * into place only after its size, its checksum and the full verify pass.
 * Then the pointers move with the steps a person would run: publish,
 * rollback, promote, deltas, canary, abort; at "activate_at" when the
 * manifest gives one, everything downloaded and verified beforehand.
 * Nothing that failed a check is ever live; whatever fails, DIR keeps
 * serving what it served.  DIR/pull-status.json says how it went.
 */

#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <jansson.h>

#include "pred_snap.h"
#include "pred_canary.h"
#include "pred_delta.h"
#include "pred_json.h"
#include "loader.h"
#include "pull.h"
#include "buf.h"


#define PRED_PULL_TRIES         4       /* without --watch */


typedef struct {
    FILE        *out;
    curl_off_t   have;          /* bytes in the file before this transfer */
    curl_off_t   got;
    curl_off_t   size;          /* what the manifest says */
} pred_pull_sink_t;


static int pred_pull_own(const char *dir);
static int pred_pull_check(pred_pull_t *p);
static int pred_pull_manifest(pred_pull_t *p, int *changed);
static json_t *pred_pull_entry(pred_pull_t *p, json_t *m, const char *name,
    const char *prefix);
static int pred_pull_prepare(pred_pull_t *p, json_t *m);
static int pred_pull_previous(pred_pull_t *p, json_t *m);
static void pred_pull_sweep(pred_pull_t *p, json_t *m);
static int pred_pull_names(json_t *m, const char *file, size_t len);
static int pred_pull_file(pred_pull_t *p, json_t *e);
static int pred_pull_have(pred_pull_t *p, json_t *e);
static int pred_pull_download(pred_pull_t *p, json_t *e, const char *part);
static int pred_pull_accept(pred_pull_t *p, json_t *e, const char *part);
static int pred_pull_apply(pred_pull_t *p, json_t *m);
static int pred_pull_deltas(pred_pull_t *p, json_t *live);
static int pred_pull_candidate(pred_pull_t *p, json_t *cand);
static int pred_pull_synced(pred_pull_t *p, json_t *m);
static int pred_pull_share(json_t *cand, uint32_t *share);
static size_t pred_pull_write(char *data, size_t size, size_t n, void *ctx);
static int pred_pull_progress(void *ctx, curl_off_t dltotal,
    curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);
static size_t pred_pull_etag(char *data, size_t size, size_t n, void *ctx);
static void pred_pull_fail(pred_pull_t *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void pred_pull_status(pred_pull_t *p);
static void pred_pull_sleep_until(const struct timespec *ts);
static void pred_pull_stop(int signo);


static volatile sig_atomic_t  pred_pull_stopping;


int
pred_cmd_pull(int argc, char **argv)
{
    int           i, rc, tries;
    char         *end;
    size_t        len;
    uint64_t      ms, delay, cap;
    pred_pull_t   p;
    struct stat   st;
    struct timespec  ts;

    memset(&p, 0, sizeof(p));
    p.timeout_ms = 30000;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--watch") == 0 && i + 1 < argc) {
            if (pred_parse_ms(argv[++i], &p.watch_ms) != 0
                || p.watch_ms < 100)
            {
                return pred_usage_error("pull: --watch takes an interval "
                                        "of 100ms or more: \"%s\"", argv[i]);
            }

        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            if (pred_parse_ms(argv[++i], &p.timeout_ms) != 0
                || p.timeout_ms < 100)
            {
                return pred_usage_error("pull: --timeout takes a time of "
                                        "100ms or more: \"%s\"", argv[i]);
            }

        } else if (strcmp(argv[i], "--rate-limit") == 0 && i + 1 < argc) {
            if (pred_parse_size(argv[++i], &len) != 0 || len == 0) {
                return pred_usage_error("pull: --rate-limit takes bytes "
                                        "per second (\"20M\"): \"%s\"",
                                        argv[i]);
            }

            p.rate = (curl_off_t) len;

        } else if (strcmp(argv[i], "--header") == 0 && i + 1 < argc) {
            if (pred_pull_header(&p.headers, argv[++i]) != 0) {
                return pred_usage_error("pull: --header takes \"Name: "
                                        "value\" on one line");
            }

        } else if (i + 1 == argc && pred_pull_option(argv[i])) {
            return pred_usage_error("pull: %s needs a value", argv[i]);

        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            return pred_usage_error("pull: unknown option \"%s\"", argv[i]);

        } else if (p.url == NULL) {
            p.url = argv[i];

        } else if (p.dir == NULL) {
            p.dir = argv[i];

        } else {
            p.url = NULL;
            break;
        }
    }

    if (p.url == NULL || p.dir == NULL) {
        return pred_usage_error("pull: use \"pull URL DIR [--watch "
                                "INTERVAL] [--header 'Name: value'] "
                                "[--timeout T] [--rate-limit BYTES/s]\"");
    }

    if (strncmp(p.url, "http://", 7) != 0
        && strncmp(p.url, "https://", 8) != 0)
    {
        return pred_usage_error("pull: \"%s\": an http:// or https:// URL "
                                "of the origin's snapshot folder", p.url);
    }

    /* the folder's URL; its manifest.json given instead is taken too */
    len = strlen(p.url);
    end = strstr(p.url, "/manifest.json");

    if (end && end[14] == '\0') {
        len = end - p.url;
    }

    while (len && p.url[len - 1] == '/') {
        len--;
    }

    if (len >= sizeof(p.base)) {
        return pred_usage_error("pull: URL too long");
    }

    memcpy(p.base, p.url, len);
    p.base[len] = '\0';

    if (stat(p.dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
        pred_error("%s: not a folder", p.dir);
        return PRED_EXIT_FAIL;
    }

    if (pred_pull_own(p.dir) != 0) {
        return PRED_EXIT_FAIL;
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        pred_error("pull: libcurl failed to start");
        return PRED_EXIT_FAIL;
    }

    p.curl = curl_easy_init();
    if (p.curl == NULL) {
        pred_error("pull: libcurl failed to start");
        return PRED_EXIT_FAIL;
    }

    signal(SIGTERM, pred_pull_stop);
    signal(SIGINT, pred_pull_stop);
    signal(SIGPIPE, SIG_IGN);

    clock_gettime(CLOCK_REALTIME, &ts);
    srandom((unsigned) (ts.tv_nsec ^ getpid()));

    tries = 0;
    rc = PRED_EXIT_FAIL;

    /*
     * DIR/pull-status.json is written once the check's outcome is counted
     * and the next one planned: it never says a check is coming when
     * none will (one running, the last try, a stop).
     */
    while (!pred_pull_stopping) {
        p.next_check = 0;

        rc = pred_pull_check(&p);

        if (rc == 0) {
            p.failures = 0;

            if (p.watch_ms == 0) {
                pred_pull_status(&p);
                break;
            }

            delay = p.watch_ms;

        } else {
            p.failures++;

            if (p.watch_ms == 0 && ++tries == PRED_PULL_TRIES) {
                pred_pull_status(&p);
                break;
            }

            /*
             * Backoff doubling from the interval (1 s without --watch),
             * at most 10 intervals and never past a minute, with jitter
             * so that a fleet an origin outage synchronized spreads out
             * again: from half the delay to the whole.
             */
            ms = p.watch_ms ? p.watch_ms : 1000;
            cap = ms * 10 < 60000 ? ms * 10 : (ms > 60000 ? ms : 60000);
            delay = ms << (p.failures < 16 ? p.failures - 1 : 15);
            delay = delay < cap ? delay : cap;
            delay = delay / 2 + (uint64_t) random() % (delay / 2 + 1);
        }

        clock_gettime(CLOCK_REALTIME, &ts);
        ms = (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + delay;
        p.next_check = (time_t) (ms / 1000);
        pred_pull_status(&p);

        ts.tv_sec = (time_t) (ms / 1000);
        ts.tv_nsec = (long) (ms % 1000) * 1000000;
        pred_pull_sleep_until(&ts);
    }

    if (pred_pull_stopping) {
        p.next_check = 0;
        pred_pull_status(&p);
    }

    curl_easy_cleanup(p.curl);
    curl_slist_free_all(p.headers);
    json_decref(p.manifest);
    curl_global_cleanup();

    /* with --watch a stop is how it ends, not a failure */
    if (pred_pull_stopping && p.watch_ms) {
        return PRED_EXIT_OK;
    }

    return rc == 0 ? PRED_EXIT_OK : PRED_EXIT_FAIL;
}


/*
 * One puller per folder (DIR/.pull.lock, flock, held until the process
 * exits): two would append to the same part files and undo each other's
 * downloads.  The holder writes its pid in it, for the next one to name.
 */
static int
pred_pull_own(const char *dir)
{
    int      fd;
    char     path[4096], pid[32];
    ssize_t  n;

    snprintf(path, sizeof(path), "%s/.pull.lock", dir);

    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd == -1) {
        pred_error("%s: %s (pull writes in the folder)", path,
                   strerror(errno));
        return -1;
    }

    if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
        if (errno == EWOULDBLOCK) {
            n = pread(fd, pid, sizeof(pid) - 1, 0);
            pid[n > 0 ? n : 0] = '\0';
            pid[strcspn(pid, "\n")] = '\0';

            pred_error("%s: another pull (pid %s) keeps this folder: one "
                       "puller per folder", dir, pid[0] ? pid : "?");

        } else {
            pred_error("%s: flock: %s", path, strerror(errno));
        }

        close(fd);
        return -1;
    }

    n = snprintf(pid, sizeof(pid), "%ld\n", (long) getpid());

    if (ftruncate(fd, 0) == -1 || pwrite(fd, pid, n, 0) != n) {
        pred_error("%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }

    /* kept open: the lock lasts as long as the process */
    return 0;
}


/* one check: the manifest, the files, the pointers; 0, or -1 */
static int
pred_pull_check(pred_pull_t *p)
{
    int              changed;
    char             when[32];
    json_t          *m;
    time_t           now, announced;
    uint64_t         ms;
    struct timespec  ts;

    p->last_check = time(NULL);
    p->pending[0] = '\0';

    if (pred_pull_manifest(p, &changed) != 0) {
        return -1;
    }

    announced = 0;

again:

    m = p->manifest;

    if (!changed && p->synced && pred_pull_synced(p, m)) {
        p->last_success = time(NULL);
        return pred_pull_previous(p, m);
    }

    p->synced = 0;

    if (pred_pull_prepare(p, m) != 0) {
        return -1;
    }

    /* a stop during the downloads: what DIR serves is left as it is */
    if (pred_pull_stopping) {
        return -1;
    }

    /* not time(): a coarse clock, it can read the second before the one
       the sleep below ended at */
    clock_gettime(CLOCK_REALTIME, &ts);
    now = ts.tv_sec;

    if (p->activate_at > now && !pred_pull_synced(p, m)) {
        pred_format_time(when, sizeof(when), p->activate_at);
        snprintf(p->pending, sizeof(p->pending), "%s", when);
        pred_pull_status(p);

        if (announced != p->activate_at) {
            printf("ready, activating at %s\n", when);
            fflush(stdout);
            announced = p->activate_at;
        }

        /*
         * Until then the origin may take the change back (a rollback, an
         * abort), and a flip of what it no longer serves would put it on
         * every edge at once: the manifest is read again at the time, and
         * with --watch at each interval before.
         */
        ts.tv_sec = p->activate_at;
        ts.tv_nsec = 0;

        if (p->watch_ms) {
            clock_gettime(CLOCK_REALTIME, &ts);
            ms = (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000
                 + p->watch_ms;

            if (ms / 1000 >= (uint64_t) p->activate_at) {
                ts.tv_sec = p->activate_at;
                ts.tv_nsec = 0;

            } else {
                ts.tv_sec = (time_t) (ms / 1000);
                ts.tv_nsec = (long) (ms % 1000) * 1000000;
            }
        }

        pred_pull_sleep_until(&ts);

        if (pred_pull_stopping) {
            return -1;
        }

        /*
         * A look that fails keeps the manifest read before: an origin
         * that does not answer at the time holds no edge back.
         */
        p->last_check = time(NULL);
        p->pending[0] = '\0';

        if (pred_pull_manifest(p, &changed) != 0) {
            changed = 0;
        }

        goto again;
    }

    if (pred_pull_apply(p, m) != 0) {
        return -1;
    }

    p->synced = 1;
    p->last_success = time(NULL);

    pred_pull_sweep(p, m);

    return pred_pull_previous(p, m);
}


/*
 * The part files of what the manifest no longer names (a download cut,
 * then the origin moved on): nothing would resume them, and gc leaves
 * files it does not know, so each would hold its bytes for good.
 */
static void
pred_pull_sweep(pred_pull_t *p, json_t *m)
{
    DIR            *d;
    char            path[4200];
    size_t          len;
    struct dirent  *e;

    d = opendir(p->dir);
    if (d == NULL) {
        return;
    }

    while ((e = readdir(d)) != NULL) {
        len = strlen(e->d_name);

        if (len <= sizeof(".pull-.part") - 1
            || strncmp(e->d_name, ".pull-", 6) != 0
            || strcmp(e->d_name + len - 5, ".part") != 0
            || pred_pull_names(m, e->d_name + 6, len - 11))
        {
            continue;
        }

        snprintf(path, sizeof(path), "%s/%s", p->dir, e->d_name);

        if (unlink(path) == 0) {
            printf("removed %s: the origin's manifest no longer names "
                   "it\n", e->d_name);
        }
    }

    closedir(d);
}


/* 1 when the manifest names the file: live, its deltas, previous, candidate */
static int
pred_pull_names(json_t *m, const char *file, size_t len)
{
    size_t       i, n;
    json_t      *e, *d;
    const char  *f;

    static const char  *members[] = { "live", "previous", "candidate" };

    d = json_object_get(json_object_get(m, "live"), "deltas");
    n = json_array_size(d);

    for (i = 0; i < n + 3; i++) {
        e = i < n ? json_array_get(d, i) : json_object_get(m, members[i - n]);
        f = json_string_value(json_object_get(e, "file"));

        if (f && strlen(f) == len && memcmp(f, file, len) == 0) {
            return 1;
        }
    }

    return 0;
}


/*
 * The manifest's previous version, after the flip: a rollback target
 * costs no time when it is needed.  Tried again at each check until it is
 * in DIR, also when nothing else is to be done.
 */
static int
pred_pull_previous(pred_pull_t *p, json_t *m)
{
    json_t  *e;

    /* pred_pull_entry() let through null, none, or a sound entry */
    e = json_object_get(m, "previous");

    if (p->kept || !json_is_object(e)) {
        return 0;
    }

    if (pred_pull_file(p, e) != 0) {
        return -1;
    }

    p->kept = 1;

    return 0;
}


/*
 * The manifest, unless the origin says it has not changed since the one
 * held (If-None-Match).  Checked before any of it is used: every file name
 * a valid "snap-V.mdb" or "delta-V.mdb", sizes and checksums there.
 */
static int
pred_pull_manifest(pred_pull_t *p, int *changed)
{
    char                url[4200], hdr[300];
    long                code;
    json_t             *m, *v;
    CURLcode            rc;
    time_t              at;
    json_error_t        err;
    pred_buf_t          body;
    struct curl_slist  *headers, *h;

    *changed = 0;

    snprintf(url, sizeof(url), "%s/manifest.json", p->base);

    headers = NULL;

    for (h = p->headers; h; h = h->next) {
        headers = curl_slist_append(headers, h->data);
    }

    if (p->manifest && p->etag[0]) {
        snprintf(hdr, sizeof(hdr), "If-None-Match: %s", p->etag);
        headers = curl_slist_append(headers, hdr);
    }

    memset(&body, 0, sizeof(body));
    p->new_etag[0] = '\0';

    pred_pull_setup(p, url, headers);
    curl_easy_setopt(p->curl, CURLOPT_TIMEOUT_MS, (long) p->timeout_ms);
    curl_easy_setopt(p->curl, CURLOPT_WRITEFUNCTION, pred_pull_body);
    curl_easy_setopt(p->curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(p->curl, CURLOPT_HEADERFUNCTION, pred_pull_etag);
    curl_easy_setopt(p->curl, CURLOPT_HEADERDATA, p);

    rc = curl_easy_perform(p->curl);
    curl_slist_free_all(headers);

    if (rc != CURLE_OK) {
        free(body.data);
        pred_pull_fail(p, "%s: %s", url,
                       body.len > PRED_PULL_BODY_MAX
                       ? "larger than 4M: not a manifest"
                       : pred_pull_error(p, rc));
        return -1;
    }

    curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, &code);

    if (code == 304 && p->manifest) {
        free(body.data);
        return 0;
    }

    if (code != 200) {
        free(body.data);
        pred_pull_fail(p, "%s: HTTP status %ld", url, code);
        return -1;
    }

    m = json_loadb(body.data ? body.data : "", body.len, 0, &err);
    free(body.data);

    if (m == NULL || !json_is_object(m)) {
        pred_pull_fail(p, "%s: not a manifest: %s", url,
                       m ? "not a JSON object" : err.text);
        json_decref(m);
        return -1;
    }

    v = json_object_get(m, "format");

    if (!json_is_string(v)
        || strcmp(json_string_value(v), "pred-manifest/1") != 0)
    {
        pred_pull_fail(p, "%s: not a manifest: \"format\" is not "
                       "\"pred-manifest/1\"", url);
        json_decref(m);
        return -1;
    }

    at = 0;
    v = json_object_get(m, "activate_at");

    if (v && !json_is_null(v)
        && (!json_is_string(v)
            || pred_parse_time(json_string_value(v), &at) != 0
            || json_string_value(v)[0] == '+'))
    {
        pred_pull_fail(p, "%s: \"activate_at\" is not a time "
                       "(\"2026-12-01T08:00:00Z\")", url);
        json_decref(m);
        return -1;
    }

    if (pred_pull_entry(p, m, "live", "snap-") == NULL
        || pred_pull_entry(p, m, "candidate", "snap-") == NULL
        || pred_pull_entry(p, m, "previous", "snap-") == NULL)
    {
        json_decref(m);
        return -1;
    }

    memcpy(p->etag, p->new_etag, sizeof(p->etag));

    /* the same again, from an origin without ETags: nothing to redo */
    if (p->manifest && json_equal(m, p->manifest)) {
        json_decref(m);
        return 0;
    }

    json_decref(p->manifest);
    p->manifest = m;
    p->activate_at = at;
    p->kept = 0;
    *changed = 1;

    return 0;
}


/*
 * The manifest's member name: null, or an entry whose members are sound
 * (and for "live", its deltas'); json_null() or the entry, NULL when not.
 */
static json_t *
pred_pull_entry(pred_pull_t *p, json_t *m, const char *name,
    const char *prefix)
{
    char         version[PRED_SNAP_VERSION_MAX + 1];
    size_t       i;
    json_t      *e, *v, *d;
    const char  *file;

    e = json_object_get(m, name);

    if (e == NULL || json_is_null(e)) {
        return json_null();
    }

    if (!json_is_object(e)) {
        goto invalid;
    }

    v = json_object_get(e, "file");
    file = json_string_value(v);

    /* the name goes into a path and a URL: nothing but a version in it */
    if (file == NULL
        || pred_delta_file_version(file, strlen(file), prefix, version) != 0
        || !json_is_string(json_object_get(e, "version"))
        || strcmp(json_string_value(json_object_get(e, "version")), version)
           != 0
        || !json_is_integer(json_object_get(e, "size"))
        || json_integer_value(json_object_get(e, "size")) <= 0)
    {
        goto invalid;
    }

    /* it goes into messages: a file's checksum, nothing else */
    v = json_object_get(e, "checksum");

    if (!json_is_string(v)
        || json_string_length(v) >= sizeof(((pred_snap_t *) 0)->checksum)
        || strspn(json_string_value(v), "0123456789abcdefghijklmnopqrstuvwxyz"
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ:_-") != json_string_length(v))
    {
        goto invalid;
    }

    if (strcmp(name, "candidate") == 0
        && !json_is_number(json_object_get(e, "share")))
    {
        goto invalid;
    }

    if (strcmp(prefix, "delta-") == 0
        && !json_is_string(json_object_get(e, "delta_of")))
    {
        goto invalid;
    }

    if (strcmp(name, "live") == 0) {
        d = json_object_get(e, "deltas");

        if (d == NULL) {
            return e;
        }

        if (!json_is_array(d) || json_array_size(d) > PRED_DELTA_MAX) {
            goto invalid;
        }

        for (i = 0; i < json_array_size(d); i++) {
            v = json_object();
            json_object_set(v, "delta", json_array_get(d, i));

            if (pred_pull_entry(p, v, "delta", "delta-") == NULL) {
                json_decref(v);
                return NULL;
            }

            json_decref(v);
        }
    }

    return e;

invalid:

    pred_pull_fail(p, "%s/manifest.json: \"%s\" is not a valid entry "
                   "(file \"snap-V.mdb\" or \"delta-V.mdb\" naming its "
                   "version, size, checksum%s)", p->base, name,
                   strcmp(name, "candidate") == 0 ? ", share" : "");
    return NULL;
}


/* every file the manifest's live version and candidate need, in DIR */
static int
pred_pull_prepare(pred_pull_t *p, json_t *m)
{
    size_t   i;
    json_t  *live, *cand, *d;

    live = json_object_get(m, "live");
    cand = json_object_get(m, "candidate");

    if (live && !json_is_null(live)) {
        if (pred_pull_file(p, live) != 0) {
            return -1;
        }

        d = json_object_get(live, "deltas");

        for (i = 0; d && i < json_array_size(d); i++) {
            if (pred_pull_file(p, json_array_get(d, i)) != 0) {
                return -1;
            }
        }
    }

    if (cand && !json_is_null(cand) && pred_pull_file(p, cand) != 0) {
        return -1;
    }

    return 0;
}


/* DIR/FILE as the entry says: there already, or downloaded and checked */
static int
pred_pull_file(pred_pull_t *p, json_t *e)
{
    int          rc;
    char         part[4200];
    struct stat  st;
    const char  *file;

    rc = pred_pull_have(p, e);
    if (rc != 1) {
        return rc;
    }

    file = json_string_value(json_object_get(e, "file"));
    snprintf(part, sizeof(part), "%s/.pull-%s.part", p->dir, file);

    if (stat(part, &st) == 0
        && st.st_size >= json_integer_value(json_object_get(e, "size")))
    {
        /* as big as it should be: only the checks are left */
        rc = 0;

    } else {
        rc = pred_pull_download(p, e, part);
    }

    return rc == 0 ? pred_pull_accept(p, e, part) : -1;
}


/*
 * 0 when DIR has the entry's file with its checksum, 1 when it has none,
 * -1 when it has another file under that name: never replaced, as it may
 * be serving, and a version's name stands for one content.
 */
static int
pred_pull_have(pred_pull_t *p, json_t *e)
{
    char         path[4200], err[PRED_SNAP_ERR_MAX];
    const char  *file, *sum;
    pred_snap_t  s;
    struct stat  st;

    file = json_string_value(json_object_get(e, "file"));
    sum = json_string_value(json_object_get(e, "checksum"));

    snprintf(path, sizeof(path), "%s/%s", p->dir, file);

    if (stat(path, &st) == -1) {
        return 1;
    }

    if (pred_snap_open(&s, path, 0, err, sizeof(err)) != 0) {
        pred_pull_fail(p, "%s: already here and unreadable (%s): remove it "
                       "to download the origin's", path, err);
        return -1;
    }

    if (strcmp(s.checksum, sum) != 0) {
        pred_pull_fail(p, "%s: already here with checksum %s, the origin's "
                       "is %s: a version name stands for one content; "
                       "refused", path, s.checksum, sum);
        pred_snap_close(&s);
        return -1;
    }

    pred_snap_close(&s);

    return 0;
}


/*
 * The file into part, from where an earlier cut left it (Range).  A
 * transfer cut short keeps its bytes for the next try; an origin that
 * answers a range with the whole file, or with an error, starts it over.
 */
static int
pred_pull_download(pred_pull_t *p, json_t *e, const char *part)
{
    int                 fd;
    char                url[4200];
    long                code;
    CURLcode            rc;
    struct stat         st;
    const char         *file;
    pred_pull_sink_t    sink;

    file = json_string_value(json_object_get(e, "file"));
    snprintf(url, sizeof(url), "%s/%s", p->base, file);

    fd = open(part, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd == -1 || fstat(fd, &st) == -1) {
        pred_pull_fail(p, "%s: %s", part, strerror(errno));
        if (fd != -1) {
            close(fd);
        }
        return -1;
    }

    sink.out = fdopen(fd, "a");
    if (sink.out == NULL) {
        pred_pull_fail(p, "%s: %s", part, strerror(errno));
        close(fd);
        return -1;
    }

    sink.have = st.st_size;
    sink.got = 0;
    sink.size = json_integer_value(json_object_get(e, "size"));

    if (sink.have) {
        printf("resuming %s at byte %" PRId64 "\n", file,
               (int64_t) sink.have);
        fflush(stdout);
    }

    pred_pull_setup(p, url, p->headers);
    curl_easy_setopt(p->curl, CURLOPT_TIMEOUT_MS, 0L);
    curl_easy_setopt(p->curl, CURLOPT_RESUME_FROM_LARGE, sink.have);

    /* an error page is not the file's first bytes: never in part */
    curl_easy_setopt(p->curl, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(p->curl, CURLOPT_WRITEFUNCTION, pred_pull_write);
    curl_easy_setopt(p->curl, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(p->curl, CURLOPT_HEADERFUNCTION, NULL);

    rc = curl_easy_perform(p->curl);
    curl_easy_setopt(p->curl, CURLOPT_RESUME_FROM_LARGE, (curl_off_t) 0);

    if (fflush(sink.out) != 0 || fsync(fd) == -1) {
        pred_pull_fail(p, "%s: %s", part, strerror(errno));
        fclose(sink.out);
        return -1;
    }

    fclose(sink.out);

    p->bytes += sink.got;

    if (sink.have && sink.got) {
        p->resumed++;
    }

    code = 0;
    curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, &code);

    if (rc == CURLE_OK && (code == 200 || code == 206)) {
        if (sink.have + sink.got == sink.size) {
            return 0;
        }

        /* whole, by the origin's account, and another size: its file */
        unlink(part);
        pred_pull_fail(p, "%s: %" PRId64 " bytes, the manifest says %"
                       PRId64 ": refused", url,
                       (int64_t) (sink.have + sink.got), (int64_t) sink.size);
        return -1;
    }

    if (rc == CURLE_RANGE_ERROR || code == 416 || rc == CURLE_WRITE_ERROR
        || (rc == CURLE_HTTP_RETURNED_ERROR && sink.have))
    {
        /* no resuming from here: from the start next time */
        unlink(part);
    }

    if (rc == CURLE_WRITE_ERROR && sink.have + sink.got > sink.size) {
        pred_pull_fail(p, "%s: more than the %" PRId64 " bytes the manifest "
                       "says: refused", url, (int64_t) sink.size);
        return -1;
    }

    if (rc == CURLE_HTTP_RETURNED_ERROR) {
        pred_pull_fail(p, "%s: HTTP status %ld", url, code);
        return -1;
    }

    if (rc != CURLE_OK) {
        pred_pull_fail(p, "%s: %s after %" PRId64 " of %" PRId64 " bytes",
                       url, pred_pull_error(p, rc),
                       (int64_t) (sink.have + sink.got),
                       (int64_t) sink.size);
        return -1;
    }

    pred_pull_fail(p, "%s: HTTP status %ld", url, code);

    return -1;
}


/*
 * The downloaded file checked as publish checks it (every entry and the
 * checksum), against what the manifest says, then moved into place.
 */
static int
pred_pull_accept(pred_pull_t *p, json_t *e, const char *part)
{
    char          path[4200];
    const char   *file, *sum, *version, *of;
    pred_snap_t   s;
    struct stat   st;

    file = json_string_value(json_object_get(e, "file"));
    sum = json_string_value(json_object_get(e, "checksum"));
    version = json_string_value(json_object_get(e, "version"));
    of = json_string_value(json_object_get(e, "delta_of"));

    if (stat(part, &st) == -1
        || st.st_size != json_integer_value(json_object_get(e, "size")))
    {
        unlink(part);
        pred_pull_fail(p, "%s: not the size the manifest says: refused",
                       file);
        return -1;
    }

    if (pred_open_verified(part, &s, 1) != 0) {
        unlink(part);
        pred_pull_fail(p, "%s from %s: refused, it fails verify: %s", file,
                       p->base, pred_last_error);
        return -1;
    }

    if (strcmp(s.checksum, sum) != 0 || strcmp(s.version, version) != 0
        || strcmp(s.delta_of, of ? of : "") != 0)
    {
        pred_pull_fail(p, "%s from %s: refused: the file is version %s%s%s "
                       "with checksum %s, the manifest says %s with %s",
                       file, p->base, s.version, s.delta_of[0] ? " over " : "",
                       s.delta_of, s.checksum, version, sum);
        pred_snap_close(&s);
        unlink(part);
        return -1;
    }

    pred_snap_close(&s);

    snprintf(path, sizeof(path), "%s/%s", p->dir, file);

    if (rename(part, path) == -1) {
        pred_pull_fail(p, "%s: rename: %s", path, strerror(errno));
        return -1;
    }

    if (pred_fsync_path(p->dir, 1) != 0) {
        pred_pull_fail(p, "%s: %s", p->dir, pred_last_error);
        return -1;
    }

    p->files++;

    printf("downloaded %s (%s)\n", file, sum);
    fflush(stdout);

    return 0;
}


/*
 * The pointers moved to match the manifest, under the folder's lock, each
 * step the one a person would run, so nginx sees what it sees then: the
 * live version (a promote when it is the candidate, a rollback when it is
 * the previous one), its deltas, then the candidate.  Every file passed
 * the full check when it arrived: the cheap checks keep the flip short.
 */
static int
pred_pull_apply(pred_pull_t *p, json_t *m)
{
    int          rc;
    char         cur[256], prev[256], cand[256];
    json_t      *live;
    uint32_t     share;
    const char  *file, *verb;

    if (pred_dir_lock(p->dir) != 0) {
        pred_pull_fail(p, "%s", pred_last_error);
        return -1;
    }

    rc = 0;
    live = json_object_get(m, "live");

    if (pred_link_read(p->dir, "current", cur, sizeof(cur)) != 0) {
        cur[0] = '\0';
    }

    if (live && !json_is_null(live)) {
        file = json_string_value(json_object_get(live, "file"));

        if (strcmp(cur, file) != 0) {
            if (pred_candidate_read(p->dir, cand, &share) == 0
                && strcmp(cand, file) == 0)
            {
                verb = "promoted";

            } else if (pred_link_read(p->dir, "previous", prev,
                                      sizeof(prev)) == 0
                       && strcmp(prev, file) == 0)
            {
                verb = "rolled back to";

            } else {
                verb = "published";
            }

            if (pred_switch(p->dir, file, verb, 0) != PRED_EXIT_OK) {
                pred_pull_fail(p, "%s", pred_last_error);
                rc = -1;
            }
        }

        if (rc == 0) {
            rc = pred_pull_deltas(p, live);
        }
    }

    if (rc == 0) {
        rc = pred_pull_candidate(p, json_object_get(m, "candidate"));
    }

    /* DIR can be an origin in turn, for the next tier */
    if (rc == 0 && pred_manifest_write(p->dir, p->activate_at) != 0) {
        pred_pull_fail(p, "%s", pred_last_error);
        rc = -1;
    }

    fflush(stdout);
    pred_dir_unlock();

    return rc;
}


/*
 * The live version's deltas the folder lacks, published in order.  A
 * folder stack that is not the start of the origin's cannot be reached
 * with publishes (no command takes a delta off): said, and left serving.
 */
static int
pred_pull_deltas(pred_pull_t *p, json_t *live)
{
    char                text[PRED_DELTA_LINK_MAX + 1];
    char                version[PRED_SNAP_VERSION_MAX + 1];
    size_t              i, n;
    json_t             *d;
    const char         *file;
    pred_delta_stack_t  stack;

    d = json_object_get(live, "deltas");
    n = d ? json_array_size(d) : 0;
    file = json_string_value(json_object_get(live, "file"));

    stack.n = 0;

    if (pred_link_read(p->dir, PRED_DELTA_LINK, text, sizeof(text)) == 0
        && pred_delta_parse_link(text, strlen(text), &stack) == 0
        && strcmp(stack.base, file) != 0)
    {
        stack.n = 0;
    }

    for (i = 0; i < stack.n; i++) {
        if (i == n
            || strcmp(stack.layer[i],
                      json_string_value(json_object_get(json_array_get(d, i),
                                                        "file"))) != 0)
        {
            pred_pull_fail(p, "%s: its deltas over %s are not the start of "
                           "the origin's: no delta is taken off a stack; "
                           "the origin compacts or publishes a new base",
                           p->dir, file);
            return -1;
        }
    }

    for (i = stack.n; i < n; i++) {
        file = json_string_value(json_object_get(json_array_get(d, i),
                                                 "file"));
        (void) pred_delta_file_version(file, strlen(file), "delta-",
                                       version);

        if (pred_delta_publish(p->dir, version) != PRED_EXIT_OK) {
            pred_pull_fail(p, "%s", pred_last_error);
            return -1;
        }
    }

    return 0;
}


/* the candidate and its share as the manifest says, or none */
static int
pred_pull_candidate(pred_pull_t *p, json_t *cand)
{
    int          n;
    char         file[256], pct[32], version[PRED_SNAP_VERSION_MAX + 1];
    char        *argv[5];
    uint32_t     share, want;
    const char  *f;

    if (pred_candidate_read(p->dir, file, &share) != 0) {
        file[0] = '\0';
    }

    if (cand == NULL || json_is_null(cand)) {
        if (file[0] == '\0') {
            return 0;
        }

        argv[0] = "abort";
        argv[1] = (char *) p->dir;
        argv[2] = NULL;
        n = 2;

    } else {
        if (pred_pull_share(cand, &want) != 0) {
            pred_pull_fail(p, "%s/manifest.json: the candidate's share is "
                           "not a percent from 0 to 100", p->base);
            return -1;
        }

        f = json_string_value(json_object_get(cand, "file"));

        if (strcmp(file, f) == 0 && share == want) {
            return 0;
        }

        pred_canary_format_percent(pct, sizeof(pct), want);
        (void) pred_delta_file_version(f, strlen(f), "snap-", version);

        argv[0] = "canary";
        argv[1] = (char *) p->dir;
        n = 2;

        if (strcmp(file, f) != 0) {
            argv[n++] = version;
        }

        argv[n++] = pct;
        argv[n] = NULL;
    }

    if ((n == 2 ? pred_cmd_abort(n, argv) : pred_cmd_canary(n, argv))
        != PRED_EXIT_OK)
    {
        pred_pull_fail(p, "%s", pred_last_error);
        return -1;
    }

    return 0;
}


/* 1 when DIR's pointers are what the manifest says */
static int
pred_pull_synced(pred_pull_t *p, json_t *m)
{
    char         cur[256], file[256], text[PRED_DELTA_LINK_MAX + 1];
    size_t       i, n;
    json_t      *live, *cand, *d;
    uint32_t     share, want;
    const char  *f;
    pred_delta_stack_t  stack;

    live = json_object_get(m, "live");
    cand = json_object_get(m, "candidate");

    if (live && !json_is_null(live)) {
        f = json_string_value(json_object_get(live, "file"));

        if (pred_link_read(p->dir, "current", cur, sizeof(cur)) != 0
            || strcmp(cur, f) != 0)
        {
            return 0;
        }

        d = json_object_get(live, "deltas");
        n = d ? json_array_size(d) : 0;
        stack.n = 0;

        if (pred_link_read(p->dir, PRED_DELTA_LINK, text, sizeof(text)) == 0
            && (pred_delta_parse_link(text, strlen(text), &stack) != 0
                || strcmp(stack.base, f) != 0))
        {
            stack.n = 0;
        }

        if (stack.n != n) {
            return 0;
        }

        for (i = 0; i < n; i++) {
            if (strcmp(stack.layer[i], json_string_value(json_object_get(
                           json_array_get(d, i), "file"))) != 0)
            {
                return 0;
            }
        }
    }

    if (pred_candidate_read(p->dir, file, &share) != 0) {
        file[0] = '\0';
    }

    if (cand == NULL || json_is_null(cand)) {
        return file[0] == '\0';
    }

    return strcmp(file, json_string_value(json_object_get(cand, "file")))
           == 0
           && pred_pull_share(cand, &want) == 0 && want == share;
}


/* the candidate's share in the manifest, in millionths; 0, or -1 */
static int
pred_pull_share(json_t *cand, uint32_t *share)
{
    char  pct[64];

    snprintf(pct, sizeof(pct), "%.4f",
             json_number_value(json_object_get(cand, "share")));

    return pred_canary_parse_percent(pct, strlen(pct), share);
}


/* one --header: "Name: value", one line, so it cannot add a second */
int
pred_pull_header(struct curl_slist **headers, const char *h)
{
    struct curl_slist  *l;

    /* a name with white space ("X-Token : v") is a 400 from any server */
    if (strpbrk(h, "\r\n") || strchr(h, ':') == NULL || h[0] == ':'
        || strcspn(h, " \t") < strcspn(h, ":"))
    {
        return -1;
    }

    l = curl_slist_append(*headers, h);
    if (l == NULL) {
        return -1;
    }

    *headers = l;

    return 0;
}


/* 1 for pull's and fleet-status' options that take a value */
int
pred_pull_option(const char *arg)
{
    static const char  *opts[] = {
        "--watch", "--timeout", "--rate-limit", "--header", "--max-skew",
        "--metrics", NULL
    };

    const char  **o;

    for (o = opts; *o; o++) {
        if (strcmp(arg, *o) == 0) {
            return 1;
        }
    }

    return 0;
}


/* the options every request shares */
void
pred_pull_setup(pred_pull_t *p, const char *url, struct curl_slist *headers)
{
    curl_easy_reset(p->curl);

    curl_easy_setopt(p->curl, CURLOPT_URL, url);
    curl_easy_setopt(p->curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(p->curl, CURLOPT_USERAGENT,
                     PRED_LOADER_NAME "/" PRED_LOADER_VERSION);
    curl_easy_setopt(p->curl, CURLOPT_NOSIGNAL, 1L);
    /*
     * Redirects are followed, but not with --header: curl would send the
     * header (a token, often) on to whatever host the redirect names.
     */
    curl_easy_setopt(p->curl, CURLOPT_FOLLOWLOCATION,
                     p->headers ? 0L : 1L);
    curl_easy_setopt(p->curl, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(p->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(p->curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(p->curl, CURLOPT_CONNECTTIMEOUT_MS, (long) p->timeout_ms);

    /*
     * A transfer that receives nothing for the timeout is cut (and resumed
     * later).  Not CURLOPT_LOW_SPEED_TIME: it averages the speed over
     * seconds before, so a link that goes dead is noticed late.
     */
    p->stall_bytes = -1;
    curl_easy_setopt(p->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(p->curl, CURLOPT_XFERINFOFUNCTION, pred_pull_progress);
    curl_easy_setopt(p->curl, CURLOPT_XFERINFODATA, p);

    if (p->rate) {
        curl_easy_setopt(p->curl, CURLOPT_MAX_RECV_SPEED_LARGE, p->rate);
    }
}


/* cuts a transfer that received nothing for the timeout, or on a stop */
static int
pred_pull_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
    uint64_t         now;
    pred_pull_t     *p;
    struct timespec  ts;

    (void) dltotal;
    (void) ultotal;
    (void) ulnow;

    p = ctx;

    /* called at least once a second: a stop need not wait for the end */
    if (pred_pull_stopping) {
        return 1;
    }

    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;

    if (dlnow != p->stall_bytes) {
        p->stall_bytes = dlnow;
        p->stall_since = now;
        return 0;
    }

    if (now - p->stall_since >= p->timeout_ms) {
        p->stalled = 1;
        return 1;
    }

    return 0;
}


/* a body into a pred_buf_t, NUL-terminated, at most PRED_PULL_BODY_MAX */
size_t
pred_pull_body(char *data, size_t size, size_t n, void *ctx)
{
    pred_buf_t  *b;

    b = ctx;
    n *= size;

    if (b->len + n > PRED_PULL_BODY_MAX) {
        b->len += n;
        return 0;
    }

    if (pred_buf_reserve(b, b->len + n + 1) != 0) {
        return 0;
    }

    memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';

    return n;
}


/* a file's bytes, never more than the manifest says */
static size_t
pred_pull_write(char *data, size_t size, size_t n, void *ctx)
{
    pred_pull_sink_t  *sink;

    sink = ctx;
    n *= size;

    if (sink->have + sink->got + (curl_off_t) n > sink->size) {
        sink->got += n;
        return 0;
    }

    if (fwrite(data, 1, n, sink->out) != n) {
        return 0;
    }

    sink->got += n;

    return n;
}


/* the manifest's ETag, for the next check's If-None-Match */
static size_t
pred_pull_etag(char *data, size_t size, size_t n, void *ctx)
{
    size_t        len;
    pred_pull_t  *p;

    p = ctx;
    len = size * n;

    if (len > 5 && strncasecmp(data, "ETag:", 5) == 0) {
        data += 5;
        len -= 5;

        while (len && (*data == ' ' || *data == '\t')) {
            data++;
            len--;
        }

        while (len && (data[len - 1] == '\r' || data[len - 1] == '\n'
                       || data[len - 1] == ' '))
        {
            len--;
        }

        /* an ETag goes back in a header: printable, one line */
        if (len < sizeof(p->new_etag) && len
            && strspn(data, "\"/-_.:+=abcdefghijklmnopqrstuvwxyz"
                      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") >= len)
        {
            memcpy(p->new_etag, data, len);
            p->new_etag[len] = '\0';
        }
    }

    return size * n;
}


/* curl's reason, or the stall the progress callback cut */
const char *
pred_pull_error(pred_pull_t *p, CURLcode rc)
{
    if (rc == CURLE_ABORTED_BY_CALLBACK && p->stalled) {
        p->stalled = 0;
        return "no data for the --timeout";
    }

    if (rc == CURLE_ABORTED_BY_CALLBACK && pred_pull_stopping) {
        return "stopped (SIGTERM or SIGINT)";
    }

    return curl_easy_strerror(rc);
}


static void
pred_pull_fail(pred_pull_t *p, const char *fmt, ...)
{
    char        *s, *end;
    va_list      args;
    const char  *next;

    va_start(args, fmt);
    vsnprintf(p->last_error, sizeof(p->last_error), fmt, args);
    va_end(args);

    /*
     * One line of UTF-8: a log line cannot be forged with the origin's
     * words (a parse error quotes its bytes), and json_string() in the
     * status refuses a sequence that the size limit cut in two.
     */
    end = p->last_error + strlen(p->last_error);

    for (s = p->last_error; s < end; s++) {
        if ((unsigned char) *s < 0x20 || *s == 0x7f) {
            *s = ' ';

        } else if ((unsigned char) *s >= 0x80) {
            next = pred_json_utf8(s, end);

            if (next == NULL) {
                *s = '?';

            } else {
                s = (char *) next - 1;
            }
        }
    }

    p->last_error_at = time(NULL);

    fprintf(stderr, PRED_LOADER_NAME ": pull: %s\n", p->last_error);
}


/*
 * DIR/pull-status.json: {"origin","last_check","last_success",
 * "last_error":{"at","message"}|null,"failures","next_check","pending",
 * "holds":{"live","deltas","candidate","share"},"transfers":{...}}
 */
static void
pred_pull_status(pred_pull_t *p)
{
    char                cur[256], file[256], when[32], pct[16];
    char                text[PRED_DELTA_LINK_MAX + 1];
    char                version[PRED_SNAP_VERSION_MAX + 1];
    size_t              i;
    json_t             *s, *h, *d, *e;
    uint32_t            share;
    pred_delta_stack_t  stack;

    s = json_object();

    json_object_set_new(s, "origin", json_string(p->base));

#define pred_pull_time(name, t)                                               \
    if (t) {                                                                  \
        pred_format_time(when, sizeof(when), t);                              \
        json_object_set_new(s, name, json_string(when));                      \
    } else {                                                                  \
        json_object_set_new(s, name, json_null());                            \
    }

    pred_pull_time("last_check", p->last_check);
    pred_pull_time("last_success", p->last_success);

    if (p->last_error_at) {
        e = json_object();
        pred_format_time(when, sizeof(when), p->last_error_at);
        json_object_set_new(e, "at", json_string(when));
        json_object_set_new(e, "message", json_string(p->last_error));
        json_object_set_new(s, "last_error", e);

    } else {
        json_object_set_new(s, "last_error", json_null());
    }

    json_object_set_new(s, "failures", json_integer(p->failures));
    pred_pull_time("next_check", p->next_check);

#undef pred_pull_time

    json_object_set_new(s, "activate_at", p->pending[0]
                        ? json_string(p->pending) : json_null());

    h = json_object();

    /* also held to the deltas' base below */
    if (pred_link_read(p->dir, "current", cur, sizeof(cur)) != 0) {
        cur[0] = '\0';
    }

    if (pred_delta_file_version(cur, strlen(cur), "snap-", version) == 0) {
        json_object_set_new(h, "live", json_string(version));

    } else {
        json_object_set_new(h, "live", json_null());
    }

    d = json_array();

    if (pred_link_read(p->dir, PRED_DELTA_LINK, text, sizeof(text)) == 0
        && pred_delta_parse_link(text, strlen(text), &stack) == 0
        && strcmp(stack.base, cur) == 0)
    {
        for (i = 0; i < stack.n; i++) {
            (void) pred_delta_file_version(stack.layer[i],
                                           strlen(stack.layer[i]), "delta-",
                                           version);
            json_array_append_new(d, json_string(version));
        }
    }

    json_object_set_new(h, "deltas", d);

    if (pred_candidate_read(p->dir, file, &share) == 0
        && pred_delta_file_version(file, strlen(file), "snap-", version) == 0)
    {
        pred_canary_format_percent(pct, sizeof(pct), share);
        json_object_set_new(h, "candidate", json_string(version));
        json_object_set_new(h, "share", json_real(strtod(pct, NULL)));

    } else {
        json_object_set_new(h, "candidate", json_null());
        json_object_set_new(h, "share", json_null());
    }

    json_object_set_new(s, "holds", h);

    e = json_object();
    json_object_set_new(e, "files", json_integer((json_int_t) p->files));
    json_object_set_new(e, "bytes", json_integer((json_int_t) p->bytes));
    json_object_set_new(e, "resumed", json_integer((json_int_t) p->resumed));
    json_object_set_new(s, "transfers", e);

    (void) pred_json_file_write(p->dir, "pull-status.json", s, 0);
    json_decref(s);
}


/* until the wall-clock time, or a stop signal */
static void
pred_pull_sleep_until(const struct timespec *ts)
{
    while (!pred_pull_stopping
           && clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, ts, NULL)
              == EINTR)
    {
        /* a signal other than a stop: sleep on */
    }
}


static void
pred_pull_stop(int signo)
{
    (void) signo;

    pred_pull_stopping = 1;
}
