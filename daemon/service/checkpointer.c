/* SPDX-License-Identifier: MIT */
#define _GNU_SOURCE /* pipe2 */
#include "checkpointer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "state.h"

/* Who waits for a checkpoint. */
struct waiter {
        cow_checkpoint_done_fn done;
        void *arg;
};

struct waiters {
        struct waiter *v;
        size_t n, cap;
};

/* What a snapshot's child sends back, in one write (atomic: under PIPE_BUF). */
struct report {
        int32_t r;
        uint64_t bytes;
        uint64_t write_us;
        char err[512];
};

struct cow_checkpointer {
        struct event_base *base;
        const cow_log *log;
        cow_engine *engine;
        const char *dir;
        struct event *timer;
        struct event *sigchld;
        struct cow_checkpoint_stats stats;
        /* The snapshot running, if child > 0. */
        pid_t child;
        int report_fd;      /* the pipe's read end; the child holds the write end */
        const char *why;
        uint64_t started_us; /* CLOCK_MONOTONIC, just before the fork */
        uint64_t pause_us;
        struct waiters running; /* answered by the snapshot running */
        struct waiters next;    /* asked after it started: answered by the next one */
        bool periodic_due;      /* the timer fired while it ran */
};

static uint64_t now_us(clockid_t clock)
{
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int waiters_add(struct waiters *w, cow_checkpoint_done_fn done, void *arg)
{
        if (w->n == w->cap) {
                size_t cap = w->cap ? w->cap * 2 : 8;
                struct waiter *v = realloc(w->v, cap * sizeof(*v));

                if (!v)
                        return -ENOMEM;
                w->v = v;
                w->cap = cap;
        }
        w->v[w->n++] = (struct waiter){ done, arg };
        return 0;
}

/* Answers every waiter in w and empties it. A callback may add to other lists, never to w. */
static void waiters_answer(cow_checkpointer *c, struct waiters *w, int r, const char *err)
{
        struct waiters todo = *w;

        *w = (struct waiters){ 0 };
        for (size_t i = 0; i < todo.n; i++)
                todo.v[i].done(todo.v[i].arg, r, err, &c->stats);
        free(todo.v);
}

/* Counts and logs the outcome of one checkpoint. */
static void checkpointer_account(cow_checkpointer *c, const char *why, int r, const char *err,
                                 uint64_t bytes, uint64_t duration_us, uint64_t pause_us)
{
        if (r < 0) {
                c->stats.failures++;
                log_error(c->log, "checkpoint (%s) failed, the previous one is kept: %s", why,
                          err);
                return;
        }
        c->stats.total++;
        c->stats.last_bytes = bytes;
        c->stats.last_duration_us = duration_us;
        c->stats.last_pause_us = pause_us;
        c->stats.last_unix_s = now_us(CLOCK_REALTIME) / 1000000u;
        log_info(c->log,
                 "checkpoint (%s): %llu bytes in %s in %llu us, the event loop held %llu us", why,
                 (unsigned long long)bytes, c->dir, (unsigned long long)duration_us,
                 (unsigned long long)pause_us);
}

/*
 * In the child: closes every socket it inherited, so that a client the
 * daemon closes meanwhile sees its EOF now and not when the child ends, and
 * a daemon restarted meanwhile can bind its socket again.
 */
static void child_close_sockets(void)
{
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        int fds[256];
        size_t n = 0;

        if (!d)
                return; /* no /proc: the sockets close when the child ends */
        /* Collected first: closing while reading the directory would change it. */
        while ((de = readdir(d)) && n < sizeof(fds) / sizeof(fds[0])) {
                struct stat st;
                int fd = atoi(de->d_name);

                if (fd > 2 && fd != dirfd(d) && fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode))
                        fds[n++] = fd;
        }
        closedir(d);
        for (size_t i = 0; i < n; i++)
                close(fds[i]);
        if (n == sizeof(fds) / sizeof(fds[0]))
                child_close_sockets(); /* more than one batch */
}

