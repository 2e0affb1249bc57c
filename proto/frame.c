/* SPDX-License-Identifier: MIT */
#include "frame.h"

uint32_t cow_frame_declared(const uint8_t hdr[COW_FRAME_HEADER])
{
        return (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 |
               (uint32_t)hdr[3];
}

void cow_frame_header(uint32_t len, uint8_t out[COW_FRAME_HEADER])
{
        out[0] = (uint8_t)(len >> 24);
        out[1] = (uint8_t)(len >> 16);
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
}

enum cow_frame_status cow_frame_parse(const uint8_t *buf, size_t avail, uint32_t max,
                                      const uint8_t **ret_payload, uint32_t *ret_len,
                                      size_t *ret_consumed)
{
        if (avail < COW_FRAME_HEADER)
                return COW_FRAME_NEED_MORE;

        uint32_t len = cow_frame_declared(buf);
        /* Judge the declared length before anything is allocated or awaited. */
        if (len == 0) {
                *ret_len = 0;
                return COW_FRAME_EMPTY;
        }
        if (len > max) {
                *ret_len = len;
                return COW_FRAME_TOO_BIG;
        }
        if (avail - COW_FRAME_HEADER < len)
                return COW_FRAME_NEED_MORE;

        *ret_payload = buf + COW_FRAME_HEADER;
        *ret_len = len;
        *ret_consumed = COW_FRAME_HEADER + (size_t)len;
        return COW_FRAME_OK;
}
