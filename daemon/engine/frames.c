/* SPDX-License-Identifier: MIT */
#include "frames.h"

#include "charge.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

void *frames_reserve(size_t len)
{
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        return p == MAP_FAILED ? NULL : p;
}

int frames_init(struct frames *f, uint32_t nframes, uint32_t ndev, uint32_t page_size)
{
        memset(f, 0, sizeof(*f));
        if (nframes == 0 || nframes >= UINT32_MAX - ndev || page_size == 0 ||
            (page_size & (page_size - 1)) != 0)
                return -EINVAL;

        f->page_size = page_size;
        f->page_shift = (unsigned)__builtin_ctz(page_size);
        f->nframes = nframes;
        f->ndev = ndev;
        f->mem_len = frames_span(f) << f->page_shift;
        f->meta_len = frames_span(f) * sizeof(struct frame);

        f->mem = frames_reserve(f->mem_len);
        f->meta = frames_reserve(f->meta_len);
        if (!f->mem || !f->meta) {
                frames_fini(f);
                return -ENOMEM;
        }
        /* Frames are handed out from the bottom up, so huge host pages fill densely:
         * one host fault then backs hundreds of frames instead of one. */
        (void)madvise(f->mem, f->mem_len, MADV_HUGEPAGE);
        /* The zero page is read-only on the host too: a stray write crashes loudly. */
        (void)mprotect(f->mem, page_size, PROT_READ);
        for (uint32_t i = 1; i <= ndev; i++)
                f->meta[nframes + i].flags = FRAME_DEVICE;
        return 0;
}

void frames_fini(struct frames *f)
{
        if (f->mem)
                munmap(f->mem, f->mem_len);
        if (f->meta)
                munmap(f->meta, f->meta_len);
        f->mem = NULL;
        f->meta = NULL;
}

int frames_alloc(struct frames *f, uint16_t flags, bool zero, uint32_t *ret_pfn)
{
        uint32_t pfn;
        bool fresh = false;

        if (f->free_head != 0) {
                pfn = f->free_head;
                f->free_head = f->meta[pfn].next;
        } else if (f->hwm < f->nframes) {
                pfn = ++f->hwm;
                fresh = true; /* never written: the host handed it out zeroed */
        } else {
                return -ENOMEM;
        }

        f->tick++;
        f->meta[pfn] = (struct frame){ .refs = 1, .flags = flags, .loaded = f->tick,
                                       .used = f->tick };
        f->used++;
        if (zero && !fresh)
                memset(frames_data(f, pfn), 0, f->page_size);
        *ret_pfn = pfn;
        return 0;
}

void frames_put(struct frames *f, uint32_t pfn)
{
        if (pfn == FRAME_ZERO)
                return;
        struct frame *fr = &f->meta[pfn];
        if (--fr->refs != 0 || frames_is_device(f, pfn))
                return;
        if (fr->next != 0 && f->uncache)
                f->uncache(f->uncache_ctx, fr->next - 1);
        if (f->charge)
                charge_frame_free(f->charge, pfn);
        fr->flags = 0;
        fr->aux = 0;
        fr->next = f->free_head;
        f->free_head = pfn;
        f->used--;
}
