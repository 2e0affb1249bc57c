/* SPDX-License-Identifier: MIT */
#include "crc32.h"

#include <zlib.h>

/* zlib's CRC-32 is this one (the same table, pre- and post-inverted), computed a word at a time. */
uint32_t crc32_update(uint32_t crc, const void *buf, size_t len)
{
        return (uint32_t)crc32_z(crc, buf, len);
}
