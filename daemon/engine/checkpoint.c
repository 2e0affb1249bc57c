/* SPDX-License-Identifier: MIT */
/*
 * Checkpoints: the whole engine as one byte stream, and back.
 *
 * Format, version 1, all integers little-endian:
 *   "COWDCKPT" u32 version u32 CRC-32 of the 12 bytes before it
 *   u32 page_size u64 mem_bytes u32 tlb_entries u32 tlb_ways u32 CRC-32 of all so far
 *       (the two header checksums tell damage from a checkpoint of another
 *       version or configuration, which are reported before the end is read)
 *   u32 last_pid, engine counters (8 x u64)
 *   frames:  u32 hwm u32 used u32 free_head,
 *            per frame 1..hwm: u32 refs u16 flags u16 aux u32 next u32 owner,
 *            then the contents of every frame with refs > 0, in frame order
 *   objects: u32 count, per object: u32 refs u32 pages, pages x (u64 pgoff u32 frame)
 *   nodes:   u32 count, per node in breadth-first order from the roots (a parent
 *            always before its children): u8 level u8 wp u32 refs u16 entries,
 *            entries x (u16 index u64 value); the value is the entry for a leaf
 *            and the child's number for an inner node
 *   procs:   u32 count, per process: u32 pid ppid owner, name[32], u32 root,
 *            fault counters (5 x u64), TLB u64 hits misses clock and its
 *            entries x (u64 vpn u64 stamp u32 frame u8 writable),
 *            u32 mappings x (u64 start end, u8 prot shared kind, u32 object
 *            (UINT32_MAX: none), u64 pgoff)
 *   u32 CRC-32 (IEEE) of every byte before it
 *
 * Version 2 adds swap (version 1 files still load):
 *   after the counters: 6 x u64 (swap ins, outs, evictions, swap-cache hits,
 *       OOM kills, swap errors), u64 frame tick, u32 clock hand,
 *       u32 OOM victims x u32 pid
 *   per frame: u64 loaded u64 used after owner (next is the swap-cache link
 *       of a frame in use: slot + 1; owner is written as 0)
 *   after the frames: u32 slots-in-use hwm u32 free_head u32 used,
 *       per slot 0..hwm-1: u32 count u32 link, then the contents of every
 *       slot with count > 0, read through the backend at save time
 *   leaf entries may be swap entries
 *   per process, after the name: u32 TLB entries u32 ways, and after the
 *       fault counters: u64 major first_touch max_resident clock_hand u8 policy
 *
 * Version 3 adds files and devices (version 1 and 2 files still load):
 *   after the OOM victims: u32 fb_width fb_height console_log_bytes (they
 *       must match the configuration), u64 bus faults
 *   frame flags may mark page-cache frames (FRAME_FILE, FRAME_DIRTY)
 *   after the swap slots: devices: per device frame u32 refs, then per
 *       device frame u8 non-zero and, when set, its contents; the console
 *       log: u64 end, then the min(end, console_log_bytes) bytes of its ring
 *       in use
 *   then files: u64 write-backs, reads, errors, u32 count, per file: u32 slot,
 *       u16 key length, key, u64 size, u8 unsynced, u32 refs, u32 pages,
 *       pages x (u64 pgoff u32 frame); objects that follow are anonymous only
 *   leaf entries may map device frames or be evicted file pages
 *   per process, after the policy: u64 bus faults, write-backs
 *   per mapping, after kind: u8 device, u32 file slot (UINT32_MAX: none;
 *       a file mapping's object is its file's page cache)
 *
 * Version 4 adds per-owner charges (versions 1 to 3 still load):
 *   after the processes: u8 charges (0: not kept, 1: kept, 2: kept and every frame
 *       and slot in use charged); when kept: u64 frame-quota refusals,
 *       u64 swap-quota refusals, u32 owner entries, per entry u32 uid, then
 *       per frame 1..hwm u16 owner entry (0: uncharged), then per slot
 *       0..slots hwm-1 u16 owner entry
 *   Each owner's totals and process counts follow and are recomputed. An
 *   engine that keeps no charges reads past them; one that keeps charges
 *   loading a checkpoint without them starts with every frame and slot
 *   uncharged (they are charged as they are made anew), and is no longer
 *   held to every frame in use being charged.
 *
 * The reverse map and node bases follow from the page tables and are rebuilt.
 * Node counters (pages, zeros, nodes) are recomputed rather than stored. A
 * loaded state must pass cow_engine_verify() before it is accepted, so a
 * checkpoint that checksums right but lies (say, about a reference count) is
 * refused all the same.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crc32.h"
#include "engine-impl.h"
#include "memobj.h"

#define CKPT_MAGIC "COWDCKPT"
#define CKPT_VERSION 4u
#define NO_OBJECT UINT32_MAX
/*
 * While reading, counts are held only to these bounds, which no engine comes
 * near: they keep a damaged count from asking for absurd memory. The
 * configured limits are checked once the checksum has vouched for the file,
 * so that damage reads as damage and only a real misfit reads as one.
 */
#define SANE_PROCS (UINT32_C(1) << 24)
#define SANE_MAPS (UINT32_C(1) << 24)

/* Nodes are numbered ahead of being read, so their table is allocated up
 * front: its bound follows the configured budget, with room to report a
 * checkpoint a few times too large as a misfit rather than as damage. */
static uint64_t sane_nodes(const struct cow_engine *e)
{
        uint64_t four = 4 * e->pt.max_nodes;
        return four > (UINT64_C(1) << 20) ? four : UINT64_C(1) << 20;
}

/* ---- writing ----------------------------------------------------------- */

struct writer {
        cow_sink_fn sink;
        void *ctx;
        uint32_t crc;
        int err;
        size_t n;
        uint8_t buf[64 * 1024];
};

static void w_flush(struct writer *w)
{
        if (w->err == 0 && w->n > 0) {
                w->crc = crc32_update(w->crc, w->buf, w->n);
                w->err = w->sink(w->ctx, w->buf, w->n);
        }
        w->n = 0;
}

static void w_bytes(struct writer *w, const void *p, size_t len)
{
        if (len > sizeof(w->buf) / 2) {
                /* Large blocks (frame contents) go straight to the sink. */
                w_flush(w);
                if (w->err == 0) {
                        w->crc = crc32_update(w->crc, p, len);
                        w->err = w->sink(w->ctx, p, len);
                }
                return;
        }
        if (w->n + len > sizeof(w->buf))
                w_flush(w);
        memcpy(w->buf + w->n, p, len);
        w->n += len;
}

static void w_uint(struct writer *w, uint64_t v, unsigned bytes)
{
        uint8_t b[8];
        for (unsigned i = 0; i < bytes; i++)
                b[i] = (uint8_t)(v >> (8 * i));
        w_bytes(w, b, bytes);
}

#define w_u8(w, v) w_uint((w), (v), 1)
#define w_u16(w, v) w_uint((w), (v), 2)
#define w_u32(w, v) w_uint((w), (v), 4)
#define w_u64(w, v) w_uint((w), (v), 8)

