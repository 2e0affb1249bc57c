/* SPDX-License-Identifier: MIT */
#include "evict.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine-impl.h"

/* Private anonymous frames and page-cache frames; never pinned ones. */
static bool evictable(const struct frame *fr)
{
        if (fr->refs == 0 || (fr->flags & FRAME_PINNED))
                return false;
        return (fr->flags & FRAME_FILE) ||
               ((fr->flags & FRAME_ANON) && !(fr->flags & FRAME_OBJECT));
}

/* Whether the backend that evicting fr needs is there: the files' or swap. */
static bool backend_ready(const struct cow_engine *e, const struct frame *fr)
{
        return (fr->flags & FRAME_FILE) ? e->pc.ops != NULL : e->swap.ops != NULL;
}

/*
 * Whether evicting frame pfn would need a new swap slot that its owner's
 * quota refuses. Such a frame is passed by (memcg's swap.max): its owner's
 * pages stay in memory rather than let it take more swap.
 */
static bool slot_refused(const struct cow_engine *e, uint32_t pfn)
{
        const struct frame *fr = &e->frames.meta[pfn];
        return !(fr->flags & FRAME_FILE) && fr->next == 0 && charge_slot_full(&e->charge, pfn);
}

/* Drops every TLB entry, in every process, that caches vpn -> pfn. */
static void shoot_down(struct cow_engine *e, uint64_t vpn, uint32_t pfn)
{
        for (uint32_t i = 0; i < e->procs.n; i++) {
                struct tlb *t = &e->procs.v[i]->tlb;
                const struct tlb_entry *x = tlb_probe(t, vpn);
                if (x && x->pfn == pfn)
                        tlb_invalidate_range(t, vpn, vpn + 1);
        }
}

/*
 * Evicts one evictable frame: writes it to a slot unless the swap cache
 * holds a valid copy, then turns every leaf entry mapping it into a swap
 * entry. The write comes first, so a failing backend changes nothing.
 */
/*
 * Evicts a page-cache frame: writes it back if dirty (a failure changes
 * nothing), turns every leaf entry mapping it into an evicted-file-page entry
 * (a fault reads it again through the mapping's file and offset), and drops
 * it from the cache. Never to swap: the file is its home.
 */
static int evict_file_frame(struct cow_engine *e, uint32_t pfn)
{
        struct frame *fr = &e->frames.meta[pfn];
        int r = pc_writeback(&e->pc, pfn);
        if (r < 0)
                return r;
        while (fr->owner != 0) {
                const struct rmap_ent *x = &e->rmap.v[fr->owner];
                struct pt_node *leaf = x->leaf;
                unsigned idx = x->idx;
                rmap_del(&e->rmap, &e->frames, pfn, leaf, idx);
                /* A page either way: the counters up every path stay right. */
                leaf->pte[idx] = PTE_FILE;
                e->pt.file_out++;
                shoot_down(e, leaf->base + idx, pfn);
                frames_put(&e->frames, pfn);
        }
        pc_drop(&e->pc, pfn); /* the cache's reference, the last */
        e->counters.evictions++;
        e->generation++;
        return 0;
}

static int evict_frame(struct cow_engine *e, uint32_t pfn)
{
        struct swap *sw = &e->swap;
        if (e->frames.meta[pfn].flags & FRAME_FILE)
                return evict_file_frame(e, pfn);
        struct frame *fr = &e->frames.meta[pfn];
        uint32_t slot;

        if (fr->next != 0) {
                slot = fr->next - 1; /* clean: its copy in swap is still valid */
        } else {
                if (slot_refused(e, pfn)) {
                        charge_slot_refused(&e->charge);
                        return -EDQUOT;
                }
                if (!sw->ops || swap_pick(sw, &slot) < 0)
                        return -ENOMEM;
                int r = sw->ops->write(sw->ctx, slot, frames_data(&e->frames, pfn),
                                       e->frames.page_size);
                if (r < 0) {
                        e->counters.swap_errors++;
                        return r;
                }
                swap_claim(sw, slot);
                charge_slot(&e->charge, slot, pfn);
                e->counters.swap_outs++;
        }
        while (fr->owner != 0) {
                const struct rmap_ent *x = &e->rmap.v[fr->owner];
                struct pt_node *leaf = x->leaf;
                unsigned idx = x->idx;
                rmap_del(&e->rmap, &e->frames, pfn, leaf, idx);
                /* A page either way: the counters up every path stay right. */
                leaf->pte[idx] = pte_swap_make(slot);
                swap_dup(sw, slot);
                shoot_down(e, leaf->base + idx, pfn);
                frames_put(&e->frames, pfn); /* the last one leaves the swap cache */
        }
        e->counters.evictions++;
        e->generation++;
        return 0;
}

