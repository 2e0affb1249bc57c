/* SPDX-License-Identifier: MIT */
/* Memory commands: mmap, munmap, mprotect, madvise, read and write. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "args.h"
#include "cmd.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))


static int cmd_mmap_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        struct args_opt opts[] = {
                { .name = "--addr", .has_value = true },
                { .name = "--shared" },
                { .name = "--fixed" },
                { .name = "--file", .has_value = true },
                { .name = "--device", .has_value = true },
                { .name = "--offset", .has_value = true },
        };
        struct cowc_mmap_args args = { 0 };
        char *pos[3];
        uint32_t pid;
        uint64_t addr;
        int r;

        int n = args_split(argc, argv, opts, ARRAY_SIZE(opts), pos, 3, ctx->why,
                           sizeof(ctx->why));
        if (n < 0)
                return n;
        if (n != 3)
                return cmd_usage(ctx, &cmd_mmap_entry);
        if ((r = cmd_parse_pid(ctx, pos[0], &pid)) < 0 ||
            (r = cmd_parse_u64(ctx, "LENGTH", pos[1], &args.length)) < 0 ||
            (r = cmd_parse_prot(ctx, pos[2], &args.prot)) < 0)
                return r;
        if (opts[0].seen && (r = cmd_parse_u64(ctx, "address", opts[0].value, &args.addr)) < 0)
                return r;
        args.shared = opts[1].seen;
        args.fixed = opts[2].seen;
        if (args.fixed && !args.addr)
                return cmd_fail(ctx, -EINVAL, "--fixed needs --addr");
        if (opts[3].seen && opts[4].seen)
                return cmd_fail(ctx, -EINVAL, "--file and --device exclude each other");
        if (opts[3].seen) {
                args.kind = COWD__V1__MAP_KIND__FILE;
                args.path = opts[3].value;
        } else if (opts[4].seen) {
                args.kind = COWD__V1__MAP_KIND__DEVICE;
                args.path = opts[4].value;
        } else if (opts[5].seen) {
                return cmd_fail(ctx, -EINVAL, "--offset needs --file or --device");
        }
        if (opts[5].seen && (r = cmd_parse_u64(ctx, "offset", opts[5].value, &args.offset)) < 0)
                return r;

        r = cmd_connect(ctx);
        if (r < 0)
                return r;
        r = cowc_mmap(ctx->conn, pid, &args, &addr, &ctx->err);
        if (r != 0)
                return r;
        value_set_int(ret, (int64_t)addr, true);
        if (!ctx->quiet)
                out_value("addr", ret, ctx->mode, ctx->out);
        return 0;
}

const struct cmd_entry cmd_mmap_entry = {
        .name = "mmap",
        .usage = "PID LENGTH PROT [--addr A] [--shared] [--fixed] "
                 "[--file NAME|--device fb0|console [--offset N]]",
        .summary = "map memory, a file of yours or a device (PROT: r, w, rw, none); prints "
                   "the address",
        .exec = cmd_mmap_exec,
};

/* PID ADDR LEN: the three words munmap, mprotect and madvise start with. */
static int parse_range(struct cmd_ctx *ctx, char **pos, uint32_t *pid, uint64_t *addr,
                       uint64_t *len)
{
        int r;
        if ((r = cmd_parse_pid(ctx, pos[0], pid)) < 0 ||
            (r = cmd_parse_u64(ctx, "ADDR", pos[1], addr)) < 0 ||
            (r = cmd_parse_u64(ctx, "LEN", pos[2], len)) < 0)
                return r;
        return 0;
}

static int cmd_munmap_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        char *pos[3];
        uint32_t pid;
        uint64_t addr, len;
        (void)ret;
        int r = args_split(argc, argv, NULL, 0, pos, 3, ctx->why, sizeof(ctx->why));
        if (r < 0)
                return r;
        if (r != 3)
                return cmd_usage(ctx, &cmd_munmap_entry);
        if ((r = parse_range(ctx, pos, &pid, &addr, &len)) < 0 || (r = cmd_connect(ctx)) < 0)
                return r;
        return cowc_munmap(ctx->conn, pid, addr, len, &ctx->err);
}

const struct cmd_entry cmd_munmap_entry = {
        .name = "munmap",
        .usage = "PID ADDR LEN",
        .summary = "unmap a page-aligned range",
        .exec = cmd_munmap_exec,
        .silent = true,
};

static int cmd_mprotect_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        char *pos[4];
        uint32_t pid, prot;
        uint64_t addr, len;
        (void)ret;
        int r = args_split(argc, argv, NULL, 0, pos, 4, ctx->why, sizeof(ctx->why));
        if (r < 0)
                return r;
        if (r != 4)
                return cmd_usage(ctx, &cmd_mprotect_entry);
        if ((r = parse_range(ctx, pos, &pid, &addr, &len)) < 0 ||
            (r = cmd_parse_prot(ctx, pos[3], &prot)) < 0 || (r = cmd_connect(ctx)) < 0)
                return r;
        return cowc_mprotect(ctx->conn, pid, addr, len, prot, &ctx->err);
}

