/* SPDX-License-Identifier: MIT */
#include "memobj.h"

#include <errno.h>
#include <stdlib.h>

#include "frames.h"

struct memobj *memobj_new(void)
{
        struct memobj *o = calloc(1, sizeof(*o));
        if (o)
                o->refs = 1;
        return o;
}

void memobj_unref(struct memobj *o, struct frames *f)
{
        if (!o || --o->refs != 0)
                return;
        for (uint32_t i = 0; i < o->cap; i++)
                if (o->keys[i] != 0)
                        frames_put(f, o->frames[i]);
        free(o->keys);
        free(o->frames);
        free(o);
}

static inline uint32_t slot_of(uint64_t key, uint32_t cap)
{
        /* Fibonacci hashing spreads consecutive page offsets. */
        return (uint32_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (cap - 1);
}

uint32_t memobj_lookup(const struct memobj *o, uint64_t pgoff)
{
        if (o->cap == 0)
                return 0;
        uint64_t key = pgoff + 1;
        for (uint32_t i = slot_of(key, o->cap);; i = (i + 1) & (o->cap - 1)) {
                if (o->keys[i] == key)
                        return o->frames[i];
                if (o->keys[i] == 0)
                        return 0;
        }
}

static int grow(struct memobj *o)
{
        uint32_t cap = o->cap ? o->cap * 2 : 64;
        uint64_t *keys = calloc(cap, sizeof(*keys));
        uint32_t *frames = calloc(cap, sizeof(*frames));
        if (!keys || !frames) {
                free(keys);
                free(frames);
                return -ENOMEM;
        }
        for (uint32_t i = 0; i < o->cap; i++) {
                if (o->keys[i] == 0)
                        continue;
                uint32_t j = slot_of(o->keys[i], cap);
                while (keys[j] != 0)
                        j = (j + 1) & (cap - 1);
                keys[j] = o->keys[i];
                frames[j] = o->frames[i];
        }
        free(o->keys);
        free(o->frames);
        o->keys = keys;
        o->frames = frames;
        o->cap = cap;
        return 0;
}

int memobj_insert(struct memobj *o, uint64_t pgoff, uint32_t pfn)
{
        /* Keep the table at most half full so probes stay short. */
        if ((o->count + 1) * 2 > o->cap) {
                int r = grow(o);
                if (r < 0)
                        return r;
        }
        uint64_t key = pgoff + 1;
        uint32_t i = slot_of(key, o->cap);
        while (o->keys[i] != 0)
                i = (i + 1) & (o->cap - 1);
        o->keys[i] = key;
        o->frames[i] = pfn;
        o->count++;
        return 0;
}

void memobj_remove(struct memobj *o, uint64_t pgoff)
{
        if (o->cap == 0)
                return;
        uint64_t key = pgoff + 1;
        uint32_t mask = o->cap - 1, i = slot_of(key, o->cap);
        while (o->keys[i] != key) {
                if (o->keys[i] == 0)
                        return;
                i = (i + 1) & mask;
        }
        /* Backward-shift deletion: later entries of the probe run move up, so
         * every lookup still stops at the first empty slot. */
        for (uint32_t j = (i + 1) & mask; o->keys[j] != 0; j = (j + 1) & mask) {
                uint32_t home = slot_of(o->keys[j], o->cap);
                /* Move j into the hole at i unless its home lies cyclically in (i, j]. */
                bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
                if (stays)
                        continue;
                o->keys[i] = o->keys[j];
                o->frames[i] = o->frames[j];
                i = j;
        }
        o->keys[i] = 0;
        o->frames[i] = 0;
        o->count--;
}
