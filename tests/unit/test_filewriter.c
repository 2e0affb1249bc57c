/* SPDX-License-Identifier: MIT */
/*
 * The file writer on a real event loop: jobs end in the order they came,
 * one at a time, their write() on another thread; a job whose start() fails
 * is done without a write; jobs still waiting at the writer's end are
 * cancelled, and the one being written is finished first.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>

#include <event2/event.h>

#include "filewriter.h"

#define NJOBS 8

struct log {
        int order[NJOBS * 2];
        size_t n;
        unsigned running; /* jobs between start() and done(): never more than one */
        unsigned most_running;
        struct event_base *base;
        unsigned left;
};

struct job {
        struct cow_filewriter_job job;
        struct log *log;
        int index;
        int start_result;
        bool wrote;
        pthread_t writer; /* the thread write() ran on */
        int done_result;
        int done_calls;
};

static int job_start(struct cow_filewriter_job *j)
{
        struct job *job = (struct job *)j;

        if (job->start_result == 0 && ++job->log->running > job->log->most_running)
                job->log->most_running = job->log->running;
        return job->start_result;
}

static int job_write(struct cow_filewriter_job *j)
{
        struct job *job = (struct job *)j;

        job->wrote = true;
        job->writer = pthread_self();
        return job->index == 3 ? -EIO : 0;
}

static void job_done(struct cow_filewriter_job *j, int r)
{
        struct job *job = (struct job *)j;
        struct log *log = job->log;

        if (job->start_result == 0 && r != -ECANCELED)
                log->running--;
        job->done_result = r;
        job->done_calls++;
        log->order[log->n++] = job->index;
        if (--log->left == 0)
                event_base_loopbreak(log->base);
}

static void job_init(struct job *job, struct log *log, int index, int start_result)
{
        *job = (struct job){
                .job = { .start = job_start, .write = job_write, .done = job_done },
                .log = log,
                .index = index,
                .start_result = start_result,
        };
}

/* A writer on base with NJOBS jobs submitted; job failing_start's start() fails. */
static cow_filewriter *submit_all(struct event_base *base, struct log *log, struct job *jobs,
                                  int failing_start)
{
        cow_filewriter *w;

        *log = (struct log){ .base = base, .left = NJOBS };
        assert_int_equal(cow_filewriter_new(base, &w), 0);
        for (int i = 0; i < NJOBS; i++) {
                job_init(&jobs[i], log, i, i == failing_start ? -EDQUOT : 0);
                cow_filewriter_submit(w, &jobs[i].job);
        }
        return w;
}

static void test_jobs_end_in_order_one_at_a_time_written_on_another_thread(void **state)
{
        struct event_base *base = event_base_new();
        struct job jobs[NJOBS];
        struct log log;
        cow_filewriter *w = submit_all(base, &log, jobs, 5);

        (void)state;
        assert_int_equal(cow_filewriter_queued(w), NJOBS);
        assert_int_equal(event_base_dispatch(base), 0);
        assert_int_equal(log.n, NJOBS);
        for (int i = 0; i < NJOBS; i++) {
                assert_int_equal(log.order[i], i);
                assert_int_equal(jobs[i].done_calls, 1);
                /* A failed start() is the job's result, and nothing is written. */
                assert_int_equal(jobs[i].done_result, i == 5 ? -EDQUOT : i == 3 ? -EIO : 0);
                assert_int_equal(jobs[i].wrote, i != 5);
                if (i != 5)
                        assert_false(pthread_equal(jobs[i].writer, pthread_self()));
        }
        assert_int_equal(log.most_running, 1);
        assert_int_equal(cow_filewriter_queued(w), 0);
        cow_filewriter_free(w);
        event_base_free(base);
}

static void test_freeing_finishes_the_running_job_and_cancels_the_waiting_ones(void **state)
{
        struct event_base *base = event_base_new();
        struct job jobs[NJOBS];
        struct log log;
        cow_filewriter *w = submit_all(base, &log, jobs, -1);

        (void)state;
        /* The loop never ran: job 0 is with the thread, the rest wait. */
        cow_filewriter_free(w);
        assert_int_equal(log.n, NJOBS);
        assert_true(jobs[0].wrote);
        assert_int_equal(jobs[0].done_result, 0);
        for (int i = 0; i < NJOBS; i++) {
                assert_int_equal(log.order[i], i);
                assert_int_equal(jobs[i].done_calls, 1);
                if (i > 0) {
                        assert_false(jobs[i].wrote);
                        assert_int_equal(jobs[i].done_result, -ECANCELED);
                }
        }
        event_base_free(base);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_jobs_end_in_order_one_at_a_time_written_on_another_thread),
                cmocka_unit_test(test_freeing_finishes_the_running_job_and_cancels_the_waiting_ones),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
