/* SPDX-License-Identifier: MIT */
/* Introspection commands: stats (system or per process) and pagemap. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cmd.h"
#include "pages.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static int cmd_stats_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        Cowd__V1__Response *resp = NULL;
        char *pos[1];
        uint32_t pid = 0;
        (void)ret;

        int n = args_split(argc, argv, NULL, 0, pos, 1, ctx->why, sizeof(ctx->why));
        if (n < 0)
                return n;
        int r = n ? cmd_parse_pid(ctx, pos[0], &pid) : 0;
        if (r < 0 || (r = cmd_connect(ctx)) < 0)
                return r;
        r = pid ? cowc_proc_stats(ctx->conn, pid, &resp, &ctx->err)
                : cowc_sys_stats(ctx->conn, &resp, &ctx->err);
        if (r != 0)
                return r;
        if (!ctx->quiet)
                out_message(pid ? &resp->proc_stats->base : &resp->sys_stats->base, ctx->mode,
                            ctx->out);
        cowc_response_free(resp);
        return 0;
}

const struct cmd_entry cmd_stats_entry = {
        .name = "stats",
        .usage = "[PID]",
        .summary = "system statistics, or one process's",
        .exec = cmd_stats_exec,
};

/* Operators only (uid 0 or the daemon's); prints the checkpoint's size and duration. */
static int cmd_checkpoint_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        Cowd__V1__Response *resp = NULL;
        char *pos[1];
        (void)ret;

        int n = args_split(argc, argv, NULL, 0, pos, 0, ctx->why, sizeof(ctx->why));
        if (n < 0)
                return n;
        int r = cmd_connect(ctx);
        if (r < 0)
                return r;
        r = cowc_checkpoint(ctx->conn, &resp, &ctx->err);
        if (r != 0)
                return r;
        if (!ctx->quiet)
                out_message(&resp->checkpoint->base, ctx->mode, ctx->out);
        cowc_response_free(resp);
        return 0;
}

const struct cmd_entry cmd_checkpoint_entry = {
        .name = "checkpoint",
        .usage = "",
        .summary = "write the daemon's whole state to disk now (operators only)",
        .exec = cmd_checkpoint_exec,
};

static int cmd_pagemap_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        static const char *const cols[] = { "addr", "prot", "frame", "sharers", "flags" };
        struct args_opt opts[] = { { .name = "--all" } };
        struct page_list pages = { 0 };
        struct table *t = NULL;
        char *pos[3];
        uint32_t pid;
        uint64_t addr = 0, len = 0;
        int r;

        (void)ret;
        r = args_split(argc, argv, opts, ARRAY_SIZE(opts), pos, 3, ctx->why, sizeof(ctx->why));
        if (r < 0)
                goto out;
        if (r < 1) {
                r = cmd_usage(ctx, &cmd_pagemap_entry);
                goto out;
        }
        int n = r;
        if ((r = cmd_parse_pid(ctx, pos[0], &pid)) < 0 ||
            (n >= 2 && (r = cmd_parse_u64(ctx, "ADDR", pos[1], &addr)) < 0) ||
            (n >= 3 && (r = cmd_parse_u64(ctx, "LEN", pos[2], &len)) < 0) ||
            (r = cmd_connect(ctx)) < 0)
                goto out;
        if (n == 2)
                len = 1; /* one address: the page holding it */
        if (n >= 2 && len == 0) {
                r = cmd_fail(ctx, -EINVAL, "LEN must be above 0");
                goto out;
        }

        r = pages_collect(ctx, pid, addr, len, &pages);
        if (r != 0)
                goto out;

        t = table_new(ARRAY_SIZE(cols), cols);
        if (!t) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < pages.n; i++) {
                const struct page *p = &pages.pages[i];
                char prot[3], flags[96], slot[32];
                /*
                 * Only pages with data are interesting unless asked (a 1G mapping
                 * is 262144 rows): resident ones, and swapped ones.
                 */
                if (!p->present && !p->swapped && !opts[0].seen && n < 2)
                        continue;
                snprintf(slot, sizeof(slot), "swap:%llu", (unsigned long long)p->swap_slot);
                if ((r = table_add_hex(t, p->addr)) < 0 ||
                    (r = table_add_str(t, args_prot_string(p->prot, prot))) < 0 ||
                    (r = p->present ? (p->zero ? table_add_str(t, "zero")
                                               : table_add_u64(t, p->frame))
                                    : table_add_str(t, p->swapped ? slot : "-")) < 0 ||
                    (r = table_add_u64(t, p->sharers)) < 0 ||
                    (r = table_add_str(t, page_flags(p, flags, sizeof(flags)))) < 0)
                        goto out;
        }
        if (ctx->mode == OUT_JSON && !ctx->quiet) {
                /* JSON keeps every flag as its own boolean rather than the summary. */
                json_t *arr = json_array();
                for (size_t i = 0; arr && i < pages.n; i++) {
                        const struct page *p = &pages.pages[i];
                        if (!p->present && !p->swapped && !opts[0].seen && n < 2)
                                continue;
                        json_array_append_new(
                                arr, json_pack("{sI sb sb sI sb sb sb sI sb sI sb sb sI sb sb sb}", "addr",
                                               (json_int_t)p->addr, "mapped", p->mapped,
                                               "present", p->present, "frame",
                                               (json_int_t)p->frame, "writable", p->writable,
                                               "cow", p->cow, "zero", p->zero, "sharers",
                                               (json_int_t)p->sharers, "in_tlb", p->in_tlb,
                                               "prot", (json_int_t)p->prot, "shared",
                                               p->shared, "swapped", p->swapped, "swap_slot",
                                               (json_int_t)p->swap_slot, "file", p->file,
                                               "dirty", p->dirty, "device", p->device));
                }
                out_json(arr, ctx->out);
        } else if (!ctx->quiet) {
                table_print(t, ctx->mode, ctx->out);
        }
        r = 0;
out:
        table_free(t);
        page_list_release(&pages);
        return r;
}

const struct cmd_entry cmd_pagemap_entry = {
        .name = "pagemap",
        .usage = "PID [ADDR [LEN]] [--all]",
        .summary = "page-table view; with no range, every present page",
        .exec = cmd_pagemap_exec,
};
