/* SPDX-License-Identifier: MIT */
/* The framer: any bytes, fed in any split, give frames inside the buffer or an error. */
#include <stdint.h>
#include <stdlib.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint32_t max = size > 0 ? (uint32_t)data[0] * 64 + 1 : 1;
        size_t at = 0;
        while (at < size) {
                const uint8_t *payload = NULL;
                uint32_t len = 0;
                size_t used = 0;
                enum cow_frame_status st =
                        cow_frame_parse(data + at, size - at, max, &payload, &len, &used);
                if (st != COW_FRAME_OK)
                        break;
                if (len == 0 || len > max || used != COW_FRAME_HEADER + len ||
                    used > size - at || payload != data + at + COW_FRAME_HEADER)
                        abort();
                uint8_t hdr[COW_FRAME_HEADER];
                cow_frame_header(len, hdr);
                if (cow_frame_declared(hdr) != len)
                        abort();
                at += used;
        }
        return 0;
}
