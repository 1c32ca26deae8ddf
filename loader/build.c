/*
 * pred-snapshot build: JSON Lines in, one validated snapshot file out.
 *
 * The phases, in order: the command line (build_args.c); the input files,
 * each line parsed into the external sort, which spills sorted runs to DIR
 * past the memory budget (build_input.c, sort.c); the merge of the runs in
 * key order, appended to an LMDB file under a temporary name
 * (build_lmdb.c); the checks on the whole; then the file is synced and
 * linked to its final name.  Nothing is visible under the final name until
 * every check has passed, and a failure, Ctrl-C or kill removes what the
 * build wrote.
 */

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "loader.h"
#include "build.h"


static int pred_build_run(pred_build_opts_t *o);
static int pred_build_merge(pred_build_t *b, const char *tmp);
static int pred_build_check_shrink(pred_build_t *b);
static int pred_build_check_base(pred_build_opts_t *o);
static double pred_build_elapsed(pred_build_t *b);
static void pred_build_cleanup(pred_build_t *b);
static void pred_build_on_run(const char *path);
static void pred_build_on_signal(int signo);


/*
 * What a signal handler must remove: the temporary file and the sort's
 * runs.  A name is stored before the count that makes it visible.
 */
static char                   *pred_tmp_paths[1024];
static volatile sig_atomic_t   pred_ntmp_paths;


int
pred_cmd_build(int argc, char **argv)
{
    int                rc;
    pred_build_opts_t  o;

    rc = pred_build_parse_args(argc, argv, &o);

    if (rc == PRED_EXIT_OK) {
        rc = pred_build_run(&o);
    }

    pred_build_free_args(&o);

    return rc;
}


