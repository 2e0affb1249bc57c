/* SPDX-License-Identifier: MIT */
/*
 * map PID...: who maps what, drawn like the lecture diagrams. Each process
 * is a cluster holding its virtual pages; physical frames sit on the right;
 * edges go from page to frame. Frames mapped by several processes are
 * highlighted, copy-on-write pages are marked, the zero page is its own node.
 * The output is Graphviz DOT, or an image rendered by dot(1) with -o.
 */
#define _GNU_SOURCE /* pipe2, environ */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "args.h"
#include "cmd.h"
#include "pages.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MAP_MAX_PIDS 32
#define MAP_DEFAULT_PAGES 256

/* Palette: soft fills with darker borders, readable in print and on a projector. */
#define C_PROC_FILL "#f4f7fb"
#define C_PROC_LINE "#6c8ebf"
#define C_HEAD "#dae8fc"
#define C_WRITABLE "#d5e8d4"
#define C_COW "#f8cecc"
#define C_COW_LINE "#b85450"
#define C_READONLY "#f5f5f5"
#define C_SHARED_MAP "#dae8fc"
#define C_SHARED_LINE "#3465a4"
#define C_FRAME "#ffffff"
#define C_FRAME_SHARED "#fff2cc"
#define C_FRAME_SHARED_LINE "#d6b656"
#define C_ZERO "#e6e6e6"
#define C_ABSENT "#ffffff"

struct map_proc {
        uint32_t pid;
        char name[64];
        struct page_list pages;
};

/* A frame with the number of its sharers the daemon reported. */
struct map_frame {
        uint32_t frame;
        uint32_t sharers;
        uint32_t drawn_refs; /* edges drawn to it */
};

/* Writes s with HTML's special characters escaped (labels are HTML-like in DOT). */
static void put_html(FILE *f, const char *s)
{
        for (; *s; s++) {
                switch (*s) {
                case '&': fputs("&amp;", f); break;
                case '<': fputs("&lt;", f); break;
                case '>': fputs("&gt;", f); break;
                case '"': fputs("&quot;", f); break;
                default:
                        if ((unsigned char)*s >= 0x20)
                                fputc(*s, f);
                }
        }
}

static int frame_cmp(const void *a, const void *b)
{
        const struct map_frame *x = a, *y = b;
        return (x->frame > y->frame) - (x->frame < y->frame);
}

static struct map_frame *frame_find(struct map_frame *frames, size_t n, uint32_t frame)
{
        struct map_frame key = { .frame = frame };
        return bsearch(&key, frames, n, sizeof(*frames), frame_cmp);
}

/* Whether page p is drawn: present pages always, the others only with --all. */
static bool page_drawn(const struct page *p, bool all)
{
        return p->present || all;
}

/*
 * Collects the distinct real frames (not the zero page) among the pages to
 * draw, sorted by number. The caller frees *ret.
 */
static int collect_frames(struct map_proc *procs, size_t nprocs, size_t limit, bool all,
                          struct map_frame **ret, size_t *ret_n)
{
        struct map_frame *frames = NULL;
        size_t n = 0, cap = 0, seen = 0;

        for (size_t i = 0; i < nprocs; i++) {
                for (size_t k = 0; k < procs[i].pages.n && seen < limit; k++) {
                        const struct page *p = &procs[i].pages.pages[k];
                        if (!page_drawn(p, all))
                                continue;
                        seen++;
                        if (!p->present || p->zero)
                                continue;
                        if (n == cap) {
                                cap = cap ? cap * 2 : 64;
                                struct map_frame *nf = realloc(frames, cap * sizeof(*nf));
                                if (!nf) {
                                        free(frames);
                                        return -ENOMEM;
                                }
                                frames = nf;
                        }
                        frames[n++] = (struct map_frame){ .frame = p->frame, .sharers = p->sharers };
                }
        }
        if (n)
                qsort(frames, n, sizeof(*frames), frame_cmp);
        /* Deduplicate in place. */
        size_t out = 0;
        for (size_t i = 0; i < n; i++)
                if (out == 0 || frames[out - 1].frame != frames[i].frame)
                        frames[out++] = frames[i];
        *ret = frames;
        *ret_n = out;
        return 0;
}

