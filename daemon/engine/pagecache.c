/* SPDX-License-Identifier: MIT */
/*
 * The page cache (pagecache.h) and the public API of file mappings that is
 * not about one mapping's creation: msync, sync_files, file_in_use.
 */
#include "pagecache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine-impl.h"

int pc_init(struct pagecache *pc, struct frames *frames, uint32_t max_files, uint32_t max_key)
{
        *pc = (struct pagecache){ .frames = frames, .max_files = max_files, .max_key = max_key };
        pc->back_len = ((size_t)frames->nframes + 1) * sizeof(*pc->back);
        void *p = mmap(NULL, pc->back_len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
                pc->back = NULL;
                return -ENOMEM;
        }
        pc->back = p;
        return 0;
}

static void file_free(struct pagecache *pc, uint32_t slot)
{
        struct pc_file *f = pc->v[slot];
        pc->pages -= f->obj->count;
        pc->dirty -= f->dirty;
        memobj_unref(f->obj, pc->frames);
        free(f->key);
        free(f);
        pc->v[slot] = NULL;
        pc->n--;
}

void pc_fini(struct pagecache *pc)
{
        for (uint32_t i = 0; i < pc->cap; i++) {
                if (pc->v[i]) {
                        /* Mappings are gone: the table's is the last reference. */
                        pc->v[i]->obj->refs = 1;
                        file_free(pc, i);
                }
        }
        free(pc->v);
        if (pc->back)
                munmap(pc->back, pc->back_len);
        pc->v = NULL;
        pc->back = NULL;
}

int pc_key_check(const struct pagecache *pc, const char *key)
{
        if (!key || key[0] == '\0')
                return -EINVAL;
        return strnlen(key, (size_t)pc->max_key + 1) > pc->max_key ? -ENAMETOOLONG : 0;
}

struct pc_file *pc_find(const struct pagecache *pc, const char *key, uint32_t *ret_slot)
{
        /* A linear scan: files are few (max_files) and looked up only at mmap. */
        for (uint32_t i = 0; i < pc->cap; i++) {
                if (pc->v[i] && strcmp(pc->v[i]->key, key) == 0) {
                        if (ret_slot)
                                *ret_slot = i;
                        return pc->v[i];
                }
        }
        return NULL;
}

