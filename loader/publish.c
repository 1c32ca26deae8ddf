/*
 * The pointers of a snapshot directory: publish, rollback, canary, promote,
 * abort, list, gc.
 *
 * DIR/current and DIR/previous are symlinks to snap-V.mdb files in DIR;
 * DIR/candidate is a symlink whose text is "snap-V.mdb@PERCENT" (see
 * pred_canary.h).  A pointer is replaced by writing a new symlink under a
 * temporary name and renaming it over the old one, so readers see the old
 * or the new target, never a missing or half-written one.
 */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "pred_canary.h"
#include "pred_snap.h"
#include "loader.h"


#define PRED_LINK_CURRENT   "current"
#define PRED_LINK_PREVIOUS  "previous"


typedef struct {
    char         file[256];
    char         version[PRED_SNAP_VERSION_MAX + 1];
    uint64_t     entries;
    time_t       created_at;
    off_t        size;
    const char  *problem;
    char         err[PRED_SNAP_ERR_MAX];
} pred_entry_t;


static int pred_candidate_drop(const char *dir, int quiet);
static void pred_version_of(char *buf, size_t size, const char *file);
static int pred_scan(const char *dir, pred_entry_t **out, size_t *n,
    char *cur, char *prev, size_t size);
static int pred_entry_cmp(const void *a, const void *b);
static int pred_temporaries(const char *dir, int remove);
static long pred_temporary_pid(const char *name);


int
pred_cmd_publish(int argc, char **argv)
{
    char  target[256], path[4096];

    if (argc != 3) {
        return pred_usage_error("publish: use \"publish DIR VERSION\"");
    }

    if (!pred_snap_valid_version(argv[2])) {
        return pred_usage_error("publish: invalid version \"%s\"", argv[2]);
    }

    snprintf(target, sizeof(target), "snap-%s.mdb", argv[2]);

    if (pred_dir_lock(argv[1]) != 0) {
        return PRED_EXIT_FAIL;
    }

    /* a delta goes on the live base's stack (versions are one namespace) */
    if (pred_delta_file(path, sizeof(path), argv[1], argv[2]) == 0
        && access(path, F_OK) == 0)
    {
        return pred_delta_publish(argv[1], argv[2]);
    }

    if (pred_no_base(argv[1], argv[2], "publish") != 0) {
        return PRED_EXIT_FAIL;
    }

    return pred_switch(argv[1], target, "published", 1);
}


int
pred_cmd_rollback(int argc, char **argv)
{
    int   full;
    char  target[256], cur[256];

    if (argc != 2 && argc != 3) {
        return pred_usage_error("rollback: use \"rollback DIR [VERSION]\"");
    }

    if (pred_dir_lock(argv[1]) != 0) {
        return PRED_EXIT_FAIL;
    }

    if (argc == 3) {
        if (!pred_snap_valid_version(argv[2])) {
            return pred_usage_error("rollback: invalid version \"%s\"",
                                    argv[2]);
        }

        snprintf(target, sizeof(target), "snap-%s.mdb", argv[2]);
        full = 1;

        if (pred_no_base(argv[1], argv[2], "rollback") != 0) {
            return PRED_EXIT_FAIL;
        }

    } else if (pred_link_read(argv[1], PRED_LINK_PREVIOUS, target,
                              sizeof(target)) != 0)
    {
        pred_error("%s: no previous version to roll back to", argv[1]);
        return PRED_EXIT_FAIL;

    } else if (pred_link_read(argv[1], PRED_LINK_CURRENT, cur, sizeof(cur))
               == 0 && strcmp(cur, target) == 0)
    {
        /* a switch cut between its two renames leaves them equal */
        pred_error("%s: previous and current are both %s (a publish or "
                   "rollback was interrupted): name the version to roll "
                   "back to", argv[1], target);
        return PRED_EXIT_FAIL;

    } else {
        /*
         * The previous version passed the full check when it was published
         * and files are never written again: the cheap checks keep a
         * rollback of millions of entries within a second.
         */
        full = 0;
    }

    return pred_switch(argv[1], target, "rolled back to", full);
}


