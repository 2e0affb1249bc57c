/* SPDX-License-Identifier: MIT */
#include "swap.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "charge.h"
#include "frames.h"

/* frames_put() calls this when a cached frame loses its last reference. */
static void uncache(void *ctx, uint32_t slot)
{
        swap_cache_del(ctx, slot);
}

int swap_init(struct swap *sw, uint32_t nslots, struct frames *frames)
{
        memset(sw, 0, sizeof(*sw));
        sw->frames = frames;
        sw->nslots = nslots;
        frames->uncache = uncache;
        frames->uncache_ctx = sw;
        if (nslots == 0)
                return 0;
        sw->map_len = (size_t)nslots * sizeof(*sw->s);
        void *p = mmap(NULL, sw->map_len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
                return -ENOMEM;
        sw->s = p;
        return 0;
}

void swap_fini(struct swap *sw)
{
        if (sw->s)
                munmap(sw->s, sw->map_len);
        sw->s = NULL;
}

int swap_pick(struct swap *sw, uint32_t *ret_slot)
{
        if (sw->free_head != 0) {
                *ret_slot = sw->free_head - 1;
                return 0;
        }
        if (sw->hwm < sw->nslots) {
                *ret_slot = sw->hwm;
                return 0;
        }
        /*
         * Full: a slot that only the swap cache still holds can be given up,
         * unless held: its old contents may still be read by a copy.
         */
        for (uint32_t s = 0; s < sw->hwm && !sw->held; s++) {
                if (sw->s[s].count == 1 && sw->s[s].link != 0) {
                        swap_cache_del(sw, s); /* frees it: now the free head */
                        *ret_slot = s;
                        return 0;
                }
        }
        return -ENOMEM;
}

void swap_claim(struct swap *sw, uint32_t slot)
{
        if (sw->free_head == slot + 1)
                sw->free_head = sw->s[slot].link;
        else
                sw->hwm++;
        sw->s[slot] = (struct swap_slot){ 0 };
        sw->used++;
}

void swap_put(struct swap *sw, uint32_t slot)
{
        struct swap_slot *s = &sw->s[slot];
        if (--s->count != 0)
                return;
        if (sw->charge)
                charge_slot_free(sw->charge, slot);
        if (sw->held) {
                s->link = sw->held_head;
                sw->held_head = slot + 1;
        } else {
                s->link = sw->free_head;
                sw->free_head = slot + 1;
        }
        sw->used--;
}

void swap_hold(struct swap *sw)
{
        sw->held = true;
}

void swap_release(struct swap *sw)
{
        while (sw->held_head != 0) {
                uint32_t slot = sw->held_head - 1;
                sw->held_head = sw->s[slot].link;
                sw->s[slot].link = sw->free_head;
                sw->free_head = slot + 1;
        }
        sw->held = false;
}

void swap_cache_add(struct swap *sw, uint32_t slot, uint32_t pfn)
{
        sw->s[slot].link = pfn;
        sw->s[slot].count++;
        sw->frames->meta[pfn].next = slot + 1;
}

void swap_cache_del(struct swap *sw, uint32_t slot)
{
        uint32_t pfn = sw->s[slot].link;
        sw->frames->meta[pfn].next = 0;
        sw->s[slot].link = 0;
        swap_put(sw, slot);
}
