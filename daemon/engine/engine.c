/* SPDX-License-Identifier: MIT */
/*
 * The public engine API: configuration, processes and mappings. Memory access
 * lives in fault.c, statistics in stats.c, invariant checks in verify.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine-impl.h"
#include "evict.h"
#include "fault.h"
#include "memobj.h"

#define VA_BITS 47u
#define MMAP_MIN_ADDR UINT64_C(0x10000)

const char *cow_engine_strerror(int err)
{
        switch (err < 0 ? -err : err) {
        case 0:
                return "success";
        case EINVAL:
                return "invalid argument";
        case ESRCH:
                return "no such process";
        case EEXIST:
                return "range overlaps an existing mapping";
        case EFAULT:
                return "segmentation fault";
        case ENOMEM:
                return "out of memory: no free physical frame and nothing to evict";
        case ENOSPC:
                return "no free virtual address range of that size, or no space in swap or a file";
        case EAGAIN:
                return "process limit reached";
        case EMLINK:
                return "too many mappings in this process";
        case ENOBUFS:
                return "page-table memory budget exhausted";
        case EOVERFLOW:
                return "address range overflows the address space";
        case ENXIO:
                return "range is not wholly mapped";
        case EIO:
                return "swap or file backend I/O error";
        case EOPNOTSUPP:
                return "mapping kind not supported (or no file backend)";
        case EMFILE:
                return "too many files mapped or cached";
        case ENAMETOOLONG:
                return "file key too long";
        case EDQUOT:
                return "the owner's frame or swap-slot quota is reached";
        default:
                return "unexpected engine error";
        }
}

void cow_engine_config_init(struct cow_engine_config *cfg)
{
        *cfg = (struct cow_engine_config){
                .mem_bytes = UINT64_C(256) << 20,
                .page_size = 4096,
                .tlb_entries = 64,
                .tlb_ways = 0,
                .max_procs = 4096,
                .max_maps_per_proc = 65530,
                .max_pt_bytes = UINT64_C(1) << 30,
                .swap_slots = 0,
                .policy = COW_POLICY_CLOCK,
                .seed = 1,
                .oom_kill = false,
                .fb_width = 640,
                .fb_height = 480,
                .console_log_bytes = 64 * 1024,
                .max_files = 1024,
                .max_file_key = COW_FILE_KEY_MAX,
        };
}

const char *cow_policy_name(enum cow_policy p)
{
        switch (p) {
        case COW_POLICY_CLOCK:
                return "clock";
        case COW_POLICY_FIFO:
                return "fifo";
        case COW_POLICY_LRU:
                return "lru";
        }
        return NULL;
}

int cow_policy_parse(const char *name, enum cow_policy *ret)
{
        static const enum cow_policy all[] = { COW_POLICY_CLOCK, COW_POLICY_FIFO, COW_POLICY_LRU };
        for (size_t i = 0; name && i < sizeof(all) / sizeof(all[0]); i++) {
                if (strcmp(name, cow_policy_name(all[i])) == 0) {
                        *ret = all[i];
                        return 0;
                }
        }
        return -EINVAL;
}

int cow_engine_config_check(const struct cow_engine_config *cfg, const char **ret_why)
{
        const char *why = NULL;
        uint32_t ps = cfg->page_size;

        if (ps < 4096 || ps > 65536 || (ps & (ps - 1)) != 0)
                why = "page_size must be a power of two from 4096 to 65536";
        else if (cfg->mem_bytes < ps || cfg->mem_bytes / ps >= (UINT64_C(1) << 31))
                why = "mem_bytes must hold at least one page and fewer than 2^31 pages";
        else if (cfg->tlb_entries == 0 || cfg->tlb_entries > 1u << 20)
                why = "tlb_entries must be from 1 to 1048576";
        else if (cfg->tlb_ways != 0 &&
                 (cfg->tlb_ways > cfg->tlb_entries || cfg->tlb_entries % cfg->tlb_ways != 0))
                why = "tlb_ways must divide tlb_entries (0 means fully associative)";
        else if (cfg->max_procs == 0)
                why = "max_procs must be at least 1";
        else if (cfg->max_maps_per_proc == 0)
                why = "max_maps_per_proc must be at least 1";
        else if (cfg->max_pt_bytes < 16 * pt_node_bytes())
                why = "max_pt_bytes is too small for any process";
        else if (cfg->swap_slots >= (UINT64_C(1) << 31))
                why = "swap_slots must be below 2^31";
        else if (!cow_policy_name(cfg->policy))
                why = "policy must be clock, fifo or lru";
        else if (cfg->fb_width == 0 || cfg->fb_height == 0 ||
                 (uint64_t)cfg->fb_width * cfg->fb_height * 4 > COW_FB_MAX_BYTES)
                why = "fb_width and fb_height must be at least 1, with at most 64 MiB of pixels";
        else if (cfg->console_log_bytes < 1024 || cfg->console_log_bytes > (16u << 20))
                why = "console_log_bytes must be from 1024 to 16777216";
        else if (cfg->max_files == 0 || cfg->max_files > 65536)
                why = "max_files must be from 1 to 65536";
        else if (cfg->max_file_key == 0 || cfg->max_file_key > COW_FILE_KEY_MAX)
                why = "max_file_key must be from 1 to 255";

        if (why) {
                if (ret_why)
                        *ret_why = why;
                return -EINVAL;
        }
        return 0;
}

int cow_engine_new(const struct cow_engine_config *cfg, cow_engine **ret)
{
        int r = cow_engine_config_check(cfg, NULL);
        if (r < 0)
                return r;

        struct cow_engine *e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->cfg = *cfg;
        uint32_t nframes = (uint32_t)(cfg->mem_bytes / cfg->page_size);
        r = frames_init(&e->frames, nframes, dev_frames_needed(cfg), cfg->page_size);
        if (r < 0) {
                free(e);
                return r;
        }
        r = dev_init(&e->dev, cfg, nframes);
        if (r == 0)
                r = pc_init(&e->pc, &e->frames, cfg->max_files, cfg->max_file_key);
        if (r == 0)
                r = swap_init(&e->swap, (uint32_t)cfg->swap_slots, &e->frames);
        if (r == 0)
                r = charge_init(&e->charge, cfg->max_frames_per_owner,
                                cfg->max_swap_slots_per_owner, frames_span(&e->frames),
                                (uint32_t)cfg->swap_slots);
        if (r < 0) {
                swap_fini(&e->swap);
                pc_fini(&e->pc);
                dev_fini(&e->dev);
                frames_fini(&e->frames);
                free(e);
                return r;
        }
        if (e->charge.on) {
                e->frames.charge = &e->charge;
                e->swap.charge = &e->charge;
        }
        unsigned vpn_bits = VA_BITS - e->frames.page_shift;
        unsigned levels = (vpn_bits + PT_BITS - 1) / PT_BITS;
        pt_ctx_init(&e->pt, &e->frames, &e->rmap, &e->swap, levels, UINT64_C(1) << vpn_bits,
                    cfg->max_pt_bytes / pt_node_bytes());
        e->va_limit = UINT64_C(1) << VA_BITS;
        e->mmap_base = MMAP_MIN_ADDR > cfg->page_size ? MMAP_MIN_ADDR : cfg->page_size;
        *ret = e;
        return 0;
}

static void proc_free(struct cow_engine *e, struct cow_proc *p)
{
        if (!p)
                return;
        e->counters.tlb_hits_exited += p->tlb.hits;
        e->counters.tlb_misses_exited += p->tlb.misses;
        pt_destroy(&e->pt, p->root);
        vma_set_fini(&p->vmas, &e->frames);
        tlb_fini(&p->tlb);
        charge_detach(&e->charge, p->charge);
        free(p);
}

void cow_engine_free(cow_engine *e)
{
        if (!e)
                return;
        for (uint32_t i = 0; i < e->procs.n; i++)
                proc_free(e, e->procs.v[i]);
        proc_table_fini(&e->procs);
        pc_fini(&e->pc); /* after the mappings: the table holds the last references */
        dev_fini(&e->dev);
        sharing_fini(&e->sharing);
        swap_fini(&e->swap);
        rmap_fini(&e->rmap);
        frames_fini(&e->frames);
        charge_fini(&e->charge);
        free(e);
}

