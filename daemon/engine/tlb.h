/* SPDX-License-Identifier: MIT */
/*
 * A per-process translation lookaside buffer: set-associative with LRU
 * replacement within a set (ways == entries makes it fully associative).
 * It caches a virtual page's frame and whether a write may use it; the page
 * table stays the truth, and every change to it that a cached entry could
 * contradict invalidates that entry.
 */
#ifndef COWD_ENGINE_TLB_H
#define COWD_ENGINE_TLB_H

#include <stdbool.h>
#include <stdint.h>

struct tlb_entry {
        uint64_t vpn;
        uint64_t stamp; /* last use; 0 = invalid */
        uint32_t pfn;
        bool writable;
};

struct tlb {
        struct tlb_entry *e;
        uint32_t entries;
        uint32_t ways;
        uint32_t sets;
        uint64_t clock;
        uint64_t hits;
        uint64_t misses;
        /* vpn -> entry, so that a lookup is a probe or two rather than a scan
         * of a whole set (a fully associative TLB is one set of every entry):
         * open addressing, linear probing, -1 for an empty slot. */
        int32_t *index;
        uint32_t index_mask;
};

/* ways == 0 means fully associative. entries must be a multiple of ways. */
int tlb_init(struct tlb *t, uint32_t entries, uint32_t ways);
void tlb_fini(struct tlb *t);

/* Looks vpn up, counting a hit or a miss; a hit becomes most recently used. */
struct tlb_entry *tlb_lookup(struct tlb *t, uint64_t vpn);

/* Looks vpn up without counting or touching LRU state. */
const struct tlb_entry *tlb_probe(const struct tlb *t, uint64_t vpn);

/* Installs or updates vpn's translation, evicting the set's LRU entry. */
void tlb_fill(struct tlb *t, uint64_t vpn, uint32_t pfn, bool writable);

void tlb_invalidate_range(struct tlb *t, uint64_t start_vpn, uint64_t end_vpn);
void tlb_flush(struct tlb *t);

/* Makes every entry read-only: the page table just shared its nodes. */
void tlb_write_protect_all(struct tlb *t);

/* Rebuilds the lookup index after the entries were written directly (a checkpoint). */
void tlb_reindex(struct tlb *t);

#endif /* COWD_ENGINE_TLB_H */
