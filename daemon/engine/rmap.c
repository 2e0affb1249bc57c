/* SPDX-License-Identifier: MIT */
#include "rmap.h"

#include <stdlib.h>

#include "frames.h"

void rmap_fini(struct rmap *r)
{
        free(r->v);
        *r = (struct rmap){ 0 };
}

void rmap_add(struct rmap *r, struct frames *f, uint32_t pfn, struct pt_node *leaf, unsigned idx)
{
        uint32_t k;
        if (pfn == FRAME_ZERO)
                return;
        if (r->free_head != 0) {
                k = r->free_head;
                r->free_head = r->v[k].next;
        } else {
                if (r->hwm + 1 >= r->cap) {
                        /* Like page-table nodes, entries are host memory bounded by the
                         * page-table budget (at most one per leaf entry): running out
                         * means the host is out of memory. */
                        uint32_t cap = r->cap ? r->cap * 2 : 1024;
                        struct rmap_ent *v = realloc(r->v, (size_t)cap * sizeof(*v));
                        if (!v || cap <= r->cap)
                                abort();
                        r->v = v;
                        r->cap = cap;
                }
                k = ++r->hwm;
        }
        struct frame *fr = &f->meta[pfn];
        r->v[k] = (struct rmap_ent){ .leaf = leaf, .next = fr->owner, .idx = idx };
        fr->owner = k;
        r->live++;
}

void rmap_del(struct rmap *r, struct frames *f, uint32_t pfn, const struct pt_node *leaf,
              unsigned idx)
{
        if (pfn == FRAME_ZERO)
                return;
        uint32_t *link = &f->meta[pfn].owner;
        while (*link != 0) {
                struct rmap_ent *x = &r->v[*link];
                if (x->leaf == leaf && x->idx == idx) {
                        uint32_t k = *link;
                        *link = x->next;
                        x->leaf = NULL;
                        x->next = r->free_head;
                        r->free_head = k;
                        r->live--;
                        return;
                }
                link = &x->next;
        }
}