/* In the child: writes the checkpoint, reports on fd and ends. Never returns. */
static void __attribute__((noreturn)) child_run(cow_checkpointer *c, int fd, pid_t parent)
{
        struct report rep = { 0 };
        uint64_t start = now_us(CLOCK_MONOTONIC);
        ssize_t n;

        /*
         * A snapshot nobody waits for any more must not finish later: it would
         * put an older state under a daemon restarted meanwhile, or write the
         * same temporary file as that daemon's own checkpoint.
         */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(1);
        /* The parent's handlers would write to its signal socket, not stop this child. */
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        child_close_sockets();
        rep.r = cow_state_save(c->dir, c->engine, &rep.bytes, rep.err, sizeof(rep.err));
        rep.write_us = now_us(CLOCK_MONOTONIC) - start;
        do
                n = write(fd, &rep, sizeof(rep));
        while (n < 0 && errno == EINTR);
        /* _exit: nothing of the parent's (atexit handlers, stdio buffers) runs twice. */
        _exit(n == (ssize_t)sizeof(rep) ? 0 : 1);
}

/*
 * Forks the child that writes a snapshot for the waiters in c->next, who
 * become c->running. Returns 0, or a negative errno with a sentence in err
 * (the waiters are left in c->next).
 */
static int snapshot_start(cow_checkpointer *c, const char *why, char *err, size_t errlen)
{
        int p[2];
        pid_t pid;

        if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0) {
                int r = -errno;
                snprintf(err, errlen, "cannot make a pipe for the checkpoint writer: %s",
                         strerror(-r));
                return r;
        }
        pid_t parent = getpid();

        c->started_us = now_us(CLOCK_MONOTONIC);
        pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(p[0]);
                close(p[1]);
                snprintf(err, errlen, "cannot fork the checkpoint writer: %s", strerror(-r));
                return r;
        }
        if (pid == 0) {
                close(p[0]);
                child_run(c, p[1], parent);
        }
        /* From here the child reads the swap slots in use: none may be written again. */
        cow_engine_swap_hold(c->engine);
        c->pause_us = now_us(CLOCK_MONOTONIC) - c->started_us;
        close(p[1]);
        c->child = pid;
        c->report_fd = p[0];
        c->why = why;
        c->running = c->next;
        c->next = (struct waiters){ 0 };
        return 0;
}

/*
 * Reaps the snapshot's child (waiting for it if block) and answers its
 * waiters. Returns false if it has not ended yet (only when !block).
 */
static bool snapshot_finish(cow_checkpointer *c, bool block)
{
        struct report rep = { 0 };
        char err[sizeof(rep.err) + 64];
        int status = 0, r, wait_errno;
        pid_t w;

        do
                w = waitpid(c->child, &status, block ? 0 : WNOHANG);
        while (w < 0 && errno == EINTR);
        if (w == 0)
                return false;
        wait_errno = errno;
        /* The report was written before the child ended, or never. */
        ssize_t n = read(c->report_fd, &rep, sizeof(rep));
        close(c->report_fd);
        c->report_fd = -1;
        c->child = 0;
        cow_engine_swap_release(c->engine);

        if (w < 0) {
                r = -ECHILD;
                snprintf(err, sizeof(err), "the checkpoint writer was lost: %s",
                         strerror(wait_errno));
        } else if (n == (ssize_t)sizeof(rep) && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                r = rep.r < 0 ? rep.r : 0;
                rep.err[sizeof(rep.err) - 1] = '\0';
                snprintf(err, sizeof(err), "%s", rep.err);
        } else {
                r = -ECANCELED;
                if (WIFSIGNALED(status))
                        snprintf(err, sizeof(err),
                                 "the checkpoint writer was killed by signal %d (%s)",
                                 WTERMSIG(status), strsignal(WTERMSIG(status)));
                else
                        snprintf(err, sizeof(err), "the checkpoint writer ended without a report");
                /* It may have died halfway through its temporary file. */
                cow_state_remove_temp(c->dir);
        }
        checkpointer_account(c, c->why, r, err, rep.bytes,
                             now_us(CLOCK_MONOTONIC) - c->started_us, c->pause_us);
        waiters_answer(c, &c->running, r, err);
        return true;
}

/*
 * Starts the snapshot that the waiters in c->next wait for (or answers them
 * why not), or else the periodic one that was due while the last one ran.
 */
static void snapshot_start_next(cow_checkpointer *c)
{
        const char *why = c->next.n ? "on demand" : "periodic";
        char err[256];
        int r;

        if (c->child || (c->next.n == 0 && !c->periodic_due))
                return;
        c->periodic_due = false; /* one snapshot serves both */
        r = snapshot_start(c, why, err, sizeof(err));
        if (r < 0) {
                checkpointer_account(c, why, r, err, 0, 0, 0);
                waiters_answer(c, &c->next, r, err);
        }
}