static const char *page_fill(const struct page *p)
{
        if (!p->present)
                return C_ABSENT;
        if (p->shared)
                return C_SHARED_MAP;
        /* A writable page on the zero page is COW too; the zero page is the better story. */
        if (p->zero)
                return C_ZERO;
        if (p->cow)
                return C_COW;
        if (p->writable)
                return C_WRITABLE;
        return C_READONLY;
}

/* The short note in a page's right-hand cell. */
static const char *page_note(const struct page *p)
{
        if (!p->present)
                return "not present";
        if (p->device)
                return "device";
        if (p->file)
                return p->shared ? (p->dirty ? "file, MAP_SHARED, dirty" : "file, MAP_SHARED") :
                                   "file (page cache)";
        if (p->shared)
                return "MAP_SHARED";
        if (p->zero)
                return "zero page";
        if (p->cow)
                return "COW";
        return p->writable ? "writable" : "read-only";
}

/*
 * Writes the DOT graph. At most limit pages are drawn in all; *ret_omitted
 * says how many present (or, with --all, mapped) pages were left out.
 */
static void write_dot(FILE *f, struct map_proc *procs, size_t nprocs, struct map_frame *frames,
                      size_t nframes, size_t limit, bool all, size_t *ret_omitted)
{
        size_t drawn = 0, omitted = 0, total = 0;
        bool zero_used = false;

        for (size_t i = 0; i < nprocs; i++)
                for (size_t k = 0; k < procs[i].pages.n; k++)
                        if (page_drawn(&procs[i].pages.pages[k], all))
                                total++;
        omitted = total > limit ? total - limit : 0;

        fputs("digraph cowd {\n"
              "  graph [rankdir=LR, fontname=\"Helvetica\", fontsize=16, nodesep=0.18, "
              "ranksep=1.6, labelloc=t, pad=0.3, newrank=true];\n"
              "  node [fontname=\"Helvetica\", fontsize=11];\n"
              "  edge [arrowsize=0.7, penwidth=1.2];\n",
              f);
        fprintf(f, "  label=<<B>Who maps what</B><BR/><FONT POINT-SIZE=\"11\">%zu process%s, "
                   "%zu physical frame%s",
                nprocs, nprocs == 1 ? "" : "es", nframes, nframes == 1 ? "" : "s");
        if (omitted)
                fprintf(f, "; first %zu of %zu pages shown", limit, total);
        fputs("</FONT>>;\n", f);

        /* Processes: one cluster each, a table of pages with a port per page. */
        for (size_t i = 0; i < nprocs; i++) {
                struct map_proc *mp = &procs[i];
                fprintf(f,
                        "  subgraph cluster_p%u {\n"
                        "    style=\"rounded,filled\"; fillcolor=\"" C_PROC_FILL "\"; "
                        "color=\"" C_PROC_LINE "\"; penwidth=1.5;\n"
                        "    label=<<B>pid %u</B> ",
                        mp->pid, mp->pid);
                put_html(f, mp->name);
                fputs(">;\n", f);
                fprintf(f,
                        "    p%u [shape=plaintext, label=<<TABLE BORDER=\"0\" CELLBORDER=\"1\" "
                        "CELLSPACING=\"0\" CELLPADDING=\"4\" COLOR=\"" C_PROC_LINE "\">\n"
                        "      <TR><TD BGCOLOR=\"" C_HEAD "\"><B>virtual page</B></TD>"
                        "<TD BGCOLOR=\"" C_HEAD "\"><B>prot</B></TD>"
                        "<TD BGCOLOR=\"" C_HEAD "\"><B>state</B></TD></TR>\n",
                        mp->pid);
                size_t rows = 0;
                for (size_t k = 0; k < mp->pages.n; k++) {
                        const struct page *p = &mp->pages.pages[k];
                        char prot[3];
                        if (!page_drawn(p, all) || drawn >= limit)
                                continue;
                        drawn++;
                        rows++;
                        bool bold = p->cow && !p->zero;
                        /* The port is the row's last cell, so edges leave from its right edge. */
                        fprintf(f,
                                "      <TR><TD BGCOLOR=\"%s\" ALIGN=\"LEFT\"><FONT "
                                "FACE=\"Courier\">0x%" PRIx64 "</FONT></TD>"
                                "<TD BGCOLOR=\"%s\">%s</TD>"
                                "<TD PORT=\"a%" PRIx64 "\" BGCOLOR=\"%s\">%s%s%s</TD></TR>\n",
                                page_fill(p), p->addr, page_fill(p),
                                args_prot_string(p->prot, prot), p->addr, page_fill(p),
                                bold ? "<B>" : "", page_note(p), bold ? "</B>" : "");
                }
                if (rows == 0)
                        fputs("      <TR><TD COLSPAN=\"3\"><I>no pages to show</I></TD></TR>\n", f);
                fputs("    </TABLE>>];\n  }\n", f);
        }

        /* Physical memory: frames in number order, the zero page set apart. */
        fputs("  subgraph cluster_phys {\n"
              "    label=<<B>physical memory</B>>; style=\"rounded\"; color=\"#999999\";\n",
              f);
        for (size_t i = 0; i < nframes; i++) {
                const struct map_frame *fr = &frames[i];
                bool shared = fr->sharers > 1;
                fprintf(f,
                        "    f%u [shape=box, style=\"rounded,filled%s\", fillcolor=\"%s\", "
                        "color=\"%s\", label=<<B>frame %u</B>",
                        fr->frame, shared ? ",bold" : "", shared ? C_FRAME_SHARED : C_FRAME,
                        shared ? C_FRAME_SHARED_LINE : "#82b366", fr->frame);
                if (shared)
                        fprintf(f, "<BR/><FONT POINT-SIZE=\"9\">shared by %u</FONT>", fr->sharers);
                fputs(">];\n", f);
        }
        for (size_t i = 0; i < nprocs && !zero_used; i++)
                for (size_t k = 0; k < procs[i].pages.n; k++)
                        zero_used |= procs[i].pages.pages[k].present && procs[i].pages.pages[k].zero;
        if (zero_used)
                fputs("    zero [shape=box3d, style=filled, fillcolor=\"" C_ZERO "\", "
                      "color=\"#666666\", label=<<B>ZERO PAGE</B><BR/>"
                      "<FONT POINT-SIZE=\"9\">frame 0, read-only, all zeros</FONT>>];\n",
                      f);
        fputs("  }\n", f);

        /* Edges, in the same order and under the same cap as the rows. */
        drawn = 0;
        for (size_t i = 0; i < nprocs; i++) {
                for (size_t k = 0; k < procs[i].pages.n; k++) {
                        const struct page *p = &procs[i].pages.pages[k];
                        if (!page_drawn(p, all) || drawn >= limit)
                                continue;
                        drawn++;
                        if (!p->present)
                                continue;
                        const char *style = p->zero     ? "color=\"#888888\", style=dotted"
                                            : p->shared ? "color=\"" C_SHARED_LINE "\", penwidth=1.8"
                                            : p->cow    ? "color=\"" C_COW_LINE "\", style=dashed, "
                                                          "penwidth=1.6"
                                                        : "color=\"#333333\"";
                        if (p->zero)
                                fprintf(f, "  p%u:a%" PRIx64 ":e -> zero:w [%s];\n", procs[i].pid,
                                        p->addr, style);
                        else
                                fprintf(f, "  p%u:a%" PRIx64 ":e -> f%u:w [%s];\n", procs[i].pid,
                                        p->addr, p->frame, style);
                        struct map_frame *fr = frame_find(frames, nframes, p->frame);
                        if (fr)
                                fr->drawn_refs++;
                }
        }

        /* A key, so a diagram on a slide explains itself. */
        fputs("  legend [shape=plaintext, label=<<TABLE BORDER=\"0\" CELLBORDER=\"1\" "
              "CELLSPACING=\"0\" CELLPADDING=\"3\" COLOR=\"#999999\">"
              "<TR><TD COLSPAN=\"2\"><B>key</B></TD></TR>"
              "<TR><TD BGCOLOR=\"" C_WRITABLE "\">    </TD><TD ALIGN=\"LEFT\">private, writable</TD></TR>"
              "<TR><TD BGCOLOR=\"" C_COW "\">    </TD><TD ALIGN=\"LEFT\">copy-on-write (dashed edge)</TD></TR>"
              "<TR><TD BGCOLOR=\"" C_READONLY "\">    </TD><TD ALIGN=\"LEFT\">read-only</TD></TR>"
              "<TR><TD BGCOLOR=\"" C_SHARED_MAP "\">    </TD><TD ALIGN=\"LEFT\">MAP_SHARED</TD></TR>"
              "<TR><TD BGCOLOR=\"" C_FRAME_SHARED "\">    </TD><TD ALIGN=\"LEFT\">frame with several sharers</TD></TR>"
              "<TR><TD BGCOLOR=\"" C_ZERO "\">    </TD><TD ALIGN=\"LEFT\">the zero page (dotted edge)</TD></TR>"
              "</TABLE>>];\n"
              "  { rank=sink; legend; }\n",
              f);
        fputs("}\n", f);
        *ret_omitted = omitted;
}

