/* SPDX-License-Identifier: MIT */
/*
 * Turns one decoded request into one reply, against the engine.
 *
 * No I/O and no protobuf encoding: the caller decodes (codec.h), dispatches
 * and packs the reply, so a fuzzer can drive framer, codec and dispatch in
 * one process. Ownership is enforced here: a process belongs to the uid that
 * spawned it, its forks inherit that uid, and only its owner or uid 0 may act
 * on it.
 */
#ifndef COWD_SERVICE_DISPATCH_H
#define COWD_SERVICE_DISPATCH_H

#include <stdint.h>

#include <cowd/engine.h>

#include "cowd.pb-c.h"
#include "counters.h"
#include "service_limits.h"
#include "reply.h"

typedef struct cow_dispatcher cow_dispatcher;

/*
 * Creates a dispatcher over engine. limits and counters are borrowed and
 * must outlive it; counters is where rejections are counted and where
 * SysStats reads the service's figures from.
 */
int cow_dispatcher_new(cow_engine *engine, const struct cow_service_limits *limits,
                       struct cow_counters *counters, cow_dispatcher **ret);

/* Accepts NULL. */
void cow_dispatcher_free(cow_dispatcher *d);

struct cow_checkpointer;

/*
 * Lets checkpoint requests through to c (borrowed). Without one, they are
 * FAILED_PRECONDITION.
 */
void cow_dispatcher_set_checkpointer(cow_dispatcher *d, struct cow_checkpointer *c);

struct cow_filestore;
struct cow_filewriter;

/*
 * Serves file requests from fs (borrowed). Without one, they are
 * FAILED_PRECONDITION. With a writer w (borrowed; it must be freed before
 * the dispatcher and after every connection), a put's disk work is done on
 * the writer's thread and its reply is deferred (reply.h); without one it
 * is done within cow_dispatch().
 */
void cow_dispatcher_set_files(cow_dispatcher *d, struct cow_filestore *fs,
                              struct cow_filewriter *w);

/*
 * The pids the engine's OOM killer ended since the last call, into
 * out[0..cap-1], oldest first; returns how many. For the caller to log.
 */
size_t cow_dispatcher_oom_victims(cow_dispatcher *d, cow_pid *out, size_t cap);

/*
 * Answers req on behalf of uid. Every outcome, failures included, is a reply
 * with a status; the call itself fails only with -ENOMEM when not even an
 * error reply could be made. A deferred reply (reply.h) may read req until
 * it is ready: the caller keeps req until then (cow_reply_hold()).
 */
int cow_dispatch(cow_dispatcher *d, uint32_t uid, const Cowd__V1__Request *req,
                 cow_reply **ret_reply);

/*
 * As cow_dispatch(), with buf (buf_len bytes) lent to the reply for the data
 * of a read of exactly buf_len bytes (cow_reply_lend()): the engine then
 * copies the data straight to where it will be sent from. The reply's
 * read->data.data is buf if, and only if, the buffer was used.
 */
int cow_dispatch_lent(cow_dispatcher *d, uint32_t uid, const Cowd__V1__Request *req,
                      uint8_t *buf, size_t buf_len, cow_reply **ret_reply);

#endif /* COWD_SERVICE_DISPATCH_H */