struct save_nodes {
        struct writer *w;
        uint32_t next_id;
};

static void number_node(void *arg, const struct pt_node *n)
{
        struct save_nodes *s = arg;
        ((struct pt_node *)n)->save_id = s->next_id++;
}

static void write_node(void *arg, const struct pt_node *n)
{
        struct writer *w = ((struct save_nodes *)arg)->w;
        w_u8(w, n->level);
        w_u8(w, n->wp);
        w_u32(w, n->refs);
        w_u16(w, n->used);
        for (unsigned i = 0; i < PT_FANOUT && n->used != 0; i++) {
                if (n->level == 0 && n->pte[i] != 0) {
                        w_u16(w, i);
                        w_u64(w, n->pte[i]);
                } else if (n->level != 0 && n->child[i]) {
                        w_u16(w, i);
                        w_u64(w, n->child[i]->save_id);
                }
        }
}

static void write_counters(struct writer *w, const struct engine_counters *c)
{
        w_u64(w, c->cow_copies);
        w_u64(w, c->cow_reuses);
        w_u64(w, c->zero_fills);
        w_u64(w, c->zero_maps);
        w_u64(w, c->segv);
        w_u64(w, c->procs_created);
        w_u64(w, c->tlb_hits_exited);
        w_u64(w, c->tlb_misses_exited);
        w_u64(w, c->swap_ins);
        w_u64(w, c->swap_outs);
        w_u64(w, c->evictions);
        w_u64(w, c->swap_cache_hits);
        w_u64(w, c->oom_kills);
        w_u64(w, c->swap_errors);
}

static bool page_is_zero(const uint8_t *p, size_t len)
{
        for (size_t i = 0; i < len; i++)
                if (p[i] != 0)
                        return false;
        return true;
}

/* How much of the console ring holds bytes: all of it once it has wrapped. */
static uint32_t log_used(uint64_t end, uint32_t cap)
{
        return end < cap ? (uint32_t)end : cap;
}

/*
 * Device frames' references and contents (a frame never drawn on costs one
 * byte, so an unused framebuffer does not swell every checkpoint), then the
 * console log's end and the part of its ring in use. A device frame changes
 * only through an access, which sets its accessed bit (never cleared: device
 * frames are not evicted), so a frame without it is known to be zero unread.
 */
static void write_devices(struct writer *w, const struct cow_engine *e)
{
        const struct frames *f = &e->frames;
        for (uint32_t pfn = f->nframes + 1; pfn < frames_span(f); pfn++)
                w_u32(w, f->meta[pfn].refs);
        for (uint32_t pfn = f->nframes + 1; pfn < frames_span(f); pfn++) {
                const uint8_t *page = frames_data(f, pfn);
                bool zero = !(f->meta[pfn].aux & FRAME_REFERENCED) ||
                            page_is_zero(page, f->page_size);
                w_u8(w, !zero);
                if (!zero)
                        w_bytes(w, page, f->page_size);
        }
        w_u64(w, e->dev.log_end);
        w_bytes(w, e->dev.log, log_used(e->dev.log_end, e->dev.log_cap));
}

/* The file table: keys, sizes and the page cache of each. */
static void write_files(struct writer *w, const struct pagecache *pc)
{
        w_u64(w, pc->writebacks);
        w_u64(w, pc->reads);
        w_u64(w, pc->errors);
        w_u32(w, pc->n);
        for (uint32_t i = 0; i < pc->cap; i++) {
                const struct pc_file *f = pc->v[i];
                if (!f)
                        continue;
                size_t len = strlen(f->key);
                w_u32(w, i);
                w_u16(w, len);
                w_bytes(w, f->key, len);
                w_u64(w, f->size);
                w_u8(w, f->unsynced);
                w_u32(w, f->obj->refs);
                w_u32(w, f->obj->count);
                for (uint32_t j = 0; j < f->obj->cap; j++) {
                        if (f->obj->keys[j] == 0)
                                continue;
                        w_u64(w, f->obj->keys[j] - 1);
                        w_u32(w, f->obj->frames[j]);
                }
        }
}

static void write_frames(struct writer *w, const struct frames *f)
{
        w_u32(w, f->hwm);
        w_u32(w, f->used);
        w_u32(w, f->free_head);
        for (uint32_t pfn = 1; pfn <= f->hwm; pfn++) {
                const struct frame *fr = &f->meta[pfn];
                w_u32(w, fr->refs);
                w_u16(w, fr->flags);
                w_u16(w, fr->aux);
                w_u32(w, fr->next);
                w_u32(w, 0); /* the reverse map is rebuilt on load */
                w_u64(w, fr->loaded);
                w_u64(w, fr->used);
        }
        for (uint32_t pfn = 1; pfn <= f->hwm; pfn++)
                if (f->meta[pfn].refs != 0)
                        w_bytes(w, frames_data(f, pfn), f->page_size);
}

/* Slots and their contents, read through the backend. 0 or its error. */
static int write_swap(struct writer *w, struct cow_engine *e)
{
        const struct swap *sw = &e->swap;
        w_u32(w, sw->hwm);
        w_u32(w, sw->free_head);
        w_u32(w, sw->used);
        for (uint32_t s = 0; s < sw->hwm; s++) {
                w_u32(w, sw->s[s].count);
                w_u32(w, sw->s[s].link);
        }
        if (sw->used == 0)
                return 0;
        if (!sw->ops)
                return -EIO; /* pages in swap and no way to read them */
        uint8_t *page = malloc(e->frames.page_size);
        if (!page)
                return -ENOMEM;
        int r = 0;
        for (uint32_t s = 0; s < sw->hwm && r == 0; s++) {
                if (sw->s[s].count == 0)
                        continue;
                r = sw->ops->read(sw->ctx, s, page, e->frames.page_size);
                if (r < 0)
                        e->counters.swap_errors++;
                else
                        w_bytes(w, page, e->frames.page_size);
        }
        free(page);
        return r;
}

/*
 * Numbers the distinct memory objects in order of first appearance (every
 * mapping's object gets save_id) and writes them. Returns 0 or -ENOMEM.
 */
static int write_objects(struct writer *w, struct cow_engine *e)
{
        struct memobj **list = NULL;
        uint32_t count = 0, cap = 0;

        for (uint32_t i = 0; i < e->procs.n; i++) {
                const struct vma_set *s = &e->procs.v[i]->vmas;
                for (uint32_t k = 0; k < s->n; k++)
                        if (s->v[k].obj)
                                s->v[k].obj->save_id = NO_OBJECT;
        }
        for (uint32_t i = 0; i < e->procs.n; i++) {
                const struct vma_set *s = &e->procs.v[i]->vmas;
                for (uint32_t k = 0; k < s->n; k++) {
                        struct memobj *o = s->v[k].obj;
                        if (!o || o->save_id != NO_OBJECT || o->file != 0)
                                continue; /* page caches are saved with their files */
                        if (count == cap) {
                                cap = cap ? cap * 2 : 16;
                                struct memobj **l = realloc(list, cap * sizeof(*l));
                                if (!l) {
                                        free(list);
                                        return -ENOMEM;
                                }
                                list = l;
                        }
                        o->save_id = count;
                        list[count++] = o;
                }
        }

        w_u32(w, count);
        for (uint32_t id = 0; id < count; id++) {
                const struct memobj *o = list[id];
                w_u32(w, o->refs);
                w_u32(w, o->count);
                for (uint32_t j = 0; j < o->cap; j++) {
                        if (o->keys[j] == 0)
                                continue;
                        w_u64(w, o->keys[j] - 1);
                        w_u32(w, o->frames[j]);
                }
        }
        free(list);
        return 0;
}

