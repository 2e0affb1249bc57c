/* SPDX-License-Identifier: MIT */
/*
 * Simulated physical memory: a pool of page frames with reference counts.
 *
 * Frame 0 is the zero page: always zero, never writable, never freed and never
 * counted as used. Frames 1..nframes are handed out by frames_alloc(). Both the
 * frame contents and the metadata are reserved lazily from the host (anonymous
 * MAP_NORESERVE mappings), so frames never touched cost the host nothing and a
 * large simulated memory starts instantly.
 *
 * Device frames (the framebuffer, the console) follow the pool, numbered
 * nframes + 1 onwards: frames_data() and the metadata reach them like any
 * frame, but they are never allocated, freed or counted as used, and their
 * reference count is only the leaf entries mapping them.
 */
#ifndef COWD_ENGINE_FRAMES_H
#define COWD_ENGINE_FRAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FRAME_ZERO 0u

enum frame_flags {
        FRAME_ANON = 1u << 0,   /* private anonymous data: may be reused by a COW fault */
        FRAME_OBJECT = 1u << 1, /* belongs to a memory object (shared mapping, page cache) */
        FRAME_PINNED = 1u << 2, /* in use by the access under way: not to be evicted */
        FRAME_FILE = 1u << 3,   /* a page of a file in the page cache (FRAME_OBJECT too) */
        FRAME_DIRTY = 1u << 4,  /* with FRAME_FILE: written since it was last written back */
        FRAME_DEVICE = 1u << 5, /* device memory, outside the pool */
};

/* frame.aux bits: replacement-policy state. */
#define FRAME_REFERENCED 1u /* accessed since the clock hand last passed it */

/*
 * Per-frame metadata, 32 bytes (Linux's struct page is 64): 16 for the frame
 * itself and the heads of its reverse map and swap-cache link, 16 for the
 * FIFO and LRU stamps. The reverse map's entries cost 16 bytes more per leaf
 * entry that maps the frame (rmap.h).
 */
struct frame {
        uint32_t refs;   /* page-table-node references plus memory-object references */
        uint16_t flags;  /* enum frame_flags */
        uint16_t aux;    /* FRAME_REFERENCED */
        uint32_t next;   /* free-list link while free; while in use, its swap slot + 1
                          * when it sits in the swap cache (its copy there is valid), else 0 */
        uint32_t owner;  /* reverse-map head: entry index, 0 for none */
        uint64_t loaded; /* tick it was allocated at (FIFO) */
        uint64_t used;   /* tick it was last accessed at (LRU) */
};

struct frames {
        uint8_t *mem;        /* (nframes + 1 + ndev) pages; frame 0 first */
        struct frame *meta;  /* nframes + 1 + ndev entries */
        size_t mem_len;
        size_t meta_len;
        uint32_t page_size;
        unsigned page_shift;
        uint32_t nframes;    /* usable frames, the zero page not included */
        uint32_t ndev;       /* device frames, numbered nframes + 1 .. nframes + ndev */
        uint32_t hwm;        /* frames 1..hwm have been handed out at least once */
        uint32_t free_head;  /* a freed frame, or 0 */
        uint32_t used;
        uint64_t tick;       /* advances with every allocation and access */
        /* Called when a frame in the swap cache loses its last reference. */
        void (*uncache)(void *ctx, uint32_t slot);
        void *uncache_ctx;
        struct charge *charge; /* owners' charges (charge.h), or NULL when not kept */
};

/*
 * Host memory reserved lazily (anonymous, MAP_NORESERVE): nothing is paid
 * until a page is touched. NULL when the host refuses. Freed with munmap().
 */
void *frames_reserve(size_t len);

/* Reserves nframes usable frames of page_size bytes, the zero page and ndev device frames. */
int frames_init(struct frames *f, uint32_t nframes, uint32_t ndev, uint32_t page_size);
void frames_fini(struct frames *f);

/* Allocates a frame with one reference; contents undefined unless zero is set. */
int frames_alloc(struct frames *f, uint16_t flags, bool zero, uint32_t *ret_pfn);

/* Drops one reference; the frame returns to the free pool with its last one
 * (a device frame never does). */
void frames_put(struct frames *f, uint32_t pfn);

static inline void frames_get(struct frames *f, uint32_t pfn)
{
        if (pfn != FRAME_ZERO)
                f->meta[pfn].refs++;
}

static inline bool frames_is_device(const struct frames *f, uint32_t pfn)
{
        return pfn > f->nframes;
}

/* Frame numbers 0 .. frames_span() - 1 exist: the pool, the zero page and devices. */
static inline size_t frames_span(const struct frames *f)
{
        return (size_t)f->nframes + 1 + f->ndev;
}

static inline void *frames_data(const struct frames *f, uint32_t pfn)
{
        return f->mem + ((size_t)pfn << f->page_shift);
}

static inline uint32_t frames_free_count(const struct frames *f)
{
        return f->nframes - f->used;
}

#endif /* COWD_ENGINE_FRAMES_H */
