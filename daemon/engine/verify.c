/* SPDX-License-Identifier: MIT */
/*
 * cow_engine_verify(): recomputes what the engine keeps incrementally and
 * compares. Slow on purpose: it walks every node, frame and TLB entry.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine-impl.h"
#include "memobj.h"

struct verify {
        struct cow_engine *e;
        uint32_t *refs;    /* per frame: references found */
        uint32_t *slot_refs; /* per swap slot: swap entries found */
        uint64_t frame_entries; /* leaf entries mapping a real frame, distinct leaves */
        uint64_t nodes;    /* distinct nodes found */
        uint64_t file_out; /* evicted-file-page entries, distinct leaves */
        char *msg;
        size_t msglen;
        int failed;
        const struct cow_proc *proc; /* process being walked */
};

__attribute__((format(printf, 2, 3))) static void fail(struct verify *v, const char *fmt, ...)
{
        if (v->failed)
                return; /* keep the first complaint: later ones follow from it */
        v->failed = 1;
        if (v->msg && v->msglen) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(v->msg, v->msglen, fmt, ap);
                va_end(ap);
        }
}

/* The reverse map of pfn holds (leaf, idx). */
static void check_rmap_has(struct verify *v, uint32_t pfn, const struct pt_node *leaf,
                           unsigned idx)
{
        const struct rmap *r = &v->e->rmap;
        uint64_t steps = 0;
        for (uint32_t k = v->e->frames.meta[pfn].owner; k != 0; k = r->v[k].next) {
                if (k > r->hwm || ++steps > r->live) {
                        fail(v, "the reverse map of frame %" PRIu32 " is corrupt", pfn);
                        return;
                }
                if (r->v[k].leaf == leaf && r->v[k].idx == idx)
                        return;
        }
        fail(v, "frame %" PRIu32 " is mapped by a leaf entry its reverse map lacks", pfn);
}

/* Slot counts against swap entries and the swap cache, both ways of the link. */
static void check_swap(struct verify *v)
{
        const struct swap *sw = &v->e->swap;
        const struct frames *f = &v->e->frames;
        uint64_t used = 0, free_listed = 0;
        for (uint32_t s = 0; s < sw->hwm; s++) {
                const struct swap_slot *x = &sw->s[s];
                if (x->count == 0)
                        continue;
                used++;
                uint32_t cached = x->link != 0;
                if (x->count != v->slot_refs[s] + cached)
                        fail(v, "swap slot %" PRIu32 " has count %" PRIu32 " but %" PRIu32
                                " swap entries%s", s, x->count, v->slot_refs[s],
                             cached ? " and the swap cache" : "");
                if (cached && (x->link > f->hwm || f->meta[x->link].refs == 0 ||
                               f->meta[x->link].next != s + 1))
                        fail(v, "swap slot %" PRIu32 " caches frame %" PRIu32 ", which does not"
                                " link back", s, x->link);
        }
        for (uint32_t s = 0; s < sw->hwm; s++)
                if (sw->s[s].count == 0 && v->slot_refs[s] != 0)
                        fail(v, "free swap slot %" PRIu32 " is named by %" PRIu32 " entries", s,
                             v->slot_refs[s]);
        if (used != sw->used)
                fail(v, "swap slots used is %" PRIu32 " but %" PRIu64 " have references",
                     sw->used, used);
        /* Free slots are on the free list, or on the held list while a copy reads them. */
        const uint32_t heads[2] = { sw->free_head, sw->held ? sw->held_head : 0 };
        for (unsigned h = 0; h < 2; h++) {
                for (uint32_t s = heads[h]; s != 0 && free_listed <= sw->hwm;
                     s = sw->s[s - 1].link) {
                        free_listed++;
                        if (s > sw->hwm || sw->s[s - 1].count != 0) {
                                fail(v, "the swap %s list holds slot %" PRIu32
                                        ", which is in use", h ? "held" : "free", s - 1);
                                return;
                        }
                }
        }
        if (!sw->held && sw->held_head != 0)
                fail(v, "swap slots are held with no hold in force");
        if (free_listed != sw->hwm - used)
                fail(v, "swap free and held lists hold %" PRIu64 " slots, expected %" PRIu64,
                     free_listed, sw->hwm - used);
        for (uint32_t pfn = 1; pfn <= f->hwm; pfn++) {
                uint32_t link = f->meta[pfn].next;
                if (f->meta[pfn].refs == 0 || link == 0)
                        continue;
                if (link > sw->hwm || sw->s[link - 1].link != pfn || sw->s[link - 1].count == 0)
                        fail(v, "frame %" PRIu32 " claims swap slot %" PRIu32 ", which does"
                                " not cache it", pfn, link - 1);
                else if (!(f->meta[pfn].flags & FRAME_ANON))
                        fail(v, "frame %" PRIu32 " of a memory object is in the swap cache", pfn);
        }
        if (v->frame_entries != v->e->rmap.live)
                fail(v, "the reverse map holds %" PRIu64 " entries but leaves map frames %"
                        PRIu64 " times", v->e->rmap.live, v->frame_entries);
}

