/*
 * Any bytes as a snapshot file: open it as the module does (the cheap
 * checks), look keys up, and verify it as pred-snapshot verify does.  A
 * file that is not a sound snapshot must be refused with a reason, never
 * crash the reader.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "pred_snap.h"


/* a fault may come after the allocation: the caller owns it all the same */
static void  *pred_fuzz_last;


static void *
pred_fuzz_alloc(void *ctx, size_t size)
{
    (void) ctx;

    pred_fuzz_last = malloc(size);

    return pred_fuzz_last;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                 fd, rc;
    char                err[PRED_SNAP_ERR_MAX], path[64];
    size_t              i, vlen;
    void               *val;
    pred_snap_t         s;
    static const char  *keys[] = { "a", "b", "user:42", "missing" };

    snprintf(path, sizeof(path), "/tmp/pred-fuzz-snap.%d", (int) getpid());

    fd = creat(path, 0644);
    if (fd == -1) {
        return 0;
    }

    if (write(fd, data, size) != (ssize_t) size) {
        close(fd);
        unlink(path);
        return 0;
    }

    close(fd);

    err[0] = '\0';

    if (pred_snap_open(&s, path, 0, err, sizeof(err)) != 0) {
        if (err[0] == '\0') {
            abort();
        }

        unlink(path);
        return 0;
    }

    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        pred_fuzz_last = NULL;

        rc = pred_snap_get(&s, keys[i], strlen(keys[i]), pred_fuzz_alloc,
                           NULL, &val, &vlen, err, sizeof(err));

        free(pred_fuzz_last);

        if (rc == PRED_SNAP_FAULT) {
            pred_snap_close(&s);
            unlink(path);
            return 0;
        }

        if (rc < -1 || rc > 1) {
            abort();
        }
    }

    (void) pred_snap_verify(&s, err, sizeof(err));

    pred_snap_close(&s);
    unlink(path);

    return 0;
}