uint32_t cow_engine_page_size(const cow_engine *e)
{
        return e->frames.page_size;
}

/* ---- processes -------------------------------------------------------- */

/* A process shell with its TLB and an empty mapping set; no page table yet. */
static int proc_alloc(struct cow_engine *e, uint32_t tlb_entries, uint32_t tlb_ways,
                      struct cow_proc **ret)
{
        if (e->procs.n >= e->cfg.max_procs || e->last_pid == UINT32_MAX)
                return -EAGAIN;
        struct cow_proc *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->vmas.page_shift = e->frames.page_shift;
        p->policy = e->cfg.policy;
        int r = tlb_init(&p->tlb, tlb_entries, tlb_ways);
        if (r < 0) {
                free(p);
                return r;
        }
        *ret = p;
        return 0;
}

/* Gives p the next pid and makes it live. */
static int proc_publish(struct cow_engine *e, struct cow_proc *p, cow_pid *ret_pid)
{
        p->pid = e->last_pid + 1;
        int r = charge_attach(&e->charge, p->owner, &p->charge);
        if (r == 0)
                r = proc_table_append(&e->procs, p);
        if (r < 0)
                return r;
        e->last_pid = p->pid;
        e->counters.procs_created++;
        e->generation++;
        *ret_pid = p->pid;
        return 0;
}

