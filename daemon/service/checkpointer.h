/* SPDX-License-Identifier: MIT */
/*
 * When checkpoints are taken: on demand, on a timer, and at a clean stop,
 * all through cow_state_save() into the one state directory, with the
 * figures SysStats reports about them.
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
        uint64_t last_duration_us; /* how long writing it kept the event loop */
};

/*
 * Creates a checkpointer writing e into dir (NULL: no state is kept, and
 * every request fails with -ENOENT). interval_s > 0 writes one that often.
 * All arguments are borrowed.
 */
int cow_checkpointer_new(struct event_base *base, const cow_log *log, cow_engine *e,
                         const char *dir, uint32_t interval_s, cow_checkpointer **ret);

/* Changes the period (0 stops the timer); the next one is interval_s from now. */
void cow_checkpointer_set_interval(cow_checkpointer *c, uint32_t interval_s);

/*
 * Writes a checkpoint now and returns once it is durable: 0, or a negative
 * errno with a sentence in err (the previous checkpoint is then intact).
 * why ("on demand", "periodic", "at stop") goes into the log line.
 */
int cow_checkpointer_run(cow_checkpointer *c, const char *why, char *err, size_t errlen);

void cow_checkpointer_stats(const cow_checkpointer *c, struct cow_checkpoint_stats *ret);

/* Accepts NULL. */
void cow_checkpointer_free(cow_checkpointer *c);

#endif /* COWD_SERVICE_CHECKPOINTER_H */
