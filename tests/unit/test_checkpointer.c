/* SPDX-License-Identifier: MIT */
/*
 * The checkpointer on a real event loop, with real forks into a temporary
 * state directory: who is answered by which snapshot, what each snapshot
 * holds, a stop while one runs, failures, and the deferred replies that
 * carry the answers to connections.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "checkpointer.h"
#include "reply.h"
#include "state.h"

struct fixture {
        char dir[64];
        struct event_base *base;
        cow_log *log;
        cow_engine *engine;
        cow_checkpointer *ck;
};

/* One request's outcome, as the checkpointer reports it. */
struct answer {
        struct fixture *f;
        int calls;
        int r;
        char err[256];
        uint64_t total_then; /* checkpoints written when it was answered */
        uint64_t procs_in_file; /* processes in the checkpoint on disk then */
};

static uint64_t procs_on_disk(const char *dir)
{
        struct cow_engine_config cfg;
        struct cow_sys_stats ss;
        cow_engine *e = NULL;
        char err[256];

        cow_engine_config_init(&cfg);
        cfg.mem_bytes = 1u << 20;
        if (cow_state_load(dir, &cfg, NULL, NULL, &e, err, sizeof(err)) != 0)
                return UINT64_MAX;
        cow_engine_sys_stats(e, &ss);
        cow_engine_free(e);
        return ss.procs;
}

static void on_done(void *arg, int r, const char *err, const struct cow_checkpoint_stats *st)
{
        struct answer *a = arg;

        a->calls++;
        a->r = r;
        snprintf(a->err, sizeof(a->err), "%s", err ? err : "");
        a->total_then = st->total;
        a->procs_in_file = r == 0 ? procs_on_disk(a->f->dir) : 0;
        event_base_loopbreak(a->f->base);
}

