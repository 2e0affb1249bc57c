/* SPDX-License-Identifier: MIT */
#include "fbpng.h"

#include <errno.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

struct png_failure {
        char *err;
        size_t errlen;
};

/* libpng's error handler: say why, then leave through the setjmp in png_write_fb(). */
static void on_png_error(png_structp png, png_const_charp msg)
{
        struct png_failure *fail = png_get_error_ptr(png);

        snprintf(fail->err, fail->errlen, "PNG: %s", msg);
        png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp msg)
{
        (void)png;
        (void)msg;
}

int png_write_fb(FILE *f, const uint8_t *pixels, size_t len, uint32_t width, uint32_t height,
                 char *err, size_t errlen)
{
        struct png_failure fail = { .err = err, .errlen = errlen };
        png_structp png = NULL;
        png_infop info = NULL;
        /* volatile: set before and read after a longjmp */
        uint8_t *volatile row = NULL;
        volatile int r = -EIO;

        if (width == 0 || height == 0 || (uint64_t)width * height * 4 > len) {
                snprintf(err, errlen, "PNG: %ux%u pixels do not fit %zu bytes", width, height,
                         len);
                return -EINVAL;
        }
        row = malloc((size_t)width * 3);
        png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &fail, on_png_error,
                                      on_png_warning);
        if (png)
                info = png_create_info_struct(png);
        if (!row || !png || !info) {
                snprintf(err, errlen, "PNG: out of memory");
                r = -ENOMEM;
                goto out;
        }
        if (setjmp(png_jmpbuf(png)))
                goto out; /* on_png_error() said why */
        png_init_io(png, f);
        png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(png, info);
        for (uint32_t y = 0; y < height; y++) {
                const uint8_t *src = pixels + (size_t)y * width * 4;
                for (uint32_t x = 0; x < width; x++) {
                        row[3 * x + 0] = src[4 * x + 2]; /* R */
                        row[3 * x + 1] = src[4 * x + 1]; /* G */
                        row[3 * x + 2] = src[4 * x + 0]; /* B */
                }
                png_write_row(png, row);
        }
        png_write_end(png, NULL);
        r = fflush(f) == 0 && !ferror(f) ? 0 : -EIO;
        if (r < 0)
                snprintf(err, errlen, "PNG: %s", strerror(errno));
out:
        png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
        free(row);
        return r;
}
