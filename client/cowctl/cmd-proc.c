/* SPDX-License-Identifier: MIT */
/* Process commands: spawn, fork, exit and ps (the process tree). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cmd.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static int cmd_spawn_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        char *pos[1];
        uint32_t pid;
        int n = args_split(argc, argv, NULL, 0, pos, 1, ctx->why, sizeof(ctx->why));
        if (n < 0)
                return n;
        int r = cmd_connect(ctx);
        if (r < 0)
                return r;
        r = cowc_spawn(ctx->conn, n ? pos[0] : "", &pid, &ctx->err);
        if (r != 0)
                return r;
        value_set_int(ret, pid, false);
        if (!ctx->quiet)
                out_value("pid", ret, ctx->mode, ctx->out);
        return 0;
}

const struct cmd_entry cmd_spawn_entry = {
        .name = "spawn",
        .usage = "[NAME]",
        .summary = "create an empty process; prints its pid",
        .exec = cmd_spawn_exec,
};

static int cmd_fork_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        char *pos[1];
        uint32_t pid, child;
        int n = args_split(argc, argv, NULL, 0, pos, 1, ctx->why, sizeof(ctx->why));
        if (n < 0)
                return n;
        if (n != 1)
                return cmd_usage(ctx, &cmd_fork_entry);
        int r = cmd_parse_pid(ctx, pos[0], &pid);
        if (r < 0)
                return r;
        r = cmd_connect(ctx);
        if (r < 0)
                return r;
        r = cowc_fork(ctx->conn, pid, &child, &ctx->err);
        if (r != 0)
                return r;
        value_set_int(ret, child, false);
        if (!ctx->quiet)
                out_value("pid", ret, ctx->mode, ctx->out);
        return 0;
}

const struct cmd_entry cmd_fork_entry = {
        .name = "fork",
        .usage = "PID",
        .summary = "copy-on-write fork; prints the child's pid",
        .exec = cmd_fork_exec,
};

static int cmd_exit_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        char *pos[1];
        uint32_t pid;
        (void)ret;
        int n = args_split(argc, argv, NULL, 0, pos, 1, ctx->why, sizeof(ctx->why));
        if (n < 0)
                return n;
        if (n != 1)
                return cmd_usage(ctx, &cmd_exit_entry);
        int r = cmd_parse_pid(ctx, pos[0], &pid);
        if (r < 0)
                return r;
        r = cmd_connect(ctx);
        if (r < 0)
                return r;
        return cowc_exit(ctx->conn, pid, &ctx->err);
}

const struct cmd_entry cmd_exit_entry = {
        .name = "exit",
        .usage = "PID",
        .summary = "end a process and release its memory",
        .exec = cmd_exit_exec,
        .silent = true,
};

/* ---- ps ------------------------------------------------------------------ */

static const Cowd__V1__ProcInfo *find_proc(Cowd__V1__ProcInfo *const *procs, size_t n, uint32_t pid)
{
        for (size_t i = 0; i < n; i++)
                if (procs[i]->pid == pid)
                        return procs[i];
        return NULL;
}

static int proc_by_pid(const void *a, const void *b)
{
        const Cowd__V1__ProcInfo *x = *(const Cowd__V1__ProcInfo *const *)a;
        const Cowd__V1__ProcInfo *y = *(const Cowd__V1__ProcInfo *const *)b;
        return (x->pid > y->pid) - (x->pid < y->pid);
}

/*
 * Adds p and, below it, its children (sorted by pid, as procs is) to t,
 * drawing the tree in the name column: prefix holds the rails of the
 * ancestors (only on a terminal: piped output keeps plain names). Depth is bounded by the pid chain, which the daemon keeps
 * acyclic; the depth cap guards against a daemon that does not.
 */