static void write_proc(struct writer *w, const struct cow_proc *p)
{
        w_u32(w, p->pid);
        w_u32(w, p->ppid);
        w_u32(w, p->owner);
        w_bytes(w, p->name, sizeof(p->name));
        w_u32(w, p->tlb.entries);
        w_u32(w, p->tlb.ways == p->tlb.entries ? 0 : p->tlb.ways);
        w_u32(w, p->root->save_id);
        w_u64(w, p->faults.zero_map);
        w_u64(w, p->faults.zero_fill);
        w_u64(w, p->faults.cow_copy);
        w_u64(w, p->faults.cow_reuse);
        w_u64(w, p->faults.segv);
        w_u64(w, p->faults.major);
        w_u64(w, p->faults.first_touch);
        w_u64(w, p->max_resident);
        w_u64(w, p->clock_hand);
        w_u8(w, p->policy);
        w_u64(w, p->faults.bus);
        w_u64(w, p->writebacks);
        w_u64(w, p->tlb.hits);
        w_u64(w, p->tlb.misses);
        w_u64(w, p->tlb.clock);
        for (uint32_t i = 0; i < p->tlb.entries; i++) {
                const struct tlb_entry *t = &p->tlb.e[i];
                w_u64(w, t->vpn);
                w_u64(w, t->stamp);
                w_u32(w, t->pfn);
                w_u8(w, t->writable);
        }
        w_u32(w, p->vmas.n);
        for (uint32_t i = 0; i < p->vmas.n; i++) {
                const struct vma *v = &p->vmas.v[i];
                w_u64(w, v->start);
                w_u64(w, v->end);
                w_u8(w, v->prot);
                w_u8(w, v->shared);
                w_u8(w, v->kind);
                w_u8(w, v->device);
                w_u32(w, v->obj && v->obj->file ? v->obj->file - 1 : NO_OBJECT);
                w_u32(w, v->obj && !v->obj->file ? v->obj->save_id : NO_OBJECT);
                w_u64(w, v->pgoff);
        }
}

static void write_charges(struct writer *w, const struct cow_engine *e)
{
        const struct charge *c = &e->charge;
        w_u8(w, c->on ? 1 + c->complete : 0);
        if (!c->on)
                return;
        w_u64(w, c->frame_refusals);
        w_u64(w, c->slot_refusals);
        w_u32(w, c->n);
        for (uint32_t i = 1; i <= c->n; i++)
                w_u32(w, c->owners[i].uid);
        for (uint32_t pfn = 1; pfn <= e->frames.hwm; pfn++)
                w_u16(w, c->frame[pfn]);
        for (uint32_t s = 0; s < e->swap.hwm; s++)
                w_u16(w, c->slot[s]);
}

int cow_engine_save(cow_engine *e, cow_sink_fn sink, void *ctx)
{
        if (e->swap.held)
                return -EBUSY; /* see cow_engine_swap_hold() */
        struct writer *w = calloc(1, sizeof(*w));
        struct pt_node **roots = malloc((e->procs.n + 1) * sizeof(*roots));
        int r = -ENOMEM;
        if (!w || !roots)
                goto out;
        w->sink = sink;
        w->ctx = ctx;

        w_bytes(w, CKPT_MAGIC, 8);
        w_u32(w, CKPT_VERSION);
        w_flush(w);
        uint32_t version_crc = w->crc;
        w_u32(w, version_crc);
        w_u32(w, e->frames.page_size);
        w_u64(w, e->cfg.mem_bytes);
        w_u32(w, e->cfg.tlb_entries);
        w_u32(w, e->cfg.tlb_ways);
        w_flush(w);
        uint32_t header_crc = w->crc;
        w_u32(w, header_crc);
        w_u32(w, e->last_pid);
        write_counters(w, &e->counters);
        w_u64(w, e->frames.tick);
        w_u32(w, e->clock_hand);
        w_u32(w, e->oom.n);
        for (uint32_t i = 0; i < e->oom.n; i++)
                w_u32(w, e->oom.pid[i]);
        w_u32(w, e->cfg.fb_width);
        w_u32(w, e->cfg.fb_height);
        w_u32(w, e->cfg.console_log_bytes);
        w_u64(w, e->counters.bus_faults);
        write_frames(w, &e->frames);
        r = write_swap(w, e);
        if (r < 0)
                goto out;
        write_devices(w, e);
        write_files(w, &e->pc);
        r = write_objects(w, e);
        if (r < 0)
                goto out;

        for (uint32_t i = 0; i < e->procs.n; i++)
                roots[i] = e->procs.v[i]->root;
        struct save_nodes sn = { .w = w };
        r = pt_scan(&e->pt, roots, e->procs.n, number_node, NULL, &sn);
        if (r < 0)
                goto out;
        w_u32(w, sn.next_id);
        r = pt_scan(&e->pt, roots, e->procs.n, write_node, NULL, &sn);
        if (r < 0)
                goto out;

        w_u32(w, e->procs.n);
        for (uint32_t i = 0; i < e->procs.n; i++)
                write_proc(w, e->procs.v[i]);
        write_charges(w, e);

        w_flush(w);
        uint32_t crc = w->crc;
        w_u32(w, crc);
        w_flush(w);
        r = w->err;
out:
        free(roots);
        free(w);
        return r;
}

/* ---- reading ----------------------------------------------------------- */

struct reader {
        cow_source_fn source;
        void *ctx;
        uint32_t crc;
        int err;          /* first error; later reads do nothing */
        const char *why;  /* for people */
        uint32_t version;
        uint32_t swap_hwm;      /* slots the checkpoint uses */
        const char *misfit;     /* reported once the checksum vouches for the file */
        const struct cow_swap_ops *ops; /* where swapped pages are written back */
        void *swap_ctx;
};

static void r_fail(struct reader *rd, int err, const char *why)
{
        if (rd->err == 0) {
                rd->err = err;
                rd->why = why;
        }
}

static void r_bytes(struct reader *rd, void *p, size_t len)
{
        if (rd->err != 0) {
                memset(p, 0, len);
                return;
        }
        int r = rd->source(rd->ctx, p, len);
        if (r == -ENODATA) {
                r_fail(rd, -EBADMSG, "checkpoint is truncated");
        } else if (r < 0) {
                r_fail(rd, r, "reading the checkpoint failed");
        }
        if (rd->err != 0) {
                memset(p, 0, len);
                return;
        }
        rd->crc = crc32_update(rd->crc, p, len);
}

