/*
 * DIR/manifest.json: what the folder serves, for pullers (pull.c) to copy.
 *
 * {"format":"pred-manifest/1","generated_at":"...Z",
 *  "activate_at":"...Z",                        (only when one was given)
 *  "live":{"version":"v2","file":"snap-v2.mdb","size":N,
 *          "checksum":"fnv1a64:...","entries":N,"created_at":"...Z",
 *          "deltas":[{same members, "delta_of":"v2"}, ...]},
 *  "previous":{...} or null,
 *  "candidate":{..., "share":0.5} or null}
 *
 * Rewritten by every command that moves a pointer, under the folder's
 * lock, in one rename: a reader sees the old manifest or the new one.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <jansson.h>

#include "pred_snap.h"
#include "pred_canary.h"
#include "pred_delta.h"
#include "loader.h"


static json_t *pred_manifest_entry(const char *dir, const char *file);


/* "2026-12-01T08:00:00Z"; Unix seconds past what struct tm holds */
void
pred_format_time(char *buf, size_t size, time_t t)
{
    struct tm  tm;

    /* a node's metrics or a file's metadata may say any number */
    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(buf, size, "%lld", (long long) t);
        return;
    }

    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}


int
pred_manifest_write(const char *dir, time_t activate_at)
{
    int                 rc;
    char                cur[256], prev[256], cand[256], when[32];
    char                text[PRED_DELTA_LINK_MAX + 1], pct[16];
    size_t              i;
    json_t             *m, *live, *e, *deltas;
    uint32_t            share;
    pred_delta_stack_t  stack;

    m = json_object();
    live = NULL;

    json_object_set_new(m, "format", json_string("pred-manifest/1"));

    pred_format_time(when, sizeof(when), time(NULL));
    json_object_set_new(m, "generated_at", json_string(when));

    if (activate_at) {
        pred_format_time(when, sizeof(when), activate_at);
        json_object_set_new(m, "activate_at", json_string(when));
    }

    if (pred_link_read(dir, "current", cur, sizeof(cur)) == 0) {
        live = pred_manifest_entry(dir, cur);
        if (live == NULL) {
            goto failed;
        }

        deltas = json_array();
        json_object_set_new(live, "deltas", deltas);

        if (pred_link_read(dir, PRED_DELTA_LINK, text, sizeof(text)) == 0
            && pred_delta_parse_link(text, strlen(text), &stack) == 0
            && strcmp(stack.base, cur) == 0)
        {
            for (i = 0; i < stack.n; i++) {
                e = pred_manifest_entry(dir, stack.layer[i]);
                if (e == NULL) {
                    goto failed;
                }

                json_array_append_new(deltas, e);
            }
        }
    }

    json_object_set_new(m, "live", live ? live : json_null());

    e = NULL;

    if (pred_link_read(dir, "previous", prev, sizeof(prev)) == 0) {
        /* a previous version whose file gc removed is no rollback target */
        e = pred_manifest_entry(dir, prev);
    }

    json_object_set_new(m, "previous", e ? e : json_null());

    e = NULL;

    if (pred_candidate_read(dir, cand, &share) == 0) {
        e = pred_manifest_entry(dir, cand);
        if (e == NULL) {
            goto failed;
        }

        pred_canary_format_percent(pct, sizeof(pct), share);
        json_object_set_new(e, "share", json_real(strtod(pct, NULL)));
    }

    json_object_set_new(m, "candidate", e ? e : json_null());

    rc = pred_json_file_write(dir, "manifest.json", m, 1);
    json_decref(m);

    return rc;

failed:

    pred_error("%s/manifest.json: not written; the folder's pointers are "
               "changed, run the command again to write it", dir);
    json_decref(m);

    return -1;
}


/* one file's members, from its metadata (the cheap checks) */
static json_t *
pred_manifest_entry(const char *dir, const char *file)
{
    char          path[4096], when[32];
    json_t       *e;
    struct stat   st;
    pred_snap_t   s;

    snprintf(path, sizeof(path), "%s/%s", dir, file);

    if (stat(path, &st) == -1) {
        pred_error("%s: %s", path, strerror(errno));
        return NULL;
    }

    if (pred_open_verified(path, &s, 0) != 0) {
        return NULL;
    }

    e = json_object();

    json_object_set_new(e, "version", json_string(s.version));
    json_object_set_new(e, "file", json_string(file));
    json_object_set_new(e, "size", json_integer((json_int_t) st.st_size));
    json_object_set_new(e, "checksum", json_string(s.checksum));
    json_object_set_new(e, "entries", json_integer((json_int_t) s.entries));

    pred_format_time(when, sizeof(when), s.created_at);
    json_object_set_new(e, "created_at", json_string(when));

    if (s.delta_of[0]) {
        json_object_set_new(e, "delta_of", json_string(s.delta_of));
    }

    pred_snap_close(&s);

    return e;
}


/*
 * DIR/name, replaced in one rename after the bytes are synced; with newer,
 * its mtime later than the file it replaces.
 *
 * A static origin's validators are in seconds (nginx's ETag is the mtime
 * and the size, Last-Modified the mtime): a manifest rewritten within the
 * second of the one before, at the same size (a canary share of 25, then
 * 50), would answer a puller's If-None-Match with 304, and the change
 * would wait for the next rewrite.
 */
int
pred_json_file_write(const char *dir, const char *name, json_t *j, int newer)
{
    int              fd, rc;
    char             tmp[4096], path[4096], *text;
    size_t           len, off;
    ssize_t          n;
    struct stat      old, st;
    struct timespec  times[2];

    text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text == NULL) {
        pred_error("%s/%s: out of memory", dir, name);
        return -1;
    }

    snprintf(tmp, sizeof(tmp), "%s/.%s.%d.tmp", dir, name, (int) getpid());
    snprintf(path, sizeof(path), "%s/%s", dir, name);

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd == -1) {
        pred_error("%s: %s", tmp, strerror(errno));
        free(text);
        return -1;
    }

    len = strlen(text);
    text[len++] = '\n';         /* over json_dumps' NUL */
    rc = 0;

    for (off = 0; off < len; off += (size_t) n) {
        n = write(fd, text + off, len - off);
        if (n <= 0) {
            pred_error("%s: write: %s", tmp, strerror(errno));
            rc = -1;
            break;
        }
    }

    free(text);

    /* set before the rename: no reader sees the new bytes with the old
       validators */
    if (rc == 0 && newer && stat(path, &old) == 0 && fstat(fd, &st) == 0
        && st.st_mtime <= old.st_mtime)
    {
        times[0].tv_sec = 0;
        times[0].tv_nsec = UTIME_OMIT;
        times[1].tv_sec = old.st_mtime + 1;
        times[1].tv_nsec = 0;

        if (futimens(fd, times) == -1) {
            pred_error("%s: futimens: %s", tmp, strerror(errno));
            rc = -1;
        }
    }

    if (rc == 0 && fsync(fd) == -1) {
        pred_error("%s: fsync: %s", tmp, strerror(errno));
        rc = -1;
    }

    close(fd);

    if (rc == 0 && rename(tmp, path) == -1) {
        pred_error("%s: rename: %s", path, strerror(errno));
        rc = -1;
    }

    if (rc != 0) {
        unlink(tmp);
        return -1;
    }

    return pred_fsync_path(dir, 1);
}
