/* SPDX-License-Identifier: MIT */
/*
 * The daemon's state on disk: one checkpoint file in the state directory,
 * written atomically (a temporary file, fsync, rename, fsync of the
 * directory) and read back at start.
 */
#ifndef COWD_SERVICE_STATE_H
#define COWD_SERVICE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include <cowd/engine.h>

#define COW_STATE_FILE "cowd.checkpoint"

/*
 * Writes e's checkpoint into dir; once it returns 0 the checkpoint is durable
 * and *ret_bytes (if given) is its size. On failure, a negative errno with a
 * sentence in err, and the previous checkpoint is untouched.
 */
int cow_state_save(const char *dir, cow_engine *e, uint64_t *ret_bytes, char *err,
                   size_t errlen);

/*
 * Removes the temporary file a writer that died may have left in dir. Only
 * when no writer runs: the next cow_state_save() would truncate it anyway,
 * but nothing half-written should sit beside the checkpoint meanwhile.
 */
void cow_state_remove_temp(const char *dir);

/*
 * Renames the checkpoint in dir aside, to COW_STATE_FILE ".refused-" and
 * the UTC time (with "-N" added if that name is taken: nothing is ever
 * overwritten), and makes the rename durable. *ret_name gets the new name
 * (a file name in dir). Returns 0 or a negative errno with a sentence in err.
 */
int cow_state_set_aside(const char *dir, char *ret_name, size_t namelen, char *err,
                        size_t errlen);

/*
 * Loads the checkpoint in dir into a new engine shaped by cfg. With
 * swap_ops, the checkpoint's swapped pages are written back through it and
 * it becomes the engine's swap backend. Returns 0 with *ret set, 1 when dir
 * holds no checkpoint, or a negative errno with a sentence in err (a damaged
 * or misfitting file is never discarded).
 */
int cow_state_load(const char *dir, const struct cow_engine_config *cfg,
                   const struct cow_swap_ops *swap_ops, void *swap_ctx, cow_engine **ret,
                   char *err, size_t errlen);

#endif /* COWD_SERVICE_STATE_H */