static uint64_t r_uint(struct reader *rd, unsigned bytes)
{
        uint8_t b[8];
        uint64_t v = 0;
        r_bytes(rd, b, bytes);
        for (unsigned i = 0; i < bytes; i++)
                v |= (uint64_t)b[i] << (8 * i);
        return v;
}

#define r_u8(rd) ((uint8_t)r_uint((rd), 1))
#define r_u16(rd) ((uint16_t)r_uint((rd), 2))
#define r_u32(rd) ((uint32_t)r_uint((rd), 4))
#define r_u64(rd) r_uint((rd), 8)

/* What a half-built engine holds that its normal teardown would not free. */
struct load_state {
        struct memobj **objs;
        uint32_t nobjs;
        struct pt_node **nodes;
        uint32_t nnodes;
        bool attached; /* nodes and objects now belong to processes */
};

static void read_counters(struct reader *rd, struct engine_counters *c)
{
        c->cow_copies = r_u64(rd);
        c->cow_reuses = r_u64(rd);
        c->zero_fills = r_u64(rd);
        c->zero_maps = r_u64(rd);
        c->segv = r_u64(rd);
        c->procs_created = r_u64(rd);
        c->tlb_hits_exited = r_u64(rd);
        c->tlb_misses_exited = r_u64(rd);
        if (rd->version < 2)
                return;
        c->swap_ins = r_u64(rd);
        c->swap_outs = r_u64(rd);
        c->evictions = r_u64(rd);
        c->swap_cache_hits = r_u64(rd);
        c->oom_kills = r_u64(rd);
        c->swap_errors = r_u64(rd);
}

static void read_frames(struct reader *rd, struct frames *f, uint32_t nslots)
{
        uint32_t hwm = r_u32(rd), used = r_u32(rd), free_head = r_u32(rd);
        if (hwm > f->nframes || used > hwm || free_head > hwm) {
                r_fail(rd, -EBADMSG, "checkpoint frame counts are out of range");
                return;
        }
        f->hwm = hwm;
        f->used = used;
        f->free_head = free_head;
        for (uint32_t pfn = 1; pfn <= hwm && rd->err == 0; pfn++) {
                struct frame *fr = &f->meta[pfn];
                fr->refs = r_u32(rd);
                fr->flags = r_u16(rd);
                fr->aux = r_u16(rd);
                fr->next = r_u32(rd);
                (void)r_u32(rd); /* the reverse map is rebuilt from the page tables */
                fr->owner = 0;
                if (rd->version >= 2) {
                        fr->loaded = r_u64(rd);
                        fr->used = r_u64(rd);
                }
                /* A frame in use may name a swap slot; verify checks it against the slot. */
                if ((fr->refs == 0 && fr->next > hwm) ||
                    (fr->refs != 0 && fr->next > (rd->version >= 2 ? nslots : 0)))
                        r_fail(rd, -EBADMSG, "checkpoint free list points outside memory");
        }
        for (uint32_t pfn = 1; pfn <= hwm && rd->err == 0; pfn++)
                if (f->meta[pfn].refs != 0)
                        r_bytes(rd, frames_data(f, pfn), f->page_size);
}

/*
 * The slot table, and the contents of slots in use written back through the
 * backend the caller supplied. Checked in full by cow_engine_verify().
 */
static void read_swap(struct reader *rd, struct cow_engine *e)
{
        struct swap *sw = &e->swap;
        uint32_t hwm = r_u32(rd), free_head = r_u32(rd), used = r_u32(rd);
        if (rd->err)
                return;
        if (free_head > hwm || used > hwm || hwm >= UINT32_C(1) << 31) {
                r_fail(rd, -EBADMSG, "checkpoint swap counts are out of range");
                return;
        }
        /* More slots than configured is a misfit, told once the checksum vouches
         * for the count: until then the slots are read past. */
        bool fits = hwm <= sw->nslots;
        if (!fits)
                rd->misfit = "checkpoint uses more swap slots than swap_slots allows";
        else if (used != 0 && !rd->ops)
                rd->misfit = "checkpoint has pages in swap: it needs a swap backend";
        rd->swap_hwm = hwm;
        if (fits) {
                sw->hwm = hwm;
                sw->free_head = free_head;
                sw->used = used;
        }
        uint32_t counted = 0;
        for (uint32_t s = 0; s < hwm && rd->err == 0; s++) {
                uint32_t count = r_u32(rd), link = r_u32(rd);
                counted += count != 0;
                if ((count != 0 && link > e->frames.hwm) || (count == 0 && link > hwm))
                        r_fail(rd, -EBADMSG, "checkpoint swap slot is malformed");
                if (fits)
                        sw->s[s] = (struct swap_slot){ .count = count, .link = link };
        }
        if (rd->err == 0 && counted != used)
                r_fail(rd, -EBADMSG, "checkpoint swap use does not match its slots");
        if (rd->err || used == 0)
                return;
        uint8_t *page = malloc(e->frames.page_size);
        if (!page) {
                r_fail(rd, -ENOMEM, "out of memory loading the checkpoint");
                return;
        }
        /* Without the table (a misfit), the used slots' contents follow all the same. */
        for (uint32_t s = 0, k = 0; fits ? s < hwm : k < used; s++) {
                if (rd->err)
                        break;
                if (fits && sw->s[s].count == 0)
                        continue;
                k++;
                r_bytes(rd, page, e->frames.page_size);
                int r = rd->err || rd->misfit ? 0 :
                        rd->ops->write(rd->swap_ctx, s, page, e->frames.page_size);
                if (r < 0)
                        r_fail(rd, r, "writing a swapped page back failed");
        }
        free(page);
}

/* Reads past len bytes (a section that does not fit the configuration). */
static void r_skip(struct reader *rd, uint64_t len)
{
        uint8_t scratch[4096];
        while (len > 0 && rd->err == 0) {
                size_t chunk = len < sizeof(scratch) ? (size_t)len : sizeof(scratch);
                r_bytes(rd, scratch, chunk);
                len -= chunk;
        }
}

/*
 * Device frames' references and contents, and the console log. With another
 * geometry (a misfit, told once the checksum vouches for the file), the
 * section is read past by the checkpoint's own sizes.
 */
static void read_devices(struct reader *rd, struct cow_engine *e, uint32_t fb_width,
                         uint32_t fb_height, uint32_t log_bytes)
{
        struct frames *f = &e->frames;
        if (rd->misfit) {
                struct cow_engine_config other = e->cfg;
                other.fb_width = fb_width;
                other.fb_height = fb_height;
                other.console_log_bytes = log_bytes;
                if (cow_engine_config_check(&other, NULL) < 0) {
                        r_fail(rd, -EBADMSG, "checkpoint device geometry is out of range");
                        return;
                }
                uint64_t ndev = dev_frames_needed(&other);
                r_skip(rd, ndev * 4);
                for (uint64_t i = 0; i < ndev && rd->err == 0; i++)
                        if (r_u8(rd))
                                r_skip(rd, f->page_size);
                r_skip(rd, log_used(r_u64(rd), log_bytes));
                return;
        }
        for (uint32_t pfn = f->nframes + 1; pfn < frames_span(f) && rd->err == 0; pfn++)
                f->meta[pfn].refs = r_u32(rd); /* checked against the leaves by verify */
        for (uint32_t pfn = f->nframes + 1; pfn < frames_span(f) && rd->err == 0; pfn++) {
                unsigned nonzero = r_u8(rd);
                if (nonzero > 1)
                        r_fail(rd, -EBADMSG, "checkpoint device frame is malformed");
                else if (nonzero) {
                        r_bytes(rd, frames_data(f, pfn), f->page_size);
                        f->meta[pfn].aux |= FRAME_REFERENCED; /* saved again next time */
                }
        }
        e->dev.log_end = r_u64(rd);
        r_bytes(rd, e->dev.log, log_used(e->dev.log_end, e->dev.log_cap));
}

