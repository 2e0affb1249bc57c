/* SPDX-License-Identifier: MIT */
#include "vma.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cowd/engine.h>

#include "memobj.h"

void vma_set_fini(struct vma_set *s, struct frames *f)
{
        for (uint32_t i = 0; i < s->n; i++)
                memobj_unref(s->v[i].obj, f);
        free(s->v);
        *s = (struct vma_set){ .page_shift = s->page_shift };
}

int vma_reserve(struct vma_set *s, uint32_t want)
{
        if (want <= s->cap)
                return 0;
        uint32_t cap = s->cap ? s->cap : 8;
        while (cap < want)
                cap *= 2;
        struct vma *v = realloc(s->v, (size_t)cap * sizeof(*v));
        if (!v)
                return -ENOMEM;
        s->v = v;
        s->cap = cap;
        return 0;
}

int vma_set_copy(struct vma_set *dst, const struct vma_set *src)
{
        int r = vma_reserve(dst, src->n);
        if (r < 0)
                return r;
        if (src->n)
                memcpy(dst->v, src->v, (size_t)src->n * sizeof(*src->v));
        dst->n = src->n;
        dst->bytes = src->bytes;
        dst->page_shift = src->page_shift;
        for (uint32_t i = 0; i < dst->n; i++)
                if (dst->v[i].obj)
                        memobj_ref(dst->v[i].obj);
        return 0;
}

uint32_t vma_index_after(const struct vma_set *s, uint64_t addr)
{
        uint32_t lo = 0, hi = s->n;
        while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;
                if (s->v[mid].end <= addr)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

struct vma *vma_find(const struct vma_set *s, uint64_t addr)
{
        uint32_t i = vma_index_after(s, addr);
        return i < s->n && s->v[i].start <= addr ? &s->v[i] : NULL;
}

bool vma_range_free(const struct vma_set *s, uint64_t start, uint64_t end)
{
        uint32_t i = vma_index_after(s, start);
        return i == s->n || s->v[i].start >= end;
}

bool vma_range_covered(const struct vma_set *s, uint64_t start, uint64_t end)
{
        uint64_t at = start;
        for (uint32_t i = vma_index_after(s, start); i < s->n && at < end; i++) {
                if (s->v[i].start > at)
                        return false;
                at = s->v[i].end;
        }
        return at >= end;
}

uint64_t vma_count_after(const struct vma_set *s, uint64_t start, uint64_t end, bool remove)
{
        uint64_t n = s->n;
        const struct vma *a = vma_find(s, start), *b = vma_find(s, end);
        if (a && a->start < start)
                n++;
        if (b && b->start < end)
                n++;
        if (remove)
                for (uint32_t i = vma_index_after(s, start); i < s->n && s->v[i].start < end; i++)
                        n--; /* after the cuts, each overlapping mapping is one piece inside */
        return n;
}

int vma_find_gap(const struct vma_set *s, uint64_t len, uint64_t lo, uint64_t hi,
                 uint64_t *ret_addr)
{
        uint64_t at = lo;
        for (uint32_t i = vma_index_after(s, lo); i < s->n; i++) {
                if (s->v[i].start >= at && s->v[i].start - at >= len)
                        break;
                if (s->v[i].end > at)
                        at = s->v[i].end;
        }
        if (at > hi || hi - at < len)
                return -ENOSPC;
        *ret_addr = at;
        return 0;
}

int vma_insert(struct vma_set *s, const struct vma *v)
{
        int r = vma_reserve(s, s->n + 1);
        if (r < 0)
                return r;
        uint32_t i = vma_index_after(s, v->start);
        memmove(&s->v[i + 1], &s->v[i], (size_t)(s->n - i) * sizeof(*v));
        s->v[i] = *v;
        s->n++;
        s->bytes += v->end - v->start;
        return 0;
}

int vma_split(struct vma_set *s, uint64_t addr)
{
        uint32_t i = vma_index_after(s, addr);
        if (i == s->n || s->v[i].start >= addr)
                return 0; /* already a boundary, or unmapped */
        int r = vma_reserve(s, s->n + 1);
        if (r < 0)
                return r;
        memmove(&s->v[i + 1], &s->v[i], (size_t)(s->n - i) * sizeof(*s->v));
        s->n++;
        struct vma *left = &s->v[i], *right = &s->v[i + 1];
        /* Both halves keep the object; the right one starts further into it. */
        right->pgoff += (addr - left->start) >> s->page_shift;
        right->start = addr;
        left->end = addr;
        if (right->obj)
                memobj_ref(right->obj);
        return 0;
}

/* Removes the mappings with index [i, j). */
static void drop(struct vma_set *s, uint32_t i, uint32_t j, struct frames *f)
{
        if (i == j)
                return; /* nothing to drop; s->v may even be NULL */
        for (uint32_t k = i; k < j; k++) {
                s->bytes -= s->v[k].end - s->v[k].start;
                memobj_unref(s->v[k].obj, f);
        }
        memmove(&s->v[i], &s->v[j], (size_t)(s->n - j) * sizeof(*s->v));
        s->n -= j - i;
}

int vma_remove(struct vma_set *s, uint64_t start, uint64_t end, struct frames *f)
{
        int r = vma_split(s, start);
        if (r == 0)
                r = vma_split(s, end);
        if (r < 0)
                return r;
        uint32_t i = vma_index_after(s, start), j = i;
        while (j < s->n && s->v[j].end <= end)
                j++;
        drop(s, i, j, f);
        return 0;
}

/* Only anonymous private memory merges: files and devices keep their offsets apart. */
static bool mergeable(const struct vma *a, const struct vma *b)
{
        return a->end == b->start && a->prot == b->prot && a->shared == b->shared &&
               a->kind == COW_MAP_ANONYMOUS && b->kind == COW_MAP_ANONYMOUS &&
               a->obj == NULL && b->obj == NULL;
}

int vma_protect(struct vma_set *s, uint64_t start, uint64_t end, uint8_t prot)
{
        int r = vma_split(s, start);
        if (r == 0)
                r = vma_split(s, end);
        if (r < 0)
                return r;
        uint32_t i = vma_index_after(s, start);
        for (uint32_t k = i; k < s->n && s->v[k].end <= end; k++)
                s->v[k].prot = prot;

        /* Merge equal neighbours around the range so splits do not pile up. */
        uint32_t lo = i > 0 ? i - 1 : 0;
        for (uint32_t k = lo; k + 1 < s->n && s->v[k].start < end;) {
                if (mergeable(&s->v[k], &s->v[k + 1])) {
                        s->v[k].end = s->v[k + 1].end;
                        memmove(&s->v[k + 1], &s->v[k + 2], (size_t)(s->n - k - 2) * sizeof(*s->v));
                        s->n--;
                } else {
                        k++;
                }
        }
        return 0;
}