/* Each distinct node: its references and counters against its contents. */
static void check_node(void *arg, const struct pt_node *n)
{
        struct verify *v = arg;
        uint64_t used = 0, pages = 0, zeros = 0, nodes = 1;

        v->nodes++;
        if (n->refs != n->scan_refs)
                fail(v, "page-table node %p (level %u) has refs %" PRIu32 " but %" PRIu32
                        " parents reference it", (const void *)n, n->level, n->refs, n->scan_refs);
        for (unsigned i = 0; i < PT_FANOUT; i++) {
                if (n->level == 0) {
                        uint64_t pte = n->pte[i];
                        if (pte == 0)
                                continue;
                        used++;
                        if (pte_is_swap(pte) && pte_swap_slot(pte) < v->e->swap.hwm &&
                            (pte & ~pte_swap_make(UINT32_MAX)) == 0) {
                                pages++;
                                v->slot_refs[pte_swap_slot(pte)]++;
                                continue;
                        }
                        if (pte_is_file_out(pte)) {
                                pages++;
                                v->file_out++;
                                continue;
                        }
                        if (!(pte & PTE_PRESENT)) {
                                fail(v, "leaf entry %#" PRIx64 " is neither empty, present nor"
                                        " a swap entry of a slot in use", pte);
                                continue;
                        }
                        uint32_t pfn = pte_pfn(pte);
                        if (pfn == FRAME_ZERO) {
                                zeros++;
                                if (pte & PTE_WRITE)
                                        fail(v, "an entry maps the zero page writable");
                                continue;
                        }
                        pages++;
                        if (pfn > v->e->frames.hwm && !frames_is_device(&v->e->frames, pfn)) {
                                fail(v, "an entry maps frame %" PRIu32 ", never allocated", pfn);
                                continue;
                        }
                        v->refs[pfn]++;
                        v->frame_entries++;
                        check_rmap_has(v, pfn, n, i);
                } else if (n->child[i]) {
                        const struct pt_node *c = n->child[i];
                        used++;
                        pages += c->pages;
                        zeros += c->zeros;
                        nodes += c->nodes;
                        if (c->level + 1 != n->level)
                                fail(v, "a level-%u node has a level-%u child", n->level, c->level);
                }
        }
        if (used != n->used || pages != n->pages || zeros != n->zeros || nodes != n->nodes)
                fail(v, "level-%u node counters used/pages/zeros/nodes %u/%" PRIu64 "/%" PRIu64
                        "/%" PRIu64 " but found %" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64,
                     n->level, n->used, n->pages, n->zeros, n->nodes, used, pages, zeros, nodes);
}

