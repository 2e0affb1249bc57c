/* SPDX-License-Identifier: MIT */
/*
 * A memory object: the pages behind a shared mapping, indexed by page offset.
 * Every process mapping the object finds the same frame for a page here, so a
 * write through one mapping is seen through all (MAP_SHARED). The object holds
 * one reference on each of its frames. Shared anonymous memory uses one per
 * mapping (and its forks); a file's page cache is one per file (pagecache.h),
 * referenced by every mapping of the file, shared or private.
 */
#ifndef COWD_ENGINE_MEMOBJ_H
#define COWD_ENGINE_MEMOBJ_H

#include <stdint.h>

struct frames;

struct memobj {
        uint32_t refs;     /* mappings referencing the object */
        uint32_t count;    /* pages held */
        uint32_t cap;      /* hash slots, a power of two */
        uint32_t scan_epoch; /* scratch for cow_engine_verify() */
        uint32_t scan_refs;
        uint32_t save_id;    /* scratch for checkpoints */
        uint32_t file;       /* a file's page cache: its slot in the file table + 1; else 0 */
        uint64_t *keys;    /* page offset + 1; 0 marks an empty slot */
        uint32_t *frames;
};

struct memobj *memobj_new(void);

static inline void memobj_ref(struct memobj *o)
{
        o->refs++;
}

/* Drops a reference; the last one releases every frame the object holds. */
void memobj_unref(struct memobj *o, struct frames *f);

/* The frame holding page pgoff, or 0 when the object has none yet. */
uint32_t memobj_lookup(const struct memobj *o, uint64_t pgoff);

/* Adds page pgoff, taking over one reference on pfn. 0 or -ENOMEM. */
int memobj_insert(struct memobj *o, uint64_t pgoff, uint32_t pfn);

/* Forgets page pgoff, handing its frame reference back to the caller. */
void memobj_remove(struct memobj *o, uint64_t pgoff);

#endif /* COWD_ENGINE_MEMOBJ_H */
