/*
 * Delta snapshots in a snapshot directory: publish a delta over the live
 * base, list the stack, drop it when the base changes, gc, and compact the
 * stack into a new base.  The pointer's format is in pred_delta.h.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>
#include <sys/stat.h>

#include "pred_canary.h"
#include "pred_delta.h"
#include "pred_snap.h"
#include "loader.h"
#include "build.h"


#define PRED_LINK_CURRENT  "current"


/* one record of the merged deltas, in compact's memory */
typedef struct {
    char      *key;
    size_t     klen;
    char      *val;             /* vlen 0: a deletion */
    size_t     vlen;
    size_t     layer;           /* newest wins */
    time_t     as_of;           /* its layer's as-of time */
} pred_delta_rec_t;


typedef struct {
    pred_delta_rec_t  *recs;
    size_t             n;
    size_t             size;
    size_t             layer;
    time_t             as_of;
} pred_delta_recs_t;



/* compact's merge of the base with the deltas' records */
typedef struct {
    pred_delta_recs_t  *deltas;
    size_t              next;       /* the next delta record to write */
    pred_writer_t      *writer;
    pred_buf_t          rec;
    uint64_t            written;
    uint64_t            hash;           /* of the base's records */
} pred_delta_merge_t;


static int pred_delta_stack(const char *dir, const char *cur,
    pred_delta_stack_t *stack);
static void *pred_delta_alloc(void *ctx, size_t size);
static void pred_delta_list_one(const char *dir, const char *file,
    const char *star, const char *mark);
static int pred_delta_collect(void *ctx, const void *key, size_t key_len,
    const void *val, size_t val_len, char *err, size_t errlen);
static int pred_delta_rec_cmp(const void *a, const void *b);
static int pred_delta_key_cmp(const void *k1, size_t l1, const void *k2,
    size_t l2);
static int pred_delta_merge(void *ctx, const void *key, size_t key_len,
    const void *val, size_t val_len, char *err, size_t errlen);
static int pred_delta_write(pred_delta_merge_t *m, const void *key,
    size_t klen, const void *val, size_t vlen);
static int pred_delta_compact(const char *dir, const char *cur,
    pred_delta_stack_t *stack, const char *version);
static int pred_delta_add(pred_delta_recs_t *recs, const void *key,
    size_t key_len, const void *val, size_t val_len, time_t as_of);
static void pred_delta_unique(pred_delta_recs_t *recs, int newest);
static int pred_delta_time_collect(void *ctx, const void *key,
    size_t key_len, const void *val, size_t val_len, char *err,
    size_t errlen);


/*
 * "publish DIR V" where V is a delta: it goes on top of the live base's
 * stack after the full check.  Only over the version it was built on: a
 * delta's upserts and deletions mean nothing over another.
 */
