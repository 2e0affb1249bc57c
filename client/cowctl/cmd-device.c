/* SPDX-License-Identifier: MIT */
/* Device commands: console (print or follow the console log) and screenshot (fb0 as a PNG). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "cmd.h"
#include "fbpng.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* How long `console -f` waits between polls that found nothing new. */
#define FOLLOW_POLL_MS 200

static int cmd_console_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        struct args_opt opts[] = {
                { .name = "-f" },
                { .name = "--from", .has_value = true },
        };
        uint8_t *all = NULL;
        size_t have = 0;
        uint64_t pos = 0;
        char *pos_words[1];
        int r;

        r = args_split(argc, argv, opts, ARRAY_SIZE(opts), pos_words, 0, ctx->why,
                       sizeof(ctx->why));
        if (r < 0)
                return r;
        if (opts[1].seen && (r = cmd_parse_u64(ctx, "position", opts[1].value, &pos)) < 0)
                return r;
        if ((r = cmd_connect(ctx)) < 0)
                return r;
        for (;;) {
                Cowd__V1__Response *resp = NULL;
                r = cowc_console_read(ctx->conn, pos, 0, &resp, &ctx->err);
                if (r != 0)
                        break;
                const Cowd__V1__ConsoleReadResult *c = resp->console_read;
                if (c->start > pos && !ctx->quiet)
                        fprintf(stderr, "cowctl: console: %" PRIu64 " bytes were lost "
                                        "(the log keeps the most recent ones)\n",
                                c->start - pos);
                if (c->data.len) {
                        if (!ctx->quiet) {
                                fwrite(c->data.data, 1, c->data.len, ctx->out);
                                fflush(ctx->out);
                        }
                        if (!opts[0].seen) {
                                uint8_t *p = realloc(all, have + c->data.len);
                                if (!p) {
                                        cowc_response_free(resp);
                                        r = -ENOMEM;
                                        break;
                                }
                                all = p;
                                memcpy(all + have, c->data.data, c->data.len);
                                have += c->data.len;
                        }
                }
                bool more = c->next_offset > pos && c->data.len > 0;
                pos = c->next_offset;
                cowc_response_free(resp);
                if (!more) {
                        if (!opts[0].seen)
                                break;
                        /* Following, as tail -f does: ask again a little later. */
                        nanosleep(&(struct timespec){ .tv_nsec = FOLLOW_POLL_MS * 1000000L },
                                  NULL);
                }
        }
        if (r == 0)
                r = value_set_bytes(ret, all ? all : (uint8_t *)"", have);
        free(all);
        return r;
}

const struct cmd_entry cmd_console_entry = {
        .name = "console",
        .usage = "[-f] [--from POS]",
        .summary = "print the console log (what processes wrote to the console device); "
                   "-f follows it",
        .exec = cmd_console_exec,
};

/*
 * Reads the whole of a device's memory, in pieces that fit a frame. The
 * pieces are whole pixels, so the last one ends on a pixel too.
 */
static int device_read_all(struct cmd_ctx *ctx, const char *device, uint8_t **ret,
                           size_t *ret_len, uint32_t *ret_width, uint32_t *ret_height)
{
        size_t chunk = (ctx->max_frame - FRAME_SLACK) & ~(size_t)3;
        uint8_t *all = NULL;
        uint64_t size = 0, off = 0;
        uint32_t width = 0, height = 0;
        int r = 0;

        do {
                Cowd__V1__Response *resp = NULL;
                /* The first request reads nothing: it learns the size and the geometry. */
                uint64_t want = all ? size - off : 0;
                if (want > chunk)
                        want = chunk;
                r = cowc_device_read(ctx->conn, device, off, want, &resp, &ctx->err);
                if (r != 0)
                        break;
                const Cowd__V1__DeviceReadResult *d = resp->device_read;
                if (!all) {
                        size = d->size;
                        width = d->width;
                        height = d->height;
                        all = malloc(size ? size : 1);
                        if (!all) {
                                cowc_response_free(resp);
                                r = -ENOMEM;
                                break;
                        }
                } else if (d->data.len != want || d->size != size) {
                        cowc_response_free(resp);
                        r = -EPROTO;
                        break;
                }
                if (want)
                        memcpy(all + off, d->data.data, want);
                off += want;
                cowc_response_free(resp);
        } while (off < size || !all);
        if (r != 0) {
                free(all);
                return r;
        }
        *ret = all;
        *ret_len = (size_t)size;
        *ret_width = width;
        *ret_height = height;
        return 0;
}

static int cmd_screenshot_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        char *pos[2], err[256] = "";
        uint32_t width = 0, height = 0;
        uint8_t *pixels = NULL;
        size_t len = 0;
        FILE *f = NULL;
        int r;

        r = args_split(argc, argv, NULL, 0, pos, 2, ctx->why, sizeof(ctx->why));
        if (r < 0)
                return r;
        if (r != 2)
                return cmd_usage(ctx, &cmd_screenshot_entry);
        if (strcmp(pos[0], "fb0") != 0)
                return cmd_fail(ctx, -EINVAL, "screenshot: '%s' is not a screen (fb0)", pos[0]);
        if ((r = cmd_connect(ctx)) < 0)
                return r;
        r = device_read_all(ctx, pos[0], &pixels, &len, &width, &height);
        if (r != 0)
                return r;
        f = strcmp(pos[1], "-") == 0 ? stdout : fopen(pos[1], "wbe");
        if (!f) {
                r = cmd_fail(ctx, -errno, "%s: %s", pos[1], strerror(errno));
                goto out;
        }
        r = png_write_fb(f, pixels, len, width, height, err, sizeof(err));
        if (f != stdout && fclose(f) != 0 && r == 0) {
                r = -errno;
                snprintf(err, sizeof(err), "%s", strerror(errno));
        }
        if (r < 0) {
                cmd_fail(ctx, r, "%s: %s", pos[1], err);
                goto out;
        }
        value_set_int(ret, (int64_t)width * height, false);
out:
        free(pixels);
        return r;
}

const struct cmd_entry cmd_screenshot_entry = {
        .name = "screenshot",
        .usage = "fb0 OUT.png",
        .summary = "save what the framebuffer fb0 shows as a PNG ('-': standard output)",
        .exec = cmd_screenshot_exec,
        .silent = true,
};
