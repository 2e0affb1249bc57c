/* SPDX-License-Identifier: MIT */
#include "fault.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine-impl.h"
#include "evict.h"
#include "memobj.h"

bool engine_write_ok(const struct vma *v, uint64_t pte, unsigned path_state)
{
        if (!(v->prot & COW_PROT_WRITE) || !(pte & PTE_PRESENT))
                return false;
        if (v->shared)
                return true;
        return path_state == PT_PATH_CLEAN && (pte & PTE_WRITE);
}

static uint64_t vma_pgoff(const struct cow_engine *e, const struct vma *v, uint64_t vpn)
{
        return v->pgoff + (vpn - engine_vpn(e, v->start));
}

/* What an access to one page would take. */
struct page_needs {
        unsigned frames;  /* frames it would allocate: 0, 1, or 2 (read from swap, then copy) */
        bool prepare;     /* it changes the page table, so its path must be prepared */
        bool io;          /* its page must be read: from swap or from a file */
        bool fills;       /* a non-present entry becomes present */
};

/* Works out what accessing vpn would take. Changes nothing. */
static struct page_needs page_needs(const struct cow_engine *e, const struct cow_proc *p,
                                    const struct vma *v, uint64_t vpn, bool write)
{
        const struct tlb_entry *t = tlb_probe(&p->tlb, vpn);
        if (t && (!write || t->writable))
                return (struct page_needs){ 0 };

        unsigned state;
        uint64_t pte = pt_lookup(&e->pt, p->root, vpn, &state);
        bool present = (pte & PTE_PRESENT) != 0;
        if (present && (!write || engine_write_ok(v, pte, state)))
                return (struct page_needs){ 0 }; /* a TLB fill, nothing more */
        if (pte_is_swap(pte)) {
                /* Swapped in where the entry is, shared leaf or not; a write then
                 * reuses the frame or copies it as for any present page. */
                uint32_t cached = swap_cached(&e->swap, pte_swap_slot(pte));
                struct page_needs n = { .frames = cached == 0, .io = true, .fills = true };
                if (write) {
                        uint32_t refs = cached ? e->frames.meta[cached].refs + 1 : 1;
                        n.frames += (state & PT_PATH_SHARED) || refs != 1;
                        n.prepare = true;
                }
                return n;
        }
        if (v->kind == COW_MAP_DEVICE)
                return (struct page_needs){ .prepare = true, .fills = !present };
        if (v->kind == COW_MAP_FILE && (v->shared || !present)) {
                /* The page cache's frame, read first if it is not there; a private
                 * write then copies it (do_cow_fault). */
                bool cached = memobj_lookup(v->obj, vma_pgoff(e, v, vpn)) != 0;
                return (struct page_needs){
                        .frames = !cached + (!v->shared && write), .io = !cached,
                        .prepare = true, .fills = !present,
                };
        }
        if (v->shared)
                return (struct page_needs){
                        .frames = memobj_lookup(v->obj, vma_pgoff(e, v, vpn)) == 0,
                        .prepare = true, .fills = !present,
                };
        if (!write || !present || pte_pfn(pte) == FRAME_ZERO)
                return (struct page_needs){ .frames = write, .prepare = true, .fills = !present };
        /* Unsharing a shared node would add a reference to the frame: a copy. */
        const struct frame *fr = &e->frames.meta[pte_pfn(pte)];
        bool reuse = !(state & PT_PATH_SHARED) && (fr->flags & FRAME_ANON) && fr->refs == 1;
        return (struct page_needs){ .frames = !reuse, .prepare = true };
}

static void record_segv(struct cow_engine *e, struct cow_proc *p, enum cow_fault_kind kind,
                        uint64_t addr, struct cow_fault *ret_fault)
{
        if (kind == COW_BUS_ADRERR) {
                p->faults.bus++;
                e->counters.bus_faults++;
        } else {
                p->faults.segv++;
                e->counters.segv++;
        }
        if (ret_fault)
                *ret_fault = (struct cow_fault){ .kind = kind, .addr = addr };
}

/*
 * Pass one: checks every page of [addr, end) for the access and counts the
 * frames and page-table nodes it would need. Returns 0 or -EFAULT (with the
 * fault recorded).
 */