static void check_vmas(struct verify *v, const struct cow_proc *p)
{
        uint64_t mask = v->e->frames.page_size - 1, bytes = 0, prev_end = 0;
        for (uint32_t i = 0; i < p->vmas.n; i++) {
                const struct vma *m = &p->vmas.v[i];
                if (m->start >= m->end || (m->start & mask) || (m->end & mask) ||
                    m->start < prev_end || m->end > v->e->va_limit)
                        fail(v, "pid %" PRIu32 ": mapping %#" PRIx64 "-%#" PRIx64
                                " is malformed or out of order", p->pid, m->start, m->end);
                /* Object page offsets must not wrap: the object keys pgoff + 1. */
                if (m->start < m->end && m->pgoff > UINT64_MAX - 1 - ((m->end - m->start - 1) >>
                                                                     v->e->frames.page_shift))
                        fail(v, "pid %" PRIu32 ": mapping at %#" PRIx64 " has page offset %#"
                                PRIx64 ", which overflows", p->pid, m->start, m->pgoff);
                /* Shared anonymous memory and files have an object; devices and
                 * private anonymous memory none. */
                bool want_obj = m->kind == COW_MAP_FILE ||
                                (m->kind == COW_MAP_ANONYMOUS && m->shared);
                if (want_obj != (m->obj != NULL) || m->kind > COW_MAP_DEVICE ||
                    (m->kind == COW_MAP_FILE && !pc_file_of(&v->e->pc, m->obj)) ||
                    (m->kind == COW_MAP_ANONYMOUS && m->obj && m->obj->file != 0))
                        fail(v, "pid %" PRIu32 ": mapping at %#" PRIx64 " kind %u shared=%d"
                                " has the wrong object %p", p->pid, m->start, m->kind, m->shared,
                             (void *)m->obj);
                if (m->kind == COW_MAP_DEVICE &&
                    (m->device >= COW_DEV_COUNT || !m->shared ||
                     m->pgoff + ((m->end - m->start) >> v->e->frames.page_shift) >
                             v->e->dev.pages[m->device < COW_DEV_COUNT ? m->device : 0]))
                        fail(v, "pid %" PRIu32 ": device mapping at %#" PRIx64 " is not shared"
                                " or lies outside its device", p->pid, m->start);
                prev_end = m->end;
                bytes += m->end - m->start;
        }
        if (bytes != p->vmas.bytes)
                fail(v, "pid %" PRIu32 ": mappings sum to %" PRIu64 " bytes, recorded %" PRIu64,
                     p->pid, bytes, p->vmas.bytes);
}

/* Every entry of the process lies in one of its mappings and agrees with it. */
static void check_entry(void *arg, uint64_t vpn, uint64_t pte)
{
        struct verify *v = arg;
        const struct cow_proc *p = v->proc;
        uint64_t addr = vpn << v->e->frames.page_shift;
        const struct vma *m = vma_find(&p->vmas, addr);
        if (!m) {
                fail(v, "pid %" PRIu32 ": page %#" PRIx64 " is mapped in the page table but in"
                        " no mapping", p->pid, addr);
                return;
        }
        uint32_t pfn = pte_pfn(pte);
        const struct pt_node *leaf = pt_lookup_leaf(&v->e->pt, p->root, vpn);
        if (leaf->base != (vpn & ~(uint64_t)(PT_FANOUT - 1)))
                fail(v, "the leaf holding %#" PRIx64 " records base page %#" PRIx64, addr,
                     leaf->base);
        uint64_t pgoff = m->pgoff + (vpn - (m->start >> v->e->frames.page_shift));
        if (pte_is_swap(pte)) {
                if (m->shared)
                        fail(v, "pid %" PRIu32 ": shared page %#" PRIx64 " is a swap entry",
                             p->pid, addr);
                return;
        }
        if (pte_is_file_out(pte)) {
                if (m->kind != COW_MAP_FILE)
                        fail(v, "pid %" PRIu32 ": page %#" PRIx64 " is an evicted file page"
                                " outside a file mapping", p->pid, addr);
                return;
        }
        if (m->kind == COW_MAP_DEVICE) {
                if (m->device < COW_DEV_COUNT && pfn != v->e->dev.base[m->device] + pgoff)
                        fail(v, "pid %" PRIu32 ": device page %#" PRIx64 " maps frame %" PRIu32
                                ", not its device's", p->pid, addr, pfn);
                return;
        }
        if (frames_is_device(&v->e->frames, pfn)) {
                fail(v, "pid %" PRIu32 ": page %#" PRIx64 " maps device frame %" PRIu32
                        " outside a device mapping", p->pid, addr, pfn);
                return;
        }
        if ((m->shared || m->kind == COW_MAP_FILE) && !m->obj)
                return; /* reported by check_vmas() */
        const struct pc_file *file = pc_file_of(&v->e->pc, m->obj);
        if (file && pgoff >= pc_file_pages(&v->e->pc, file))
                fail(v, "pid %" PRIu32 ": page %#" PRIx64 " lies wholly beyond the end of its"
                        " file but is mapped", p->pid, addr);
        if (file && !m->shared && pfn != FRAME_ZERO &&
            !(v->e->frames.meta[pfn].flags & FRAME_ANON)) {
                /* A private file page not yet written is the page cache's own. */
                if (memobj_lookup(m->obj, pgoff) != pfn)
                        fail(v, "pid %" PRIu32 ": private file page %#" PRIx64 " maps frame %"
                                PRIu32 ", neither a copy nor its page-cache frame", p->pid,
                             addr, pfn);
                return;
        }
        if (m->shared) {
                /* An absent object page looks up as FRAME_ZERO: an entry mapping the
                 * zero page would let a write to the mapping scribble on it. */
                if (pfn == FRAME_ZERO)
                        fail(v, "pid %" PRIu32 ": shared page %#" PRIx64 " maps the zero page",
                             p->pid, addr);
                else if (memobj_lookup(m->obj, pgoff) != pfn)
                        fail(v, "pid %" PRIu32 ": shared page %#" PRIx64 " maps frame %" PRIu32
                                " but its object holds frame %" PRIu32,
                             p->pid, addr, pfn, memobj_lookup(m->obj, pgoff));
        } else if (pfn != FRAME_ZERO && !(v->e->frames.meta[pfn].flags & FRAME_ANON)) {
                fail(v, "pid %" PRIu32 ": private page %#" PRIx64 " maps non-anonymous frame %"
                        PRIu32, p->pid, addr, pfn);
        } else if (pfn != FRAME_ZERO && (pte & PTE_WRITE)) {
                /* A write bit is honoured only on a clean path (engine_write_ok()), and
                 * there it must mean the frame is this entry's alone. */
                unsigned state;
                pt_lookup(&v->e->pt, p->root, vpn, &state);
                if (state == PT_PATH_CLEAN && v->e->frames.meta[pfn].refs != 1)
                        fail(v, "pid %" PRIu32 ": private page %#" PRIx64 " is writable but"
                                " its frame %" PRIu32 " has %" PRIu32 " references", p->pid,
                             addr, pfn, v->e->frames.meta[pfn].refs);
        }
}