/*
 * The file table. Each file's page cache is rebuilt with the frames' back
 * references; dirty counts follow from the frames' flags.
 */
static void read_files(struct reader *rd, struct cow_engine *e)
{
        struct pagecache *pc = &e->pc;
        pc->writebacks = r_u64(rd);
        pc->reads = r_u64(rd);
        pc->errors = r_u64(rd);
        uint32_t n = r_u32(rd);
        if (rd->err)
                return;
        if (n > 65536) {
                r_fail(rd, -EBADMSG, "checkpoint file count is not believable");
                return;
        }
        if (n > pc->max_files)
                rd->misfit = "checkpoint holds more files than max_files allows";
        for (uint32_t i = 0; i < n && rd->err == 0; i++) {
                uint32_t slot = r_u32(rd);
                unsigned len = r_u16(rd);
                char key[COW_FILE_KEY_MAX + 1];
                if (rd->err)
                        return;
                if (slot >= 65536 || len == 0 || len > COW_FILE_KEY_MAX ||
                    (slot < pc->cap && pc->v[slot])) {
                        r_fail(rd, -EBADMSG, "checkpoint file is malformed");
                        return;
                }
                r_bytes(rd, key, len);
                key[len] = '\0';
                if (strlen(key) != len || pc_find(pc, key, NULL)) {
                        r_fail(rd, -EBADMSG, "checkpoint file key is malformed or repeated");
                        return;
                }
                if (len > pc->max_key)
                        rd->misfit = "checkpoint holds a file key longer than max_file_key";
                struct pc_file *f;
                if (pc_insert(pc, slot, key, 0, &f) < 0) {
                        r_fail(rd, -ENOMEM, "out of memory loading the checkpoint");
                        return;
                }
                f->size = r_u64(rd);
                f->unsynced = r_u8(rd) != 0;
                f->obj->refs = r_u32(rd);
                uint32_t pages = r_u32(rd);
                if (pages > e->frames.hwm || f->size > COW_FILE_SIZE_MAX) {
                        r_fail(rd, -EBADMSG, "checkpoint file holds more pages than memory");
                        return;
                }
                for (uint32_t k = 0; k < pages && rd->err == 0; k++) {
                        uint64_t pgoff = r_u64(rd);
                        uint32_t pfn = r_u32(rd);
                        if (pfn == 0 || pfn > e->frames.hwm || pgoff == UINT64_MAX ||
                            memobj_lookup(f->obj, pgoff) != 0 ||
                            !(e->frames.meta[pfn].flags & FRAME_FILE)) {
                                r_fail(rd, -EBADMSG, "checkpoint file page is malformed");
                        } else if (memobj_insert(f->obj, pgoff, pfn) < 0) {
                                r_fail(rd, -ENOMEM, "out of memory loading the checkpoint");
                        } else {
                                pc->back[pfn] = (struct pc_back){ .pgoff = pgoff,
                                                                  .file = slot + 1 };
                                pc->pages++;
                                if (e->frames.meta[pfn].flags & FRAME_DIRTY) {
                                        f->dirty++;
                                        pc->dirty++;
                                }
                        }
                }
        }
}

static void read_objects(struct reader *rd, struct cow_engine *e, struct load_state *ls)
{
        uint32_t n = r_u32(rd);
        /* Grown as objects arrive: a damaged count runs into the end instead. */
        for (uint32_t i = 0, cap = 0; i < n && rd->err == 0; i++) {
                if (ls->nobjs == cap) {
                        cap = cap ? cap * 2 : 16;
                        struct memobj **objs = realloc(ls->objs, cap * sizeof(*objs));
                        if (!objs) {
                                r_fail(rd, -ENOMEM, "out of memory loading the checkpoint");
                                return;
                        }
                        ls->objs = objs;
                }
                struct memobj *o = memobj_new();
                if (!o) {
                        r_fail(rd, -ENOMEM, "out of memory loading the checkpoint");
                        return;
                }
                ls->objs[ls->nobjs++] = o;
                o->refs = r_u32(rd);
                uint32_t pages = r_u32(rd);
                if (pages > e->frames.hwm) {
                        r_fail(rd, -EBADMSG, "checkpoint object holds more pages than memory");
                        return;
                }
                for (uint32_t k = 0; k < pages && rd->err == 0; k++) {
                        uint64_t pgoff = r_u64(rd);
                        uint32_t pfn = r_u32(rd);
                        if (pfn == 0 || pfn > e->frames.hwm || pgoff == UINT64_MAX ||
                            memobj_lookup(o, pgoff) != 0)
                                r_fail(rd, -EBADMSG, "checkpoint object page is malformed");
                        else if (memobj_insert(o, pgoff, pfn) < 0)
                                r_fail(rd, -ENOMEM, "out of memory loading the checkpoint");
                }
        }
}

static struct pt_node *node_by_id(struct cow_engine *e, struct load_state *ls, uint64_t id,
                                  unsigned level)
{
        if (id >= ls->nnodes)
                return NULL;
        if (!ls->nodes[id])
                ls->nodes[id] = pt_node_new(&e->pt, level);
        return ls->nodes[id]->level == level ? ls->nodes[id] : NULL;
}

