/* SPDX-License-Identifier: MIT */
/* An in-memory checkpoint: a sink and a source for cow_engine_save() and _load(). */
#ifndef COWD_TESTS_BLOB_H
#define COWD_TESTS_BLOB_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct blob {
        uint8_t *p;
        size_t len, cap; /* bytes written, bytes allocated */
        size_t pos;      /* bytes read back */
};

static inline int blob_sink(void *ctx, const void *buf, size_t len)
{
        struct blob *b = ctx;
        if (b->len + len > b->cap) {
                size_t cap = (b->len + len) * 2;
                uint8_t *p = realloc(b->p, cap);
                if (!p)
                        return -ENOMEM;
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->len, buf, len);
        b->len += len;
        return 0;
}

static inline int blob_source(void *ctx, void *buf, size_t len)
{
        struct blob *b = ctx;
        if (len > b->len - b->pos)
                return -ENODATA;
        memcpy(buf, b->p + b->pos, len);
        b->pos += len;
        return 0;
}

#endif /* COWD_TESTS_BLOB_H */
