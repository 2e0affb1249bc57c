/* SPDX-License-Identifier: MIT */
#include "pagetable.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "frames.h"
#include "rmap.h"
#include "swap.h"

static inline unsigned pt_index(uint64_t vpn, unsigned level)
{
        return (unsigned)(vpn >> (PT_BITS * level)) & (PT_FANOUT - 1);
}

/* Virtual pages covered by one entry of a node at this level. */
static inline uint64_t entry_span(unsigned level)
{
        return UINT64_C(1) << (PT_BITS * level);
}

void pt_ctx_init(struct pt_ctx *c, struct frames *frames, struct rmap *rmap, struct swap *swap,
                 unsigned levels, uint64_t vpn_limit, uint64_t max_nodes)
{
        *c = (struct pt_ctx){
                .frames = frames,
                .rmap = rmap,
                .swap = swap,
                .levels = levels,
                .vpn_limit = vpn_limit,
                .max_nodes = max_nodes,
        };
}

int pt_reserve(const struct pt_ctx *c, uint64_t n)
{
        return c->nodes_live + n <= c->max_nodes ? 0 : -ENOBUFS;
}

uint64_t pt_nodes_for_prepare(const struct pt_ctx *c, const struct pt_node *root, uint64_t vpn)
{
        const struct pt_node *n = root;
        for (unsigned level = c->levels - 1; level > 0; level--) {
                const struct pt_node *child = n->child[pt_index(vpn, level)];
                /* Missing, or shared (so copied, making every node below it shared):
                 * the child and each node under it on the path is new. */
                if (!child || child->refs > 1)
                        return level;
                n = child;
        }
        return 0;
}

uint64_t pt_nodes_for_clear(const struct pt_ctx *c, const struct pt_node *root, uint64_t start,
                            uint64_t end)
{
        uint64_t need = 0;
        if (start >= end)
                return 0;
        const uint64_t edges[2] = { start, end - 1 };
        for (int k = 0; k < 2; k++) {
                const struct pt_node *n = root;
                for (unsigned level = c->levels - 1; level > 0; level--) {
                        const struct pt_node *child = n->child[pt_index(edges[k], level)];
                        uint64_t lo = edges[k] & ~(entry_span(level) - 1);
                        if (!child || (start <= lo && lo + entry_span(level) <= end))
                                break; /* nothing there, or released whole */
                        if (child->refs > 1) {
                                need += level;
                                break;
                        }
                        n = child;
                }
        }
        return need;
}

/*
 * Host memory for a node. Callers have checked the budget, so a failure here
 * means the host itself is out of memory, which the engine does not survive.
 */
static struct pt_node *node_alloc(struct pt_ctx *c, unsigned level)
{
        struct pt_node *n = calloc(1, sizeof(*n));
        if (!n)
                abort();
        n->refs = 1;
        n->level = (uint8_t)level;
        n->nodes = 1;
        c->nodes_live++;
        return n;
}

static void node_free(struct pt_ctx *c, struct pt_node *n)
{
        c->nodes_live--;
        free(n);
}

/* A leaf entry goes away: its frame or swap slot loses a reference. */
static void entry_release(struct pt_ctx *c, const struct pt_node *leaf, unsigned i)
{
        uint64_t pte = leaf->pte[i];
        if (pte_has_frame(pte)) {
                rmap_del(c->rmap, c->frames, pte_pfn(pte), leaf, i);
                frames_put(c->frames, pte_pfn(pte));
        } else if (pte_is_swap(pte)) {
                swap_put(c->swap, pte_swap_slot(pte));
        } else if (pte_is_file_out(pte)) {
                c->file_out--;
        }
}

/* Drops one reference; the last one releases the subtree and its frames. */
static void node_unref(struct pt_ctx *c, struct pt_node *n)
{
        if (--n->refs != 0)
                return;
        if (n->used != 0) {
                for (unsigned i = 0; i < PT_FANOUT; i++) {
                        if (n->level == 0) {
                                entry_release(c, n, i);
                        } else if (n->child[i]) {
                                node_unref(c, n->child[i]);
                        }
                }
        }
        node_free(c, n);
}

/*
 * A private copy of a shared node. Its children (or, for a leaf, its frames)
 * gain a reference. Frames now mapped from two leaves are shared, so every
 * write bit in both leaves is void; children reached from two parents are
 * marked write-protected, which voids the write bits beneath them lazily.
 */
static struct pt_node *node_copy(struct pt_ctx *c, struct pt_node *old)
{
        struct pt_node *n = node_alloc(c, old->level);
        n->used = old->used;
        n->base = old->base;
        n->pages = old->pages;
        n->zeros = old->zeros;
        n->nodes = old->nodes;
        memcpy(n->pte, old->pte, sizeof(n->pte));

