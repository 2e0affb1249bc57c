/* SPDX-License-Identifier: MIT */
#include "notify.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#define STATUS_MAX 256

struct cow_notify {
        const cow_log *log;
        cow_notify_status_fn status;
        void *arg;
        struct event *status_timer;
        struct event *watchdog_timer;
        unsigned long long watchdog_period_usec;
        char last_status[STATUS_MAX];
        bool stopping;
};

/*
 * Sends msg. A failure is logged at debug level only: the service manager
 * going away must not disturb serving clients, and standalone there is no
 * socket at all (sd_notify returns 0).
 */
static void notify_send(cow_notify *n, const char *msg)
{
        int r = sd_notify(0, msg);

        if (r < 0)
                log_debug(n->log, "sd_notify(%s): %s", msg, strerror(-r));
}

/* Fills n->last_status; true when it differs from what was sent before. */
static bool notify_refresh_status(cow_notify *n)
{
        char buf[STATUS_MAX];

        buf[0] = '\0';
        n->status(n->arg, buf, sizeof(buf));
        if (strcmp(buf, n->last_status) == 0)
                return false;
        memcpy(n->last_status, buf, sizeof(buf));
        return true;
}

static void notify_on_status_timer(evutil_socket_t fd, short events, void *arg)
{
        cow_notify *n = arg;
        char msg[STATUS_MAX + 16];

        (void)fd;
        (void)events;
        if (n->stopping || !notify_refresh_status(n))
                return;
        snprintf(msg, sizeof(msg), "STATUS=%s", n->last_status);
        notify_send(n, msg);
}

static void notify_on_watchdog_timer(evutil_socket_t fd, short events, void *arg)
{
        (void)fd;
        (void)events;
        notify_send(arg, "WATCHDOG=1");
}

int cow_notify_new(struct event_base *base, const cow_log *log, cow_notify_status_fn status,
                   void *arg, cow_notify **ret)
{
        struct timeval status_tv = { .tv_sec = COW_NOTIFY_STATUS_SECONDS };
        uint64_t usec = 0;
        cow_notify *n;
        int r;

        n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        n->log = log;
        n->status = status;
        n->arg = arg;
        n->status_timer = event_new(base, -1, EV_PERSIST, notify_on_status_timer, n);
        if (!n->status_timer || event_add(n->status_timer, &status_tv) < 0) {
                r = -ENOMEM;
                goto fail;
        }
        /* > 0: a watchdog is wanted, for us (WATCHDOG_PID, if set, names this process). */
        r = sd_watchdog_enabled(0, &usec);
        if (r < 0)
                log_warning(log, "ignoring the watchdog settings: %s", strerror(-r));
        if (r > 0 && usec > 0) {
                /* Half the timeout, as sd_watchdog_enabled(3) advises: one late ping is no trip. */
                struct timeval tv = { .tv_sec = (time_t)(usec / 2 / 1000000),
                                      .tv_usec = (suseconds_t)(usec / 2 % 1000000) };

                n->watchdog_timer = event_new(base, -1, EV_PERSIST, notify_on_watchdog_timer, n);
                if (!n->watchdog_timer || event_add(n->watchdog_timer, &tv) < 0) {
                        r = -ENOMEM;
                        goto fail;
                }
                n->watchdog_period_usec = usec / 2;
                log_info(log, "watchdog: pinging every %llu ms", n->watchdog_period_usec / 1000);
        }
        *ret = n;
        return 0;
fail:
        cow_notify_free(n);
        return r;
}

void cow_notify_ready(cow_notify *n)
{
        char msg[STATUS_MAX + 32];

        (void)notify_refresh_status(n);
        snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", n->last_status);
        notify_send(n, msg);
}

void cow_notify_reloading(cow_notify *n)
{
        notify_send(n, "RELOADING=1\nSTATUS=reloading the configuration");
        n->last_status[0] = '\0'; /* READY=1 sends the real status again */
}

void cow_notify_stopping(cow_notify *n)
{
        n->stopping = true;
        if (n->status_timer)
                event_del(n->status_timer);
        notify_send(n, "STOPPING=1\nSTATUS=stopping: answering the last requests");
}

unsigned long long cow_notify_watchdog_period_usec(const cow_notify *n)
{
        return n->watchdog_period_usec;
}

void cow_notify_free(cow_notify *n)
{
        if (!n)
                return;
        if (n->watchdog_timer)
                event_free(n->watchdog_timer);
        if (n->status_timer)
                event_free(n->status_timer);
        free(n);
}
