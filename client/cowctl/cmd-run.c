/* SPDX-License-Identifier: MIT */
/* run SCRIPT|-: parse the whole script first, then run it. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "cmd.h"
#include "script-run.h"
#include "script.h"

/* Scripts are written by people; anything bigger is a mistake. */
#define SCRIPT_MAX (16u << 20)
/* A script may run another; one running itself must stop somewhere. */
#define RUN_DEPTH_MAX 16

/* Reads all of fd into a new buffer. */
static int read_all(int fd, char **ret, size_t *ret_len)
{
        size_t len = 0, cap = 4096;
        char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len == cap) {
                        if (cap >= SCRIPT_MAX) {
                                free(buf);
                                return -EFBIG;
                        }
                        char *n = realloc(buf, cap * 2);
                        if (!n) {
                                free(buf);
                                return -ENOMEM;
                        }
                        buf = n;
                        cap *= 2;
                }
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = -errno;
                        free(buf);
                        return r;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

static int cmd_run_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        struct script_env env = { .ctx = ctx };
        struct script_stmt *script = NULL;
        struct script_error perr;
        char *pos[1], *src = NULL;
        size_t len = 0;
        int fd = -1, r;

        (void)ret;
        r = args_split(argc, argv, NULL, 0, pos, 1, ctx->why, sizeof(ctx->why));
        if (r < 0)
                goto out;
        if (r != 1) {
                r = cmd_usage(ctx, &cmd_run_entry);
                goto out;
        }
        if (ctx->run_depth >= RUN_DEPTH_MAX) {
                r = cmd_fail(ctx, -ELOOP, "scripts nested more than %d deep", RUN_DEPTH_MAX);
                goto out;
        }
        bool from_stdin = strcmp(pos[0], "-") == 0;
        env.file = from_stdin ? "<stdin>" : pos[0];
        fd = from_stdin ? STDIN_FILENO : open(pos[0], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                r = cmd_fail(ctx, -errno, "%s: %s", pos[0], strerror(errno));
                goto out;
        }
        r = read_all(fd, &src, &len);
        if (r < 0) {
                r = cmd_fail(ctx, r, "%s: %s", env.file, strerror(-r));
                goto out;
        }

        /* Nothing runs unless the whole script parses. */
        r = script_parse(src, len, script_run_syntax(), &script, &perr);
        if (r < 0) {
                fprintf(stderr, "%s:%d: %s\n", env.file, perr.line, perr.msg);
                ctx->reported = true;
                r = -EINVAL;
                goto out;
        }
        ctx->run_depth++;
        r = script_run(&env, script);
        ctx->run_depth--;
        /* script_run has printed FILE:LINE: and what went wrong. */
        if (r < 0)
                ctx->reported = true;
out:
        script_free(script);
        script_env_release(&env);
        free(src);
        if (fd > STDIN_FILENO)
                close(fd);
        return r;
}

const struct cmd_entry cmd_run_entry = {
        .name = "run",
        .usage = "SCRIPT|-",
        .summary = "run a script (see the README for the language)",
        .exec = cmd_run_exec,
};