static int access_check(struct cow_engine *e, struct cow_proc *p, uint64_t addr, uint64_t end,
                        bool write, uint64_t *ret_frames, uint64_t *ret_nodes,
                        uint64_t *ret_swapins, struct cow_fault *ret_fault)
{
        uint64_t mask = e->frames.page_size - 1, frames = 0, nodes = 0, swapins = 0;
        uint64_t last_leaf = UINT64_MAX; /* pages under one leaf share their path */
        unsigned want = write ? COW_PROT_WRITE : COW_PROT_READ;
        const struct vma *v = NULL;

        for (uint64_t page = addr & ~mask; page < end; page += e->frames.page_size) {
                uint64_t at = page < addr ? addr : page;
                if (!v || page >= v->end)
                        v = vma_find(&p->vmas, page);
                if (!v) {
                        record_segv(e, p, COW_SEGV_MAPERR, at, ret_fault);
                        return -EFAULT;
                }
                if (!(v->prot & want)) {
                        record_segv(e, p, COW_SEGV_ACCERR, at, ret_fault);
                        return -EFAULT;
                }
                uint64_t vpn = engine_vpn(e, page);
                if (v->kind == COW_MAP_FILE &&
                    vma_pgoff(e, v, vpn) >= pc_file_pages(&e->pc, pc_file_of(&e->pc, v->obj))) {
                        record_segv(e, p, COW_BUS_ADRERR, at, ret_fault);
                        return -EFAULT;
                }
                struct page_needs need = page_needs(e, p, v, vpn, write);
                frames += need.frames;
                swapins += need.io;
                if (need.prepare && vpn >> PT_BITS != last_leaf) {
                        last_leaf = vpn >> PT_BITS;
                        nodes += pt_nodes_for_prepare(&e->pt, p->root, vpn);
                }
        }
        *ret_frames = frames;
        *ret_nodes = nodes;
        *ret_swapins = swapins;
        return 0;
}

/*
 * A frame for p's fault, charged to p's owner. access_check() counted it and
 * fault_access() checked the owner's quota: it cannot fail here.
 */
static uint32_t fault_alloc(struct cow_engine *e, const struct cow_proc *p, uint16_t flags,
                            bool zero)
{
        uint32_t pfn;
        if (frames_alloc(&e->frames, flags, zero, &pfn) < 0)
                abort();
        charge_frame(&e->charge, pfn, p->charge);
        return pfn;
}

/*
 * An untouched page of a shared mapping: find or create its frame in the
 * object (a file's page is already in its cache: cached).
 */
static uint32_t fault_shared(struct cow_engine *e, struct cow_proc *p, const struct vma *v,
                             uint64_t vpn, struct pt_path *path, uint64_t *slot, uint32_t cached)
{
        uint64_t pgoff = vma_pgoff(e, v, vpn);
        uint32_t pfn = cached ? cached : memobj_lookup(v->obj, pgoff);
        if (pfn == 0) {
                /* access_check() counted this frame as needed: it is there. */
                pfn = fault_alloc(e, p, FRAME_OBJECT, true);
                if (memobj_insert(v->obj, pgoff, pfn) < 0)
                        abort();
                p->faults.zero_fill++;
                e->counters.zero_fills++;
        }
        frames_get(&e->frames, pfn);
        pt_set(&e->pt, path, slot, pte_make(pfn, PTE_ACCESSED));
        return pfn;
}

/* A device page maps its own frame: never copied, never zero. */
static uint32_t fault_device(struct cow_engine *e, const struct vma *v, uint64_t vpn,
                             struct pt_path *path, uint64_t *slot)
{
        uint32_t pfn = e->dev.base[v->device] + (uint32_t)vma_pgoff(e, v, vpn);
        frames_get(&e->frames, pfn);
        pt_set(&e->pt, path, slot, pte_make(pfn, PTE_ACCESSED));
        return pfn;
}

/* A read of a private file page maps the page cache's frame, write-protected. */
static uint32_t fault_file_read(struct cow_engine *e, struct pt_path *path, uint64_t *slot,
                                uint32_t cached)
{
        frames_get(&e->frames, cached);
        pt_set(&e->pt, path, slot, pte_make(cached, PTE_ACCESSED));
        return cached;
}

/* A read of an untouched private page maps the zero page: no frame is used. */
static uint32_t fault_zero_map(struct cow_engine *e, struct cow_proc *p, struct pt_path *path,
                               uint64_t *slot)
{
        pt_set(&e->pt, path, slot, pte_make(FRAME_ZERO, PTE_ACCESSED));
        p->faults.zero_map++;
        e->counters.zero_maps++;
        return FRAME_ZERO;
}