        if (old->used != 0) {
                for (unsigned i = 0; i < PT_FANOUT; i++) {
                        if (old->level == 0) {
                                if (pte_is_swap(old->pte[i]))
                                        swap_dup(c->swap, pte_swap_slot(old->pte[i]));
                                c->file_out += pte_is_file_out(old->pte[i]);
                                if (!(old->pte[i] & PTE_PRESENT))
                                        continue;
                                frames_get(c->frames, pte_pfn(old->pte[i]));
                                rmap_add(c->rmap, c->frames, pte_pfn(old->pte[i]), n, i);
                                old->pte[i] &= ~PTE_WRITE;
                                n->pte[i] &= ~PTE_WRITE;
                        } else if (old->child[i]) {
                                old->child[i]->refs++;
                                old->child[i]->wp = 1;
                        }
                }
        }
        old->refs--;
        return n;
}

/*
 * Takes back a write-protected node that only this path holds now: the write
 * bits beneath it were set before it was shared, and sharing may have copied
 * the frames they point at, so they must be re-earned by a fault.
 */
static void node_reclaim(struct pt_node *n)
{
        if (n->used != 0) {
                for (unsigned i = 0; i < PT_FANOUT; i++) {
                        if (n->level == 0)
                                n->pte[i] &= ~PTE_WRITE;
                        else if (n->child[i])
                                n->child[i]->wp = 1;
                }
        }
        n->wp = 0;
}

/* Makes parent->child[i] private to the caller's path and returns it. */
static struct pt_node *child_make_private(struct pt_ctx *c, struct pt_node *parent, unsigned i)
{
        struct pt_node *child = parent->child[i];
        if (child->refs > 1)
                parent->child[i] = child = node_copy(c, child);
        else if (child->wp)
                node_reclaim(child);
        return child;
}

struct pt_node *pt_node_new(struct pt_ctx *c, unsigned level)
{
        return node_alloc(c, level);
}

void pt_node_discard(struct pt_ctx *c, struct pt_node *n)
{
        node_free(c, n);
}

static void set_bases(const struct pt_node *n)
{
        if (n->level == 0 || n->used == 0)
                return;
        uint64_t span = entry_span(n->level);
        for (unsigned i = 0; i < PT_FANOUT; i++) {
                if (n->child[i]) {
                        n->child[i]->base = n->base + i * span;
                        set_bases(n->child[i]);
                }
        }
}

void pt_set_bases(const struct pt_ctx *c, struct pt_node *root)
{
        (void)c;
        root->base = 0;
        set_bases(root);
}

void pt_node_recount(struct pt_node *n)
{
        n->used = 0;
        n->pages = 0;
        n->zeros = 0;
        n->nodes = 1;
        for (unsigned i = 0; i < PT_FANOUT; i++) {
                if (n->level == 0) {
                        uint64_t pte = n->pte[i];
                        if (pte == 0)
                                continue;
                        n->used++;
                        if (pte_holds_page(pte))
                                n->pages++;
                        else if (pte & PTE_PRESENT)
                                n->zeros++;
                } else if (n->child[i]) {
                        n->used++;
                        n->pages += n->child[i]->pages;
                        n->zeros += n->child[i]->zeros;
                        n->nodes += n->child[i]->nodes;
                }
        }
}

struct pt_node *pt_root_new(struct pt_ctx *c)
{
        if (pt_reserve(c, 1) < 0)
                return NULL;
        return node_alloc(c, c->levels - 1);
}

struct pt_node *pt_fork(struct pt_ctx *c, struct pt_node *root)
{
        if (pt_reserve(c, 1) < 0)
                return NULL;
        struct pt_node *n = node_alloc(c, root->level);
        n->used = root->used;
        n->pages = root->pages;
        n->zeros = root->zeros;
        n->nodes = root->nodes;
        memcpy(n->child, root->child, sizeof(n->child));
        if (root->used != 0) {
                for (unsigned i = 0; i < PT_FANOUT; i++) {
                        if (root->child[i]) {
                                root->child[i]->refs++;
                                root->child[i]->wp = 1;
                        }
                }
        }
        return n;
}

void pt_destroy(struct pt_ctx *c, struct pt_node *root)
{
        if (root)
                node_unref(c, root);
}

