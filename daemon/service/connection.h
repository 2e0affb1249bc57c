/* SPDX-License-Identifier: MIT */
/*
 * One client connection: a bufferevent, the framer over its input, the
 * dispatcher for each whole frame, and the replies queued on its output in
 * request order.
 *
 * A connection closes itself: on EOF once its replies are sent, after a
 * frame it cannot take (answered first with a status saying why), on an
 * idle timeout or on a socket error. Either way it calls env->on_close
 * exactly once, just before it frees itself, so that its owner can forget it.
 */
#ifndef COWD_SERVICE_CONNECTION_H
#define COWD_SERVICE_CONNECTION_H

#include <stdint.h>

#include <event2/event.h>

#include "auth.h"
#include "counters.h"
#include "dispatch.h"
#include "service_limits.h"
#include "log.h"
#include "metrics.h"

typedef struct cow_connection cow_connection;

/* Bytes one read() takes straight from a socket while a frame is short. */
#define COW_CONNECTION_READ_CHUNK (64u << 10)

struct cow_connection_env {
        struct event_base *base;
        cow_dispatcher *dispatcher;
        const struct cow_service_limits *limits;
        struct cow_counters *counters;
        struct cow_request_metrics *metrics; /* each answered request is recorded here; NULL
                                              * when /metrics is off */
        const cow_log *log;
        /*
         * Non-NULL for a connection that must prove who it is (TCP): its first
         * request must be a hello carrying one of these tokens, and the uid the
         * token stands for replaces the one given to cow_connection_new().
         */
        const cow_auth *auth;
        /*
         * COW_CONNECTION_READ_CHUNK bytes that every connection of the loop
         * reads into before the bytes join its input (conn_read_more()).
         */
        uint8_t *read_scratch;
        /* Called once, right before the connection frees itself. */
        void (*on_close)(cow_connection *conn, void *userdata);
        void *userdata;
};

/*
 * Starts serving fd, a connected non-blocking socket, for a client seen as
 * uid; peer describes it in log lines. env is copied; what it points to must
 * outlive the connection. On success the connection owns fd; on failure fd
 * is left to the caller. Returns 0 or -ENOMEM.
 */
int cow_connection_new(const struct cow_connection_env *env, evutil_socket_t fd, uint32_t uid,
                       const char *peer, cow_connection **ret);

/*
 * Stops reading; the connection closes (and is freed) once the replies
 * already queued are sent. May free conn before returning.
 */
void cow_connection_shutdown(cow_connection *conn);

/* Closes now, dropping unsent replies, and frees. Accepts NULL. */
void cow_connection_free(cow_connection *conn);

#endif /* COWD_SERVICE_CONNECTION_H */
