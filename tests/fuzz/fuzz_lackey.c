/* SPDX-License-Identifier: MIT */
/*
 * The lackey trace parser: any bytes, cut into chunks at places the input
 * chooses, give the same accesses and the same outcome as the whole input at
 * once, and every error names its line.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lackey.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct digest {
        uint64_t n;
        uint64_t sum; /* order-sensitive mix of every access */
};

static int mix(void *ctx, const struct lackey_access *a)
{
        struct digest *d = ctx;

        if (a->size == 0 || a->size > LACKEY_SIZE_MAX || a->addr > UINT64_MAX - (a->size - 1))
                abort();
        if (a->kind != LACKEY_INSTR && a->kind != LACKEY_LOAD && a->kind != LACKEY_STORE &&
            a->kind != LACKEY_MODIFY)
                abort();
        d->n++;
        d->sum = d->sum * 1000003u ^ (a->addr + a->size * 31u + (uint64_t)a->kind);
        return 0;
}

static int run(const uint8_t *data, size_t size, size_t chunk, struct digest *d,
               struct lackey_parser *p)
{
        int r = 0;

        lackey_init(p, mix, d);
        for (size_t i = 0; i < size && r == 0; i += chunk)
                r = lackey_feed(p, (const char *)data + i, size - i < chunk ? size - i : chunk);
        if (r == 0)
                r = lackey_finish(p);
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct lackey_parser whole, cut;
        struct digest a = { 0 }, b = { 0 };
        /* The first byte picks the chunk size of the second run. */
        size_t chunk = size ? (size_t)data[0] % 17 + 1 : 1;

        int ra = run(data, size, size ? size : 1, &a, &whole);
        int rb = run(data, size, chunk, &b, &cut);
        if (ra != rb || a.n != b.n || a.sum != b.sum)
                abort();
        if (ra == -EINVAL) {
                if (strncmp(whole.error, "line ", 5) != 0 || strcmp(whole.error, cut.error) != 0)
                        abort();
        } else if (ra != 0) {
                abort();
        }
        return 0;
}