static int
pred_build_run(pred_build_opts_t *o)
{
    int                 rc;
    char                tmp[4096], final[4096], other[4096];
    size_t              i;
    pred_build_t        b;
    struct stat         st;
    struct sigaction    sa;

    memset(&b, 0, sizeof(pred_build_t));
    b.opts = o;
    clock_gettime(CLOCK_MONOTONIC, &b.started);

    pred_sort_init(&b.sort, o->dir, o->memory);
    b.sort.on_run = pred_build_on_run;

    if (stat(o->dir, &st) == -1) {
        pred_error("%s: %s (make the folder first)", o->dir,
                   strerror(errno));
        return PRED_EXIT_FAIL;
    }

    if (!S_ISDIR(st.st_mode)) {
        pred_error("%s: not a directory", o->dir);
        return PRED_EXIT_FAIL;
    }

    /* bases and deltas share one namespace of versions */
    if (pred_snap_file(final, sizeof(final), o->dir, o->version) != 0
        || pred_delta_file(other, sizeof(other), o->dir, o->version) != 0
        || snprintf(tmp, sizeof(tmp), "%s/.snap-%s.mdb.%d.tmp", o->dir,
                    o->version, (int) getpid()) >= (int) sizeof(tmp))
    {
        pred_error("%s: path too long", o->dir);
        return PRED_EXIT_FAIL;
    }

    if (access(final, F_OK) == 0 || access(other, F_OK) == 0) {
        pred_error("%s: version \"%s\" already exists",
                   access(final, F_OK) == 0 ? final : other, o->version);
        return PRED_EXIT_FAIL;
    }

    if (o->delta_of) {
        if (pred_build_check_base(o) != 0) {
            return PRED_EXIT_FAIL;
        }

        memcpy(final, other, sizeof(final));
    }

    rc = PRED_EXIT_FAIL;

    for (i = 0; i < o->ninputs; i++) {
        if (pred_build_add_input(&b, o->inputs[i]) != 0) {
            goto done;
        }
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = pred_build_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    pred_tmp_paths[pred_ntmp_paths] = tmp;
    pred_ntmp_paths++;

    for (i = 0; i < b.nfiles; i++) {
        if (pred_build_read(&b, i) != 0) {
            goto done;
        }
    }

    if (pred_build_merge(&b, tmp) != 0) {
        goto done;
    }

    if (b.writer.written == 0) {
        pred_error("no entries in the input");
        goto done;
    }

    if (b.writer.written < o->min_entries) {
        pred_error("%" PRIu64 " entries, fewer than --min-entries %" PRIu64,
                   b.writer.written, o->min_entries);
        goto done;
    }

    if (!o->delta_of && pred_build_check_shrink(&b) != 0) {
        goto done;
    }

    if (pred_fsync_path(tmp, 0) != 0) {
        goto done;
    }

    if (link(tmp, final) == -1) {
        pred_error("%s: %s", final, errno == EEXIST
                   ? "version already exists" : strerror(errno));
        goto done;
    }

    /* the new name is not there until the folder is synced */
    if (pred_fsync_path(o->dir, 1) != 0) {
        unlink(final);
        goto done;
    }

    pred_build_progress(&b, NULL, 0);

    if (o->delta_of) {
        printf("built %s: %" PRIu64 " upserts, %" PRIu64 " deletions over "
               "version %s in %.2f s\n", final,
               b.writer.written - b.writer.deletes, b.writer.deletes,
               o->delta_of, pred_build_elapsed(&b));

    } else {
        printf("built %s: %" PRIu64 " entries in %.2f s\n", final,
               b.writer.written, pred_build_elapsed(&b));
    }

    rc = PRED_EXIT_OK;

done:

    pred_build_cleanup(&b);

    return rc;
}


/* the sorted records into the LMDB file tmp; every failure reported */
static int
pred_build_merge(pred_build_t *b, const char *tmp)
{
    int                rc;
    const pred_rec_t  *r, *again;

    if (pred_sort_merge_begin(&b->sort) != 0) {
        pred_error("%s", b->sort.err);
        return -1;
    }

    if (pred_writer_open(&b->writer, tmp, b->sort.records, b->sort.bytes)
        != 0)
    {
        return -1;
    }

    while ((rc = pred_sort_next(&b->sort, &r, &again)) != PRED_SORT_DONE) {
        if (rc == PRED_SORT_ERROR) {
            pred_error("%s", b->sort.err);
            return -1;
        }

        if (rc == PRED_SORT_DUP) {
            if (b->opts->dedupe) {
                /* inputs are merged in file and line order: the last wins */
                continue;
            }

            pred_error("%s:%" PRIu64 ": duplicate key \"%.*s\" (first at "
                       "%s:%" PRIu64 "; --dedupe keeps the last)",
                       b->files[again->file], again->line, (int) again->klen,
                       pred_rec_key(again), b->files[r->file], r->line);
            return -1;
        }

        if (pred_writer_append(&b->writer, r) != 0) {
            return -1;
        }

        if (b->writer.queued % PRED_WRITER_BATCH == 0) {
            pred_build_progress(b, "writing", b->writer.queued);
        }
    }

    rc = pred_writer_commit(&b->writer, b->opts);

    /* closed before the checks and the final sync, as a finished file */
    pred_writer_close(&b->writer);

    return rc;
}


/* the coverage guard: a batch job that lost half its output must not ship */
static int
pred_build_check_shrink(pred_build_t *b)
{
    uint64_t  live, written;

    if (b->opts->max_shrink < 0) {
        return 0;
    }

    if (pred_live_entries(b->opts->dir, &live) != 0) {
        return 0;
    }

    written = b->writer.written;

    if (written * 100 < live * (uint64_t) (100 - b->opts->max_shrink)) {
        pred_error("%" PRIu64 " entries, down from %" PRIu64 " in the live "
                   "snapshot: more than --max-shrink %d%%", written, live,
                   b->opts->max_shrink);
        return -1;
    }

    return 0;
}


/* a delta's base must be a valid base version in the folder */
static int
pred_build_check_base(pred_build_opts_t *o)
{
    char         path[4096], err[PRED_SNAP_ERR_MAX];
    pred_snap_t  s;

    if (pred_snap_file(path, sizeof(path), o->dir, o->delta_of) != 0) {
        pred_error("%s: path too long", o->dir);
        return -1;
    }

    if (pred_no_base(o->dir, o->delta_of, "--delta-of") != 0) {
        return -1;
    }

    if (pred_snap_open(&s, path, 0, err, sizeof(err)) != 0) {
        pred_error("--delta-of %s: %s: %s", o->delta_of, path, err);
        return -1;
    }

    /* a delta names its base by version and content */
    memcpy(o->delta_of_checksum, s.checksum, sizeof(s.checksum));

    pred_snap_close(&s);

    return 0;
}


/*
 * A progress line on a terminal only; quiet in pipes and logs.  done is
 * bytes read while reading, entries written while writing; phase NULL
 * clears the line.
 */
void
pred_build_progress(pred_build_t *b, const char *phase, uint64_t done)
{
    double  t, rate, total;

    if (b->opts->quiet || !isatty(STDERR_FILENO)) {
        return;
    }

    t = pred_build_elapsed(b);

    if (phase == NULL) {
        fprintf(stderr, "\r\033[K");
        return;
    }

    if (t - b->last_progress < 0.25) {
        return;
    }

    b->last_progress = t;

    if (strcmp(phase, "reading") == 0) {
        total = b->total_bytes;
        fprintf(stderr, "\r\033[Kreading: %" PRIu64 " entries, %.0f/s",
                b->sort.records, b->sort.records / t);

    } else {
        total = b->sort.records;
        fprintf(stderr, "\r\033[Kwriting: %" PRIu64 " of %" PRIu64
                " entries, %.0f/s", b->writer.queued, b->sort.records,
                b->writer.queued / t);
    }

    rate = done / t;

    if (total > done && rate > 0) {
        fprintf(stderr, ", ETA %.0f s", (total - done) / rate);
    }
}


static double
pred_build_elapsed(pred_build_t *b)
{
    struct timespec  now;

    clock_gettime(CLOCK_MONOTONIC, &now);

    return (now.tv_sec - b->started.tv_sec)
           + (now.tv_nsec - b->started.tv_nsec) / 1e9;
}


static void
pred_build_cleanup(pred_build_t *b)
{
    size_t  i;

    /* closed before its file is removed: LMDB writes nothing more */
    pred_writer_close(&b->writer);

    /* forgotten by the signal handler before the sort frees the names */
    for (i = 0; i < (size_t) pred_ntmp_paths; i++) {
        unlink(pred_tmp_paths[i]);
    }

    pred_ntmp_paths = 0;

    pred_sort_cleanup(&b->sort);
    pred_buf_free(&b->key);
    pred_buf_free(&b->val);

    for (i = 0; i < b->nfiles; i++) {
        free(b->files[i]);
    }

    free(b->files);
}


static void
pred_build_on_run(const char *path)
{
    if ((size_t) pred_ntmp_paths
        < sizeof(pred_tmp_paths) / sizeof(pred_tmp_paths[0]))
    {
        pred_tmp_paths[pred_ntmp_paths] = (char *) path;
        pred_ntmp_paths++;
    }
}


static void
pred_build_on_signal(int signo)
{
    sig_atomic_t  i;

    for (i = 0; i < pred_ntmp_paths; i++) {
        unlink(pred_tmp_paths[i]);
    }

    signal(signo, SIG_DFL);
    raise(signo);
}