int cow_engine_spawn(cow_engine *e, const char *name, uint32_t owner, cow_pid *ret_pid)
{
        struct cow_spawn_args args = {
                .name = name, .owner = owner, .policy = e->cfg.policy,
        };
        return cow_engine_spawn_args(e, &args, ret_pid);
}

int cow_engine_spawn_args(cow_engine *e, const struct cow_spawn_args *args, cow_pid *ret_pid)
{
        uint32_t entries = args->tlb_entries ? args->tlb_entries : e->cfg.tlb_entries;
        uint32_t ways = args->tlb_entries ? args->tlb_ways : e->cfg.tlb_ways;
        if (!cow_policy_name(args->policy) || entries > 1u << 20 ||
            (ways != 0 && (ways > entries || entries % ways != 0)))
                return -EINVAL;
        struct cow_proc *p = NULL;
        int r = proc_alloc(e, entries, ways, &p);
        if (r < 0)
                return r;
        p->owner = args->owner;
        p->max_resident = args->max_resident;
        p->policy = args->policy;
        if (args->name)
                strncpy(p->name, args->name, COW_NAME_MAX);
        p->root = pt_root_new(&e->pt);
        if (!p->root) {
                r = -ENOBUFS;
                goto fail;
        }
        r = proc_publish(e, p, ret_pid);
        if (r < 0)
                goto fail;
        return 0;
fail:
        proc_free(e, p);
        return r;
}

int cow_engine_fork(cow_engine *e, cow_pid pid, cow_pid *ret_child)
{
        struct cow_proc *parent = proc_table_find(&e->procs, pid), *child = NULL;
        if (!parent)
                return -ESRCH;
        int r = proc_alloc(e, parent->tlb.entries, parent->tlb.ways == parent->tlb.entries ? 0 :
                                                   parent->tlb.ways, &child);
        if (r < 0)
                return r;
        child->ppid = parent->pid;
        child->max_resident = parent->max_resident;
        child->policy = parent->policy;
        child->owner = parent->owner;
        memcpy(child->name, parent->name, sizeof(child->name));
        r = vma_set_copy(&child->vmas, &parent->vmas);
        if (r < 0)
                goto fail;
        child->root = pt_fork(&e->pt, parent->root);
        if (!child->root) {
                r = -ENOBUFS;
                goto fail;
        }
        r = proc_publish(e, child, ret_child);
        if (r < 0)
                goto fail;
        /* The parent's nodes are shared now: no cached translation may write. */
        tlb_write_protect_all(&parent->tlb);
        return 0;
fail:
        proc_free(e, child);
        return r;
}

int cow_engine_exit(cow_engine *e, cow_pid pid)
{
        struct cow_proc *p = proc_table_find(&e->procs, pid);
        if (!p)
                return -ESRCH;
        /* A failed write-back leaves its pages dirty in the page cache, which
         * keeps the file held; the failure is counted in file_errors. */
        (void)engine_writeback(e, p, 0, e->va_limit, false);
        proc_table_remove(&e->procs, pid);
        proc_free(e, p);
        pc_gc(&e->pc);
        e->generation++;
        return 0;
}

int cow_engine_proc_info(const cow_engine *e, cow_pid pid, struct cow_proc_info *ret)
{
        const struct cow_proc *p = proc_table_find(&e->procs, pid);
        if (!p)
                return -ESRCH;
        *ret = (struct cow_proc_info){
                .pid = p->pid, .ppid = p->ppid, .owner = p->owner,
                .rss_pages = p->root->pages - proc_out(e, p),
        };
        memcpy(ret->name, p->name, sizeof(ret->name));
        return 0;
}

