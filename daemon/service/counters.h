/* SPDX-License-Identifier: MIT */
/*
 * The service's counters, reported in SysStats. The server owns the one
 * instance; connections and the dispatcher are handed a pointer and bump the
 * counters for what they see. Plain fields: the daemon is single-threaded.
 */
#ifndef COWD_SERVICE_COUNTERS_H
#define COWD_SERVICE_COUNTERS_H

#include <stdint.h>

struct cow_counters {
        uint64_t connections;             /* open now */
        uint64_t connections_total;       /* accepted since start */
        uint64_t requests_total;          /* requests decoded and dispatched */
        uint64_t rejected_connections;    /* refused at max_connections */
        uint64_t oversize_frames;         /* declared frame length zero or above max_frame_bytes */
        uint64_t protocol_errors;         /* frames that did not decode as a Request */
        uint64_t idle_timeouts;           /* connections closed by idle_timeout */
        uint64_t backpressure_pauses;     /* times reading stopped for unsent replies */
        uint64_t proc_limit_rejections;   /* spawn or fork refused at max_processes */
        uint64_t oversize_requests;       /* a field over its limit, or decode or reply too big */
        uint64_t engine_limit_rejections; /* maps, page tables, frames or addresses exhausted */
        uint64_t permission_denials;      /* ops on another uid's process or files */
        uint64_t auth_failures;           /* TCP clients refused for a missing or wrong token */
        uint64_t quota_rejections;        /* spawn or fork refused at max_processes_per_user */
};

#endif /* COWD_SERVICE_COUNTERS_H */