static void read_nodes(struct reader *rd, struct cow_engine *e, struct load_state *ls)
{
        uint32_t n = r_u32(rd);
        if (rd->err)
                return;
        if (n > sane_nodes(e)) {
                r_fail(rd, -EBADMSG, "checkpoint node count is not believable");
                return;
        }
        ls->nodes = calloc(n ? n : 1, sizeof(*ls->nodes));
        if (!ls->nodes) {
                r_fail(rd, -ENOMEM, "out of memory loading the checkpoint");
                return;
        }
        ls->nnodes = n;
        for (uint32_t id = 0; id < n && rd->err == 0; id++) {
                unsigned level = r_u8(rd), wp = r_u8(rd);
                uint32_t refs = r_u32(rd);
                unsigned used = r_u16(rd);
                struct pt_node *node = level < e->pt.levels ? node_by_id(e, ls, id, level) : NULL;
                if (!node || used > PT_FANOUT || wp > 1) {
                        r_fail(rd, -EBADMSG, "checkpoint page-table node is malformed");
                        return;
                }
                node->refs = refs;
                node->wp = (uint8_t)wp;
                for (unsigned k = 0; k < used && rd->err == 0; k++) {
                        unsigned i = r_u16(rd);
                        uint64_t value = r_u64(rd);
                        if (i >= PT_FANOUT || node->pte[i] != 0) {
                                r_fail(rd, -EBADMSG, "checkpoint entry index is out of range"
                                                     " or repeated");
                        } else if (level == 0) {
                                bool swap_ok = pte_is_swap(value) && rd->version >= 2 &&
                                               pte_swap_slot(value) < rd->swap_hwm &&
                                               (value & ~pte_swap_make(UINT32_MAX)) == 0;
                                bool v3_ok = rd->version >= 3 &&
                                             (pte_is_file_out(value) ||
                                              ((value & PTE_PRESENT) &&
                                               pte_pfn(value) < frames_span(&e->frames)));
                                if (!swap_ok && !v3_ok && (pte_pfn(value) > e->frames.hwm ||
                                                           !(value & PTE_PRESENT)))
                                        r_fail(rd, -EBADMSG, "checkpoint entry maps no frame");
                                node->pte[i] = value;
                        } else {
                                /* A parent comes before its children: ids only go forward. */
                                struct pt_node *child = value > id ?
                                        node_by_id(e, ls, value, level - 1) : NULL;
                                if (!child)
                                        r_fail(rd, -EBADMSG, "checkpoint node has a bad child");
                                node->child[i] = child;
                        }
                }
        }
        /* Children come after parents, so recounting backwards sees children first. */
        for (uint32_t id = n; id-- > 0 && rd->err == 0;) {
                if (!ls->nodes[id])
                        r_fail(rd, -EBADMSG, "checkpoint references a node it does not hold");
                else
                        pt_node_recount(ls->nodes[id]);
        }
}

static void read_proc(struct reader *rd, struct cow_engine *e, struct load_state *ls,
                      struct cow_proc *p)
{
        p->pid = r_u32(rd);
        p->ppid = r_u32(rd);
        p->owner = r_u32(rd);
        r_bytes(rd, p->name, sizeof(p->name));
        p->name[COW_NAME_MAX] = '\0';
        if (rd->version >= 2) {
                uint32_t entries = r_u32(rd), ways = r_u32(rd);
                if (rd->err)
                        return;
                if (entries == 0 || entries > 1u << 20 || (ways != 0 &&
                    (ways > entries || entries % ways != 0))) {
                        r_fail(rd, -EBADMSG, "checkpoint process has a bad TLB shape");
                        return;
                }
                if (entries != p->tlb.entries || (ways ? ways : entries) != p->tlb.ways) {
                        struct tlb t;
                        if (tlb_init(&t, entries, ways) < 0) {
                                r_fail(rd, -ENOMEM, "out of memory loading the checkpoint");
                                return;
                        }
                        tlb_fini(&p->tlb);
                        p->tlb = t;
                }
        }
        uint32_t root = r_u32(rd);
        if (root >= ls->nnodes || !ls->nodes[root] || ls->nodes[root]->level != e->pt.levels - 1) {
                r_fail(rd, -EBADMSG, "checkpoint process has a bad page-table root");
                return;
        }
        p->root = ls->nodes[root];
        p->faults.zero_map = r_u64(rd);
        p->faults.zero_fill = r_u64(rd);
        p->faults.cow_copy = r_u64(rd);
        p->faults.cow_reuse = r_u64(rd);
        p->faults.segv = r_u64(rd);
        p->policy = e->cfg.policy;
        if (rd->version >= 2) {
                p->faults.major = r_u64(rd);
                p->faults.first_touch = r_u64(rd);
                p->max_resident = r_u64(rd);
                p->clock_hand = r_u64(rd);
                p->policy = (enum cow_policy)r_u8(rd);
                if (!cow_policy_name(p->policy))
                        r_fail(rd, -EBADMSG, "checkpoint process has an unknown policy");
        }
        if (rd->version >= 3) {
                p->faults.bus = r_u64(rd);
                p->writebacks = r_u64(rd);
        }
        p->tlb.hits = r_u64(rd);
        p->tlb.misses = r_u64(rd);
        p->tlb.clock = r_u64(rd);
        for (uint32_t i = 0; i < p->tlb.entries; i++) {
                struct tlb_entry *t = &p->tlb.e[i];
                t->vpn = r_u64(rd);
                t->stamp = r_u64(rd);
                t->pfn = r_u32(rd);
                t->writable = r_u8(rd) != 0;
        }
        tlb_reindex(&p->tlb);
        uint32_t nmaps = r_u32(rd);
        if (nmaps > SANE_MAPS) {
                r_fail(rd, -EBADMSG, "checkpoint mapping count is not believable");
                return;
        }
        for (uint32_t i = 0; i < nmaps && rd->err == 0; i++) {
                struct vma v = { 0 };
                v.start = r_u64(rd);
                v.end = r_u64(rd);
                v.prot = r_u8(rd);
                v.shared = r_u8(rd) != 0;
                v.kind = r_u8(rd);
                uint32_t file = NO_OBJECT;
                if (rd->version >= 3) {
                        v.device = r_u8(rd);
                        file = r_u32(rd);
                }
                uint32_t obj = r_u32(rd);
                v.pgoff = r_u64(rd);
                if (file != NO_OBJECT) {
                        if (file >= e->pc.cap || !e->pc.v[file] || obj != NO_OBJECT) {
                                r_fail(rd, -EBADMSG, "checkpoint mapping names no file");
                                return;
                        }
                        v.obj = e->pc.v[file]->obj;
                } else if (obj != NO_OBJECT) {
                        if (obj >= ls->nobjs) {
                                r_fail(rd, -EBADMSG, "checkpoint mapping names no object");
                                return;
                        }
                        v.obj = ls->objs[obj];
                }
                /* Order and overlap are checked by cow_engine_verify() afterwards. */
                /* The kind, object and device agree; cow_engine_verify() checks the rest. */
                bool want_obj = v.kind == COW_MAP_FILE || (v.kind == COW_MAP_ANONYMOUS && v.shared);
                bool file_ok = (v.kind == COW_MAP_FILE) == (file != NO_OBJECT);
                if (v.start >= v.end || v.prot & ~COW_PROT_MASK || want_obj != (v.obj != NULL) ||
                    !file_ok || v.kind > (rd->version >= 3 ? COW_MAP_DEVICE : COW_MAP_ANONYMOUS) ||
                    (v.kind == COW_MAP_DEVICE && (v.device >= COW_DEV_COUNT || !v.shared)) ||
                    (p->vmas.n && p->vmas.v[p->vmas.n - 1].end > v.start)) {
                        r_fail(rd, -EBADMSG, "checkpoint mapping is malformed");
                        return;
                }
                if (vma_insert(&p->vmas, &v) < 0)
                        r_fail(rd, -ENOMEM, "out of memory loading the checkpoint");
        }
}