cow_pid cow_engine_proc_next(const cow_engine *e, cow_pid after)
{
        uint32_t i = proc_table_upper(&e->procs, after);
        return i < e->procs.n ? e->procs.v[i]->pid : 0;
}

/* ---- mappings --------------------------------------------------------- */

/*
 * Checks a page-aligned range and rounds its length up to whole pages.
 * Returns 0, -EINVAL (unaligned, empty, outside user space) or -EOVERFLOW.
 */
int engine_range_check(const struct cow_engine *e, uint64_t addr, uint64_t length,
                       uint64_t *ret_end)
{
        uint64_t mask = e->frames.page_size - 1;
        if (length == 0 || (addr & mask) != 0)
                return -EINVAL;
        if (length > UINT64_MAX - mask || addr > UINT64_MAX - ((length + mask) & ~mask))
                return -EOVERFLOW;
        uint64_t end = addr + ((length + mask) & ~mask);
        if (end > e->va_limit)
                return -EOVERFLOW;
        *ret_end = end;
        return 0;
}

int engine_range_covered(const struct cow_engine *e, const struct cow_proc *p, uint64_t addr,
                         uint64_t length, uint64_t *ret_end)
{
        int r = engine_range_check(e, addr, length, ret_end);
        if (r == 0 && !vma_range_covered(&p->vmas, addr, *ret_end))
                r = -ENXIO;
        return r;
}

/*
 * Drops [start, end) from the page table, the mapping set and the TLB, after
 * writing back the dirty file pages its shared mappings reach (a failure
 * there changes nothing).
 */
static int unmap_range(struct cow_engine *e, struct cow_proc *p, uint64_t start, uint64_t end)
{
        int r = engine_writeback(e, p, start, end, false);
        if (r < 0)
                return r;
        r = vma_remove(&p->vmas, start, end, &e->frames);
        if (r < 0)
                return r;
        pt_clear_range(&e->pt, p->root, engine_vpn(e, start), engine_vpn(e, end));
        tlb_invalidate_range(&p->tlb, engine_vpn(e, start), engine_vpn(e, end));
        pc_gc(&e->pc);
        e->generation++;
        return 0;
}

/*
 * Checks the budgets for changing [start, end): the mappings the process
 * would hold afterwards (remove: the range's mappings go; add: new ones
 * come), and, when the page table is cleared there, the nodes that copying
 * its shared edges would take.
 */
static int edit_budget(const struct cow_engine *e, const struct cow_proc *p, uint64_t start,
                       uint64_t end, bool remove, unsigned add)
{
        if (vma_count_after(&p->vmas, start, end, remove) + add > e->cfg.max_maps_per_proc)
                return -EMLINK;
        if (!remove)
                return 0;
        return pt_reserve(&e->pt, pt_nodes_for_clear(&e->pt, p->root, engine_vpn(e, start),
                                                     engine_vpn(e, end)));
}

