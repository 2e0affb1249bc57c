/* SPDX-License-Identifier: MIT */
#include "fault.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine-impl.h"
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
        unsigned frames;  /* frames it would allocate: 0 or 1 */
        bool prepare;     /* it changes the page table, so its path must be prepared */
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
        if (v->shared)
                return (struct page_needs){
                        .frames = memobj_lookup(v->obj, vma_pgoff(e, v, vpn)) == 0, .prepare = true
                };
        if (!write || !present || pte_pfn(pte) == FRAME_ZERO)
                return (struct page_needs){ .frames = write, .prepare = true };
        /* Unsharing a shared node would add a reference to the frame: a copy. */
        const struct frame *fr = &e->frames.meta[pte_pfn(pte)];
        bool reuse = !(state & PT_PATH_SHARED) && (fr->flags & FRAME_ANON) && fr->refs == 1;
        return (struct page_needs){ .frames = !reuse, .prepare = true };
}

static void record_segv(struct cow_engine *e, struct cow_proc *p, enum cow_fault_kind kind,
                        uint64_t addr, struct cow_fault *ret_fault)
{
        p->faults.segv++;
        e->counters.segv++;
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
                        struct cow_fault *ret_fault)
{
        uint64_t mask = e->frames.page_size - 1, frames = 0, nodes = 0;
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
                struct page_needs need = page_needs(e, p, v, vpn, write);
                frames += need.frames;
                if (need.prepare && vpn >> PT_BITS != last_leaf) {
                        last_leaf = vpn >> PT_BITS;
                        nodes += pt_nodes_for_prepare(&e->pt, p->root, vpn);
                }
        }
        *ret_frames = frames;
        *ret_nodes = nodes;
        return 0;
}

/* An untouched page of a shared mapping: find or create its frame in the object. */
static uint32_t fault_shared(struct cow_engine *e, struct cow_proc *p, const struct vma *v,
                             uint64_t vpn, struct pt_path *path, uint64_t *slot)
{
        uint64_t pgoff = vma_pgoff(e, v, vpn);
        uint32_t pfn = memobj_lookup(v->obj, pgoff);
        if (pfn == 0) {
                /* access_check() counted this frame as needed: it is there. */
                if (frames_alloc(&e->frames, FRAME_OBJECT, true, &pfn) < 0 ||
                    memobj_insert(v->obj, pgoff, pfn) < 0)
                        abort();
                p->faults.zero_fill++;
                e->counters.zero_fills++;
        }
        frames_get(&e->frames, pfn);
        pt_set(&e->pt, path, slot, pte_make(pfn, PTE_ACCESSED));
        return pfn;
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

/* A write to a private page that is absent, on the zero page, or write-protected. */
static uint32_t fault_private_write(struct cow_engine *e, struct cow_proc *p,
                                    struct pt_path *path, uint64_t *slot)
{
        const uint64_t bits = PTE_WRITE | PTE_ACCESSED | PTE_DIRTY;
        uint64_t pte = *slot;
        uint32_t old = pte_pfn(pte), pfn;

        if (!(pte & PTE_PRESENT) || old == FRAME_ZERO) {
                if (frames_alloc(&e->frames, FRAME_ANON, true, &pfn) < 0)
                        abort(); /* counted by access_check() */
                pt_set(&e->pt, path, slot, pte_make(pfn, bits));
                p->faults.zero_fill++;
                e->counters.zero_fills++;
                return pfn;
        }

        const struct frame *fr = &e->frames.meta[old];
        if ((fr->flags & FRAME_ANON) && fr->refs == 1) {
                /* wp_page_reuse: the path is private and no other leaf maps it. */
                *slot = pte | bits;
                p->faults.cow_reuse++;
                e->counters.cow_reuses++;
                return old;
        }

        /* wp_page_copy: the others keep the original. */
        if (frames_alloc(&e->frames, FRAME_ANON, false, &pfn) < 0)
                abort(); /* counted by access_check() */
        memcpy(frames_data(&e->frames, pfn), frames_data(&e->frames, old), e->frames.page_size);
        frames_put(&e->frames, old);
        pt_set(&e->pt, path, slot, pte_make(pfn, bits));
        p->faults.cow_copy++;
        e->counters.cow_copies++;
        return pfn;
}

/*
 * The TLB missed, or a write found a read-only entry: walk the page table and
 * handle the fault if there is one. Returns the frame and whether the
 * translation may be cached as writable.
 */
static uint32_t fault_in(struct cow_engine *e, struct cow_proc *p, const struct vma *v,
                         uint64_t vpn, bool write, bool *ret_writable)
{
        unsigned state;
        uint64_t pte = pt_lookup(&e->pt, p->root, vpn, &state);

        if ((pte & PTE_PRESENT) && (!write || engine_write_ok(v, pte, state))) {
                *ret_writable = engine_write_ok(v, pte, state);
                return pte_pfn(pte);
        }

        struct pt_path path;
        uint64_t *slot = pt_prepare(&e->pt, p->root, vpn, &path);
        e->generation++;
        if (v->shared) {
                *ret_writable = (v->prot & COW_PROT_WRITE) != 0;
                return fault_shared(e, p, v, vpn, &path, slot);
        }
        if (!write) {
                *ret_writable = false;
                return fault_zero_map(e, p, &path, slot);
        }
        *ret_writable = true;
        return fault_private_write(e, p, &path, slot);
}

/* Pass two: the host address of vpn's frame, faulting it in as needed. */
static uint8_t *translate(struct cow_engine *e, struct cow_proc *p, const struct vma *v,
                          uint64_t vpn, bool write)
{
        struct tlb_entry *t = tlb_lookup(&p->tlb, vpn);
        if (t && (!write || t->writable))
                return frames_data(&e->frames, t->pfn);

        bool writable;
        uint32_t pfn = fault_in(e, p, v, vpn, write, &writable);
        tlb_fill(&p->tlb, vpn, pfn, writable);
        return frames_data(&e->frames, pfn);
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

        uint64_t need, nodes;
        int r = access_check(e, p, addr, end, write, &need, &nodes, ret_fault);
        if (r < 0)
                return r;
        if (past_top) {
                record_segv(e, p, COW_SEGV_MAPERR, e->va_limit, ret_fault);
                return -EFAULT;
        }
        if (need > frames_free_count(&e->frames))
                return -ENOMEM;
        r = pt_reserve(&e->pt, nodes);
        if (r < 0)
                return r;

        uint64_t ps = e->frames.page_size, at = addr;
        const struct vma *v = NULL;
        while (at < end) {
                uint64_t off = at & (ps - 1);
                size_t chunk = (size_t)(ps - off < end - at ? ps - off : end - at);
                if (!v || at >= v->end)
                        v = vma_find(&p->vmas, at);
                uint8_t *page = translate(e, p, v, engine_vpn(e, at), write);
                if (write)
                        memcpy(page + off, buf, chunk);
                else
                        memcpy(buf, page + off, chunk);
                buf += chunk;
                at += chunk;
        }
        return 0;
}
