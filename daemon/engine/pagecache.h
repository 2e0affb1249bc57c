/* SPDX-License-Identifier: MIT */
/*
 * The page cache: one memory object per file, named by the caller's key,
 * holding one frame per file page that is in memory. Every mapping of the
 * file, shared or private, in any process, references the object, so they
 * all find the same frame for a page (Linux's address_space). Shared
 * mappings write into those frames and mark them dirty; private ones map them
 * read-only and copy on write.
 *
 * File pages come from and go to the caller's backend (struct cow_file_ops):
 * a page is read when a fault first needs it, and written back (only its
 * bytes before the end of the file) on msync, munmap, exit, sync_files and
 * eviction. A failed write-back leaves the frame dirty.
 *
 * The table holds a reference on each file's object. A file leaves the table
 * when no mapping references it and none of its pages is dirty (pc_gc()),
 * so a file whose write-back failed stays, in use, until it succeeds.
 *
 * Each frame of the cache knows its file and page offset (pc_back, 16 bytes
 * per frame, reserved lazily like the frames), which eviction needs.
 */
#ifndef COWD_ENGINE_PAGECACHE_H
#define COWD_ENGINE_PAGECACHE_H

#include <cowd/engine.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frames.h"
#include "memobj.h"

struct pc_file {
        char *key;
        uint64_t size;       /* bytes; nothing is read or written past it */
        struct memobj *obj;  /* its pages; the table holds one reference */
        uint32_t dirty;      /* its frames marked FRAME_DIRTY */
        bool unsynced;       /* written back since it was last synced */
};

/* Per frame of the pool: which file page it holds, while it is in the cache. */
struct pc_back {
        uint64_t pgoff;
        uint32_t file; /* slot + 1 */
        uint32_t pad;
};

struct pagecache {
        struct pc_file **v;   /* slots, NULL when free */
        uint32_t cap;         /* slots allocated */
        uint32_t n;           /* files held */
        uint32_t max_files;
        uint32_t max_key;
        uint64_t pages;       /* frames in the cache, all files */
        uint64_t dirty;       /* of those, dirty */
        struct pc_back *back; /* frames.nframes + 1 entries, reserved lazily */
        size_t back_len;
        struct frames *frames;
        const struct cow_file_ops *ops;
        void *ctx;
        uint64_t writebacks;  /* pages written back */
        uint64_t reads;       /* pages read */
        uint64_t errors;      /* backend calls that failed */
};

int pc_init(struct pagecache *pc, struct frames *frames, uint32_t max_files, uint32_t max_key);

/* Releases every file and its frames, dirty or not (nothing is written). */
void pc_fini(struct pagecache *pc);

/*
 * Checks a key: 0, -EINVAL (empty) or -ENAMETOOLONG.
 */
int pc_key_check(const struct pagecache *pc, const char *key);

/* The file holding key, or NULL. */
struct pc_file *pc_find(const struct pagecache *pc, const char *key, uint32_t *ret_slot);

/*
 * Adds a file at a free slot with an empty cache holding one reference (the
 * table's), growing the table as needed. 0 or -ENOMEM.
 */
int pc_insert(struct pagecache *pc, uint32_t slot, const char *key, uint64_t size,
              struct pc_file **ret);

/*
 * The page cache of key, found or created with the given size, with one more
 * reference for the caller's mapping. Returns 0, -EINVAL (a size other than
 * the one the file has while held), -EMFILE, -ENAMETOOLONG or -ENOMEM.
 */
int pc_open(struct pagecache *pc, const char *key, uint64_t size, struct memobj **ret);

/* The file whose cache o is, or NULL for an anonymous object. */
static inline struct pc_file *pc_file_of(const struct pagecache *pc, const struct memobj *o)
{
        return o && o->file ? pc->v[o->file - 1] : NULL;
}

/* Pages of the file, the last one partly past the end included. */
uint64_t pc_file_pages(const struct pagecache *pc, const struct pc_file *f);

/*
 * Reads page pgoff of the file cached in o into a new frame, which joins the
 * cache (a free frame must be there). Bytes past the end of the file read as
 * zero. Returns 0 with the frame in *ret_pfn, or the backend's error or
 * -ENOMEM, changing nothing.
 */
int pc_fill(struct pagecache *pc, struct memobj *o, uint64_t pgoff, uint32_t *ret_pfn);

void pc_mark_dirty(struct pagecache *pc, uint32_t pfn);

/* Marks a frame just written dirty, when it is a clean page-cache frame. */
static inline void pc_dirty(struct pagecache *pc, uint32_t pfn)
{
        if ((pc->frames->meta[pfn].flags & (FRAME_FILE | FRAME_DIRTY)) == FRAME_FILE)
                pc_mark_dirty(pc, pfn);
}

/* Writes a dirty cache frame back to its file: 0 (also when clean) or the backend's error. */
int pc_writeback(struct pagecache *pc, uint32_t pfn);

/*
 * Writes back the dirty pages of the file cached in o with page offsets in
 * [lo, hi). Adds the pages written to *written. 0 or the first error.
 */
int pc_writeback_range(struct pagecache *pc, struct memobj *o, uint64_t lo, uint64_t hi,
                       uint64_t *written);

/* Syncs a file written back since its last sync: 0 or the backend's error. */
int pc_sync(struct pagecache *pc, struct pc_file *f);

/* Takes a clean frame that no entry maps any more out of the cache and frees it. */
void pc_drop(struct pagecache *pc, uint32_t pfn);

/* Lets go of files that no mapping references and that have nothing dirty. */
void pc_gc(struct pagecache *pc);

#endif /* COWD_ENGINE_PAGECACHE_H */