int cow_engine_mmap(cow_engine *e, cow_pid pid, const struct cow_mmap_args *args,
                    uint64_t *ret_addr)
{
        struct cow_proc *p = proc_table_find(&e->procs, pid);
        if (!p)
                return -ESRCH;
        if (args->prot & ~(unsigned)COW_PROT_MASK)
                return -EINVAL;
        uint64_t mask = e->frames.page_size - 1, start = args->addr, end;
        if (args->length == 0 || args->length > e->va_limit)
                return args->length == 0 ? -EINVAL : -EOVERFLOW;
        uint64_t len = (args->length + mask) & ~mask;
        bool shared = args->shared;
        int r;

        switch (args->kind) {
        case COW_MAP_ANONYMOUS:
                break;
        case COW_MAP_FILE:
                if (!e->pc.ops)
                        return -EOPNOTSUPP;
                r = pc_key_check(&e->pc, args->file_key);
                if (r < 0)
                        return r;
                /* Page offsets stay below 2^52, far from wrapping the object's keys. */
                if ((args->offset & mask) != 0 || args->offset > UINT64_MAX / 4096 ||
                    args->file_size > COW_FILE_SIZE_MAX)
                        return -EINVAL;
                break;
        case COW_MAP_DEVICE: {
                uint64_t dev_len = (cow_engine_device_bytes(e, args->device) + mask) & ~mask;
                if (!cow_device_name(args->device) || (args->offset & mask) != 0 ||
                    args->offset > dev_len || len > dev_len - args->offset)
                        return -EINVAL;
                shared = true; /* a device has no copy-on-write */
                break;
        }
        default:
                return -EOPNOTSUPP;
        }

        if (start == 0) {
                if (args->fixed)
                        return -EINVAL;
                r = vma_find_gap(&p->vmas, len, e->mmap_base, e->va_limit, &start);
                if (r < 0)
                        return r;
                end = start + len;
        } else {
                r = engine_range_check(e, start, len, &end);
                if (r < 0)
                        return r;
                if (start < e->frames.page_size)
                        return -EINVAL;
                if (!vma_range_free(&p->vmas, start, end) && !args->fixed)
                        return -EEXIST;
        }
        /* Replacement removes what overlaps; a free range removes nothing. */
        r = edit_budget(e, p, start, end, !vma_range_free(&p->vmas, start, end), 1);
        if (r < 0)
                return r;

        struct vma v = {
                .start = start, .end = end, .prot = (uint8_t)args->prot,
                .shared = shared, .kind = (uint8_t)args->kind,
        };
        if (args->kind == COW_MAP_FILE) {
                v.pgoff = args->offset >> e->frames.page_shift;
                r = pc_open(&e->pc, args->file_key, args->file_size, &v.obj);
                if (r < 0)
                        return r;
        } else if (args->kind == COW_MAP_DEVICE) {
                v.device = (uint8_t)args->device;
                v.pgoff = args->offset >> e->frames.page_shift;
        } else if (shared && !(v.obj = memobj_new())) {
                return -ENOMEM;
        }
        /* Room for two splits and the new mapping first: once the old range is
         * gone, nothing may fail. */
        r = vma_reserve(&p->vmas, p->vmas.n + 3);
        if (r < 0)
                goto fail;
        if (!vma_range_free(&p->vmas, start, end))
                r = unmap_range(e, p, start, end); /* MAP_FIXED replaces */
        if (r == 0)
                r = vma_insert(&p->vmas, &v);
        if (r < 0)
                goto fail;
        *ret_addr = start;
        return 0;
fail:
        memobj_unref(v.obj, &e->frames);
        pc_gc(&e->pc); /* a file opened for this mapping alone goes again */
        return r;
}

int cow_engine_munmap(cow_engine *e, cow_pid pid, uint64_t addr, uint64_t length)
{
        struct cow_proc *p = proc_table_find(&e->procs, pid);
        if (!p)
                return -ESRCH;
        uint64_t end;
        int r = engine_range_check(e, addr, length, &end);
        if (r == 0)
                r = edit_budget(e, p, addr, end, true, 0);
        if (r == 0)
                r = unmap_range(e, p, addr, end);
        return r;
}

int cow_engine_mprotect(cow_engine *e, cow_pid pid, uint64_t addr, uint64_t length,
                        unsigned prot)
{
        struct cow_proc *p = proc_table_find(&e->procs, pid);
        if (!p)
                return -ESRCH;
        if (prot & ~(unsigned)COW_PROT_MASK)
                return -EINVAL;
        uint64_t end;
        int r = engine_range_covered(e, p, addr, length, &end);
        if (r < 0)
                return r;
        /* Protection lives in the mappings: no page-table node changes. */
        r = edit_budget(e, p, addr, end, false, 0);
        if (r == 0)
                r = vma_protect(&p->vmas, addr, end, (uint8_t)prot);
        if (r < 0)
                return r;
        /* Protection lives in the mappings; cached translations must re-check it. */
        tlb_invalidate_range(&p->tlb, engine_vpn(e, addr), engine_vpn(e, end));
        return 0;
}

int cow_engine_madvise(cow_engine *e, cow_pid pid, uint64_t addr, uint64_t length,
                       enum cow_advice advice)
{
        struct cow_proc *p = proc_table_find(&e->procs, pid);
        if (!p)
                return -ESRCH;
        if (advice != COW_MADV_NORMAL && advice != COW_MADV_DONTNEED)
                return -EINVAL;
        uint64_t end;
        int r = engine_range_covered(e, p, addr, length, &end);
        if (r < 0)
                return r;
        if (advice == COW_MADV_NORMAL)
                return 0;
        r = pt_reserve(&e->pt, pt_nodes_for_clear(&e->pt, p->root, engine_vpn(e, addr),
                                                  engine_vpn(e, end)));
        if (r < 0)
                return r;
        /* Private pages are gone (zero again); shared ones stay in their object. */
        pt_clear_range(&e->pt, p->root, engine_vpn(e, addr), engine_vpn(e, end));
        tlb_invalidate_range(&p->tlb, engine_vpn(e, addr), engine_vpn(e, end));
        e->generation++;
        return 0;
}

