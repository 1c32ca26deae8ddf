/*
 * pred-snapshot build: the command line.
 *
 * getopt_long() reads the options; around it, the rules this command has
 * always had and getopt would change: an argument that does not start
 * with "--" is the folder wherever it stands (getopt would read "-x" as a
 * short option), --input takes every argument up to the next option, an
 * option is spelled out in full (getopt accepts "--vers"), and the
 * messages and exit code 2 of pred_usage_error().
 */

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loader.h"
#include "build.h"


#define PRED_MEMORY_DEFAULT  ((size_t) 512 * 1024 * 1024)
#define PRED_MEMORY_MIN      ((size_t) 16 * 1024 * 1024)


enum {
    PRED_OPT_INPUT = 256,
    PRED_OPT_VERSION,
    PRED_OPT_KEY_FIELD,
    PRED_OPT_VALUE_FIELD,
    PRED_OPT_NO_SUCCESS_MARKER,
    PRED_OPT_DEDUPE,
    PRED_OPT_MIN_ENTRIES,
    PRED_OPT_MAX_SHRINK,
    PRED_OPT_REQUIRE_FIELD,
    PRED_OPT_RANGE,
    PRED_OPT_FRESHNESS_SLA,
    PRED_OPT_OWNER,
    PRED_OPT_INVALIDATED_BY,
    PRED_OPT_FALLBACK_IF_STALE,
    PRED_OPT_MEMORY,
    PRED_OPT_QUIET,
    PRED_OPT_AS_OF,
    PRED_OPT_DELTA_OF
};


static const struct option  pred_build_options[] = {
    { "input",              required_argument, NULL, PRED_OPT_INPUT },
    { "version",            required_argument, NULL, PRED_OPT_VERSION },
    { "key-field",          required_argument, NULL, PRED_OPT_KEY_FIELD },
    { "value-field",        required_argument, NULL, PRED_OPT_VALUE_FIELD },
    { "no-success-marker",  no_argument,       NULL,
      PRED_OPT_NO_SUCCESS_MARKER },
    { "dedupe",             no_argument,       NULL, PRED_OPT_DEDUPE },
    { "min-entries",        required_argument, NULL, PRED_OPT_MIN_ENTRIES },
    { "max-shrink",         required_argument, NULL, PRED_OPT_MAX_SHRINK },
    { "require-field",      required_argument, NULL,
      PRED_OPT_REQUIRE_FIELD },
    { "range",              required_argument, NULL, PRED_OPT_RANGE },
    { "freshness-sla",      required_argument, NULL,
      PRED_OPT_FRESHNESS_SLA },
    { "owner",              required_argument, NULL, PRED_OPT_OWNER },
    { "invalidated-by",     required_argument, NULL,
      PRED_OPT_INVALIDATED_BY },
    { "fallback-if-stale",  required_argument, NULL,
      PRED_OPT_FALLBACK_IF_STALE },
    { "memory",             required_argument, NULL, PRED_OPT_MEMORY },
    { "quiet",              no_argument,       NULL, PRED_OPT_QUIET },
    { "as-of",              required_argument, NULL, PRED_OPT_AS_OF },
    { "delta-of",           required_argument, NULL, PRED_OPT_DELTA_OF },
    { NULL,                 0,                 NULL, 0 }
};


static int pred_build_option(pred_build_opts_t *o, int opt, char *val);


int
pred_build_parse_args(int argc, char **argv, pred_build_opts_t *o)
{
    int          c, i, idx;
    char        *arg;
    size_t       len;
    const char  *name;

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

    while (optind < argc) {
        i = optind;
        arg = argv[i];

        if (strncmp(arg, "--", 2) != 0) {
            if (o->dir) {
                return pred_usage_error("build: unexpected argument \"%s\"",
                                        arg);
            }

            o->dir = arg;
            optind++;
            continue;
        }

        /* "+": stop at what is not an option; ":": no messages of its own */
        idx = -1;
        c = arg[2] == '\0' ? '?'
                           : getopt_long(argc, argv, "+:", pred_build_options,
                                         &idx);

        len = strcspn(arg, "=");
        name = idx >= 0 ? pred_build_options[idx].name : "";

        if (c == ':') {
            return pred_usage_error("build: %s needs a value", arg);
        }

        if (c == '?' || len != strlen(name) + 2
            || strncmp(arg + 2, name, len - 2) != 0)
        {
            /* an unknown option took a value too: without one, it said so */
            if (arg[len] == '\0' && i + 1 == argc) {
                return pred_usage_error("build: %s needs a value", arg);
            }

            return pred_usage_error("build: unknown option \"%.*s\"",
                                    (int) len, arg);
        }

        c = pred_build_option(o, c, optarg);
        if (c != PRED_EXIT_OK) {
            return c;
        }

        /* --input takes every following argument up to the next option */
        if (idx >= 0 && pred_build_options[idx].val == PRED_OPT_INPUT
            && arg[len] == '\0')
        {
            while (optind < argc && strncmp(argv[optind], "--", 2) != 0) {
                o->inputs[o->ninputs++] = argv[optind++];
            }
        }
    }

    if (o->dir == NULL) {
        return pred_usage_error("build: the snapshot directory is missing");
    }

    if (o->ninputs == 0) {
        return pred_usage_error("build: --input is missing");
    }

    pred_build_defaults(o);

    return PRED_EXIT_OK;
}


