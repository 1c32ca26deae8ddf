/*
 * pred-snapshot build: the inputs.  Files, quoted globs, "-" for stdin and
 * Spark/Ray output folders become a list of files; each is read (gzip
 * transparently) line by line, and every line parsed into the sort.
 */

/* memrchr(), sched_getaffinity() */
#define _GNU_SOURCE

#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>
#include <sys/stat.h>
#include <zlib.h>

#include "loader.h"
#include "build.h"


#define PRED_READ_CHUNK      (1024 * 1024)
#define PRED_LINE_MAX        (64 * 1024 * 1024)

/* lines in a buffer past which its second half goes to the parser thread */
#define PRED_PARSE_SPLIT     (256 * 1024)

/* a record in the parser thread's output, 8-byte aligned */
#define PRED_PARSED_SIZE(r)  ((pred_rec_size(r) + 7) & ~(size_t) 7)


/*
 * A second parser on the second core: it takes the second half of each
 * buffer's whole lines while this thread parses the first; its records come
 * back in out and go into the sort after this thread's, in input order.
 */
typedef struct {
    pthread_t                 thread;
    pthread_mutex_t           mutex;
    pthread_cond_t            cond;
    const pred_jsonl_opts_t  *opts;
    const char               *start;        /* whole lines */
    const char               *end;
    pred_buf_t                out;          /* line counted from start */
    uint64_t                  lines;        /* lines read, the bad one too */
    char                      err[PRED_SNAP_ERR_MAX];
    pred_buf_t                key;
    pred_buf_t                val;
    /* not bit fields: started is this thread's alone, the rest shared
     * under the mutex */
    unsigned                  started;
    unsigned                  busy;         /* the lines are the thread's */
    unsigned                  stop;
    unsigned                  failed;       /* a bad line ends out; err */
} pred_parser_t;


static int pred_build_add_dir(pred_build_t *b, const char *dir);
static int pred_build_add_file(pred_build_t *b, const char *path);
static const char *pred_build_line(const char **p, const char *end,
    size_t *len);
static int pred_build_lines(pred_build_t *b, uint32_t file, const char *p,
    const char *end, uint64_t *lineno);
static int pred_build_parsed(pred_build_t *b, uint32_t file,
    pred_parser_t *ps, uint64_t *lineno);
static void pred_parser_start(pred_parser_t *ps,
    const pred_jsonl_opts_t *opts);
static void pred_parser_give(pred_parser_t *ps, const char *start,
    const char *end);
static void pred_parser_wait(pred_parser_t *ps);
static void pred_parser_stop(pred_parser_t *ps);
static void *pred_parser_thread(void *arg);
static void pred_parser_run(pred_parser_t *ps);


int
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


