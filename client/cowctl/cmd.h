/* SPDX-License-Identifier: MIT */
/*
 * Commands: the table every front end (argv, scripts, the shell) looks
 * names up in, and the context a command runs with.
 *
 * A command's exec function returns 0 on success, a positive gRPC code when
 * the daemon refused (ctx->err says why), or a negative errno for anything
 * else (ctx->why says why when it is a usage error). It prints nothing on
 * failure: the caller decides whether a failure is an error or, in a script
 * `expect ... fails`, the expected outcome.
 */
#ifndef COWCTL_CMD_H
#define COWCTL_CMD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cowd/client.h"
#include "output.h"
#include "value.h"

struct cmd_ctx {
        const char *endpoint;  /* NULL: the default socket */
        unsigned wait_ms;      /* keep retrying a refused connection this long (--wait) */
        const char *token_file; /* the token for a TCP daemon (--token-file); NULL: none */
        cowc_conn *conn;       /* connected on first use */
        uint32_t page_size;    /* from hello */
        uint32_t max_frame;    /* from hello */
        enum out_mode mode;
        bool quiet;            /* the result is captured by a script: print nothing */
        FILE *out;
        struct cowc_error err; /* the daemon's refusal of the last command */
        char why[512];         /* the last local failure, for people */
        bool reported;         /* the last failure has been printed already (scripts) */
        unsigned run_depth;    /* scripts running scripts */
};

struct cmd_entry {
        const char *name;
        const char *usage;   /* arguments, as in "PID LENGTH PROT [--shared]" */
        const char *summary; /* one line for help */
        int (*exec)(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret);
        bool silent;         /* prints nothing on success; with --json, "{}" */
};

/* The command called name, or NULL. */
const struct cmd_entry *cmd_find(const char *name);

/* Every command name, NULL-terminated (for the script parser and completion). */
const char *const *cmd_names(void);

/* Prints one line per command. */
void cmd_print_help(FILE *f);

/* Connects (and says hello) unless already connected. Returns 0 or a negative errno. */
int cmd_connect(struct cmd_ctx *ctx);

/*
 * Reads the token for a TCP daemon from ctx->token_file: the file's first
 * line, without its newline, into buf. Returns 0 or a negative errno with
 * ctx->why set.
 */
int cmd_read_token(struct cmd_ctx *ctx, char *buf, size_t len);

/* Records a local failure in ctx->why and returns r (a negative errno). */
int cmd_fail(struct cmd_ctx *ctx, int r, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/*
 * Argument parsers that explain themselves: on a bad word they record
 * "invalid WHAT 'word'" in ctx->why and return -EINVAL.
 */
int cmd_parse_u64(struct cmd_ctx *ctx, const char *what, const char *s, uint64_t *ret);
int cmd_parse_pid(struct cmd_ctx *ctx, const char *s, uint32_t *ret);
int cmd_parse_prot(struct cmd_ctx *ctx, const char *s, uint32_t *ret);

/* Room left in a frame for a request's other fields around its data. */
#define FRAME_SLACK 1024u

/*
 * The bytes a command was given: hex digits when hex is set ("68 65", "0x6865"),
 * else word itself, or the contents of the local file @PATH (at most max
 * bytes). A new buffer in *ret. Returns 0 or a negative errno with ctx->why set.
 */
int cmd_data_arg(struct cmd_ctx *ctx, const char *word, const char *hex, size_t max,
                 uint8_t **ret, size_t *ret_len);

/* Usage failure for e: "usage: NAME USAGE". Returns -EINVAL. */
int cmd_usage(struct cmd_ctx *ctx, const struct cmd_entry *e);

/*
 * Describes the failure r of the last command into buf: ctx->why, the
 * daemon's error ("SEGV_ACCERR at 0x1000: ...") or strerror. Returns buf.
 */
const char *cmd_describe(const struct cmd_ctx *ctx, int r, char *buf, size_t len);

/*
 * Runs argv[0] with its arguments. Clears ctx->why, ctx->err and
 * ctx->reported first;
 * *ret receives the command's value (VALUE_NONE if it has none).
 */
int cmd_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret);

/* Closes the connection. */
void cmd_ctx_release(struct cmd_ctx *ctx);

/* The commands, one family per file. */
extern const struct cmd_entry cmd_spawn_entry, cmd_fork_entry, cmd_exit_entry, cmd_ps_entry;
extern const struct cmd_entry cmd_mmap_entry, cmd_munmap_entry, cmd_mprotect_entry,
        cmd_madvise_entry, cmd_read_entry, cmd_write_entry;
extern const struct cmd_entry cmd_stats_entry, cmd_pagemap_entry, cmd_checkpoint_entry;
extern const struct cmd_entry cmd_map_entry;
extern const struct cmd_entry cmd_run_entry;
extern const struct cmd_entry cmd_bench_entry;
extern const struct cmd_entry cmd_replay_entry;
extern const struct cmd_entry cmd_file_entry, cmd_msync_entry, cmd_console_entry,
        cmd_screenshot_entry;

#endif /* COWCTL_CMD_H */
