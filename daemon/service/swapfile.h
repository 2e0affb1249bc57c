/* SPDX-License-Identifier: MIT */
/*
 * The swap file: the engine's swap backend (struct cow_swap_ops). Slot N is
 * the page at byte offset N * page size, written with pwrite and read with
 * pread. The engine keeps the slots' reference counts; this file only moves
 * bytes and reports errors as negative errno values (-ENOSPC when the
 * filesystem is full, -EIO), which the engine returns typed.
 */
#ifndef COWD_SERVICE_SWAPFILE_H
#define COWD_SERVICE_SWAPFILE_H

#include <stddef.h>
#include <stdint.h>

#include <cowd/engine.h>

#define COW_SWAPFILE_NAME "cowd.swap"

typedef struct cow_swapfile cow_swapfile;

/*
 * Opens (creating it with mode 0600, close-on-exec, not following a
 * symbolic link) the swap file at path for slots pages of page_size bytes.
 * A regular file is emptied and given its length as a sparse file: what it
 * held belongs to no running engine, and space is taken only as pages are
 * written, so the file may be larger than physical memory. A device is used
 * as it is. Returns 0, or a negative errno with a sentence in err.
 */
int cow_swapfile_open(const char *path, uint64_t slots, uint32_t page_size, cow_swapfile **ret,
                      char *err, size_t errlen);

/* Closes the file (it stays on disk for inspection). Accepts NULL. */
void cow_swapfile_free(cow_swapfile *s);

/* The backend to hand to cow_engine_set_swap() with the swap file as its context. */
extern const struct cow_swap_ops cow_swapfile_ops;

#endif /* COWD_SERVICE_SWAPFILE_H */
