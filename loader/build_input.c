/*
 * pred-snapshot build: the inputs.  Files, quoted globs, "-" for stdin and
 * Spark/Ray output folders become a list of files; each is read (gzip
 * transparently) line by line, and every line parsed into the sort.
 */

#include <errno.h>
#include <glob.h>
#include <inttypes.h>
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


static int pred_build_add_dir(pred_build_t *b, const char *dir);
static int pred_build_add_file(pred_build_t *b, const char *path);


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
    int          n, rc, zerr;
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

            if (pred_sort_add(&b->sort, key.data, key.len, val.data, val.len,
                              file, lineno)
                != 0)
            {
                pred_error("%s", b->sort.err);
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