/*
 * A write to a private page that is absent, on the zero page, or
 * write-protected. An absent page of a file mapping is a copy of the page
 * cache's frame, cached.
 */
static uint32_t fault_private_write(struct cow_engine *e, struct cow_proc *p,
                                    struct pt_path *path, uint64_t *slot, uint32_t cached)
{
        const uint64_t bits = PTE_WRITE | PTE_ACCESSED | PTE_DIRTY;
        uint64_t pte = *slot;
        uint32_t old = pte_pfn(pte), pfn;

        if (!(pte & PTE_PRESENT) && cached != 0) {
                pfn = fault_alloc(e, p, FRAME_ANON, false);
                memcpy(frames_data(&e->frames, pfn), frames_data(&e->frames, cached),
                       e->frames.page_size);
                pt_set(&e->pt, path, slot, pte_make(pfn, bits));
                p->faults.cow_copy++;
                e->counters.cow_copies++;
                return pfn;
        }
        if (!(pte & PTE_PRESENT) || old == FRAME_ZERO) {
                pfn = fault_alloc(e, p, FRAME_ANON, true);
                pt_set(&e->pt, path, slot, pte_make(pfn, bits));
                p->faults.zero_fill++;
                e->counters.zero_fills++;
                return pfn;
        }

        const struct frame *fr = &e->frames.meta[old];
        if ((fr->flags & FRAME_ANON) && fr->refs == 1) {
                /* wp_page_reuse: the path is private and no other leaf maps it. Its
                 * copy in swap, if any, goes stale: other entries naming the slot
                 * read the slot, which still holds the data they saw. */
                if (fr->next != 0)
                        swap_cache_del(&e->swap, fr->next - 1);
                *slot = pte | bits;
                p->faults.cow_reuse++;
                e->counters.cow_reuses++;
                return old;
        }

        /* wp_page_copy: the others keep the original. */
        pfn = fault_alloc(e, p, FRAME_ANON, false);
        memcpy(frames_data(&e->frames, pfn), frames_data(&e->frames, old), e->frames.page_size);
        frames_put(&e->frames, old);
        pt_set(&e->pt, path, slot, pte_make(pfn, bits));
        p->faults.cow_copy++;
        e->counters.cow_copies++;
        return pfn;
}

/*
 * Brings vpn's page back from swap into the entry where it is, leaf shared or
 * not: from the swap cache when a sharer already did (no read), else into a
 * new frame that joins the swap cache. The entry is write-protected, so a
 * write then goes through the copy-on-write rules. On a read error the frame
 * is given back and the entry stays a swap entry.
 */
static int swap_in(struct cow_engine *e, struct cow_proc *p, uint64_t vpn)
{
        struct swap *sw = &e->swap;
        struct pt_node *leaf = pt_lookup_leaf(&e->pt, p->root, vpn);
        unsigned idx = (unsigned)(vpn & (PT_FANOUT - 1));
        uint32_t slot = pte_swap_slot(leaf->pte[idx]);
        uint32_t pfn = swap_cached(sw, slot);

        if (pfn != 0) {
                frames_get(&e->frames, pfn);
                e->counters.swap_cache_hits++;
        } else {
                int r = frames_alloc(&e->frames, FRAME_ANON, false, &pfn);
                if (r < 0)
                        return r; /* room was made first: not reached */
                charge_frame(&e->charge, pfn, p->charge);
                r = sw->ops ? sw->ops->read(sw->ctx, slot, frames_data(&e->frames, pfn),
                                            e->frames.page_size) : -EIO;
                if (r < 0) {
                        frames_put(&e->frames, pfn);
                        e->counters.swap_errors++;
                        return r;
                }
                swap_cache_add(sw, slot, pfn);
                p->faults.major++;
                e->counters.swap_ins++;
        }
        leaf->pte[idx] = pte_make(pfn, PTE_ACCESSED);
        rmap_add(&e->rmap, &e->frames, pfn, leaf, idx);
        swap_put(sw, slot);
        e->generation++;
        return 0;
}

/*
 * The TLB missed, or a write found a read-only entry: walk the page table and
 * handle the fault if there is one. Gives the frame and whether the
 * translation may be cached as writable; fails only reading from swap.
 */