/*
 * "canary DIR VERSION PERCENT": VERSION, fully verified, serves PERCENT of
 * keys beside the live version; "canary DIR PERCENT" changes the share of
 * the candidate there is.  Either is one rename of DIR/candidate.
 */
int
pred_cmd_canary(int argc, char **argv)
{
    int          same;
    struct stat  st;
    char         target[256], cur[256], link[300], old[256], prev[256];
    char         path[4096], pct[16], live[256], err[PRED_SNAP_ERR_MAX];
    uint32_t     share, was;
    const char  *dir, *arg;
    pred_snap_t  s, l;

    if (argc != 3 && argc != 4) {
        return pred_usage_error("canary: use \"canary DIR VERSION PERCENT\" "
                                "or \"canary DIR PERCENT\"");
    }

    dir = argv[1];
    arg = argv[argc - 1];

    if (pred_canary_parse_percent(arg, strlen(arg), &share) != 0) {
        return pred_usage_error("canary: invalid share \"%s\": a percent "
                                "from 0 to 100, at most 4 decimals", arg);
    }

    if (argc == 4 && !pred_snap_valid_version(argv[2])) {
        return pred_usage_error("canary: invalid version \"%s\"", argv[2]);
    }

    if (pred_dir_lock(dir) != 0) {
        return PRED_EXIT_FAIL;
    }

    if (argc == 4) {
        snprintf(target, sizeof(target), "snap-%s.mdb", argv[2]);

        if (pred_no_base(dir, argv[2], "canary") != 0) {
            return PRED_EXIT_FAIL;
        }

    } else if (pred_candidate_read(dir, target, &was) != 0) {
        snprintf(path, sizeof(path), "%s/%s", dir, PRED_CANARY_LINK);

        if (lstat(path, &st) == 0) {
            pred_error("%s: not a valid candidate pointer: \"abort DIR\" "
                       "removes it", path);
        } else {
            pred_error("%s: no candidate: use \"canary DIR VERSION "
                       "PERCENT\"", dir);
        }

        return PRED_EXIT_FAIL;
    }

    if (pred_link_read(dir, PRED_LINK_CURRENT, cur, sizeof(cur)) != 0) {
        pred_error("%s: nothing is live: publish a version first", dir);
        return PRED_EXIT_FAIL;
    }

    if (strcmp(cur, target) == 0) {
        pred_error("%s: %s is live: a candidate is another version", dir,
                   target);
        return PRED_EXIT_FAIL;
    }

    snprintf(path, sizeof(path), "%s/%s", dir, target);

    /* a new candidate gets the full check; a share change, the cheap one */
    if (pred_open_verified(path, &s, argc == 4) != 0) {
        pred_error("%s: refused, the live version and the candidate are "
                   "unchanged", path);
        return PRED_EXIT_FAIL;
    }

    /*
     * Requests, metrics and overrides name a version by what the file
     * says; a copy under another name would pass for another version.
     */
    pred_version_of(live, sizeof(live), target);

    if (strcmp(s.version, live) != 0) {
        pred_error("%s: refused: the file says it is version \"%s\", not "
                   "\"%s\" as its name says", path, s.version, live);
        pred_snap_close(&s);
        return PRED_EXIT_FAIL;
    }

    snprintf(path, sizeof(path), "%s/%s", dir, PRED_LINK_CURRENT);

    if (pred_snap_open(&l, path, 0, err, sizeof(err)) == 0) {
        same = (strcmp(l.version, s.version) == 0);
        pred_snap_close(&l);

        if (same) {
            pred_error("%s: refused: version %s is live", dir, s.version);
            pred_snap_close(&s);
            return PRED_EXIT_FAIL;
        }
    }

    pred_canary_format_percent(pct, sizeof(pct), share);
    snprintf(link, sizeof(link), "%s@%s", target, pct);

    if (pred_link_read(dir, PRED_CANARY_LINK, old, sizeof(old)) != 0) {
        old[0] = '\0';
    }

    /* a change that may not survive a crash must not look done to nginx */
    if (pred_link_set(dir, PRED_CANARY_LINK, link) != 0
        || pred_fsync_path(dir, 1) != 0)
    {
        pred_link_restore(dir, PRED_CANARY_LINK, old);
        pred_snap_close(&s);
        return PRED_EXIT_FAIL;
    }

    if (argc == 4 && old[0]
        && pred_canary_parse_link(old, strlen(old), prev, &was) == 0
        && strcmp(prev, target) != 0)
    {
        pred_version_of(live, sizeof(live), prev);
        printf("replaced candidate %s\n", live);
    }

    pred_version_of(live, sizeof(live), cur);

    printf("candidate %s (%" PRIu64 " entries) at %s%% of keys, live: %s\n",
           s.version, s.entries, pct, live);

    pred_snap_close(&s);

    return PRED_EXIT_OK;
}