void
pred_build_free_args(pred_build_opts_t *o)
{
    size_t  i;

    for (i = 0; i < o->jsonl.nranges; i++) {
        free((char *) o->jsonl.ranges[i].field);
    }

    free(o->inputs);
    free(o->jsonl.require);
    free(o->jsonl.ranges);
}


static int
pred_build_option(pred_build_opts_t *o, int opt, char *val)
{
    uint64_t  u;

    switch (opt) {

    case PRED_OPT_INPUT:
        o->inputs[o->ninputs++] = val;
        break;

    case PRED_OPT_VERSION:
        if (!pred_snap_valid_version(val)) {
            return pred_usage_error("build: invalid version \"%s\": use "
                                    "1 to 64 of A-Z a-z 0-9 . _ -", val);
        }
        o->version = val;
        break;

    case PRED_OPT_KEY_FIELD:
        o->jsonl.key_field = val;
        break;

    case PRED_OPT_VALUE_FIELD:
        o->jsonl.value_field = val;
        break;

    case PRED_OPT_NO_SUCCESS_MARKER:
        o->no_success_marker = 1;
        break;

    case PRED_OPT_DEDUPE:
        o->dedupe = 1;
        break;

    case PRED_OPT_QUIET:
        o->quiet = 1;
        break;

    case PRED_OPT_MIN_ENTRIES:
        if (pred_snap_parse_u64(val, &o->min_entries) != 0) {
            return pred_usage_error("build: invalid --min-entries \"%s\"",
                                    val);
        }
        break;

    case PRED_OPT_MAX_SHRINK:
        if (pred_snap_parse_u64(val, &u) != 0 || u > 100) {
            return pred_usage_error("build: invalid --max-shrink \"%s\": "
                                    "a percentage, 0 to 100", val);
        }
        o->max_shrink = (int) u;
        break;

    case PRED_OPT_REQUIRE_FIELD:
        o->jsonl.require[o->jsonl.nrequire++] = val;
        break;

    case PRED_OPT_RANGE:
        if (pred_jsonl_parse_range(val, &o->jsonl.ranges[o->jsonl.nranges])
            != 0)
        {
            return pred_usage_error("build: invalid --range \"%s\": use "
                                    "FIELD:MIN:MAX", val);
        }
        o->jsonl.nranges++;
        break;

    case PRED_OPT_FRESHNESS_SLA:
        if (pred_parse_duration(val, &o->freshness_sla) != 0) {
            return pred_usage_error("build: invalid --freshness-sla "
                                    "\"%s\": use e.g. 90s, 30m, 6h, 1d",
                                    val);
        }
        break;

    case PRED_OPT_AS_OF:
        if (pred_parse_time(val, &o->as_of) != 0) {
            return pred_usage_error("build: invalid --as-of \"%s\": use "
                                    "Unix seconds, 2026-12-01T03:00:00Z or "
                                    "now", val);
        }
        break;

    case PRED_OPT_DELTA_OF:
        if (!pred_snap_valid_version(val)) {
            return pred_usage_error("build: invalid --delta-of version "
                                    "\"%s\"", val);
        }

        o->delta_of = val;
        o->jsonl.deletes = 1;
        break;

    case PRED_OPT_OWNER:
        o->owner = val;
        break;

    case PRED_OPT_INVALIDATED_BY:
        o->invalidated_by = val;
        break;

    case PRED_OPT_FALLBACK_IF_STALE:
        if (pred_snap_parse_fallback(val, &(pred_snap_stale_t) {0}) != 0) {
            return pred_usage_error("build: invalid --fallback-if-stale "
                                    "\"%s\": use serve, upstream or fail",
                                    val);
        }
        o->fallback = val;
        break;

    case PRED_OPT_MEMORY:
        if (pred_parse_size(val, &o->memory) != 0
            || o->memory < PRED_MEMORY_MIN)
        {
            return pred_usage_error("build: invalid --memory \"%s\": "
                                    "use e.g. 512M or 2G (16M at least)",
                                    val);
        }
        break;
    }

    return PRED_EXIT_OK;
}


/* created_at, and the version when none was given */
void
pred_build_defaults(pred_build_opts_t *o)
{
    char         *env;
    time_t        now;
    uint64_t      u;
    struct tm     tm;
    static char   version[32];

    /* the reproducible-builds convention; also how tests pin a file's age */
    now = time(NULL);
    env = getenv("SOURCE_DATE_EPOCH");

    if (env && pred_snap_parse_u64(env, &u) == 0) {
        now = (time_t) u;
    }

    o->created_at = now;

    if (o->as_of == 0) {
        o->as_of = now;
    }

    if (o->version == NULL) {
        gmtime_r(&now, &tm);
        strftime(version, sizeof(version), "%Y%m%dT%H%M%SZ", &tm);
        o->version = version;
    }
}