const struct cmd_entry cmd_mprotect_entry = {
        .name = "mprotect",
        .usage = "PID ADDR LEN PROT",
        .summary = "change the protection of a mapped range",
        .exec = cmd_mprotect_exec,
        .silent = true,
};

static int cmd_madvise_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        char *pos[4];
        uint32_t pid;
        uint64_t addr, len;
        int advice;
        (void)ret;
        int r = args_split(argc, argv, NULL, 0, pos, 4, ctx->why, sizeof(ctx->why));
        if (r < 0)
                return r;
        if (r != 4)
                return cmd_usage(ctx, &cmd_madvise_entry);
        if ((r = parse_range(ctx, pos, &pid, &addr, &len)) < 0)
                return r;
        if (strcasecmp(pos[3], "dontneed") == 0)
                advice = COWD__V1__ADVICE__ADVICE_DONTNEED;
        else if (strcasecmp(pos[3], "normal") == 0)
                advice = COWD__V1__ADVICE__ADVICE_NORMAL;
        else
                return cmd_fail(ctx, -EINVAL, "invalid advice '%s' (dontneed or normal)", pos[3]);
        if ((r = cmd_connect(ctx)) < 0)
                return r;
        return cowc_madvise(ctx->conn, pid, addr, len, advice, &ctx->err);
}

const struct cmd_entry cmd_madvise_entry = {
        .name = "madvise",
        .usage = "PID ADDR LEN dontneed|normal",
        .summary = "advise on a range; dontneed drops its pages",
        .exec = cmd_madvise_exec,
        .silent = true,
};

static int cmd_msync_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        struct args_opt opts[] = { { .name = "--async" } };
        char *pos[3];
        uint32_t pid;
        uint64_t addr, len;
        (void)ret;
        int r = args_split(argc, argv, opts, ARRAY_SIZE(opts), pos, 3, ctx->why,
                           sizeof(ctx->why));
        if (r < 0)
                return r;
        if (r != 3)
                return cmd_usage(ctx, &cmd_msync_entry);
        if ((r = parse_range(ctx, pos, &pid, &addr, &len)) < 0 || (r = cmd_connect(ctx)) < 0)
                return r;
        return cowc_msync(ctx->conn, pid, addr, len, !opts[0].seen, &ctx->err);
}

const struct cmd_entry cmd_msync_entry = {
        .name = "msync",
        .usage = "PID ADDR LEN [--async]",
        .summary = "write a range's dirty file pages back (and fsync them, unless --async)",
        .exec = cmd_msync_exec,
        .silent = true,
};

/* ---- read ------------------------------------------------------------- */

static void print_read(struct cmd_ctx *ctx, uint64_t addr, const uint8_t *data, size_t len,
                       bool as_string, bool raw)
{
        if (raw) {
                fwrite(data, 1, len, ctx->out);
                return;
        }
        if (ctx->mode == OUT_JSON) {
                json_t *obj = json_object();
                char *hex = malloc(len * 2 + 1);
                if (obj && hex) {
                        for (size_t i = 0; i < len; i++)
                                snprintf(hex + 2 * i, 3, "%02x", data[i]);
                        hex[2 * len] = '\0';
                        json_object_set_new(obj, "addr", json_integer((json_int_t)addr));
                        json_object_set_new(obj, "length", json_integer((json_int_t)len));
                        json_object_set_new(obj, "hex", json_string(hex));
                        out_json(obj, ctx->out);
                } else {
                        json_decref(obj);
                }
                free(hex);
                return;
        }
        if (as_string) {
                /* Up to the first NUL, like a C string; the rest is usually padding. */
                size_t n = strnlen((const char *)data, len);
                fwrite(data, 1, n, ctx->out);
                fputc('\n', ctx->out);
                return;
        }
        out_hexdump(ctx->out, addr, data, len);
}

static int cmd_read_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        struct args_opt opts[] = { { .name = "--string" }, { .name = "--raw" } };
        char *pos[3];
        uint8_t *buf = NULL;
        uint32_t pid;
        uint64_t addr, len;
        int r;

        r = args_split(argc, argv, opts, ARRAY_SIZE(opts), pos, 3, ctx->why, sizeof(ctx->why));
        if (r < 0)
                goto out;
        if (r != 3) {
                r = cmd_usage(ctx, &cmd_read_entry);
                goto out;
        }
        if ((r = parse_range(ctx, pos, &pid, &addr, &len)) < 0 || (r = cmd_connect(ctx)) < 0)
                goto out;
        if (len > ctx->max_frame - FRAME_SLACK) {
                r = cmd_fail(ctx, -EINVAL, "LEN %" PRIu64 " is above the daemon's limit of %u bytes",
                             len, ctx->max_frame - FRAME_SLACK);
                goto out;
        }
        buf = malloc(len ? len : 1);
        if (!buf) {
                r = -ENOMEM;
                goto out;
        }
        r = cowc_read(ctx->conn, pid, addr, buf, len, &ctx->err);
        if (r != 0)
                goto out;
        r = value_set_bytes(ret, buf, len);
        if (r < 0)
                goto out;
        if (!ctx->quiet)
                print_read(ctx, addr, buf, len, opts[0].seen, opts[1].seen);