int
pred_delta_publish(const char *dir, const char *version)
{
    int                 rc;
    char                path[4096], cur[256], text[PRED_DELTA_LINK_MAX];
    char                old[PRED_DELTA_LINK_MAX + 1];
    char                file[PRED_DELTA_FILE_MAX];
    size_t              i;
    pred_snap_t         s, live;
    pred_delta_stack_t  stack;

    if (pred_delta_file(path, sizeof(path), dir, version) != 0) {
        pred_error("%s: path too long", dir);
        return PRED_EXIT_FAIL;
    }

    snprintf(file, sizeof(file), "delta-%s.mdb", version);

    if (pred_open_verified(path, &s, 1) != 0) {
        pred_error("%s: refused, the live version is unchanged", path);
        return PRED_EXIT_FAIL;
    }

    rc = PRED_EXIT_FAIL;
    live.env = NULL;

    /* the file is the version: a copy under another name is not one */
    if (!s.delta_of[0] || strcmp(s.version, version) != 0) {
        pred_error("%s: refused: its metadata says %s %s", path,
                   s.delta_of[0] ? "delta" : "base version", s.version);
        goto done;
    }

    if (pred_link_read(dir, PRED_LINK_CURRENT, cur, sizeof(cur)) != 0
        || snprintf(text, sizeof(text), "%s/%s", dir, cur)
           >= (int) sizeof(text)
        || pred_open_verified(text, &live, 0) != 0)
    {
        pred_error("%s: no live version to put delta %s over", dir,
                   version);
        goto done;
    }

    /* over the version nginx serves, as its metadata names it */
    if (strcmp(s.delta_of, live.version) != 0) {
        pred_error("%s: refused: a delta of version %s, and version %s is "
                   "live (build it with --delta-of %s)", path, s.delta_of,
                   live.version, live.version);
        goto done;
    }

    if (strcmp(s.base_checksum, live.checksum) != 0) {
        pred_error("%s: refused: built over another version %s (%s), the "
                   "live one is %s: build it again", path, s.delta_of,
                   s.base_checksum, live.checksum);
        goto done;
    }

    if (pred_link_read(dir, PRED_DELTA_LINK, old, sizeof(old)) != 0) {
        old[0] = '\0';
    }

    if (pred_delta_stack(dir, cur, &stack) != 0) {
        memset(&stack, 0, sizeof(pred_delta_stack_t));
        /* cur named a valid base: it fits */
        snprintf(stack.base, sizeof(stack.base), "%.*s",
                 (int) sizeof(stack.base) - 1, cur);
    }

    for (i = 0; i < stack.n; i++) {
        if (strcmp(stack.layer[i], file) == 0) {
            printf("delta %s is already live over %s\n", version,
                   live.version);
            rc = PRED_EXIT_OK;
            goto done;
        }
    }

    if (stack.n == PRED_DELTA_MAX) {
        pred_error("%s: refused: %d deltas over version %s already "
                   "(\"compact %s\" merges them into a new base)", path,
                   PRED_DELTA_MAX, live.version, dir);
        goto done;
    }

    memcpy(stack.layer[stack.n++], file, sizeof(file));

    if (pred_delta_format_link(&stack, text, sizeof(text)) != 0
        || pred_link_set(dir, PRED_DELTA_LINK, text) != 0)
    {
        goto done;
    }

    /* a publish that may not survive a crash must not look done */
    if (pred_fsync_path(dir, 1) != 0) {
        pred_link_restore(dir, PRED_DELTA_LINK, old);
        goto done;
    }

    printf("published delta %s over %s (%" PRIu64 " upserts, %" PRIu64
           " deletions), %zu layer%s\n", version, live.version,
           s.entries - s.deletes, s.deletes, stack.n,
           stack.n == 1 ? "" : "s");

    rc = PRED_EXIT_OK;

done:

    pred_snap_close(&s);

    if (live.env) {
        pred_snap_close(&live);
    }

    return rc;
}


/*
 * After a switch of the base from old to target (publish, rollback,
 * promote, compact): old's deltas are kept aside, as DIR/previous-layers,
 * so that a rollback to old brings them back, and target's, kept aside by
 * the switch that left it, come back.  Readers use a stack only over the
 * live file, whatever order they see these changes in.
 */
int
pred_delta_switch(const char *dir, const char *target, const char *old)
{
    int                 keep, back;
    char                version[PRED_SNAP_VERSION_MAX + 1];
    char                cur[PRED_DELTA_LINK_MAX + 1];
    char                prev[PRED_DELTA_LINK_MAX + 1];
    pred_delta_stack_t  cs, ps;

    if (pred_link_read(dir, PRED_DELTA_LINK, cur, sizeof(cur)) != 0) {
        cur[0] = '\0';
    }

    if (pred_link_read(dir, PRED_DELTA_PREVIOUS, prev, sizeof(prev)) != 0) {
        prev[0] = '\0';
    }

    if (!cur[0] && !prev[0]) {
        return 0;
    }

    keep = (cur[0] && pred_delta_parse_link(cur, strlen(cur), &cs) == 0
            && strcmp(cs.base, old) == 0);
    back = (prev[0] && pred_delta_parse_link(prev, strlen(prev), &ps) == 0
            && strcmp(ps.base, target) == 0);

    if ((keep ? pred_link_set(dir, PRED_DELTA_PREVIOUS, cur)
              : pred_link_remove(dir, PRED_DELTA_PREVIOUS)) != 0
        || (back ? pred_link_set(dir, PRED_DELTA_LINK, prev)
                 : pred_link_remove(dir, PRED_DELTA_LINK)) != 0
        || pred_fsync_path(dir, 1) != 0)
    {
        return -1;
    }

    /* both named valid files: they have versions */
    if (keep) {
        (void) pred_delta_file_version(old, strlen(old), "snap-", version);
        printf("kept the %zu delta%s of %s aside for a rollback\n", cs.n,
               cs.n == 1 ? "" : "s", version);
    }

    if (back) {
        (void) pred_delta_file_version(target, strlen(target), "snap-",
                                       version);
        printf("the %zu delta%s of %s %s live again\n", ps.n,
               ps.n == 1 ? "" : "s", version, ps.n == 1 ? "is" : "are");
    }

    return 0;
}