static void read_procs(struct reader *rd, struct cow_engine *e, struct load_state *ls)
{
        uint32_t n = r_u32(rd);
        if (rd->err)
                return;
        if (n > SANE_PROCS) {
                r_fail(rd, -EBADMSG, "checkpoint process count is not believable");
                return;
        }
        /* From here on, processes own the nodes and objects they reference. */
        for (uint32_t i = 0; i < n && rd->err == 0; i++) {
                struct cow_proc *p = calloc(1, sizeof(*p));
                if (!p || tlb_init(&p->tlb, e->cfg.tlb_entries, e->cfg.tlb_ways) < 0 ||
                    proc_table_append(&e->procs, p) < 0) {
                        if (p)
                                tlb_fini(&p->tlb);
                        free(p);
                        r_fail(rd, -ENOMEM, "out of memory loading the checkpoint");
                        return;
                }
                p->vmas.page_shift = e->frames.page_shift;
                read_proc(rd, e, ls, p);
                if (rd->err == 0 && (p->pid == 0 || p->pid > e->last_pid ||
                                     (i > 0 && e->procs.v[i - 1]->pid >= p->pid)))
                        r_fail(rd, -EBADMSG, "checkpoint process ids are out of order");
        }
}

/* One owner entry per charged frame or slot: counted into its owner's total. */
static uint16_t read_charge(struct reader *rd, uint32_t n, bool keep, uint64_t *total_of)
{
        uint16_t idx = r_u16(rd);
        if (idx > n) {
                r_fail(rd, -EBADMSG, "checkpoint charges name an owner it does not list");
                return 0;
        }
        if (!keep || idx == 0)
                return 0;
        total_of[idx]++;
        return idx;
}

/*
 * The owners' charges. Totals are recomputed from the frames and slots; a
 * charge on a frame or slot not in use is caught by cow_engine_verify().
 */
static void read_charges(struct reader *rd, struct cow_engine *e)
{
        struct charge *c = &e->charge;
        uint8_t kept = r_u8(rd);
        c->complete = false;
        if (rd->err == 0 && kept > 2)
                r_fail(rd, -EBADMSG, "checkpoint charges are malformed");
        if (rd->err || kept == 0)
                return;
        uint64_t frame_refusals = r_u64(rd), slot_refusals = r_u64(rd);
        uint32_t n = r_u32(rd);
        if (rd->err == 0 && n > CHARGE_OWNERS_MAX)
                r_fail(rd, -EBADMSG, "checkpoint lists too many owners");
        if (rd->err)
                return;
        bool keep = c->on;
        if (keep) {
                c->owners = calloc((size_t)n + 1, sizeof(*c->owners));
                if (!c->owners) {
                        r_fail(rd, -ENOMEM, "out of memory loading the checkpoint");
                        return;
                }
                c->n = n;
                c->cap = n + 1;
                c->frame_refusals = frame_refusals;
                c->slot_refusals = slot_refusals;
                c->complete = kept == 2; /* cow_engine_verify() holds it to that */
        }
        for (uint32_t i = 1; i <= n && rd->err == 0; i++) {
                uint32_t uid = r_u32(rd);
                if (keep)
                        c->owners[i].uid = uid;
        }
        /* Totals are tallied in a scratch array so that a bad index cannot
         * land outside the owner table. */
        uint64_t *frames = keep ? calloc((size_t)n + 1, sizeof(*frames)) : NULL;
        uint64_t *slots = keep ? calloc((size_t)n + 1, sizeof(*slots)) : NULL;
        if (keep && (!frames || !slots)) {
                free(frames);
                free(slots);
                r_fail(rd, -ENOMEM, "out of memory loading the checkpoint");
                return;
        }
        for (uint32_t pfn = 1; pfn <= e->frames.hwm && rd->err == 0; pfn++) {
                uint16_t idx = read_charge(rd, n, keep, frames);
                if (keep)
                        c->frame[pfn] = idx;
        }
        bool slots_fit = rd->swap_hwm <= e->swap.nslots;
        for (uint32_t s = 0; s < rd->swap_hwm && rd->err == 0; s++) {
                uint16_t idx = read_charge(rd, n, keep && slots_fit, slots);
                if (keep && slots_fit)
                        c->slot[s] = idx;
        }
        for (uint32_t i = 1; keep && i <= n; i++) {
                c->owners[i].frames = frames[i];
                c->owners[i].slots = slots[i];
        }
        free(frames);
        free(slots);
}

/* Each loaded process joins its owner's entry. */
static void attach_procs(struct reader *rd, struct cow_engine *e)
{
        for (uint32_t i = 0; i < e->procs.n && rd->err == 0; i++) {
                struct cow_proc *p = e->procs.v[i];
                if (charge_attach(&e->charge, p->owner, &p->charge) < 0)
                        r_fail(rd, -EINVAL, "checkpoint has more owners than the engine holds");
        }
}

/* The configured limits, checked once the checksum vouches for what was read. */
static void check_fits(struct reader *rd, const struct cow_engine *e)
{
        if (e->procs.n > e->cfg.max_procs)
                r_fail(rd, -EINVAL, "checkpoint has more processes than max_procs allows");
        else if (e->pt.nodes_live > e->pt.max_nodes)
                r_fail(rd, -EINVAL, "checkpoint page tables exceed max_pt_bytes");
        for (uint32_t i = 0; i < e->procs.n && rd->err == 0; i++)
                if (e->procs.v[i]->vmas.n > e->cfg.max_maps_per_proc)
                        r_fail(rd, -EINVAL, "checkpoint process has more mappings than"
                                            " max_maps_per_proc allows");
}

/* Every object must belong to some mapping: an orphan would never be freed. */
static void check_objects_used(struct reader *rd, struct cow_engine *e, struct load_state *ls)
{
        for (uint32_t i = 0; i < ls->nobjs; i++)
                ls->objs[i]->save_id = 0;
        for (uint32_t i = 0; i < e->procs.n; i++) {
                const struct vma_set *s = &e->procs.v[i]->vmas;
                for (uint32_t k = 0; k < s->n; k++)
                        if (s->v[k].obj)
                                s->v[k].obj->save_id++;
        }
        for (uint32_t i = 0; i < ls->nobjs; i++)
                if (ls->objs[i]->save_id == 0)
                        r_fail(rd, -EBADMSG, "checkpoint holds a memory object no mapping uses");
}

/* Frees what a failed load built, without trusting any reference count in it. */
static void load_discard(struct cow_engine *e, struct load_state *ls)
{
        struct pagecache *pc = &e->pc;
        for (uint32_t i = 0; i < pc->cap; i++) {
                struct pc_file *f = pc->v[i];
                if (!f)
                        continue;
                free(f->obj->keys);
                free(f->obj->frames);
                free(f->obj);
                free(f->key);
                free(f);
                pc->v[i] = NULL;
        }
        pc->n = 0;
        for (uint32_t i = 0; i < e->procs.n; i++) {
                struct cow_proc *p = e->procs.v[i];
                p->root = NULL;
                for (uint32_t k = 0; k < p->vmas.n; k++)
                        p->vmas.v[k].obj = NULL;
        }
        for (uint32_t i = 0; i < ls->nnodes; i++)
                if (ls->nodes[i])
                        pt_node_discard(&e->pt, ls->nodes[i]);
        for (uint32_t i = 0; i < ls->nobjs; i++) {
                free(ls->objs[i]->keys);
                free(ls->objs[i]->frames);
                free(ls->objs[i]);
        }
        free(ls->nodes);
        free(ls->objs);
        cow_engine_free(e);
}

