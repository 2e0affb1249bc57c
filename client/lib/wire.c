/* SPDX-License-Identifier: MIT */
/*
 * Packing and unpacking for callers that do their own I/O: the public face
 * of codec.c and the framer, with no connection behind it.
 */
#include "cowd/client.h"

#include <errno.h>

#include "codec.h"
#include "frame.h"
#include "plain.h"

size_t cowc_request_frame_size(const Cowd__V1__Request *req)
{
        return COW_FRAME_HEADER + cowc_codec_request_size(req);
}

long cowc_encode_request(const Cowd__V1__Request *req, void *buf, size_t cap, uint32_t max)
{
        size_t len = cowc_codec_request_size(req);
        uint8_t *p = buf;

        if (max == 0)
                max = COW_FRAME_DEFAULT_MAX;
        if (len == 0 || len > max)
                return -EMSGSIZE;
        if (cap < COW_FRAME_HEADER + len)
                return -ENOSPC;
        cow_frame_header((uint32_t)len, p);
        cowc_codec_request_pack(req, p + COW_FRAME_HEADER);
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

long cowc_decode_response_view(const void *buf, size_t len, uint32_t max,
                               struct cowc_response_view *view)
{
        const uint8_t *payload = NULL;
        uint32_t plen = 0;
        size_t consumed = 0;
        struct cow_plain_response plain;
        long n;

        /* Reads and writes, which carry the data, skip protobuf-c (proto/plain.h). */
        if (cow_frame_parse(buf, len, max ? max : COW_FRAME_DEFAULT_MAX, &payload, &plen,
                            &consumed) == COW_FRAME_OK &&
            cow_plain_response_decode(payload, plen, &plain)) {
                view->in_place = plain.resp;
                view->status = plain.status;
                view->in_place.status = &view->status;
                if (plain.resp.result_case == COWD__V1__RESPONSE__RESULT_READ) {
                        view->result.read = plain.result.read;
                        view->in_place.read = &view->result.read;
                } else {
                        view->result.write = plain.result.write;
                        view->in_place.write = &view->result.write;
                }
                view->reply = &view->in_place;
                view->owned = NULL;
                return (long)consumed;
        }
        n = cowc_decode_response(buf, len, max, &view->owned);
        if (n > 0)
                view->reply = view->owned;
        return n;
}

void cowc_response_view_release(struct cowc_response_view *view)
{
        cowc_response_free(view->owned);
        view->owned = NULL;
        view->reply = NULL;
}