static void check_tlb(struct verify *v, const struct cow_proc *p)
{
        const struct cow_engine *e = v->e;
        for (uint32_t i = 0; i < p->tlb.entries; i++) {
                const struct tlb_entry *t = &p->tlb.e[i];
                if (t->stamp == 0)
                        continue;
                uint64_t addr = t->vpn << e->frames.page_shift;
                if (t->vpn >= e->pt.vpn_limit) {
                        fail(v, "pid %" PRIu32 ": TLB holds page number %#" PRIx64 ", beyond the"
                                " address space", p->pid, t->vpn);
                        continue;
                }
                if (tlb_probe(&p->tlb, t->vpn) != t || t->vpn % p->tlb.sets != i / p->tlb.ways) {
                        fail(v, "pid %" PRIu32 ": TLB entry for %#" PRIx64 " is duplicated,"
                                " misplaced or missing from its index", p->pid, addr);
                        continue;
                }
                const struct vma *m = vma_find(&p->vmas, addr);
                unsigned state;
                uint64_t pte = pt_lookup(&e->pt, p->root, t->vpn, &state);
                if (!m || !(m->prot & COW_PROT_MASK))
                        fail(v, "pid %" PRIu32 ": TLB holds %#" PRIx64 ", which is not accessible",
                             p->pid, addr);
                else if (!(pte & PTE_PRESENT) || pte_pfn(pte) != t->pfn)
                        fail(v, "pid %" PRIu32 ": TLB maps %#" PRIx64 " to frame %" PRIu32
                                " but the page table says %s %" PRIu32, p->pid, addr, t->pfn,
                             (pte & PTE_PRESENT) ? "frame" : "not present", pte_pfn(pte));
                else if (t->writable && !engine_write_ok(m, pte, state))
                        fail(v, "pid %" PRIu32 ": TLB lets %#" PRIx64 " be written but the page"
                                " table does not", p->pid, addr);
        }
}

