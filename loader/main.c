/*
 * pred-snapshot: builds, checks and publishes prediction snapshots.
 */

#define _GNU_SOURCE             /* strptime, timegm */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "pred_snap.h"
#include "loader.h"


static int pred_cmd_verify(int argc, char **argv);
static int pred_cmd_info(int argc, char **argv);
static int pred_cmd_get(int argc, char **argv);
static const char *pred_resolve(const char *arg, char *buf, size_t size);
static void *pred_alloc(void *ctx, size_t size);
static void pred_usage(FILE *out);
static int pred_run_manifest(const void *cmd, int argc, char **argv);


static const char  *pred_info_keys[] = {
    PRED_SNAP_META_FORMAT,
    PRED_SNAP_META_VERSION,
    PRED_SNAP_META_CREATED_AT,
    PRED_SNAP_META_AS_OF,
    PRED_SNAP_META_ENTRIES,
    PRED_SNAP_META_CHECKSUM,
    PRED_SNAP_META_SOURCE,
    PRED_SNAP_META_BUILDER,
    PRED_SNAP_META_SLA,
    PRED_SNAP_META_OWNER,
    PRED_SNAP_META_INVALIDATED,
    PRED_SNAP_META_FALLBACK,
    PRED_SNAP_META_DELTA_OF,
    PRED_SNAP_META_BASE_SUM,
    PRED_SNAP_META_DELETES,
    PRED_SNAP_META_AS_OF_KEYS,
    PRED_SNAP_META_AS_OF_SUM,
    NULL
};


typedef struct {
    const char  *name;
    int        (*run)(int argc, char **argv);
    int          manifest;      /* changes what DIR serves: rewrites
                                   DIR/manifest.json, takes --activate-at */
} pred_command_t;


static const pred_command_t  pred_commands[] = {
    { "build",        pred_cmd_build, 0 },
    { "publish",      pred_cmd_publish, 1 },
    { "rollback",     pred_cmd_rollback, 1 },
    { "canary",       pred_cmd_canary, 1 },
    { "promote",      pred_cmd_promote, 1 },
    { "abort",        pred_cmd_abort, 1 },
    { "compact",      pred_cmd_compact, 1 },
    { "list",         pred_cmd_list, 0 },
    { "verify",       pred_cmd_verify, 0 },
    { "info",         pred_cmd_info, 0 },
    { "get",          pred_cmd_get, 0 },
    { "gc",           pred_cmd_gc, 0 },
    { "pull",         pred_cmd_pull, 0 },
    { "fleet-status", pred_cmd_fleet_status, 0 },
    { NULL,           NULL, 0 }
};


/* the last error said, for pull's status file */
char  pred_last_error[512];


int
main(int argc, char **argv)
{
    const pred_command_t  *c;

    if (argc < 2) {
        pred_usage(stderr);
        return PRED_EXIT_USAGE;
    }

    for (c = pred_commands; c->name; c++) {
        if (strcmp(argv[1], c->name) == 0) {
            return c->manifest ? pred_run_manifest(c, argc - 1, argv + 1)
                               : c->run(argc - 1, argv + 1);
        }
    }

    if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0) {
        pred_usage(stdout);
        return PRED_EXIT_OK;
    }

    if (strcmp(argv[1], "--version") == 0) {
        printf("%s %s\n", PRED_LOADER_NAME, PRED_LOADER_VERSION);
        return PRED_EXIT_OK;
    }

    return pred_usage_error("unknown command \"%s\"", argv[1]);
}


/*
 * A command that changes what DIR serves, then DIR/manifest.json rewritten
 * to match, even when the command changed nothing (so a folder from before
 * manifests gets one): pullers read it.  "--activate-at TIME|+DURATION"
 * anywhere is taken out and goes into the manifest.
 */
