/* SPDX-License-Identifier: MIT */
#include "crc32.h"

/* One table, built at compile time from the polynomial, bit by bit. */
#define P 0xEDB88320u
#define B(c) (((c) & 1) ? P ^ ((c) >> 1) : (c) >> 1)
#define E(i) B(B(B(B(B(B(B(B((uint32_t)(i)))))))))
#define R4(i) E(i), E((i) + 1), E((i) + 2), E((i) + 3)
#define R16(i) R4(i), R4((i) + 4), R4((i) + 8), R4((i) + 12)
#define R64(i) R16(i), R16((i) + 16), R16((i) + 32), R16((i) + 48)

static const uint32_t table[256] = { R64(0), R64(64), R64(128), R64(192) };

uint32_t crc32_update(uint32_t crc, const void *buf, size_t len)
{
        const uint8_t *p = buf;
        crc = ~crc;
        while (len--)
                crc = table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
        return ~crc;
}