static uint32_t pick_global(struct cow_engine *e)
{
        struct frames *f = &e->frames;
        uint32_t best = 0;
        if (f->hwm == 0)
                return 0;
        if (e->cfg.policy == COW_POLICY_CLOCK) {
                /* Two turns: the first may only clear accessed bits. */
                for (uint64_t step = 0; step < 2 * (uint64_t)f->hwm + 1; step++) {
                        if (e->clock_hand == 0 || e->clock_hand > f->hwm)
                                e->clock_hand = 1;
                        uint32_t pfn = e->clock_hand++;
                        struct frame *fr = &f->meta[pfn];
                        if (!evictable(fr) || !backend_ready(e, fr) || slot_refused(e, pfn))
                                continue;
                        if (fr->aux & FRAME_REFERENCED) {
                                fr->aux &= (uint16_t)~FRAME_REFERENCED;
                                continue;
                        }
                        return pfn;
                }
                return 0;
        }
        uint64_t key = UINT64_MAX;
        for (uint32_t pfn = 1; pfn <= f->hwm; pfn++) {
                const struct frame *fr = &f->meta[pfn];
                if (!evictable(fr) || !backend_ready(e, fr) || slot_refused(e, pfn))
                        continue;
                uint64_t k = e->cfg.policy == COW_POLICY_FIFO ? fr->loaded : fr->used;
                if (k < key) {
                        key = k;
                        best = pfn;
                }
        }
        return best;
}

int evict_global(struct cow_engine *e)
{
        if (!e->swap.ops && (!e->pc.ops || e->pc.pages == 0))
                return -ENOMEM;
        uint32_t pfn = pick_global(e);
        return pfn ? evict_frame(e, pfn) : -ENOMEM;
}

/* ---- local replacement ------------------------------------------------- */

struct candidate {
        uint64_t vpn;
        uint32_t pfn; /* FRAME_ZERO for a zero-page mapping */
};

struct cand_list {
        const struct cow_engine *e;
        struct candidate *v;
        size_t n, cap;
        uint64_t lo, hi;
        uint64_t refused; /* pages passed by: their owner is at its swap-slot quota */
        int err;
};

static void collect(void *arg, uint64_t vpn, uint64_t pte)
{
        struct cand_list *l = arg;
        if (!(pte & PTE_PRESENT) || (vpn >= l->lo && vpn < l->hi) || l->err)
                return;
        uint32_t pfn = pte_pfn(pte);
        if (pfn != FRAME_ZERO && !evictable(&l->e->frames.meta[pfn]))
                return;
        if (pfn != FRAME_ZERO && slot_refused(l->e, pfn)) {
                l->refused++;
                return;
        }
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 64;
                struct candidate *v = realloc(l->v, cap * sizeof(*v));
                if (!v) {
                        l->err = -ENOMEM;
                        return;
                }
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n++] = (struct candidate){ .vpn = vpn, .pfn = pfn };
}

static size_t pick_local(struct cow_engine *e, struct cow_proc *p, const struct cand_list *l)
{
        if (p->policy == COW_POLICY_CLOCK) {
                /* Candidates are in address order: start at the hand, wrap once more. */
                size_t start = 0;
                while (start < l->n && l->v[start].vpn < p->clock_hand)
                        start++;
                for (size_t step = 0; step < 2 * l->n; step++) {
                        size_t k = (start + step) % l->n;
                        const struct candidate *c = &l->v[k];
                        struct frame *fr = &e->frames.meta[c->pfn];
                        if (c->pfn != FRAME_ZERO && (fr->aux & FRAME_REFERENCED)) {
                                fr->aux &= (uint16_t)~FRAME_REFERENCED;
                                continue;
                        }
                        p->clock_hand = c->vpn + 1;
                        return k;
                }
                return 0;
        }
        size_t best = 0;
        uint64_t key = UINT64_MAX;
        for (size_t k = 0; k < l->n; k++) {
                const struct frame *fr = &e->frames.meta[l->v[k].pfn];
                uint64_t x = l->v[k].pfn == FRAME_ZERO ? 0 :
                             p->policy == COW_POLICY_FIFO ? fr->loaded : fr->used;
                if (x < key) {
                        key = x;
                        best = k;
                }
        }
        return best;
}