/* Runs `dot -T<format> -o path` with the graph on its standard input. */
static int render(struct cmd_ctx *ctx, const char *dot, size_t len, const char *path)
{
        const char *ext = strrchr(path, '.');
        char format[16];
        char *argv[5];
        char targ[24];
        int pipefd[2] = { -1, -1 };
        posix_spawn_file_actions_t fa;
        pid_t child;
        int r, status;

        if (!ext || strlen(ext + 1) == 0 || strlen(ext + 1) >= sizeof(format))
                return cmd_fail(ctx, -EINVAL, "-o %s: name the format by extension (.svg, .png, .pdf)",
                                path);
        snprintf(format, sizeof(format), "%s", ext + 1);
        if (strcmp(format, "dot") == 0 || strcmp(format, "gv") == 0) {
                /* Plain DOT needs no dot(1). */
                FILE *out = fopen(path, "we");
                if (!out)
                        return cmd_fail(ctx, -errno, "%s: %s", path, strerror(errno));
                bool ok = fwrite(dot, 1, len, out) == len;
                ok &= fclose(out) == 0;
                return ok ? 0 : cmd_fail(ctx, -EIO, "%s: write failed", path);
        }
        snprintf(targ, sizeof(targ), "-T%s", format);
        argv[0] = (char *)"dot";
        argv[1] = targ;
        argv[2] = (char *)"-o";
        argv[3] = (char *)path;
        argv[4] = NULL;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return cmd_fail(ctx, -errno, "pipe: %s", strerror(errno));
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, pipefd[0], STDIN_FILENO);
        r = posix_spawnp(&child, "dot", &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(pipefd[0]);
        if (r != 0) {
                close(pipefd[1]);
                if (r == ENOENT)
                        return cmd_fail(ctx, -ENOENT,
                                        "Graphviz 'dot' is not installed; use --dot and render "
                                        "elsewhere");
                return cmd_fail(ctx, -r, "dot: %s", strerror(r));
        }

        /* dot may exit early on a bad format: ignore SIGPIPE so that is an error, not a death. */
        struct sigaction ign = { .sa_handler = SIG_IGN }, old;
        sigaction(SIGPIPE, &ign, &old);
        size_t off = 0;
        while (off < len) {
                ssize_t n = write(pipefd[1], dot + off, len - off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                off += (size_t)n;
        }
        close(pipefd[1]);
        sigaction(SIGPIPE, &old, NULL);
        while (waitpid(child, &status, 0) < 0 && errno == EINTR)
                ;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || off < len)
                return cmd_fail(ctx, -EIO, "dot could not render %s (format '%s')", path, format);
        return 0;
}