int cow_engine_maps(const cow_engine *e, cow_pid pid, uint64_t addr, struct cow_map_info *out,
                    size_t cap)
{
        const struct cow_proc *p = proc_table_find(&e->procs, pid);
        if (!p)
                return -ESRCH;
        size_t n = 0;
        for (uint32_t i = vma_index_after(&p->vmas, addr); i < p->vmas.n && n < cap; i++, n++) {
                const struct vma *v = &p->vmas.v[i];
                const struct pc_file *f = pc_file_of(&e->pc, v->obj);
                out[n] = (struct cow_map_info){
                        .addr = v->start, .length = v->end - v->start, .prot = v->prot,
                        .shared = v->shared, .kind = (enum cow_map_kind)v->kind,
                        .offset = v->kind == COW_MAP_ANONYMOUS ? 0 :
                                  v->pgoff << e->frames.page_shift,
                        .file_key = f ? f->key : NULL,
                        .device = (enum cow_device)v->device,
                };
        }
        return (int)n;
}

/* ---- memory access ---------------------------------------------------- */

int cow_engine_read(cow_engine *e, cow_pid pid, uint64_t addr, void *buf, size_t len,
                    struct cow_fault *ret_fault)
{
        struct cow_proc *p = proc_table_find(&e->procs, pid);
        if (!p)
                return -ESRCH;
        return fault_access(e, p, addr, buf, len, false, ret_fault);
}

int cow_engine_write(cow_engine *e, cow_pid pid, uint64_t addr, const void *buf, size_t len,
                     struct cow_fault *ret_fault)
{
        struct cow_proc *p = proc_table_find(&e->procs, pid);
        if (!p)
                return -ESRCH;
        /* fault_access() only reads from buf when writing. */
        return fault_access(e, p, addr, (uint8_t *)(uintptr_t)buf, len, true, ret_fault);
}

/* ---- swap ------------------------------------------------------------ */

void cow_engine_set_swap(cow_engine *e, const struct cow_swap_ops *ops, void *ctx)
{
        /* Without slots there is nowhere to write: the backend is not used. */
        e->swap.ops = e->swap.nslots ? ops : NULL;
        e->swap.ctx = ctx;
}

void cow_engine_swap_hold(cow_engine *e)
{
        swap_hold(&e->swap);
}

void cow_engine_swap_release(cow_engine *e)
{
        swap_release(&e->swap);
}

int cow_engine_oom_victims(cow_engine *e, cow_pid *out, size_t cap)
{
        size_t n = e->oom.n < cap ? e->oom.n : cap;
        memcpy(out, e->oom.pid, n * sizeof(*out));
        memmove(e->oom.pid, e->oom.pid + n, (e->oom.n - n) * sizeof(*out));
        e->oom.n -= (uint32_t)n;
        return (int)n;
}

/* ---- per-owner quotas ------------------------------------------------ */

int cow_engine_owner_charge(const cow_engine *e, uint32_t uid, uint64_t *ret_frames,
                            uint64_t *ret_slots)
{
        if (!e->charge.on)
                return -EOPNOTSUPP;
        uint16_t idx = charge_find(&e->charge, uid);
        if (idx == 0)
                return -ENOENT;
        *ret_frames = e->charge.owners[idx].frames;
        *ret_slots = e->charge.owners[idx].slots;
        return 0;
}

enum cow_quota cow_engine_last_quota(const cow_engine *e)
{
        return (enum cow_quota)e->charge.last_refused;
}

int cow_engine_set_quotas(cow_engine *e, uint64_t max_frames_per_owner,
                          uint64_t max_swap_slots_per_owner)
{
        if (!e->charge.on && (max_frames_per_owner || max_swap_slots_per_owner))
                return -EOPNOTSUPP; /* frames in use were never charged */
        e->charge.max_frames = max_frames_per_owner;
        e->charge.max_slots = max_swap_slots_per_owner;
        e->cfg.max_frames_per_owner = max_frames_per_owner;
        e->cfg.max_swap_slots_per_owner = max_swap_slots_per_owner;
        return 0;
}
