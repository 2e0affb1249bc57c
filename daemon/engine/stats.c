/* SPDX-License-Identifier: MIT */
/*
 * Statistics and page maps. Counts that follow a process's own page table
 * (RSS, zero-page mappings, page-table nodes) are kept in the nodes as it
 * changes. Counts that depend on who else maps a frame (sharers, PSS, USS)
 * are derived by a scan of every page table, cached until a table changes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine-impl.h"
#include "evict.h"

void sharing_fini(struct sharing *s)
{
        if (s->sharers)
                munmap(s->sharers, s->len * sizeof(*s->sharers));
        *s = (struct sharing){ 0 };
}

struct scan_arg {
        struct sharing *s;
};

/* Each entry of a leaf is seen by every process that reaches the leaf. */
static void count_leaf(void *arg, const struct pt_node *leaf)
{
        struct sharing *s = ((struct scan_arg *)arg)->s;
        for (unsigned i = 0; i < PT_FANOUT && leaf->used != 0; i++) {
                uint64_t pte = leaf->pte[i];
                if (pte & PTE_PRESENT)
                        s->sharers[pte_pfn(pte)] += (uint32_t)leaf->scan_mult;
        }
}

int sharing_refresh(struct cow_engine *e)
{
        struct sharing *s = &e->sharing;
        if (s->valid && s->generation == e->generation)
                return 0;

        if (!s->sharers) {
                /* Reserved lazily like the frames: untouched entries cost nothing. */
                size_t len = frames_span(&e->frames);
                void *p = mmap(NULL, len * sizeof(*s->sharers), PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
                if (p == MAP_FAILED)
                        return -ENOMEM;
                s->sharers = p;
                s->len = len;
        }
        memset(s->sharers, 0, ((size_t)e->frames.hwm + 1) * sizeof(*s->sharers));
        memset(s->sharers + e->frames.nframes + 1, 0, e->frames.ndev * sizeof(*s->sharers));

        struct pt_node **roots = malloc((e->procs.n + 1) * sizeof(*roots));
        if (!roots)
                return -ENOMEM;
        for (uint32_t i = 0; i < e->procs.n; i++)
                roots[i] = e->procs.v[i]->root;
        struct scan_arg arg = { .s = s };
        int r = pt_scan(&e->pt, roots, e->procs.n, NULL, count_leaf, &arg);
        free(roots);
        if (r < 0)
                return r;
        s->zero_page_maps = s->sharers[FRAME_ZERO];
        s->generation = e->generation;
        s->valid = true;
        return 0;
}

struct pss_acc {
        const uint32_t *sharers;
        const struct frames *frames;
        uint64_t page_size;
        uint64_t pss_fixed; /* bytes << PSS_SHIFT */
        uint64_t uss, shared, swapped, out;
        uint64_t file, dirty, device;
};

#define PSS_SHIFT 16u

static void pss_visit(void *arg, uint64_t vpn, uint64_t pte)
{
        struct pss_acc *a = arg;
        (void)vpn;
        a->swapped += pte_is_swap(pte);
        a->out += pte_is_out(pte);
        if (!(pte & PTE_PRESENT) || pte_pfn(pte) == FRAME_ZERO)
                return;
        uint16_t flags = a->frames->meta[pte_pfn(pte)].flags;
        a->file += (flags & FRAME_FILE) != 0;
        a->dirty += (flags & FRAME_DIRTY) != 0;
        a->device += (flags & FRAME_DEVICE) != 0;
        uint32_t n = a->sharers[pte_pfn(pte)];
        /* Fixed point keeps PSS exact to a fraction of a byte over many pages. */
        a->pss_fixed += (a->page_size << PSS_SHIFT) / (n ? n : 1);
        if (n <= 1)
                a->uss++;
        else
                a->shared++;
}

int cow_engine_proc_stats(cow_engine *e, cow_pid pid, struct cow_proc_stats *ret)
{
        struct cow_proc *p = proc_table_find(&e->procs, pid);
        if (!p)
                return -ESRCH;
        int r = sharing_refresh(e);
        if (r < 0)
                return r;

        struct pss_acc acc = { .sharers = e->sharing.sharers, .frames = &e->frames,
                               .page_size = e->frames.page_size };
        pt_walk(&e->pt, p->root, 0, e->pt.vpn_limit, pss_visit, &acc);

        *ret = (struct cow_proc_stats){
                .pid = p->pid,
                .ppid = p->ppid,
                .vsize_bytes = p->vmas.bytes,
                .rss_pages = p->root->pages - acc.out,
                /* Rounded to the nearest byte: each page's share was rounded down. */
                .pss_bytes = (acc.pss_fixed + (UINT64_C(1) << (PSS_SHIFT - 1))) >> PSS_SHIFT,
                .uss_pages = acc.uss,
                .shared_pages = acc.shared,
                .zero_pages = p->root->zeros,
                .maps = p->vmas.n,
                .faults_zero_map = p->faults.zero_map,
                .faults_zero_fill = p->faults.zero_fill,
                .faults_cow_copy = p->faults.cow_copy,
                .faults_cow_reuse = p->faults.cow_reuse,
                .faults_segv = p->faults.segv,
                .tlb_hits = p->tlb.hits,
                .tlb_misses = p->tlb.misses,
                .pt_bytes = p->root->nodes * pt_node_bytes(),
                .faults_major = p->faults.major,
                .faults_first_touch = p->faults.first_touch,
                .swapped_pages = acc.swapped,
                .max_resident = p->max_resident,
                .file_pages = acc.file,
                .dirty_pages = acc.dirty,
                .device_pages = acc.device,
                .writebacks = p->writebacks,
                .faults_bus = p->faults.bus,
        };
        return 0;
}

void cow_engine_sys_stats(cow_engine *e, struct cow_sys_stats *ret)
{
        uint64_t resident = 0, zero_maps = 0, hits = e->counters.tlb_hits_exited,
                 misses = e->counters.tlb_misses_exited;

        /* A device frame mapped at all occupies memory as a used frame would:
         * counting it here keeps bytes_saved to what sharing saves. */
        uint64_t device_mapped = 0;
        for (uint32_t pfn = e->frames.nframes + 1; pfn < frames_span(&e->frames); pfn++)
                device_mapped += e->frames.meta[pfn].refs != 0;
        for (uint32_t i = 0; i < e->procs.n; i++) {
                const struct cow_proc *p = e->procs.v[i];
                resident += proc_resident(e, p);
                zero_maps += p->root->zeros;
                hits += p->tlb.hits;
                misses += p->tlb.misses;
        }
        *ret = (struct cow_sys_stats){
                .page_size = e->frames.page_size,
                .frames_total = e->frames.nframes,
                .frames_used = e->frames.used,
                .frames_free = frames_free_count(&e->frames),
                .zero_page_maps = zero_maps,
                .cow_copies = e->counters.cow_copies,
                .cow_reuses = e->counters.cow_reuses,
                .zero_fills = e->counters.zero_fills,
                .zero_maps = e->counters.zero_maps,
                .segv_faults = e->counters.segv,
                .bytes_saved = ((int64_t)resident - (int64_t)(e->frames.used + device_mapped)) *
                               (int64_t)e->frames.page_size,
                .pt_bytes = e->pt.nodes_live * pt_node_bytes(),
                .pt_nodes = e->pt.nodes_live,
                .procs = e->procs.n,
                .procs_created = e->counters.procs_created,
                .tlb_hits = hits,
                .tlb_misses = misses,
                .frame_meta_bytes = (uint32_t)sizeof(struct frame),
                .swap_slots_total = e->swap.nslots,
                .swap_slots_used = e->swap.used,
                .swap_ins = e->counters.swap_ins,
                .swap_outs = e->counters.swap_outs,
                .evictions = e->counters.evictions,
                .swap_cache_hits = e->counters.swap_cache_hits,
                .oom_kills = e->counters.oom_kills,
                .swap_errors = e->counters.swap_errors,
                .files = e->pc.n,
                .file_pages = e->pc.pages,
                .dirty_pages = e->pc.dirty,
                .writebacks = e->pc.writebacks,
                .file_reads = e->pc.reads,
                .file_errors = e->pc.errors,
                .bus_faults = e->counters.bus_faults,
                .device_frames = e->frames.ndev,
                .console_bytes = e->dev.log_end,
                .frame_quota_refusals = e->charge.frame_refusals,
                .swap_quota_refusals = e->charge.slot_refusals,
                .charge_owners = charge_live_owners(&e->charge),
        };
}

int cow_engine_page_map(cow_engine *e, cow_pid pid, uint64_t addr, size_t npages,
                        struct cow_page_info *out)
{
        struct cow_proc *p = proc_table_find(&e->procs, pid);
        if (!p)
                return -ESRCH;
        uint64_t ps = e->frames.page_size;
        if ((addr & (ps - 1)) != 0 || addr >= e->va_limit || npages > (e->va_limit - addr) / ps)
                return -EINVAL;
        int r = sharing_refresh(e);
        if (r < 0)
                return r;

        for (size_t i = 0; i < npages; i++) {
                uint64_t at = addr + i * ps, vpn = engine_vpn(e, at);
                struct cow_page_info *pi = &out[i];
                *pi = (struct cow_page_info){ .addr = at };
                const struct vma *v = vma_find(&p->vmas, at);
                if (!v)
                        continue;
                pi->flags |= COW_PAGE_MAPPED;
                pi->prot = v->prot;
                if (v->shared)
                        pi->flags |= COW_PAGE_SHARED;

                unsigned state;
                uint64_t pte = pt_lookup(&e->pt, p->root, vpn, &state);
                if (pte_is_swap(pte)) {
                        pi->flags |= COW_PAGE_SWAPPED;
                        pi->swap_slot = pte_swap_slot(pte);
                }
                if (!(pte & PTE_PRESENT))
                        continue;
                pi->flags |= COW_PAGE_PRESENT;
                pi->frame = pte_pfn(pte);
                pi->sharers = e->sharing.sharers[pi->frame];
                if (pi->frame == FRAME_ZERO)
                        pi->flags |= COW_PAGE_ZERO;
                uint16_t flags = e->frames.meta[pi->frame].flags;
                if (flags & FRAME_FILE)
                        pi->flags |= COW_PAGE_FILE;
                if (flags & FRAME_DIRTY)
                        pi->flags |= COW_PAGE_DIRTY;
                if (flags & FRAME_DEVICE)
                        pi->flags |= COW_PAGE_DEVICE;
                if (engine_write_ok(v, pte, state))
                        pi->flags |= COW_PAGE_WRITABLE;
                else if (!v->shared && (v->prot & COW_PROT_WRITE))
                        pi->flags |= COW_PAGE_COW;
                if (tlb_probe(&p->tlb, vpn))
                        pi->flags |= COW_PAGE_IN_TLB;
        }
        return 0;
}
