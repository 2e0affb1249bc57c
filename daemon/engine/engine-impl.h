/* SPDX-License-Identifier: MIT */
/*
 * The engine's own state, shared by the files that implement the public API
 * (engine.c: processes and mappings; fault.c: memory access; stats.c and
 * verify.c: introspection). Nothing outside daemon/engine includes this.
 */
#ifndef COWD_ENGINE_IMPL_H
#define COWD_ENGINE_IMPL_H

#include <cowd/engine.h>

#include "charge.h"
#include "device.h"
#include "frames.h"
#include "pagecache.h"
#include "pagetable.h"
#include "process.h"
#include "rmap.h"
#include "swap.h"

struct engine_counters {
        uint64_t cow_copies;
        uint64_t cow_reuses;
        uint64_t zero_fills;
        uint64_t zero_maps;
        uint64_t segv;
        uint64_t procs_created;
        uint64_t tlb_hits_exited;   /* TLB counters of processes that exited */
        uint64_t tlb_misses_exited;
        uint64_t swap_ins;
        uint64_t swap_outs;
        uint64_t evictions;
        uint64_t swap_cache_hits;
        uint64_t oom_kills;
        uint64_t swap_errors;
        uint64_t bus_faults;
};

/* Pids the OOM killer ended, not yet drained by cow_engine_oom_victims(). */
#define OOM_VICTIMS_MAX 64u

struct oom_log {
        cow_pid pid[OOM_VICTIMS_MAX];
        uint32_t n;
};

/* Who maps each frame: derived on demand by a scan of every page table. */
struct sharing {
        uint32_t *sharers;      /* per frame: processes mapping it */
        size_t len;             /* entries allocated */
        uint64_t generation;    /* engine generation the scan reflects */
        uint64_t zero_page_maps;
        bool valid;
};

struct cow_engine {
        struct cow_engine_config cfg;
        struct frames frames;
        struct pt_ctx pt;
        struct proc_table procs;
        cow_pid last_pid;
        uint64_t va_limit;   /* user addresses are below this */
        uint64_t mmap_base;  /* where the engine starts looking for free ranges */
        uint64_t generation; /* bumped by every change to any page table */
        struct engine_counters counters;
        struct sharing sharing;
        struct rmap rmap;
        struct swap swap;
        uint32_t clock_hand; /* global clock: the next frame it looks at */
        struct oom_log oom;
        struct pagecache pc;
        struct devices dev;
        struct charge charge; /* per-owner frames and swap slots, with their quotas */
};

static inline uint64_t engine_vpn(const struct cow_engine *e, uint64_t addr)
{
        return addr >> e->frames.page_shift;
}

/* Scans page tables if anything changed since the last scan. 0 or -ENOMEM. */
int sharing_refresh(struct cow_engine *e);
void sharing_fini(struct sharing *s);

/* Checks a page-aligned range and rounds its length up: 0, -EINVAL or -EOVERFLOW. */
int engine_range_check(const struct cow_engine *e, uint64_t addr, uint64_t length,
                       uint64_t *ret_end);

/* engine_range_check(), and then -ENXIO unless p maps all of the range. */
int engine_range_covered(const struct cow_engine *e, const struct cow_proc *p, uint64_t addr,
                         uint64_t length, uint64_t *ret_end);

/*
 * Writes back the dirty pages of p's shared file mappings within [start,
 * end), then, with sync, syncs those files. 0 or the first backend error.
 */
int engine_writeback(struct cow_engine *e, struct cow_proc *p, uint64_t start, uint64_t end,
                     bool sync);

/* True when a write through this entry may proceed without a fault. */
bool engine_write_ok(const struct vma *v, uint64_t pte, unsigned path_state);

#endif /* COWD_ENGINE_IMPL_H */