/* the candidate becomes live, the live version previous */
int
pred_cmd_promote(int argc, char **argv)
{
    char      target[256];
    uint32_t  share;

    if (argc != 2) {
        return pred_usage_error("promote: use \"promote DIR\"");
    }

    if (pred_dir_lock(argv[1]) != 0) {
        return PRED_EXIT_FAIL;
    }

    if (pred_candidate_read(argv[1], target, &share) != 0) {
        pred_error("%s: no candidate to promote", argv[1]);
        return PRED_EXIT_FAIL;
    }

    /* the full check ran when it became the candidate */
    return pred_switch(argv[1], target, "promoted", 0);
}


int
pred_cmd_abort(int argc, char **argv)
{
    char         target[256], text[256], path[4096], name[4200];
    uint32_t     share;
    struct stat  st;

    if (argc != 2) {
        return pred_usage_error("abort: use \"abort DIR\"");
    }

    if (pred_dir_lock(argv[1]) != 0) {
        return PRED_EXIT_FAIL;
    }

    snprintf(path, sizeof(path), "%s/%s", argv[1], PRED_CANARY_LINK);

    if (lstat(path, &st) == -1) {
        if (errno != ENOENT) {
            pred_error("%s: %s", path, strerror(errno));
            return PRED_EXIT_FAIL;
        }

        printf("no candidate\n");
        return PRED_EXIT_OK;
    }

    /* whatever it holds: abort is how a bad pointer is removed too */
    if (pred_link_read(argv[1], PRED_CANARY_LINK, text, sizeof(text)) == 0
        && pred_canary_parse_link(text, strlen(text), target, &share) == 0)
    {
        pred_version_of(name, sizeof(name), target);

    } else {
        snprintf(name, sizeof(name), "%s (not a candidate pointer)", path);
    }

    if (pred_candidate_drop(argv[1], 1) != 0) {
        return PRED_EXIT_FAIL;
    }

    printf("aborted %s\n", name);

    return PRED_EXIT_OK;
}


