/* SPDX-License-Identifier: MIT */
#include "cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "frame.h"

static const struct cmd_entry *const cmd_table[] = {
        &cmd_spawn_entry,   &cmd_fork_entry,     &cmd_exit_entry,    &cmd_ps_entry,
        &cmd_mmap_entry,    &cmd_munmap_entry,   &cmd_mprotect_entry, &cmd_madvise_entry,
        &cmd_read_entry,    &cmd_write_entry,    &cmd_stats_entry,   &cmd_pagemap_entry,
        &cmd_map_entry,     &cmd_run_entry,      &cmd_bench_entry,   &cmd_checkpoint_entry,
        &cmd_replay_entry,  &cmd_file_entry,     &cmd_msync_entry,   &cmd_console_entry,
        &cmd_screenshot_entry,
};

#define CMD_COUNT (sizeof(cmd_table) / sizeof(cmd_table[0]))

const struct cmd_entry *cmd_find(const char *name)
{
        for (size_t i = 0; i < CMD_COUNT; i++)
                if (strcmp(cmd_table[i]->name, name) == 0)
                        return cmd_table[i];
        return NULL;
}

const char *const *cmd_names(void)
{
        /* Built from cmd_table; a static array keeps the two from drifting apart. */
        static const char *names[CMD_COUNT + 1];
        if (!names[0])
                for (size_t i = 0; i < CMD_COUNT; i++)
                        names[i] = cmd_table[i]->name;
        return names;
}

void cmd_print_help(FILE *f)
{
        for (size_t i = 0; i < CMD_COUNT; i++) {
                char head[80];
                snprintf(head, sizeof(head), "%s %s", cmd_table[i]->name, cmd_table[i]->usage);
                fprintf(f, "  %-54s %s\n", head, cmd_table[i]->summary);
        }
}

int cmd_fail(struct cmd_ctx *ctx, int r, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->why, sizeof(ctx->why), fmt, ap);
        va_end(ap);
        return r;
}

int cmd_usage(struct cmd_ctx *ctx, const struct cmd_entry *e)
{
        return cmd_fail(ctx, -EINVAL, "usage: %s %s", e->name, e->usage);
}

int cmd_parse_u64(struct cmd_ctx *ctx, const char *what, const char *s, uint64_t *ret)
{
        int r = args_parse_size(s, ret);
        if (r == -ERANGE)
                return cmd_fail(ctx, -EINVAL, "%s '%s' is too large", what, s);
        if (r < 0)
                return cmd_fail(ctx, -EINVAL,
                                "invalid %s '%s' (a number: 4096, 0x1000, 64K, 1M, 2G)", what, s);
        return 0;
}

int cmd_parse_pid(struct cmd_ctx *ctx, const char *s, uint32_t *ret)
{
        if (args_parse_pid(s, ret) < 0)
                return cmd_fail(ctx, -EINVAL, "invalid PID '%s'", s);
        return 0;
}

int cmd_parse_prot(struct cmd_ctx *ctx, const char *s, uint32_t *ret)
{
        if (args_parse_prot(s, ret) < 0)
                return cmd_fail(ctx, -EINVAL, "invalid PROT '%s' (r, w, rw or none)", s);
        return 0;
}

int cmd_read_token(struct cmd_ctx *ctx, char *buf, size_t len)
{
        ssize_t n;
        int fd;

        fd = open(ctx->token_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return cmd_fail(ctx, -errno, "token file %s: %s", ctx->token_file,
                                strerror(errno));
        n = read(fd, buf, len - 1);
        close(fd);
        if (n < 0)
                return cmd_fail(ctx, -EIO, "token file %s: %s", ctx->token_file, strerror(errno));
        buf[n] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        if (!buf[0])
                return cmd_fail(ctx, -EINVAL, "token file %s: the first line holds no token",
                                ctx->token_file);
        return 0;
}

/*
 * Connects, and with --wait keeps trying while the socket is missing or
 * refuses (a daemon still starting), backing off from 10 ms to 250 ms.
 */
static int connect_with_wait(struct cmd_ctx *ctx, const struct cowc_options *opts)
{
        struct timespec start, now;
        unsigned backoff_ms = 10;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                int r = cowc_connect(ctx->endpoint, opts, &ctx->conn);
                if (r == 0 || (r != -ENOENT && r != -ECONNREFUSED))
                        return r;
                clock_gettime(CLOCK_MONOTONIC, &now);
                uint64_t spent = (uint64_t)(now.tv_sec - start.tv_sec) * 1000 +
                                 (uint64_t)(now.tv_nsec / 1000000) -
                                 (uint64_t)(start.tv_nsec / 1000000);
                if (spent + backoff_ms > ctx->wait_ms)
                        return r;
                nanosleep(&(struct timespec){ .tv_nsec = (long)backoff_ms * 1000000 }, NULL);
                if (backoff_ms < 250)
                        backoff_ms *= 2;
        }
}

