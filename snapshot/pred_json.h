/*
 * Raw JSON text helpers for text already validated by a JSON parser:
 * copying without insignificant white space, and finding the bytes of a
 * member's value.  Working on the bytes keeps numbers as they were written
 * (a parser and printer round trip turns 0.1 into 0.10000000000000001).
 *
 * Plain C, no nginx types.
 */

#ifndef PRED_JSON_H
#define PRED_JSON_H

#include <stddef.h>


/*
 * Checks that text is exactly one JSON value (RFC 8259) with white space
 * around it: strict numbers, no NaN or Infinity, valid escapes and UTF-8,
 * at most PRED_JSON_MAX_DEPTH nested containers.  Allocates nothing, for
 * hot paths; duplicate object members are not looked for.  Returns 0, or
 * -1 with the offset of the first bad byte in *where.
 */
#define PRED_JSON_MAX_DEPTH  256

int pred_json_validate(const char *text, size_t len, size_t *where);

/*
 * Past the UTF-8 sequence of two to four bytes at p (p < end, *p >= 0x80),
 * or NULL when it is not one JSON allows: overlong, a surrogate, past
 * U+10FFFF, or cut by end.
 */
const char *pred_json_utf8(const char *p, const char *end);

/*
 * Past the JSON number at p, -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?,
 * or NULL when there is none.
 */
const char *pred_json_number(const char *p, const char *end);

/* Copies src to dst (room for len bytes) without white space outside
 * strings; returns the new length.  dst may be src: compaction in place. */
size_t pred_json_compact(const char *src, size_t len, char *dst);

/* First byte past the value starting at p (a string, object, array or
 * scalar). */
const char *pred_json_skip_value(const char *p, const char *end);

const char *pred_json_skip_ws(const char *p, const char *end);

/*
 * The bytes of the value of member "name" (name_len bytes, decoded) of the
 * object starting at p; 0, or -1 when p is not an object or has no such
 * member.
 */
int pred_json_member(const char *p, const char *end, const char *name,
    size_t name_len, const char **start, const char **stop);

typedef struct {
    const char  *name;
    size_t       len;
} pred_json_name_t;

/*
 * One pass over the object at p: for each of the n names, the bytes of its
 * member's value in starts/stops, or starts[i] NULL when absent (the first
 * member wins).  0, or -1 when p is not an object.
 */
int pred_json_members(const char *p, const char *end,
    const pred_json_name_t *names, size_t n, const char **starts,
    const char **stops);

/*
 * As pred_json_members, in one pass over the whole object: returns the
 * first byte past it, or NULL when p is not an object or the object is cut
 * short.  A list's items are read once this way, their end with them.
 */
const char *pred_json_object(const char *p, const char *end,
    const pred_json_name_t *names, size_t n, const char **starts,
    const char **stops);

/*
 * The first byte of the value of member "name" (decoded) of the object at
 * p, without reading that value; NULL when p is not an object or has no
 * such member.  For a list read item by item after.
 */
const char *pred_json_member_start(const char *p, const char *end,
    const char *name, size_t name_len);

/*
 * The bytes of each element of the array starting at p, at most max of
 * them; *n is how many.  0, or -1 when p is not an array or has more than
 * max elements.
 */
int pred_json_array(const char *p, const char *end, const char **starts,
    const char **stops, size_t max, size_t *n);

/*
 * Resolves an RFC 6901 JSON pointer ("" is the whole text, "/a/0/b" a path;
 * "~1" is "/" and "~0" is "~" in a token) to the bytes of the value it
 * names; 0, or -1 when it names nothing.
 */
int pred_json_pointer(const char *json, size_t len, const char *ptr,
    size_t ptr_len, const char **start, const char **stop);

#endif /* PRED_JSON_H */