static int ps_add_subtree(struct table *t, Cowd__V1__ProcInfo *const *procs, size_t n,
                          bool *printed, size_t idx, char *prefix, size_t plen, bool last,
                          bool root, bool art, unsigned depth)
{
        const Cowd__V1__ProcInfo *p = procs[idx];
        char name[512];
        int r;

        snprintf(name, sizeof(name), "%.*s%s%s", (int)plen, prefix,
                 root || !art ? "" : (last ? "`-- " : "|-- "), p->name && *p->name ? p->name : "-");
        if ((r = table_add_u64(t, p->pid)) < 0 || (r = table_add_u64(t, p->ppid)) < 0 ||
            (r = table_add_u64(t, p->rss_pages)) < 0 || (r = table_add_u64(t, p->owner_uid)) < 0 ||
            (r = table_add_str(t, name)) < 0)
                return r;
        printed[idx] = true;
        if (depth > 64)
                return 0;

        size_t nlen = plen;
        if (art && !root && plen + 4 < 400) {
                memcpy(prefix + plen, last ? "    " : "|   ", 4);
                nlen += 4;
        }
        size_t nchildren = 0, seen = 0;
        for (size_t i = 0; i < n; i++)
                if (procs[i]->ppid == p->pid && !printed[i])
                        nchildren++;
        for (size_t i = 0; i < n; i++) {
                if (procs[i]->ppid != p->pid || printed[i])
                        continue;
                seen++;
                r = ps_add_subtree(t, procs, n, printed, i, prefix, nlen, seen == nchildren,
                                   false, art, depth + 1);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Every process, over as many list_procs replies as it takes. */
struct proc_listing {
        Cowd__V1__Response **replies; /* the ProcInfos point into these */
        size_t nreplies;
        Cowd__V1__ProcInfo **procs;
        size_t n;
};

static void proc_listing_release(struct proc_listing *l)
{
        for (size_t i = 0; i < l->nreplies; i++)
                cowc_response_free(l->replies[i]);
        free(l->replies);
        free(l->procs);
}

static int proc_listing_fetch(struct cmd_ctx *ctx, struct proc_listing *l)
{
        uint32_t start = 0;
        do {
                Cowd__V1__Response *resp = NULL;
                int r = cowc_list_procs(ctx->conn, start, &resp, &ctx->err);
                if (r != 0)
                        return r;
                Cowd__V1__Response **replies =
                        realloc(l->replies, (l->nreplies + 1) * sizeof(*replies));
                const Cowd__V1__ListProcsResult *lp = resp->list_procs;
                Cowd__V1__ProcInfo **procs =
                        replies ? realloc(l->procs, (l->n + lp->n_procs + 1) * sizeof(*procs)) : NULL;
                if (replies)
                        l->replies = replies;
                if (!replies || !procs) {
                        cowc_response_free(resp);
                        return -ENOMEM;
                }
                l->procs = procs;
                l->replies[l->nreplies++] = resp;
                memcpy(l->procs + l->n, lp->procs, lp->n_procs * sizeof(*procs));
                l->n += lp->n_procs;
                start = lp->next_pid;
        } while (start != 0);
        return 0;
}

static int cmd_ps_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        static const char *const cols[] = { "pid", "ppid", "rss_pages", "uid", "name" };
        struct proc_listing all = { 0 };
        bool *printed = NULL;
        struct table *t = NULL;
        char prefix[512];
        char *pos[1];
        int r;

        (void)ret;
        r = args_split(argc, argv, NULL, 0, pos, 0, ctx->why, sizeof(ctx->why));
        if (r < 0)
                goto out;
        r = cmd_connect(ctx);
        if (r < 0)
                goto out;
        r = proc_listing_fetch(ctx, &all);
        if (r != 0)
                goto out;

        size_t n = all.n;
        Cowd__V1__ProcInfo **procs = all.procs;
        printed = calloc(n ? n : 1, sizeof(*printed));
        t = table_new(ARRAY_SIZE(cols), cols);
        if (!printed || !t) {
                r = -ENOMEM;
                goto out;
        }
        qsort(procs, n, sizeof(*procs), proc_by_pid);

        /*
         * Roots: spawned processes and children whose parent has exited; then,
         * as roots too, any left over (only a parent cycle leaves some).
         */
        for (int pass = 0; pass < 2; pass++) {
                for (size_t i = 0; i < n; i++) {
                        if (printed[i] ||
                            (pass == 0 && procs[i]->ppid && find_proc(procs, n, procs[i]->ppid)))
                                continue;
                        r = ps_add_subtree(t, procs, n, printed, i, prefix, 0, true, true,
                                           ctx->mode == OUT_TABLE, 0);
                        if (r < 0)
                                goto out;
                }
        }
        if (!ctx->quiet)
                table_print(t, ctx->mode, ctx->out);
        r = 0;
out:
        table_free(t);
        free(printed);
        proc_listing_release(&all);
        return r;
}

const struct cmd_entry cmd_ps_entry = {
        .name = "ps",
        .usage = "",
        .summary = "list the processes as a tree",
        .exec = cmd_ps_exec,
};