static int
pred_run_manifest(const void *cmd, int argc, char **argv)
{
    int                    i, n, rc;
    char                  *args[16];
    time_t                 at;
    const pred_command_t  *c;

    c = cmd;
    at = 0;
    n = 0;

    for (i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--activate-at") == 0) {
            if (i + 1 == argc || pred_parse_time(argv[i + 1], &at) != 0) {
                return pred_usage_error("%s: --activate-at takes a time "
                                        "(2026-12-01T08:00:00Z, Unix "
                                        "seconds) or +DURATION (+10s)",
                                        c->name);
            }

            i++;
            continue;
        }

        if (n == (int) (sizeof(args) / sizeof(args[0])) - 1) {
            return pred_usage_error("%s: too many arguments", c->name);
        }

        args[n++] = argv[i];
    }

    args[n] = NULL;

    rc = c->run(n, args);

    if (rc != PRED_EXIT_OK || n < 2) {
        return rc;
    }

    return pred_manifest_write(args[1], at) == 0 ? PRED_EXIT_OK
                                                 : PRED_EXIT_FAIL;
}


/*
 * Unix seconds, "YYYY-MM-DDTHH:MM:SSZ" (UTC), "now", or "+DURATION" from
 * now ("+10s"); 0, or -1
 */
int
pred_parse_time(const char *s, time_t *out)
{
    int        n, leap;
    uint64_t   u;
    struct tm  tm;

    static const char  form[] = "0000-00-00T00:00:00Z";
    static const int   days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
                                  30, 31 };

    if (strcmp(s, "now") == 0) {
        *out = time(NULL);
        return 0;
    }

    if (s[0] == '+') {
        if (pred_parse_duration(s + 1, &u) != 0 || u > 10 * 365 * 86400) {
            return -1;
        }

        *out = time(NULL) + (time_t) u;
        return 0;
    }

    if (pred_snap_parse_u64(s, &u) == 0) {
        if (u == 0 || u > (uint64_t) INT32_MAX * 2) {
            return -1;
        }

        *out = (time_t) u;
        return 0;
    }

    /* digits where the form has them: sscanf() takes signs and blanks */
    if (strlen(s) != sizeof(form) - 1) {
        return -1;
    }

    for (n = 0; form[n]; n++) {
        if (form[n] == '0' ? s[n] < '0' || s[n] > '9' : s[n] != form[n]) {
            return -1;
        }
    }

    memset(&tm, 0, sizeof(tm));
    n = 0;

    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &tm.tm_year, &tm.tm_mon,
               &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6
        || n == 0 || s[n] != '\0'
        || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1
        || tm.tm_hour > 23 || tm.tm_min > 59
        || tm.tm_sec > 60 || tm.tm_year < 1970)
    {
        return -1;
    }

    /* timegm() would make February 31 a day of March */
    leap = (tm.tm_year % 4 == 0 && tm.tm_year % 100 != 0)
           || tm.tm_year % 400 == 0;

    if (tm.tm_mday > days[tm.tm_mon - 1] + (tm.tm_mon == 2 && leap)) {
        return -1;
    }

    tm.tm_year -= 1900;
    tm.tm_mon -= 1;

    *out = timegm(&tm);

    return *out > 0 ? 0 : -1;
}


/* "250ms", "2s", "1m": milliseconds */
int
pred_parse_ms(const char *s, uint64_t *out)
{
    size_t  len;
    char    num[32];

    len = strlen(s);

    if (len > 2 && len < sizeof(num) && strcmp(s + len - 2, "ms") == 0) {
        memcpy(num, s, len - 2);
        num[len - 2] = '\0';

        if (pred_snap_parse_u64(num, out) != 0) {
            return -1;
        }

        return 0;
    }

    if (pred_parse_duration(s, out) != 0 || *out > UINT64_MAX / 1000) {
        return -1;
    }

    *out *= 1000;

    return 0;
}


