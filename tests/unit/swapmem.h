/* SPDX-License-Identifier: MIT */
/*
 * A swap backend in host memory for the engine tests: it counts its calls
 * and can be told to fail writes or reads with a given errno.
 */
#ifndef COWD_TESTS_SWAPMEM_H
#define COWD_TESTS_SWAPMEM_H

#include <cowd/engine.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct swapmem {
        uint8_t *data;
        uint64_t slots;
        size_t page;
        uint64_t writes, reads;  /* successful calls */
        int fail_write, fail_read; /* 0, or the negative errno to fail with */
};

static inline int swapmem_write(void *ctx, uint64_t slot, const void *page, size_t len)
{
        struct swapmem *s = ctx;
        if (slot >= s->slots || len != s->page)
                return -EINVAL;
        if (s->fail_write)
                return s->fail_write;
        memcpy(s->data + slot * s->page, page, len);
        s->writes++;
        return 0;
}

static inline int swapmem_read(void *ctx, uint64_t slot, void *page, size_t len)
{
        struct swapmem *s = ctx;
        if (slot >= s->slots || len != s->page)
                return -EINVAL;
        if (s->fail_read)
                return s->fail_read;
        memcpy(page, s->data + slot * s->page, len);
        s->reads++;
        return 0;
}

static const struct cow_swap_ops swapmem_ops = { .write = swapmem_write, .read = swapmem_read };

static inline int swapmem_init(struct swapmem *s, uint64_t slots, size_t page)
{
        *s = (struct swapmem){ .slots = slots, .page = page };
        s->data = calloc(slots ? slots : 1, page);
        return s->data ? 0 : -ENOMEM;
}

static inline void swapmem_fini(struct swapmem *s)
{
        free(s->data);
        s->data = NULL;
}

#endif /* COWD_TESTS_SWAPMEM_H */
