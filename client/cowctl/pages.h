/* SPDX-License-Identifier: MIT */
/*
 * Collecting a process's page-table view (page_map) over a range, or over
 * its whole address space when no range is given.
 */
#ifndef COWCTL_PAGES_H
#define COWCTL_PAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmd.h"

struct page {
        uint64_t addr;
        uint32_t frame;   /* 0 is the zero page when zero is set */
        uint32_t sharers;
        uint32_t prot;
        bool mapped, present, writable, cow, zero, in_tlb, shared;
        bool swapped;       /* not present: its data is in swap slot swap_slot */
        uint64_t swap_slot;
        bool file, dirty, device; /* a file's page-cache page (written since written back); a device's */
};

struct page_list {
        struct page *pages;
        size_t n, cap;
};

/*
 * Appends pid's mapped pages in [addr, addr+len) to ret, the range widened
 * to whole pages. len 0 means every mapping the process has (from
 * list_maps). page_map requests are pipelined. Returns like a command: 0, a
 * daemon code, or a negative errno.
 */
int pages_collect(struct cmd_ctx *ctx, uint32_t pid, uint64_t addr, uint64_t len,
                  struct page_list *ret);

void page_list_release(struct page_list *l);

/* "present,cow,shared" style summary of p's flags into buf. */
const char *page_flags(const struct page *p, char *buf, size_t len);

#endif /* COWCTL_PAGES_H */