/* Memory objects: references from mappings, and frame references they hold. */
static void check_objects(struct verify *v)
{
        struct cow_engine *e = v->e;
        uint32_t epoch = e->pt.epoch;
        /* The file table holds one reference on each page cache, mapped or not. */
        for (uint32_t i = 0; i < e->pc.cap; i++) {
                struct memobj *o = e->pc.v[i] ? e->pc.v[i]->obj : NULL;
                if (!o)
                        continue;
                if (o->file != i + 1)
                        fail(v, "file %" PRIu32 "'s page cache names slot %" PRIu32, i,
                             o->file - 1);
                o->scan_epoch = epoch;
                o->scan_refs = 1;
                for (uint32_t j = 0; j < o->cap; j++)
                        if (o->keys[j] && o->frames[j] <= e->frames.hwm)
                                v->refs[o->frames[j]]++;
        }
        for (uint32_t i = 0; i < e->procs.n; i++) {
                const struct vma_set *s = &e->procs.v[i]->vmas;
                for (uint32_t k = 0; k < s->n; k++) {
                        struct memobj *o = s->v[k].obj;
                        if (!o)
                                continue;
                        if (o->scan_epoch != epoch) {
                                /* Not a page cache (those were counted above): an
                                 * anonymous object, whose frames are its own. */
                                o->scan_epoch = epoch;
                                o->scan_refs = 0;
                                for (uint32_t j = 0; j < o->cap; j++) {
                                        uint32_t pfn = o->frames[j];
                                        if (!o->keys[j] || pfn > e->frames.hwm)
                                                continue;
                                        v->refs[pfn]++;
                                        if ((e->frames.meta[pfn].flags &
                                             (FRAME_OBJECT | FRAME_FILE)) != FRAME_OBJECT)
                                                fail(v, "shared anonymous memory holds frame %"
                                                        PRIu32 ", which is not its own", pfn);
                                }
                        }
                        o->scan_refs++;
                }
        }
        for (uint32_t i = 0; i < e->procs.n; i++) {
                const struct vma_set *s = &e->procs.v[i]->vmas;
                for (uint32_t k = 0; k < s->n; k++) {
                        const struct memobj *o = s->v[k].obj;
                        if (o && o->refs != o->scan_refs)
                                fail(v, "a memory object has %" PRIu32 " references but %" PRIu32
                                        " mappings", o->refs, o->scan_refs);
                }
        }
        for (uint32_t i = 0; i < e->pc.cap; i++) {
                const struct memobj *o = e->pc.v[i] ? e->pc.v[i]->obj : NULL;
                if (o && o->refs != o->scan_refs)
                        fail(v, "file %s's page cache has %" PRIu32 " references but %" PRIu32
                                " mappings and the file table", e->pc.v[i]->key, o->refs,
                             o->scan_refs);
        }
}

/*
 * Page-cache frames against their files: each knows its file and offset, its
 * file's cache holds it there, dirty counts add up; no file is kept for
 * nothing; evicted-file-page entries are counted right.
 */
static void check_files(struct verify *v)
{
        const struct cow_engine *e = v->e;
        const struct pagecache *pc = &e->pc;
        const struct frames *f = &e->frames;
        uint64_t pages = 0, dirty = 0, files = 0;

        for (uint32_t pfn = 1; pfn <= f->hwm; pfn++) {
                const struct frame *fr = &f->meta[pfn];
                if (fr->refs == 0)
                        continue;
                if ((fr->flags & FRAME_DIRTY) && !(fr->flags & FRAME_FILE))
                        fail(v, "frame %" PRIu32 " is dirty but not a page-cache frame", pfn);
                if (!(fr->flags & FRAME_FILE))
                        continue;
                const struct pc_back *b = &pc->back[pfn];
                pages++;
                dirty += (fr->flags & FRAME_DIRTY) != 0;
                if (!(fr->flags & FRAME_OBJECT) || (fr->flags & FRAME_ANON) || fr->next != 0 ||
                    b->file == 0 || b->file > pc->cap || !pc->v[b->file - 1] ||
                    memobj_lookup(pc->v[b->file - 1]->obj, b->pgoff) != pfn)
                        fail(v, "page-cache frame %" PRIu32 " is not where it says it is in"
                                " its file", pfn);
                else if (b->pgoff >= pc_file_pages(pc, pc->v[b->file - 1]))
                        fail(v, "page-cache frame %" PRIu32 " lies beyond its file's end", pfn);
        }
        for (uint32_t i = 0; i < pc->cap; i++) {
                const struct pc_file *file = pc->v[i];
                if (!file)
                        continue;
                files++;
                uint32_t d = 0;
                for (uint32_t j = 0; j < file->obj->cap; j++) {
                        uint32_t pfn = file->obj->frames[j];
                        if (file->obj->keys[j] == 0)
                                continue;
                        if (pfn == 0 || pfn > f->hwm || !(f->meta[pfn].flags & FRAME_FILE))
                                fail(v, "file %s caches frame %" PRIu32 ", not a page-cache"
                                        " frame", file->key, pfn);
                        else
                                d += (f->meta[pfn].flags & FRAME_DIRTY) != 0;
                }
                if (d != file->dirty)
                        fail(v, "file %s counts %" PRIu32 " dirty pages but has %" PRIu32,
                             file->key, file->dirty, d);
                if (file->obj->refs == 1 && file->dirty == 0)
                        fail(v, "file %s is held with no mapping and nothing dirty", file->key);
                if (strlen(file->key) == 0 || strlen(file->key) > pc->max_key)
                        fail(v, "file key \"%s\" is empty or too long", file->key);
        }
        if (pages != pc->pages || dirty != pc->dirty || files != pc->n || files > pc->max_files)
                fail(v, "the page cache counts %" PRIu64 " pages, %" PRIu64 " dirty, %" PRIu32
                        " files but holds %" PRIu64 ", %" PRIu64 ", %" PRIu64, pc->pages,
                     pc->dirty, pc->n, pages, dirty, files);
        if (v->file_out != e->pt.file_out)
                fail(v, "%" PRIu64 " evicted-file-page entries are counted but %" PRIu64
                        " were found", e->pt.file_out, v->file_out);
        const struct devices *d = &e->dev;
        if (d->log_cap != e->cfg.console_log_bytes)
                fail(v, "the console log has %" PRIu32 " bytes, not the configured %" PRIu32,
                     d->log_cap, e->cfg.console_log_bytes);
}

