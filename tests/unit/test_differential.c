/* SPDX-License-Identifier: MIT */
/*
 * Differential test: thousands of seeded random operation sequences run on
 * the engine and on a plain reference model, compared after every step.
 *
 * The model knows nothing of page tables, TLBs or node sharing. Each process
 * is an array of page slots over a window of its address space; a private
 * page holds a reference to a refcounted page buffer, so fork "copies the
 * whole process" by taking a reference and a write to a buffer somebody else
 * holds copies it first (the copy is lazy but observably the same as a copy
 * made at fork). MAP_SHARED mappings are shared buffers that every mapper
 * points at. From that the model predicts:
 *   - every read's bytes and every error, fault kind and fault address;
 *   - -ENOMEM exactly (how many new frames an access needs, against the
 *     engine's free count, which itself must match the model's frames);
 *   - frames_used: exact, except that a shared object's page nobody maps any
 *     more may be kept until the whole object dies (Linux keeps it) or freed
 *     at once: the model bounds frames_used between the two;
 *   - the engine-wide counters zero_fills, zero_maps, cow_copies, cow_reuses,
 *     segv_faults, zero_page_maps and procs;
 *   - per process vsize, zero pages and bounds on rss;
 *   - the TLB: a plain LRU model per set, looked up once per page by every
 *     access that succeeds, emptied over the range by munmap, mprotect,
 *     DONTNEED and MAP_FIXED, untouched by other processes' COW breaks;
 *     hit and miss counters exactly, and IN_TLB in every page_map sweep;
 *   - and, every few steps, cow_engine_page_map() for every process: mapped,
 *     prot, shared, zero, COW/writable flags, sharers, and that model pages
 *     and engine frames correspond one to one.
 * About one step in a hundred saves a checkpoint and carries on with the
 * engine loaded from it (which must be indistinguishable from the original),
 * or flips one byte of it and expects the load to refuse it.
 * cow_engine_verify() runs after every operation.
 *
 * A second set of sequences runs with swap: 8 to 64 frames and a swap
 * backend in memory, so that accesses often evict or swap in (the run prints
 * how many pages went out and came back, and fails if too few did). There
 * the model still predicts every read's bytes, every fault and the zero-page
 * counts; what swap makes unpredictable without modelling the replacement
 * policy (which frame a page has, whether it is resident, how a fault was
 * served, the TLB after shootdowns, -ENOMEM when unevictable shared pages
 * fill memory) is checked only for consistency: a private page the model
 * holds is resident or swapped, never absent; an untouched one is neither.
 * Checkpoints carry the swapped pages into a second backend.
 *
 * A failure prints the seed and the operation index. Environment:
 *   COWD_SEED=N          run only sequence N (replay)
 *   COWD_DIFF_ITERS=N    number of sequences (default 3000)
 *   COWD_DIFF_OPS=N      operations per sequence (default 160)
 *   COWD_DIFF_VERBOSE=1  print every operation
 */
#include "engine_test.h"
#include "blob.h"
#include "swapmem.h"

#define MMAP_BASE UINT64_C(0x10000) /* where addr-0 placement starts */
#define WIN_PAGES 384u  /* vpns [base, base + WIN_PAGES) of each process are modelled */
#define MAX_PROCS 6
#define MAX_PAGE (64 * 1024)
#define MAX_ACCESS_PAGES 8u
#define MAX_ACCESS (MAX_ACCESS_PAGES * MAX_PAGE)
#define EXACT_PAGES 160u /* exact and fixed mmaps land in the window's first pages: overlaps */

struct mpage {
        uint32_t refs;   /* private: slots referencing it; shared: 1 (the object) */
        uint32_t epoch;  /* page_map check bookkeeping */
        uint32_t eframe; /* engine frame seen at check epoch */
        unsigned char data[]; /* one page */
};

struct mobj {
        uint32_t refs;       /* slots referencing the object, over all processes */
        uint32_t npages;
        uint32_t *mapcount;  /* slots referencing each page */
        struct mpage **page; /* NULL until first touched */
        struct mobj *next;
};

enum { ST_NONE = 0, ST_ZERO = 1, ST_FRAME = 2 };

struct slot {
        bool mapped;
        bool shared;
        bool wp;   /* private frame write-protected (since a fork): a write faults */
        uint8_t prot;
        uint8_t state;
        struct mpage *pg;  /* private, ST_FRAME */
        struct mobj *obj;  /* shared */
        uint32_t objpage;
};

/*
 * The model TLB: each set is a list of vpns, most recently used first. A
 * lookup hits (moves to the front) or misses (inserts at the front, dropping
 * the last when the set is full). Only accesses that succeed look up.
 */
