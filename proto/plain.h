/* SPDX-License-Identifier: MIT */
/*
 * The plain encoding of reads and writes, the requests and replies that
 * carry page data, without protobuf-c. No I/O.
 *
 * "Plain" is the encoding every protobuf library writes: the fields in field
 * number order, each once, nothing unknown, proto3's zero values left out.
 * For such bytes the functions here produce or accept exactly what protobuf-c
 * would (tests/unit/test_codec.c checks both directions), and they decline
 * anything else, which then goes through protobuf-c. What they save is
 * protobuf-c's allocations, its descriptor walks and, for data, a copy: a
 * decoded write's data and a decoded read reply's data point into the
 * frame, and a read reply's data can be put where it will be sent from
 * before the bytes in front of it are written.
 *
 * The daemon (daemon/service/codec.c) and the client library
 * (client/lib/wire.c) both use it.
 */
#ifndef COWD_PROTO_PLAIN_H
#define COWD_PROTO_PLAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cowd.pb-c.h"

/* A decoded read or write request; req points at op. */
struct cow_plain_request {
        Cowd__V1__Request req;
        union {
                Cowd__V1__ReadRequest read;
                Cowd__V1__WriteRequest write;
        } op;
};

/*
 * Decodes buf[0..len) into out if it is a read or write request in the plain
 * encoding; a write's data then points into buf. Returns false otherwise
 * (out is then unspecified).
 */
bool cow_plain_request_decode(const uint8_t *buf, size_t len, struct cow_plain_request *out);

/*
 * The encoded size of req if it is a read or write that this file encodes
 * (no unknown fields), else 0. cow_plain_request_pack() then writes the
 * bytes protobuf-c would.
 */
size_t cow_plain_request_size(const Cowd__V1__Request *req);

/* Encodes req, for which cow_plain_request_size() gave a size, into out. */
void cow_plain_request_pack(const Cowd__V1__Request *req, uint8_t *out);

/* A decoded read or write reply; resp points at status and result. */
struct cow_plain_response {
        Cowd__V1__Response resp;
        Cowd__V1__Status status;
        union {
                Cowd__V1__ReadResult read;
                Cowd__V1__WriteResult write;
        } result;
};

/*
 * Decodes buf[0..len) into out if it is a Response in the plain encoding
 * whose status has no message, with no fault, and whose result is a read or
 * a write; a read's data then points into buf. Returns false otherwise.
 */
bool cow_plain_response_decode(const uint8_t *buf, size_t len, struct cow_plain_response *out);

/*
 * The encoded size of resp if it is an OK reply to a write (a status with no
 * code or message, no fault, an empty result), else 0.
 * cow_plain_write_reply_pack() then writes the bytes protobuf-c would.
 */
size_t cow_plain_write_reply_size(const Cowd__V1__Response *resp);
void cow_plain_write_reply_pack(const Cowd__V1__Response *resp, uint8_t *out);

/*
 * A read reply in place: an OK Response whose result is a ReadResult of len
 * bytes encodes as a prefix (id, status, result and data headers) followed
 * by the data.
 */

/* The most bytes a read reply's prefix takes. */
#define COW_PLAIN_READ_PREFIX_MAX 32

/* The size of the prefix of an OK read reply to request id carrying len (> 0) bytes. */
size_t cow_plain_read_prefix_size(uint64_t id, size_t len);

/*
 * Writes into out the prefix of resp, which must be an OK reply with a read
 * result of at least one byte and nothing else: its status has no message
 * and it has no fault. Returns the prefix's size, or 0 (nothing written)
 * when resp is not such a reply.
 */
size_t cow_plain_read_prefix_pack(const Cowd__V1__Response *resp, uint8_t *out);

#endif /* COWD_PROTO_PLAIN_H */
