/* SPDX-License-Identifier: MIT */
/*
 * The daemon's side of the service manager's notification protocol
 * (sd_notify(3)): READY=1 once it serves, STATUS= lines kept current,
 * RELOADING=1 around a reload, STOPPING=1 at shutdown, and WATCHDOG=1 from
 * the event loop itself, so that a loop that stops turning stops the pings.
 *
 * Without $NOTIFY_SOCKET every message is a no-op, so the daemon behaves the
 * same standalone.
 */
#ifndef COWD_SERVICE_NOTIFY_H
#define COWD_SERVICE_NOTIFY_H

#include <stddef.h>

#include <event2/event.h>

#include "log.h"

/* How often the STATUS= line is refreshed (it is sent only when it changed). */
#define COW_NOTIFY_STATUS_SECONDS 2

typedef struct cow_notify cow_notify;

/* Writes the current one-line status ("12 clients, ...") into buf. */
typedef void (*cow_notify_status_fn)(void *arg, char *buf, size_t len);

/*
 * Creates the notifier on base. status(arg) is asked for the STATUS= text on
 * a timer. When the service manager asked for a watchdog (sd_watchdog_enabled),
 * a timer on base sends WATCHDOG=1 at half of WATCHDOG_USEC. base and log are
 * borrowed. Returns 0 or a negative errno.
 */
int cow_notify_new(struct event_base *base, const cow_log *log, cow_notify_status_fn status,
                   void *arg, cow_notify **ret);

/* READY=1 with the current STATUS=; the second and later calls end a reload. */
void cow_notify_ready(cow_notify *n);

/* RELOADING=1: a reload has begun; cow_notify_ready() ends it. */
void cow_notify_reloading(cow_notify *n);

/* STOPPING=1, and the status timer stops; the watchdog keeps pinging while draining. */
void cow_notify_stopping(cow_notify *n);

/* The watchdog period in microseconds, 0 when no watchdog was asked for. */
unsigned long long cow_notify_watchdog_period_usec(const cow_notify *n);

/* Accepts NULL. */
void cow_notify_free(cow_notify *n);

#endif /* COWD_SERVICE_NOTIFY_H */
