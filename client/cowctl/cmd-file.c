/* SPDX-License-Identifier: MIT */
/* File commands: file put, get, ls and rm, on the caller's files on the daemon (or, as
 * root, on ~UID/NAME). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "cmd.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The bytes one request carries, whatever the daemon's frame limit. */
static size_t chunk_size(const struct cmd_ctx *ctx)
{
        return ctx->max_frame - FRAME_SLACK;
}

/* Sends the local file path in chunks as name. Returns like a command. */
static int put_stream(struct cmd_ctx *ctx, const char *name, const char *path,
                      uint64_t *ret_size)
{
        size_t cap = chunk_size(ctx);
        uint8_t *buf = malloc(cap);
        uint64_t off = 0;
        int fd, r = 0;

        if (!buf)
                return -ENOMEM;
        fd = strcmp(path, "-") == 0 ? fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0)
                                    : open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                r = cmd_fail(ctx, -errno, "%s: %s", path, strerror(errno));
                goto out;
        }
        for (;;) {
                size_t len = 0;
                while (len < cap) {
                        ssize_t n = read(fd, buf + len, cap - len);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0) {
                                r = cmd_fail(ctx, -errno, "%s: %s", path, strerror(errno));
                                goto out;
                        }
                        if (n == 0)
                                break;
                        len += (size_t)n;
                }
                /* The first chunk goes even when empty: it makes (or empties) the file. */
                if (len == 0 && off > 0)
                        break;
                r = cowc_file_put(ctx->conn, name, off, buf, len, NULL, &ctx->err);
                if (r != 0)
                        goto out;
                off += len;
                if (len < cap)
                        break;
        }
        *ret_size = off;
out:
        if (fd >= 0)
                close(fd);
        free(buf);
        return r;
}

static int file_put(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        struct args_opt opts[] = { { .name = "--hex", .has_value = true } };
        char *pos[3];
        uint8_t *data = NULL;
        uint64_t size = 0;
        size_t len = 0;
        int r;

        r = args_split(argc, argv, opts, ARRAY_SIZE(opts), pos, 3, ctx->why, sizeof(ctx->why));
        if (r < 0)
                return r;
        if (r != (opts[0].seen ? 2 : 3))
                return cmd_usage(ctx, &cmd_file_entry);
        r = cmd_connect(ctx);
        if (r < 0)
                return r;
        if (!opts[0].seen && pos[2][0] == '@') {
                r = put_stream(ctx, pos[1], pos[2] + 1, &size);
        } else {
                r = cmd_data_arg(ctx, opts[0].seen ? NULL : pos[2],
                                 opts[0].seen ? opts[0].value : NULL, chunk_size(ctx), &data,
                                 &len);
                if (r == 0)
                        r = cowc_file_put(ctx->conn, pos[1], 0, data, len, &size, &ctx->err);
        }
        free(data);
        if (r != 0)
                return r;
        value_set_int(ret, (int64_t)size, false);
        if (!ctx->quiet)
                out_value("size", ret, ctx->mode, ctx->out);
        return 0;
}

/* Writes all of buf to fd: 0 or a negative errno. */
static int write_all(int fd, const uint8_t *p, size_t len)
{
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/*
 * Fetches the whole of name, chunk by chunk: into local file out_path
 * ("-": standard output) when given, else into *ret_data (*ret_len bytes).
 */
static int get_all(struct cmd_ctx *ctx, const char *name, const char *out_path,
                   uint8_t **ret_data, size_t *ret_len)
{
        size_t cap = chunk_size(ctx), have = 0, bufcap = 0;
        uint8_t *all = NULL, *chunk = malloc(cap);
        uint64_t off = 0, size = 0;
        int fd = -1, r = 0;

        if (!chunk)
                return -ENOMEM;
        if (out_path) {
                fd = strcmp(out_path, "-") == 0
                             ? fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 0)
                             : open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (fd < 0) {
                        r = cmd_fail(ctx, -errno, "%s: %s", out_path, strerror(errno));
                        goto out;
                }
        }
        do {
                size_t n = 0;
                r = cowc_file_get(ctx->conn, name, off, chunk, cap, &n, &size, &ctx->err);
                if (r != 0)
                        goto out;
                if (n == 0)
                        break; /* cut short since the first chunk */
                if (fd >= 0) {
                        r = write_all(fd, chunk, n);
                        if (r < 0) {
                                r = cmd_fail(ctx, r, "%s: %s", out_path, strerror(-r));
                                goto out;
                        }
                } else {
                        if (have + n > bufcap) {
                                size_t c = bufcap ? bufcap * 2 : cap;
                                while (c < have + n)
                                        c *= 2;
                                uint8_t *p = realloc(all, c);
                                if (!p) {
                                        r = -ENOMEM;
                                        goto out;
                                }
                                all = p;
                                bufcap = c;
                        }
                        memcpy(all + have, chunk, n);
                        have += n;
                }
                off += n;
        } while (off < size);
        if (!out_path) {
                *ret_data = all;
                *ret_len = have;
                all = NULL;
        }
out:
        if (fd >= 0 && close(fd) < 0 && r == 0)
                r = cmd_fail(ctx, -errno, "%s: %s", out_path, strerror(errno));
        free(chunk);
        free(all);
        return r;
}