int
pred_cmd_list(int argc, char **argv)
{
    int            found;
    char           cur[256], prev[256], cand[256], age[32], size[32];
    char           mark[64], pct[16], name[4200];
    struct stat    st;
    size_t         i, n, n2;
    uint32_t       share;
    pred_entry_t  *list;

    if (argc != 2) {
        return pred_usage_error("list: use \"list DIR\"");
    }

    if (pred_scan(argv[1], &list, &n, cur, prev, sizeof(cur)) != 0) {
        return PRED_EXIT_FAIL;
    }

    if (pred_candidate_read(argv[1], cand, &share) != 0) {
        cand[0] = '\0';
    }

    found = 0;

    printf("  %-24s %12s %8s %9s  %s\n", "VERSION", "ENTRIES", "AGE", "SIZE",
           "STATUS");

    for (i = 0; i < n; i++) {
        mark[0] = '\0';

        if (strcmp(list[i].file, cur) == 0) {
            strcpy(mark, "live");

        } else if (strcmp(list[i].file, prev) == 0) {
            strcpy(mark, "previous");
        }

        if (strcmp(list[i].file, cand) == 0) {
            found = 1;
            pred_canary_format_percent(pct, sizeof(pct), share);
            n2 = strlen(mark);
            snprintf(mark + n2, sizeof(mark) - n2, "%scandidate %s%%",
                     n2 ? ", " : "", pct);
        }

        pred_format_size(size, sizeof(size), list[i].size);

        if (list[i].problem) {
            printf("  %-24s %12s %8s %9s  %s%sinvalid: %s\n",
                   list[i].version, "-", "-", size, mark,
                   mark[0] ? ", " : "", list[i].err);
            continue;
        }

        pred_format_age(age, sizeof(age), list[i].created_at);

        printf("%s %-24s %12" PRIu64 " %8s %9s  %s\n",
               strcmp(mark, "live") == 0 ? "*" : " ", list[i].version,
               list[i].entries, age, size, mark);
    }

    free(list);

    pred_delta_list(argv[1], cur);

    snprintf(name, sizeof(name), "%s/%s", argv[1], PRED_CANARY_LINK);

    if (!cand[0] && lstat(name, &st) == 0) {
        printf("  %s is not a valid candidate pointer: \"abort DIR\" "
               "removes it\n", name);
    }

    if (cand[0] && !found) {
        pred_version_of(name, sizeof(name), cand);
        pred_canary_format_percent(pct, sizeof(pct), share);
        printf("  %-24s %12s %8s %9s  candidate %s%%, missing: no %s\n",
               name, "-", "-", "-", pct, cand);
    }

    (void) pred_temporaries(argv[1], 0);

    return PRED_EXIT_OK;
}


int
pred_cmd_gc(int argc, char **argv)
{
    int            rc;
    char           cur[256], prev[256], cand[256], path[4096];
    size_t         i, n, kept;
    uint32_t       share;
    uint64_t       keep;
    pred_entry_t  *list;

    if (argc != 4 || strcmp(argv[2], "--keep") != 0
        || pred_snap_parse_u64(argv[3], &keep) != 0)
    {
        return pred_usage_error("gc: use \"gc DIR --keep N\"");
    }

    /* under the lock: a rollback cannot point "current" at what gc removes */
    if (pred_dir_lock(argv[1]) != 0
        || pred_scan(argv[1], &list, &n, cur, prev, sizeof(cur)) != 0)
    {
        return PRED_EXIT_FAIL;
    }

    if (pred_candidate_read(argv[1], cand, &share) != 0) {
        cand[0] = '\0';
    }

    rc = pred_temporaries(argv[1], 1) == 0 ? PRED_EXIT_OK : PRED_EXIT_FAIL;
    kept = 0;

    if (pred_delta_gc(argv[1], cur, prev) != 0) {
        rc = PRED_EXIT_FAIL;
    }

    /* newest first; the live, previous and candidate versions stay */
    for (i = n; i-- > 0; ) {
        if (strcmp(list[i].file, cur) == 0
            || strcmp(list[i].file, prev) == 0
            || strcmp(list[i].file, cand) == 0)
        {
            continue;
        }

        if (kept < keep) {
            kept++;
            continue;
        }

        snprintf(path, sizeof(path), "%s/%s", argv[1], list[i].file);

        if (unlink(path) == -1) {
            pred_error("%s: %s", path, strerror(errno));
            rc = PRED_EXIT_FAIL;
            continue;
        }

        printf("removed %s\n", list[i].file);
    }

    free(list);

    return rc;
}


/*
 * One lock per snapshot folder (DIR/.lock, flock): every command that
 * moves a pointer, and gc, take it, so that a gc never removes what a
 * pointer is about to name, and two switches never interleave their
 * renames.  It is released when the process exits, whatever way it exits.
 */
static int  pred_dir_lock_fd = -1;


