/* SPDX-License-Identifier: MIT */
/*
 * cowctl: drive a cowd daemon from the shell.
 *
 *   cowctl [-s SOCKET] [-t TOKEN_FILE] [--json] COMMAND [ARGS...]
 *
 * With no command on a terminal it starts an interactive shell. Exit
 * status: 0 success, 1 the operation failed (the daemon refused, the
 * connection failed, an expectation did not hold), 2 a usage or script
 * syntax error.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "repl.h"

static void usage(FILE *f)
{
        fprintf(f,
                "usage: cowctl [-s SOCKET] [--json] COMMAND [ARGS...]\n"
                "       cowctl [-s SOCKET]          (an interactive shell on a terminal)\n"
                "\n"
                "  -s, --socket SOCKET  a Unix socket path or HOST:PORT (default: $COWD_SOCKET,\n"
                "                       $XDG_RUNTIME_DIR/cowd.sock, /tmp/cowd-UID/cowd.sock)\n"
                "  -t, --token-file F   the token a TCP daemon asks for: F's first line\n"
                "                       (default: $COWD_TOKEN_FILE)\n"
                "  -j, --json           print JSON\n"
                "  -w, --wait SECONDS   retry connecting while the daemon starts (up to SECONDS)\n"
                "  -h, --help           this help\n"
                "\n"
                "Sizes and addresses: 4096, 0x1000, 64K, 1M, 2G. PROT: r, w, rw, none.\n"
                "\n"
                "Commands:\n");
        cmd_print_help(f);
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
                { "socket", required_argument, NULL, 's' },
                { "json", no_argument, NULL, 'j' },
                { "token-file", required_argument, NULL, 't' },
                { "wait", required_argument, NULL, 'w' },
                { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        struct cmd_ctx ctx = { .out = stdout };
        struct value v = { 0 };
        bool json = false;
        int c, r, status;

        /* '+': stop at the command, whose own options are its business. */
        ctx.token_file = getenv("COWD_TOKEN_FILE");
        if (ctx.token_file && !*ctx.token_file)
                ctx.token_file = NULL;
        while ((c = getopt_long(argc, argv, "+s:t:jw:h", longopts, NULL)) != -1) {
                switch (c) {
                case 's':
                        ctx.endpoint = optarg;
                        break;
                case 't':
                        ctx.token_file = optarg;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'w': {
                        char *end;
                        unsigned long secs = strtoul(optarg, &end, 10);
                        if (*optarg == '\0' || *end != '\0' || secs > 3600) {
                                fprintf(stderr, "cowctl: --wait takes seconds, 0 to 3600\n");
                                return 2;
                        }
                        ctx.wait_ms = (unsigned)secs * 1000;
                        break;
                }
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        ctx.mode = json ? OUT_JSON : isatty(STDOUT_FILENO) ? OUT_TABLE : OUT_PLAIN;

        if (optind == argc) {
                if (!isatty(STDIN_FILENO)) {
                        usage(stderr);
                        return 2;
                }
                r = repl_run(&ctx);
                cmd_ctx_release(&ctx);
                return r == 0 ? 0 : 1;
        }

        r = cmd_exec(&ctx, argc - optind, argv + optind, &v);
        if (r != 0 && !ctx.reported) {
                char why[768];
                fprintf(stderr, "cowctl: %s: %s\n", argv[optind],
                        cmd_describe(&ctx, r, why, sizeof(why)));
        }
        status = r == 0 ? 0 : r == -EINVAL ? 2 : 1;
        if (fflush(stdout) != 0 && status == 0) {
                fprintf(stderr, "cowctl: writing output: %s\n", strerror(errno));
                status = 1;
        }
        value_clear(&v);
        cmd_ctx_release(&ctx);
        return status;
}
