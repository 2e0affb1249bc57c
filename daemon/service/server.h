/* SPDX-License-Identifier: MIT */
/*
 * The listening side of the daemon: the Unix socket (and an optional TCP
 * socket), admission up to max_connections, the peer's uid, the set of open
 * connections and the service counters that SysStats reports.
 *
 * Listeners are added from file descriptors that are already listening, so
 * sockets handed over by a service manager can be adopted the same way as
 * the ones the server binds itself.
 */
#ifndef COWD_SERVICE_SERVER_H
#define COWD_SERVICE_SERVER_H

#include <event2/event.h>

#include <cowd/engine.h>

#include "config.h"
#include "log.h"

typedef struct cow_server cow_server;

/*
 * Creates a server on base for engine. cfg, engine, base and log are
 * borrowed and must outlive the server. Nothing listens yet.
 */
int cow_server_new(struct event_base *base, const struct cow_config *cfg, cow_engine *engine,
                   const cow_log *log, cow_server **ret);

/*
 * Binds and listens on the configured Unix socket (creating the private
 * /tmp/cowd-UID directory when that default is used, and removing a stale
 * socket left by a daemon that died) and on the TCP address when tcp_port is
 * set. Returns 0 or a negative errno, having logged why.
 */
int cow_server_listen(cow_server *s);

/*
 * Stops accepting and asks every connection to finish: no more requests are
 * read, replies already made are sent, then each closes. on_drained(arg) is
 * called once the last connection has gone (at once if there are none).
 */
void cow_server_shutdown(cow_server *s, void (*on_drained)(void *arg), void *arg);

/*
 * Derives the service limits again from the configuration the server was
 * given (which a reload has changed): open connections see the new limits
 * from their next request on.
 */
void cow_server_update_limits(cow_server *s);

struct cow_checkpointer;

/* Lets clients' checkpoint requests through to c (borrowed). */
void cow_server_set_checkpointer(cow_server *s, struct cow_checkpointer *c);

struct cow_filestore;

/*
 * Serves clients' file requests from fs (borrowed), with a thread of the
 * server's own writing the puts (filewriter.h). 0, or a negative errno when
 * the thread cannot start.
 */
int cow_server_set_files(cow_server *s, struct cow_filestore *fs);

/* Connections still open. */
unsigned cow_server_connections(const cow_server *s);

/* Closes every connection and listener, removes the socket file, frees. Accepts NULL. */
void cow_server_free(cow_server *s);

#endif /* COWD_SERVICE_SERVER_H */
