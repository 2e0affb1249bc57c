/* SPDX-License-Identifier: MIT */
/*
 * The token-file parser: any contents either give a non-empty table that
 * refuses a token no file can hold, or a clear error.
 * The input is the file itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char err[256] = "";
        cow_auth *a = NULL;
        uint32_t uid = 0;

        int r = cow_auth_parse((const char *)data, size, &a, err, sizeof(err));
        if (r < 0) {
                if (err[0] == '\0')
                        abort(); /* refused without saying why */
                return 0;
        }
        if (cow_auth_count(a) == 0)
                abort(); /* accepted a file with no token */
        /* Tokens are printable: one of control bytes can match no entry, padding included. */
        uint8_t bogus[COW_AUTH_TOKEN_MIN];
        memset(bogus, 0x01, sizeof(bogus));
        if (cow_auth_check(a, bogus, sizeof(bogus), &uid) == 0)
                abort();
        cow_auth_free(a);
        return 0;
}