/* list's lines for deltas: the live stack in order, then the others */
void
pred_delta_list(const char *dir, const char *cur)
{
    int                  i, count;
    char                 mark[128], text[PRED_DELTA_LINK_MAX + 1];
    size_t               k, j;
    struct dirent      **names;
    pred_delta_stack_t   stack, aside;

    if (pred_delta_stack(dir, cur, &stack) != 0) {
        stack.n = 0;
    }

    for (k = 0; k < stack.n; k++) {
        snprintf(mark, sizeof(mark), "layer %zu of %zu", k + 1, stack.n);
        pred_delta_list_one(dir, stack.layer[k], "+", mark);
    }

    count = scandir(dir, &names, NULL, alphasort);
    if (count < 0) {
        return;
    }

    if (pred_link_read(dir, PRED_DELTA_PREVIOUS, text, sizeof(text)) != 0
        || pred_delta_parse_link(text, strlen(text), &aside) != 0)
    {
        aside.n = 0;
    }

    for (i = 0; i < count; i++) {
        for (k = 0; k < stack.n; k++) {
            if (strcmp(stack.layer[k], names[i]->d_name) == 0) {
                break;
            }
        }

        for (j = 0; j < aside.n; j++) {
            if (strcmp(aside.layer[j], names[i]->d_name) == 0) {
                break;
            }
        }

        if (k == stack.n && strncmp(names[i]->d_name, "delta-", 6) == 0) {
            pred_delta_list_one(dir, names[i]->d_name, " ",
                                j < aside.n ? "kept for a rollback"
                                            : "not live");
        }

        free(names[i]);
    }

    free(names);
}


static void
pred_delta_list_one(const char *dir, const char *file, const char *star,
    const char *mark)
{
    char         path[4096], age[32], size[32], err[PRED_SNAP_ERR_MAX];
    char         version[PRED_SNAP_VERSION_MAX + 1];
    struct stat  st;
    pred_snap_t  s;

    if (pred_delta_file_version(file, strlen(file), "delta-", version) != 0)
    {
        return;
    }

    snprintf(path, sizeof(path), "%s/%s", dir, file);
    pred_format_size(size, sizeof(size),
                     stat(path, &st) == 0 ? st.st_size : 0);

    if (pred_snap_open(&s, path, 0, err, sizeof(err)) != 0) {
        printf("%s %-24s %12s %8s %9s  delta, %s, invalid: %s\n", star,
               version, "-", "-", size, mark, err);
        return;
    }

    pred_format_age(age, sizeof(age), s.created_at);

    printf("%s %-24s %12" PRIu64 " %8s %9s  delta of %s, %s\n", star,
           version, s.entries, age, size, s.delta_of, mark);

    pred_snap_close(&s);
}


/*
 * gc: a delta can only ever go over the version it was built on, while
 * that version is live: deltas of versions other than the live and the
 * previous one (a rollback brings its deltas back) are removed.
 */
