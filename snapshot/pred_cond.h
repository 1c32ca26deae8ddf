/*
 * A condition on a JSON value, "POINTER:OP:VALUE" (pred_cascade's
 * exit_if=): the value at an RFC 6901 pointer compared with a constant.
 *
 *   /confidence:>=:0.9      a number, with <, <=, >, >=, == or !=
 *   /decision:==:block      a string, compared as written (== and !=)
 *   /level:==:"0.9"         the same, quoted: text that looks like a
 *                           number, true, false or null
 *   /final:==:true          true, false or null (== and !=)
 *
 * The pointer ends at the first ":OP:".  A value that the pointer does not
 * name, or of another type than the constant, satisfies no operator, not
 * even !=: a stage exits only when its answer says so.
 *
 * Plain C, no nginx types.
 */

#ifndef PRED_COND_H
#define PRED_COND_H

#include <stddef.h>


typedef enum {
    PRED_COND_LT = 0,
    PRED_COND_LE,
    PRED_COND_GT,
    PRED_COND_GE,
    PRED_COND_EQ,
    PRED_COND_NE
} pred_cond_op_t;


/* the constant's kind */
typedef enum {
    PRED_COND_NUMBER = 0,
    PRED_COND_STRING,
    PRED_COND_LITERAL       /* true, false, null: compared as a token */
} pred_cond_kind_t;


typedef struct {
    const char        *pointer;    /* in the parsed text */
    size_t             pointer_len;
    pred_cond_op_t     op;
    pred_cond_kind_t   kind;
    double             number;
    const char        *text;       /* STRING, LITERAL: in the parsed text */
    size_t             text_len;
} pred_cond_t;


/*
 * Parses len bytes of "POINTER:OP:VALUE" into c, which points into them;
 * 0, or -1 with *err saying what is wrong.
 */
int pred_cond_parse(const char *s, size_t len, pred_cond_t *c,
    const char **err);

/*
 * 1 when the JSON value (len bytes, already validated) satisfies c, else
 * 0.  Allocates nothing.
 */
int pred_cond_eval(const pred_cond_t *c, const char *json, size_t len);

#endif /* PRED_COND_H */
