/* SPDX-License-Identifier: MIT */
/*
 * Swap slots and the swap cache.
 *
 * A slot's count is the number of swap entries (in distinct leaves) naming it,
 * plus one while the swap cache links it to a resident frame. The swap cache
 * is Linux's: after a swap-in the frame stays linked to its slot (frame.next =
 * slot + 1, slot.link = frame), so a sharer faulting the same entry later
 * finds the frame without a read, and evicting the frame again, while it is
 * still clean, needs no write. Granting write permission on the frame breaks
 * the link (its copy in swap goes stale).
 *
 * The slot table is reserved lazily from the host like the frames, so a large
 * swap costs nothing until used; 8 bytes per slot.
 */
#ifndef COWD_ENGINE_SWAP_H
#define COWD_ENGINE_SWAP_H

#include <cowd/engine.h>

#include <stdbool.h>
#include <stdint.h>

struct frames;

struct swap_slot {
        uint32_t count;
        uint32_t link; /* in use: the cached frame or 0; free: next free slot + 1 */
};

struct swap {
        struct swap_slot *s;
        size_t map_len;
        uint32_t nslots;
        uint32_t hwm;       /* slots 0..hwm-1 have been handed out at least once */
        uint32_t free_head; /* a freed slot + 1, or 0 */
        uint32_t used;      /* slots with count > 0 */
        bool held;          /* slots freed now go to the held list, not the free list */
        uint32_t held_head; /* a slot freed while held + 1, or 0; chained like the free list */
        const struct cow_swap_ops *ops;
        void *ctx;
        struct frames *frames;
        struct charge *charge; /* owners' charges (charge.h), or NULL when not kept */
};

int swap_init(struct swap *sw, uint32_t nslots, struct frames *frames);
void swap_fini(struct swap *sw);

/*
 * A slot to write a page to: a free one, or else one only the swap cache
 * holds (its frame loses the link and will be written again if evicted).
 * Returns 0 or -ENOMEM when every slot is needed. The slot stays free until
 * swap_claim().
 */
int swap_pick(struct swap *sw, uint32_t *ret_slot);

/* Takes the slot swap_pick() returned out of the free pool, with count 0. */
void swap_claim(struct swap *sw, uint32_t slot);

static inline void swap_dup(struct swap *sw, uint32_t slot)
{
        sw->s[slot].count++;
}

/* Drops one reference; the last one frees the slot (or holds it, see swap_hold()). */
void swap_put(struct swap *sw, uint32_t slot);

/*
 * From now on no slot in use is written again: slots freed are kept on the
 * held list instead of the free list, and swap_pick() gives up no swap-cache
 * slot. A copy of the engine made by fork() can then read every slot it
 * sees in use, through the same backend, while this one goes on.
 */
void swap_hold(struct swap *sw);

/* Ends swap_hold(): the held slots join the free list. */
void swap_release(struct swap *sw);

/* The frame cached for slot, or 0. */
static inline uint32_t swap_cached(const struct swap *sw, uint32_t slot)
{
        return sw->s[slot].link;
}

/* Links a resident frame holding the slot's data into the swap cache. */
void swap_cache_add(struct swap *sw, uint32_t slot, uint32_t pfn);

/* Breaks the link of a cached frame (the frame is about to be written or freed). */
void swap_cache_del(struct swap *sw, uint32_t slot);

#endif /* COWD_ENGINE_SWAP_H */
