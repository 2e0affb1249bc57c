/* SPDX-License-Identifier: MIT */
/*
 * Length-prefixed framing for the cowd wire protocol, with no I/O.
 *
 * Each message is preceded by its length as a 4-byte big-endian unsigned
 * integer. The parser is fed bytes and says how many it consumed; it checks a
 * declared length against the maximum before anyone allocates for it.
 */
#ifndef COWD_PROTO_FRAME_H
#define COWD_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define COW_FRAME_HEADER 4u
#define COW_FRAME_DEFAULT_MAX (8u * 1024u * 1024u)

enum cow_frame_status {
        COW_FRAME_NEED_MORE = 0, /* not a whole frame yet */
        COW_FRAME_OK = 1,        /* *ret_payload, *ret_len describe one whole frame */
        COW_FRAME_EMPTY = -1,    /* declared length 0: protocol error */
        COW_FRAME_TOO_BIG = -2,  /* declared length above max: protocol error */
};

/*
 * Looks for one frame at the start of buf[0..avail). On COW_FRAME_OK sets
 * *ret_payload to the payload inside buf, *ret_len to its length and
 * *ret_consumed to header plus payload. On COW_FRAME_TOO_BIG and
 * COW_FRAME_EMPTY, *ret_len holds the declared length. On NEED_MORE, nothing
 * is set: feed more bytes and call again.
 */
enum cow_frame_status cow_frame_parse(const uint8_t *buf, size_t avail, uint32_t max,
                                      const uint8_t **ret_payload, uint32_t *ret_len,
                                      size_t *ret_consumed);

/* Writes the 4-byte header for a payload of len bytes. */
void cow_frame_header(uint32_t len, uint8_t out[COW_FRAME_HEADER]);

/* The declared length in a 4-byte header. */
uint32_t cow_frame_declared(const uint8_t hdr[COW_FRAME_HEADER]);

#endif /* COWD_PROTO_FRAME_H */