static int file_get(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        struct args_opt opts[] = {
                { .name = "-o", .has_value = true },
                { .name = "--string" },
                { .name = "--raw" },
        };
        uint8_t *data = NULL;
        size_t len = 0;
        char *pos[2];
        int r;

        r = args_split(argc, argv, opts, ARRAY_SIZE(opts), pos, 2, ctx->why, sizeof(ctx->why));
        if (r < 0)
                return r;
        if (r != 2)
                return cmd_usage(ctx, &cmd_file_entry);
        r = cmd_connect(ctx);
        if (r < 0)
                return r;
        if (opts[0].seen)
                return get_all(ctx, pos[1], opts[0].value, NULL, NULL);
        r = get_all(ctx, pos[1], NULL, &data, &len);
        if (r == 0)
                r = value_set_bytes(ret, data ? data : (uint8_t *)"", len);
        if (r == 0 && !ctx->quiet) {
                if (ctx->mode == OUT_JSON) {
                        out_value("data", ret, ctx->mode, ctx->out);
                } else if (opts[2].seen) {
                        if (len)
                                fwrite(data, 1, len, ctx->out);
                } else if (opts[1].seen) {
                        /* Text up to the first NUL, ending in a newline, as read --string. */
                        size_t n = data ? strnlen((const char *)data, len) : 0;
                        if (n)
                                fwrite(data, 1, n, ctx->out);
                        if (n == 0 || data[n - 1] != '\n')
                                fputc('\n', ctx->out);
                } else {
                        out_hexdump(ctx->out, 0, data, len);
                }
        }
        free(data);
        return r;
}

static int file_ls(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        static const char *const cols[] = { "name", "size", "modified", "mapped" };
        char after[256] = "";
        struct table *t = NULL;
        uint64_t count = 0;
        char *pos[2];
        int r;

        r = args_split(argc, argv, NULL, 0, pos, 2, ctx->why, sizeof(ctx->why));
        if (r < 0)
                return r;
        if (r < 1)
                return cmd_usage(ctx, &cmd_file_entry);
        const char *owner = r == 2 ? pos[1] : ""; /* ~UID: that uid's files */
        r = cmd_connect(ctx);
        if (r < 0)
                return r;
        t = table_new(ARRAY_SIZE(cols), cols);
        if (!t)
                return -ENOMEM;
        do {
                Cowd__V1__Response *resp = NULL;
                r = cowc_file_list(ctx->conn, owner, after, &resp, &ctx->err);
                if (r != 0)
                        goto out;
                const Cowd__V1__FileListResult *l = resp->file_list;
                for (size_t i = 0; i < l->n_files && r == 0; i++) {
                        const Cowd__V1__FileInfo *f = l->files[i];
                        time_t sec = (time_t)(f->mtime_ns / 1000000000);
                        char when[32] = "";
                        struct tm tm;

                        if (gmtime_r(&sec, &tm))
                                strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
                        if ((r = table_add_str(t, f->name)) < 0 ||
                            (r = table_add_u64(t, f->size)) < 0 ||
                            (r = table_add_str(t, when)) < 0 ||
                            (r = table_add_bool(t, f->mapped)) < 0)
                                break;
                        count++;
                }
                snprintf(after, sizeof(after), "%s", l->next ? l->next : "");
                cowc_response_free(resp);
        } while (r == 0 && after[0]);
        if (r == 0) {
                value_set_int(ret, (int64_t)count, false);
                if (!ctx->quiet)
                        table_print(t, ctx->mode, ctx->out);
        }
out:
        table_free(t);
        return r;
}

static int file_rm(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        char *pos[2];
        int r;

        (void)ret;
        r = args_split(argc, argv, NULL, 0, pos, 2, ctx->why, sizeof(ctx->why));
        if (r < 0)
                return r;
        if (r != 2)
                return cmd_usage(ctx, &cmd_file_entry);
        r = cmd_connect(ctx);
        if (r < 0)
                return r;
        return cowc_file_remove(ctx->conn, pos[1], &ctx->err);
}

static int cmd_file_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        if (argc < 2)
                return cmd_usage(ctx, &cmd_file_entry);
        /* The sub-command is the first positional word; the rest parse as its own. */
        if (strcmp(argv[1], "put") == 0)
                return file_put(ctx, argc, argv, ret);
        if (strcmp(argv[1], "get") == 0)
                return file_get(ctx, argc, argv, ret);
        if (strcmp(argv[1], "ls") == 0)
                return file_ls(ctx, argc, argv, ret);
        if (strcmp(argv[1], "rm") == 0)
                return file_rm(ctx, argc, argv, ret);
        return cmd_usage(ctx, &cmd_file_entry);
}

const struct cmd_entry cmd_file_entry = {
        .name = "file",
        .usage = "put NAME DATA|@LOCAL|--hex HEX | get NAME [-o LOCAL] [--string|--raw] | ls "
                 "[~UID] | rm NAME   (NAME: yours, or ~UID/NAME as uid UID or root)",
        .summary = "your files on the daemon: put, get, list, remove",
        .exec = cmd_file_exec,
};
