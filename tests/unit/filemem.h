/* SPDX-License-Identifier: MIT */
/*
 * A file backend in host memory for the engine tests: a few files by key,
 * counting reads, writes and syncs per file, able to fail any of them with a
 * given errno, and refusing (and recording) any write that would extend a
 * file, which the engine must never ask for.
 */
#ifndef COWD_TESTS_FILEMEM_H
#define COWD_TESTS_FILEMEM_H

#include <cowd/engine.h>

#include "swapmem.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FILEMEM_MAX 8

struct memfile {
        char key[COW_FILE_KEY_MAX + 1];
        uint8_t *data;
        uint64_t size;
        uint64_t reads, writes, syncs; /* successful calls */
        uint64_t synced_writes;        /* writes made durable by a sync */
};

struct filemem {
        struct memfile f[FILEMEM_MAX];
        int fail_read, fail_write, fail_sync; /* 0, or the negative errno to fail with */
        uint64_t extends;                     /* writes past a file's end (refused) */
};

static inline struct memfile *filemem_find(struct filemem *m, const char *key)
{
        for (int i = 0; i < FILEMEM_MAX; i++)
                if (m->f[i].data && strcmp(m->f[i].key, key) == 0)
                        return &m->f[i];
        return NULL;
}

/* Adds a file of size bytes holding data (or zeros when data is NULL). */
static inline struct memfile *filemem_add(struct filemem *m, const char *key, const void *data,
                                          uint64_t size)
{
        for (int i = 0; i < FILEMEM_MAX; i++) {
                struct memfile *f = &m->f[i];
                if (f->data)
                        continue;
                *f = (struct memfile){ 0 };
                strncpy(f->key, key, COW_FILE_KEY_MAX);
                f->data = calloc(size ? size : 1, 1);
                if (!f->data)
                        return NULL;
                if (data)
                        memcpy(f->data, data, size);
                f->size = size;
                return f;
        }
        return NULL;
}

static inline void filemem_fini(struct filemem *m)
{
        for (int i = 0; i < FILEMEM_MAX; i++)
                free(m->f[i].data);
        *m = (struct filemem){ 0 };
}

static inline ssize_t filemem_read(void *ctx, const char *key, uint64_t offset, void *buf,
                                   size_t len)
{
        struct filemem *m = ctx;
        struct memfile *f = filemem_find(m, key);
        if (!f)
                return -ENOENT;
        if (m->fail_read)
                return m->fail_read;
        f->reads++;
        if (offset >= f->size)
                return 0;
        size_t n = f->size - offset < len ? (size_t)(f->size - offset) : len;
        memcpy(buf, f->data + offset, n);
        return (ssize_t)n;
}

static inline int filemem_write(void *ctx, const char *key, uint64_t offset, const void *buf,
                                size_t len)
{
        struct filemem *m = ctx;
        struct memfile *f = filemem_find(m, key);
        if (!f)
                return -ENOENT;
        if (m->fail_write)
                return m->fail_write;
        if (offset > f->size || len > f->size - offset) {
                m->extends++;
                return -EFBIG;
        }
        memcpy(f->data + offset, buf, len);
        f->writes++;
        return 0;
}

static inline int filemem_sync(void *ctx, const char *key)
{
        struct filemem *m = ctx;
        struct memfile *f = filemem_find(m, key);
        if (!f)
                return -ENOENT;
        if (m->fail_sync)
                return m->fail_sync;
        f->syncs++;
        f->synced_writes = f->writes;
        return 0;
}

static const struct cow_file_ops filemem_ops = {
        .read = filemem_read, .write = filemem_write, .sync = filemem_sync,
};

/*
 * Hands e the file backend m, emptied first, and with nslots > 0 a fresh swap
 * backend sm of nslots pages (sm is emptied either way). Returns 0 or the
 * negative errno of swapmem_init().
 */
static inline int filemem_attach(cow_engine *e, struct filemem *m, struct swapmem *sm,
                                 uint64_t nslots, size_t page)
{
        int r;

        filemem_fini(m);
        cow_engine_set_files(e, &filemem_ops, m);
        swapmem_fini(sm);
        if (nslots == 0)
                return 0;
        r = swapmem_init(sm, nslots, page);
        if (r == 0)
                cow_engine_set_swap(e, &swapmem_ops, sm);
        return r;
}

#endif /* COWD_TESTS_FILEMEM_H */