int
pred_dir_lock(const char *dir)
{
    int   fd;
    char  path[4096];

    /* pull takes it for each apply, then runs the commands that take it */
    if (pred_dir_lock_fd != -1) {
        return 0;
    }

    snprintf(path, sizeof(path), "%s/.lock", dir);

    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd == -1) {
        pred_error("%s: %s", path, strerror(errno));
        return -1;
    }

    if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
        if (errno != EWOULDBLOCK) {
            pred_error("%s: flock: %s", path, strerror(errno));
            close(fd);
            return -1;
        }

        fprintf(stderr, PRED_LOADER_NAME ": %s: waiting for another "
                "command that changes it (publish, rollback, canary, "
                "promote, abort, compact or gc)\n", dir);

        if (flock(fd, LOCK_EX) == -1) {
            pred_error("%s: flock: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }

    /* kept open: the lock lasts as long as the process, or pull's apply */
    pred_dir_lock_fd = fd;

    return 0;
}


void
pred_dir_unlock(void)
{
    if (pred_dir_lock_fd != -1) {
        (void) close(pred_dir_lock_fd);
        pred_dir_lock_fd = -1;
    }
}


/*
 * The temporary files of builds and switches (".snap-V.mdb.PID.tmp",
 * ".pred-build.PID.runN", ".NAME.PID.tmp"): listed, or with remove, those
 * whose process is gone (killed, or by the OOM killer) are removed.
 */
static int
pred_temporaries(const char *dir, int remove)
{
    int              rc, gone, old;
    DIR             *d;
    long             pid;
    char             path[4096];
    struct stat      st;
    struct dirent   *e;

    d = opendir(dir);
    if (d == NULL) {
        pred_error("%s: %s", dir, strerror(errno));
        return -1;
    }

    rc = 0;

    while ((e = readdir(d)) != NULL) {
        pid = pred_temporary_pid(e->d_name);
        if (pid <= 0) {
            continue;
        }

        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);

        gone = (kill((pid_t) pid, 0) == -1 && errno == ESRCH);

        /*
         * A minute old at least: a build on another host writing to a
         * shared folder (its PID means nothing here) is left to finish.
         */
        old = (lstat(path, &st) == 0 && time(NULL) - st.st_mtime >= 60);

        if (!remove) {
            printf("  temporary %s: process %ld %s\n", e->d_name, pid,
                   !gone ? "is at work"
                   : old ? "is gone (gc removes it)"
                         : "is gone (gc removes it after a minute)");
            continue;
        }

        if (!gone || !old) {
            continue;
        }

        if (unlink(path) == -1) {
            pred_error("%s: %s", path, strerror(errno));
            rc = -1;
            continue;
        }

        printf("removed %s (process %ld is gone)\n", e->d_name, pid);
    }

    closedir(d);

    return rc;
}


/*
 * The PID in the name of a temporary file of ours, or 0: exactly
 * ".snap-V.mdb.PID.tmp", ".NAME.PID.tmp" (a pointer being switched) or
 * ".pred-build.PID.runN", the PID all digits and at most INT_MAX.
 */
static long
pred_temporary_pid(const char *name)
{
    long         pid;
    size_t       len;
    const char  *p, *end;

    len = strlen(name);

    if (name[0] != '.') {
        return 0;
    }

    if (strncmp(name, ".pred-build.", 12) == 0) {
        p = name + 12;
        end = strstr(p, ".run");
        if (end == NULL || end[4] == '\0'
            || strspn(end + 4, "0123456789") != strlen(end + 4))
        {
            return 0;
        }

    } else if (len > 4 && strcmp(name + len - 4, ".tmp") == 0) {
        end = name + len - 4;
        p = end;
        while (p > name && p[-1] >= '0' && p[-1] <= '9') {
            p--;
        }

        if (p == end || p[-1] != '.' || p - 1 == name) {
            return 0;
        }

    } else {
        return 0;
    }

    if (end == p || end - p > 10
        || strspn(p, "0123456789") != (size_t) (end - p))
    {
        return 0;
    }

    pid = strtol(p, NULL, 10);

    return (pid > 0 && pid <= INT_MAX) ? pid : 0;
}


