/*
 * The cache zone's state files (pred_cache_zone state=PATH): the records
 * of a checkpoint (PATH) and of the journals beside it (PATH.jGEN), in one
 * encoding, written by the module and read back at start.
 *
 * A file starts with a text line, "pred-state/1 checkpoint GEN\n" or
 * "pred-state/1 journal GEN\n", then records, each:
 *
 *   type        1 byte: 1 an entry, 2 a purge (key: the prefix), 3 the end
 *               of a checkpoint (seq: how many records came before it;
 *               expires: the last write it holds, in the order of writes)
 *   kind        1 byte: the entry's kind (the module's numbers)
 *   key length  2 bytes, little endian (an entry's: 1 to 511)
 *   value len   4 bytes
 *   seq         8 bytes: the zone's order of writes
 *   expires     8 bytes: wall clock, ms
 *   stored      4 bytes: wall clock, s
 *   mask until  4 bytes: wall clock, s; 0: none
 *   key, value
 *   check       8 bytes: FNV-1a 64 (pred_snap_hash_record) of the 32
 *               bytes above as the "key" and key + value as the "value"
 *
 * A journal is appended to; its last record may be cut short by a crash.
 * A checkpoint is written whole under another name and renamed.
 *
 * Plain C, no nginx types.
 */

#ifndef PRED_STATE_H
#define PRED_STATE_H

#include <stddef.h>
#include <stdint.h>


#define PRED_STATE_MAGIC        "pred-state/1 "
#define PRED_STATE_HEADER_MAX   64

#define PRED_STATE_ENTRY        1
#define PRED_STATE_PURGE        2
#define PRED_STATE_END          3

#define PRED_STATE_FIXED        32      /* the header of a record */
#define PRED_STATE_CHECK        8

/* pred_state_next() */
#define PRED_STATE_OK           0
#define PRED_STATE_DONE         1       /* no bytes left */
#define PRED_STATE_TORN         2       /* the bytes left are too few */
#define PRED_STATE_CORRUPT      3


typedef struct {
    unsigned           type;
    unsigned           kind;
    uint64_t           seq;
    int64_t            expires_ms;
    uint32_t           stored;
    uint32_t           mask_until;
    const char        *key;
    size_t             key_len;
    const char        *value;
    size_t             value_len;
} pred_state_rec_t;


/* a record's size once encoded */
#define pred_state_size(key_len, value_len)                                 \
    (PRED_STATE_FIXED + (key_len) + (value_len) + PRED_STATE_CHECK)

/* encodes rec at out (pred_state_size() bytes); returns the size */
size_t pred_state_encode(const pred_state_rec_t *rec, char *out);

/*
 * Sets the seq of every record in buf (len bytes of whole records, as
 * encoded) and their checks again: a checkpoint learns the order of writes
 * it is as of only once its records are copied.
 */
void pred_state_reseq(char *buf, size_t len, uint64_t seq);

/*
 * Decodes the record at *p (before end) into rec, which points into the
 * bytes, and moves *p past it.  PRED_STATE_OK; PRED_STATE_DONE at the end;
 * PRED_STATE_TORN when fewer bytes are left than the record says it has;
 * PRED_STATE_CORRUPT (reason in err) when the check or a field is wrong.
 */
int pred_state_next(const char **p, const char *end, pred_state_rec_t *rec,
    char *err, size_t errlen);

/*
 * The first line: "checkpoint" or "journal" (what) and its generation.
 * Returns the line's length, or -1 when it is not one.
 */
int pred_state_header(char *buf, size_t size, const char *what,
    uint64_t gen);
int pred_state_parse_header(const char *p, size_t len, const char *what,
    uint64_t *gen);

#endif /* PRED_STATE_H */