int
pred_delta_gc(const char *dir, const char *cur, const char *prev)
{
    int              i, count, rc;
    char             path[4096], err[PRED_SNAP_ERR_MAX];
    char             version[PRED_SNAP_VERSION_MAX + 1];
    char             base[PRED_SNAP_VERSION_MAX + 1];
    char             before[PRED_SNAP_VERSION_MAX + 1];
    pred_snap_t      s;
    struct dirent  **names;

    if (pred_delta_file_version(cur, strlen(cur), "snap-", base) != 0) {
        base[0] = '\0';
    }

    if (pred_delta_file_version(prev, strlen(prev), "snap-", before) != 0) {
        before[0] = '\0';
    }

    count = scandir(dir, &names, NULL, alphasort);
    if (count < 0) {
        pred_error("%s: %s", dir, strerror(errno));
        return -1;
    }

    rc = 0;

    for (i = 0; i < count; i++) {
        if (pred_delta_file_version(names[i]->d_name,
                                    strlen(names[i]->d_name), "delta-",
                                    version) != 0)
        {
            continue;
        }

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);

        /* a file that cannot be read is left for a person to look at */
        if (pred_snap_open(&s, path, 0, err, sizeof(err)) != 0) {
            continue;
        }

        if (strcmp(s.delta_of, base) != 0
            && strcmp(s.delta_of, before) != 0)
        {
            if (unlink(path) == -1) {
                pred_error("%s: %s", path, strerror(errno));
                rc = -1;

            } else {
                printf("removed %s (a delta of %s)\n", names[i]->d_name,
                       s.delta_of);
            }
        }

        pred_snap_close(&s);
    }

    for (i = 0; i < count; i++) {
        free(names[i]);
    }

    free(names);

    return rc;
}


/* "info DIR": the live version's deltas, oldest first */
void
pred_delta_info(const char *dir)
{
    char                cur[256], version[PRED_SNAP_VERSION_MAX + 1];
    size_t              i;
    pred_delta_stack_t  stack;

    if (pred_link_read(dir, PRED_LINK_CURRENT, cur, sizeof(cur)) != 0
        || pred_delta_stack(dir, cur, &stack) != 0)
    {
        return;
    }

    printf("deltas:");

    for (i = 0; i < stack.n; i++) {
        (void) pred_delta_file_version(stack.layer[i],
                                       strlen(stack.layer[i]), "delta-",
                                       version);
        printf("%s %s", i ? "," : "", version);
    }

    printf("\n");
}


/*
 * "get DIR KEY": the newest live delta that has the key answers; an exit
 * code, or -1 when none has it (the base answers then).
 */
int
pred_delta_get(const char *dir, const char *key)
{
    int                 rc;
    char                cur[256], path[4096], err[PRED_SNAP_ERR_MAX];
    void               *val;
    size_t              i, len;
    pred_snap_t         s;
    pred_delta_stack_t  stack;

    if (pred_link_read(dir, PRED_LINK_CURRENT, cur, sizeof(cur)) != 0
        || pred_delta_stack(dir, cur, &stack) != 0)
    {
        return -1;
    }

    for (i = stack.n; i-- > 0; /* void */) {
        snprintf(path, sizeof(path), "%s/%s", dir, stack.layer[i]);

        if (pred_open_verified(path, &s, 0) != 0) {
            return PRED_EXIT_FAIL;
        }

        rc = pred_snap_get(&s, key, strlen(key), pred_delta_alloc, NULL,
                           &val, &len, err, sizeof(err));
        pred_snap_close(&s);

        if (rc == 0) {
            continue;
        }

        if (rc != 1) {
            pred_error("%s: %s", path, err);
            return PRED_EXIT_FAIL;
        }

        if (len == 0) {
            pred_error("%s: key \"%s\" is deleted by delta %s", dir, key,
                       s.version);
            free(val);
            return PRED_EXIT_FAIL;
        }

        fwrite(val, 1, len, stdout);
        fputc('\n', stdout);
        free(val);

        return PRED_EXIT_OK;
    }

    return -1;
}


static void *
pred_delta_alloc(void *ctx, size_t size)
{
    (void) ctx;

    return malloc(size);
}