int cmd_connect(struct cmd_ctx *ctx)
{
        struct cowc_server_info info;
        struct cowc_options opts = { 0 };
        struct cowc_error err;
        char token[512];
        int r;

        if (ctx->conn)
                return 0;
        if (ctx->token_file) {
                r = cmd_read_token(ctx, token, sizeof(token));
                if (r < 0)
                        return r;
                opts.token = token;
        }
        r = connect_with_wait(ctx, &opts);
        explicit_bzero(token, sizeof(token));
        if (r < 0) {
                const char *where = ctx->endpoint ? ctx->endpoint : "the default socket";
                return cmd_fail(ctx, r, "cannot connect to %s: %s", where, strerror(-r));
        }
        r = cowc_hello(ctx->conn, "cowctl", &info, &err);
        if (r < 0) {
                cmd_fail(ctx, r, "%s: hello: %s", cowc_endpoint(ctx->conn), strerror(-r));
                cowc_close(ctx->conn);
                ctx->conn = NULL;
                return r;
        }
        if (r > 0 && err.code == COWD__V1__CODE__UNAUTHENTICATED) {
                /* The daemon closes after this: say why now rather than fail later. */
                cmd_fail(ctx, -EACCES, "%s refused the connection: %s%s",
                         cowc_endpoint(ctx->conn), err.message,
                         ctx->token_file ? "" : " (give the token with --token-file)");
                cowc_close(ctx->conn);
                ctx->conn = NULL;
                return -EACCES;
        }
        /* A daemon that refuses hello still speaks the protocol: assume its defaults. */
        ctx->page_size = (r == 0 && info.page_size) ? info.page_size : 4096;
        ctx->max_frame = (r == 0 && info.max_frame_bytes) ? info.max_frame_bytes
                                                          : COW_FRAME_DEFAULT_MAX;
        return 0;
}

const char *cmd_describe(const struct cmd_ctx *ctx, int r, char *buf, size_t len)
{
        if (ctx->why[0])
                snprintf(buf, len, "%s", ctx->why);
        else if (r > 0)
                cowc_error_format(&ctx->err, buf, len);
        else if (r == -EPROTO)
                snprintf(buf, len, "the daemon's reply did not make sense (protocol error)");
        else if (r == -EMSGSIZE)
                snprintf(buf, len, "a message was larger than the frame limit");
        else if (r == -ECONNRESET)
                snprintf(buf, len, "the daemon closed the connection");
        else
                snprintf(buf, len, "%s", strerror(-r));
        return buf;
}

int cmd_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        ctx->why[0] = '\0';
        ctx->reported = false;
        memset(&ctx->err, 0, sizeof(ctx->err));
        value_clear(ret);
        const struct cmd_entry *e = cmd_find(argv[0]);
        if (!e)
                return cmd_fail(ctx, -EINVAL, "unknown command '%s' (try 'cowctl --help')",
                                argv[0]);
        int r = e->exec(ctx, argc, argv, ret);
        /* Every command prints one JSON document, so a consumer can always parse the output. */
        if (r == 0 && e->silent && ctx->mode == OUT_JSON && !ctx->quiet)
                out_json(json_object(), ctx->out);
        return r;
}

void cmd_ctx_release(struct cmd_ctx *ctx)
{
        cowc_close(ctx->conn);
        ctx->conn = NULL;
}