int pc_insert(struct pagecache *pc, uint32_t slot, const char *key, uint64_t size,
              struct pc_file **ret)
{
        while (pc->cap <= slot) {
                uint32_t cap = pc->cap ? pc->cap * 2 : 8;
                struct pc_file **v = realloc(pc->v, cap * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                memset(v + pc->cap, 0, (cap - pc->cap) * sizeof(*v));
                pc->v = v;
                pc->cap = cap;
        }
        struct pc_file *f = calloc(1, sizeof(*f));
        if (f)
                f->key = strdup(key);
        if (f && f->key)
                f->obj = memobj_new();
        if (!f || !f->key || !f->obj) {
                if (f)
                        free(f->key);
                free(f);
                return -ENOMEM;
        }
        f->size = size;
        f->obj->file = slot + 1;
        pc->v[slot] = f;
        pc->n++;
        *ret = f;
        return 0;
}

int pc_open(struct pagecache *pc, const char *key, uint64_t size, struct memobj **ret)
{
        int r = pc_key_check(pc, key);
        if (r < 0)
                return r;
        struct pc_file *f = pc_find(pc, key, NULL);
        if (f) {
                /* The file cannot change while the engine holds it (the caller
                 * refuses), so another size means the caller lost track. */
                if (f->size != size)
                        return -EINVAL;
                memobj_ref(f->obj);
                *ret = f->obj;
                return 0;
        }
        if (pc->n >= pc->max_files)
                return -EMFILE;

        uint32_t slot = 0;
        while (slot < pc->cap && pc->v[slot])
                slot++;
        r = pc_insert(pc, slot, key, size, &f);
        if (r < 0)
                return r;
        memobj_ref(f->obj); /* the table's, and now the mapping's */
        *ret = f->obj;
        return 0;
}

uint64_t pc_file_pages(const struct pagecache *pc, const struct pc_file *f)
{
        uint64_t ps = pc->frames->page_size;
        return f->size / ps + (f->size % ps != 0);
}

/* Bytes of page pgoff that lie before the end of the file. */
static size_t page_bytes(const struct pagecache *pc, const struct pc_file *f, uint64_t pgoff)
{
        uint64_t ps = pc->frames->page_size, off = pgoff * ps;
        if (off >= f->size)
                return 0;
        return (size_t)(f->size - off < ps ? f->size - off : ps);
}

int pc_fill(struct pagecache *pc, struct memobj *o, uint64_t pgoff, uint32_t *ret_pfn)
{
        const struct pc_file *f = pc->v[o->file - 1];
        size_t want = page_bytes(pc, f, pgoff);
        uint32_t pfn;
        int r = frames_alloc(pc->frames, FRAME_OBJECT | FRAME_FILE, false, &pfn);
        if (r < 0)
                return r;
        uint8_t *page = frames_data(pc->frames, pfn);
        ssize_t n = pc->ops ? pc->ops->read(pc->ctx, f->key, pgoff * pc->frames->page_size,
                                            page, want) : -EIO;
        if (n < 0 || memobj_insert(o, pgoff, pfn) < 0) {
                if (n < 0)
                        pc->errors++;
                frames_put(pc->frames, pfn);
                return n < 0 ? (int)n : -ENOMEM;
        }
        /* Past the end of the file (or a file shorter than it was said to be): zeros. */
        size_t got = (size_t)n < want ? (size_t)n : want;
        memset(page + got, 0, pc->frames->page_size - got);
        pc->back[pfn] = (struct pc_back){ .pgoff = pgoff, .file = o->file };
        pc->pages++;
        pc->reads++;
        *ret_pfn = pfn;
        return 0;
}

void pc_mark_dirty(struct pagecache *pc, uint32_t pfn)
{
        pc->frames->meta[pfn].flags |= FRAME_DIRTY;
        pc->v[pc->back[pfn].file - 1]->dirty++;
        pc->dirty++;
}

int pc_writeback(struct pagecache *pc, uint32_t pfn)
{
        struct frame *fr = &pc->frames->meta[pfn];
        if (!(fr->flags & FRAME_DIRTY))
                return 0;
        const struct pc_back *b = &pc->back[pfn];
        struct pc_file *f = pc->v[b->file - 1];
        size_t len = page_bytes(pc, f, b->pgoff);
        int r = len == 0 ? 0 : pc->ops ? pc->ops->write(pc->ctx, f->key,
                                                        b->pgoff * pc->frames->page_size,
                                                        frames_data(pc->frames, pfn), len) :
                                         -EIO;
        if (r < 0) {
                pc->errors++;
                return r; /* still dirty: the data in memory is the truth */
        }
        fr->flags &= (uint16_t)~FRAME_DIRTY;
        f->dirty--;
        pc->dirty--;
        if (len != 0) {
                f->unsynced = true;
                pc->writebacks++;
        }
        return 0;
}

int pc_writeback_range(struct pagecache *pc, struct memobj *o, uint64_t lo, uint64_t hi,
                       uint64_t *written)
{
        const struct pc_file *f = pc_file_of(pc, o);
        if (!f || f->dirty == 0)
                return 0;
        /* Look pages up in the range or walk the cache, whichever is smaller. */
        bool by_range = hi - lo <= o->count;
        uint64_t n = by_range ? hi - lo : o->cap;
        for (uint64_t i = 0; i < n && f->dirty != 0; i++) {
                uint32_t pfn;
                if (by_range)
                        pfn = memobj_lookup(o, lo + i);
                else
                        pfn = o->keys[i] != 0 && o->keys[i] - 1 >= lo && o->keys[i] - 1 < hi ?
                              o->frames[i] : 0;
                if (pfn == 0 || !(pc->frames->meta[pfn].flags & FRAME_DIRTY))
                        continue;
                int r = pc_writeback(pc, pfn);
                if (r < 0)
                        return r;
                (*written)++;
        }
        return 0;
}

/*
 * After a failed fsync it is unknown which written pages reached the disk:
 * the kernel may have dropped them and will not say so again. So every
 * cached page of the file within it is dirtied again, and the next write-back
 * rewrites them from memory, the truth, before it syncs again.
 */
static void pc_redirty(struct pagecache *pc, struct pc_file *f)
{
        const struct memobj *o = f->obj;
        for (uint32_t i = 0; i < o->cap; i++) {
                uint32_t pfn = o->keys[i] != 0 ? o->frames[i] : 0;
                if (pfn != 0 && !(pc->frames->meta[pfn].flags & FRAME_DIRTY) &&
                    page_bytes(pc, f, o->keys[i] - 1) != 0)
                        pc_mark_dirty(pc, pfn);
        }
}

int pc_sync(struct pagecache *pc, struct pc_file *f)
{
        if (!f->unsynced)
                return 0;
        int r = pc->ops ? pc->ops->sync(pc->ctx, f->key) : -EIO;
        if (r < 0) {
                pc->errors++;
                pc_redirty(pc, f);
                return r;
        }
        f->unsynced = false;
        return 0;
}

void pc_drop(struct pagecache *pc, uint32_t pfn)
{
        const struct pc_back *b = &pc->back[pfn];
        memobj_remove(pc->v[b->file - 1]->obj, b->pgoff);
        pc->pages--;
        frames_put(pc->frames, pfn);
}

void pc_gc(struct pagecache *pc)
{
        if (pc->n == 0)
                return;
        for (uint32_t i = 0; i < pc->cap; i++)
                if (pc->v[i] && pc->v[i]->obj->refs == 1 && pc->v[i]->dirty == 0)
                        file_free(pc, i);
}

/* ---- public API -------------------------------------------------------- */

void cow_engine_set_files(cow_engine *e, const struct cow_file_ops *ops, void *ctx)
{
        e->pc.ops = ops;
        e->pc.ctx = ctx;
}

int engine_writeback(struct cow_engine *e, struct cow_proc *p, uint64_t start, uint64_t end,
                     bool sync)
{
        struct vma_set *s = &p->vmas;
        uint64_t written = 0;
        int r = 0;
        if (e->pc.dirty == 0 && !sync)
                return 0;
        for (uint32_t i = vma_index_after(s, start); i < s->n && s->v[i].start < end; i++) {
                struct vma *v = &s->v[i];
                if (v->kind != COW_MAP_FILE || !v->shared)
                        continue;
                uint64_t lo = v->start > start ? v->start : start;
                uint64_t hi = v->end < end ? v->end : end;
                uint64_t first = v->pgoff + ((lo - v->start) >> e->frames.page_shift);
                uint64_t last = v->pgoff + ((hi - v->start) >> e->frames.page_shift);
                r = pc_writeback_range(&e->pc, v->obj, first, last, &written);
                if (r == 0 && sync)
                        r = pc_sync(&e->pc, pc_file_of(&e->pc, v->obj));
                if (r < 0)
                        break;
        }
        p->writebacks += written;
        return r;
}

int cow_engine_msync(cow_engine *e, cow_pid pid, uint64_t addr, uint64_t length, bool sync)
{
        struct cow_proc *p = proc_table_find(&e->procs, pid);
        if (!p)
                return -ESRCH;
        uint64_t end;
        int r = engine_range_covered(e, p, addr, length, &end);
        return r < 0 ? r : engine_writeback(e, p, addr, end, sync);
}

int cow_engine_sync_files(cow_engine *e, bool sync)
{
        int first = 0;
        for (uint32_t i = 0; i < e->pc.cap; i++) {
                struct pc_file *f = e->pc.v[i];
                if (!f)
                        continue;
                uint64_t written = 0;
                int r = pc_writeback_range(&e->pc, f->obj, 0, UINT64_MAX, &written);
                if (r == 0 && sync)
                        r = pc_sync(&e->pc, f);
                if (r < 0 && first == 0)
                        first = r;
        }
        pc_gc(&e->pc);
        return first;
}

bool cow_engine_file_in_use(const cow_engine *e, const char *key)
{
        return key && pc_find(&e->pc, key, NULL) != NULL;
}