/* "compact DIR [--version V]" */
int
pred_cmd_compact(int argc, char **argv)
{
    char                cur[256], text[256];
    const char         *version;
    pred_delta_stack_t  stack;

    if (argc == 4 && strcmp(argv[2], "--version") == 0) {
        if (!pred_snap_valid_version(argv[3])) {
            return pred_usage_error("compact: invalid version \"%s\"",
                                    argv[3]);
        }

        version = argv[3];

    } else if (argc == 2) {
        version = NULL;

    } else {
        return pred_usage_error("compact: use \"compact DIR [--version V]\"");
    }

    if (pred_dir_lock(argv[1]) != 0) {
        return PRED_EXIT_FAIL;
    }

    if (pred_link_read(argv[1], PRED_LINK_CURRENT, cur, sizeof(cur)) != 0) {
        pred_error("%s: no live version", argv[1]);
        return PRED_EXIT_FAIL;
    }

    /* a publish would end the canary: that is the operator's decision */
    if (pred_link_read(argv[1], PRED_CANARY_LINK, text, sizeof(text)) == 0) {
        pred_error("%s: a canary is running: promote or abort it first",
                   argv[1]);
        return PRED_EXIT_FAIL;
    }

    if (pred_delta_stack(argv[1], cur, &stack) != 0) {
        pred_error("%s: nothing to compact: no deltas over the live %s",
                   argv[1], cur);
        return PRED_EXIT_FAIL;
    }

    return pred_delta_compact(argv[1], cur, &stack, version);
}


/* the stack over cur, from DIR/layers; -1 when there is none */
static int
pred_delta_stack(const char *dir, const char *cur, pred_delta_stack_t *stack)
{
    char  text[PRED_DELTA_LINK_MAX + 1];

    if (pred_link_read(dir, PRED_DELTA_LINK, text, sizeof(text)) != 0) {
        return -1;
    }

    if (pred_delta_parse_link(text, strlen(text), stack) != 0) {
        pred_error("%s/%s: not a delta layers pointer: \"%s\"", dir,
                   PRED_DELTA_LINK, text);
        return -1;
    }

    return strcmp(stack->base, cur) == 0 ? 0 : -1;
}


/*
 * The stack into one new base: the base's records in key order, merged
 * with the deltas' (held in memory: deltas are small by design), newest
 * delta first; then published, which drops the stack.  The content is
 * what a build of the merged input gives, so the checksum is the same.
 *
 * The new base is as of the old base's time, and each key a delta changed
 * as of that delta's (its "as_of" database): admin writes give way to
 * exactly what they gave way to before, key by key, so a compaction
 * changes no answer.
 */
