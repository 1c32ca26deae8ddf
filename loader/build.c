/*
 * pred-snapshot build: JSON Lines in, one validated snapshot file out.
 *
 * Records are parsed into an arena, sorted, and spilled to run files when
 * the arena passes the memory budget; the runs are then merged in key order
 * and appended to LMDB (MDB_APPEND fills pages sequentially, which is what
 * makes the build faster than random puts).  Nothing is visible under the
 * final name until every check has passed.
 */

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <zlib.h>
#include <jansson.h>

#include "pred_key.h"
#include "pred_snap.h"
#include "jsonl.h"
#include "loader.h"


#define PRED_ARENA_BLOCK     (16 * 1024 * 1024)
#define PRED_READ_CHUNK      (1024 * 1024)
#define PRED_LINE_MAX        (64 * 1024 * 1024)
#define PRED_COMMIT_EVERY    65536
#define PRED_MEMORY_DEFAULT  ((size_t) 512 * 1024 * 1024)


typedef struct {
    uint32_t  klen;
    uint32_t  vlen;
    uint32_t  file;
    uint32_t  pad;
    uint64_t  line;
    /* key bytes, then value bytes */
} pred_rec_t;

#define pred_rec_key(r)  ((char *) (r) + sizeof(pred_rec_t))
#define pred_rec_val(r)  (pred_rec_key(r) + (r)->klen)
#define pred_rec_size(r) (sizeof(pred_rec_t) + (r)->klen + (r)->vlen)


typedef struct pred_block_s  pred_block_t;

struct pred_block_s {
    pred_block_t  *next;
    size_t         used;
    size_t         size;
    /* data follows */
};


typedef struct {
    FILE          *fp;          /* a spilled run, or NULL: the memory run */
    pred_rec_t   **recs;
    size_t         nrecs;
    size_t         pos;
    pred_buf_t     buf;
    pred_rec_t    *cur;
} pred_run_t;


typedef struct {
    char               *dir;
    char               *version;
    char              **inputs;
    size_t              ninputs;
    int                 no_success_marker;
    int                 dedupe;
    int                 quiet;
    uint64_t            min_entries;
    int                 max_shrink;       /* percent, -1: off */
    uint64_t            freshness_sla;
    const char         *owner;
    const char         *invalidated_by;
    const char         *fallback;
    time_t              created_at;
    size_t              memory;
    pred_jsonl_opts_t   jsonl;
} pred_build_opts_t;


typedef struct {
    pred_build_opts_t  *opts;

    char              **files;          /* every file read, for messages */
    size_t              nfiles;
    uint64_t            total_bytes;    /* on disk, for the progress line */
    uint64_t            read_bytes;     /* of files already read */

    pred_block_t       *blocks;
    pred_block_t       *block;
    size_t              arena_used;
    pred_rec_t        **recs;
    size_t              nrecs;
    size_t              recs_size;
    uint64_t            parsed;
    uint64_t            data_bytes;

    char              **runs;           /* spilled run file names */
    size_t              nruns;

    uint64_t            written;
    uint64_t            hash;

    struct timespec     started;
    double              last_progress;
} pred_build_t;


static int pred_build_parse_args(int argc, char **argv,
    pred_build_opts_t *o);
static int pred_build_add_input(pred_build_t *b, const char *arg);
static int pred_build_add_dir(pred_build_t *b, const char *dir);
static int pred_build_add_file(pred_build_t *b, const char *path);
static int pred_build_read(pred_build_t *b, uint32_t file);
static int pred_build_record(pred_build_t *b, uint32_t file, uint64_t line,
    pred_buf_t *key, pred_buf_t *val);
static int pred_build_spill(pred_build_t *b);
static int pred_build_run(pred_build_opts_t *opts);
static int pred_build_write(pred_build_t *b, const char *tmp);
static const char *pred_build_lmdb_error(MDB_env *env, int rc, char *buf,
    size_t size);
static int pred_build_merge(pred_build_t *b, MDB_env *env, MDB_dbi dbi,
    MDB_txn **txn);
static int pred_build_put_meta(pred_build_t *b, MDB_txn *txn,
    MDB_dbi dbi);
static int pred_build_put(MDB_txn *txn, MDB_dbi dbi, const char *name,
    const char *value);
static int pred_build_check_shrink(pred_build_t *b);
static int pred_rec_cmp(const pred_rec_t *a, const pred_rec_t *b);
static int pred_rec_qsort_cmp(const void *a, const void *b);
static int pred_run_next(pred_run_t *run);
static void pred_heap_down(pred_run_t **heap, size_t n, size_t i);
static void pred_build_progress(pred_build_t *b, const char *phase,
    uint64_t done);
static double pred_build_elapsed(pred_build_t *b);
static void pred_build_cleanup(pred_build_t *b);
static void pred_build_on_signal(int signo);
static int pred_fsync_path(const char *path, int dir);


