/*
 * Delta snapshots: small files layered over one base version, and the
 * pointer that says which are live.
 *
 * A delta is a snapshot file ("delta-V.mdb") whose metadata names its
 * base ("delta_of") and whose data holds the keys it changes: a value is
 * an upsert, an empty value (0 bytes, never valid JSON) a deletion.
 *
 * DIR/layers is a symbolic link whose text is the base's file and the
 * deltas over it, oldest first, joined by "+":
 *
 *   snap-v1.mdb+delta-v1.1.mdb+delta-v1.2.mdb
 *
 * One readlink() gives the whole stack, so a reader never pairs deltas
 * with a base they were not built on: a stack whose base is not the live
 * version is not used.  It is read, not followed.  When another version
 * goes live, the stack is kept aside as DIR/previous-layers (same text)
 * and comes back with a rollback to its base.
 *
 * Plain C, no nginx types.
 */

#ifndef PRED_DELTA_H
#define PRED_DELTA_H

#include <stddef.h>


#define PRED_DELTA_LINK       "layers"

/* the stack of the version before, kept aside for a rollback to it */
#define PRED_DELTA_PREVIOUS   "previous-layers"

/* deltas over one base; compact merges them into a new base */
#define PRED_DELTA_MAX        8

/* "delta-" VERSION ".mdb", and a NUL */
#define PRED_DELTA_FILE_MAX   (6 + 64 + 4 + 1)

/* the base's name, the deltas' names and "+" between them */
#define PRED_DELTA_LINK_MAX   ((PRED_DELTA_MAX + 1) * PRED_DELTA_FILE_MAX)


typedef struct {
    char    base[PRED_DELTA_FILE_MAX];                  /* "snap-V.mdb" */
    char    layer[PRED_DELTA_MAX][PRED_DELTA_FILE_MAX]; /* oldest first */
    size_t  n;
} pred_delta_stack_t;


/*
 * Reads the pointer's text: a base file "snap-V.mdb" and 1 to
 * PRED_DELTA_MAX distinct "delta-V.mdb" files, V valid versions; 0, or -1
 * when the text is not one.
 */
int pred_delta_parse_link(const char *text, size_t len,
    pred_delta_stack_t *stack);

/* the pointer's text into buf (PRED_DELTA_LINK_MAX bytes); 0, or -1 */
int pred_delta_format_link(const pred_delta_stack_t *stack, char *buf,
    size_t size);

/*
 * The version in a file name "PREFIX" VERSION ".mdb" (prefix "snap-" or
 * "delta-") into buf (PRED_SNAP_VERSION_MAX + 1 bytes); 0, or -1 when the
 * name is not one.
 */
int pred_delta_file_version(const char *file, size_t len,
    const char *prefix, char *buf);

#endif /* PRED_DELTA_H */