static int
pred_delta_compact(const char *dir, const char *cur,
    pred_delta_stack_t *stack, const char *version)
{
    int                  rc, i;
    char                 path[4096], tmp[4096], final[4096], file[256];
    char                 err[PRED_SNAP_ERR_MAX], owner[256], sum[32];
    char                 invalidated[256], *inputs[PRED_DELTA_MAX + 1];
    char                 names[PRED_DELTA_MAX + 1][PRED_DELTA_FILE_MAX];
    size_t               j;
    uint64_t             bytes;
    pred_snap_t          base, layer;
    pred_writer_t        writer;
    pred_build_opts_t    o;
    pred_delta_recs_t    recs;
    pred_delta_merge_t   m;
    pred_key_time_t     *keys;
    pred_delta_recs_t    times;

    keys = NULL;
    memset(&times, 0, sizeof(pred_delta_recs_t));
    memset(&recs, 0, sizeof(pred_delta_recs_t));
    memset(&m, 0, sizeof(pred_delta_merge_t));
    memset(&writer, 0, sizeof(pred_writer_t));
    memset(&o, 0, sizeof(pred_build_opts_t));

    snprintf(path, sizeof(path), "%s/%s", dir, cur);

    if (pred_open_verified(path, &base, 0) != 0) {
        return PRED_EXIT_FAIL;
    }

    rc = PRED_EXIT_FAIL;
    tmp[0] = '\0';
    bytes = base.file_size;

    o.as_of = base.as_of;
    memcpy(names[0], stack->base, sizeof(names[0]));

    /* newest first: the first record of a key is the one that counts */
    for (i = (int) stack->n - 1; i >= 0; i--) {
        snprintf(path, sizeof(path), "%s/%s", dir, stack->layer[i]);

        /* small, and trusted with every key they change: fully checked */
        if (pred_open_verified(path, &layer, 1) != 0) {
            goto done;
        }

        recs.layer = stack->n - i;
        recs.as_of = layer.as_of;
        bytes += layer.file_size;

        if (pred_snap_each(&layer, PRED_SNAP_EACH_DATA, pred_delta_collect,
                           &recs, err, sizeof(err))
            != 0)
        {
            pred_error("%s: %s", path, err);
            pred_snap_close(&layer);
            goto done;
        }

        pred_snap_close(&layer);
        memcpy(names[i + 1], stack->layer[i], sizeof(names[0]));
    }

    /* one record per key: the newest layer's, as of that layer's time */
    pred_delta_unique(&recs, 0);

    /* the keys newer than the base: the base's own, then the deltas' */
    if (pred_snap_each(&base, PRED_SNAP_EACH_AS_OF, pred_delta_time_collect,
                       &times, err, sizeof(err))
        != 0)
    {
        pred_error("%s/%s: %s", dir, cur, err);
        goto done;
    }

    for (j = 0; j < recs.n; j++) {
        if (recs.recs[j].as_of > base.as_of
            && pred_delta_add(&times, recs.recs[j].key, recs.recs[j].klen,
                              "", 0, recs.recs[j].as_of)
               != 0)
        {
            pred_error("out of memory");
            goto done;
        }
    }

    pred_delta_unique(&times, 1);

    if (times.n) {
        keys = malloc(times.n * sizeof(pred_key_time_t));
        if (keys == NULL) {
            pred_error("out of memory");
            goto done;
        }

        for (j = 0; j < times.n; j++) {
            keys[j].key = times.recs[j].key;
            keys[j].klen = times.recs[j].klen;
            keys[j].as_of = times.recs[j].as_of;
        }
    }

    o.key_as_of = keys;
    o.nkey_as_of = times.n;

    /* what a build would record, the base's settings kept */
    o.dir = (char *) dir;
    o.version = (char *) version;
    o.fallback = pred_snap_fallback_name(base.fallback);
    o.freshness_sla = base.freshness_sla;

    if (pred_snap_meta(&base, PRED_SNAP_META_OWNER, owner, sizeof(owner))
        == 1)
    {
        o.owner = owner;
    }

    if (pred_snap_meta(&base, PRED_SNAP_META_INVALIDATED, invalidated,
                       sizeof(invalidated)) == 1)
    {
        o.invalidated_by = invalidated;
    }

    for (j = 0; j <= stack->n; j++) {
        inputs[j] = names[j];
    }

    o.inputs = inputs;
    o.ninputs = stack->n + 1;

    pred_build_defaults(&o);

    /*
     * As old as the base: a key the deltas changed then reports an age
     * older than its own, never a base key one younger than it is (which
     * would hide that it is stale).
     */
    o.created_at = base.created_at;

    if (pred_snap_file(final, sizeof(final), dir, o.version) != 0
        || pred_delta_file(path, sizeof(path), dir, o.version) != 0
        || snprintf(tmp, sizeof(tmp), "%s/.snap-%s.mdb.%d.tmp", dir,
                    o.version, (int) getpid()) >= (int) sizeof(tmp))
    {
        pred_error("%s: path too long", dir);
        tmp[0] = '\0';
        goto done;
    }

    if (access(final, F_OK) == 0 || access(path, F_OK) == 0) {
        pred_error("%s: version \"%s\" already exists", dir, o.version);
        tmp[0] = '\0';
        goto done;
    }

    if (pred_writer_open(&writer, tmp, base.entries + recs.n, bytes) != 0) {
        goto done;
    }

    m.deltas = &recs;
    m.writer = &writer;
    m.hash = PRED_SNAP_FNV_INIT;

    if (pred_snap_each(&base, PRED_SNAP_EACH_DATA, pred_delta_merge, &m,
                       err, sizeof(err))
        != 0)
    {
        pred_error("%s/%s: %s", dir, cur, err);
        goto done;
    }

    /* read in full anyway: a damaged base is not passed on as valid */
    snprintf(sum, sizeof(sum), "fnv1a64:%016" PRIx64, m.hash);

    if (strcmp(sum, base.checksum) != 0) {
        pred_error("%s/%s: its content is %s, its metadata says %s: not "
                   "compacted", dir, cur, sum, base.checksum);
        goto done;
    }

    /* the deltas' keys after the base's last */
    for ( /* void */ ; m.next < recs.n; m.next++) {
        pred_delta_rec_t  *d = &recs.recs[m.next];

        if (d->vlen && pred_delta_write(&m, d->key, d->klen, d->val, d->vlen)
                       != 0)
        {
            goto done;
        }
    }

    if (m.written == 0) {
        pred_error("%s: the deltas delete every key: nothing to compact "
                   "into", dir);
        goto done;
    }

    if (pred_writer_commit(&writer, &o) != 0) {
        goto done;
    }

    pred_writer_close(&writer);

    if (pred_fsync_path(tmp, 0) != 0) {
        goto done;
    }

    if (link(tmp, final) == -1) {
        pred_error("%s: %s", final, strerror(errno));
        goto done;
    }

    if (pred_fsync_path(dir, 1) != 0) {
        unlink(final);
        goto done;
    }

    printf("compacted %s and %zu delta%s into %s: %" PRIu64 " entries\n",
           cur, stack->n, stack->n == 1 ? "" : "s", o.version, m.written);

    snprintf(file, sizeof(file), "snap-%s.mdb", o.version);

    pred_snap_close(&base);
    base.env = NULL;

    rc = pred_switch(dir, file, "published", 1);

    /* not live: the version name stays free for the next try */
    if (rc != PRED_EXIT_OK
        && (pred_link_read(dir, PRED_LINK_CURRENT, path, sizeof(path)) != 0
            || strcmp(path, file) != 0))
    {
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        (void) unlink(path);
    }

done:

    pred_writer_close(&writer);

    if (tmp[0]) {
        unlink(tmp);
    }

    if (base.env) {
        pred_snap_close(&base);
    }

    for (j = 0; j < recs.n; j++) {
        free(recs.recs[j].key);
    }

    free(recs.recs);

    for (j = 0; j < times.n; j++) {
        free(times.recs[j].key);
    }

    free(times.recs);
    free(keys);
    pred_buf_free(&m.rec);

    return rc;
}


