/* SPDX-License-Identifier: MIT */
/*
 * The only place that packs and unpacks protobuf messages.
 *
 * Keeping both directions here means one file decides how much memory a
 * request may cost to decode and who frees what: a request comes back inside
 * a cow_codec_request, whose allocator charges every byte protobuf-c asks for
 * against a budget, and only that object ever calls __free_unpacked. Responses
 * are built by the caller (see reply.h) and only packed here. No I/O.
 */
#ifndef COWD_SERVICE_CODEC_H
#define COWD_SERVICE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cowd.pb-c.h"

typedef struct cow_codec_request cow_codec_request;

/*
 * Decodes one request from buf[0..len). Decoding may allocate at most
 * cow_codec_unpack_budget(len) bytes. A read or a write in the plain
 * encoding is decoded in place, allocating nothing but the request itself,
 * and a write's data then points into buf: buf must outlive the request.
 *
 * Returns 0, -EBADMSG when the bytes are not a Request, -ENOBUFS when
 * decoding would exceed the budget (a frame built to expand, such as
 * millions of unknown fields), or -ENOMEM.
 */
int cow_codec_request_unpack(const uint8_t *buf, size_t len, cow_codec_request **ret);

/* As cow_codec_request_unpack(), always through protobuf-c (for tests). */
int cow_codec_request_unpack_generic(const uint8_t *buf, size_t len, cow_codec_request **ret);

/* Whether req was decoded in place. */
bool cow_codec_request_in_place(const cow_codec_request *req);

/* The decoded message; valid until cow_codec_request_free(). */
const Cowd__V1__Request *cow_codec_request_message(const cow_codec_request *req);

/* Frees the request and everything decoded into it. Accepts NULL. */
void cow_codec_request_free(cow_codec_request *req);

/* How many bytes decoding a frame of len bytes may allocate. */
size_t cow_codec_unpack_budget(size_t len);

/* The encoded size of resp, without the frame header. */
size_t cow_codec_response_size(const Cowd__V1__Response *resp);

/* Encodes resp into out, which holds cow_codec_response_size(resp) bytes. */
void cow_codec_response_pack(const Cowd__V1__Response *resp, uint8_t *out);

/*
 * A read's reply in place: the encoding of an OK Response whose result is a
 * ReadResult of len bytes is a prefix (id, status, result and data headers)
 * followed by the data, so the data can be copied once, straight to where the
 * reply is sent from, and the prefix written before it afterwards.
 */

/* The most bytes a read reply's prefix takes. */
#define COW_CODEC_READ_PREFIX_MAX 32 /* COW_PLAIN_READ_PREFIX_MAX */

/* The size of the prefix of an OK read reply to request id carrying len bytes. */
size_t cow_codec_read_prefix_size(uint64_t id, size_t len);

/*
 * Writes into out the prefix of resp, which must be an OK reply with a read
 * result and nothing else: its status has no message and it has no fault.
 * cow_codec_response_pack(resp) gives the same bytes as this prefix followed
 * by the data. Returns the prefix's size, or 0 (nothing written) when resp is
 * not such a reply.
 */
size_t cow_codec_read_prefix_pack(const Cowd__V1__Response *resp, uint8_t *out);

#endif /* COWD_SERVICE_CODEC_H */
