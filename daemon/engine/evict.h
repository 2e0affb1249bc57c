/* SPDX-License-Identifier: MIT */
/*
 * Page replacement: choosing a victim by policy (clock, FIFO, LRU), evicting
 * it through the reverse map, and the OOM killer.
 *
 * Evicting a frame turns every leaf entry that maps it (found by the reverse
 * map, one entry per leaf however many processes share the leaf) into the
 * same swap entry, shoots down every TLB entry that caches it, and writes the
 * page to swap once; a frame still in the swap cache is clean and is dropped
 * without a write. Private anonymous frames and page-cache frames are
 * evicted: a page-cache frame is written back to its file if dirty (never to
 * swap) and dropped, its entries becoming evicted-file-page entries. The zero
 * page, frames of shared anonymous memory and device frames never are.
 *
 * Global replacement runs when no frame is free (cfg.policy over all frames).
 * Local replacement runs when a process with max_resident is at its limit
 * (its own policy over its own present pages; a zero-page mapping is dropped
 * rather than swapped, and counts as the oldest and unreferenced page).
 * Clock is amortised O(1) per eviction; FIFO and LRU scan every frame (or
 * every page of the process), which keeps per-frame state to two stamps.
 */
#ifndef COWD_ENGINE_EVICT_H
#define COWD_ENGINE_EVICT_H

#include <stdbool.h>
#include <stdint.h>

struct cow_engine;
struct cow_proc;

/*
 * Frees at least one frame by evicting a victim of the global policy.
 * Returns 0, -ENOMEM (nothing evictable, no swap, or swap full) or the
 * backend's error; on an error nothing has changed. Frames whose owner is at
 * its swap-slot quota and that would need a new slot are passed by.
 */
int evict_global(struct cow_engine *e);

/*
 * Takes one present page of p, not in [lo_vpn, hi_vpn), away by p's policy.
 * Returns 0, -ENOMEM, -ENOBUFS (dropping a zero-page mapping needs a node),
 * -EDQUOT (every candidate needs a new swap slot its owner's quota refuses)
 * or the backend's error.
 */
int evict_local(struct cow_engine *e, struct cow_proc *p, uint64_t lo_vpn, uint64_t hi_vpn);

/* Pages p's page table holds present: real frames and zero-page mappings. */
uint64_t proc_resident(const struct cow_engine *e, const struct cow_proc *p);

/* Entries of p's page table that are swap entries. */
uint64_t proc_swapped(const struct cow_engine *e, const struct cow_proc *p);

/* Entries of p's page table that hold a page out of memory: swapped or evicted file pages. */
uint64_t proc_out(const struct cow_engine *e, const struct cow_proc *p);

/*
 * When cfg.oom_kill is set: ends the process holding the most pages, other
 * than spare, and logs it. Returns 0, or -ENOMEM when there is none to kill.
 */
int oom_kill(struct cow_engine *e, const struct cow_proc *spare);

#endif /* COWD_ENGINE_EVICT_H */
