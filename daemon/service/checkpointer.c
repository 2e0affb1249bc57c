/* SPDX-License-Identifier: MIT */
#include "checkpointer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "state.h"

struct cow_checkpointer {
        const cow_log *log;
        cow_engine *engine;
        const char *dir;
        struct event *timer;
        struct cow_checkpoint_stats stats;
};

static void checkpointer_on_timer(evutil_socket_t fd, short events, void *arg)
{
        cow_checkpointer *c = arg;
        char err[1024];

        (void)fd;
        (void)events;
        /* A failure is logged and counted; the next period tries again. */
        (void)cow_checkpointer_run(c, "periodic", err, sizeof(err));
}

int cow_checkpointer_new(struct event_base *base, const cow_log *log, cow_engine *e,
                         const char *dir, uint32_t interval_s, cow_checkpointer **ret)
{
        cow_checkpointer *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        c->log = log;
        c->engine = e;
        c->dir = dir;
        c->timer = event_new(base, -1, EV_PERSIST, checkpointer_on_timer, c);
        if (!c->timer) {
                free(c);
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

static uint64_t now_us(clockid_t clock)
{
        struct timespec ts;

        clock_gettime(clock, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int cow_checkpointer_run(cow_checkpointer *c, const char *why, char *err, size_t errlen)
{
        uint64_t start, bytes = 0;
        int r;

        if (!c->dir) {
                snprintf(err, errlen, "no state directory is configured ([state] directory)");
                return -ENOENT;
        }
        start = now_us(CLOCK_MONOTONIC);
        r = cow_state_save(c->dir, c->engine, &bytes, err, errlen);
        if (r < 0) {
                c->stats.failures++;
                log_error(c->log, "checkpoint (%s) failed, the previous one is kept: %s", why,
                          err);
                return r;
        }
        c->stats.total++;
        c->stats.last_duration_us = now_us(CLOCK_MONOTONIC) - start;
        c->stats.last_bytes = bytes;
        c->stats.last_unix_s = now_us(CLOCK_REALTIME) / 1000000u;
        log_info(c->log, "checkpoint (%s): %llu bytes in %s in %llu us", why,
                 (unsigned long long)bytes, c->dir,
                 (unsigned long long)c->stats.last_duration_us);
        return 0;
}

void cow_checkpointer_stats(const cow_checkpointer *c, struct cow_checkpoint_stats *ret)
{
        *ret = c->stats;
}

void cow_checkpointer_free(cow_checkpointer *c)
{
        if (!c)
                return;
        event_free(c->timer);
        free(c);
}
