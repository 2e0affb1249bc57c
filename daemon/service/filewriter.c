/* SPDX-License-Identifier: MIT */
#include "filewriter.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

TAILQ_HEAD(job_queue, cow_filewriter_job);

struct cow_filewriter {
        /* The event loop's alone */
        struct job_queue waiting; /* submitted, start() not yet run */
        struct cow_filewriter_job *current; /* handed to the thread, done() not yet run */
        struct event *on_finished;
        int efd; /* the thread's "current is written", counted */

        /* Shared with the thread, under lock */
        pthread_mutex_t lock;
        pthread_cond_t wake;
        struct cow_filewriter_job *todo;     /* for the thread to write */
        struct cow_filewriter_job *finished; /* written, for the loop to finish */
        bool quit;
        pthread_t thread;
        bool thread_started;
};

static void *writer_main(void *arg)
{
        cow_filewriter *w = arg;
        const uint64_t one = 1;

        pthread_mutex_lock(&w->lock);
        for (;;) {
                while (!w->todo && !w->quit)
                        pthread_cond_wait(&w->wake, &w->lock);
                if (!w->todo)
                        break;
                struct cow_filewriter_job *job = w->todo;
                pthread_mutex_unlock(&w->lock);
                job->result = job->write(job);
                pthread_mutex_lock(&w->lock);
                w->todo = NULL;
                w->finished = job;
                /* An eventfd write cannot fail here: the counter is far below its maximum. */
                while (write(w->efd, &one, sizeof(one)) < 0 && errno == EINTR)
                        ;
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

/* Starts waiting jobs until one is handed to the thread or none is left. */
static void writer_kick(cow_filewriter *w)
{
        struct cow_filewriter_job *job;

        while (!w->current && (job = TAILQ_FIRST(&w->waiting))) {
                TAILQ_REMOVE(&w->waiting, job, link);
                int r = job->start(job);
                if (r < 0) {
                        job->done(job, r);
                        continue;
                }
                w->current = job;
                pthread_mutex_lock(&w->lock);
                w->todo = job;
                pthread_cond_signal(&w->wake);
                pthread_mutex_unlock(&w->lock);
        }
}

/* Runs done() of a job the thread has finished, if there is one. */
static void writer_finish(cow_filewriter *w)
{
        struct cow_filewriter_job *job;

        pthread_mutex_lock(&w->lock);
        job = w->finished;
        w->finished = NULL;
        pthread_mutex_unlock(&w->lock);
        if (!job)
                return;
        w->current = NULL;
        job->done(job, job->result);
}

static void writer_on_finished(evutil_socket_t fd, short what, void *arg)
{
        cow_filewriter *w = arg;
        uint64_t n;

        (void)what;
        if (read(fd, &n, sizeof(n)) < 0)
                return; /* EAGAIN: a wakeup already consumed */
        writer_finish(w);
        writer_kick(w);
}

int cow_filewriter_new(struct event_base *base, cow_filewriter **ret)
{
        cow_filewriter *w;
        sigset_t all, old;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->efd = -1;
        TAILQ_INIT(&w->waiting);
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->wake, NULL);
        w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (w->efd < 0) {
                r = -errno;
                goto fail;
        }
        w->on_finished = event_new(base, w->efd, EV_READ | EV_PERSIST, writer_on_finished, w);
        if (!w->on_finished || event_add(w->on_finished, NULL) < 0) {
                r = -ENOMEM;
                goto fail;
        }
        /* Signals are the event loop's (evsignal): the thread blocks them all. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        r = -pthread_create(&w->thread, NULL, writer_main, w);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0)
                goto fail;
        w->thread_started = true;
        *ret = w;
        return 0;
fail:
        cow_filewriter_free(w);
        return r;
}

void cow_filewriter_free(cow_filewriter *w)
{
        struct cow_filewriter_job *job;

        if (!w)
                return;
        if (w->thread_started) {
                pthread_mutex_lock(&w->lock);
                w->quit = true;
                pthread_cond_signal(&w->wake);
                pthread_mutex_unlock(&w->lock);
                pthread_join(w->thread, NULL);
        }
        writer_finish(w);
        while ((job = TAILQ_FIRST(&w->waiting))) {
                TAILQ_REMOVE(&w->waiting, job, link);
                job->done(job, -ECANCELED);
        }
        if (w->on_finished)
                event_free(w->on_finished);
        if (w->efd >= 0)
                close(w->efd);
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        free(w);
}

void cow_filewriter_submit(cow_filewriter *w, struct cow_filewriter_job *job)
{
        TAILQ_INSERT_TAIL(&w->waiting, job, link);
        writer_kick(w);
}

unsigned cow_filewriter_queued(const cow_filewriter *w)
{
        const struct cow_filewriter_job *job;
        unsigned n = w->current ? 1 : 0;

        TAILQ_FOREACH(job, &w->waiting, link)
                n++;
        return n;
}