/* what a signal handler must remove; only async-signal-safe use */
static char  *pred_tmp_paths[1024];
static size_t pred_ntmp_paths;


int
pred_cmd_build(int argc, char **argv)
{
    int                rc;
    size_t             i;
    pred_build_opts_t  o;

    rc = pred_build_parse_args(argc, argv, &o);

    if (rc == PRED_EXIT_OK) {
        rc = pred_build_run(&o);
    }

    for (i = 0; i < o.jsonl.nranges; i++) {
        free((char *) o.jsonl.ranges[i].field);
    }

    free(o.inputs);
    free(o.jsonl.require);
    free(o.jsonl.ranges);

    return rc;
}


static int
pred_build_run(pred_build_opts_t *opts)
{
    int                 rc;
    char                tmp[4096], final[4096];
    size_t              i;
    pred_build_t        b;
    struct stat         st;
    pred_build_opts_t   o;
    struct sigaction    sa;

    o = *opts;

    memset(&b, 0, sizeof(pred_build_t));
    b.opts = &o;
    b.hash = PRED_SNAP_FNV_INIT;
    clock_gettime(CLOCK_MONOTONIC, &b.started);

    if (stat(o.dir, &st) == -1 || !S_ISDIR(st.st_mode)) {
        pred_error("%s: not a directory", o.dir);
        return PRED_EXIT_FAIL;
    }

    if (pred_snap_file(final, sizeof(final), o.dir, o.version) != 0
        || snprintf(tmp, sizeof(tmp), "%s/.snap-%s.mdb.%d.tmp", o.dir,
                    o.version, (int) getpid()) >= (int) sizeof(tmp))
    {
        pred_error("%s: path too long", o.dir);
        return PRED_EXIT_FAIL;
    }

    if (access(final, F_OK) == 0) {
        pred_error("%s: version \"%s\" already exists", final, o.version);
        return PRED_EXIT_FAIL;
    }

    for (i = 0; i < o.ninputs; i++) {
        if (pred_build_add_input(&b, o.inputs[i]) != 0) {
            return PRED_EXIT_FAIL;
        }
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = pred_build_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    pred_tmp_paths[pred_ntmp_paths++] = tmp;

    rc = PRED_EXIT_FAIL;

    for (i = 0; i < b.nfiles; i++) {
        if (pred_build_read(&b, i) != 0) {
            goto done;
        }
    }

    if (pred_build_write(&b, tmp) != 0) {
        goto done;
    }

    if (b.written == 0) {
        pred_error("no entries in the input");
        goto done;
    }

    if (b.written < o.min_entries) {
        pred_error("%" PRIu64 " entries, fewer than --min-entries %" PRIu64,
                   b.written, o.min_entries);
        goto done;
    }

    if (pred_build_check_shrink(&b) != 0) {
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

    if (pred_fsync_path(o.dir, 1) != 0) {
        unlink(final);
        goto done;
    }

    pred_build_progress(&b, NULL, 0);

    printf("built %s: %" PRIu64 " entries in %.2f s\n", final, b.written,
           pred_build_elapsed(&b));

    rc = PRED_EXIT_OK;

done:

    pred_build_cleanup(&b);

    return rc;
}


static int
pred_build_parse_args(int argc, char **argv, pred_build_opts_t *o)
{
    int          i;
    char        *arg, *val, *eq, vbuf[32];
    uint64_t     u;
    time_t       now;
    struct tm    tm;
    static char  version[32];

    memset(o, 0, sizeof(pred_build_opts_t));
    o->max_shrink = -1;
    o->memory = PRED_MEMORY_DEFAULT;
    o->fallback = "serve";
    o->jsonl.key_field = "key";
    o->jsonl.value_field = "value";

    o->inputs = calloc(argc, sizeof(char *));
    o->jsonl.require = calloc(argc, sizeof(char *));
    o->jsonl.ranges = calloc(argc, sizeof(pred_jsonl_range_t));

    if (o->inputs == NULL || o->jsonl.require == NULL
        || o->jsonl.ranges == NULL)
    {
        pred_error("out of memory");
        return PRED_EXIT_FAIL;
    }

    for (i = 1; i < argc; i++) {
        arg = argv[i];

        if (strncmp(arg, "--", 2) != 0) {
            if (o->dir) {
                return pred_usage_error("build: unexpected argument \"%s\"",
                                        arg);
            }

            o->dir = arg;
            continue;
        }

        /* flags without a value */

        if (strcmp(arg, "--no-success-marker") == 0) {
            o->no_success_marker = 1;
            continue;
        }

        if (strcmp(arg, "--dedupe") == 0) {
            o->dedupe = 1;
            continue;
        }

        if (strcmp(arg, "--quiet") == 0) {
            o->quiet = 1;
            continue;
        }

        /* options with a value: "--opt value" or "--opt=value" */

        eq = strchr(arg, '=');
        if (eq) {
            *eq = '\0';
            val = eq + 1;

        } else if (i + 1 < argc) {
            val = argv[++i];

        } else {
            return pred_usage_error("build: %s needs a value", arg);
        }

        if (strcmp(arg, "--input") == 0) {
            o->inputs[o->ninputs++] = val;

            /* --input takes every following argument up to the next option */
            while (!eq && i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
                o->inputs[o->ninputs++] = argv[++i];
            }

        } else if (strcmp(arg, "--version") == 0) {
            if (!pred_snap_valid_version(val)) {
                return pred_usage_error("build: invalid version \"%s\": use "
                                        "1 to 64 of A-Z a-z 0-9 . _ -", val);
            }
            o->version = val;

        } else if (strcmp(arg, "--key-field") == 0) {
            o->jsonl.key_field = val;

        } else if (strcmp(arg, "--value-field") == 0) {
            o->jsonl.value_field = val;

        } else if (strcmp(arg, "--min-entries") == 0) {
            if (pred_snap_parse_u64(val, &o->min_entries) != 0) {
                return pred_usage_error("build: invalid --min-entries \"%s\"",
                                        val);
            }

        } else if (strcmp(arg, "--max-shrink") == 0) {
            if (pred_snap_parse_u64(val, &u) != 0 || u > 100) {
                return pred_usage_error("build: invalid --max-shrink \"%s\": "
                                        "a percentage, 0 to 100", val);
            }
            o->max_shrink = (int) u;

        } else if (strcmp(arg, "--require-field") == 0) {
            o->jsonl.require[o->jsonl.nrequire++] = val;

        } else if (strcmp(arg, "--range") == 0) {
            if (pred_jsonl_parse_range(val,
                                       &o->jsonl.ranges[o->jsonl.nranges])
                != 0)
            {
                return pred_usage_error("build: invalid --range \"%s\": use "
                                        "FIELD:MIN:MAX", val);
            }
            o->jsonl.nranges++;

        } else if (strcmp(arg, "--freshness-sla") == 0) {
            if (pred_parse_duration(val, &o->freshness_sla) != 0) {
                return pred_usage_error("build: invalid --freshness-sla "
                                        "\"%s\": use e.g. 90s, 30m, 6h, 1d",
                                        val);
            }

        } else if (strcmp(arg, "--owner") == 0) {
            o->owner = val;

        } else if (strcmp(arg, "--invalidated-by") == 0) {
            o->invalidated_by = val;

        } else if (strcmp(arg, "--fallback-if-stale") == 0) {
            if (pred_snap_parse_fallback(val, &(pred_snap_stale_t) {0}) != 0)
            {
                return pred_usage_error("build: invalid --fallback-if-stale "
                                        "\"%s\": use serve, upstream or fail",
                                        val);
            }
            o->fallback = val;

        } else if (strcmp(arg, "--memory") == 0) {
            if (pred_parse_size(val, &o->memory) != 0
                || o->memory < 16 * 1024 * 1024)
            {
                return pred_usage_error("build: invalid --memory \"%s\": "
                                        "use e.g. 512M or 2G (16M at least)",
                                        val);
            }

        } else {
            return pred_usage_error("build: unknown option \"%s\"", arg);
        }
    }

    if (o->dir == NULL) {
        return pred_usage_error("build: the snapshot directory is missing");
    }

    if (o->ninputs == 0) {
        return pred_usage_error("build: --input is missing");
    }

    /* the reproducible-builds convention; also how tests pin a file's age */
    now = time(NULL);
    val = getenv("SOURCE_DATE_EPOCH");

    if (val && pred_snap_parse_u64(val, &u) == 0) {
        now = (time_t) u;
    }

    o->created_at = now;

    if (o->version == NULL) {
        gmtime_r(&now, &tm);
        strftime(vbuf, sizeof(vbuf), "%Y%m%dT%H%M%SZ", &tm);
        memcpy(version, vbuf, sizeof(vbuf));
        o->version = version;
    }

    return PRED_EXIT_OK;
}


static int
pred_build_add_input(pred_build_t *b, const char *arg)
{
    int          rc;
    size_t       i;
    glob_t       g;
    struct stat  st;

    if (strcmp(arg, "-") == 0) {
        return pred_build_add_file(b, "-");
    }

    if (stat(arg, &st) == 0) {
        return S_ISDIR(st.st_mode) ? pred_build_add_dir(b, arg)
                                   : pred_build_add_file(b, arg);
    }

    /* a quoted pattern reaches us unexpanded */
    if (strpbrk(arg, "*?[") == NULL) {
        pred_error("%s: %s", arg, strerror(errno));
        return -1;
    }

    rc = glob(arg, 0, NULL, &g);
    if (rc != 0) {
        pred_error("%s: %s", arg, rc == GLOB_NOMATCH ? "no file matches"
                                                     : "glob failed");
        return -1;
    }

    rc = 0;

    for (i = 0; i < g.gl_pathc && rc == 0; i++) {
        rc = pred_build_add_input(b, g.gl_pathv[i]);
    }

    globfree(&g);

    return rc;
}


/* a Spark/Ray output folder: its part-* files, once _SUCCESS says done */
static int
pred_build_add_dir(pred_build_t *b, const char *dir)
{
    int              i, n, rc;
    char             path[4096];
    struct dirent  **list;

    if (!b->opts->no_success_marker) {
        snprintf(path, sizeof(path), "%s/_SUCCESS", dir);

        if (access(path, F_OK) != 0) {
            pred_error("%s: no _SUCCESS marker, so the job that wrote it may "
                       "not have finished (--no-success-marker to read it "
                       "anyway)", dir);
            return -1;
        }
    }

    n = scandir(dir, &list, NULL, alphasort);
    if (n < 0) {
        pred_error("%s: %s", dir, strerror(errno));
        return -1;
    }

    rc = 0;

    for (i = 0; i < n; i++) {
        if (rc == 0 && strncmp(list[i]->d_name, "part-", 5) == 0) {
            snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
            rc = pred_build_add_file(b, path);
        }

        free(list[i]);
    }

    free(list);

    if (rc == 0 && b->nfiles == 0) {
        pred_error("%s: no part-* files", dir);
        return -1;
    }

    return rc;
}


static int
pred_build_add_file(pred_build_t *b, const char *path)
{
    char        **files;
    struct stat   st;

    files = realloc(b->files, (b->nfiles + 1) * sizeof(char *));
    if (files == NULL) {
        pred_error("out of memory");
        return -1;
    }

    b->files = files;
    b->files[b->nfiles] = strdup(path);

    if (b->files[b->nfiles] == NULL) {
        pred_error("out of memory");
        return -1;
    }

    b->nfiles++;

    if (strcmp(path, "-") != 0 && stat(path, &st) == 0) {
        b->total_bytes += st.st_size;
    }

    return 0;
}


static int
pred_build_read(pred_build_t *b, uint32_t file)
{
    int          n, rc;
    char        *buf, *p, *nl, *line, *grown, err[PRED_SNAP_ERR_MAX];
    size_t       size, have, len;
    gzFile       gz;
    uint64_t     lineno;
    pred_buf_t   key, val;
    const char  *name;

    name = b->files[file];

    gz = strcmp(name, "-") == 0 ? gzdopen(dup(STDIN_FILENO), "rb")
                                : gzopen(name, "rb");
    if (gz == NULL) {
        pred_error("%s: %s", name, strerror(errno));
        return -1;
    }

    gzbuffer(gz, 256 * 1024);

    size = PRED_READ_CHUNK;
    buf = malloc(size);
    memset(&key, 0, sizeof(key));
    memset(&val, 0, sizeof(val));

    if (buf == NULL) {
        gzclose(gz);
        pred_error("out of memory");
        return -1;
    }

    rc = -1;
    have = 0;
    lineno = 0;

    for ( ;; ) {
        n = gzread(gz, buf + have, size - have);

        if (n < 0) {
            pred_error("%s: read error: %s", name, gzerror(gz, &n));
            goto done;
        }

        have += n;
        p = buf;

        while ((nl = memchr(p, '\n', buf + have - p)) != NULL
               || (n == 0 && p < buf + have))
        {
            line = p;
            len = nl ? (size_t) (nl - p) : (size_t) (buf + have - p);
            p = nl ? nl + 1 : buf + have;
            lineno++;

            if (len && line[len - 1] == '\r') {
                len--;
            }

            while (len && (line[len - 1] == ' ' || line[len - 1] == '\t')) {
                len--;
            }

            if (len == 0) {
                continue;
            }

            if (pred_jsonl_parse(line, len, &b->opts->jsonl, &key, &val, err,
                                 sizeof(err))
                != 0)
            {
                pred_error("%s:%" PRIu64 ": %s", name, lineno, err);
                goto done;
            }

            if (pred_build_record(b, file, lineno, &key, &val) != 0) {
                goto done;
            }
        }

        if (n == 0) {
            break;
        }

        /* keep the partial last line; grow when one line fills the buffer */
        have = buf + have - p;
        memmove(buf, p, have);

        if (have == size) {
            if (size >= PRED_LINE_MAX) {
                pred_error("%s:%" PRIu64 ": line longer than %d MiB", name,
                           lineno + 1, PRED_LINE_MAX / (1024 * 1024));
                goto done;
            }

            grown = realloc(buf, size * 2);
            if (grown == NULL) {
                pred_error("out of memory");
                goto done;
            }

            buf = grown;
            size *= 2;
        }

        pred_build_progress(b, "reading", b->read_bytes + gzoffset(gz));
    }

    b->read_bytes += gzoffset(gz);
    rc = 0;

done:

    free(buf);
    pred_buf_free(&key);
    pred_buf_free(&val);
    gzclose(gz);

    return rc;
}


static int
pred_build_record(pred_build_t *b, uint32_t file, uint64_t line,
    pred_buf_t *key, pred_buf_t *val)
{
    size_t          need, size;
    pred_rec_t     *r, **recs;
    pred_block_t   *blk;

    need = sizeof(pred_rec_t) + key->len + val->len;
    need = (need + 7) & ~(size_t) 7;

    if (b->arena_used + b->recs_size * sizeof(pred_rec_t *) + need
        > b->opts->memory && b->nrecs)
    {
        if (pred_build_spill(b) != 0) {
            return -1;
        }
    }

    blk = b->block;

    if (blk == NULL || blk->size - blk->used < need) {
        /* reuse the blocks kept from before a spill */
        blk = blk ? blk->next : b->blocks;

        if (blk == NULL || blk->size < need) {
            size = need > PRED_ARENA_BLOCK ? need : PRED_ARENA_BLOCK;
            blk = malloc(sizeof(pred_block_t) + size);
            if (blk == NULL) {
                pred_error("out of memory");
                return -1;
            }

            blk->size = size;
            blk->next = b->block ? b->block->next : b->blocks;

            if (b->block) {
                b->block->next = blk;
            } else {
                b->blocks = blk;
            }
        }

        blk->used = 0;
        b->block = blk;
    }

    if (b->nrecs == b->recs_size) {
        size = b->recs_size ? b->recs_size * 2 : 65536;
        recs = realloc(b->recs, size * sizeof(pred_rec_t *));
        if (recs == NULL) {
            pred_error("out of memory");
            return -1;
        }

        b->recs = recs;
        b->recs_size = size;
    }

    r = (pred_rec_t *) ((char *) blk + sizeof(pred_block_t) + blk->used);
    blk->used += need;
    b->arena_used += need;

    r->klen = key->len;
    r->vlen = val->len;
    r->file = file;
    r->pad = 0;
    r->line = line;
    memcpy(pred_rec_key(r), key->data, key->len);
    memcpy(pred_rec_val(r), val->data, val->len);

    b->recs[b->nrecs++] = r;
    b->parsed++;
    b->data_bytes += key->len + val->len;

    return 0;
}


static int
pred_build_spill(pred_build_t *b)
{
    int      fd;
    char     path[4096], **runs;
    FILE    *fp;
    size_t   i;

    qsort(b->recs, b->nrecs, sizeof(pred_rec_t *), pred_rec_qsort_cmp);

    runs = realloc(b->runs, (b->nruns + 1) * sizeof(char *));
    if (runs == NULL) {
        pred_error("out of memory");
        return -1;
    }

    b->runs = runs;

    snprintf(path, sizeof(path), "%s/.pred-build.%d.run%zu", b->opts->dir,
             (int) getpid(), b->nruns);

    b->runs[b->nruns] = strdup(path);
    if (b->runs[b->nruns] == NULL) {
        pred_error("out of memory");
        return -1;
    }

    b->nruns++;

    if (pred_ntmp_paths < sizeof(pred_tmp_paths) / sizeof(char *)) {
        pred_tmp_paths[pred_ntmp_paths++] = b->runs[b->nruns - 1];
    }

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    fp = fd == -1 ? NULL : fdopen(fd, "wb");

    if (fp == NULL) {
        pred_error("%s: %s", path, strerror(errno));
        if (fd != -1) {
            close(fd);
        }
        return -1;
    }

    setvbuf(fp, NULL, _IOFBF, 1024 * 1024);

    for (i = 0; i < b->nrecs; i++) {
        if (fwrite(b->recs[i], pred_rec_size(b->recs[i]), 1, fp) != 1) {
            break;
        }
    }

    if (i < b->nrecs || fclose(fp) != 0) {
        pred_error("%s: write error: %s", path, strerror(errno));
        return -1;
    }

    b->nrecs = 0;
    b->arena_used = 0;
    b->block = NULL;

    return 0;
}


static int
pred_build_write(pred_build_t *b, const char *tmp)
{
    int       rc;
    char      why[128];
    size_t    mapsize;
    MDB_env  *env;
    MDB_txn  *txn;
    MDB_dbi   data, meta;

    /* qsort's array must not be NULL, even empty (UBSan) */
    if (b->nrecs) {
        qsort(b->recs, b->nrecs, sizeof(pred_rec_t *), pred_rec_qsort_cmp);
    }

    rc = mdb_env_create(&env);
    if (rc != 0) {
        pred_error("mdb_env_create: %s", mdb_strerror(rc));
        return -1;
    }

    /* pages are filled in order: data plus per-entry overhead, with room */
    mapsize = (b->data_bytes + b->parsed * 32) * 2 + 64 * 1024 * 1024;
    mapsize = (mapsize + 65535) & ~(size_t) 65535;

    mdb_env_set_mapsize(env, mapsize);
    mdb_env_set_maxdbs(env, 2);

    txn = NULL;

    rc = mdb_env_open(env, tmp, MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOSYNC
                                | MDB_NOMETASYNC, 0644);
    if (rc != 0) {
        pred_error("%s: %s", tmp,
                   pred_build_lmdb_error(env, rc, why, sizeof(why)));
        goto failed;
    }

    rc = mdb_txn_begin(env, NULL, 0, &txn);
    if (rc == 0) {
        rc = mdb_dbi_open(txn, PRED_SNAP_DB_DATA, MDB_CREATE, &data);
    }
    if (rc == 0) {
        rc = mdb_dbi_open(txn, PRED_SNAP_DB_META, MDB_CREATE, &meta);
    }

    if (rc != 0) {
        pred_error("%s: %s", tmp,
                   pred_build_lmdb_error(env, rc, why, sizeof(why)));
        goto failed;
    }

    if (pred_build_merge(b, env, data, &txn) != 0) {
        goto failed;
    }

    if (pred_build_put_meta(b, txn, meta) != 0) {
        goto failed;
    }

    rc = mdb_txn_commit(txn);
    txn = NULL;

    if (rc == 0) {
        rc = mdb_env_sync(env, 1);
    }

    if (rc != 0) {
        pred_error("%s: %s", tmp,
                   pred_build_lmdb_error(env, rc, why, sizeof(why)));
        goto failed;
    }

    mdb_env_close(env);

    return 0;

failed:

    if (txn) {
        mdb_txn_abort(txn);
    }

    mdb_env_close(env);

    return -1;
}


static int
pred_build_merge(pred_build_t *b, MDB_env *env, MDB_dbi dbi, MDB_txn **txn)
{
    int           rc, ret;
    char          why[128];
    size_t        i, n;
    MDB_val       k, v;
    pred_buf_t    pend;
    pred_rec_t   *r, *p;
    pred_run_t   *runs, **heap;

    n = b->nruns + 1;
    runs = calloc(n, sizeof(pred_run_t));
    heap = calloc(n, sizeof(pred_run_t *));
    memset(&pend, 0, sizeof(pend));

    if (runs == NULL || heap == NULL) {
        free(runs);
        free(heap);
        pred_error("out of memory");
        return -1;
    }

    ret = -1;

    for (i = 0; i < b->nruns; i++) {
        runs[i].fp = fopen(b->runs[i], "rb");
        if (runs[i].fp == NULL) {
            pred_error("%s: %s", b->runs[i], strerror(errno));
            goto done;
        }

        setvbuf(runs[i].fp, NULL, _IOFBF, 1024 * 1024);
    }

    runs[b->nruns].recs = b->recs;
    runs[b->nruns].nrecs = b->nrecs;

    n = 0;

    for (i = 0; i <= b->nruns; i++) {
        rc = pred_run_next(&runs[i]);
        if (rc < 0) {
            pred_error("%s: read error", b->runs[i]);
            goto done;
        }

        if (rc) {
            heap[n++] = &runs[i];
        }
    }

    for (i = n / 2; i-- > 0; ) {
        pred_heap_down(heap, n, i);
    }

    p = NULL;

    while (n || p) {
        r = n ? heap[0]->cur : NULL;

        if (p && r && r->klen == p->klen
            && memcmp(pred_rec_key(r), pred_rec_key(p), r->klen) == 0)
        {
            if (!b->opts->dedupe) {
                pred_error("%s:%" PRIu64 ": duplicate key \"%.*s\" (first at "
                           "%s:%" PRIu64 "; --dedupe keeps the last)",
                           b->files[r->file], r->line, (int) r->klen,
                           pred_rec_key(r), b->files[p->file], p->line);
                goto done;
            }

            /* inputs are merged in file and line order: the last one wins */

        } else if (p) {
            k.mv_data = pred_rec_key(p);
            k.mv_size = p->klen;
            v.mv_data = pred_rec_val(p);
            v.mv_size = p->vlen;

            rc = mdb_put(*txn, dbi, &k, &v, MDB_APPEND);

            if (rc == 0 && ++b->written % PRED_COMMIT_EVERY == 0) {
                rc = mdb_txn_commit(*txn);
                *txn = NULL;
                if (rc == 0) {
                    rc = mdb_txn_begin(env, NULL, 0, txn);
                }

                pred_build_progress(b, "writing", b->written);
            }

            if (rc != 0) {
                pred_error("writing entry %" PRIu64 ": %s", b->written + 1,
                           pred_build_lmdb_error(env, rc, why,
                                                 sizeof(why)));
                goto done;
            }

            b->hash = pred_snap_hash_record(b->hash, k.mv_data, k.mv_size,
                                            v.mv_data, v.mv_size);
        }

        if (r == NULL) {
            break;
        }

        if (pred_buf_reserve(&pend, pred_rec_size(r)) != 0) {
            pred_error("out of memory");
            goto done;
        }

        memcpy(pend.data, r, pred_rec_size(r));
        p = (pred_rec_t *) pend.data;

        rc = pred_run_next(heap[0]);
        if (rc < 0) {
            pred_error("reading a spilled run failed");
            goto done;
        }

        if (rc == 0) {
            heap[0] = heap[--n];
        }

        pred_heap_down(heap, n, 0);
    }

    ret = 0;

done:

    for (i = 0; i < b->nruns; i++) {
        if (runs[i].fp) {
            fclose(runs[i].fp);
        }
        pred_buf_free(&runs[i].buf);
    }

    pred_buf_free(&pend);
    free(runs);
    free(heap);

    return ret;
}


static int
pred_build_put_meta(pred_build_t *b, MDB_txn *txn, MDB_dbi dbi)
{
    int              rc;
    char             why[128];
    char             entries[32], created[32], sla[32], sum[32], *source;
    size_t           i;
    json_t          *arr;
    pred_build_opts_t  *o;

    o = b->opts;

    arr = json_array();
    for (i = 0; i < o->ninputs; i++) {
        json_array_append_new(arr, json_string(o->inputs[i]));
    }

    source = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);

    if (source == NULL) {
        pred_error("out of memory");
        return -1;
    }

    snprintf(sum, sizeof(sum), "fnv1a64:%016" PRIx64, b->hash);
    snprintf(entries, sizeof(entries), "%" PRIu64, b->written);
    snprintf(created, sizeof(created), "%jd", (intmax_t) o->created_at);
    snprintf(sla, sizeof(sla), "%" PRIu64, o->freshness_sla);

    rc = pred_build_put(txn, dbi, PRED_SNAP_META_FORMAT, PRED_SNAP_FORMAT);
    rc = rc ? rc : pred_build_put(txn, dbi, PRED_SNAP_META_VERSION,
                                  o->version);
    rc = rc ? rc : pred_build_put(txn, dbi, PRED_SNAP_META_CREATED_AT,
                                  created);
    rc = rc ? rc : pred_build_put(txn, dbi, PRED_SNAP_META_ENTRIES, entries);
    rc = rc ? rc : pred_build_put(txn, dbi, PRED_SNAP_META_CHECKSUM, sum);
    rc = rc ? rc : pred_build_put(txn, dbi, PRED_SNAP_META_SOURCE, source);
    rc = rc ? rc : pred_build_put(txn, dbi, PRED_SNAP_META_BUILDER,
                                  PRED_LOADER_NAME " " PRED_LOADER_VERSION);
    rc = rc ? rc : pred_build_put(txn, dbi, PRED_SNAP_META_SLA, sla);
    rc = rc ? rc : pred_build_put(txn, dbi, PRED_SNAP_META_FALLBACK,
                                  o->fallback);

    if (o->owner) {
        rc = rc ? rc : pred_build_put(txn, dbi, PRED_SNAP_META_OWNER,
                                      o->owner);
    }

    if (o->invalidated_by) {
        rc = rc ? rc : pred_build_put(txn, dbi, PRED_SNAP_META_INVALIDATED,
                                      o->invalidated_by);
    }

    free(source);

    if (rc != 0) {
        pred_error("writing metadata: %s",
                   pred_build_lmdb_error(mdb_txn_env(txn), rc, why,
                                         sizeof(why)));
        return -1;
    }

    return 0;
}


static int
pred_build_put(MDB_txn *txn, MDB_dbi dbi, const char *name,
    const char *value)
{
    MDB_val  k, v;

    k.mv_data = (void *) name;
    k.mv_size = strlen(name);
    v.mv_data = (void *) value;
    v.mv_size = strlen(value);

    return mdb_put(txn, dbi, &k, &v, 0);
}


/* the coverage guard: a batch job that lost half its output must not ship */
static int
pred_build_check_shrink(pred_build_t *b)
{
    uint64_t  live;

    if (b->opts->max_shrink < 0) {
        return 0;
    }

    if (pred_live_entries(b->opts->dir, &live) != 0) {
        return 0;
    }

    if (b->written * 100 < live * (uint64_t) (100 - b->opts->max_shrink)) {
        pred_error("%" PRIu64 " entries, down from %" PRIu64 " in the live "
                   "snapshot: more than --max-shrink %d%%", b->written, live,
                   b->opts->max_shrink);
        return -1;
    }

    return 0;
}


/* LMDB's default order: bytes, then length; ties in input order */
static int
pred_rec_cmp(const pred_rec_t *a, const pred_rec_t *b)
{
    int     c;
    size_t  n;

    n = a->klen < b->klen ? a->klen : b->klen;
    c = memcmp(pred_rec_key(a), pred_rec_key(b), n);

    if (c != 0) {
        return c;
    }

    if (a->klen != b->klen) {
        return a->klen < b->klen ? -1 : 1;
    }

    if (a->file != b->file) {
        return a->file < b->file ? -1 : 1;
    }

    return a->line < b->line ? -1 : (a->line > b->line);
}


static int
pred_rec_qsort_cmp(const void *a, const void *b)
{
    return pred_rec_cmp(*(pred_rec_t * const *) a,
                        *(pred_rec_t * const *) b);
}


/* 1: run->cur is the next record, 0: the run is done, -1: read error */
static int
pred_run_next(pred_run_t *run)
{
    pred_rec_t  hdr;

    if (run->fp == NULL) {
        if (run->pos == run->nrecs) {
            return 0;
        }

        run->cur = run->recs[run->pos++];
        return 1;
    }

    if (fread(&hdr, sizeof(pred_rec_t), 1, run->fp) != 1) {
        return ferror(run->fp) ? -1 : 0;
    }

    if (pred_buf_reserve(&run->buf, pred_rec_size(&hdr)) != 0) {
        return -1;
    }

    memcpy(run->buf.data, &hdr, sizeof(pred_rec_t));

    if (fread(run->buf.data + sizeof(pred_rec_t), hdr.klen + hdr.vlen, 1,
              run->fp) != 1 && hdr.klen + hdr.vlen)
    {
        return -1;
    }

    run->cur = (pred_rec_t *) run->buf.data;

    return 1;
}


static void
pred_heap_down(pred_run_t **heap, size_t n, size_t i)
{
    size_t       l, m;
    pred_run_t  *t;

    for ( ;; ) {
        l = 2 * i + 1;
        m = i;

        if (l < n && pred_rec_cmp(heap[l]->cur, heap[m]->cur) < 0) {
            m = l;
        }

        if (l + 1 < n && pred_rec_cmp(heap[l + 1]->cur, heap[m]->cur) < 0) {
            m = l + 1;
        }

        if (m == i) {
            return;
        }

        t = heap[i];
        heap[i] = heap[m];
        heap[m] = t;
        i = m;
    }
}


/*
 * A progress line on a terminal only; quiet in pipes and logs.  done is
 * bytes read while reading, entries written while writing; phase NULL
 * clears the line.
 */
static void
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
                b->parsed, b->parsed / t);

    } else {
        total = b->parsed;
        fprintf(stderr, "\r\033[Kwriting: %" PRIu64 " of %" PRIu64
                " entries, %.0f/s", b->written, b->parsed, b->written / t);
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
    size_t         i;
    pred_block_t  *blk, *next;

    for (i = 0; i < pred_ntmp_paths; i++) {
        unlink(pred_tmp_paths[i]);
    }

    pred_ntmp_paths = 0;

    for (i = 0; i < b->nruns; i++) {
        free(b->runs[i]);
    }

    for (i = 0; i < b->nfiles; i++) {
        free(b->files[i]);
    }

    for (blk = b->blocks; blk; blk = next) {
        next = blk->next;
        free(blk);
    }

    free(b->runs);
    free(b->files);
    free(b->recs);
}


static void
pred_build_on_signal(int signo)
{
    size_t  i;

    for (i = 0; i < pred_ntmp_paths; i++) {
        unlink(pred_tmp_paths[i]);
    }

    signal(signo, SIG_DFL);
    raise(signo);
}


static int
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


/*
 * LMDB reports a short write, which is what a full disk gives, as EIO:
 * say so when the file system is all but out of space.
 */
static const char *
pred_build_lmdb_error(MDB_env *env, int rc, char *buf, size_t size)
{
    const char      *path;
    struct statvfs   vfs;

    if ((rc == EIO || rc == ENOSPC)
        && mdb_env_get_path(env, &path) == 0
        && statvfs(path, &vfs) == 0
        && (uint64_t) vfs.f_bavail * vfs.f_frsize < 1024 * 1024)
    {
        snprintf(buf, size, "no space left on device (%" PRIu64 " KiB free; "
                 "LMDB: %s)", (uint64_t) vfs.f_bavail * vfs.f_frsize / 1024,
                 mdb_strerror(rc));
        return buf;
    }

    return mdb_strerror(rc);
}
