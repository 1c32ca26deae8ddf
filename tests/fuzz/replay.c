/*
 * Runs a fuzz target over files without libFuzzer: make unit replays every
 * seed and every input that once crashed a target, built with the plain
 * compiler, so the fixes stay fixed on machines without clang.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
main(int argc, char **argv)
{
    int      i;
    long     len;
    FILE    *f;
    uint8_t *data;

    for (i = 1; i < argc; i++) {
        f = fopen(argv[i], "rb");
        if (f == NULL || fseek(f, 0, SEEK_END) != 0
            || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        {
            perror(argv[i]);
            return 1;
        }

        data = malloc(len ? len : 1);
        if (data == NULL || fread(data, 1, len, f) != (size_t) len) {
            fprintf(stderr, "%s: cannot read\n", argv[i]);
            return 1;
        }

        fclose(f);

        /* a broken invariant aborts, which names the input in the log */
        fprintf(stderr, "%s\n", argv[i]);
        LLVMFuzzerTestOneInput(data, len);
        free(data);
    }

    printf("%s: %d inputs ok\n", argv[0], argc - 1);

    return 0;
}
