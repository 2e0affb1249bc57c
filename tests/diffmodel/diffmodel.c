/* SPDX-License-Identifier: MIT */
/*
 * The reference model of the engine, and the driver that runs operation
 * sequences on both and compares them after every step.
 *
 * The model knows nothing of radix trees, reverse maps or TLB arrays. Each
 * process is an array of page slots over a window of its address space; a
 * private page is a refcounted page buffer, so fork "copies the whole
 * process" by taking a reference and a write to a buffer somebody else holds
 * copies it (lazily, but observably the same as a copy made at fork).
 * MAP_SHARED mappings are objects whose pages every mapper points at.
 *
 * On top of that, the model keeps what the engine's figures depend on:
 *   - physical memory: which frame each page is in, the allocator's free
 *     list (LIFO) and high-water mark, so it predicts every frame number;
 *   - residency: a private page is resident (in a frame) or only in swap;
 *     each mapper's entry is present or a swap entry; whether the swap copy
 *     is still valid (the swap cache), so a clean page is dropped unwritten;
 *   - the replacement policy: the clock's hand and accessed bits, FIFO's
 *     load order and LRU's use order, on the engine's tick, so it predicts
 *     every victim of every eviction;
 *   - which processes still share a page-table leaf since a fork (a
 *     "group"): the engine brings a page back from swap into the leaf where
 *     the entry is, so a swap-in is seen by every process sharing that leaf,
 *     and the choice between reusing and copying a page depends on it. All
 *     modelled pages sit under one leaf (the window is smaller than 512
 *     pages), so a process's group is the one leaf it reaches: it shares it
 *     with its fork relatives until it changes an entry (a fault that maps a
 *     page, munmap, DONTNEED), which gives it a private copy;
 *   - a per-process TLB: a plain LRU list per set, looked up once per page
 *     by every access, emptied over the range by munmap, mprotect, DONTNEED
 *     and MAP_FIXED, and shot down for every mapper of an evicted page.
 * From that it predicts exactly: every read's bytes and every error, fault
 * kind and fault address; -ENOMEM (memory full of pages nothing can evict);
 * frames used; the counters zero fills, zero maps, COW copies and reuses,
 * segfaults, swap-ins, swap-outs, evictions, swap-cache hits and swap slots
 * used; per process rss, uss, swapped pages, zero pages, vsize, TLB hits and
 * misses and every fault counter; and in cow_engine_page_map() of every
 * process every flag, frame number, sharer count and the TLB's contents,
 * swap slots one to one with swapped pages.
 *
 * One thing is taken from the engine rather than predicted: the order in
 * which a dying memory object hands its frames back to the free list is its
 * hash table's. After an operation in which that happened, the model checks
 * that the engine's free list holds the same frames as its own and adopts
 * the engine's order; after every other operation the two lists must be
 * equal, element by element. The free list, the high-water mark and the
 * clock hand are read from the engine's frame pool for that comparison
 * (the only use of the engine's private headers here).
 *
 * cow_engine_verify() runs after every operation (reverse map against page
 * tables, slot counts against swap entries, no stale TLB entry, ...). About
 * one step in a hundred saves a checkpoint and carries on with the engine
 * loaded from it (which must be indistinguishable from the original), or
 * flips one byte of it and expects the load to refuse it.
 *
 * Sequences with swap use 8 to 64 frames, working sets several times
 * larger, fork trees and an operation mix of mostly accesses spread over
 * everything mapped, so that nearly every operation swaps. Swap has a slot
 * for every page the model can hold, so it never fills.
 */
#include "diffmodel.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cowd/engine.h>

#include "blob.h"
#include "engine-impl.h"

#define MMAP_BASE UINT64_C(0x10000) /* where addr-0 placement starts */
#define WIN_PAGES 480u  /* vpns [base, base + WIN_PAGES) of each process are modelled:
                         * all under one page-table leaf (512 pages from vpn 0) */
#define MAX_PROCS 6
#define MAX_PAGE (64 * 1024)
#define MAX_ACCESS_PAGES 8u
#define MAX_ACCESS (MAX_ACCESS_PAGES * MAX_PAGE)
#define EXACT_PAGES 160u /* exact and fixed mmaps land in the window's first pages: overlaps */
#define SWAP_SLOTS (MAX_PROCS * WIN_PAGES) /* every private page the model can hold */
#define MAX_FRAMES 256u

struct mobj;

struct mpage {
        uint32_t refs;   /* private: slots referencing it; object page: 0 */
        uint32_t frame;  /* the frame it is in, 0 when only in swap (or untouched) */
        uint64_t vpn;    /* every mapper maps it there (no mremap) */
        struct mobj *obj; /* object page: its object */
        bool slot;       /* private: holds a swap slot whose copy is valid */
        uint32_t epoch;  /* page_map sweep bookkeeping: swap slot seen at epoch */
        uint64_t eslot;
        unsigned char data[]; /* one page */
};

struct mobj {
        uint32_t refs;       /* slots referencing the object, over all processes */
        uint32_t npages;
        bool dead;           /* every mapping gone; frees once no leaf maps its pages */
        struct mpage **page; /* NULL until first touched */
        struct mobj *next;
};

enum { ST_NONE = 0, ST_ZERO = 1, ST_FRAME = 2 };

struct slot {
        bool mapped;
        bool shared;
        bool wp;      /* private frame write-protected (fork, swap-in): a write faults */
        bool present; /* ST_FRAME: the entry maps the frame (else a swap entry);
                       * shared: the entry maps the object's frame */
        uint8_t prot;
        uint8_t state;
        struct mpage *pg;  /* private, ST_FRAME */
        struct mobj *obj;  /* shared */
        uint32_t objpage;
};

/*
 * The model TLB: each set is a list of vpns, most recently used first. A
 * lookup hits (moves to the front) or misses (inserts at the front, dropping
 * the last when the set is full).
 */
#define MTLB_MAX 16u

struct mtlb {
        uint32_t ways, sets;
        uint32_t n[MTLB_MAX];            /* entries in each set */
        uint64_t v[MTLB_MAX][MTLB_MAX];  /* [set][rank] */
        uint64_t hits, misses;
};

struct pcounters {
        uint64_t zero_maps, zero_fills, cow_copies, cow_reuses, segv, major, first_touch;
};

struct mproc {
        uint64_t base; /* first vpn of the window: MMAP_BASE / page size */
        cow_pid pid;
        bool live;
        uint32_t group; /* the page-table leaf it reaches; equal groups share it */
        struct mtlb tlb;
        struct pcounters f;
        struct slot slot[WIN_PAGES];
};

struct counters {
        uint64_t zero_fills, zero_maps, cow_copies, cow_reuses, segv;
        uint64_t swap_ins, swap_outs, evictions, cache_hits;
};

/*
 * The swap backend: one page buffer per slot, allocated on first write, so a
 * sequence pays for the slots it uses, not for the thousands it might.
 */
struct slotmem {
        unsigned char **page; /* SWAP_SLOTS entries */
        size_t len;
};

static int slotmem_write(void *ctx, uint64_t slot, const void *page, size_t len)
{
        struct slotmem *m = ctx;

        if (slot >= SWAP_SLOTS || len != m->len)
                return -EINVAL;
        if (!m->page[slot] && !(m->page[slot] = malloc(len)))
                return -ENOMEM;
        memcpy(m->page[slot], page, len);
        return 0;
}

static int slotmem_read(void *ctx, uint64_t slot, void *page, size_t len)
{
        struct slotmem *m = ctx;

        if (slot >= SWAP_SLOTS || len != m->len || !m->page[slot])
                return -EINVAL; /* the engine reads only what it wrote */
        memcpy(page, m->page[slot], len);
        return 0;
}

static const struct cow_swap_ops slotmem_ops = { .write = slotmem_write, .read = slotmem_read };

static void slotmem_fini(struct slotmem *m)
{
        for (size_t i = 0; m->page && i < SWAP_SLOTS; i++)
                free(m->page[i]);
        free(m->page);
        m->page = NULL;
}

static int slotmem_init(struct slotmem *m, size_t len)
{
        m->len = len;
        m->page = calloc(SWAP_SLOTS, sizeof *m->page);
        return m->page ? 0 : -ENOMEM;
}

/* A frame of the model's physical memory. */
struct mframe {
        struct mpage *pg; /* NULL: free */
        uint32_t next;    /* free-list link */
        bool referenced;  /* the clock's accessed bit */
        bool pinned;      /* held by the access in progress: not evictable */
        uint64_t loaded, used; /* ticks of allocation (FIFO) and last use (LRU) */
};

struct diff {
        struct diff_tally t;
        uint64_t seed;
        uint64_t rng;
        const uint8_t *src; /* choices from bytes (fuzzing) instead of rng */
        size_t srclen, srcpos;
        bool src_done;
        unsigned op;
        bool verbose;
        bool abort_on_fail;
        bool failed;
        char desc[160];
        cow_engine *e;
        struct cow_engine_config cfg;
        bool swap;               /* this sequence swaps */
        struct slotmem sm[2];    /* the engine's backend, and one to restore into */
        int sm_cur;
        uint32_t tlb_ways, tlb_sets; /* ways == entries when fully associative */
        uint32_t pg; /* page size of this sequence */
        uint64_t frames_total;
        struct mproc proc[MAX_PROCS];
        uint32_t next_group;
        struct mobj *objs, *dead;
        uint64_t private_pages; /* live private page buffers */
        struct counters c;
        /* physical memory */
        struct mframe fr[MAX_FRAMES + 1];
        uint32_t free_head, hwm, nused, hand;
        uint64_t tick;
        uint64_t slots_used;
        bool order_unknown;     /* a memory object freed frames in its own order */
        uint32_t epoch;
        struct { const struct mpage *pg; uint32_t epoch; } *slotrev; /* swap slot -> model */
        unsigned char wbuf[MAX_ACCESS], rbuf[MAX_ACCESS], mbuf[MAX_ACCESS];
};

/* ---- helpers ---------------------------------------------------------- */

static void *xcalloc(size_t n, size_t size)
{
        void *p = calloc(n, size);

        if (!p) {
                fprintf(stderr, "differential: out of host memory\n");
                abort();
        }
        return p;
}