static void checkpointer_on_sigchld(evutil_socket_t sig, short events, void *arg)
{
        cow_checkpointer *c = arg;

        (void)sig;
        (void)events;
        if (c->child && snapshot_finish(c, false))
                snapshot_start_next(c);
}

static void checkpointer_on_timer(evutil_socket_t fd, short events, void *arg)
{
        cow_checkpointer *c = arg;
        char err[256];
        int r;

        (void)fd;
        (void)events;
        if (c->child) {
                /* One is being written now; the periodic one follows it. */
                c->periodic_due = true;
                return;
        }
        r = snapshot_start(c, "periodic", err, sizeof(err));
        if (r < 0)
                checkpointer_account(c, "periodic", r, err, 0, 0, 0);
}

int cow_checkpointer_new(struct event_base *base, const cow_log *log, cow_engine *e,
                         const char *dir, uint32_t interval_s, cow_checkpointer **ret)
{
        cow_checkpointer *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        c->base = base;
        c->log = log;
        c->engine = e;
        c->dir = dir;
        c->report_fd = -1;
        c->timer = event_new(base, -1, EV_PERSIST, checkpointer_on_timer, c);
        c->sigchld = evsignal_new(base, SIGCHLD, checkpointer_on_sigchld, c);
        if (!c->timer || !c->sigchld || event_add(c->sigchld, NULL) < 0) {
                cow_checkpointer_free(c);
                return -ENOMEM;
        }
        cow_checkpointer_set_interval(c, interval_s);
        *ret = c;
        return 0;
}

void cow_checkpointer_set_interval(cow_checkpointer *c, uint32_t interval_s)
{
        struct timeval tv = { .tv_sec = interval_s };

        event_del(c->timer);
        if (interval_s == 0)
                return;
        if (!c->dir) {
                log_warning(c->log, "[state] interval is set but there is no state directory; "
                                    "no periodic checkpoints");
                return;
        }
        if (event_add(c->timer, &tv) < 0)
                log_error(c->log, "cannot schedule periodic checkpoints");
}

int cow_checkpointer_request(cow_checkpointer *c, cow_checkpoint_done_fn done, void *arg,
                             char *err, size_t errlen)
{
        int r;

        if (!c->dir) {
                snprintf(err, errlen, "no state directory is configured ([state] directory)");
                return -ENOENT;
        }
        r = waiters_add(&c->next, done, arg);
        if (r < 0) {
                snprintf(err, errlen, "out of memory");
                return r;
        }
        if (c->child)
                return 0; /* snapshot_start_next() runs when the running one ends */
        r = snapshot_start(c, "on demand", err, errlen);
        if (r < 0) {
                c->next.n--; /* this request is answered by the caller, not by done */
                checkpointer_account(c, "on demand", r, err, 0, 0, 0);
        }
        return r;
}

int cow_checkpointer_run(cow_checkpointer *c, const char *why, char *err, size_t errlen)
{
        uint64_t start, bytes = 0, took;
        int r;

        if (!c->dir) {
                snprintf(err, errlen, "no state directory is configured ([state] directory)");
                return -ENOENT;
        }
        /* Two writers of one temporary file would corrupt it: the child ends first. */
        if (c->child)
                (void)snapshot_finish(c, true);
        start = now_us(CLOCK_MONOTONIC);
        r = cow_state_save(c->dir, c->engine, &bytes, err, errlen);
        took = now_us(CLOCK_MONOTONIC) - start;
        checkpointer_account(c, why, r, err, bytes, took, took);
        waiters_answer(c, &c->next, r, err);
        return r;
}

void cow_checkpointer_stats(const cow_checkpointer *c, struct cow_checkpoint_stats *ret)
{
        *ret = c->stats;
}

void cow_checkpointer_free(cow_checkpointer *c)
{
        if (!c)
                return;
        if (c->child) {
                kill(c->child, SIGKILL);
                (void)snapshot_finish(c, true);
        }
        waiters_answer(c, &c->next, -ECANCELED, "the daemon is stopping");
        if (c->sigchld)
                event_free(c->sigchld);
        if (c->timer)
                event_free(c->timer);
        free(c->running.v);
        free(c);
}