/* the entry count of the live snapshot; -1 when there is none */
int
pred_live_entries(const char *dir, uint64_t *entries)
{
    char         path[4096], err[PRED_SNAP_ERR_MAX];
    pred_snap_t  s;

    snprintf(path, sizeof(path), "%s/%s", dir, PRED_LINK_CURRENT);

    if (pred_snap_open(&s, path, 0, err, sizeof(err)) != 0) {
        return -1;
    }

    *entries = s.entries;
    pred_snap_close(&s);

    return 0;
}


/*
 * Makes target live after it passes verify (full: every entry and the
 * checksum); the version it replaces becomes "previous", so one rollback
 * undoes one switch.
 */
int
pred_switch(const char *dir, const char *target, const char *verb, int full)
{
    int          quiet;
    char         path[4096], cur[256], prev[256], name[256], cand[256];
    uint32_t     share;
    pred_snap_t  s;

    if (snprintf(path, sizeof(path), "%s/%s", dir, target)
        >= (int) sizeof(path))
    {
        pred_error("%s: path too long", dir);
        return PRED_EXIT_FAIL;
    }

    if (pred_open_verified(path, &s, full) != 0) {
        pred_error("%s: refused, the live version is unchanged", path);
        return PRED_EXIT_FAIL;
    }

    if (s.delta_of[0]) {
        pred_error("%s: refused: a delta of version %s, not a base; the "
                   "live version is unchanged", path, s.delta_of);
        pred_snap_close(&s);
        return PRED_EXIT_FAIL;
    }

    if (pred_link_read(dir, PRED_LINK_CURRENT, cur, sizeof(cur)) != 0) {
        cur[0] = '\0';
    }

    if (strcmp(cur, target) == 0) {
        printf("%s is already live\n", s.version);
        pred_snap_close(&s);

        /*
         * Finishes a promote cut before it dropped the candidate; a
         * publish of what is live changes nothing, a canary included.
         */
        if (strcmp(verb, "promoted") != 0) {
            return PRED_EXIT_OK;
        }

        return pred_candidate_drop(dir, 1) == 0 ? PRED_EXIT_OK
                                                : PRED_EXIT_FAIL;
    }

    if (pred_link_read(dir, PRED_LINK_PREVIOUS, prev, sizeof(prev)) != 0) {
        prev[0] = '\0';
    }

    /*
     * Each rename is synced before the next.  A failure puts back what
     * this command changed: a switch that may not survive a crash must not
     * look done to nginx or to the next command.
     */
    if (cur[0]
        && (pred_link_set(dir, PRED_LINK_PREVIOUS, cur) != 0
            || pred_fsync_path(dir, 1) != 0))
    {
        pred_link_restore(dir, PRED_LINK_PREVIOUS, prev);
        pred_snap_close(&s);
        return PRED_EXIT_FAIL;
    }

    if (pred_link_set(dir, PRED_LINK_CURRENT, target) != 0
        || pred_fsync_path(dir, 1) != 0)
    {
        pred_link_restore(dir, PRED_LINK_CURRENT, cur);

        if (cur[0]) {
            pred_link_restore(dir, PRED_LINK_PREVIOUS, prev);
        }

        pred_snap_close(&s);
        return PRED_EXIT_FAIL;
    }

    printf("%s %s (%" PRIu64 " entries)", verb, s.version, s.entries);

    if (cur[0]) {
        pred_version_of(name, sizeof(name), cur);
        printf(", previous: %s", name);
    }

    printf("\n");

    pred_snap_close(&s);

    /* the deltas go with their base, and come back with it */
    if (pred_delta_switch(dir, target, cur) != 0) {
        return PRED_EXIT_FAIL;
    }

    /*
     * The candidate goes last: until then a reader that sees it beside the
     * new live version either serves both or, when they are the same file
     * (a promote), the live one alone.
     */
    /* quietly when the candidate is what just went live */
    quiet = (pred_candidate_read(dir, cand, &share) != 0
             || strcmp(cand, target) == 0);

    return pred_candidate_drop(dir, quiet) == 0 ? PRED_EXIT_OK
                                                : PRED_EXIT_FAIL;
}