static void rmap_leaf(void *arg, const struct pt_node *leaf)
{
        struct cow_engine *e = arg;
        /* pt_scan() hands leaves out read-only; the map keeps them to change later. */
        struct pt_node *l = (struct pt_node *)leaf;
        for (unsigned i = 0; i < PT_FANOUT && leaf->used != 0; i++) {
                if (pte_has_frame(leaf->pte[i]))
                        rmap_add(&e->rmap, &e->frames, pte_pfn(leaf->pte[i]), l, i);
                e->pt.file_out += pte_is_file_out(leaf->pte[i]);
        }
}

/* Node bases and the reverse map follow from the page tables: rebuilt, not stored. */
static int rebuild_rmap(struct cow_engine *e)
{
        struct pt_node **roots = malloc((e->procs.n + 1) * sizeof(*roots));
        if (!roots)
                return -ENOMEM;
        for (uint32_t i = 0; i < e->procs.n; i++) {
                roots[i] = e->procs.v[i]->root;
                pt_set_bases(&e->pt, roots[i]);
        }
        int r = pt_scan(&e->pt, roots, e->procs.n, NULL, rmap_leaf, e);
        free(roots);
        return r;
}

int cow_engine_load(const struct cow_engine_config *cfg, cow_source_fn source, void *ctx,
                    cow_engine **ret, const char **ret_why)
{
        return cow_engine_load_swap(cfg, source, ctx, NULL, NULL, ret, ret_why);
}

int cow_engine_load_swap(const struct cow_engine_config *cfg, cow_source_fn source, void *ctx,
                         const struct cow_swap_ops *ops, void *swap_ctx, cow_engine **ret,
                         const char **ret_why)
{
        struct reader rd = { .source = source, .ctx = ctx, .ops = ops, .swap_ctx = swap_ctx };
        struct load_state ls = { 0 };
        struct cow_engine *e = NULL;
        char magic[8];

        r_bytes(&rd, magic, sizeof(magic));
        if (rd.err == 0 && memcmp(magic, CKPT_MAGIC, sizeof(magic)) != 0)
                r_fail(&rd, -EBADMSG, "not a cowd checkpoint (bad magic)");
        uint32_t version = r_u32(&rd);
        uint32_t version_crc = rd.crc;
        if (r_u32(&rd) != version_crc && rd.err == 0)
                r_fail(&rd, -EBADMSG, "checkpoint header is damaged (checksum mismatch)");
        rd.version = version;
        if (rd.err == 0 && (version < 1 || version > CKPT_VERSION))
                r_fail(&rd, -EPROTONOSUPPORT, "checkpoint format version is not supported");
        uint32_t page_size = r_u32(&rd);
        uint64_t mem_bytes = r_u64(&rd);
        uint32_t tlb_entries = r_u32(&rd), tlb_ways = r_u32(&rd);
        uint32_t header_crc = rd.crc;
        if (r_u32(&rd) != header_crc && rd.err == 0)
                r_fail(&rd, -EBADMSG, "checkpoint header is damaged (checksum mismatch)");
        if (rd.err == 0 && (page_size != cfg->page_size || mem_bytes != cfg->mem_bytes ||
                            tlb_entries != cfg->tlb_entries || tlb_ways != cfg->tlb_ways))
                r_fail(&rd, -EINVAL, "checkpoint memory size, page size or TLB shape differs"
                                     " from the configuration");
        if (rd.err == 0) {
                int r = cow_engine_new(cfg, &e);
                if (r < 0)
                        r_fail(&rd, r, "cannot create an engine for the checkpoint");
        }
        if (rd.err == 0) {
                e->last_pid = r_u32(&rd);
                read_counters(&rd, &e->counters);
                if (version >= 2) {
                        e->frames.tick = r_u64(&rd);
                        e->clock_hand = r_u32(&rd);
                        uint32_t n = r_u32(&rd);
                        if (n > OOM_VICTIMS_MAX)
                                r_fail(&rd, -EBADMSG, "checkpoint OOM log is too long");
                        for (uint32_t i = 0; i < n && rd.err == 0; i++)
                                e->oom.pid[e->oom.n++] = r_u32(&rd);
                }
                uint32_t fb_width = 0, fb_height = 0, log_bytes = 0;
                if (version >= 3) {
                        fb_width = r_u32(&rd);
                        fb_height = r_u32(&rd);
                        log_bytes = r_u32(&rd);
                        if (rd.err == 0 && (fb_width != cfg->fb_width ||
                                            fb_height != cfg->fb_height ||
                                            log_bytes != cfg->console_log_bytes))
                                rd.misfit = "checkpoint framebuffer geometry or console log"
                                            " size differs from the configuration";
                        e->counters.bus_faults = r_u64(&rd);
                }
                read_frames(&rd, &e->frames, e->swap.nslots);
                if (version >= 2)
                        read_swap(&rd, e);
                if (version >= 3) {
                        read_devices(&rd, e, fb_width, fb_height, log_bytes);
                        read_files(&rd, e);
                }
                read_objects(&rd, e, &ls);
                read_nodes(&rd, e, &ls);
                read_procs(&rd, e, &ls);
                if (version >= 4)
                        read_charges(&rd, e);
                else
                        e->charge.complete = false;
                if (rd.err == 0)
                        check_objects_used(&rd, e, &ls);
        }
        uint32_t crc = rd.crc, stored = r_u32(&rd);
        if (rd.err == 0 && crc != stored)
                r_fail(&rd, -EBADMSG, "checkpoint checksum does not match its contents");
        if (rd.err == 0) {
                uint8_t extra;
                int r = source(ctx, &extra, 1);
                if (r != -ENODATA)
                        r_fail(&rd, r < 0 ? r : -EBADMSG, "checkpoint has bytes after its end");
        }
        if (rd.err == 0 && rd.misfit)
                r_fail(&rd, -EINVAL, rd.misfit);
        if (rd.err == 0)
                check_fits(&rd, e);
        if (rd.err == 0)
                attach_procs(&rd, e);
        if (rd.err == 0 && rebuild_rmap(e) < 0)
                r_fail(&rd, -ENOMEM, "out of memory loading the checkpoint");
        if (rd.err == 0 && ops)
                cow_engine_set_swap(e, ops, swap_ctx);
        if (rd.err == 0 && cow_engine_verify(e, NULL, 0) != 0)
                r_fail(&rd, -EBADMSG, "checkpoint contents break the engine's invariants");

        if (rd.err != 0) {
                if (e)
                        load_discard(e, &ls);
                if (ret_why)
                        *ret_why = rd.why;
                return rd.err;
        }
        free(ls.nodes);
        free(ls.objs);
        e->generation++;
        *ret = e;
        return 0;
}