static int fault_in(struct cow_engine *e, struct cow_proc *p, const struct vma *v,
                    uint64_t vpn, bool write, uint32_t *ret_pfn, bool *ret_writable)
{
        unsigned state;
        uint64_t pte = pt_lookup(&e->pt, p->root, vpn, &state);

        if (pte_is_swap(pte)) {
                int r = swap_in(e, p, vpn);
                if (r < 0)
                        return r;
                pte = pt_lookup(&e->pt, p->root, vpn, &state);
        }
        if ((pte & PTE_PRESENT) && (!write || engine_write_ok(v, pte, state))) {
                *ret_writable = engine_write_ok(v, pte, state);
                *ret_pfn = pte_pfn(pte);
                return 0;
        }
        /* A file page comes from the page cache, read in first if need be, so
         * that a failed read changes nothing. */
        uint32_t cached = 0;
        if (v->kind == COW_MAP_FILE && (v->shared || !(pte & PTE_PRESENT))) {
                uint64_t pgoff = vma_pgoff(e, v, vpn);
                cached = memobj_lookup(v->obj, pgoff);
                if (cached == 0) {
                        int r = pc_fill(&e->pc, v->obj, pgoff, &cached);
                        if (r < 0)
                                return r;
                        charge_frame(&e->charge, cached, p->charge);
                        p->faults.major++;
                }
        }
        if (pte == 0)
                p->faults.first_touch++;

        struct pt_path path;
        uint64_t *slot = pt_prepare(&e->pt, p->root, vpn, &path);
        e->generation++;
        if (v->kind == COW_MAP_DEVICE) {
                *ret_writable = (v->prot & COW_PROT_WRITE) != 0;
                *ret_pfn = fault_device(e, v, vpn, &path, slot);
        } else if (v->shared) {
                *ret_writable = (v->prot & COW_PROT_WRITE) != 0;
                *ret_pfn = fault_shared(e, p, v, vpn, &path, slot, cached);
        } else if (!write) {
                *ret_writable = false;
                *ret_pfn = cached ? fault_file_read(e, &path, slot, cached) :
                                    fault_zero_map(e, p, &path, slot);
        } else {
                *ret_writable = true;
                *ret_pfn = fault_private_write(e, p, &path, slot, cached);
        }
        return 0;
}

/*
 * Bytes were just stored into frame pfn: a page-cache frame turns dirty, and
 * what lands in the console page joins the console log.
 */
static inline void stored(struct cow_engine *e, uint32_t pfn, const uint8_t *buf, size_t len)
{
        uint16_t flags = e->frames.meta[pfn].flags;
        if (flags & FRAME_FILE)
                pc_dirty(&e->pc, pfn);
        else if ((flags & FRAME_DEVICE) && pfn >= e->dev.base[COW_DEV_CONSOLE])
                dev_console_append(&e->dev, buf, len);
}

/* The accessed bit and the LRU stamp of a frame just used. */
static inline void touch(struct frames *f, uint32_t pfn)
{
        struct frame *fr = &f->meta[pfn];
        fr->aux |= FRAME_REFERENCED;
        fr->used = ++f->tick;
}

/* vpn's frame through the TLB, faulting it in as needed. */
static int translate(struct cow_engine *e, struct cow_proc *p, const struct vma *v,
                     uint64_t vpn, bool write, uint32_t *ret_pfn)
{
        struct tlb_entry *t = tlb_lookup(&p->tlb, vpn);
        if (t && (!write || t->writable)) {
                touch(&e->frames, t->pfn);
                *ret_pfn = t->pfn;
                return 0;
        }

        bool writable;
        uint32_t pfn;
        int r = fault_in(e, p, v, vpn, write, &pfn, &writable);
        if (r < 0)
                return r;
        tlb_fill(&p->tlb, vpn, pfn, writable);
        touch(&e->frames, pfn);
        *ret_pfn = pfn;
        return 0;
}

/*
 * Before vpn is faulted in under memory pressure: evicts until the page's
 * needs fit, first p's own pages while p is at its limit (sparing the pages
 * of the access, [lo, hi)), then by the global policy, then (if enabled) by
 * the OOM killer; then checks the owner's frame quota once more (eviction
 * may have taken a page of the access that must now come back). 0, -ENOMEM,
 * -ENOBUFS, -EDQUOT or the backend's error.
 */