#define MTLB_MAX 16u

struct mtlb {
        uint32_t ways, sets;
        uint32_t n[MTLB_MAX];            /* entries in each set */
        uint64_t v[MTLB_MAX][MTLB_MAX];  /* [set][rank] */
        uint64_t hits, misses;
};

struct mproc {
        uint64_t base; /* first vpn of the window: MMAP_BASE / page size */
        cow_pid pid;
        bool live;
        struct mtlb tlb;
        struct slot slot[WIN_PAGES];
};

struct counters {
        uint64_t zero_fills, zero_maps, cow_copies, cow_reuses, segv;
};

/* Totals over all sequences, printed at the end to show what was exercised. */
struct tally {
        uint64_t checkpoints, ops, reads, writes, pages_compared, efault, enomem, eexist, enxio, forks,
                exits, maperr, accerr, mmaps, fixed, shared, munmaps, mprotects, dontneeds, page_map_checks;
        uint64_t max_used;
        uint64_t swap_outs, swap_ins, enomem_swap;
};

struct diff {
        struct tally t;
        uint64_t seed;
        uint64_t rng;
        unsigned op;
        bool verbose;
        bool failed;
        char desc[160];
        cow_engine *e;
        struct cow_engine_config cfg;
        bool swap;               /* this sequence swaps */
        struct swapmem sm[2];    /* the engine's backend, and one to restore into */
        int sm_cur;
        uint32_t tlb_ways, tlb_sets; /* ways == entries when fully associative */
        uint32_t pg; /* page size of this sequence */
        uint64_t frames_total;
        struct mproc proc[MAX_PROCS];
        struct mobj *objs;
        uint64_t private_pages; /* live private page buffers = their frames */
        struct counters c;
        uint32_t epoch;
        struct { const struct mpage *pg; uint32_t epoch; } *rev; /* engine frame -> model */
        unsigned char wbuf[MAX_ACCESS], rbuf[MAX_ACCESS], mbuf[MAX_ACCESS];
};

/* ---- helpers ---------------------------------------------------------- */

