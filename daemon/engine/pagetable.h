/* SPDX-License-Identifier: MIT */
/*
 * Multi-level page tables whose nodes are shared between processes after a
 * fork and copied on demand (the on-demand-fork design).
 *
 * Each process owns its root. fork() copies only the root; every node below
 * it gains a reference and is marked write-protected (wp). A node reached
 * through a path where some node is shared (refs > 1) or write-protected is
 * read-only for the process walking it: before changing an entry, the process
 * "prepares" the path: it copies each shared node (the copy takes a reference
 * on each child, or on each frame for a leaf) and takes back each wp node it
 * alone holds (clearing the write bits beneath it). So a frame's reference
 * count counts leaf-node references, not processes; docs/ARCHITECTURE.md says
 * how sharers, PSS and "the only user" are derived from it.
 *
 * Page-table nodes live in host memory, not in simulated frames; their total
 * is bounded by a budget (pt_reserve).
 */
#ifndef COWD_ENGINE_PAGETABLE_H
#define COWD_ENGINE_PAGETABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct frames;

#define PT_BITS 9u
#define PT_FANOUT (1u << PT_BITS)
#define PT_MAX_LEVELS 6u

/* Leaf entry (PTE) bits. A zero entry is empty. */
#define PTE_PRESENT (UINT64_C(1) << 0)
#define PTE_WRITE (UINT64_C(1) << 1)    /* writes may proceed without a fault */
#define PTE_ACCESSED (UINT64_C(1) << 2)
#define PTE_DIRTY (UINT64_C(1) << 3)
#define PTE_SWAP (UINT64_C(1) << 4)     /* not present: the page is in swap slot bits 32.. */
#define PTE_FILE (UINT64_C(1) << 5)     /* not present: the file page was evicted; the
                                         * mapping says which file and offset */
#define PTE_PFN_SHIFT 32u

static inline uint32_t pte_pfn(uint64_t pte)
{
        return (uint32_t)(pte >> PTE_PFN_SHIFT);
}

static inline uint64_t pte_make(uint32_t pfn, uint64_t bits)
{
        return (uint64_t)pfn << PTE_PFN_SHIFT | bits | PTE_PRESENT;
}

static inline bool pte_is_swap(uint64_t pte)
{
        return (pte & (PTE_PRESENT | PTE_SWAP)) == PTE_SWAP;
}

static inline uint64_t pte_swap_make(uint32_t slot)
{
        return (uint64_t)slot << PTE_PFN_SHIFT | PTE_SWAP;
}

static inline uint32_t pte_swap_slot(uint64_t pte)
{
        return (uint32_t)(pte >> PTE_PFN_SHIFT);
}

/* An entry whose file page was evicted: it holds a page, out of memory. */
static inline bool pte_is_file_out(uint64_t pte)
{
        return pte == PTE_FILE;
}

/* A real frame (not the zero page) is mapped by this entry. */
static inline bool pte_has_frame(uint64_t pte)
{
        return (pte & PTE_PRESENT) && pte_pfn(pte) != 0;
}

/* The entry holds a page of data: a real frame, a swap slot or an evicted file page. */
static inline bool pte_holds_page(uint64_t pte)
{
        return pte_has_frame(pte) || pte_is_swap(pte) || pte_is_file_out(pte);
}

/* Not present, but a page all the same: in swap, or an evicted file page. */
static inline bool pte_is_out(uint64_t pte)
{
        return pte_is_swap(pte) || pte_is_file_out(pte);
}

struct pt_node {
        uint32_t refs;       /* parents referencing this node; 1 for a root */
        uint16_t used;       /* non-empty entries */
        uint8_t level;       /* 0 for a leaf */
        uint8_t wp;          /* write bits beneath are void until taken back */
        uint64_t base;       /* first virtual page number the node covers */
        uint64_t pages;      /* leaf entries in the subtree holding a page: a real frame,
                              * a swap entry or an evicted file page (eviction and
                              * swap-in keep it) */
        uint64_t zeros;      /* leaf entries in the subtree mapping the zero page */
        uint64_t nodes;      /* nodes in the subtree, this one included */
        /* Scratch for pt_scan(), valid while scan_epoch matches. */
        uint32_t scan_epoch;
        uint32_t scan_refs;  /* parents found by the scan */
        uint64_t scan_mult;  /* processes reaching this node */
        uint32_t save_id;    /* scratch for checkpoints: the node's number in the file */
        union {
                uint64_t pte[PT_FANOUT];
                struct pt_node *child[PT_FANOUT];
        };
};

struct rmap;
struct swap;

struct pt_ctx {
        struct frames *frames;
        struct rmap *rmap;   /* every leaf entry mapping a real frame is in it */
        struct swap *swap;   /* swap entries hold a reference on their slot */
        unsigned levels;     /* the root's level is levels - 1 */
        uint64_t vpn_limit;  /* virtual page numbers are below this */
        uint64_t nodes_live;
        uint64_t max_nodes;
        uint64_t file_out;   /* leaf entries, distinct leaves, that are evicted file pages */
        uint32_t epoch;
};

