/*
 * Prediction keys: the one definition of a valid key, shared by the nginx
 * module and the pred-snapshot loader so that both refuse the same keys.
 *
 * Plain C, no nginx types.
 */

#ifndef PRED_KEY_H
#define PRED_KEY_H

#include <stddef.h>
#include <stdint.h>


/* LMDB's compiled-in key limit in Debian's liblmdb (mdb_env_get_maxkeysize) */
#define PRED_KEY_MAX_LEN  511


typedef enum {
    PRED_KEY_OK = 0,
    PRED_KEY_EMPTY,
    PRED_KEY_TOO_LONG,
    PRED_KEY_CONTROL_BYTE,
    PRED_KEY_BAD_ESCAPE
} pred_key_rc_t;


/*
 * A character of a name that goes as it is into a file name, a metrics
 * label, a JSON key or a log line: [A-Za-z0-9._-].  Snapshot versions,
 * shaping field names (per request: inline), and the module's snapshot and
 * cache zone names.
 */
static inline int
pred_key_name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/*
 * Checks raw key bytes: non-empty, at most PRED_KEY_MAX_LEN bytes, and no
 * control bytes (0x00-0x1f, 0x7f), which would break logs and line-based
 * tools.
 */
pred_key_rc_t pred_key_validate(const unsigned char *key, size_t len);

/*
 * Decodes %XX escapes exactly once, nothing else ("+" stays "+"): 0, or
 * -1 for a "%" not followed by two hex digits.  dst must hold len bytes.
 */
int pred_key_unescape(const unsigned char *src, size_t len,
    unsigned char *dst, size_t *dst_len);

/*
 * Decodes %XX escapes exactly once (so "%2541" becomes "%41", not "A") and
 * validates the result.  "+" is kept as is: keys are opaque bytes, not form
 * fields.  dst must hold len bytes; *dst_len receives the decoded length.
 * A "%" not followed by two hex digits is PRED_KEY_BAD_ESCAPE.
 */
pred_key_rc_t pred_key_decode(const unsigned char *src, size_t len,
    unsigned char *dst, size_t *dst_len);

/*
 * SipHash-2-4 of the key under a 128-bit secret (k[0] is the first eight
 * bytes of the key, little-endian).  Hash tables that hold client-chosen
 * keys use it with a random secret, so that no one can aim keys at one
 * bucket.
 */
uint64_t pred_key_hash(const unsigned char *key, size_t len,
    const uint64_t k[2]);

/*
 * Fills k with a secret for pred_key_hash from /dev/urandom: 0, or -1 when
 * it could not be read and k was made from the time, the pid and an
 * address instead (unknown in advance, but guessable: worth a warning).
 */
int pred_key_secret(uint64_t k[2]);

/*
 * This process's secret for pred_key_hash, drawn with pred_key_secret at
 * the first call: for tables of one process (a worker's), not shared ones.
 */
const uint64_t *pred_key_process_secret(void);

/* A short, constant, human-readable reason for a non-OK code. */
const char *pred_key_strerror(pred_key_rc_t rc);

#endif /* PRED_KEY_H */