static int
pred_delta_collect(void *ctx, const void *key, size_t key_len,
    const void *val, size_t val_len, char *err, size_t errlen)
{
    pred_delta_recs_t  *recs = ctx;

    if (pred_delta_add(recs, key, key_len, val, val_len, recs->as_of) != 0) {
        return pred_snap_errorf(err, errlen, "out of memory");
    }

    return 0;
}


/* an entry of the base's "as_of" database (verified: digits) */
static int
pred_delta_time_collect(void *ctx, const void *key, size_t key_len,
    const void *val, size_t val_len, char *err, size_t errlen)
{
    uint64_t  u;

    if (pred_snap_parse_u64n(val, val_len, &u) != 0) {
        return pred_snap_errorf(err, errlen, "an as_of value is invalid");
    }

    if (pred_delta_add(ctx, key, key_len, "", 0, (time_t) u) != 0) {
        return pred_snap_errorf(err, errlen, "out of memory");
    }

    return 0;
}


/* a copy of a record, in the layer being read (recs->layer) */
static int
pred_delta_add(pred_delta_recs_t *recs, const void *key, size_t key_len,
    const void *val, size_t val_len, time_t as_of)
{
    size_t             size;
    pred_delta_rec_t  *r;

    if (recs->n == recs->size) {
        size = recs->size ? recs->size * 2 : 1024;

        r = realloc(recs->recs, size * sizeof(pred_delta_rec_t));
        if (r == NULL) {
            return -1;
        }

        recs->recs = r;
        recs->size = size;
    }

    r = &recs->recs[recs->n];

    /* key and value in one block, freed by the key */
    r->key = malloc(key_len + val_len + 1);
    if (r->key == NULL) {
        return -1;
    }

    memcpy(r->key, key, key_len);
    r->klen = key_len;
    r->val = r->key + key_len;
    memcpy(r->val, val, val_len);
    r->vlen = val_len;
    r->layer = recs->layer;
    r->as_of = as_of;

    recs->n++;

    return 0;
}