/* The path a preparation walked, root at node[levels - 1], leaf at node[0]. */
struct pt_path {
        struct pt_node *node[PT_MAX_LEVELS];
};

/* What a read-only walk saw along the path. */
enum pt_path_state {
        PT_PATH_CLEAN = 0,        /* every node private and trusted */
        PT_PATH_WP = 1u << 0,     /* some node write-protected */
        PT_PATH_SHARED = 1u << 1, /* some node referenced by several parents */
};

void pt_ctx_init(struct pt_ctx *c, struct frames *frames, struct rmap *rmap, struct swap *swap,
                 unsigned levels, uint64_t vpn_limit, uint64_t max_nodes);

/* Checks that n more nodes fit the budget: 0 or -ENOBUFS. */
int pt_reserve(const struct pt_ctx *c, uint64_t n);

/* Nodes that pt_prepare(root, vpn) would allocate or copy. Changes nothing. */
uint64_t pt_nodes_for_prepare(const struct pt_ctx *c, const struct pt_node *root, uint64_t vpn);

/*
 * An upper bound on nodes that pt_clear_range(root, start, end) would copy:
 * only shared nodes on the two edge paths that the range covers in part.
 */
uint64_t pt_nodes_for_clear(const struct pt_ctx *c, const struct pt_node *root, uint64_t start,
                            uint64_t end);

/* A new empty root, or NULL when the budget is spent. */
struct pt_node *pt_root_new(struct pt_ctx *c);

/* A child's root: a copy of root sharing every node beneath it, or NULL. */
struct pt_node *pt_fork(struct pt_ctx *c, struct pt_node *root);

/* Drops a root and everything only it reached, with their frame references. */
void pt_destroy(struct pt_ctx *c, struct pt_node *root);

/* The entry for vpn (0 if none) and, in *ret_state, enum pt_path_state bits. */
uint64_t pt_lookup(const struct pt_ctx *c, const struct pt_node *root, uint64_t vpn,
                   unsigned *ret_state);

/*
 * The leaf holding vpn's entry, or NULL. Its entry may be changed in place
 * only from one kind of page to another (a frame to a swap entry and back):
 * the counters along every path reaching a shared leaf then stay right.
 */
struct pt_node *pt_lookup_leaf(const struct pt_ctx *c, struct pt_node *root, uint64_t vpn);

/*
 * Makes the path to vpn private to this root's process and returns its leaf
 * entry. Never fails: callers reserve pt_nodes_for_prepare() first.
 */
uint64_t *pt_prepare(struct pt_ctx *c, struct pt_node *root, uint64_t vpn, struct pt_path *path);

/*
 * Stores val in the prepared entry, keeping the path's counters and the
 * reverse map; the caller keeps frame and swap-slot references.
 */
void pt_set(struct pt_ctx *c, struct pt_path *path, uint64_t *entry, uint64_t val);

/* Clears [start, end): whole subtrees are released without being copied. */
void pt_clear_range(struct pt_ctx *c, struct pt_node *root, uint64_t start, uint64_t end);

/* Calls fn for each non-empty entry in [start, end), in address order. */
typedef void (*pt_visit_fn)(void *arg, uint64_t vpn, uint64_t pte);
void pt_walk(const struct pt_ctx *c, const struct pt_node *root, uint64_t start, uint64_t end,
             pt_visit_fn fn, void *arg);

/*
 * Visits every node reachable from roots once, level by level, setting
 * scan_refs (parents found) and scan_mult (processes reaching it). Then calls
 * leaf_fn once per distinct leaf node. Returns 0 or -ENOMEM.
 */
typedef void (*pt_leaf_fn)(void *arg, const struct pt_node *leaf);
typedef void (*pt_node_fn)(void *arg, const struct pt_node *node);
int pt_scan(struct pt_ctx *c, struct pt_node *const *roots, size_t nroots, pt_node_fn node_fn,
            pt_leaf_fn leaf_fn, void *arg);

/* For loading a checkpoint: an empty node, counted as live. Never fails. */
struct pt_node *pt_node_new(struct pt_ctx *c, unsigned level);

/* Recomputes n's used, pages, zeros and nodes from its entries and children. */
void pt_node_recount(struct pt_node *n);

/* For loading a checkpoint: sets every node's base beneath root (a root's is 0). */
void pt_set_bases(const struct pt_ctx *c, struct pt_node *root);

/* Frees one node alone, for discarding a half-loaded checkpoint. */
void pt_node_discard(struct pt_ctx *c, struct pt_node *n);

static inline size_t pt_node_bytes(void)
{
        return sizeof(struct pt_node);
}

#endif /* COWD_ENGINE_PAGETABLE_H */