static int setup(void **state)
{
        struct fixture *f = calloc(1, sizeof(*f));
        struct cow_engine_config cfg;

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/cowd-ckpt-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->base = event_base_new();
        assert_non_null(f->base);
        assert_int_equal(cow_log_new(COW_LOG_ERROR, &f->log), 0);
        cow_engine_config_init(&cfg);
        cfg.mem_bytes = 1u << 20;
        assert_int_equal(cow_engine_new(&cfg, &f->engine), 0);
        assert_int_equal(cow_checkpointer_new(f->base, f->log, f->engine, f->dir, 0, &f->ck), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        char path[128];

        cow_checkpointer_free(f->ck);
        cow_engine_free(f->engine);
        cow_log_free(f->log);
        event_base_free(f->base);
        snprintf(path, sizeof(path), "%s/%s", f->dir, COW_STATE_FILE);
        unlink(path);
        rmdir(f->dir);
        free(f);
        return 0;
}

static void spawn(struct fixture *f)
{
        cow_pid pid;

        assert_int_equal(cow_engine_spawn(f->engine, "p", 0, &pid), 0);
}

/* Runs the loop until a answers (each answer breaks the loop once). */
static void wait_for(struct fixture *f, struct answer *a)
{
        while (a->calls == 0)
                assert_int_equal(event_base_dispatch(f->base), 0);
}

static void request(struct fixture *f, struct answer *a)
{
        char err[256];

        a->f = f;
        assert_int_equal(cow_checkpointer_request(f->ck, on_done, a, err, sizeof(err)), 0);
}

/*
 * A request made while a snapshot runs is answered by the next snapshot,
 * which holds what changed after the first began; two such requests share it.
 */
static void test_a_request_during_a_snapshot_waits_for_the_next(void **state)
{
        struct fixture *f = *state;
        struct answer first = { 0 }, second = { 0 }, third = { 0 };
        struct cow_checkpoint_stats st;

        spawn(f);
        request(f, &first);
        spawn(f); /* after the first snapshot began: not in it */
        request(f, &second);
        request(f, &third);
        assert_int_equal(first.calls + second.calls + third.calls, 0); /* nothing synchronous */
        wait_for(f, &first);
        assert_int_equal(first.r, 0);
        assert_int_equal(first.total_then, 1);
        assert_int_equal(first.procs_in_file, 1);
        assert_int_equal(second.calls, 0);
        wait_for(f, &second);
        wait_for(f, &third);
        assert_int_equal(second.r, 0);
        assert_int_equal(second.total_then, 2);
        assert_int_equal(second.procs_in_file, 2);
        assert_int_equal(third.total_then, 2);
        assert_int_equal(first.calls + second.calls + third.calls, 3);
        cow_checkpointer_stats(f->ck, &st);
        assert_int_equal(st.total, 2);
        assert_int_equal(st.failures, 0);
        assert_true(st.last_pause_us <= st.last_duration_us);
        assert_true(st.last_bytes > 0);
}

/*
 * A stop while a snapshot runs: the snapshot is waited for and answers its
 * own request; the checkpoint at stop then answers the ones waiting for the
 * next, and holds everything.
 */
static void test_run_waits_for_a_running_snapshot(void **state)
{
        struct fixture *f = *state;
        struct answer running = { 0 }, waiting = { 0 };
        char err[256];

        request(f, &running);
        spawn(f);
        request(f, &waiting);
        assert_int_equal(cow_checkpointer_run(f->ck, "at stop", err, sizeof(err)), 0);
        assert_int_equal(running.calls, 1);
        assert_int_equal(running.r, 0);
        assert_int_equal(running.procs_in_file, 0);
        assert_int_equal(waiting.calls, 1);
        assert_int_equal(waiting.r, 0);
        assert_int_equal(waiting.total_then, 2);
        assert_int_equal(procs_on_disk(f->dir), 1);
}

/* A snapshot that cannot be written is an error for its requester, and is counted. */
static void test_a_failed_snapshot_is_an_error(void **state)
{
        struct fixture *f = *state;
        struct answer a = { 0 };
        struct cow_checkpoint_stats st;
        char moved[80];

        snprintf(moved, sizeof(moved), "%s.gone", f->dir);
        assert_int_equal(rename(f->dir, moved), 0);
        request(f, &a);
        wait_for(f, &a);
        assert_int_equal(rename(moved, f->dir), 0);
        assert_int_equal(a.r, -ENOENT);
        assert_non_null(strstr(a.err, "cannot open state directory"));
        cow_checkpointer_stats(f->ck, &st);
        assert_int_equal(st.total, 0);
        assert_int_equal(st.failures, 1);
}

/* Freeing the checkpointer while a snapshot runs answers every request, with an error. */
static void test_free_answers_every_request(void **state)
{
        struct fixture *f = *state;
        struct answer running = { 0 }, waiting = { 0 };
        char path[128];

        request(f, &running);
        request(f, &waiting);
        cow_checkpointer_free(f->ck);
        f->ck = NULL;
        assert_int_equal(running.calls, 1);
        assert_int_equal(waiting.calls, 1);
        assert_int_equal(waiting.r, -ECANCELED);
        /* The killed writer's temporary file does not stay. */
        snprintf(path, sizeof(path), "%s/%s.tmp", f->dir, COW_STATE_FILE);
        assert_int_equal(access(path, F_OK), -1);
}

static void on_ready(cow_reply *reply, void *arg)
{
        *(cow_reply **)arg = reply;
}

/* The deferred reply's hand-over, both ways: taken by the consumer, or abandoned. */
static void test_deferred_replies(void **state)
{
        cow_reply *reply = NULL, *got = NULL;

        (void)state;
        assert_int_equal(cow_reply_new(7, &reply), 0);
        assert_false(cow_reply_is_deferred(reply));
        cow_reply_defer(reply);
        assert_true(cow_reply_is_deferred(reply));
        cow_reply_on_ready(reply, on_ready, &got);
        assert_null(got);
        cow_reply_set_status(reply, COWD__V1__CODE__ABORTED, "late");
        cow_reply_ready(reply);
        assert_ptr_equal(got, reply);
        assert_false(cow_reply_is_deferred(reply));
        assert_int_equal(cow_reply_code(got), COWD__V1__CODE__ABORTED);
        cow_reply_free(got);

        /* A consumer that leaves first: the producer's ready frees it (ASan would tell). */
        got = NULL;
        assert_int_equal(cow_reply_new(8, &reply), 0);
        cow_reply_defer(reply);
        cow_reply_on_ready(reply, on_ready, &got);
        cow_reply_abandon(reply);
        cow_reply_ready(reply);
        assert_null(got);

        /* Registering after it is ready calls back at once. */
        assert_int_equal(cow_reply_new(9, &reply), 0);
        cow_reply_on_ready(reply, on_ready, &got);
        assert_ptr_equal(got, reply);
        cow_reply_free(got);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_a_request_during_a_snapshot_waits_for_the_next,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_run_waits_for_a_running_snapshot, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_a_failed_snapshot_is_an_error, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_free_answers_every_request, setup, teardown),
                cmocka_unit_test(test_deferred_replies),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
