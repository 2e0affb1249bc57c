/* SPDX-License-Identifier: MIT */
/*
 * A response under construction, and the memory it points into.
 *
 * protobuf-c leaves the ownership of a message built by hand to its builder.
 * A reply gives every part of one Response (results, strings, byte buffers,
 * repeated fields) a single owner: parts come from cow_reply_alloc() and all
 * go away with cow_reply_free(). Nothing here is decoded, so nothing here is
 * ever passed to __free_unpacked.
 */
#ifndef COWD_SERVICE_REPLY_H
#define COWD_SERVICE_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cowd.pb-c.h"

typedef struct cow_reply cow_reply;

/* Longest status message; longer ones are cut. */
#define COW_REPLY_MESSAGE_MAX 256

/* Creates a reply to request id, with status OK and no result. */
int cow_reply_new(uint64_t id, cow_reply **ret);

/*
 * A reply with a status other than OK and no result, for answers that no
 * handler gives (a bad frame, a refused connection). Returns 0 or -ENOMEM.
 */
int cow_reply_new_error(uint64_t id, Cowd__V1__Code code, const char *message, cow_reply **ret);

/* Frees the reply and every part allocated for it. Accepts NULL. */
void cow_reply_free(cow_reply *reply);

/* The message, for filling in results and for packing. */
Cowd__V1__Response *cow_reply_response(cow_reply *reply);

/*
 * size bytes that live as long as the reply, zeroed. Returns NULL when out
 * of memory; callers then answer with cow_reply_fail_oom().
 */
void *cow_reply_alloc(cow_reply *reply, size_t size);

/*
 * Sets the status code and a printf-style message, and drops any result set
 * so far: a reply that is not OK carries no result. Returns 0 or -ENOMEM
 * (the code is set even then, only the message is lost).
 */
int cow_reply_set_status(cow_reply *reply, Cowd__V1__Code code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Attaches a fault (kind and first faulting address) to the reply. */
void cow_reply_set_fault(cow_reply *reply, Cowd__V1__FaultKind kind, uint64_t addr);

/*
 * Lends the reply len bytes at buf to hold a result's data (cow_reply_data()),
 * so that the data can be made where it will be sent from. The memory stays
 * the lender's and must outlive the packing of the reply.
 */
void cow_reply_lend(cow_reply *reply, uint8_t *buf, size_t len);

/*
 * len bytes for a result's data, which the caller must fill in full before
 * the reply is sent: the lent buffer when it is exactly len bytes long and
 * not yet taken, else memory of the reply's own, not zeroed. Returns NULL
 * when out of memory.
 */
uint8_t *cow_reply_data(cow_reply *reply, size_t len);

/* Sets status INTERNAL without allocating: the way out when an allocation failed. */
void cow_reply_fail_oom(cow_reply *reply);

/* The status code set so far. */
Cowd__V1__Code cow_reply_code(const cow_reply *reply);

/*
 * Deferred replies: an answer that can only be given later (a checkpoint
 * must be durable first) without blocking the event loop meanwhile.
 *
 * The handler marks its reply with cow_reply_defer() and keeps a pointer to
 * it (its producer). The caller of cow_dispatch() sees cow_reply_is_deferred(),
 * registers with cow_reply_on_ready() and keeps the reply unsent (its
 * consumer). Later the producer fills the reply in and calls
 * cow_reply_ready(), exactly once: from then on the consumer's callback owns
 * the reply and frees it. A consumer that goes away before that calls
 * cow_reply_abandon() instead of cow_reply_free(), and cow_reply_ready() then
 * frees the reply itself.
 */
void cow_reply_defer(cow_reply *reply);
bool cow_reply_is_deferred(const cow_reply *reply);

/* fn(reply, arg) runs at cow_reply_ready(); at once if the reply is not deferred (any more). */
void cow_reply_on_ready(cow_reply *reply, void (*fn)(cow_reply *reply, void *arg), void *arg);

/* The producer's side: the reply is complete. */
void cow_reply_ready(cow_reply *reply);

/* The consumer's side: nobody will take the reply; the producer's cow_reply_ready() frees it. */
void cow_reply_abandon(cow_reply *reply);

/*
 * Makes obj live as long as the reply: release(obj) runs when the reply is
 * freed. The consumer of a deferred reply holds the request it answers this
 * way, since the producer may read the request until the reply is ready.
 * One object per reply.
 */
void cow_reply_hold(cow_reply *reply, void *obj, void (*release)(void *obj));

#endif /* COWD_SERVICE_REPLY_H */