static int
pred_cmd_verify(int argc, char **argv)
{
    char         buf[4096];
    const char  *path;
    pred_snap_t  s;

    if (argc != 2) {
        return pred_usage_error("verify: use \"verify FILE\"");
    }

    path = pred_resolve(argv[1], buf, sizeof(buf));

    if (pred_open_verified(path, &s, 1) != 0) {
        return PRED_EXIT_FAIL;
    }

    if (s.delta_of[0]) {
        printf("%s: ok: delta %s of version %s, %" PRIu64 " upserts, %"
               PRIu64 " deletions, %s\n", argv[1], s.version, s.delta_of,
               s.entries - s.deletes, s.deletes, s.checksum);

    } else {
        printf("%s: ok: version %s, %" PRIu64 " entries, %s\n", argv[1],
               s.version, s.entries, s.checksum);
    }

    pred_snap_close(&s);

    return PRED_EXIT_OK;
}


static int
pred_cmd_info(int argc, char **argv)
{
    char          buf[4096], val[4096];
    size_t        i;
    const char   *path;
    pred_snap_t   s;

    if (argc != 2) {
        return pred_usage_error("info: use \"info FILE\"");
    }

    path = pred_resolve(argv[1], buf, sizeof(buf));

    if (pred_open_verified(path, &s, 0) != 0) {
        return PRED_EXIT_FAIL;
    }

    printf("file: %s\nsize: %zu\n", path, s.file_size);

    for (i = 0; pred_info_keys[i]; i++) {
        if (pred_snap_meta(&s, pred_info_keys[i], val, sizeof(val)) == 1) {
            printf("%s: %s\n", pred_info_keys[i], val);
        }
    }

    pred_snap_close(&s);

    /* a folder stands for its live version: its deltas, its candidate */
    if (path == buf) {
        pred_delta_info(argv[1]);
        (void) pred_candidate_info(argv[1]);
    }

    return PRED_EXIT_OK;
}


static int
pred_cmd_get(int argc, char **argv)
{
    int           rc;
    char          buf[4096], err[PRED_SNAP_ERR_MAX];
    size_t        len;
    void         *val;
    const char   *path;
    pred_snap_t   s;

    if (argc != 3) {
        return pred_usage_error("get: use \"get FILE KEY\"");
    }

    path = pred_resolve(argv[1], buf, sizeof(buf));

    /* a folder answers as nginx would: its live deltas first */
    if (path == buf) {
        rc = pred_delta_get(argv[1], argv[2]);

        if (rc != -1) {
            return rc;
        }
    }

    if (pred_open_verified(path, &s, 0) != 0) {
        return PRED_EXIT_FAIL;
    }

    rc = pred_snap_get(&s, argv[2], strlen(argv[2]), pred_alloc, NULL, &val,
                       &len, err, sizeof(err));

    if (rc == 1 && len == 0) {
        pred_error("%s: key \"%s\" is deleted by this delta", path, argv[2]);
        free(val);
        rc = 0;

    } else if (rc == 1) {
        fwrite(val, 1, len, stdout);
        fputc('\n', stdout);
        free(val);

    } else if (rc == 0) {
        pred_error("%s: key \"%s\" not found", path, argv[2]);

    } else {
        pred_error("%s: %s", path, err);
    }

    pred_snap_close(&s);

    return rc == 1 ? PRED_EXIT_OK : PRED_EXIT_FAIL;
}


/* opens a snapshot; full also checks every entry and the checksum */
int
pred_open_verified(const char *path, pred_snap_t *s, int full)
{
    char  err[PRED_SNAP_ERR_MAX];

    if (pred_snap_open(s, path, 0, err, sizeof(err)) != 0) {
        pred_error("%s: invalid snapshot: %s", path, err);
        return -1;
    }

    if (full && pred_snap_verify(s, err, sizeof(err)) != 0) {
        pred_error("%s: invalid snapshot: %s", path, err);
        pred_snap_close(s);
        return -1;
    }

    return 0;
}


/*
 * Syncs a file, or a folder (dir) after a rename or link in it, so that the
 * new name survives a crash.  Every fsync of the loader goes through here:
 * a failure is reported with the path and the reason, and the caller
 * publishes nothing after it.
 */
