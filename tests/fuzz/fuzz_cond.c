/*
 * Conditions as pred_cascade's exit_if= reads them: the input's first line
 * is the condition, the rest a JSON value.  Whatever the condition, parsing
 * reads nothing past it and a condition that parses points into it; on any
 * value the validator accepts, evaluating reads nothing past either (the
 * fuzzer's AddressSanitizer watches) and answers 0 or 1, never 1 for both
 * an operator and its negation.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pred_cond.h"
#include "pred_json.h"


/* the operator that holds exactly when op does not, for a comparable
   value: a missing one or one of another type satisfies neither */
static const pred_cond_op_t  pred_fuzz_negation[] = {
    PRED_COND_GE,           /* < */
    PRED_COND_GT,           /* <= */
    PRED_COND_LE,           /* > */
    PRED_COND_LT,           /* >= */
    PRED_COND_NE,           /* == */
    PRED_COND_EQ            /* != */
};


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int           r, nr, quoted;
    char         *cond, *value;
    size_t        clen, len, where;
    const char   *nl, *err;
    pred_cond_t   c, neg;

    nl = memchr(data, '\n', size);
    if (nl == NULL) {
        return 0;
    }

    clen = nl - (const char *) data;
    len = size - clen - 1;

    /* exact-size copies: a byte read past either is caught */
    cond = malloc(clen ? clen : 1);
    if (cond == NULL) {
        return 0;
    }

    memcpy(cond, data, clen);

    err = NULL;

    if (pred_cond_parse(cond, clen, &c, &err) != 0) {
        /* nginx logs the reason */
        if (err == NULL) {
            abort();
        }

        free(cond);
        return 0;
    }

    /*
     * POINTER, then ":OP:", then a VALUE of at least one byte to the end,
     * or a quoted one: the text inside its quotes, which may be empty
     */
    quoted = (c.kind == PRED_COND_STRING && c.text != cond + clen - c.text_len);

    if ((unsigned) c.op > PRED_COND_NE || (unsigned) c.kind > PRED_COND_LITERAL
        || c.pointer != cond || c.pointer_len + 4 > clen
        || (c.pointer_len && cond[0] != '/')
        || (c.text_len == 0 && !quoted)
        || c.text_len > clen - c.pointer_len - 3
        || (quoted && (c.text != cond + clen - 1 - c.text_len
                       || cond[clen - 1] != '"' || c.text[-1] != '"'))
        || (c.kind != PRED_COND_NUMBER && c.op != PRED_COND_EQ
            && c.op != PRED_COND_NE))
    {
        abort();
    }

    value = malloc(len ? len : 1);
    if (value == NULL) {
        free(cond);
        return 0;
    }

    memcpy(value, nl + 1, len);

    if (pred_json_validate(value, len, &where) == 0) {
        r = pred_cond_eval(&c, value, len);

        neg = c;
        neg.op = pred_fuzz_negation[c.op];
        nr = pred_cond_eval(&neg, value, len);

        if ((r != 0 && r != 1) || (nr != 0 && nr != 1) || (r && nr)) {
            abort();
        }
    }

    free(value);
    free(cond);

    return 0;
}