/* "info DIR": the candidate's lines, when there is one */
int
pred_candidate_info(const char *dir)
{
    char         file[256], pct[16], path[4096], name[256];
    uint32_t     share;
    struct stat  st;

    if (pred_candidate_read(dir, file, &share) != 0) {
        return 0;
    }

    pred_canary_format_percent(pct, sizeof(pct), share);
    snprintf(path, sizeof(path), "%s/%s", dir, file);

    pred_version_of(name, sizeof(name), file);

    printf("candidate: %s%s\ncandidate_percent: %s\n", name,
           stat(path, &st) == 0 ? "" : " (its file is missing)", pct);

    return 1;
}


/* the candidate's file name and share; -1 when there is none or it is not
   one of ours */
int
pred_candidate_read(const char *dir, char *file, uint32_t *share)
{
    char  text[256];

    if (pred_link_read(dir, PRED_CANARY_LINK, text, sizeof(text)) != 0) {
        return -1;
    }

    if (pred_canary_parse_link(text, strlen(text), file, share) != 0) {
        pred_error("%s/%s: not a candidate pointer: \"%s\"", dir,
                   PRED_CANARY_LINK, text);
        return -1;
    }

    return 0;
}


/* removes the candidate pointer; unless quiet (promoted, aborted), says so */
static int
pred_candidate_drop(const char *dir, int quiet)
{
    char      path[4096], target[256], name[256];
    uint32_t  share;

    snprintf(path, sizeof(path), "%s/%s", dir, PRED_CANARY_LINK);

    if (!quiet && pred_candidate_read(dir, target, &share) == 0) {
        pred_version_of(name, sizeof(name), target);
        printf("dropped candidate %s\n", name);
    }

    if (unlink(path) == -1) {
        if (errno == ENOENT) {
            return 0;
        }

        pred_error("%s: %s", path, strerror(errno));
        return -1;
    }

    return pred_fsync_path(dir, 1);
}


/* "snap-V.mdb" names version V; anything else is shown as it is */
static void
pred_version_of(char *buf, size_t size, const char *file)
{
    size_t  len;

    len = strlen(file);

    if (len > 9 && strncmp(file, "snap-", 5) == 0
        && strcmp(file + len - 4, ".mdb") == 0)
    {
        snprintf(buf, size, "%.*s", (int) len - 9, file + 5);

    } else {
        snprintf(buf, size, "%s", file);
    }
}


int
pred_link_read(const char *dir, const char *name, char *target, size_t size)
{
    char     path[4096];
    ssize_t  n;

    snprintf(path, sizeof(path), "%s/%s", dir, name);

    n = readlink(path, target, size - 1);
    if (n < 0) {
        return -1;
    }

    target[n] = '\0';

    return 0;
}


