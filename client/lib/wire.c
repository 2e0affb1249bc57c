/* SPDX-License-Identifier: MIT */
/*
 * Packing and unpacking for callers that do their own I/O: the public face
 * of codec.c and the framer, with no connection behind it.
 */
#include "cowd/client.h"

#include <errno.h>

#include "codec.h"
#include "frame.h"

size_t cowc_request_frame_size(const Cowd__V1__Request *req)
{
        return COW_FRAME_HEADER + cowd__v1__request__get_packed_size(req);
}

long cowc_encode_request(const Cowd__V1__Request *req, void *buf, size_t cap, uint32_t max)
{
        size_t len = cowd__v1__request__get_packed_size(req);
        uint8_t *p = buf;

        if (max == 0)
                max = COW_FRAME_DEFAULT_MAX;
        if (len == 0 || len > max)
                return -EMSGSIZE;
        if (cap < COW_FRAME_HEADER + len)
                return -ENOSPC;
        cow_frame_header((uint32_t)len, p);
        cowd__v1__request__pack(req, p + COW_FRAME_HEADER);
        return (long)(COW_FRAME_HEADER + len);
}

long cowc_decode_response(const void *buf, size_t len, uint32_t max, Cowd__V1__Response **ret)
{
        const uint8_t *payload = NULL;
        uint32_t plen = 0;
        size_t consumed = 0;
        int r;

        switch (cow_frame_parse(buf, len, max ? max : COW_FRAME_DEFAULT_MAX, &payload, &plen,
                                &consumed)) {
        case COW_FRAME_NEED_MORE:
                return 0;
        case COW_FRAME_TOO_BIG:
                return -EMSGSIZE;
        case COW_FRAME_EMPTY:
                return -EPROTO;
        case COW_FRAME_OK:
                break;
        }
        r = cowc_codec_unpack_response(payload, plen, ret);
        if (r < 0)
                return r;
        return (long)consumed;
}
