/* SPDX-License-Identifier: MIT */
/*
 * The file writer: a thread that does the disk work of file puts (write and
 * fsync) so that the event loop never waits for a disk on one client's
 * behalf while the others wait for it.
 *
 * Jobs run one at a time, in the order they were submitted. Each has three
 * steps. start() runs on the event loop when the job's turn comes, and does
 * the checks and the cheap opening (it sees the store as every earlier job
 * left it, since none is running then). write() runs on the writer thread
 * and may touch only what start() prepared: no daemon state. done() runs on
 * the event loop afterwards, with write()'s result, or with start()'s error
 * when start() failed (write() is then skipped), or with -ECANCELED when the
 * writer is freed before the job's turn came.
 *
 * The queue needs no bound of its own: a connection with a reply still to
 * come reads no more requests (connection.c), so it has at most one job
 * waiting.
 */
#ifndef COWD_SERVICE_FILEWRITER_H
#define COWD_SERVICE_FILEWRITER_H

#include <sys/queue.h>

#include <event2/event.h>

typedef struct cow_filewriter cow_filewriter;

struct cow_filewriter_job {
        int (*start)(struct cow_filewriter_job *job);
        int (*write)(struct cow_filewriter_job *job);
        void (*done)(struct cow_filewriter_job *job, int r);
        /* The writer's own, from submission until done() */
        TAILQ_ENTRY(cow_filewriter_job) link;
        int result;
};

/* Starts the thread; its completions are handled on base. 0 or a negative errno. */
int cow_filewriter_new(struct event_base *base, cow_filewriter **ret);

/*
 * Waits for the job being written to finish and calls its done(); every job
 * still waiting gets done(-ECANCELED). Accepts NULL.
 */
void cow_filewriter_free(cow_filewriter *w);

/* Queues job (borrowed until its done() has run). */
void cow_filewriter_submit(cow_filewriter *w, struct cow_filewriter_job *job);

/* Jobs submitted and not yet done, the running one included. */
unsigned cow_filewriter_queued(const cow_filewriter *w);

#endif /* COWD_SERVICE_FILEWRITER_H */
