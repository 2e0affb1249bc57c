/* SPDX-License-Identifier: MIT */
/* The cowctl script parser: any bytes parse, or fail with a line and a message. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "script.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const commands[] = {
        "spawn", "fork", "exit", "mmap", "munmap", "mprotect", "madvise", "read", "write",
        "stats", "pagemap", "ps", "map", NULL,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const struct script_syntax syn = { .commands = commands };
        struct script_stmt *prog = NULL;
        struct script_error err;
        memset(&err, 0, sizeof(err));

        int r = script_parse((const char *)data, size, &syn, &prog, &err);
        if (r == 0) {
                script_free(prog);
        } else if (r == -EINVAL) {
                if (err.msg[0] == '\0' || memchr(err.msg, '\0', sizeof(err.msg)) == NULL)
                        abort(); /* a syntax error always says what */
        } else if (r != -ENOMEM) {
                abort();
        }
        return 0;
}