int
pred_fsync_path(const char *path, int dir)
{
    int  fd, rc;

    fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd == -1) {
        pred_error("%s: %s", path, strerror(errno));
        return -1;
    }

    rc = fsync(fd);
    close(fd);

    if (rc == -1) {
        pred_error("%s: fsync: %s", path, strerror(errno));
        return -1;
    }

    return 0;
}


int
pred_snap_file(char *buf, size_t size, const char *dir, const char *version)
{
    return snprintf(buf, size, "%s/snap-%s.mdb", dir, version)
           >= (int) size ? -1 : 0;
}


/*
 * When DIR has no base version V: says so, and what V may have been meant
 * as (a delta's version, a file name); 0 when the file is there.
 */
int
pred_no_base(const char *dir, const char *version, const char *what)
{
    char         path[4096], err[PRED_SNAP_ERR_MAX];
    size_t       len;
    pred_snap_t  s;

    if (pred_snap_file(path, sizeof(path), dir, version) != 0
        || access(path, F_OK) == 0 || errno != ENOENT)
    {
        return 0;
    }

    len = strlen(version);

    if (pred_delta_file(path, sizeof(path), dir, version) == 0
        && pred_snap_open(&s, path, 0, err, sizeof(err)) == 0)
    {
        pred_error("%s: %s is a delta of %s: %s takes a base version", dir,
                   version, s.delta_of, what);
        pred_snap_close(&s);

    } else if (len > 4 && strcmp(version + len - 4, ".mdb") == 0) {
        pred_error("%s: no version %s: give the version, not the file name "
                   "(\"pred-snapshot list %s\" shows them)", dir, version,
                   dir);

    } else {
        pred_error("%s: no version %s (no snap-%s.mdb there; \"pred-snapshot "
                   "list %s\" shows the versions)", dir, version, version,
                   dir);
    }

    return -1;
}


int
pred_delta_file(char *buf, size_t size, const char *dir, const char *version)
{
    return snprintf(buf, size, "%s/delta-%s.mdb", dir, version)
           >= (int) size ? -1 : 0;
}


void
pred_error(const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(pred_last_error, sizeof(pred_last_error), fmt, args);
    va_end(args);

    fprintf(stderr, PRED_LOADER_NAME ": %s\n", pred_last_error);
}


int
pred_usage_error(const char *fmt, ...)
{
    va_list  args;

    fprintf(stderr, PRED_LOADER_NAME ": ");

    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);

    fprintf(stderr, "\n(\"" PRED_LOADER_NAME " help\" lists the commands)\n");

    return PRED_EXIT_USAGE;
}


typedef struct {
    char      suffix;
    uint64_t  scale;
} pred_unit_t;


static int
pred_parse_scaled(const char *s, const pred_unit_t *units, uint64_t *out)
{
    char      *end;
    uint64_t   u;

    if (*s < '0' || *s > '9') {
        return -1;
    }

    errno = 0;
    u = strtoull(s, &end, 10);

    if (errno) {
        return -1;
    }

    if (*end == '\0') {
        *out = u;
        return 0;
    }

    for ( ; units->suffix; units++) {
        if (*end == units->suffix && end[1] == '\0') {
            *out = u * units->scale;
            return 0;
        }
    }

    return -1;
}


/* "90", "90s", "30m", "6h", "1d" */
int
pred_parse_duration(const char *s, uint64_t *out)
{
    static const pred_unit_t  units[] = {
        { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 0, 0 }
    };

    return pred_parse_scaled(s, units, out);
}


/* "1048576", "512K", "512M", "2G" */
int
pred_parse_size(const char *s, size_t *out)
{
    uint64_t                  u;
    static const pred_unit_t  units[] = {
        { 'k', 1 << 10 }, { 'K', 1 << 10 }, { 'm', 1 << 20 },
        { 'M', 1 << 20 }, { 'g', 1 << 30 }, { 'G', 1 << 30 }, { 0, 0 }
    };

    if (pred_parse_scaled(s, units, &u) != 0) {
        return -1;
    }

    *out = u;

    return 0;
}


static void *
pred_alloc(void *ctx, size_t size)
{
    (void) ctx;

    return malloc(size);
}


