/* SPDX-License-Identifier: MIT */
/*
 * The one place the client packs requests and unpacks replies. Nothing else
 * in the client calls protobuf-c's pack or unpack functions.
 */
#ifndef COWC_CODEC_H
#define COWC_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "cowd.pb-c.h"

/* A growable byte buffer; data[0..len) is valid. */
struct cowc_buf {
        uint8_t *data;
        size_t len;
        size_t cap;
};

void cowc_buf_release(struct cowc_buf *b);

/* The encoded size of req, without the frame header. */
size_t cowc_codec_request_size(const Cowd__V1__Request *req);

/* Encodes req into out, which holds cowc_codec_request_size(req) bytes. */
void cowc_codec_request_pack(const Cowd__V1__Request *req, uint8_t *out);

/*
 * Appends req, framed (4-byte big-endian length, then the message), to out.
 * Returns 0, -ENOMEM, or -EMSGSIZE when the packed message exceeds max.
 */
int cowc_codec_append_request(struct cowc_buf *out, const Cowd__V1__Request *req, uint32_t max);

/*
 * Decodes one Response payload (without its frame header). Allocation is
 * bounded by a budget proportional to the payload so a hostile reply cannot
 * make the client allocate without limit. Returns 0 or -EPROTO.
 */
int cowc_codec_unpack_response(const uint8_t *payload, size_t len, Cowd__V1__Response **ret);

#endif /* COWC_CODEC_H */