static void check_frames(struct verify *v)
{
        const struct frames *f = &v->e->frames;
        uint64_t used = 0, free_listed = 0;

        /* Device frames: referenced by leaves only, never allocated or freed. */
        for (uint32_t pfn = f->nframes + 1; pfn < frames_span(f); pfn++) {
                if (f->meta[pfn].refs != v->refs[pfn])
                        fail(v, "device frame %" PRIu32 " has refcount %" PRIu32 " but %" PRIu32
                                " references were found", pfn, f->meta[pfn].refs, v->refs[pfn]);
                if (f->meta[pfn].flags & ~(FRAME_DEVICE | FRAME_PINNED))
                        fail(v, "device frame %" PRIu32 " has flags %#x", pfn,
                             f->meta[pfn].flags);
        }

        for (uint32_t pfn = 1; pfn <= f->hwm; pfn++) {
                if (f->meta[pfn].refs != v->refs[pfn])
                        fail(v, "frame %" PRIu32 " has refcount %" PRIu32 " but %" PRIu32
                                " references were found", pfn, f->meta[pfn].refs, v->refs[pfn]);
                if (f->meta[pfn].refs)
                        used++;
        }
        if (used != f->used)
                fail(v, "frames used is %" PRIu32 " but %" PRIu64 " frames are referenced",
                     f->used, used);
        for (uint32_t pfn = f->free_head; pfn != 0 && free_listed <= f->hwm;
             pfn = f->meta[pfn].next) {
                free_listed++;
                if (f->meta[pfn].refs != 0)
                        fail(v, "frame %" PRIu32 " is on the free list with references", pfn);
        }
        if (free_listed != f->hwm - used)
                fail(v, "free list holds %" PRIu64 " frames, expected %" PRIu64, free_listed,
                     f->hwm - used);

        const uint8_t *zero = frames_data(f, FRAME_ZERO);
        for (uint32_t i = 0; i < f->page_size; i++)
                if (zero[i] != 0) {
                        fail(v, "the zero page is not zero at byte %" PRIu32, i);
                        break;
                }
}

/* A charge on frame or slot i: a live owner entry. Counts it into n. */
static void count_charge(struct verify *v, const char *what, uint32_t i, uint16_t idx,
                         uint64_t *n)
{
        if (idx > v->e->charge.n)
                fail(v, "%s %" PRIu32 " is charged to owner entry %u of %" PRIu32, what, i,
                     (unsigned)idx, v->e->charge.n);
        else
                n[idx]++;
}

/*
 * Each owner's charges equal the frames and slots charged to it, which are
 * in use (never the zero page, a device frame or a free one), and its
 * process count the processes naming its entry.
 */