/* A zero-page mapping of p is dropped: reading it again maps the zero page again. */
static int drop_zero(struct cow_engine *e, struct cow_proc *p, uint64_t vpn)
{
        int r = pt_reserve(&e->pt, pt_nodes_for_prepare(&e->pt, p->root, vpn));
        if (r < 0)
                return r;
        struct pt_path path;
        uint64_t *entry = pt_prepare(&e->pt, p->root, vpn, &path);
        pt_set(&e->pt, &path, entry, 0);
        tlb_invalidate_range(&p->tlb, vpn, vpn + 1);
        e->counters.evictions++;
        e->generation++;
        return 0;
}

int evict_local(struct cow_engine *e, struct cow_proc *p, uint64_t lo_vpn, uint64_t hi_vpn)
{
        struct cand_list l = { .e = e, .lo = lo_vpn, .hi = hi_vpn };
        pt_walk(&e->pt, p->root, 0, e->pt.vpn_limit, collect, &l);
        int r = l.err;
        if (r == 0 && l.n == 0 && l.refused) {
                charge_slot_refused(&e->charge);
                r = -EDQUOT;
        } else if (r == 0 && l.n == 0) {
                r = -ENOMEM;
        }
        if (r == 0) {
                const struct candidate c = l.v[pick_local(e, p, &l)];
                if (c.pfn == FRAME_ZERO)
                        r = drop_zero(e, p, c.vpn);
                else if (!backend_ready(e, &e->frames.meta[c.pfn]))
                        r = -ENOMEM;
                else
                        r = evict_frame(e, c.pfn);
        }
        free(l.v);
        return r;
}

struct count_acc {
        uint64_t swapped, out;
};

static void count_out(void *arg, uint64_t vpn, uint64_t pte)
{
        struct count_acc *acc = arg;
        (void)vpn;
        acc->swapped += pte_is_swap(pte);
        acc->out += pte_is_out(pte);
}

static struct count_acc proc_count_out(const struct cow_engine *e, const struct cow_proc *p)
{
        struct count_acc acc = { 0 };
        /* No swap entry or evicted file page anywhere: skip the walk. */
        if (e->swap.used != 0 || e->pt.file_out != 0)
                pt_walk(&e->pt, p->root, 0, e->pt.vpn_limit, count_out, &acc);
        return acc;
}

uint64_t proc_swapped(const struct cow_engine *e, const struct cow_proc *p)
{
        return proc_count_out(e, p).swapped;
}

uint64_t proc_out(const struct cow_engine *e, const struct cow_proc *p)
{
        return proc_count_out(e, p).out;
}

uint64_t proc_resident(const struct cow_engine *e, const struct cow_proc *p)
{
        return p->root->pages + p->root->zeros - proc_out(e, p);
}

/* ---- out of memory ------------------------------------------------------ */

int oom_kill(struct cow_engine *e, const struct cow_proc *spare)
{
        if (!e->cfg.oom_kill)
                return -ENOMEM;
        struct cow_proc *victim = NULL;
        for (uint32_t i = 0; i < e->procs.n; i++) {
                struct cow_proc *p = e->procs.v[i];
                /* Like Linux's badness: what it holds, in memory and in swap. */
                if (p != spare && (!victim || p->root->pages > victim->root->pages))
                        victim = p;
        }
        if (!victim || victim->root->pages == 0)
                return -ENOMEM;
        cow_pid pid = victim->pid;
        if (cow_engine_exit(e, pid) < 0)
                return -ENOMEM;
        e->counters.oom_kills++;
        if (e->oom.n < OOM_VICTIMS_MAX)
                e->oom.pid[e->oom.n++] = pid;
        return 0;
}