/*
 * Sorts by key, newest layer first, and keeps one record per key: the
 * newest layer's, as of its layer's time, as nginx reads a stack (newest:
 * the newest time any record of the key had, for merging per-key times).
 */
static void
pred_delta_unique(pred_delta_recs_t *recs, int newest)
{
    size_t             j, n;
    pred_delta_rec_t  *r;

    /* qsort() may not be given NULL, even for nothing */
    if (recs->n == 0) {
        return;
    }

    qsort(recs->recs, recs->n, sizeof(pred_delta_rec_t), pred_delta_rec_cmp);

    r = recs->recs;

    for (j = 0, n = 0; j < recs->n; j++) {
        if (n && pred_delta_key_cmp(r[n - 1].key, r[n - 1].klen, r[j].key,
                                    r[j].klen) == 0)
        {
            if (newest && r[j].as_of > r[n - 1].as_of) {
                r[n - 1].as_of = r[j].as_of;
            }

            free(r[j].key);
            continue;
        }

        r[n++] = r[j];
    }

    recs->n = n;
}


/* key order (LMDB's: bytes, then length), then the newest layer first */
static int
pred_delta_rec_cmp(const void *a, const void *b)
{
    int                      c;
    const pred_delta_rec_t  *x = a, *y = b;

    c = pred_delta_key_cmp(x->key, x->klen, y->key, y->klen);

    if (c != 0) {
        return c;
    }

    return x->layer < y->layer ? -1 : (x->layer > y->layer);
}


static int
pred_delta_key_cmp(const void *k1, size_t l1, const void *k2, size_t l2)
{
    int  c;

    c = memcmp(k1, k2, l1 < l2 ? l1 : l2);

    if (c != 0) {
        return c;
    }

    return l1 < l2 ? -1 : (l1 > l2);
}


/* one base record: the deltas' keys before it, then it or its change */
static int
pred_delta_merge(void *ctx, const void *key, size_t key_len,
    const void *val, size_t val_len, char *err, size_t errlen)
{
    pred_delta_merge_t  *m = ctx;

    int                c;
    pred_delta_rec_t  *d;

    /* the base's own checksum, checked before the new base is kept */
    m->hash = pred_snap_hash_record(m->hash, key, key_len, val, val_len);

    while (m->next < m->deltas->n) {
        d = &m->deltas->recs[m->next];
        c = pred_delta_key_cmp(d->key, d->klen, key, key_len);

        if (c > 0) {
            break;
        }

        m->next++;

        /* a deletion of a key the base does not have changes nothing */
        if (d->vlen
            && pred_delta_write(m, d->key, d->klen, d->val, d->vlen) != 0)
        {
            return pred_snap_errorf(err, errlen, "writing the new base "
                                    "failed");
        }

        if (c == 0) {
            return 0;
        }
    }

    if (pred_delta_write(m, key, key_len, val, val_len) != 0) {
        return pred_snap_errorf(err, errlen, "writing the new base failed");
    }

    return 0;
}


static int
pred_delta_write(pred_delta_merge_t *m, const void *key, size_t klen,
    const void *val, size_t vlen)
{
    pred_rec_t  *r;

    if (pred_buf_reserve(&m->rec, sizeof(pred_rec_t) + klen + vlen) != 0) {
        pred_error("out of memory");
        return -1;
    }

    r = (pred_rec_t *) m->rec.data;
    memset(r, 0, sizeof(pred_rec_t));
    r->klen = klen;
    r->vlen = vlen;
    memcpy(pred_rec_key(r), key, klen);
    memcpy(pred_rec_val(r), val, vlen);

    if (pred_writer_append(m->writer, r) != 0) {
        return -1;
    }

    m->written++;

    return 0;
}