uint64_t pt_lookup(const struct pt_ctx *c, const struct pt_node *root, uint64_t vpn,
                   unsigned *ret_state)
{
        unsigned state = PT_PATH_CLEAN;
        const struct pt_node *n = root;

        for (unsigned level = c->levels - 1; level > 0; level--) {
                n = n->child[pt_index(vpn, level)];
                if (!n) {
                        *ret_state = state;
                        return 0;
                }
                if (n->refs > 1)
                        state |= PT_PATH_SHARED;
                if (n->wp)
                        state |= PT_PATH_WP;
        }
        *ret_state = state;
        return n->pte[pt_index(vpn, 0)];
}

struct pt_node *pt_lookup_leaf(const struct pt_ctx *c, struct pt_node *root, uint64_t vpn)
{
        struct pt_node *n = root;
        for (unsigned level = c->levels - 1; level > 0 && n; level--)
                n = n->child[pt_index(vpn, level)];
        return n;
}

uint64_t *pt_prepare(struct pt_ctx *c, struct pt_node *root, uint64_t vpn, struct pt_path *path)
{
        struct pt_node *n = root;
        unsigned top = c->levels - 1;

        for (unsigned level = top; level > 0; level--) {
                unsigned i = pt_index(vpn, level);
                path->node[level] = n;
                if (!n->child[i]) {
                        n->child[i] = node_alloc(c, level - 1);
                        n->child[i]->base = vpn & ~(entry_span(level) - 1);
                        n->used++;
                        for (unsigned up = level; up <= top; up++)
                                path->node[up]->nodes++;
                        n = n->child[i];
                } else {
                        n = child_make_private(c, n, i);
                }
        }
        path->node[0] = n;
        return &n->pte[pt_index(vpn, 0)];
}

/* Adds d_pages and d_zeros to every node of the path. */
static void path_count(const struct pt_ctx *c, struct pt_path *path, int64_t d_pages,
                       int64_t d_zeros)
{
        for (unsigned level = 0; level < c->levels; level++) {
                path->node[level]->pages += (uint64_t)d_pages;
                path->node[level]->zeros += (uint64_t)d_zeros;
        }
}

void pt_set(struct pt_ctx *c, struct pt_path *path, uint64_t *entry, uint64_t val)
{
        uint64_t old = *entry;
        int64_t d_pages = 0, d_zeros = 0;
        struct pt_node *leaf = path->node[0];
        unsigned idx = (unsigned)(entry - leaf->pte);

        if (pte_holds_page(old))
                d_pages--;
        else if (old & PTE_PRESENT)
                d_zeros--;
        if (pte_holds_page(val))
                d_pages++;
        else if (val & PTE_PRESENT)
                d_zeros++;
        if (pte_has_frame(old) && (!pte_has_frame(val) || pte_pfn(val) != pte_pfn(old)))
                rmap_del(c->rmap, c->frames, pte_pfn(old), leaf, idx);
        if (pte_has_frame(val) && (!pte_has_frame(old) || pte_pfn(val) != pte_pfn(old)))
                rmap_add(c->rmap, c->frames, pte_pfn(val), leaf, idx);
        c->file_out += (uint64_t)pte_is_file_out(val) - (uint64_t)pte_is_file_out(old);
        if (old == 0 && val != 0)
                path->node[0]->used++;
        else if (old != 0 && val == 0)
                path->node[0]->used--;
        *entry = val;
        if (d_pages != 0 || d_zeros != 0)
                path_count(c, path, d_pages, d_zeros);
}

struct pt_counts {
        uint64_t pages, zeros, nodes;
};

static void counts_add(struct pt_counts *acc, uint64_t pages, uint64_t zeros, uint64_t nodes)
{
        acc->pages += pages;
        acc->zeros += zeros;
        acc->nodes += nodes;
}

/*
 * Clears entries for [start, end) beneath n, a private node covering vpns from
 * base. Adds what was removed to *gone and subtracts it from n's counters.
 */
static void clear_in(struct pt_ctx *c, struct pt_node *n, uint64_t base, uint64_t start,
                     uint64_t end, struct pt_counts *gone)
{
        struct pt_counts here = { 0 };
        uint64_t span = entry_span(n->level);
        uint64_t first = start > base ? (start - base) / span : 0;
        uint64_t last = (end - base + span - 1) / span; /* exclusive */
        if (last > PT_FANOUT)
                last = PT_FANOUT;

        for (uint64_t i = first; i < last && n->used != 0; i++) {
                uint64_t lo = base + i * span, hi = lo + span;
                if (n->level == 0) {
                        uint64_t pte = n->pte[i];
                        if (pte == 0)
                                continue;
                        if (pte_holds_page(pte))
                                here.pages++;
                        else if (pte & PTE_PRESENT)
                                here.zeros++;
                        entry_release(c, n, (unsigned)i);
                        n->pte[i] = 0;
                        n->used--;
                        continue;
                }

                struct pt_node *child = n->child[i];
                if (!child)
                        continue;
                if (start <= lo && hi <= end) {
                        /* Wholly covered: let go of the subtree, shared or not. */
                        counts_add(&here, child->pages, child->zeros, child->nodes);
                        node_unref(c, child);
                        n->child[i] = NULL;
                        n->used--;
                        continue;
                }
                child = child_make_private(c, n, (unsigned)i);
                clear_in(c, child, lo, start > lo ? start : lo, end < hi ? end : hi, &here);
                if (child->used == 0) {
                        counts_add(&here, 0, 0, 1);
                        node_free(c, child);
                        n->child[i] = NULL;
                        n->used--;
                }
        }
        n->pages -= here.pages;
        n->zeros -= here.zeros;
        n->nodes -= here.nodes;
        counts_add(gone, here.pages, here.zeros, here.nodes);
}

