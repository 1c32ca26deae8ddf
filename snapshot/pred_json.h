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


/* Copies src to dst (room for len bytes) without white space outside
 * strings; returns the new length. */
size_t pred_json_compact(const char *src, size_t len, char *dst);

/* First byte past the value starting at p (a string, object, array or
 * scalar). */
const char *pred_json_skip_value(const char *p, const char *end);

const char *pred_json_skip_ws(const char *p, const char *end);

#endif /* PRED_JSON_H */
