/* SPDX-License-Identifier: MIT */
/*
 * The reverse map: from a frame to every (leaf node, index) that maps it.
 *
 * Page-table leaves are shared between processes after a fork, and a frame's
 * reference count counts leaf references, not processes; so the map is kept
 * per leaf: one entry per leaf entry that maps the frame, and a shared leaf's
 * entry serves every process that reaches the leaf. Each frame's entries form
 * a singly linked list whose head is frame.owner; entries live in one pool
 * (16 bytes each) with a free list. Entries for the zero page are not kept.
 */
#ifndef COWD_ENGINE_RMAP_H
#define COWD_ENGINE_RMAP_H

#include <stdint.h>

struct frames;
struct pt_node;

struct rmap_ent {
        struct pt_node *leaf;
        uint32_t next; /* next entry of the same frame; 0 ends the list */
        uint32_t idx;  /* index in the leaf */
};

struct rmap {
        struct rmap_ent *v; /* v[0] is unused: index 0 means none */
        uint32_t cap;
        uint32_t hwm;       /* v[1..hwm] have been handed out */
        uint32_t free_head;
        uint64_t live;
};

void rmap_fini(struct rmap *r);

/* Records that leaf->pte[idx] maps pfn. Aborts if the host is out of memory. */
void rmap_add(struct rmap *r, struct frames *f, uint32_t pfn, struct pt_node *leaf, unsigned idx);

/* Forgets that leaf->pte[idx] maps pfn. */
void rmap_del(struct rmap *r, struct frames *f, uint32_t pfn, const struct pt_node *leaf,
              unsigned idx);

#endif /* COWD_ENGINE_RMAP_H */