static int make_room(struct cow_engine *e, struct cow_proc *p, const struct vma *v,
                     uint64_t vpn, bool write, uint64_t lo, uint64_t hi)
{
        for (;;) {
                struct page_needs need = page_needs(e, p, v, vpn, write);
                int r;
                if (p->max_resident && need.fills && proc_resident(e, p) >= p->max_resident) {
                        r = evict_local(e, p, lo, hi);
                } else if (need.frames > frames_free_count(&e->frames)) {
                        r = evict_global(e);
                        if (r == -ENOMEM)
                                r = oom_kill(e, p);
                } else {
                        return charge_frames_allowed(&e->charge, p->charge, need.frames) ?
                               0 : -EDQUOT;
                }
                if (r < 0)
                        return r;
        }
}

static void set_pinned(struct cow_engine *e, struct cow_proc *p, uint64_t lo, uint64_t hi,
                       bool pin)
{
        for (uint64_t vpn = lo; vpn < hi; vpn++) {
                unsigned state;
                uint64_t pte = pt_lookup(&e->pt, p->root, vpn, &state);
                if (!pte_has_frame(pte))
                        continue;
                struct frame *fr = &e->frames.meta[pte_pfn(pte)];
                if (pin)
                        fr->flags |= FRAME_PINNED;
                else
                        fr->flags &= (uint16_t)~FRAME_PINNED;
        }
}

/*
 * Marks (or clears) the frames the pages [lo, hi) of p keep through the
 * access: those they hold or will find in the swap cache, but not the
 * originals a write copies (once copied, those may go).
 */
static void mark_range(struct cow_engine *e, struct cow_proc *p, uint64_t lo, uint64_t hi,
                       bool write, bool mark)
{
        for (uint64_t vpn = lo; vpn < hi; vpn++) {
                unsigned state;
                uint64_t pte = pt_lookup(&e->pt, p->root, vpn, &state);
                if (mark && write && pte_has_frame(pte)) {
                        const struct vma *v = vma_find(&p->vmas, vpn << e->frames.page_shift);
                        if (v && !v->shared && page_needs(e, p, v, vpn, true).frames > 0)
                                continue;
                }
                uint32_t pfn = pte_has_frame(pte) ? pte_pfn(pte) :
                               pte_is_swap(pte) ? swap_cached(&e->swap, pte_swap_slot(pte)) : 0;
                if (pfn == 0)
                        continue;
                if (mark)
                        e->frames.meta[pfn].flags |= FRAME_PINNED;
                else
                        e->frames.meta[pfn].flags &= (uint16_t)~FRAME_PINNED;
        }
}

/*
 * Whether global eviction can free need frames without touching the pages
 * of the access [lo, hi): free frames, plus evictable frames outside it that
 * are clean in the swap cache, plus dirty ones as far as slots allow. So a
 * request that memory and swap cannot serve fails before anything changes.
 */
static bool room_possible(struct cow_engine *e, struct cow_proc *p, uint64_t lo, uint64_t hi,
                          bool write, uint64_t need)
{
        uint64_t have = frames_free_count(&e->frames);
        if (need <= have)
                return true;
        if (!e->swap.ops && !e->pc.ops)
                return false;
        mark_range(e, p, lo, hi, write, true);
        /* Clean frames go without a slot; each dirty one takes a free slot. (A
         * slot only the swap cache holds can be taken too, but that makes its
         * clean frame dirty: no more frames come free that way.) The scan
         * stops as soon as there is enough, so under steady pressure (one page
         * short, most frames evictable) it costs a few frames, not all. */
        uint64_t clean = 0, dirty = 0, slots = (uint64_t)(e->swap.nslots - e->swap.used);
        bool enough = false;
        for (uint32_t pfn = 1; pfn <= e->frames.hwm && !enough; pfn++) {
                const struct frame *fr = &e->frames.meta[pfn];
                if (fr->refs == 0 || (fr->flags & FRAME_PINNED))
                        continue;
                if (fr->flags & FRAME_FILE) {
                        /* Dropped, after a write-back if dirty: no slot either way. */
                        clean += e->pc.ops != NULL;
                } else if (!(fr->flags & FRAME_ANON) || (fr->flags & FRAME_OBJECT) ||
                           !e->swap.ops) {
                        continue;
                } else if (fr->next != 0) {
                        clean++;
                } else if (!charge_slot_full(&e->charge, pfn)) {
                        dirty++; /* unless its owner may take no more slots */
                }
                enough = need <= have + clean + (dirty < slots ? dirty : slots);
        }
        mark_range(e, p, lo, hi, write, false);
        return enough;
}