static uint64_t rnd(struct diff *d)
{
        uint64_t z = (d->rng += UINT64_C(0x9e3779b97f4a7c15));

        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

static uint64_t below(struct diff *d, uint64_t n)
{
        return n ? rnd(d) % n : 0;
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
        fprintf(stderr, "\n  replay: COWD_SEED=%llu COWD_DIFF_VERBOSE=1 ./test_differential\n",
                (unsigned long long)d->seed);
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

static struct mpage *page_new(struct diff *d)
{
        struct mpage *pg = calloc(1, sizeof *pg + d->pg);

        assert_non_null(pg);
        pg->refs = 1;
        return pg;
}

/* Drops a slot's reference to whatever backs it; the slot becomes unmapped. */
static void slot_release(struct diff *d, struct slot *s)
{
        if (!s->mapped)
                return;
        if (s->shared) {
                struct mobj *o = s->obj;

                o->mapcount[s->objpage]--;
                if (--o->refs == 0) {
                        struct mobj **pp = &d->objs;

                        while (*pp && *pp != o)
                                pp = &(*pp)->next;
                        if (*pp)
                                *pp = o->next;
                        for (uint32_t i = 0; i < o->npages; i++)
                                free(o->page[i]);
                        free(o->page);
                        free(o->mapcount);
                        free(o);
                }
        } else if (s->state == ST_FRAME) {
                if (--s->pg->refs == 0) {
                        free(s->pg);
                        d->private_pages--;
                }
        }
        memset(s, 0, sizeof *s);
}

/* Drops a private slot's frame or zero page (DONTNEED); the mapping stays. */
static void slot_drop_private(struct diff *d, struct slot *s)
{
        if (s->state == ST_FRAME && --s->pg->refs == 0) {
                free(s->pg);
                d->private_pages--;
        }
        s->pg = NULL;
        s->state = ST_NONE;
        s->wp = false;
}

static void model_frames(struct diff *d, uint64_t *lo, uint64_t *hi)
{
        *lo = *hi = d->private_pages;
        for (struct mobj *o = d->objs; o; o = o->next)
                for (uint32_t i = 0; i < o->npages; i++)
                        if (o->page[i]) {
                                ++*hi;
                                if (o->mapcount[i])
                                        ++*lo;
                        }
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
        if (below(d, 100) < 95) {
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

/* Everything cheap, after every operation. */
static bool check_global(struct diff *d)
{
        struct cow_sys_stats s;
        char msg[512] = "";
        uint64_t lo, hi, zmaps = 0;
        int r = cow_engine_verify(d->e, msg, sizeof msg);

        if (r != 0)
                return dfail(d, "cow_engine_verify: %d %s", r, msg);
        cow_engine_sys_stats(d->e, &s);
        model_frames(d, &lo, &hi);
        if (s.frames_used > d->t.max_used)
                d->t.max_used = s.frames_used;
        if (d->swap)
                lo = 0; /* private pages may be in swap */
        if (s.frames_used < lo || s.frames_used > hi)
                return dfail(d, "frames_used %llu, model expects %llu..%llu",
                             (unsigned long long)s.frames_used, (unsigned long long)lo,
                             (unsigned long long)hi);
        if (s.frames_used + s.frames_free != d->frames_total)
                return dfail(d, "frames used %llu + free %llu != total %llu",
                             (unsigned long long)s.frames_used,
                             (unsigned long long)s.frames_free,
                             (unsigned long long)d->frames_total);
#define CNT(field, model)                                                                \
        do {                                                                             \
                if ((uint64_t)(field) != (uint64_t)(model))                              \
                        return dfail(d, "%s = %llu, model expects %llu", #field,         \
                                     (unsigned long long)(field),                        \
                                     (unsigned long long)(model));                       \
        } while (0)
        if (!d->swap) {
                /* With swap a fault may be served from swap or the swap cache. */
                CNT(s.zero_fills, d->c.zero_fills);
                CNT(s.cow_copies, d->c.cow_copies);
                CNT(s.cow_reuses, d->c.cow_reuses);
        }
        CNT(s.zero_maps, d->c.zero_maps);
        CNT(s.segv_faults, d->c.segv);
        CNT(s.procs, live_count(d));
        for (int i = 0; i < MAX_PROCS; i++) {
                const struct mproc *p = &d->proc[i];

                if (!p->live)
                        continue;
                for (uint32_t k = 0; k < WIN_PAGES; k++)
                        zmaps += p->slot[k].mapped && !p->slot[k].shared &&
                                 p->slot[k].state == ST_ZERO;
        }
        CNT(s.zero_page_maps, zmaps);
        return true;
}

/* Per-process statistics of one process. */
static bool check_proc(struct diff *d, struct mproc *p)
{
        struct cow_proc_stats s;
        uint64_t mapped = 0, zero = 0, rss_lo = 0, rss_hi = 0;
        int r = cow_engine_proc_stats(d->e, p->pid, &s);

        if (r != 0)
                return dfail(d, "proc_stats(%u) = %d", p->pid, r);
        for (uint32_t k = 0; k < WIN_PAGES; k++) {
                const struct slot *sl = &p->slot[k];

                if (!sl->mapped)
                        continue;
                mapped++;
                if (sl->shared) {
                        if (sl->obj->page[sl->objpage])
                                rss_hi++;
                } else if (sl->state == ST_ZERO) {
                        zero++;
                } else if (sl->state == ST_FRAME) {
                        rss_lo++;
                        rss_hi++;
                }
        }
        CNT(s.vsize_bytes, mapped * d->pg);
        CNT(s.zero_pages, zero);
        if (!d->swap) {
                CNT(s.tlb_hits, p->tlb.hits);
                CNT(s.tlb_misses, p->tlb.misses);
        } else {
                /* Shootdowns and refused accesses move the TLB; each access that
                 * succeeds is still checked to look every page up once. */
                rss_lo = 0;
        }
        if (s.rss_pages < rss_lo || s.rss_pages > rss_hi)
                return dfail(d, "pid %u rss %llu, model expects %llu..%llu", p->pid,
                             (unsigned long long)s.rss_pages, (unsigned long long)rss_lo,
                             (unsigned long long)rss_hi);
        if (s.uss_pages + s.shared_pages != s.rss_pages)
                return dfail(d, "pid %u uss %llu + shared %llu != rss %llu", p->pid,
                             (unsigned long long)s.uss_pages,
                             (unsigned long long)s.shared_pages,
                             (unsigned long long)s.rss_pages);
        return true;
}

/* Engine frame <-> model page must be one to one within one check epoch. */
static bool bind_frame(struct diff *d, struct mpage *pg, uint32_t frame, uint64_t addr)
{
        if (frame == 0 || frame > d->frames_total)
                return dfail(d, "page %#llx: frame %u out of range",
                             (unsigned long long)addr, frame);
        if (pg->epoch != d->epoch) {
                if (d->rev[frame].epoch == d->epoch && d->rev[frame].pg != pg)
                        return dfail(d, "page %#llx: frame %u also holds another model page",
                                     (unsigned long long)addr, frame);
                pg->epoch = d->epoch;
                pg->eframe = frame;
                d->rev[frame].pg = pg;
                d->rev[frame].epoch = d->epoch;
        } else if (pg->eframe != frame) {
                return dfail(d, "page %#llx: frame %u, but the same model page is frame %u "
                             "elsewhere", (unsigned long long)addr, frame, pg->eframe);
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
                        bool present = pi->flags & COW_PAGE_PRESENT;

                        if (pi->addr != addr)
                                return dfail(d, "page_map addr %#llx, expected %#llx",
                                             (unsigned long long)pi->addr,
                                             (unsigned long long)addr);
                        if (!d->swap &&
                            !!(pi->flags & COW_PAGE_IN_TLB) != mtlb_has(&p->tlb, p->base + k))
                                return dfail(d, "pid %u page %#llx: IN_TLB %d, model %d", p->pid,
                                             (unsigned long long)addr,
                                             !!(pi->flags & COW_PAGE_IN_TLB),
                                             mtlb_has(&p->tlb, p->base + k));
                        if (!!(pi->flags & COW_PAGE_MAPPED) != s->mapped)
                                return dfail(d, "pid %u page %#llx: MAPPED %d, model %d", p->pid,
                                             (unsigned long long)addr,
                                             !!(pi->flags & COW_PAGE_MAPPED), s->mapped);
                        if (!s->mapped) {
                                if (present)
                                        return dfail(d, "pid %u page %#llx: present but unmapped",
                                                     p->pid, (unsigned long long)addr);
                                continue;
                        }
                        if (pi->prot != s->prot)
                                return dfail(d, "pid %u page %#llx: prot %u, model %u", p->pid,
                                             (unsigned long long)addr, pi->prot, s->prot);
                        if (!!(pi->flags & COW_PAGE_SHARED) != s->shared)
                                return dfail(d, "pid %u page %#llx: SHARED flag %d, model %d",
                                             p->pid, (unsigned long long)addr,
                                             !!(pi->flags & COW_PAGE_SHARED), s->shared);
                        if (s->shared) {
                                struct mpage *pg = s->obj->page[s->objpage];

                                if (pi->flags & (COW_PAGE_ZERO | COW_PAGE_COW))
                                        return dfail(d, "pid %u page %#llx: shared page flagged "
                                                     "zero/COW (%#x)", p->pid,
                                                     (unsigned long long)addr, pi->flags);
                                if (!pg && present)
                                        return dfail(d, "pid %u page %#llx: shared page present "
                                                     "before any touch", p->pid,
                                                     (unsigned long long)addr);
                                if (pg && present && !bind_frame(d, pg, pi->frame, addr))
                                        return false;
                                continue;
                        }
                        switch (s->state) {
                        case ST_NONE:
                                if (present || (pi->flags & COW_PAGE_SWAPPED))
                                        return dfail(d, "pid %u page %#llx: present, model: "
                                                     "never touched (flags %#x)", p->pid,
                                                     (unsigned long long)addr, pi->flags);
                                break;
                        case ST_ZERO:
                                if (!present || !(pi->flags & COW_PAGE_ZERO) || pi->frame != 0 ||
                                    (pi->flags & COW_PAGE_WRITABLE))
                                        return dfail(d, "pid %u page %#llx: flags %#x frame %u, "
                                                     "model: zero page", p->pid,
                                                     (unsigned long long)addr, pi->flags,
                                                     pi->frame);
                                break;
                        case ST_FRAME: {
                                bool w = s->prot & COW_PROT_WRITE;

                                if (d->swap && (pi->flags & COW_PAGE_SWAPPED)) {
                                        if (present || (pi->flags & COW_PAGE_IN_TLB))
                                                return dfail(d, "pid %u page %#llx: swapped "
                                                             "but present or in the TLB "
                                                             "(flags %#x)", p->pid,
                                                             (unsigned long long)addr,
                                                             pi->flags);
                                        break;
                                }
                                if (d->swap && present && !(pi->flags & COW_PAGE_ZERO)) {
                                        /* Swapped in write-protected: never more writable
                                         * than the model allows. */
                                        if ((pi->flags & COW_PAGE_WRITABLE) && !(w && !s->wp))
                                                return dfail(d, "pid %u page %#llx: writable, "
                                                             "model: write-protected",
                                                             p->pid, (unsigned long long)addr);
                                        if (!bind_frame(d, s->pg, pi->frame, addr))
                                                return false;
                                        break;
                                }

                                if (!present || (pi->flags & COW_PAGE_ZERO))
                                        return dfail(d, "pid %u page %#llx: flags %#x, model: "
                                                     "own frame", p->pid,
                                                     (unsigned long long)addr, pi->flags);
                                if (!bind_frame(d, s->pg, pi->frame, addr))
                                        return false;
                                if (pi->sharers != s->pg->refs)
                                        return dfail(d, "pid %u page %#llx: sharers %u, model %u",
                                                     p->pid, (unsigned long long)addr,
                                                     pi->sharers, s->pg->refs);
                                if (!!(pi->flags & COW_PAGE_WRITABLE) != (w && !s->wp) ||
                                    !!(pi->flags & COW_PAGE_COW) != (w && s->wp))
                                        return dfail(d, "pid %u page %#llx: flags %#x, model "
                                                     "prot %u write-protected %d refs %u",
                                                     p->pid, (unsigned long long)addr,
                                                     pi->flags, s->prot, s->wp, s->pg->refs);
                                break;
                        }
                        default:
                                break;
                        }
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
        for (uint32_t k = 0; k < WIN_PAGES; k++) {
                struct slot *ps = &parent->slot[k];

                if (!ps->mapped)
                        continue;
                if (ps->shared) {
                        ps->obj->refs++;
                        ps->obj->mapcount[ps->objpage]++;
                } else if (ps->state == ST_FRAME) {
                        ps->pg->refs++;
                        ps->wp = true;
                }
                child->slot[k] = *ps;
        }
        if (d->verbose)
                fprintf(stderr, "       -> child %u\n", pid);
}

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
                slot_release(d, &p->slot[k]);
        p->live = false;
}

static void map_fresh(struct diff *d, struct mproc *p, uint64_t vpn, uint64_t n, unsigned prot, bool shared)
{
        struct mobj *o = NULL;

        if (shared) {
                o = calloc(1, sizeof *o);
                assert_non_null(o);
                o->npages = (uint32_t)n;
                o->refs = (uint32_t)n;
                o->mapcount = calloc(n, sizeof *o->mapcount);
                o->page = calloc(n, sizeof *o->page);
                assert_non_null(o->mapcount);
                assert_non_null(o->page);
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
                        o->mapcount[i] = 1;
                }
        }
}

static void op_mmap(struct diff *d, struct mproc *p)
{
        uint64_t mode = below(d, 4), vpn, n, got = 0x1234, len;
        unsigned prot = pick_prot(d);
        bool shared = below(d, 4) == 0, overlap = false;
        struct cow_mmap_args a = { .prot = prot, .shared = shared, .kind = COW_MAP_ANONYMOUS };
        int r, want = 0;

        n = 1 + below(d, below(d, 4) == 0 ? 40 : 8);
        len = n * d->pg - (below(d, 3) == 0 ? below(d, d->pg) : 0);
        if (mode == 0) {
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
                        return; /* would land outside the window: skip */
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
                return;
        if (want != 0) {
                if (got != 0x1234)
                        dfail(d, "mmap failed but wrote *ret_addr");
                return;
        }
        if (got != vpn * d->pg) {
                dfail(d, "mmap placed at %#llx, model expects %#llx", (unsigned long long)got,
                      (unsigned long long)(vpn * d->pg));
                return;
        }
        for (uint64_t i = 0; i < n; i++)
                slot_release(d, slot_win(p, vpn + i));
        mtlb_invalidate(&p->tlb, vpn, vpn + n);
        map_fresh(d, p, vpn, n, prot, shared);
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
        for (uint64_t i = 0; i < n; i++)
                slot_release(d, slot_win(p, vpn + i));
        mtlb_invalidate(&p->tlb, vpn, vpn + n);
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
        unsigned prot = below(d, 2) ? COW_PROT_READ | COW_PROT_WRITE : pick_prot(d);
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
        for (uint64_t i = 0; i < n; i++) {
                struct slot *s = slot_win(p, vpn + i);

                if (!s->shared)
                        slot_drop_private(d, s);
        }
        mtlb_invalidate(&p->tlb, vpn, vpn + n);
}

/*
 * A read or write of len bytes at addr. The model: a permission pass over
 * every page (first failing page gives the fault and its address), then the
 * frames needed against the engine's free count, then the effect.
 */
static void op_access(struct diff *d, struct mproc *p, bool write)
{
        uint64_t vpn = pick_vpn(d, p), addr, len, first, last, need = 0;
        struct cow_proc_stats s0, s1;
        struct cow_sys_stats sys;
        struct cow_fault f = { COW_FAULT_NONE, 0 };
        enum cow_fault_kind want_kind = COW_FAULT_NONE;
        uint64_t want_addr = 0;
        int r, want;

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
        first = addr / d->pg;
        last = (addr + len - 1) / d->pg;
        describe(d, "%s %u %#llx len %llu", write ? "write" : "read", p->pid,
                 (unsigned long long)addr, (unsigned long long)len);

        for (uint64_t v = first; v <= last && want_kind == COW_FAULT_NONE; v++) {
                struct slot *s = slot_at(p, v);
                unsigned need_prot = write ? COW_PROT_WRITE : COW_PROT_READ;

                if (!s || !s->mapped)
                        want_kind = COW_SEGV_MAPERR;
                else if (!(s->prot & need_prot))
                        want_kind = COW_SEGV_ACCERR;
                if (want_kind != COW_FAULT_NONE)
                        want_addr = v == first ? addr : v * d->pg;
        }
        if (want_kind == COW_FAULT_NONE) {
                for (uint64_t v = first; v <= last; v++) {
                        struct slot *s = slot_win(p, v);

                        if (s->shared)
                                need += s->obj->page[s->objpage] == NULL;
                        else if (write)
                                need += s->state != ST_FRAME || s->pg->refs > 1;
                }
        }
        cow_engine_sys_stats(d->e, &sys);
        want = want_kind != COW_FAULT_NONE ? -EFAULT :
               need > sys.frames_free && !d->swap ? -ENOMEM : 0;

        if (write)
                for (uint64_t i = 0; i < len; i += 8) {
                        uint64_t x = rnd(d);

                        memcpy(d->wbuf + i, &x, len - i < 8 ? len - i : 8);
                }
        else
                memset(d->rbuf, 0xa5, len);
        if (cow_engine_proc_stats(d->e, p->pid, &s0) != 0) {
                dfail(d, "proc_stats failed");
                return;
        }
        d->t.reads += !write;
        d->t.writes += write;
        r = write ? cow_engine_write(d->e, p->pid, addr, d->wbuf, len, &f)
                  : cow_engine_read(d->e, p->pid, addr, d->rbuf, len, &f);
        if (d->swap && want == 0 && r == -ENOMEM) {
                /* Unevictable pages (shared mappings, the access's own) filled
                 * memory, for new pages or pages to bring back from swap:
                 * refused, and no data changed (later reads check). */
                d->t.enomem_swap++;
                return;
        }
        if (!check_errno(d, write ? "write" : "read", r, want))
                return;
        if (want == -EFAULT) {
                d->c.segv++;
                d->t.maperr += want_kind == COW_SEGV_MAPERR;
                d->t.accerr += want_kind == COW_SEGV_ACCERR;
                if (f.kind != want_kind || f.addr != want_addr)
                        dfail(d, "fault kind %d at %#llx, model expects kind %d at %#llx",
                              f.kind, (unsigned long long)f.addr, want_kind,
                              (unsigned long long)want_addr);
                return;
        }
        if (want == -ENOMEM)
                return;

        /* apply to the model, and build the bytes a read must return */
        for (uint64_t v = first; v <= last; v++) {
                struct slot *s = slot_win(p, v);
                uint64_t pstart = v * d->pg, from = addr > pstart ? addr - pstart : 0;
                uint64_t to = addr + len < pstart + d->pg ? addr + len - pstart : d->pg;
                uint64_t boff = pstart + from - addr;
                struct mpage *pg;

                if (s->shared) {
                        pg = s->obj->page[s->objpage];
                        if (!pg) {
                                pg = s->obj->page[s->objpage] = page_new(d);
                                d->c.zero_fills++;
                        }
                } else if (!write) {
                        if (s->state == ST_NONE) {
                                s->state = ST_ZERO;
                                d->c.zero_maps++;
                        }
                        pg = s->state == ST_FRAME ? s->pg : NULL;
                } else if (s->state != ST_FRAME) {
                        pg = s->pg = page_new(d);
                        s->state = ST_FRAME;
                        s->wp = false;
                        d->private_pages++;
                        d->c.zero_fills++;
                } else if (s->pg->refs > 1) {
                        pg = page_new(d);
                        memcpy(pg->data, s->pg->data, d->pg);
                        s->pg->refs--;
                        s->pg = pg;
                        s->wp = false;
                        d->private_pages++;
                        d->c.cow_copies++;
                } else {
                        pg = s->pg;
                        if (s->wp) {
                                s->wp = false;
                                d->c.cow_reuses++;
                        }
                }
                mtlb_lookup(&p->tlb, v);
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
                return;
        }
        if (cow_engine_proc_stats(d->e, p->pid, &s1) != 0) {
                dfail(d, "proc_stats failed");
                return;
        }
        if (s1.tlb_hits - s0.tlb_hits + s1.tlb_misses - s0.tlb_misses != last - first + 1)
                dfail(d, "%llu TLB lookups for %llu pages",
                      (unsigned long long)((s1.tlb_hits + s1.tlb_misses) -
                                           (s0.tlb_hits + s0.tlb_misses)),
                      (unsigned long long)(last - first + 1));
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
        struct swapmem *spare = &d->sm[1 - d->sm_cur];
        swapmem_fini(spare);
        if (swapmem_init(spare, d->cfg.swap_slots, d->pg) < 0)
                return -ENOMEM;
        return cow_engine_load_swap(&d->cfg, blob_source, b, &swapmem_ops, spare, ret, why);
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
                swapmem_fini(&d->sm[d->sm_cur]);
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
                                slot_release(d, &d->proc[i].slot[k]);
                        d->proc[i].live = false;
                }
        if (d->e && d->swap) {
                struct cow_sys_stats s;
                cow_engine_sys_stats(d->e, &s);
                d->t.swap_outs += s.swap_outs;
                d->t.swap_ins += s.swap_ins;
        }
        cow_engine_free(d->e);
        d->e = NULL;
        free(d->rev);
        d->rev = NULL;
        swapmem_fini(&d->sm[0]);
        swapmem_fini(&d->sm[1]);
}

/* Runs one sequence; returns false (after printing) on the first mismatch. */
static bool diff_run(struct diff *d, uint64_t seed, unsigned nops, bool swap)
{
        static const uint32_t entries[] = { 4, 8, 8, 8, 16 };
        static const uint32_t ways[] = { 0, 1, 2, 2, 4 };
        static const uint32_t big_pages[] = { 8192, 16384, 65536 };
        struct cow_engine_config cfg;
        int r;

        memset(d->proc, 0, sizeof d->proc);
        d->seed = seed;
        d->rng = seed * UINT64_C(0x2545f4914f6cdd1d) + 1;
        d->failed = false;
        d->objs = NULL;
        d->private_pages = 0;
        memset(&d->c, 0, sizeof d->c);
        d->op = 0;
        snprintf(d->desc, sizeof d->desc, "setup");

        cow_engine_config_init(&cfg);
        /* mostly 4 KiB pages; every fourth sequence 8, 16 or 64 KiB */
        d->pg = below(d, 4) ? 4096 : big_pages[below(d, 3)];
        d->frames_total = UINT64_C(32) << below(d, 4);
        d->swap = swap;
        if (swap) {
                /* Tiny memories and swap for every page the model can hold. */
                d->frames_total = UINT64_C(8) << below(d, 2) << (below(d, 4) == 0 ? 2 : 0);
                cfg.swap_slots = 1024;
                cfg.policy = (enum cow_policy)below(d, 3);
        }
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
                if (swapmem_init(&d->sm[0], cfg.swap_slots, d->pg) < 0)
                        return dfail(d, "no memory for the swap backend");
                cow_engine_set_swap(d->e, &swapmem_ops, &d->sm[0]);
        }
        d->rev = calloc(d->frames_total + 1, sizeof *d->rev);
        assert_non_null(d->rev);
        if (d->verbose)
                fprintf(stderr, "seed %llu: %llu frames of %u bytes, TLB %u entries %u ways\n",
                        (unsigned long long)seed, (unsigned long long)d->frames_total, d->pg,
                        cfg.tlb_entries, cfg.tlb_ways);

        for (d->op = 0; d->op < nops && !d->failed; d->op++) {
                uint64_t k = below(d, 100);

                d->t.ops++;
                struct mproc *p = proc_pick(d);
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
                        op_mmap(d, p);
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
                } else if (k < 72) {
                        op_access(d, p, true);
                } else {
                        op_access(d, p, false);
                }
                if (d->failed || !check_global(d))
                        break;
                if (p && p->live && !check_proc(d, p))
                        break;
                if ((d->op % 16 == 15 || d->op + 1 == nops) && !check_page_maps(d))
                        break;
        }
        diff_teardown(d);
        return !d->failed;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
        const char *s = getenv(name);

        return s && *s ? strtoull(s, NULL, 0) : dflt;
}

static void run_sequences(bool swap, const char *iters_env, uint64_t iters_default,
                          uint64_t first_seed)
{
        struct diff *d = calloc(1, sizeof *d);
        uint64_t iters = env_u64(iters_env, iters_default);
        unsigned nops = (unsigned)env_u64("COWD_DIFF_OPS", 160);
        const char *one = getenv("COWD_SEED");
        unsigned failures = 0;

        assert_non_null(d);
        d->verbose = env_u64("COWD_DIFF_VERBOSE", 0) != 0;
        if (one && *one) {
                failures += !diff_run(d, strtoull(one, NULL, 0), nops, swap);
        } else {
                for (uint64_t seed = first_seed; seed < first_seed + iters; seed++) {
                        failures += !diff_run(d, seed, nops, swap);
                        if (failures >= 5)
                                break; /* enough to go on */
                }
        }
        fprintf(stderr,
                "differential%s: %llu ops (%llu checkpoint round trips, %llu reads, %llu writes, %llu pages read and compared, "
                "%llu forks, %llu exits, %llu mmaps of which %llu fixed and %llu shared, "
                "%llu munmaps, %llu mprotects, %llu DONTNEEDs); expected errors: %llu EFAULT (%llu MAPERR, %llu ACCERR), "
                "%llu ENOMEM, %llu EEXIST, %llu ENXIO; %llu page_map sweeps; peak %llu frames; "
                "%llu pages swapped out, %llu in; %llu ENOMEM with unevictable memory\n",
                swap ? " with swap" : "",
                (unsigned long long)d->t.ops, (unsigned long long)d->t.checkpoints,
                (unsigned long long)d->t.reads,
                (unsigned long long)d->t.writes, (unsigned long long)d->t.pages_compared,
                (unsigned long long)d->t.forks, (unsigned long long)d->t.exits,
                (unsigned long long)d->t.mmaps, (unsigned long long)d->t.fixed,
                (unsigned long long)d->t.shared, (unsigned long long)d->t.munmaps,
                (unsigned long long)d->t.mprotects, (unsigned long long)d->t.dontneeds,
                (unsigned long long)d->t.efault, (unsigned long long)d->t.maperr,
                (unsigned long long)d->t.accerr, (unsigned long long)d->t.enomem,
                (unsigned long long)d->t.eexist, (unsigned long long)d->t.enxio,
                (unsigned long long)d->t.page_map_checks, (unsigned long long)d->t.max_used,
                (unsigned long long)d->t.swap_outs, (unsigned long long)d->t.swap_ins,
                (unsigned long long)d->t.enomem_swap);
        uint64_t swapped = d->t.swap_outs;
        free(d);
        if (failures)
                fail_msg("%u differential sequence(s) failed; seeds printed above", failures);
        if (swap && !(one && *one) && swapped < iters)
                fail_msg("the swap sequences swapped only %llu pages", (unsigned long long)swapped);
}

static void test_differential(void **state)
{
        (void)state;
        run_sequences(false, "COWD_DIFF_ITERS", 3000, 1);
}

/* COWD_SEED=N with COWD_DIFF_SWAP=1 replays a swap sequence. */
static void test_differential_swap(void **state)
{
        (void)state;
        if (getenv("COWD_SEED") && env_u64("COWD_DIFF_SWAP", 0) == 0)
                skip();
        run_sequences(true, "COWD_DIFF_SWAP_ITERS", 400, 1000001);
}

/* The model itself: a sequence with a known outcome, so a broken model cannot pass silently. */
static void test_model_sanity(void **state)
{
        struct diff *d = calloc(1, sizeof *d);
        struct cow_engine_config cfg;

        (void)state;
        assert_non_null(d);
        cow_engine_config_init(&cfg);
        d->pg = 4096;
        d->tlb_ways = 2;
        d->tlb_sets = 4;
        cfg.tlb_entries = 8;
        cfg.tlb_ways = 2;
        cfg.mem_bytes = 64 * d->pg;
        assert_ok(cow_engine_new(&cfg, &d->e));
        d->frames_total = 64;
        d->rev = calloc(65, sizeof *d->rev);
        assert_non_null(d->rev);
        d->rng = 1;
        op_spawn(d);
        assert_true(d->proc[0].live);
        map_fresh(d, &d->proc[0], d->proc[0].base, 2, COW_PROT_READ | COW_PROT_WRITE, false);
        {
                struct cow_mmap_args a = { .length = 2 * d->pg, .prot = COW_PROT_READ | COW_PROT_WRITE };
                uint64_t got;

                assert_ok(cow_engine_mmap(d->e, d->proc[0].pid, &a, &got));
                assert_int_equal(got, d->proc[0].base * d->pg);
        }
        /* random writes until some land in the mapping; reads must then match */
        for (int i = 0; i < 5000 && d->private_pages == 0; i++)
                op_access(d, &d->proc[0], true);
        for (int i = 0; i < 200; i++)
                op_access(d, &d->proc[0], false);
        assert_false(d->failed);
        assert_true(d->private_pages > 0);
        assert_true(check_global(d));
        assert_true(check_page_maps(d));
        op_fork(d);
        assert_true(check_global(d));
        assert_true(check_page_maps(d));
        /* corrupt the model: the check must notice */
        d->proc[0].slot[0].prot = COW_PROT_NONE;
        fprintf(stderr, "(the next failure message is expected)\n");
        assert_false(check_page_maps(d));
        diff_teardown(d);
        free(d);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_model_sanity),
                cmocka_unit_test(test_differential),
                cmocka_unit_test(test_differential_swap),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