/* a snapshot directory stands for its live version */
static const char *
pred_resolve(const char *arg, char *buf, size_t size)
{
    struct stat  st;

    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(buf, size, "%s/current", arg);
        return buf;
    }

    return arg;
}


static void
pred_usage(FILE *out)
{
    fprintf(out,
"usage: " PRED_LOADER_NAME " COMMAND ...\n"
"\n"
"  build DIR --input FILE|DIR|GLOB|- ... [options]\n"
"        read JSON Lines, write DIR/snap-VERSION.mdb (not live until publish)\n"
"        --version V             default: the UTC time, 20261122T030800Z\n"
"        --key-field F           default: key\n"
"        --value-field F         default: value\n"
"        --no-success-marker     read a Spark/Ray folder without _SUCCESS\n"
"        --dedupe                duplicate keys: keep the last, not an error\n"
"        --min-entries N         refuse fewer entries\n"
"        --max-shrink PCT        refuse shrinking the live count by more\n"
"        --require-field F       every value is an object with field F\n"
"        --range F:MIN:MAX       every value's field F is a number in range\n"
"        --freshness-sla DUR     e.g. 6h: older than this is stale\n"
"        --as-of TIME            what the data is as of (Unix seconds,\n"
"                                2026-12-01T03:00:00Z, now): admin writes\n"
"                                before it give way; default: created_at\n"
"        --owner S, --invalidated-by S\n"
"        --fallback-if-stale serve|upstream|fail   default: serve\n"
"        --memory SIZE           sort memory before spilling, default 512M\n"
"        --quiet                 no progress line\n"
"        --delta-of V            write DIR/delta-VERSION.mdb, a delta over\n"
"                                base V: lines {\"key\":K,\"value\":V} and\n"
"                                {\"key\":K,\"delete\":true}\n"
"  publish DIR VERSION     verify snap-VERSION.mdb and make it live; or\n"
"                          verify delta-VERSION.mdb and stack it on the\n"
"                          live base (at most 8 deltas)\n"
"  compact DIR [--version V]\n"
"                          merge the live base and its deltas into a new\n"
"                          base, and publish it\n"
"  rollback DIR [VERSION]  make the previous (or named) version live\n"
"  canary DIR VERSION PCT  verify snap-VERSION.mdb; it serves PCT%% of keys\n"
"  canary DIR PCT          change the candidate's share (0 to 100, 0.5)\n"
"  promote DIR             make the candidate live\n"
"  abort DIR               drop the candidate\n"
"  list DIR                versions, entries, age, live, candidate, deltas\n"
"  verify FILE|DIR         full check: structure, every entry, checksum\n"
"  info FILE|DIR           metadata (DIR: the live version's, and the\n"
"                          candidate and its share)\n"
"  get FILE|DIR KEY        print one value\n"
"  gc DIR --keep N         keep live, previous and the N newest others;\n"
"                          remove deltas of versions neither live nor\n"
"                          previous\n"
"\n"
"  publish, compact, rollback, canary, promote and abort rewrite\n"
"  DIR/manifest.json, what pull reads; --activate-at TIME|+DURATION on\n"
"  them tells pullers when to flip (2026-12-01T08:00:00Z, +10s)\n"
"\n"
"  pull URL DIR [--watch INTERVAL] [--header 'Name: value'] [--timeout T]\n"
"       [--rate-limit BYTES/s]\n"
"                          make DIR serve what URL/manifest.json says:\n"
"                          download (resumed after a cut), verify, flip;\n"
"                          DIR/pull-status.json says how it went; one\n"
"                          pull per DIR\n"
"  fleet-status [--max-skew T] [--metrics PATH] [--timeout T]\n"
"               [--header 'Name: value'] URL...\n"
"                          each node's GET .../snapshot in one table;\n"
"                          exit 1 when nodes disagree past --max-skew\n"
"                          (default 30s) or one does not answer\n"
"\n"
"exit status: 0 ok, 1 failed (the message names file and line), 2 usage\n");
}
