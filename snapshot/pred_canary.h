/*
 * Canary releases of a snapshot: which version a key is served from, and
 * the candidate pointer that says which file and what share.
 *
 * A key goes to the candidate when its bucket is below the share, both in
 * millionths:
 *
 *   bucket = SipHash-2-4(key bytes, 128-bit key of zeros) mod 1000000
 *
 * The same on every node and worker, so a fleet agrees; raising the share
 * only moves keys from the live version to the candidate.
 *
 * DIR/candidate is a symbolic link whose text is "FILE@PERCENT", for
 * example "snap-v2.mdb@0.5": one readlink() gives both, so no reader sees
 * a new share with an old file or the reverse.  It does not resolve to a
 * file; it is read, not followed.
 *
 * Plain C, no nginx types.
 */

#ifndef PRED_CANARY_H
#define PRED_CANARY_H

#include <stddef.h>
#include <stdint.h>


#define PRED_CANARY_LINK       "candidate"

/* shares are kept in millionths: a percent has at most 4 decimals */
#define PRED_CANARY_SCALE      1000000

/* "snap-" VERSION ".mdb@" PERCENT, and a NUL */
#define PRED_CANARY_LINK_MAX   (5 + 64 + 5 + 8 + 1)


/* 0 .. PRED_CANARY_SCALE - 1 */
uint32_t pred_canary_bucket(const void *key, size_t len);

/* 1 when the key is the candidate's at this share (millionths) */
#define pred_canary_routed(bucket, share)  ((bucket) < (share))

/*
 * "0" to "100", at most 4 decimals ("0.5", "12.25"), into millionths;
 * 0, or -1 when it is not one.
 */
int pred_canary_parse_percent(const char *s, size_t len, uint32_t *share);

/* the shortest text for a share: "0.5", "10", "0.0001" */
void pred_canary_format_percent(char *buf, size_t size, uint32_t share);

/*
 * Reads the pointer's text: the file name ("snap-V.mdb", V a valid
 * version; room for PRED_CANARY_LINK_MAX bytes) and the share; 0, or -1
 * when the text is not one.
 */
int pred_canary_parse_link(const char *text, size_t len, char *file,
    uint32_t *share);

/* "snap-V.mdb@P" into buf (PRED_CANARY_LINK_MAX bytes); 0, or -1 */
int pred_canary_format_link(char *buf, size_t size, const char *version,
    uint32_t share);

#endif /* PRED_CANARY_H */
