/* SPDX-License-Identifier: MIT */
#include "tlb.h"

#include <errno.h>
#include <stdlib.h>

int tlb_init(struct tlb *t, uint32_t entries, uint32_t ways)
{
        if (ways == 0)
                ways = entries;
        if (entries == 0 || ways == 0 || entries % ways != 0)
                return -EINVAL;
        *t = (struct tlb){ .entries = entries, .ways = ways, .sets = entries / ways };
        t->e = calloc(entries, sizeof(*t->e));
        return t->e ? 0 : -ENOMEM;
}

void tlb_fini(struct tlb *t)
{
        free(t->e);
        t->e = NULL;
}

static inline struct tlb_entry *set_of(const struct tlb *t, uint64_t vpn)
{
        return t->e + (size_t)(vpn % t->sets) * t->ways;
}

const struct tlb_entry *tlb_probe(const struct tlb *t, uint64_t vpn)
{
        const struct tlb_entry *s = set_of(t, vpn);
        for (uint32_t w = 0; w < t->ways; w++)
                if (s[w].stamp != 0 && s[w].vpn == vpn)
                        return &s[w];
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

void tlb_fill(struct tlb *t, uint64_t vpn, uint32_t pfn, bool writable)
{
        struct tlb_entry *s = set_of(t, vpn), *victim = &s[0];
        for (uint32_t w = 0; w < t->ways; w++) {
                if (s[w].stamp != 0 && s[w].vpn == vpn) {
                        victim = &s[w];
                        break;
                }
                if (s[w].stamp < victim->stamp)
                        victim = &s[w];
        }
        *victim = (struct tlb_entry){
                .vpn = vpn, .pfn = pfn, .writable = writable, .stamp = ++t->clock
        };
}

void tlb_invalidate_range(struct tlb *t, uint64_t start_vpn, uint64_t end_vpn)
{
        for (uint32_t i = 0; i < t->entries; i++)
                if (t->e[i].stamp != 0 && t->e[i].vpn >= start_vpn && t->e[i].vpn < end_vpn)
                        t->e[i].stamp = 0;
}

void tlb_flush(struct tlb *t)
{
        for (uint32_t i = 0; i < t->entries; i++)
                t->e[i].stamp = 0;
}

void tlb_write_protect_all(struct tlb *t)
{
        for (uint32_t i = 0; i < t->entries; i++)
                t->e[i].writable = false;
}