/*
 * The access under memory pressure: each page is made room for, faulted in
 * and pinned (so that making room for the next cannot evict it) before any
 * byte moves; then the bytes move; then the pins go. A failure part way
 * leaves some pages faulted in or evicted, but no data changed.
 */
static int access_paged(struct cow_engine *e, struct cow_proc *p, uint64_t addr, uint8_t *buf,
                        uint64_t end, bool write)
{
        uint64_t ps = e->frames.page_size;
        uint64_t lo = engine_vpn(e, addr), hi = engine_vpn(e, end - 1) + 1, vpn;
        const struct vma *v = NULL;
        int r = 0;

        for (vpn = lo; vpn < hi; vpn++) {
                uint64_t at = vpn << e->frames.page_shift;
                if (!v || at >= v->end)
                        v = vma_find(&p->vmas, at < addr ? addr : at);
                uint32_t pfn;
                r = make_room(e, p, v, vpn, write, lo, hi);
                if (r == 0)
                        r = translate(e, p, v, vpn, write, &pfn);
                if (r < 0)
                        break;
                if (pfn != FRAME_ZERO)
                        e->frames.meta[pfn].flags |= FRAME_PINNED;
        }
        if (r == 0) {
                for (uint64_t at = addr; at < end;) {
                        uint64_t off = at & (ps - 1);
                        size_t chunk = (size_t)(ps - off < end - at ? ps - off : end - at);
                        unsigned state;
                        uint64_t pte = pt_lookup(&e->pt, p->root, engine_vpn(e, at), &state);
                        uint8_t *page = frames_data(&e->frames, pte_pfn(pte));
                        if (write) {
                                memcpy(page + off, buf, chunk);
                                stored(e, pte_pfn(pte), buf, chunk);
                        } else
                                memcpy(buf, page + off, chunk);
                        buf += chunk;
                        at += chunk;
                }
        }
        set_pinned(e, p, lo, vpn, false);
        return r;
}

int fault_access(struct cow_engine *e, struct cow_proc *p, uint64_t addr, uint8_t *buf,
                 size_t len, bool write, struct cow_fault *ret_fault)
{
        if (len == 0)
                return 0;
        if (addr >= e->va_limit) {
                record_segv(e, p, COW_SEGV_MAPERR, addr, ret_fault);
                return -EFAULT;
        }
        /* Past the top of the address space nothing is mapped. */
        bool past_top = len > e->va_limit - addr;
        uint64_t end = past_top ? e->va_limit : addr + len;

        uint64_t need, nodes, swapins;
        int r = access_check(e, p, addr, end, write, &need, &nodes, &swapins, ret_fault);
        if (r < 0)
                return r;
        if (past_top) {
                record_segv(e, p, COW_SEGV_MAPERR, e->va_limit, ret_fault);
                return -EFAULT;
        }
        /* The owner's quota counts the frames the access allocates, before any
         * eviction it may cause frees some of them. */
        if (!charge_frames_allowed(&e->charge, p->charge, need))
                return -EDQUOT;
        bool can_evict = e->swap.ops || e->cfg.oom_kill || p->max_resident || e->pc.pages;
        if (need > frames_free_count(&e->frames) && !can_evict)
                return -ENOMEM;
        r = pt_reserve(&e->pt, nodes);
        if (r < 0)
                return r;
        if (need > frames_free_count(&e->frames) || swapins || p->max_resident) {
                if (!e->cfg.oom_kill && !p->max_resident &&
                    !room_possible(e, p, engine_vpn(e, addr), engine_vpn(e, end - 1) + 1, write,
                                   need))
                        return -ENOMEM;
                return access_paged(e, p, addr, buf, end, write);
        }

        uint64_t ps = e->frames.page_size, at = addr;
        const struct vma *v = NULL;
        while (at < end) {
                uint64_t off = at & (ps - 1);
                size_t chunk = (size_t)(ps - off < end - at ? ps - off : end - at);
                if (!v || at >= v->end)
                        v = vma_find(&p->vmas, at);
                uint32_t pfn;
                translate(e, p, v, engine_vpn(e, at), write, &pfn); /* cannot fail here */
                uint8_t *page = frames_data(&e->frames, pfn);
                if (write) {
                        memcpy(page + off, buf, chunk);
                        stored(e, pfn, buf, chunk);
                } else
                        memcpy(buf, page + off, chunk);
                buf += chunk;
                at += chunk;
        }
        return 0;
}
