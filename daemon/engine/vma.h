/* SPDX-License-Identifier: MIT */
/*
 * A process's mappings: a sorted array of non-overlapping page-aligned ranges,
 * each with a protection, private or shared, and (when shared) the memory
 * object behind it. Protection lives here rather than in page-table entries,
 * so mprotect changes no page table and a shared page-table node never has to
 * be copied for it; a TLB miss consults the mapping.
 */
#ifndef COWD_ENGINE_VMA_H
#define COWD_ENGINE_VMA_H

#include <stdbool.h>
#include <stdint.h>

struct frames;
struct memobj;

struct vma {
        uint64_t start, end; /* bytes, [start, end) */
        uint8_t prot;        /* COW_PROT_* */
        bool shared;
        uint8_t kind;        /* enum cow_map_kind */
        uint8_t device;      /* enum cow_device, for a device mapping */
        struct memobj *obj;  /* the pages' home: shared anonymous mappings' own object,
                              * or a file's page cache (shared or private); NULL for
                              * private anonymous memory and devices */
        uint64_t pgoff;      /* page offset of start within obj or the device */
};

struct vma_set {
        struct vma *v;
        uint32_t n, cap;
        uint64_t bytes; /* sum of lengths */
        unsigned page_shift;
};

void vma_set_fini(struct vma_set *s, struct frames *f);

/* Copies src into an empty dst for fork; memory objects gain a reference. */
int vma_set_copy(struct vma_set *dst, const struct vma_set *src);

/* Index of the first mapping ending after addr (s->n if none). */
uint32_t vma_index_after(const struct vma_set *s, uint64_t addr);

/* The mapping containing addr, or NULL. */
struct vma *vma_find(const struct vma_set *s, uint64_t addr);

/* True when no mapping overlaps [start, end). */
bool vma_range_free(const struct vma_set *s, uint64_t start, uint64_t end);

/* True when [start, end) is wholly mapped, with no holes. */
bool vma_range_covered(const struct vma_set *s, uint64_t start, uint64_t end);

/*
 * How many mappings the set would hold after cutting at start and at end,
 * less those inside [start, end) when remove is set.
 */
uint64_t vma_count_after(const struct vma_set *s, uint64_t start, uint64_t end, bool remove);

/* Lowest gap of len bytes within [lo, hi): 0 or -ENOSPC. */
int vma_find_gap(const struct vma_set *s, uint64_t len, uint64_t lo, uint64_t hi,
                 uint64_t *ret_addr);

/* Makes room for want mappings, so that changes up to that size cannot fail. */
int vma_reserve(struct vma_set *s, uint32_t want);

/* Inserts v, which overlaps nothing, taking over its object reference. */
int vma_insert(struct vma_set *s, const struct vma *v);

/* Splits the mapping containing addr so that a mapping starts at addr. */
int vma_split(struct vma_set *s, uint64_t addr);

/* Removes [start, end), splitting the mappings at its ends. */
int vma_remove(struct vma_set *s, uint64_t start, uint64_t end, struct frames *f);

/* Sets prot over [start, end), which must be covered, then merges neighbours. */
int vma_protect(struct vma_set *s, uint64_t start, uint64_t end, uint8_t prot);

#endif /* COWD_ENGINE_VMA_H */
