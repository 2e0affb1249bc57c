/* SPDX-License-Identifier: MIT */
#include "tlb.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static inline uint32_t index_slot(const struct tlb *t, uint64_t vpn)
{
        return (uint32_t)((vpn * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & t->index_mask;
}

static void index_clear(struct tlb *t)
{
        memset(t->index, 0xff, ((size_t)t->index_mask + 1) * sizeof(*t->index));
}

static void index_add(struct tlb *t, uint32_t entry)
{
        uint32_t i = index_slot(t, t->e[entry].vpn);
        while (t->index[i] >= 0)
                i = (i + 1) & t->index_mask;
        t->index[i] = (int32_t)entry;
}

/* Removes entry (which is indexed), shifting later probes back into the hole. */
static void index_remove(struct tlb *t, uint32_t entry)
{
        uint32_t i = index_slot(t, t->e[entry].vpn);
        while (t->index[i] != (int32_t)entry)
                i = (i + 1) & t->index_mask;
        for (uint32_t j = (i + 1) & t->index_mask; t->index[j] >= 0; j = (j + 1) & t->index_mask) {
                uint32_t home = index_slot(t, t->e[t->index[j]].vpn);
                /* j's entry may move into the hole at i unless its home lies in (i, j]. */
                bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
                if (!stays) {
                        t->index[i] = t->index[j];
                        i = j;
                }
        }
        t->index[i] = -1;
}

int tlb_init(struct tlb *t, uint32_t entries, uint32_t ways)
{
        if (ways == 0)
                ways = entries;
        if (entries == 0 || ways == 0 || entries % ways != 0)
                return -EINVAL;
        *t = (struct tlb){ .entries = entries, .ways = ways, .sets = entries / ways };
        uint32_t slots = 4;
        while (slots < 2 * entries)
                slots *= 2;
        t->index_mask = slots - 1;
        t->e = calloc(entries, sizeof(*t->e));
        t->index = malloc(slots * sizeof(*t->index));
        if (!t->e || !t->index) {
                tlb_fini(t);
                return -ENOMEM;
        }
        index_clear(t);
        return 0;
}

void tlb_fini(struct tlb *t)
{
        free(t->e);
        free(t->index);
        t->e = NULL;
        t->index = NULL;
}

const struct tlb_entry *tlb_probe(const struct tlb *t, uint64_t vpn)
{
        for (uint32_t i = index_slot(t, vpn); t->index[i] >= 0; i = (i + 1) & t->index_mask)
                if (t->e[t->index[i]].vpn == vpn)
                        return &t->e[t->index[i]];
        return NULL;
}

struct tlb_entry *tlb_lookup(struct tlb *t, uint64_t vpn)
{
        struct tlb_entry *hit = (struct tlb_entry *)tlb_probe(t, vpn);
        if (hit) {
                t->hits++;
                hit->stamp = ++t->clock;
        } else {
                t->misses++;
        }
        return hit;
}

static void entry_invalidate(struct tlb *t, uint32_t i)
{
        if (t->e[i].stamp == 0)
                return;
        index_remove(t, i);
        t->e[i].stamp = 0;
}

void tlb_fill(struct tlb *t, uint64_t vpn, uint32_t pfn, bool writable)
{
        struct tlb_entry *hit = (struct tlb_entry *)tlb_probe(t, vpn);
        if (hit) {
                hit->pfn = pfn;
                hit->writable = writable;
                hit->stamp = ++t->clock;
                return;
        }
        /* The set's least recently used entry; an invalid one (stamp 0) first. The
         * oldest stamp stays in a register: reloading it through victim would
         * chain every iteration's load onto the one before. */
        uint32_t base = (uint32_t)(vpn % t->sets) * t->ways, victim = base;
        uint64_t oldest = UINT64_MAX;
        for (uint32_t w = 0; w < t->ways; w++) {
                uint64_t stamp = t->e[base + w].stamp;
                if (stamp < oldest) {
                        oldest = stamp;
                        victim = base + w;
                        if (stamp == 0)
                                break;
                }
        }
        entry_invalidate(t, victim);
        t->e[victim] = (struct tlb_entry){
                .vpn = vpn, .pfn = pfn, .writable = writable, .stamp = ++t->clock
        };
        index_add(t, victim);
}

void tlb_invalidate_range(struct tlb *t, uint64_t start_vpn, uint64_t end_vpn)
{
        for (uint32_t i = 0; i < t->entries; i++)
                if (t->e[i].stamp != 0 && t->e[i].vpn >= start_vpn && t->e[i].vpn < end_vpn)
                        entry_invalidate(t, i);
}

void tlb_flush(struct tlb *t)
{
        for (uint32_t i = 0; i < t->entries; i++)
                t->e[i].stamp = 0;
        index_clear(t);
}

void tlb_write_protect_all(struct tlb *t)
{
        for (uint32_t i = 0; i < t->entries; i++)
                t->e[i].writable = false;
}

void tlb_reindex(struct tlb *t)
{
        index_clear(t);
        for (uint32_t i = 0; i < t->entries; i++)
                if (t->e[i].stamp != 0)
                        index_add(t, i);
}