static json_t *map_json(struct map_proc *procs, size_t nprocs, bool all)
{
        json_t *root = json_object(), *arr = json_array();
        for (size_t i = 0; i < nprocs; i++) {
                json_t *pages = json_array();
                for (size_t k = 0; k < procs[i].pages.n; k++) {
                        const struct page *p = &procs[i].pages.pages[k];
                        if (!page_drawn(p, all))
                                continue;
                        json_array_append_new(
                                pages, json_pack("{sI sb sI sI sb sb sb sb sb sb sb}", "addr",
                                                 (json_int_t)p->addr, "present", p->present,
                                                 "frame", (json_int_t)p->frame, "sharers",
                                                 (json_int_t)p->sharers, "cow", p->cow, "zero",
                                                 p->zero, "shared", p->shared, "writable",
                                                 p->writable, "file", p->file, "dirty",
                                                 p->dirty, "device", p->device));
                }
                json_array_append_new(arr, json_pack("{sI ss so}", "pid", (json_int_t)procs[i].pid,
                                                     "name", procs[i].name, "pages", pages));
        }
        json_object_set_new(root, "procs", arr);
        return root;
}

static int cmd_map_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        struct args_opt opts[] = {
                { .name = "--dot" },
                { .name = "-o", .has_value = true },
                { .name = "--all" },
                { .name = "--max", .has_value = true },
                { .name = "--addr", .has_value = true },
                { .name = "--len", .has_value = true },
        };
        struct map_proc procs[MAP_MAX_PIDS];
        struct map_frame *frames = NULL;
        char *pos[MAP_MAX_PIDS];
        char *dot = NULL;
        size_t dotlen = 0, nframes = 0, omitted = 0;
        uint64_t limit = MAP_DEFAULT_PAGES, addr = 0, len = 0;
        FILE *mem = NULL;
        int n, r;

        (void)ret;
        memset(procs, 0, sizeof(procs));
        n = args_split(argc, argv, opts, ARRAY_SIZE(opts), pos, MAP_MAX_PIDS, ctx->why,
                       sizeof(ctx->why));
        if (n < 0) {
                r = n;
                n = 0;
                goto out;
        }
        if (n == 0) {
                r = cmd_usage(ctx, &cmd_map_entry);
                goto out;
        }
        if ((opts[3].seen && (r = cmd_parse_u64(ctx, "--max", opts[3].value, &limit)) < 0) ||
            (opts[4].seen && (r = cmd_parse_u64(ctx, "--addr", opts[4].value, &addr)) < 0) ||
            (opts[5].seen && (r = cmd_parse_u64(ctx, "--len", opts[5].value, &len)) < 0))
                goto out;
        if (opts[4].seen != opts[5].seen) {
                r = cmd_fail(ctx, -EINVAL, "--addr and --len go together");
                goto out;
        }
        for (int i = 0; i < n; i++)
                if ((r = cmd_parse_pid(ctx, pos[i], &procs[i].pid)) < 0)
                        goto out;
        if ((r = cmd_connect(ctx)) < 0)
                goto out;

        /* Names for the cluster titles. */
        for (int i = 0; i < n; i++) {
                Cowd__V1__Response *st = NULL;
                r = cowc_proc_stats(ctx->conn, procs[i].pid, &st, &ctx->err);
                if (r != 0)
                        goto out;
                snprintf(procs[i].name, sizeof(procs[i].name), "%s",
                         st->proc_stats->name ? st->proc_stats->name : "");
                cowc_response_free(st);
        }
        memset(&ctx->err, 0, sizeof(ctx->err));

        for (int i = 0; i < n; i++) {
                r = pages_collect(ctx, procs[i].pid, addr, len, &procs[i].pages);
                if (r != 0)
                        goto out;
        }

        if (ctx->mode == OUT_JSON && !opts[1].seen) {
                if (!ctx->quiet)
                        out_json(map_json(procs, (size_t)n, opts[2].seen), ctx->out);
                r = 0;
                goto out;
        }

        r = collect_frames(procs, (size_t)n, limit, opts[2].seen, &frames, &nframes);
        if (r < 0)
                goto out;
        mem = open_memstream(&dot, &dotlen);
        if (!mem) {
                r = -ENOMEM;
                goto out;
        }
        write_dot(mem, procs, (size_t)n, frames, nframes, limit, opts[2].seen, &omitted);
        if (fclose(mem) != 0) {
                mem = NULL;
                r = -ENOMEM;
                goto out;
        }
        mem = NULL;
        if (omitted)
                fprintf(stderr, "cowctl: map: drew the first %" PRIu64 " pages, %zu more not shown "
                                "(--max N to change)\n",
                        limit, omitted);

        if (opts[1].seen && !opts[0].seen) {
                r = render(ctx, dot, dotlen, opts[1].value);
        } else {
                if (!ctx->quiet)
                        fwrite(dot, 1, dotlen, ctx->out);
                r = 0;
        }
out:
        if (mem)
                fclose(mem);
        free(dot);
        free(frames);
        for (int i = 0; i < MAP_MAX_PIDS; i++)
                page_list_release(&procs[i].pages);
        return r;
}

const struct cmd_entry cmd_map_entry = {
        .name = "map",
        .usage = "PID... [-o OUT.svg|png] [--dot] [--all] [--max N]",
        .summary = "draw pages and frames (Graphviz); --addr A --len L for a range",
        .exec = cmd_map_exec,
};
