/* SPDX-License-Identifier: MIT */
/*
 * Metrics for Prometheus: the per-request figures connections record
 * (requests by operation and status code, a latency histogram), and
 * `/metrics` in the Prometheus text format, served on libevent bufferevents
 * on a loopback address (at most COW_METRICS_MAX_CONNECTIONS at once), rendering those figures beside the engine's statistics and the
 * service's counters.
 */
#ifndef COWD_SERVICE_METRICS_H
#define COWD_SERVICE_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include <cowd/engine.h>

#include "counters.h"
#include "log.h"

#define COW_METRICS_OPS 48      /* Request op_case values counted; later ones count as 0 */
#define COW_METRICS_CODES 17    /* gRPC canonical codes 0..16 */
#define COW_METRICS_BUCKETS 15  /* finite latency bounds; +Inf is the count */

/* What the connections record, one request at a time. Zero-initialised. */
struct cow_request_metrics {
        uint64_t by_op_code[COW_METRICS_OPS][COW_METRICS_CODES];
        uint64_t latency_buckets[COW_METRICS_BUCKETS]; /* requests within bound i, not below */
        uint64_t latency_count;
        uint64_t latency_sum_ns;
};

/*
 * Counts one answered request: its Request op_case, the status code of its
 * reply, and the nanoseconds from its frame's arrival to its reply queued.
 */
void cow_request_metrics_record(struct cow_request_metrics *m, unsigned op_case, unsigned code,
                                uint64_t ns);

/* What /metrics reports; borrowed, and must outlive the metrics server. */
/* The metrics listener's own connections (it accepts at most COW_METRICS_MAX_CONNECTIONS). */
struct cow_metrics_http_stats {
        uint32_t connections;   /* open now */
        uint64_t accept_pauses; /* times the cap was reached and accepting stopped */
};

struct cow_metrics_sources {
        cow_engine *engine;
        const struct cow_counters *counters;
        const struct cow_request_metrics *requests;
        const struct cow_metrics_http_stats *http; /* NULL: not reported */
};

/*
 * Writes every metric in the Prometheus text exposition format (version
 * 0.0.4) to out. Returns 0 or -ENOMEM.
 */
int cow_metrics_render(const struct cow_metrics_sources *src, struct evbuffer *out);

/*
 * Whether address (numeric IPv4 or IPv6) is a loopback address: 127.0.0.0/8
 * or ::1. The metrics listener accepts no other.
 */
bool cow_metrics_address_is_loopback(const char *address);

typedef struct cow_metrics_server cow_metrics_server;

/*
 * The metrics listener's connection cap. At the cap it stops accepting until
 * one closes (each is dropped after 10 s without a whole request): a flood
 * waits in the kernel's backlog, costing the daemon no memory and no fds.
 */
#define COW_METRICS_MAX_CONNECTIONS 16

/*
 * Serves GET /metrics on address:port (loopback only). Other paths get 404, other methods 405. Returns 0,
 * -EINVAL for a non-loopback address, or a negative errno when the socket
 * cannot be bound (logged).
 */
int cow_metrics_server_new(struct event_base *base, const char *address, uint16_t port,
                           const struct cow_metrics_sources *src, const cow_log *log,
                           cow_metrics_server **ret);

/* Accepts NULL. */
void cow_metrics_server_free(cow_metrics_server *m);

#endif /* COWD_SERVICE_METRICS_H */
