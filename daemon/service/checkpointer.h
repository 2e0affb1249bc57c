/* SPDX-License-Identifier: MIT */
/*
 * When checkpoints are taken, and how they keep out of the clients' way.
 *
 * On demand and on the timer, a checkpoint is a snapshot: the event loop
 * fork()s, and the child, holding a copy-on-write image of the engine as it
 * was at the fork, writes it with cow_state_save() and reports back through
 * a pipe, while the parent goes on serving. The loop pauses only for the
 * fork() itself. The child reads swapped pages from the shared swap file, so
 * the engine holds every slot in use at the fork until the child is done
 * (cow_engine_swap_hold()). One snapshot runs at a time; a request made
 * while one runs is answered by the next, which starts as soon as the
 * running one ends, because the running one may lack what the requester
 * was told was done before it asked. So does a periodic one whose time
 * comes while another runs.
 *
 * At a clean stop the checkpoint is written in the daemon itself, after any
 * snapshot still running has ended. SysStats' checkpoint figures come from
 * here.
 */
#ifndef COWD_SERVICE_CHECKPOINTER_H
#define COWD_SERVICE_CHECKPOINTER_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include <cowd/engine.h>

#include "log.h"

typedef struct cow_checkpointer cow_checkpointer;

struct cow_checkpoint_stats {
        uint64_t total;            /* checkpoints written since start */
        uint64_t failures;         /* attempts that failed */
        uint64_t last_unix_s;      /* wall-clock time of the last good one; 0 = none yet */
        uint64_t last_bytes;       /* its size */
        uint64_t last_duration_us; /* from its start until it was durable */
        uint64_t last_pause_us;    /* how long of that the event loop was held: the fork(),
                                    * or the whole write at a stop */
};

/*
 * Creates a checkpointer writing e into dir (NULL: no state is kept, and
 * every request fails with -ENOENT). interval_s > 0 takes one that often.
 * All arguments are borrowed. It handles SIGCHLD on base.
 */
int cow_checkpointer_new(struct event_base *base, const cow_log *log, cow_engine *e,
                         const char *dir, uint32_t interval_s, cow_checkpointer **ret);

/* Changes the period (0 stops the timer); the next one is interval_s from now. */
void cow_checkpointer_set_interval(cow_checkpointer *c, uint32_t interval_s);

/*
 * How a request learns its outcome: r is 0 once the checkpoint is durable
 * (stats then describe it), or a negative errno with a sentence in err (the
 * previous checkpoint is then intact).
 */
typedef void (*cow_checkpoint_done_fn)(void *arg, int r, const char *err,
                                       const struct cow_checkpoint_stats *stats);

/*
 * Asks for a checkpoint holding at least the state as it is now, without
 * waiting for it: done(arg, ...) is called exactly once, later, from the
 * event loop (or from cow_checkpointer_run() or _free()). Returns 0, or a
 * negative errno with a sentence in err when no snapshot can start (no state
 * directory; fork() failed), and done is then never called.
 */
int cow_checkpointer_request(cow_checkpointer *c, cow_checkpoint_done_fn done, void *arg,
                             char *err, size_t errlen);

/*
 * Writes a checkpoint in this process and returns once it is durable: 0, or
 * a negative errno with a sentence in err (the previous checkpoint is then
 * intact). A snapshot still running is waited for first, and requests
 * waiting for the next one are answered with this one. why ("at stop") goes
 * into the log line.
 */
int cow_checkpointer_run(cow_checkpointer *c, const char *why, char *err, size_t errlen);

void cow_checkpointer_stats(const cow_checkpointer *c, struct cow_checkpoint_stats *ret);

/* Stops a snapshot still running (its requests get an error). Accepts NULL. */
void cow_checkpointer_free(cow_checkpointer *c);

#endif /* COWD_SERVICE_CHECKPOINTER_H */