static uint64_t rnd(struct diff *d)
{
        uint64_t z = (d->rng += UINT64_C(0x9e3779b97f4a7c15));

        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

/* A choice in [0, n): from the seeded generator, or from the input bytes. */
static uint64_t below(struct diff *d, uint64_t n)
{
        if (n == 0)
                return 0;
        if (!d->src)
                return rnd(d) % n;
        uint64_t x = 0;
        unsigned bytes = n <= 256 ? 1 : n <= 65536 ? 2 : 4;
        for (unsigned i = 0; i < bytes; i++) {
                if (d->srcpos < d->srclen)
                        x = x << 8 | d->src[d->srcpos++];
                else
                        d->src_done = true;
        }
        return x % n;
}

__attribute__((format(printf, 2, 3)))
static bool dfail(struct diff *d, const char *fmt, ...)
{
        va_list ap;

        if (d->failed)
                return false;
        d->failed = true;
        fprintf(stderr, "differential: seed %llu op %u [%s]: ", (unsigned long long)d->seed,
                d->op, d->desc);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        if (d->src)
                fprintf(stderr, "\n");
        else
                fprintf(stderr, "\n  replay: COWD_SEED=%llu COWD_DIFF_VERBOSE=1%s "
                        "./test_differential\n", (unsigned long long)d->seed,
                        d->swap ? " COWD_DIFF_SWAP=1" : "");
        if (d->abort_on_fail)
                abort();
        return false;
}

__attribute__((format(printf, 2, 3)))
static void describe(struct diff *d, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(d->desc, sizeof d->desc, fmt, ap);
        va_end(ap);
        if (d->verbose)
                fprintf(stderr, "  %4u %s\n", d->op, d->desc);
}

static struct slot *slot_at(struct mproc *p, uint64_t vpn)
{
        if (vpn < p->base || vpn >= p->base + WIN_PAGES)
                return NULL;
        return &p->slot[vpn - p->base];
}

/* A slot the caller knows to be inside the window. */
static struct slot *slot_win(struct mproc *p, uint64_t vpn)
{
        return &p->slot[(vpn - p->base) % WIN_PAGES];
}

static void mtlb_init(struct diff *d, struct mtlb *t)
{
        memset(t, 0, sizeof *t);
        t->ways = d->tlb_ways;
        t->sets = d->tlb_sets;
}

static void mtlb_lookup(struct mtlb *t, uint64_t vpn)
{
        uint32_t set = (uint32_t)(vpn % t->sets), i = 0;
        uint64_t *v = t->v[set];

        while (i < t->n[set] && v[i] != vpn)
                i++;
        if (i < t->n[set]) {
                t->hits++;
        } else {
                t->misses++;
                if (t->n[set] < t->ways)
                        t->n[set]++;
                i = t->n[set] - 1; /* the slot to reuse: the least recently used */
        }
        memmove(&v[1], &v[0], i * sizeof *v);
        v[0] = vpn;
}

static void mtlb_invalidate(struct mtlb *t, uint64_t start, uint64_t end)
{
        for (uint32_t set = 0; set < t->sets; set++) {
                uint32_t keep = 0;

                for (uint32_t i = 0; i < t->n[set]; i++)
                        if (t->v[set][i] < start || t->v[set][i] >= end)
                                t->v[set][keep++] = t->v[set][i];
                t->n[set] = keep;
        }
}

static bool mtlb_has(const struct mtlb *t, uint64_t vpn)
{
        uint32_t set = (uint32_t)(vpn % t->sets);

        for (uint32_t i = 0; i < t->n[set]; i++)
                if (t->v[set][i] == vpn)
                        return true;
        return false;
}

static struct mpage *page_new(struct diff *d, uint64_t vpn)
{
        struct mpage *pg = xcalloc(1, sizeof *pg + d->pg);

        pg->refs = 1;
        pg->vpn = vpn;
        return pg;
}

/* ---- physical memory --------------------------------------------------- */

/* The engine's allocator: the free list's head, else the next never-used frame. */
static uint32_t frame_alloc(struct diff *d, struct mpage *pg)
{
        uint32_t pfn;

        if (d->free_head) {
                pfn = d->free_head;
                d->free_head = d->fr[pfn].next;
        } else if (d->hwm < d->frames_total) {
                pfn = ++d->hwm;
        } else {
                dfail(d, "model bug: no free frame for an allocation it counted");
                return 0;
        }
        d->tick++;
        d->fr[pfn] = (struct mframe){ .pg = pg, .loaded = d->tick, .used = d->tick };
        d->nused++;
        pg->frame = pfn;
        return pfn;
}

static void frame_free(struct diff *d, uint32_t pfn)
{
        d->fr[pfn].pg->frame = 0;
        d->fr[pfn] = (struct mframe){ .next = d->free_head };
        d->free_head = pfn;
        d->nused--;
}

/* Every access to a page, TLB hits included: the accessed bit and LRU's stamp. */
static void touch(struct diff *d, uint32_t pfn)
{
        d->tick++;
        if (pfn) {
                d->fr[pfn].referenced = true;
                d->fr[pfn].used = d->tick;
        }
}

static bool slot_maps(const struct slot *s, const struct mpage *pg)
{
        if (!s || !s->mapped)
                return false;
        if (s->shared)
                return s->obj->page[s->objpage] == pg;
        return s->state == ST_FRAME && s->pg == pg;
}

/* Leaves whose entry maps pg's frame: distinct groups among the present mappers. */
static unsigned leaf_refs(struct diff *d, const struct mpage *pg)
{
        uint32_t seen[MAX_PROCS];
        unsigned n = 0;

        for (int i = 0; i < MAX_PROCS; i++) {
                struct mproc *q = &d->proc[i];
                const struct slot *s;
                unsigned k = 0;

                if (!q->live || !(s = slot_at(q, pg->vpn)) || !slot_maps(s, pg) || !s->present)
                        continue;
                while (k < n && seen[k] != q->group)
                        k++;
                if (k == n)
                        seen[n++] = q->group;
        }
        return n;
}

/* Processes whose entry maps pg's frame: cow_page_info.sharers. */
static unsigned present_mappers(struct diff *d, const struct mpage *pg)
{
        unsigned n = 0;

        for (int i = 0; i < MAX_PROCS; i++) {
                struct mproc *q = &d->proc[i];
                const struct slot *s;

                n += q->live && (s = slot_at(q, pg->vpn)) && slot_maps(s, pg) && s->present;
        }
        return n;
}

/* A frame goes back once nothing references it: no leaf, and no living object. */
static void frame_maybe_free(struct diff *d, struct mpage *pg)
{
        if (pg->frame && leaf_refs(d, pg) == 0 && !(pg->obj && !pg->obj->dead))
                frame_free(d, pg->frame);
}

/* A private page lost a slot (already cleared by the caller). */
static void page_unref(struct diff *d, struct mpage *pg)
{
        if (--pg->refs != 0) {
                /* The last present mapper gone: the frame leaves the swap cache;
                 * the others' swap entries keep the slot. */
                frame_maybe_free(d, pg);
                return;
        }
        if (pg->frame)
                frame_free(d, pg->frame);
        if (pg->slot)
                d->slots_used--;
        free(pg);
        d->private_pages--;
}

static bool path_shared(const struct diff *d, const struct mproc *p)
{
        for (int i = 0; i < MAX_PROCS; i++)
                if (&d->proc[i] != p && d->proc[i].live && d->proc[i].group == p->group)
                        return true;
        return false;
}

/* The engine copies a shared leaf before changing one of its entries. */
static void make_private(struct diff *d, struct mproc *p)
{
        if (path_shared(d, p))
                p->group = ++d->next_group;
}

/* ---- objects and slots -------------------------------------------------- */

/*
 * A slot's mapping goes (munmap, MAP_FIXED, exit): its object loses a
 * reference; an object with none left dies, and its touched pages that no
 * leaf maps go back at once, in the object's own order.
 */
static void slot_drop_mapping(struct diff *d, struct slot *s)
{
        struct mobj *o = s->obj;

        if (!s->mapped || !s->shared || --o->refs != 0)
                return;
        struct mobj **pp = &d->objs;
        while (*pp && *pp != o)
                pp = &(*pp)->next;
        if (*pp)
                *pp = o->next;
        o->dead = true;
        o->next = d->dead;
        d->dead = o;
        unsigned freed = 0;
        for (uint32_t i = 0; i < o->npages; i++)
                if (o->page[i] && o->page[i]->frame && leaf_refs(d, o->page[i]) == 0) {
                        frame_free(d, o->page[i]->frame);
                        freed++;
                }
        if (freed > 1)
                d->order_unknown = true;
}

/* A slot's page-table entry goes (the mapping may stay: DONTNEED). */
static void slot_drop_entry(struct diff *d, struct slot *s)
{
        if (!s->mapped)
                return;
        if (s->shared) {
                struct mpage *pg = s->obj->page[s->objpage];

                s->present = false;
                if (pg)
                        frame_maybe_free(d, pg);
                return;
        }
        struct mpage *pg = s->state == ST_FRAME ? s->pg : NULL;
        s->pg = NULL;
        s->state = ST_NONE;
        s->wp = false;
        s->present = false;
        if (pg)
                page_unref(d, pg);
}

/* Dead objects whose last frame went: the model's memory for them goes too. */
static void objs_reap(struct diff *d)
{
        struct mobj **pp = &d->dead;

        while (*pp) {
                struct mobj *o = *pp;
                bool busy = false;

                for (uint32_t i = 0; i < o->npages; i++)
                        busy |= o->page[i] && o->page[i]->frame;
                if (busy) {
                        pp = &o->next;
                        continue;
                }
                *pp = o->next;
                for (uint32_t i = 0; i < o->npages; i++)
                        free(o->page[i]);
                free(o->page);
                free(o);
        }
}

/*
 * munmap and MAP_FIXED: the engine removes the mappings first (objects may
 * die), then clears the entries in address order, copying a shared leaf first.
 */
static void unmap_range(struct diff *d, struct mproc *p, uint64_t vpn, uint64_t n)
{
        for (uint64_t i = 0; i < n; i++)
                slot_drop_mapping(d, slot_win(p, vpn + i));
        make_private(d, p);
        for (uint64_t i = 0; i < n; i++) {
                struct slot *s = slot_win(p, vpn + i);

                slot_drop_entry(d, s);
                memset(s, 0, sizeof *s);
        }
        mtlb_invalidate(&p->tlb, vpn, vpn + n);
}

static void model_frames_check_setup(struct diff *d)
{
        memset(d->fr, 0, sizeof d->fr);
        d->free_head = d->hwm = d->nused = d->hand = 0;
        d->tick = 0;
        d->slots_used = 0;
        d->next_group = 0;
        d->order_unknown = false;
}

static struct mproc *proc_new_slot(struct diff *d)
{
        for (int i = 0; i < MAX_PROCS; i++)
                if (!d->proc[i].live)
                        return &d->proc[i];
        return NULL;
}

static int live_count(const struct diff *d)
{
        int n = 0;

        for (int i = 0; i < MAX_PROCS; i++)
                n += d->proc[i].live;
        return n;
}

static struct mproc *proc_pick(struct diff *d)
{
        int n = live_count(d), k;

        if (n == 0)
                return NULL;
        k = (int)below(d, (uint64_t)n);
        for (int i = 0; i < MAX_PROCS; i++)
                if (d->proc[i].live && k-- == 0)
                        return &d->proc[i];
        return NULL;
}

/* A start vpn: mostly a mapped page of p (to hit interesting state), else anywhere. */
static uint64_t pick_vpn(struct diff *d, struct mproc *p)
{
        if (below(d, 100) < (d->swap ? 99u : 95u)) {
                uint32_t n = 0, k;

                for (uint32_t i = 0; i < WIN_PAGES; i++)
                        n += p->slot[i].mapped;
                if (n) {
                        k = (uint32_t)below(d, n);
                        for (uint32_t i = 0; i < WIN_PAGES; i++)
                                if (p->slot[i].mapped && k-- == 0)
                                        return p->base + i;
                }
        }
        /* a little below the window too: unmapped pages under the first mapping */
        return (p->base >= 2 ? p->base - 2 : 0) + below(d, EXACT_PAGES + 2);
}

static uint64_t pick_npages(struct diff *d, struct mproc *p, uint64_t vpn)
{
        uint64_t n = 1 + below(d, below(d, 4) == 0 ? 16 : 4);

        if (vpn + n > p->base + WIN_PAGES)
                n = p->base + WIN_PAGES - vpn;
        return n ? n : 1;
}

static unsigned pick_prot(struct diff *d)
{
        static const unsigned prots[] = { COW_PROT_READ | COW_PROT_WRITE,
                                          COW_PROT_READ | COW_PROT_WRITE,
                                          COW_PROT_READ | COW_PROT_WRITE,
                                          COW_PROT_READ | COW_PROT_WRITE, COW_PROT_READ,
                                          COW_PROT_NONE };

        return prots[below(d, 6)];
}

/* ---- checks ------------------------------------------------------------ */

static bool check_errno(struct diff *d, const char *what, int got, int want)
{
        d->t.efault += want == -EFAULT;
        d->t.enomem += want == -ENOMEM;
        d->t.eexist += want == -EEXIST;
        d->t.enxio += want == -ENXIO;
        if (got != want)
                return dfail(d, "%s returned %d (%s), model expects %d (%s)", what, got,
                             cow_engine_strerror(got), want, cow_engine_strerror(want));
        return true;
}

#define CNT(field, model)                                                                \
        do {                                                                             \
                if ((uint64_t)(field) != (uint64_t)(model))                              \
                        return dfail(d, "%s = %llu, model expects %llu", #field,         \
                                     (unsigned long long)(field),                        \
                                     (unsigned long long)(model));                       \
        } while (0)

/*
 * The engine's free list against the model's: equal, or after a memory
 * object freed frames in its own order, the same frames, whose order the
 * model then adopts.
 */
static bool check_free_list(struct diff *d)
{
        const struct frames *f = &d->e->frames;
        uint32_t eng[MAX_FRAMES + 1], mod[MAX_FRAMES + 1], ne = 0, nm = 0;
        bool in_e[MAX_FRAMES + 1] = { false };

        for (uint32_t pfn = f->free_head; pfn != 0 && ne <= MAX_FRAMES; pfn = f->meta[pfn].next)
                eng[ne++] = pfn;
        for (uint32_t pfn = d->free_head; pfn != 0 && nm <= MAX_FRAMES; pfn = d->fr[pfn].next)
                mod[nm++] = pfn;
        CNT(f->hwm, d->hwm);
        if (d->cfg.policy == COW_POLICY_CLOCK)
                CNT(d->e->clock_hand, d->hand);
        if (ne != nm)
                return dfail(d, "engine's free list has %u frames, model's %u", ne, nm);
        if (!d->order_unknown) {
                for (uint32_t i = 0; i < ne; i++)
                        if (eng[i] != mod[i])
                                return dfail(d, "free list position %u: engine frame %u, "
                                             "model frame %u", i, eng[i], mod[i]);
                return true;
        }
        for (uint32_t i = 0; i < ne; i++) {
                if (eng[i] == 0 || eng[i] > d->frames_total || in_e[eng[i]])
                        return dfail(d, "engine's free list: bad frame %u", eng[i]);
                in_e[eng[i]] = true;
        }
        for (uint32_t i = 0; i < nm; i++)
                if (!in_e[mod[i]])
                        return dfail(d, "model's free frame %u is not in the engine's list",
                                     mod[i]);
        d->free_head = ne ? eng[0] : 0;
        for (uint32_t i = 0; i < ne; i++)
                d->fr[eng[i]].next = i + 1 < ne ? eng[i + 1] : 0;
        d->order_unknown = false;
        d->t.freelist_adopted++;
        return true;
}

/* Everything global, after every operation. */
static bool check_global(struct diff *d)
{
        struct cow_sys_stats s;
        char msg[512] = "";
        uint64_t zmaps = 0;
        int r = cow_engine_verify(d->e, msg, sizeof msg);

        if (r != 0)
                return dfail(d, "cow_engine_verify: %d %s", r, msg);
        cow_engine_sys_stats(d->e, &s);
        if (s.frames_used > d->t.max_used)
                d->t.max_used = s.frames_used;
        CNT(s.frames_used, d->nused);
        CNT(s.frames_used + s.frames_free, d->frames_total);
        CNT(s.zero_fills, d->c.zero_fills);
        CNT(s.cow_copies, d->c.cow_copies);
        CNT(s.cow_reuses, d->c.cow_reuses);
        CNT(s.zero_maps, d->c.zero_maps);
        CNT(s.segv_faults, d->c.segv);
        CNT(s.procs, live_count(d));
        CNT(s.swap_ins, d->c.swap_ins);
        CNT(s.swap_outs, d->c.swap_outs);
        CNT(s.evictions, d->c.evictions);
        CNT(s.swap_cache_hits, d->c.cache_hits);
        CNT(s.swap_slots_used, d->slots_used);
        for (int i = 0; i < MAX_PROCS; i++) {
                const struct mproc *p = &d->proc[i];

                if (!p->live)
                        continue;
                for (uint32_t k = 0; k < WIN_PAGES; k++)
                        zmaps += p->slot[k].mapped && !p->slot[k].shared &&
                                 p->slot[k].state == ST_ZERO;
        }
        CNT(s.zero_page_maps, zmaps);
        return check_free_list(d);
}

/* Per-process statistics of one process. */
static bool check_proc(struct diff *d, struct mproc *p)
{
        struct cow_proc_stats s;
        uint64_t mapped = 0, zero = 0, rss = 0, uss = 0, swapped = 0;
        int r = cow_engine_proc_stats(d->e, p->pid, &s);

        if (r != 0)
                return dfail(d, "proc_stats(%u) = %d", p->pid, r);
        for (uint32_t k = 0; k < WIN_PAGES; k++) {
                const struct slot *sl = &p->slot[k];
                const struct mpage *pg = NULL;

                if (!sl->mapped)
                        continue;
                mapped++;
                if (sl->shared && sl->present)
                        pg = sl->obj->page[sl->objpage];
                else if (!sl->shared && sl->state == ST_ZERO)
                        zero++;
                else if (!sl->shared && sl->state == ST_FRAME && sl->present)
                        pg = sl->pg;
                else if (!sl->shared && sl->state == ST_FRAME)
                        swapped++;
                if (pg) {
                        rss++;
                        uss += present_mappers(d, pg) == 1;
                }
        }
        CNT(s.vsize_bytes, mapped * d->pg);
        CNT(s.zero_pages, zero);
        CNT(s.rss_pages, rss);
        CNT(s.uss_pages, uss);
        CNT(s.shared_pages, rss - uss);
        CNT(s.swapped_pages, swapped);
        CNT(s.tlb_hits, p->tlb.hits);
        CNT(s.tlb_misses, p->tlb.misses);
        CNT(s.faults_zero_map, p->f.zero_maps);
        CNT(s.faults_zero_fill, p->f.zero_fills);
        CNT(s.faults_cow_copy, p->f.cow_copies);
        CNT(s.faults_cow_reuse, p->f.cow_reuses);
        CNT(s.faults_segv, p->f.segv);
        CNT(s.faults_major, p->f.major);
        CNT(s.faults_first_touch, p->f.first_touch);
        return true;
}

/* Swap slot <-> model page must be one to one within one sweep. */
static bool bind_slot(struct diff *d, struct mpage *pg, uint64_t slot, uint64_t addr)
{
        if (slot >= SWAP_SLOTS)
                return dfail(d, "page %#llx: swap slot %llu out of range",
                             (unsigned long long)addr, (unsigned long long)slot);
        if (pg->epoch != d->epoch) {
                if (d->slotrev[slot].epoch == d->epoch && d->slotrev[slot].pg != pg)
                        return dfail(d, "page %#llx: slot %llu also holds another model page",
                                     (unsigned long long)addr, (unsigned long long)slot);
                pg->epoch = d->epoch;
                pg->eslot = slot;
                d->slotrev[slot].pg = pg;
                d->slotrev[slot].epoch = d->epoch;
        } else if (pg->eslot != slot) {
                return dfail(d, "page %#llx: slot %llu, but the same model page is in slot "
                             "%llu elsewhere", (unsigned long long)addr,
                             (unsigned long long)slot, (unsigned long long)pg->eslot);
        }
        return true;
}

/* cow_engine_page_map of the whole window of every process against the model. */
static bool check_page_maps(struct diff *d)
{
        static struct cow_page_info info[WIN_PAGES];

        d->epoch++;
        d->t.page_map_checks++;
        for (int i = 0; i < MAX_PROCS; i++) {
                struct mproc *p = &d->proc[i];
                int r;

                if (!p->live)
                        continue;
                r = cow_engine_page_map(d->e, p->pid, (uint64_t)p->base * d->pg, WIN_PAGES, info);
                if (r != 0)
                        return dfail(d, "page_map(%u) = %d", p->pid, r);
                for (uint32_t k = 0; k < WIN_PAGES; k++) {
                        const struct slot *s = &p->slot[k];
                        const struct cow_page_info *pi = &info[k];
                        uint64_t addr = (uint64_t)(p->base + k) * d->pg;
                        const struct mpage *pg = NULL;
                        uint32_t want_flags = 0, want_frame = 0, want_sharers = 0;
                        bool w = s->prot & COW_PROT_WRITE;

                        if (pi->addr != addr)
                                return dfail(d, "page_map addr %#llx, expected %#llx",
                                             (unsigned long long)pi->addr,
                                             (unsigned long long)addr);
                        if (mtlb_has(&p->tlb, p->base + k))
                                want_flags |= COW_PAGE_IN_TLB;
                        if (s->mapped) {
                                want_flags |= COW_PAGE_MAPPED;
                                if (pi->prot != s->prot)
                                        return dfail(d, "pid %u page %#llx: prot %u, model %u",
                                                     p->pid, (unsigned long long)addr,
                                                     pi->prot, s->prot);
                        }
                        if (s->mapped && s->shared) {
                                want_flags |= COW_PAGE_SHARED;
                                if (s->present) {
                                        pg = s->obj->page[s->objpage];
                                        want_flags |= COW_PAGE_PRESENT |
                                                      (w ? COW_PAGE_WRITABLE : 0);
                                }
                        } else if (s->mapped && s->state == ST_ZERO) {
                                want_flags |= COW_PAGE_PRESENT | COW_PAGE_ZERO |
                                              (w ? COW_PAGE_COW : 0);
                                want_sharers = pi->sharers; /* every zero-page mapping */
                        } else if (s->mapped && s->state == ST_FRAME && s->present) {
                                pg = s->pg;
                                want_flags |= COW_PAGE_PRESENT;
                                if (w)
                                        want_flags |= s->wp ? COW_PAGE_COW : COW_PAGE_WRITABLE;
                        } else if (s->mapped && s->state == ST_FRAME) {
                                want_flags |= COW_PAGE_SWAPPED;
                                if (!(pi->flags & COW_PAGE_SWAPPED))
                                        return dfail(d, "pid %u page %#llx: flags %#x, model: "
                                                     "swapped", p->pid,
                                                     (unsigned long long)addr, pi->flags);
                                if (!s->pg->slot)
                                        return dfail(d, "model bug: swapped page without a "
                                                     "slot");
                                if (!bind_slot(d, s->pg, pi->swap_slot, addr))
                                        return false;
                        }
                        if (pg) {
                                want_frame = pg->frame;
                                want_sharers = present_mappers(d, pg);
                        }
                        if (pi->flags != want_flags || pi->frame != want_frame ||
                            pi->sharers != want_sharers)
                                return dfail(d, "pid %u page %#llx: flags %#x frame %u sharers "
                                             "%u, model: flags %#x frame %u sharers %u "
                                             "(state %u wp %d present %d)", p->pid,
                                             (unsigned long long)addr, pi->flags, pi->frame,
                                             pi->sharers, want_flags, want_frame,
                                             want_sharers, s->state, s->wp, s->present);
                }
        }
        return true;
}

/* ---- operations -------------------------------------------------------- */

static void op_spawn(struct diff *d)
{
        struct mproc *p = proc_new_slot(d);
        cow_pid pid = 0;
        int r;

        if (!p)
                return;
        describe(d, "spawn");
        r = cow_engine_spawn(d->e, "diff", 1, &pid);
        if (!check_errno(d, "spawn", r, 0))
                return;
        memset(p, 0, sizeof *p);
        mtlb_init(d, &p->tlb);
        p->base = MMAP_BASE / d->pg;
        p->pid = pid;
        p->live = true;
        p->group = ++d->next_group;
}

static void op_fork(struct diff *d)
{
        struct mproc *parent = proc_pick(d), *child = proc_new_slot(d);
        cow_pid pid = 0;
        int r;

        if (!parent || !child)
                return;
        describe(d, "fork %u", parent->pid);
        d->t.forks++;
        r = cow_engine_fork(d->e, parent->pid, &pid);
        if (!check_errno(d, "fork", r, 0))
                return;
        memset(child, 0, sizeof *child);
        mtlb_init(d, &child->tlb);
        child->base = parent->base;
        child->pid = pid;
        child->live = true;
        child->group = parent->group; /* fork copies only the root */
        for (uint32_t k = 0; k < WIN_PAGES; k++) {
                struct slot *ps = &parent->slot[k];

                if (!ps->mapped)
                        continue;
                if (ps->shared) {
                        ps->obj->refs++;
                } else if (ps->state == ST_FRAME) {
                        ps->pg->refs++;
                        ps->wp = true;
                }
                child->slot[k] = *ps;
        }
        if (d->verbose)
                fprintf(stderr, "       -> child %u\n", pid);
}

/* The engine releases the page table (entries in address order), then the mappings. */
static void op_exit(struct diff *d)
{
        struct mproc *p = proc_pick(d);
        int r;

        if (!p)
                return;
        describe(d, "exit %u", p->pid);
        d->t.exits++;
        r = cow_engine_exit(d->e, p->pid);
        if (!check_errno(d, "exit", r, 0))
                return;
        for (uint32_t k = 0; k < WIN_PAGES; k++)
                slot_drop_entry(d, &p->slot[k]);
        for (uint32_t k = 0; k < WIN_PAGES; k++) {
                slot_drop_mapping(d, &p->slot[k]);
                memset(&p->slot[k], 0, sizeof p->slot[k]);
        }
        p->live = false;
}

static void map_fresh(struct diff *d, struct mproc *p, uint64_t vpn, uint64_t n, unsigned prot,
                      bool shared)
{
        struct mobj *o = NULL;

        if (shared) {
                o = xcalloc(1, sizeof *o);
                o->npages = (uint32_t)n;
                o->refs = (uint32_t)n;
                o->page = xcalloc(n, sizeof *o->page);
                o->next = d->objs;
                d->objs = o;
        }
        for (uint64_t i = 0; i < n; i++) {
                struct slot *s = slot_win(p, vpn + i);

                memset(s, 0, sizeof *s);
                s->mapped = true;
                s->shared = shared;
                s->prot = (uint8_t)prot;
                if (shared) {
                        s->obj = o;
                        s->objpage = (uint32_t)i;
                }
        }
}

/* Maps a range (big: a private working set several times memory); false if it did not try. */
static bool op_mmap(struct diff *d, struct mproc *p, bool big)
{
        uint64_t mode = below(d, 4), vpn, n, got = 0x1234, len;
        unsigned prot = pick_prot(d);
        bool shared = below(d, 4) == 0, overlap = false;
        struct cow_mmap_args a = { .prot = prot, .shared = shared, .kind = COW_MAP_ANONYMOUS };
        int r, want = 0;

        if (big) {
                /* a working set several times memory */
                uint64_t run = 0, best = 0;

                n = d->frames_total * (10 + below(d, 10));
                for (uint32_t i = 0; i < WIN_PAGES; i++) {
                        run = p->slot[i].mapped ? 0 : run + 1;
                        best = run > best ? run : best;
                }
                if (n > best)
                        n = best;
                if (n < d->frames_total)
                        return false;
                mode = 0;
                prot = COW_PROT_READ | COW_PROT_WRITE;
                a.prot = prot;
                shared = a.shared = false;
        } else {
                n = 1 + below(d, below(d, 4) == 0 ? 40 : 8);
                /* shared pages never leave memory: a few, or nothing else fits */
                if (d->swap && shared)
                        n = 1 + below(d, d->frames_total / 4);
        }
        len = n * d->pg - (below(d, 3) == 0 ? below(d, d->pg) : 0);
        if (mode == 0 || n > EXACT_PAGES) {
                /* addr 0: first fit from 0x10000 */
                for (vpn = p->base; vpn + n <= p->base + WIN_PAGES; vpn++) {
                        uint64_t i = 0;

                        while (i < n && !slot_win(p, vpn + i)->mapped)
                                i++;
                        if (i == n)
                                break;
                        vpn += i;
                }
                if (vpn + n > p->base + WIN_PAGES)
                        return false; /* would land outside the window: skip */
                a.addr = 0;
        } else {
                vpn = p->base + below(d, EXACT_PAGES - n + 1);
                a.addr = vpn * d->pg;
                a.fixed = mode == 3;
                for (uint64_t i = 0; i < n; i++)
                        overlap |= slot_win(p, vpn + i)->mapped;
                if (overlap && !a.fixed)
                        want = -EEXIST;
        }
        a.length = len;
        describe(d, "mmap %u addr %#llx len %#llx prot %u %s%s", p->pid,
                 (unsigned long long)a.addr, (unsigned long long)len, prot,
                 shared ? "shared" : "private", a.fixed ? " fixed" : "");
        d->t.mmaps++;
        d->t.fixed += a.fixed;
        d->t.shared += shared;
        r = cow_engine_mmap(d->e, p->pid, &a, &got);
        if (!check_errno(d, "mmap", r, want))
                return true;
        if (want != 0) {
                if (got != 0x1234)
                        dfail(d, "mmap failed but wrote *ret_addr");
                return true;
        }
        if (got != vpn * d->pg) {
                dfail(d, "mmap placed at %#llx, model expects %#llx", (unsigned long long)got,
                      (unsigned long long)(vpn * d->pg));
                return true;
        }
        if (overlap)
                unmap_range(d, p, vpn, n);
        map_fresh(d, p, vpn, n, prot, shared);
        return true;
}

static void op_munmap(struct diff *d, struct mproc *p)
{
        uint64_t vpn = pick_vpn(d, p), n = pick_npages(d, p, vpn);
        int r;

        if (vpn < p->base)
                vpn = p->base;
        if (vpn + n > p->base + WIN_PAGES)
                n = p->base + WIN_PAGES - vpn;
        describe(d, "munmap %u %#llx +%llu pages", p->pid, (unsigned long long)(vpn * d->pg),
                 (unsigned long long)n);
        d->t.munmaps++;
        r = cow_engine_munmap(d->e, p->pid, vpn * d->pg, n * d->pg);
        if (!check_errno(d, "munmap", r, 0))
                return;
        unmap_range(d, p, vpn, n);
}

static bool wholly_mapped(struct mproc *p, uint64_t vpn, uint64_t n)
{
        for (uint64_t i = 0; i < n; i++) {
                struct slot *s = slot_at(p, vpn + i);

                if (!s || !s->mapped)
                        return false;
        }
        return true;
}

static void op_mprotect(struct diff *d, struct mproc *p)
{
        uint64_t vpn = pick_vpn(d, p), n = pick_npages(d, p, vpn);
        unsigned prot = below(d, d->swap ? 8 : 2) ? COW_PROT_READ | COW_PROT_WRITE : pick_prot(d);
        bool whole = wholly_mapped(p, vpn, n);
        int r;

        describe(d, "mprotect %u %#llx +%llu pages prot %u", p->pid,
                 (unsigned long long)(vpn * d->pg), (unsigned long long)n, prot);
        d->t.mprotects++;
        r = cow_engine_mprotect(d->e, p->pid, vpn * d->pg, n * d->pg, prot);
        if (!check_errno(d, "mprotect", r, whole ? 0 : -ENXIO) || !whole)
                return;
        for (uint64_t i = 0; i < n; i++)
                slot_win(p, vpn + i)->prot = (uint8_t)prot;
        mtlb_invalidate(&p->tlb, vpn, vpn + n);
}

static void op_madvise(struct diff *d, struct mproc *p)
{
        uint64_t vpn = pick_vpn(d, p), n = pick_npages(d, p, vpn);
        enum cow_advice adv = below(d, 5) == 0 ? COW_MADV_NORMAL : COW_MADV_DONTNEED;
        bool whole = wholly_mapped(p, vpn, n);
        int r;

        describe(d, "madvise %u %#llx +%llu pages %s", p->pid, (unsigned long long)(vpn * d->pg),
                 (unsigned long long)n, adv == COW_MADV_DONTNEED ? "DONTNEED" : "NORMAL");
        d->t.dontneeds += adv == COW_MADV_DONTNEED;
        r = cow_engine_madvise(d->e, p->pid, vpn * d->pg, n * d->pg, adv);
        if (!check_errno(d, "madvise", r, whole ? 0 : -ENXIO) || !whole ||
            adv != COW_MADV_DONTNEED)
                return;
        make_private(d, p);
        for (uint64_t i = 0; i < n; i++)
                slot_drop_entry(d, slot_win(p, vpn + i));
        mtlb_invalidate(&p->tlb, vpn, vpn + n);
}

/* ---- memory access ------------------------------------------------------ */

/* Frames an access to vpn would allocate now (the engine's page_needs()). */
static unsigned page_needs(struct diff *d, struct mproc *p, uint64_t vpn, bool write)
{
        const struct slot *s = slot_win(p, vpn);

        if (s->shared)
                return !s->present && !s->obj->page[s->objpage];
        if (s->state != ST_FRAME)
                return write;
        if (!s->present) /* in swap: read back unless cached; a write copies unless alone */
                return !s->pg->frame + (write && (path_shared(d, p) || s->pg->frame));
        if (!write || !s->wp)
                return 0;
        return path_shared(d, p) || leaf_refs(d, s->pg) != 1;
}

static bool evictable(const struct diff *d, uint32_t pfn)
{
        const struct mframe *f = &d->fr[pfn];

        return f->pg && !f->pg->obj && !f->pinned;
}

/* The victim the engine's global policy picks, 0 for none. */
static uint32_t pick_victim(struct diff *d)
{
        uint32_t best = 0;
        uint64_t key = UINT64_MAX;

        if (d->hwm == 0)
                return 0;
        if (d->cfg.policy == COW_POLICY_CLOCK) {
                for (uint64_t step = 0; step < 2 * (uint64_t)d->hwm + 1; step++) {
                        if (d->hand == 0 || d->hand > d->hwm)
                                d->hand = 1;
                        uint32_t pfn = d->hand++;
                        if (!evictable(d, pfn))
                                continue;
                        if (d->fr[pfn].referenced) {
                                d->fr[pfn].referenced = false;
                                continue;
                        }
                        return pfn;
                }
                return 0;
        }
        for (uint32_t pfn = 1; pfn <= d->hwm; pfn++) {
                uint64_t k = d->cfg.policy == COW_POLICY_FIFO ? d->fr[pfn].loaded : d->fr[pfn].used;

                if (evictable(d, pfn) && k < key) {
                        key = k;
                        best = pfn;
                }
        }
        return best;
}

/*
 * Evicts the page in pfn: written to a slot unless its swap copy is valid,
 * then every mapper's entry becomes a swap entry (write-protected when it
 * comes back) and every mapper's TLB entry for it is shot down.
 */
static void evict(struct diff *d, uint32_t pfn)
{
        struct mpage *pg = d->fr[pfn].pg;

        if (!pg->slot) {
                pg->slot = true;
                d->slots_used++;
                d->c.swap_outs++;
        }
        for (int i = 0; i < MAX_PROCS; i++) {
                struct mproc *q = &d->proc[i];
                struct slot *s;

                if (!q->live || !(s = slot_at(q, pg->vpn)) || !slot_maps(s, pg))
                        continue;
                if (s->present)
                        mtlb_invalidate(&q->tlb, pg->vpn, pg->vpn + 1);
                s->present = false;
                s->wp = true;
        }
        frame_free(d, pfn);
        d->c.evictions++;
        d->t.victims_predicted++;
        if (d->verbose)
                fprintf(stderr, "       evict frame %u (vpn %#llx)\n", pfn,
                        (unsigned long long)pg->vpn);
}

/*
 * Whether eviction can free need frames without touching the access's own
 * pages [lo, hi): those it keeps are pinned for the count (the original of
 * a page a write will copy is not kept).
 */
static bool room_possible(struct diff *d, struct mproc *p, uint64_t lo, uint64_t hi, bool write,
                          uint64_t need)
{
        uint64_t have = d->frames_total - d->nused, clean = 0, dirty = 0;

        if (need <= have)
                return true;
        for (uint64_t v = lo; v < hi; v++) {
                struct slot *s = slot_win(p, v);
                const struct mpage *pg = s->shared ? s->obj->page[s->objpage] :
                                         s->state == ST_FRAME ? s->pg : NULL;

                if (!pg || !pg->frame || (s->shared && !s->present))
                        continue;
                if (write && !s->shared && s->present && page_needs(d, p, v, true) > 0)
                        continue;
                d->fr[pg->frame].pinned = true;
        }
        for (uint32_t pfn = 1; pfn <= d->hwm; pfn++)
                if (evictable(d, pfn)) {
                        clean += d->fr[pfn].pg->slot;
                        dirty += !d->fr[pfn].pg->slot;
                }
        for (uint32_t pfn = 1; pfn <= d->hwm; pfn++)
                d->fr[pfn].pinned = false;
        uint64_t slots = SWAP_SLOTS - d->slots_used;
        return need <= have + clean + (dirty < slots ? dirty : slots);
}

/* Makes room for vpn's needs by evicting: 0, or -ENOMEM when nothing can go. */
static int make_room(struct diff *d, struct mproc *p, uint64_t vpn, bool write)
{
        while (page_needs(d, p, vpn, write) > d->frames_total - d->nused) {
                uint32_t pfn = pick_victim(d);

                if (pfn == 0)
                        return -ENOMEM;
                evict(d, pfn);
        }
        return 0;
}

/*
 * One page of an access through the TLB and the fault handler, as the
 * engine's translate(): returns the frame it ends in (0: the zero page).
 */
static uint32_t translate(struct diff *d, struct mproc *p, uint64_t vpn, bool write)
{
        struct slot *s = slot_win(p, vpn);
        uint32_t pfn;

        mtlb_lookup(&p->tlb, vpn);
        if (s->shared) {
                struct mpage **pp = &s->obj->page[s->objpage];

                if (!s->present) {
                        p->f.first_touch++;
                        make_private(d, p);
                        if (!*pp) {
                                *pp = page_new(d, vpn);
                                (*pp)->refs = 0;
                                (*pp)->obj = s->obj;
                                frame_alloc(d, *pp);
                                d->c.zero_fills++;
                                p->f.zero_fills++;
                        }
                        s->present = true;
                }
                touch(d, (*pp)->frame);
                return (*pp)->frame;
        }
        if (s->state == ST_FRAME && !s->present) {
                /* Swapped in where the entry is: every process sharing the leaf sees it. */
                struct mpage *pg = s->pg;

                if (pg->frame) {
                        d->c.cache_hits++;
                } else {
                        frame_alloc(d, pg);
                        d->c.swap_ins++;
                        p->f.major++;
                }
                for (int i = 0; i < MAX_PROCS; i++) {
                        struct mproc *q = &d->proc[i];

                        if (q->live && q->group == p->group && slot_maps(slot_win(q, vpn), pg))
                                slot_win(q, vpn)->present = true;
                }
        }
        if (s->state == ST_FRAME && (!write || !s->wp)) {
                touch(d, s->pg->frame);
                return s->pg->frame;
        }
        if (s->state == ST_ZERO && !write) {
                touch(d, 0);
                return 0;
        }
        if (s->state == ST_NONE)
                p->f.first_touch++;
        make_private(d, p);
        if (!write) {
                s->state = ST_ZERO;
                d->c.zero_maps++;
                p->f.zero_maps++;
                pfn = 0;
        } else if (s->state != ST_FRAME) {
                s->pg = page_new(d, vpn);
                pfn = frame_alloc(d, s->pg);
                s->state = ST_FRAME;
                s->present = true;
                s->wp = false;
                d->private_pages++;
                d->c.zero_fills++;
                p->f.zero_fills++;
        } else if (leaf_refs(d, s->pg) == 1) {
                /* This leaf alone maps the frame: reuse it. Its swap copy goes
                 * stale; mappers still holding swap entries keep it as theirs. */
                struct mpage *pg = s->pg;

                pfn = pg->frame;
                if (pg->slot && pg->refs > 1) {
                        struct mpage *mine = page_new(d, vpn);

                        memcpy(mine->data, pg->data, d->pg);
                        pg->refs--;
                        pg->frame = 0;
                        d->fr[pfn].pg = mine;
                        mine->frame = pfn;
                        s->pg = mine;
                        d->private_pages++;
                } else if (pg->slot) {
                        pg->slot = false;
                        d->slots_used--;
                } else if (pg->refs > 1) {
                        dfail(d, "model bug: a page mapped elsewhere, not in swap, reused");
                }
                s->wp = false;
                d->c.cow_reuses++;
                p->f.cow_reuses++;
        } else {
                struct mpage *old = s->pg, *copy = page_new(d, vpn);

                memcpy(copy->data, old->data, d->pg);
                pfn = frame_alloc(d, copy);
                s->pg = copy;
                s->wp = false;
                old->refs--;
                frame_maybe_free(d, old);
                d->private_pages++;
                d->c.cow_copies++;
                p->f.cow_copies++;
        }
        touch(d, pfn);
        return pfn;
}

/*
 * Where a sequence with swap accesses: a page of p it may access, chosen
 * uniformly (reads mostly among pages that hold data, since a read of an
 * untouched page only maps the zero page), and one to four pages from there
 * as far as access is allowed, sometimes a byte or a few.
 */
static bool pick_access_swap(struct diff *d, struct mproc *p, bool write, uint64_t *ret_addr,
                             uint64_t *ret_len)
{
        unsigned need_prot = write ? COW_PROT_WRITE : COW_PROT_READ;
        bool data = !write && below(d, 20) != 0;
        uint32_t n = 0, k;
        uint64_t vpn = 0, run = 0, npages;

        for (int pass = 0; pass < 2 && n == 0; pass++, data = false)
                for (uint32_t i = 0; i < WIN_PAGES; i++) {
                        const struct slot *s = &p->slot[i];

                        n += s->mapped && (s->prot & need_prot) &&
                             (!data || s->shared || s->state == ST_FRAME);
                }
        if (n == 0)
                return false;
        if (write) {
                /* fill the working set first, as a program initialises its heap */
                for (uint32_t i = 0; i < WIN_PAGES; i++) {
                        const struct slot *s = &p->slot[i];

                        if (s->mapped && (s->prot & need_prot) && !s->shared &&
                            s->state != ST_FRAME) {
                                uint64_t len = 0;

                                while (len < d->frames_total / 2 && len < MAX_ACCESS_PAGES &&
                                       i + len < WIN_PAGES &&
                                       p->slot[i + len].mapped &&
                                       (p->slot[i + len].prot & need_prot))
                                        len++;
                                *ret_addr = (p->base + i) * d->pg;
                                *ret_len = len * d->pg;
                                return true;
                        }
                }
        }
        data = !write && n > 0 && data;
        k = (uint32_t)below(d, n);
        for (uint32_t i = 0; i < WIN_PAGES; i++) {
                const struct slot *s = &p->slot[i];

                if (s->mapped && (s->prot & need_prot) &&
                    (!data || s->shared || s->state == ST_FRAME) && k-- == 0) {
                        vpn = p->base + i;
                        break;
                }
        }
        while (run < MAX_ACCESS_PAGES && slot_at(p, vpn + run) && slot_at(p, vpn + run)->mapped &&
               (slot_at(p, vpn + run)->prot & need_prot))
                run++;
        npages = 1 + below(d, 5);
        if (npages > run)
                npages = run;
        uint64_t off = below(d, d->pg), len = npages * d->pg - off;
        if (below(d, 8) == 0)
                len = 1 + below(d, 64);
        if (len > npages * d->pg - off)
                len = npages * d->pg - off;
        *ret_addr = vpn * d->pg + off;
        *ret_len = len ? len : 1;
        return true;
}

/* Access lengths: mostly short, sometimes several pages or a whole mapped run. */
static void pick_access(struct diff *d, struct mproc *p, bool write, uint64_t *ret_addr,
                        uint64_t *ret_len)
{
        uint64_t vpn, addr, len;

        if (d->swap && below(d, 50) != 0 && pick_access_swap(d, p, write, ret_addr, ret_len))
                return;
        vpn = pick_vpn(d, p);
        addr = vpn * d->pg + (below(d, 3) == 0 ? 0 : below(d, d->pg));
        switch (below(d, 8)) {
        case 0:
                len = 1 + below(d, MAX_ACCESS_PAGES * d->pg); /* up to 8 pages */
                break;
        case 7: {
                /* the whole run of accessible pages from vpn: fills memory */
                uint64_t n = 0;
                unsigned need_prot = write ? COW_PROT_WRITE : COW_PROT_READ;

                while (n < MAX_ACCESS_PAGES && slot_at(p, vpn + n) &&
                       slot_at(p, vpn + n)->mapped && (slot_at(p, vpn + n)->prot & need_prot))
                        n++;
                addr = vpn * d->pg;
                len = n ? n * d->pg : 1;
                break;
        }
        case 1:
        case 2:
        case 3:
                len = 1 + below(d, 2 * d->pg + 256);
                break;
        default:
                len = 1 + below(d, 64);
                break;
        }
        *ret_addr = addr;
        *ret_len = len;
}

/*
 * A read or write of len bytes at addr, as the engine's fault_access(): a
 * permission pass over every page (first failing page gives the fault and
 * its address); the frames it needs; without swap, -ENOMEM when they are
 * not free; with swap, when they are not free or a page is in swap, the
 * paged path: -ENOMEM unless eviction can cover the need, then page by page
 * making room, faulting in and pinning; else each page faulted in.
 */
static void op_access(struct diff *d, struct mproc *p, bool write)
{
        uint64_t addr, len, first, last, need = 0, swapins = 0;
        struct cow_fault f = { COW_FAULT_NONE, 0 };
        enum cow_fault_kind want_kind = COW_FAULT_NONE;
        uint64_t want_addr = 0;
        unsigned need_prot = write ? COW_PROT_WRITE : COW_PROT_READ;
        int r, want = 0;

        pick_access(d, p, write, &addr, &len);
        first = addr / d->pg;
        last = (addr + len - 1) / d->pg;
        describe(d, "%s %u %#llx len %llu", write ? "write" : "read", p->pid,
                 (unsigned long long)addr, (unsigned long long)len);

        for (uint64_t v = first; v <= last && want_kind == COW_FAULT_NONE; v++) {
                struct slot *s = slot_at(p, v);

                if (!s || !s->mapped)
                        want_kind = COW_SEGV_MAPERR;
                else if (!(s->prot & need_prot))
                        want_kind = COW_SEGV_ACCERR;
                if (want_kind != COW_FAULT_NONE)
                        want_addr = v == first ? addr : v * d->pg;
        }
        if (want_kind == COW_FAULT_NONE)
                for (uint64_t v = first; v <= last; v++) {
                        struct slot *s = slot_win(p, v);

                        need += page_needs(d, p, v, write);
                        swapins += !s->shared && s->state == ST_FRAME && !s->present;
                }
        uint64_t free_frames = d->frames_total - d->nused;
        bool paged = d->swap && (need > free_frames || swapins);
        if (want_kind != COW_FAULT_NONE)
                want = -EFAULT;
        else if (need > free_frames && !d->swap)
                want = -ENOMEM;
        else if (paged && !room_possible(d, p, first, last + 1, write, need))
                want = -ENOMEM;

        if (write)
                for (uint64_t i = 0; i < len; i += 8) {
                        uint64_t x = rnd(d);

                        if (len - i >= 8)
                                memcpy(d->wbuf + i, &x, 8);
                        else
                                memcpy(d->wbuf + i, &x, len - i);
                }
        else
                memset(d->rbuf, 0xa5, len);
        d->t.reads += !write;
        d->t.writes += write;
        r = write ? cow_engine_write(d->e, p->pid, addr, d->wbuf, len, &f)
                  : cow_engine_read(d->e, p->pid, addr, d->rbuf, len, &f);
        if (want == -EFAULT) {
                check_errno(d, write ? "write" : "read", r, want);
                d->c.segv++;
                p->f.segv++;
                d->t.maperr += want_kind == COW_SEGV_MAPERR;
                d->t.accerr += want_kind == COW_SEGV_ACCERR;
                if (f.kind != want_kind || f.addr != want_addr)
                        dfail(d, "fault kind %d at %#llx, model expects kind %d at %#llx",
                              f.kind, (unsigned long long)f.addr, want_kind,
                              (unsigned long long)want_addr);
                return;
        }
        if (want == -ENOMEM) {
                check_errno(d, write ? "write" : "read", r, want);
                return;
        }

        /* page by page, as the engine goes */
        uint64_t v;
        for (v = first; v <= last; v++) {
                if (paged && make_room(d, p, v, write) < 0) {
                        want = -ENOMEM; /* pinned pages of its own filled memory */
                        break;
                }
                uint32_t pfn = translate(d, p, v, write);
                if (paged && pfn)
                        d->fr[pfn].pinned = true;
        }
        for (uint32_t pfn = 1; pfn <= d->hwm; pfn++)
                d->fr[pfn].pinned = false;
        if (!check_errno(d, write ? "write" : "read", r, want) || want != 0)
                return;

        /* the bytes */
        for (v = first; v <= last; v++) {
                struct slot *s = slot_win(p, v);
                uint64_t pstart = v * d->pg, from = addr > pstart ? addr - pstart : 0;
                uint64_t to = addr + len < pstart + d->pg ? addr + len - pstart : d->pg;
                uint64_t boff = pstart + from - addr;
                struct mpage *pg = s->shared ? s->obj->page[s->objpage] :
                                   s->state == ST_FRAME ? s->pg : NULL;

                if (write)
                        memcpy(pg->data + from, d->wbuf + boff, to - from);
                else if (pg)
                        memcpy(d->mbuf + boff, pg->data + from, to - from);
                else
                        memset(d->mbuf + boff, 0, to - from);
        }
        d->t.pages_compared += write ? 0 : last - first + 1;
        if (!write && memcmp(d->rbuf, d->mbuf, len) != 0) {
                uint64_t i = 0;

                while (d->rbuf[i] == d->mbuf[i])
                        i++;
                dfail(d, "read byte at %#llx is %#x, model expects %#x",
                      (unsigned long long)(addr + i), d->rbuf[i], d->mbuf[i]);
        }
}
/* Everything observable about one process, for before/after comparisons. */
static bool same_observable(struct diff *d, cow_engine *a, cow_engine *b)
{
        static struct cow_page_info ia[WIN_PAGES], ib[WIN_PAGES];
        struct cow_sys_stats sa, sb;

        memset(&sa, 0, sizeof sa); /* padding: compared with memcmp */
        memset(&sb, 0, sizeof sb);
        cow_engine_sys_stats(a, &sa);
        cow_engine_sys_stats(b, &sb);
        if (memcmp(&sa, &sb, sizeof sa) != 0)
                return dfail(d, "restored engine: sys_stats differ (frames_used %llu/%llu, "
                             "pt_nodes %llu/%llu, tlb_hits %llu/%llu)",
                             (unsigned long long)sa.frames_used,
                             (unsigned long long)sb.frames_used,
                             (unsigned long long)sa.pt_nodes, (unsigned long long)sb.pt_nodes,
                             (unsigned long long)sa.tlb_hits, (unsigned long long)sb.tlb_hits);
        for (cow_pid pid = 0; (pid = cow_engine_proc_next(a, pid)) != 0;) {
                struct cow_proc_stats pa, pb;
                struct cow_proc_info fa, fb;
                struct mproc *p = NULL;

                memset(&pa, 0, sizeof pa);
                memset(&pb, 0, sizeof pb);
                for (int i = 0; i < MAX_PROCS; i++)
                        if (d->proc[i].live && d->proc[i].pid == pid)
                                p = &d->proc[i];
                if (!p)
                        return dfail(d, "engine has pid %u the model does not know", pid);
                if (cow_engine_proc_stats(b, pid, &pb) != 0 ||
                    cow_engine_proc_info(b, pid, &fb) != 0)
                        return dfail(d, "restored engine lost pid %u", pid);
                cow_engine_proc_stats(a, pid, &pa);
                cow_engine_proc_info(a, pid, &fa);
                if (memcmp(&pa, &pb, sizeof pa) != 0)
                        return dfail(d, "restored engine: proc_stats of %u differ", pid);
                if (fa.ppid != fb.ppid || fa.owner != fb.owner || fa.rss_pages != fb.rss_pages ||
                    strcmp(fa.name, fb.name) != 0)
                        return dfail(d, "restored engine: proc_info of %u differs", pid);
                memset(ia, 0, sizeof ia);
                memset(ib, 0, sizeof ib);
                cow_engine_page_map(a, pid, p->base * d->pg, WIN_PAGES, ia);
                cow_engine_page_map(b, pid, p->base * d->pg, WIN_PAGES, ib);
                for (uint32_t k = 0; k < WIN_PAGES; k++)
                        if (memcmp(&ia[k], &ib[k], sizeof ia[k]) != 0)
                                return dfail(d, "restored engine: pid %u page %#llx: flags "
                                             "%#x/%#x frame %u/%u sharers %u/%u", pid,
                                             (unsigned long long)ia[k].addr, ia[k].flags,
                                             ib[k].flags, ia[k].frame, ib[k].frame,
                                             ia[k].sharers, ib[k].sharers);
        }
        if (cow_engine_proc_next(b, 0) != cow_engine_proc_next(a, 0))
                return dfail(d, "restored engine: different first pid");
        return true;
}

/*
 * Save the engine, load the checkpoint into a new engine, check the two
 * are indistinguishable (stats, page maps incl. frames and TLB flags, and a
 * second save gives the same bytes), then carry on with the restored one:
 * the model does not change, so every later step checks the restore too.
 * Sometimes a byte of the checkpoint is flipped first: that must be refused.
 */
/* Loads a checkpoint; with swap, into a fresh backend (the spare one). */
static int diff_load(struct diff *d, struct blob *b, cow_engine **ret, const char **why)
{
        if (!d->swap)
                return cow_engine_load(&d->cfg, blob_source, b, ret, why);
        struct slotmem *spare = &d->sm[1 - d->sm_cur];
        slotmem_fini(spare);
        if (slotmem_init(spare, d->pg) < 0)
                return -ENOMEM;
        return cow_engine_load_swap(&d->cfg, blob_source, b, &slotmem_ops, spare, ret, why);
}

static void op_checkpoint(struct diff *d)
{
        struct blob b1 = { 0 }, b2 = { 0 };
        cow_engine *e2 = (cow_engine *)(uintptr_t)1;
        const char *why = NULL;
        int r;

        describe(d, "checkpoint save + load");
        d->t.checkpoints++;
        r = cow_engine_save(d->e, blob_sink, &b1);
        if (!check_errno(d, "save", r, 0))
                goto out;
        if (below(d, 4) == 0 && b1.len > 0) {
                size_t at = (size_t)below(d, b1.len);

                b1.p[at] ^= (unsigned char)(1u << below(d, 8));
                /*
                 * A single flipped bit is damage wherever it lands: the two
                 * header checksums catch it before the configuration is
                 * compared, and the closing CRC catches it everywhere else.
                 */
                r = diff_load(d, &b1, &e2, &why);
                if (r != -EBADMSG)
                        dfail(d, "load of a checkpoint with byte %zu of %zu flipped returned "
                              "%d (%s)", at, b1.len, r, cow_engine_strerror(r));
                else if (e2 != (cow_engine *)(uintptr_t)1)
                        dfail(d, "failed load wrote *ret");
                goto out;
        }
        r = diff_load(d, &b1, &e2, &why);
        if (r != 0) {
                dfail(d, "load returned %d (%s): %s", r, cow_engine_strerror(r),
                      why ? why : "(no reason)");
                goto out;
        }
        if (same_observable(d, d->e, e2)) {
                r = cow_engine_save(e2, blob_sink, &b2);
                if (r != 0)
                        dfail(d, "save of the restored engine returned %d", r);
                else if (b1.len != b2.len || memcmp(b1.p, b2.p, b1.len) != 0)
                        dfail(d, "saving the restored engine gives different bytes (%zu/%zu)",
                              b1.len, b2.len);
        }
        cow_engine_free(d->e);
        d->e = e2;
        if (d->swap) {
                /* The restored engine swaps to the second backend now. */
                slotmem_fini(&d->sm[d->sm_cur]);
                d->sm_cur = 1 - d->sm_cur;
        }
out:
        free(b1.p);
        free(b2.p);
}

/* Invalid arguments and dead processes: an error and no change at all. */
static void op_bad(struct diff *d, struct mproc *p)
{
        uint64_t got = 0x99;
        struct cow_mmap_args a = { .length = 0, .prot = COW_PROT_READ };

        switch (below(d, 5)) {
        case 0:
                describe(d, "mmap %u length 0", p->pid);
                check_errno(d, "mmap", cow_engine_mmap(d->e, p->pid, &a, &got), -EINVAL);
                break;
        case 1:
                describe(d, "munmap %u unaligned", p->pid);
                check_errno(d, "munmap",
                            cow_engine_munmap(d->e, p->pid, p->base * d->pg + 8, d->pg), -EINVAL);
                break;
        case 2:
                describe(d, "mprotect %u prot 8", p->pid);
                check_errno(d, "mprotect",
                            cow_engine_mprotect(d->e, p->pid, p->base * d->pg, d->pg, 8), -EINVAL);
                break;
        case 3:
                describe(d, "read from dead pid");
                check_errno(d, "read",
                            cow_engine_read(d->e, 0x7fffffff, p->base * d->pg, d->rbuf, 1, NULL),
                            -ESRCH);
                break;
        default:
                describe(d, "munmap %u length 0", p->pid);
                check_errno(d, "munmap", cow_engine_munmap(d->e, p->pid, p->base * d->pg, 0),
                            -EINVAL);
                break;
        }
}


/* ---- driver ------------------------------------------------------------ */

static void diff_teardown(struct diff *d)
{
        for (int i = 0; i < MAX_PROCS; i++)
                if (d->proc[i].live) {
                        for (uint32_t k = 0; k < WIN_PAGES; k++)
                                slot_drop_entry(d, &d->proc[i].slot[k]);
                        for (uint32_t k = 0; k < WIN_PAGES; k++)
                                slot_drop_mapping(d, &d->proc[i].slot[k]);
                        d->proc[i].live = false;
                }
        objs_reap(d);
        if (d->e && d->swap) {
                struct cow_sys_stats s;
                cow_engine_sys_stats(d->e, &s);
                d->t.swap_outs += s.swap_outs;
                d->t.swap_ins += s.swap_ins;
                d->t.evictions += s.evictions;
                d->t.cache_hits += s.swap_cache_hits;
        }
        cow_engine_free(d->e);
        d->e = NULL;
        slotmem_fini(&d->sm[0]);
        slotmem_fini(&d->sm[1]);
}

/*
 * What a sequence with swap has done so far: pages evicted or read back, and
 * swap I/O. The model's counts, which check_global() holds equal to the
 * engine's after every operation (sys_stats walks every page table).
 */
struct swap_marks {
        uint64_t moves, io;
};

static struct swap_marks swap_marks(const struct diff *d)
{
        return (struct swap_marks){ d->c.evictions + d->c.swap_ins,
                                    d->c.swap_ins + d->c.swap_outs };
}

/* One operation of a sequence without swap: a broad mix over small mappings. */
static void step_plain(struct diff *d, struct mproc *p)
{
        uint64_t k = below(d, 100);
        int live = live_count(d);

        if (!p || k < 3) {
                if (live < MAX_PROCS)
                        op_spawn(d);
        } else if (k < 9) {
                if (live < MAX_PROCS)
                        op_fork(d);
        } else if (k < 12) {
                if (live > 1 || below(d, 4) == 0)
                        op_exit(d);
        } else if (k < 24) {
                op_mmap(d, p, false);
        } else if (k < 28) {
                op_munmap(d, p);
        } else if (k < 32) {
                op_mprotect(d, p);
        } else if (k < 36) {
                op_madvise(d, p);
        } else if (k < 37) {
                op_bad(d, p);
        } else if (k < 38) {
                op_checkpoint(d);
        } else {
                op_access(d, p, k < 72);
        }
}

/*
 * One operation of a sequence with swap: nineteen in twenty are accesses,
 * spread over working sets larger than memory; the rest grow and prune a
 * fork tree and change mappings, so that swap meets sharing, COW,
 * unmapping and checkpoints.
 */
static void step_swap(struct diff *d, struct mproc *p)
{
        uint64_t k = below(d, 1000);
        int live = live_count(d);
        uint64_t mapped = 0;

        for (uint32_t i = 0; p && i < WIN_PAGES; i++)
                mapped += p->slot[i].mapped && !p->slot[i].shared;
        bool small = mapped < 6 * d->frames_total;
        if (!p || (k < 3 && live < MAX_PROCS)) {
                op_spawn(d);
        } else if ((small || k < 8) && op_mmap(d, p, small || below(d, 2) == 0)) {
                /* mapped: a working set, or a small mapping */
        } else if (k >= 8 && k < 18) {
                if (live < MAX_PROCS)
                        op_fork(d);
                else
                        op_exit(d);
        } else if (k >= 8 && k < 21) {
                if (live > 1)
                        op_exit(d);
        } else if (k >= 8 && k < 24) {
                op_munmap(d, p);
        } else if (k >= 8 && k < 26) {
                op_mprotect(d, p);
        } else if (k >= 8 && k < 30) {
                op_madvise(d, p);
        } else if (k >= 8 && k < 31) {
                op_bad(d, p);
        } else if (k >= 8 && k < 33) {
                op_checkpoint(d);
        } else {
                /* a process writes its working set before it reads it */
                bool untouched = false;
                for (uint32_t i = 0; i < WIN_PAGES && !untouched; i++)
                        untouched = p->slot[i].mapped && !p->slot[i].shared &&
                                    (p->slot[i].prot & COW_PROT_WRITE) &&
                                    p->slot[i].state != ST_FRAME;
                bool write = untouched || below(d, 100) < 50;

                struct swap_marks before = swap_marks(d), after;

                op_access(d, p, write);
                after = swap_marks(d);
                d->t.accesses++;
                d->t.accesses_swapped += after.moves != before.moves;
                d->t.accesses_io += after.io != before.io;
        }
}

/* The sequence: configuration, then operations until nops or the input runs out. */
static bool run(struct diff *d, uint64_t seed, unsigned nops, bool swap)
{
        static const uint32_t entries[] = { 4, 8, 8, 8, 16 };
        static const uint32_t ways[] = { 0, 1, 2, 2, 4 };
        static const uint32_t big_pages[] = { 8192, 16384, 65536 };
        struct cow_engine_config cfg;
        int r;

        memset(d->proc, 0, sizeof d->proc);
        d->seed = seed;
        d->failed = false;
        d->objs = d->dead = NULL;
        d->private_pages = 0;
        memset(&d->c, 0, sizeof d->c);
        model_frames_check_setup(d);
        d->op = 0;
        snprintf(d->desc, sizeof d->desc, "setup");

        cow_engine_config_init(&cfg);
        /*
         * Mostly 4 KiB pages, every fourth sequence 8, 16 or 64 KiB; 32 to 256
         * frames (8 to 64 with swap). From a fuzzer's bytes only the cheap
         * shapes (8 KiB for big pages, the smaller half of the memories), so
         * that an execution costs little and there are many more of them; the
         * seeded runs of test_differential cover the rest.
         */
        d->pg = below(d, 4) ? 4096 : big_pages[d->src ? 0 : below(d, 3)];
        unsigned shapes = d->src ? 2 : 4;
        d->frames_total = UINT64_C(32) << below(d, shapes);
        d->swap = swap;
        if (swap) {
                /* Tiny memories, 8 to 64 frames; swap for every page the model can hold. */
                d->frames_total = UINT64_C(8) << below(d, shapes);
                cfg.swap_slots = SWAP_SLOTS;
        }
        /* No sequence maps a device: the smallest framebuffer and console log,
         * so that creating, saving and loading an engine costs no more */
        cfg.fb_width = cfg.fb_height = 1;
        cfg.console_log_bytes = 1024;
        cfg.policy = (enum cow_policy)below(d, 3);
        cfg.page_size = d->pg;
        cfg.mem_bytes = d->frames_total * d->pg;
        cfg.tlb_entries = entries[below(d, 5)];
        cfg.tlb_ways = ways[below(d, 5)];
        if (cfg.tlb_ways > cfg.tlb_entries)
                cfg.tlb_ways = 0;
        d->cfg = cfg;
        d->tlb_ways = cfg.tlb_ways ? cfg.tlb_ways : cfg.tlb_entries;
        d->tlb_sets = cfg.tlb_entries / d->tlb_ways;
        r = cow_engine_new(&cfg, &d->e);
        if (r != 0)
                return dfail(d, "cow_engine_new = %d", r);
        if (swap) {
                d->sm_cur = 0;
                if (slotmem_init(&d->sm[0], d->pg) < 0)
                        return dfail(d, "no memory for the swap backend");
                cow_engine_set_swap(d->e, &slotmem_ops, &d->sm[0]);
        }
        if (d->verbose)
                fprintf(stderr, "seed %llu: %llu frames of %u bytes, TLB %u entries %u ways, "
                        "policy %s%s\n", (unsigned long long)seed,
                        (unsigned long long)d->frames_total, d->pg, cfg.tlb_entries,
                        cfg.tlb_ways, cow_policy_name(cfg.policy), swap ? ", swap" : "");

        for (d->op = 0; d->op < nops && !d->failed && !d->src_done; d->op++) {
                struct mproc *p = proc_pick(d);
                struct swap_marks before = swap_marks(d), after;

                d->t.ops++;
                if (swap)
                        step_swap(d, p);
                else
                        step_plain(d, p);
                objs_reap(d);
                after = swap_marks(d);
                d->t.ops_swapped += after.moves != before.moves;
                d->t.ops_io += after.io != before.io;
                /*
                 * Each operation checks its own results (codes, bytes, faults)
                 * as it goes. The counters, the engine's invariants and the
                 * operated process's statistics follow every operation of a
                 * seeded run; from a fuzzer's bytes, every fourth and at the
                 * end (below), which still catches each divergence, at most
                 * three operations later, at a fraction of the cost. The
                 * free list is compared after every operation all the same:
                 * where an object freed frames in its own order, the model
                 * learns that order there, before it allocates again.
                 */
                bool full = !d->src || d->op % 4 == 3;
                if (d->failed || (full ? !check_global(d) : !check_free_list(d)))
                        break;
                if (full && p && p->live && !check_proc(d, p))
                        break;
                if ((d->op % 16 == 15 || d->op + 1 == nops) && !check_page_maps(d))
                        break;
        }
        if (!d->failed && d->op > 0 && d->src && check_global(d))
                for (int i = 0; i < MAX_PROCS && !d->failed; i++)
                        if (d->proc[i].live)
                                check_proc(d, &d->proc[i]);
        if (!d->failed && d->op > 0)
                check_page_maps(d);
        diff_teardown(d);
        return !d->failed;
}

bool diff_run(struct diff *d, uint64_t seed, unsigned nops, bool swap)
{
        d->src = NULL;
        d->src_done = false;
        d->rng = seed * UINT64_C(0x2545f4914f6cdd1d) + 1;
        return run(d, seed, nops, swap);
}

bool diff_run_bytes(struct diff *d, const uint8_t *data, size_t len)
{
        d->src = data;
        d->srclen = len;
        d->srcpos = 0;
        d->src_done = false;
        d->rng = 1;
        bool swap = below(d, 2) != 0;
        d->rng = below(d, 65536) + 1; /* the bytes written: a generator seeded from the input */
        bool ok = run(d, 0, UINT32_MAX, swap);
        d->src = NULL;
        return ok;
}

struct diff *diff_new(bool verbose, bool abort_on_fail)
{
        struct diff *d = xcalloc(1, sizeof *d);

        d->verbose = verbose;
        d->abort_on_fail = abort_on_fail;
        d->slotrev = xcalloc(SWAP_SLOTS, sizeof *d->slotrev);
        return d;
}

void diff_free(struct diff *d)
{
        if (!d)
                return;
        free(d->slotrev);
        free(d);
}

const struct diff_tally *diff_tally(const struct diff *d)
{
        return &d->t;
}

static unsigned pct(uint64_t part, uint64_t whole)
{
        return whole ? (unsigned)(part * 100 / whole) : 0;
}

void diff_tally_print(const struct diff *d, const char *label, FILE *out)
{
        const struct diff_tally *t = &d->t;

        fprintf(out,
                "%s: %llu ops (%llu checkpoint round trips, %llu reads, %llu writes, %llu pages "
                "read and compared, %llu forks, %llu exits, %llu mmaps of which %llu fixed and "
                "%llu shared, %llu munmaps, %llu mprotects, %llu DONTNEEDs); expected errors: "
                "%llu EFAULT (%llu MAPERR, %llu ACCERR), %llu ENOMEM, %llu EEXIST, %llu ENXIO; "
                "%llu page_map sweeps; peak %llu frames; %llu free lists in an object's order\n",
                label, (unsigned long long)t->ops, (unsigned long long)t->checkpoints,
                (unsigned long long)t->reads, (unsigned long long)t->writes,
                (unsigned long long)t->pages_compared, (unsigned long long)t->forks,
                (unsigned long long)t->exits, (unsigned long long)t->mmaps,
                (unsigned long long)t->fixed, (unsigned long long)t->shared,
                (unsigned long long)t->munmaps, (unsigned long long)t->mprotects,
                (unsigned long long)t->dontneeds, (unsigned long long)t->efault,
                (unsigned long long)t->maperr, (unsigned long long)t->accerr,
                (unsigned long long)t->enomem, (unsigned long long)t->eexist,
                (unsigned long long)t->enxio, (unsigned long long)t->page_map_checks,
                (unsigned long long)t->max_used, (unsigned long long)t->freelist_adopted);
        if (t->swap_outs + t->swap_ins == 0)
                return;
        fprintf(out,
                "%s: %llu pages swapped out, %llu in, %llu evictions (every victim predicted), "
                "%llu swap-cache hits\n"
                "swap sequences: %llu ops, %llu (%u%%) swapped (evicted or swapped in), "
                "%llu (%u%%) read or wrote swap; %llu accesses, %llu (%u%%) swapped, "
                "%llu (%u%%) read or wrote swap\n",
                label, (unsigned long long)t->swap_outs, (unsigned long long)t->swap_ins,
                (unsigned long long)t->evictions, (unsigned long long)t->cache_hits,
                (unsigned long long)t->ops, (unsigned long long)t->ops_swapped,
                pct(t->ops_swapped, t->ops), (unsigned long long)t->ops_io,
                pct(t->ops_io, t->ops), (unsigned long long)t->accesses,
                (unsigned long long)t->accesses_swapped, pct(t->accesses_swapped, t->accesses),
                (unsigned long long)t->accesses_io, pct(t->accesses_io, t->accesses));
}

bool diff_selftest(void)
{
        struct diff *d = diff_new(false, false);
        struct cow_engine_config cfg;
        struct cow_mmap_args a = { .prot = COW_PROT_READ | COW_PROT_WRITE };
        uint64_t got = 0;
        bool ok = true;

        cow_engine_config_init(&cfg);
        d->pg = 4096;
        d->tlb_ways = 2;
        d->tlb_sets = 4;
        cfg.tlb_entries = 8;
        cfg.tlb_ways = 2;
        cfg.mem_bytes = 64 * d->pg;
        d->cfg = cfg;
        d->frames_total = 64;
        d->rng = 1;
        if (cow_engine_new(&cfg, &d->e) != 0)
                return false;
        op_spawn(d);
        map_fresh(d, &d->proc[0], d->proc[0].base, 2, a.prot, false);
        a.length = 2 * d->pg;
        ok &= cow_engine_mmap(d->e, d->proc[0].pid, &a, &got) == 0 &&
              got == d->proc[0].base * d->pg;
        /* random writes until some land in the mapping; reads must then match */
        for (int i = 0; i < 5000 && d->private_pages == 0; i++)
                op_access(d, &d->proc[0], true);
        for (int i = 0; i < 200; i++)
                op_access(d, &d->proc[0], false);
        ok &= !d->failed && d->private_pages > 0 && check_global(d) && check_page_maps(d);
        op_fork(d);
        ok &= check_global(d) && check_page_maps(d);
        /* corrupt the model: the check must notice */
        d->proc[0].slot[0].prot = COW_PROT_NONE;
        fprintf(stderr, "(the next failure message is expected)\n");
        ok &= !check_page_maps(d);
        diff_teardown(d);
        diff_free(d);
        return ok;
}