/* points dir/name at target, replacing it in one rename */
int
pred_link_set(const char *dir, const char *name, const char *target)
{
    char  tmp[4096], path[4096];

    snprintf(tmp, sizeof(tmp), "%s/.%s.%d.tmp", dir, name, (int) getpid());
    snprintf(path, sizeof(path), "%s/%s", dir, name);

    unlink(tmp);

    if (symlink(target, tmp) == -1) {
        pred_error("%s: symlink: %s", tmp, strerror(errno));
        return -1;
    }

    if (rename(tmp, path) == -1) {
        pred_error("%s: rename: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }

    return 0;
}


/*
 * Points dir/name back at old ("": no such pointer) after a switch failed
 * part way, unless it still is.  Not synced: the sync that just failed
 * would fail again, and should a crash lose this, the folder shows the
 * switch, whose target passed its checks.
 */
void
pred_link_restore(const char *dir, const char *name, const char *old)
{
    char  path[4096], now[256];

    if (pred_link_read(dir, name, now, sizeof(now)) != 0) {
        now[0] = '\0';
    }

    if (strcmp(now, old) == 0) {
        return;
    }

    if (old[0]) {
        (void) pred_link_set(dir, name, old);
        return;
    }

    snprintf(path, sizeof(path), "%s/%s", dir, name);

    if (unlink(path) == -1) {
        pred_error("%s: %s", path, strerror(errno));
    }
}


/* removes dir/name, which need not be there */
int
pred_link_remove(const char *dir, const char *name)
{
    char  path[4096];

    snprintf(path, sizeof(path), "%s/%s", dir, name);

    if (unlink(path) == -1 && errno != ENOENT) {
        pred_error("%s: %s", path, strerror(errno));
        return -1;
    }

    return 0;
}


/*
 * Every snap-*.mdb in dir, oldest first, and the targets of the current
 * and previous pointers ("" where there is none).
 */
static int
pred_scan(const char *dir, pred_entry_t **out, size_t *n, char *cur,
    char *prev, size_t size)
{
    int             i, count;
    char            path[4096];
    size_t          len, k;
    struct stat     st;
    pred_snap_t     s;
    pred_entry_t   *list;
    struct dirent **names;

    count = scandir(dir, &names, NULL, alphasort);
    if (count < 0) {
        pred_error("%s: %s", dir, strerror(errno));
        return -1;
    }

    list = calloc(count + 1, sizeof(pred_entry_t));
    if (list == NULL) {
        pred_error("out of memory");
        return -1;
    }

    k = 0;

    for (i = 0; i < count; i++) {
        len = strlen(names[i]->d_name);

        if (strncmp(names[i]->d_name, "snap-", 5) == 0 && len > 9
            && len < sizeof(list[k].file)
            && strcmp(names[i]->d_name + len - 4, ".mdb") == 0)
        {
            pred_entry_t  *e = &list[k++];

            memcpy(e->file, names[i]->d_name, len + 1);
            snprintf(e->version, sizeof(e->version), "%.*s", (int) len - 9,
                     e->file + 5);
            snprintf(path, sizeof(path), "%s/%s", dir, e->file);

            if (stat(path, &st) == 0) {
                e->size = st.st_size;
                e->created_at = st.st_mtime;
            }

            if (pred_snap_open(&s, path, 0, e->err, sizeof(e->err)) != 0) {
                e->problem = e->err;

            } else {
                e->entries = s.entries;
                e->created_at = s.created_at;
                pred_snap_close(&s);
            }
        }

        free(names[i]);
    }

    free(names);

    qsort(list, k, sizeof(pred_entry_t), pred_entry_cmp);

    *out = list;
    *n = k;

    if (pred_link_read(dir, PRED_LINK_CURRENT, cur, size) != 0) {
        cur[0] = '\0';
    }

    if (pred_link_read(dir, PRED_LINK_PREVIOUS, prev, size) != 0) {
        prev[0] = '\0';
    }

    return 0;
}


static int
pred_entry_cmp(const void *a, const void *b)
{
    const pred_entry_t  *x = a, *y = b;

    if (x->created_at != y->created_at) {
        return x->created_at < y->created_at ? -1 : 1;
    }

    return strcmp(x->file, y->file);
}


void
pred_format_age(char *buf, size_t size, time_t created)
{
    time_t  age;

    age = time(NULL) - created;
    if (age < 0) {
        age = 0;
    }

    if (age < 120) {
        snprintf(buf, size, "%ds", (int) age);

    } else if (age < 2 * 3600) {
        snprintf(buf, size, "%dm", (int) (age / 60));

    } else if (age < 2 * 86400) {
        snprintf(buf, size, "%dh", (int) (age / 3600));

    } else {
        snprintf(buf, size, "%dd", (int) (age / 86400));
    }
}


void
pred_format_size(char *buf, size_t size, off_t bytes)
{
    if (bytes < 10 * 1024) {
        snprintf(buf, size, "%dB", (int) bytes);

    } else if (bytes < 10 * 1024 * 1024) {
        snprintf(buf, size, "%dK", (int) (bytes / 1024));

    } else {
        snprintf(buf, size, "%dM", (int) (bytes / (1024 * 1024)));
    }
}
