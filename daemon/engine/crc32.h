/* SPDX-License-Identifier: MIT */
/* CRC-32 (IEEE 802.3, reflected; zlib's crc32()), the checksum that closes a checkpoint. */
#ifndef COWD_ENGINE_CRC32_H
#define COWD_ENGINE_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 to start) over len bytes. */
uint32_t crc32_update(uint32_t crc, const void *buf, size_t len);

#endif /* COWD_ENGINE_CRC32_H */