static void check_charges(struct verify *v)
{
        const struct cow_engine *e = v->e;
        const struct charge *c = &e->charge;
        const struct frames *f = &e->frames;
        if (!c->on)
                return;
        uint64_t *cnt = calloc(3 * ((size_t)c->n + 1), sizeof(*cnt));
        if (!cnt) {
                fail(v, "out of memory checking charges");
                return;
        }
        uint64_t *frames = cnt, *slots = cnt + c->n + 1, *procs = cnt + 2 * (c->n + 1);

        for (uint32_t pfn = 0; pfn < frames_span(f); pfn = pfn == f->hwm ? f->nframes + 1 :
                                                           pfn + 1) {
                uint16_t idx = c->frame[pfn];
                if (c->complete && !idx && pfn != FRAME_ZERO && !frames_is_device(f, pfn) &&
                    f->meta[pfn].refs)
                        fail(v, "frame %" PRIu32 " is in use but charged to no one", pfn);
                if (idx && (pfn == FRAME_ZERO || frames_is_device(f, pfn) || !f->meta[pfn].refs))
                        fail(v, "frame %" PRIu32 " is charged but is the zero page, a device"
                                " frame or free", pfn);
                if (idx)
                        count_charge(v, "frame", pfn, idx, frames);
        }
        for (uint32_t s = 0; s < e->swap.hwm; s++) {
                uint16_t idx = c->slot[s];
                if (c->complete && !idx && e->swap.s[s].count != 0)
                        fail(v, "swap slot %" PRIu32 " is in use but charged to no one", s);
                if (idx && e->swap.s[s].count == 0)
                        fail(v, "swap slot %" PRIu32 " is charged but free", s);
                if (idx)
                        count_charge(v, "swap slot", s, idx, slots);
        }
        for (uint32_t i = 0; i < e->procs.n; i++) {
                const struct cow_proc *p = e->procs.v[i];
                if (p->charge == 0 || p->charge > c->n || c->owners[p->charge].uid != p->owner)
                        fail(v, "pid %" PRIu32 " names owner entry %u, not its uid's", p->pid,
                             (unsigned)p->charge);
                else
                        procs[p->charge]++;
        }
        for (uint32_t i = 1; i <= c->n; i++) {
                const struct charge_owner *o = &c->owners[i];
                if (o->frames != frames[i] || o->slots != slots[i] || o->procs != procs[i])
                        fail(v, "owner %" PRIu32 " is charged %" PRIu64 " frames, %" PRIu64
                                " slots, %" PRIu32 " processes but holds %" PRIu64 ", %" PRIu64
                                ", %" PRIu64, o->uid, o->frames, o->slots, o->procs, frames[i],
                             slots[i], procs[i]);
                else if (charge_find(c, o->uid) != i && (o->procs || o->frames || o->slots))
                        fail(v, "owner %" PRIu32 " has two entries", o->uid);
        }
        free(cnt);
}

int cow_engine_verify(cow_engine *e, char *msg, size_t msglen)
{
        struct verify v = { .e = e, .msg = msg, .msglen = msglen };
        struct pt_node **roots = malloc((e->procs.n + 1) * sizeof(*roots));
        v.refs = calloc(frames_span(&e->frames), sizeof(*v.refs));
        v.slot_refs = calloc((size_t)e->swap.hwm + 1, sizeof(*v.slot_refs));
        if (!roots || !v.refs || !v.slot_refs) {
                free(roots);
                free(v.refs);
                free(v.slot_refs);
                return -ENOMEM;
        }
        if (msg && msglen)
                msg[0] = '\0';

        for (uint32_t i = 0; i < e->procs.n; i++) {
                const struct cow_proc *p = e->procs.v[i];
                roots[i] = p->root;
                if (i > 0 && e->procs.v[i - 1]->pid >= p->pid)
                        fail(&v, "the process table is not sorted by pid");
                if (p->root->refs != 1 || p->root->wp)
                        fail(&v, "pid %" PRIu32 ": its root is shared or write-protected", p->pid);
                check_vmas(&v, p);
        }
        int r = pt_scan(&e->pt, roots, e->procs.n, check_node, NULL, &v);
        if (r == 0) {
                if (v.nodes != e->pt.nodes_live)
                        fail(&v, "%" PRIu64 " page-table nodes are live but %" PRIu64
                                 " are reachable", e->pt.nodes_live, v.nodes);
                check_objects(&v);
                check_frames(&v);
                check_files(&v);
                check_swap(&v);
                check_charges(&v);
                for (uint32_t i = 0; i < e->procs.n; i++) {
                        v.proc = e->procs.v[i];
                        pt_walk(&e->pt, v.proc->root, 0, e->pt.vpn_limit, check_entry, &v);
                        check_tlb(&v, v.proc);
                }
        }
        free(roots);
        free(v.refs);
        free(v.slot_refs);
        if (r < 0)
                return r;
        return v.failed ? -EUCLEAN : 0;
}
