/* SPDX-License-Identifier: MIT */
/* Writing a framebuffer as a PNG, through libpng. */
#ifndef COWCTL_FBPNG_H
#define COWCTL_FBPNG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Writes width x height pixels to f as an 8-bit RGB PNG. pixels holds them
 * row after row as the framebuffer does: little-endian 32-bit 0xAARRGGBB
 * words, that is bytes B, G, R, A; the A byte is not drawn (a framebuffer's
 * fourth byte is padding to the screen). Returns 0, -EINVAL for a geometry
 * that does not fit len bytes, -ENOMEM, or -EIO when libpng or the stream
 * failed (why in err).
 */
int png_write_fb(FILE *f, const uint8_t *pixels, size_t len, uint32_t width, uint32_t height,
                 char *err, size_t errlen);

#endif /* COWCTL_FBPNG_H */