/* every line of input number file into the sort */
int
pred_build_read(pred_build_t *b, uint32_t file)
{
    int              n, rc, zerr, failed;
    char            *buf, *p, *stop, *split, *grown;
    size_t           size, have;
    gzFile           gz;
    uint64_t         lineno;
    const char      *name;
    pred_parser_t    parser;

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

    if (buf == NULL) {
        gzclose(gz);
        pred_error("out of memory");
        return -1;
    }

    pred_parser_start(&parser, &b->opts->jsonl);

    rc = -1;
    have = 0;
    lineno = 0;

    for ( ;; ) {
        n = gzread(gz, buf + have, size - have);

        if (n < 0) {
            pred_error("%s: read error: %s", name, gzerror(gz, &n));
            goto done;
        }

        /* a gzip file cut short ends like a whole one unless asked */
        if (n == 0) {
            (void) gzerror(gz, &zerr);

            if (zerr == Z_BUF_ERROR) {
                pred_error("%s: the gzip stream is cut short (truncated "
                           "file?)", name);
                goto done;
            }
        }

        have += n;

        /* the whole lines; at the end of the file the last one too */
        if (n == 0) {
            stop = buf + have;

        } else {
            p = memrchr(buf, '\n', have);
            stop = p ? p + 1 : buf;
        }

        /* the second half of a big buffer to the parser thread */
        split = stop;

        if (parser.started && stop - buf >= PRED_PARSE_SPLIT) {
            p = memchr(buf + (stop - buf) / 2, '\n',
                       stop - buf - (stop - buf) / 2);

            if (p != NULL && p + 1 < stop) {
                split = p + 1;
                pred_parser_give(&parser, split, stop);
            }
        }

        failed = pred_build_lines(b, file, buf, split, &lineno);

        if (split != stop) {
            pred_parser_wait(&parser);

            if (!failed) {
                failed = pred_build_parsed(b, file, &parser, &lineno);
            }
        }

        if (failed) {
            goto done;
        }

        if (n == 0) {
            break;
        }

        /* keep the partial last line; grow when one line fills the buffer */
        have = buf + have - stop;
        memmove(buf, stop, have);

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

    pred_parser_stop(&parser);
    free(buf);
    gzclose(gz);

    return rc;
}


/*
 * The next line of [*p, end): without its newline, a carriage return and
 * trailing blanks; NULL past the end.
 */
static const char *
pred_build_line(const char **p, const char *end, size_t *len)
{
    const char  *line, *nl;

    if (*p == end) {
        return NULL;
    }

    line = *p;
    nl = memchr(line, '\n', end - line);
    *len = nl ? (size_t) (nl - line) : (size_t) (end - line);
    *p = nl ? nl + 1 : end;

    if (*len && line[*len - 1] == '\r') {
        (*len)--;
    }

    while (*len && (line[*len - 1] == ' ' || line[*len - 1] == '\t')) {
        (*len)--;
    }

    return line;
}


/* the lines of [p, end), parsed here, into the sort; -1: reported */
static int
pred_build_lines(pred_build_t *b, uint32_t file, const char *p,
    const char *end, uint64_t *lineno)
{
    int          rc;
    char         err[PRED_SNAP_ERR_MAX];
    size_t       len;
    const char  *line;

    rc = 0;

    while ((line = pred_build_line(&p, end, &len)) != NULL) {
        ++*lineno;

        if (len == 0) {
            continue;
        }

        if (pred_jsonl_parse(line, len, &b->opts->jsonl, &b->key, &b->val,
                             err, sizeof(err))
            != 0)
        {
            pred_error("%s:%" PRIu64 ": %s", b->files[file], *lineno, err);
            rc = -1;
            break;
        }

        if (pred_sort_add(&b->sort, b->key.data, b->key.len, b->val.data,
                          b->val.len, file, *lineno)
            != 0)
        {
            pred_error("%s", b->sort.err);
            rc = -1;
            break;
        }
    }

    return rc;
}


/* the parser thread's records into the sort, after this thread's lines */
static int
pred_build_parsed(pred_build_t *b, uint32_t file, pred_parser_t *ps,
    uint64_t *lineno)
{
    const char        *p, *end;
    const pred_rec_t  *r;

    p = ps->out.data;
    end = p + ps->out.len;

    for ( /* void */ ; p < end; p += PRED_PARSED_SIZE(r)) {
        r = (const pred_rec_t *) p;

        if (pred_sort_add(&b->sort, pred_rec_key(r), r->klen,
                          pred_rec_val(r), r->vlen, file, *lineno + r->line)
            != 0)
        {
            pred_error("%s", b->sort.err);
            return -1;
        }
    }

    if (ps->failed) {
        pred_error("%s:%" PRIu64 ": %s", b->files[file],
                   *lineno + ps->lines, ps->err);
        return -1;
    }

    *lineno += ps->lines;

    return 0;
}


/*
 * The parser thread, where a second core can run it: only where this
 * process may use two.  Without it (or when it cannot start) this thread
 * parses every line.
 */
static void
pred_parser_start(pred_parser_t *ps, const pred_jsonl_opts_t *opts)
{
    cpu_set_t  cpus;

    memset(ps, 0, sizeof(pred_parser_t));
    ps->opts = opts;

    if (sched_getaffinity(0, sizeof(cpus), &cpus) != 0
        || CPU_COUNT(&cpus) < 2)
    {
        return;
    }

    pthread_mutex_init(&ps->mutex, NULL);
    pthread_cond_init(&ps->cond, NULL);

    if (pthread_create(&ps->thread, NULL, pred_parser_thread, ps) != 0) {
        pthread_mutex_destroy(&ps->mutex);
        pthread_cond_destroy(&ps->cond);
        return;
    }

    ps->started = 1;
}


static void
pred_parser_give(pred_parser_t *ps, const char *start, const char *end)
{
    pthread_mutex_lock(&ps->mutex);
    ps->start = start;
    ps->end = end;
    ps->busy = 1;
    pthread_cond_broadcast(&ps->cond);
    pthread_mutex_unlock(&ps->mutex);
}


static void
pred_parser_wait(pred_parser_t *ps)
{
    pthread_mutex_lock(&ps->mutex);

    while (ps->busy) {
        pthread_cond_wait(&ps->cond, &ps->mutex);
    }

    pthread_mutex_unlock(&ps->mutex);
}


static void
pred_parser_stop(pred_parser_t *ps)
{
    if (ps->started) {
        pthread_mutex_lock(&ps->mutex);
        ps->stop = 1;
        pthread_cond_broadcast(&ps->cond);
        pthread_mutex_unlock(&ps->mutex);

        pthread_join(ps->thread, NULL);
        pthread_mutex_destroy(&ps->mutex);
        pthread_cond_destroy(&ps->cond);
        ps->started = 0;
    }

    pred_buf_free(&ps->out);
    pred_buf_free(&ps->key);
    pred_buf_free(&ps->val);
}


static void *
pred_parser_thread(void *arg)
{
    pred_parser_t  *ps;

    ps = arg;

    pthread_mutex_lock(&ps->mutex);

    for ( ;; ) {
        while (!ps->busy && !ps->stop) {
            pthread_cond_wait(&ps->cond, &ps->mutex);
        }

        if (!ps->busy) {
            break;
        }

        pthread_mutex_unlock(&ps->mutex);

        pred_parser_run(ps);

        pthread_mutex_lock(&ps->mutex);
        ps->busy = 0;
        pthread_cond_broadcast(&ps->cond);
    }

    pthread_mutex_unlock(&ps->mutex);

    return NULL;
}


/*
 * The lines given, parsed into out: records as the sort keeps them, with
 * the line counted from the first given; up to the first bad line, whose
 * reason is in err.
 */
static void
pred_parser_run(pred_parser_t *ps)
{
    size_t       len, need;
    uint64_t     line;
    const char  *p, *text;
    pred_rec_t  *r;

    ps->out.len = 0;
    ps->failed = 0;
    ps->lines = 0;

    p = ps->start;
    line = 0;

    while ((text = pred_build_line(&p, ps->end, &len)) != NULL) {
        line++;

        if (len == 0) {
            continue;
        }

        if (pred_jsonl_parse(text, len, ps->opts, &ps->key, &ps->val,
                             ps->err, sizeof(ps->err))
            != 0)
        {
            ps->failed = 1;
            break;
        }

        need = (sizeof(pred_rec_t) + ps->key.len + ps->val.len + 7)
               & ~(size_t) 7;

        if (pred_buf_reserve(&ps->out, ps->out.len + need) != 0) {
            snprintf(ps->err, sizeof(ps->err), "out of memory");
            ps->failed = 1;
            break;
        }

        r = (pred_rec_t *) (ps->out.data + ps->out.len);
        r->klen = ps->key.len;
        r->vlen = ps->val.len;
        r->file = 0;
        r->pad = 0;
        r->line = line;
        memcpy(pred_rec_key(r), ps->key.data, ps->key.len);
        memcpy(pred_rec_val(r), ps->val.data, ps->val.len);
        ps->out.len += need;
    }

    ps->lines = line;
}