void pt_clear_range(struct pt_ctx *c, struct pt_node *root, uint64_t start, uint64_t end)
{
        struct pt_counts gone = { 0 };
        if (start < end)
                clear_in(c, root, 0, start, end, &gone);
}

static void walk_in(const struct pt_node *n, uint64_t base, uint64_t start, uint64_t end,
                    pt_visit_fn fn, void *arg)
{
        uint64_t span = entry_span(n->level);
        uint64_t first = start > base ? (start - base) / span : 0;
        uint64_t last = (end - base + span - 1) / span;
        if (last > PT_FANOUT)
                last = PT_FANOUT;

        for (uint64_t i = first; i < last; i++) {
                uint64_t lo = base + i * span;
                if (n->level == 0) {
                        if (n->pte[i] != 0)
                                fn(arg, lo, n->pte[i]);
                } else if (n->child[i] && n->child[i]->used != 0) {
                        walk_in(n->child[i], lo, start, end, fn, arg);
                }
        }
}

void pt_walk(const struct pt_ctx *c, const struct pt_node *root, uint64_t start, uint64_t end,
             pt_visit_fn fn, void *arg)
{
        (void)c;
        if (start < end && root->used != 0)
                walk_in(root, 0, start, end, fn, arg);
}

struct node_list {
        struct pt_node **v;
        size_t n, cap;
};

static int list_push(struct node_list *l, struct pt_node *node)
{
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 64;
                struct pt_node **v = realloc(l->v, cap * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->cap = cap;
        }
        l->v[l->n++] = node;
        return 0;
}

int pt_scan(struct pt_ctx *c, struct pt_node *const *roots, size_t nroots, pt_node_fn node_fn,
            pt_leaf_fn leaf_fn, void *arg)
{
        struct node_list cur = { 0 }, next = { 0 };
        int r = 0;

        if (++c->epoch == 0)
                c->epoch = 1;
        for (size_t k = 0; k < nroots; k++) {
                /* A root held by two processes counts twice, so that its refs
                 * (always 1 for a root) no longer match what the scan found. */
                if (roots[k]->scan_epoch == c->epoch) {
                        roots[k]->scan_refs++;
                        roots[k]->scan_mult++;
                        continue;
                }
                roots[k]->scan_epoch = c->epoch;
                roots[k]->scan_refs = 1;
                roots[k]->scan_mult = 1;
                if ((r = list_push(&cur, roots[k])) < 0)
                        goto out;
        }

        /* Nodes of one level are referenced only from the level above, so a
         * level's multiplicities are complete before the level is expanded. */
        for (unsigned level = c->levels - 1; level > 0; level--) {
                next.n = 0;
                for (size_t k = 0; k < cur.n; k++) {
                        struct pt_node *n = cur.v[k];
                        if (node_fn)
                                node_fn(arg, n);
                        if (n->used == 0)
                                continue;
                        for (unsigned i = 0; i < PT_FANOUT; i++) {
                                struct pt_node *ch = n->child[i];
                                if (!ch)
                                        continue;
                                if (ch->scan_epoch != c->epoch) {
                                        ch->scan_epoch = c->epoch;
                                        ch->scan_refs = 0;
                                        ch->scan_mult = 0;
                                        if ((r = list_push(&next, ch)) < 0)
                                                goto out;
                                }
                                ch->scan_refs++;
                                ch->scan_mult += n->scan_mult;
                        }
                }
                struct node_list t = cur;
                cur = next;
                next = t;
        }
        for (size_t k = 0; k < cur.n; k++) {
                if (node_fn)
                        node_fn(arg, cur.v[k]);
                if (leaf_fn)
                        leaf_fn(arg, cur.v[k]);
        }
out:
        free(cur.v);
        free(next.v);
        return r;
}