out:
        free(buf);
        return r;
}

const struct cmd_entry cmd_read_entry = {
        .name = "read",
        .usage = "PID ADDR LEN [--string|--raw]",
        .summary = "read memory (hex dump unless --string or --raw)",
        .exec = cmd_read_exec,
};

/* ---- write ------------------------------------------------------------ */

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        c = (char)tolower((unsigned char)c);
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* Decodes "68656c6c6f" (spaces, colons and a 0x prefix allowed) into a new buffer. */
static int decode_hex(struct cmd_ctx *ctx, const char *s, uint8_t **ret, size_t *ret_len)
{
        size_t cap = strlen(s) / 2 + 1, n = 0;
        uint8_t *buf = malloc(cap);
        int hi = -1;

        if (!buf)
                return -ENOMEM;
        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
                s += 2;
        for (; *s; s++) {
                if (*s == ' ' || *s == ':')
                        continue;
                int v = hexval(*s);
                if (v < 0) {
                        free(buf);
                        return cmd_fail(ctx, -EINVAL, "invalid hex digit '%c'", *s);
                }
                if (hi < 0) {
                        hi = v;
                } else {
                        buf[n++] = (uint8_t)(hi << 4 | v);
                        hi = -1;
                }
        }
        if (hi >= 0) {
                free(buf);
                return cmd_fail(ctx, -EINVAL, "odd number of hex digits");
        }
        *ret = buf;
        *ret_len = n;
        return 0;
}

/* Reads a whole file of at most max bytes into a new buffer. */
static int slurp_file(struct cmd_ctx *ctx, const char *path, size_t max, uint8_t **ret,
                      size_t *ret_len)
{
        uint8_t *buf = NULL;
        size_t len = 0;
        int fd = -1, r;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                r = cmd_fail(ctx, -errno, "%s: %s", path, strerror(errno));
                goto fail;
        }
        buf = malloc(max + 1);
        if (!buf) {
                r = -ENOMEM;
                goto fail;
        }
        for (;;) {
                ssize_t n = read(fd, buf + len, max + 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = cmd_fail(ctx, -errno, "%s: %s", path, strerror(errno));
                        goto fail;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > max) {
                        r = cmd_fail(ctx, -EFBIG, "%s: larger than %zu bytes", path, max);
                        goto fail;
                }
        }
        close(fd);
        *ret = buf;
        *ret_len = len;
        return 0;
fail:
        if (fd >= 0)
                close(fd);
        free(buf);
        return r;
}

int cmd_data_arg(struct cmd_ctx *ctx, const char *word, const char *hex, size_t max,
                 uint8_t **ret, size_t *ret_len)
{
        uint8_t *data;
        size_t len;

        if (hex)
                return decode_hex(ctx, hex, ret, ret_len);
        if (word[0] == '@')
                return slurp_file(ctx, word + 1, max, ret, ret_len);
        len = strlen(word);
        data = (uint8_t *)strdup(word);
        if (!data)
                return -ENOMEM;
        *ret = data;
        *ret_len = len;
        return 0;
}

static int cmd_write_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        struct args_opt opts[] = { { .name = "--hex", .has_value = true } };
        char *pos[3];
        uint8_t *data = NULL;
        size_t len = 0;
        uint32_t pid;
        uint64_t addr;
        int r;

        (void)ret;
        r = args_split(argc, argv, opts, ARRAY_SIZE(opts), pos, 3, ctx->why, sizeof(ctx->why));
        if (r < 0)
                goto out;
        if (r != (opts[0].seen ? 2 : 3)) {
                r = cmd_usage(ctx, &cmd_write_entry);
                goto out;
        }
        if ((r = cmd_parse_pid(ctx, pos[0], &pid)) < 0 ||
            (r = cmd_parse_u64(ctx, "ADDR", pos[1], &addr)) < 0 || (r = cmd_connect(ctx)) < 0)
                goto out;

        r = cmd_data_arg(ctx, opts[0].seen ? NULL : pos[2], opts[0].seen ? opts[0].value : NULL,
                         ctx->max_frame - FRAME_SLACK, &data, &len);
        if (r < 0)
                goto out;
        r = cowc_write(ctx->conn, pid, addr, data, len, &ctx->err);
out:
        free(data);
        return r;
}

const struct cmd_entry cmd_write_entry = {
        .name = "write",
        .usage = "PID ADDR DATA|@FILE|--hex HEX",
        .summary = "write a string, a file's bytes or hex bytes",
        .exec = cmd_write_exec,
        .silent = true,
};
