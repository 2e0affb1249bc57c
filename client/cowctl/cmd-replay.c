/* SPDX-License-Identifier: MIT */
/*
 * replay TRACE: runs a Valgrind lackey trace through a fresh process in the
 * daemon and reports what its memory did; --compare runs it under several
 * policies and frame counts and draws fault rate against frames.
 *
 * The trace is streamed: read in 64 KiB chunks, parsed as it comes
 * (lackey.c), sent in batches of trace requests. The process starts empty;
 * the regions the trace touches are mapped as it goes, in aligned 1 MiB
 * chunks on first touch (MAP_FIXED, read-write, private), so a trace of any
 * program replays without knowing its memory layout in advance.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "cmd.h"
#include "lackey.h"
#include "plot.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define REPLAY_CHUNK (UINT64_C(1) << 20) /* bytes mapped at a time, aligned */
#define REPLAY_READ 65536                /* bytes of trace read at a time */
#define REPLAY_TICK_NS 200000000L        /* progress line refresh: 5 a second */
#define COMPARE_MAX_POLICIES 3
#define COMPARE_MAX_FRAMES 64

/* The process's shape for a run; all zero is the daemon's defaults. */
struct replay_shape {
        uint64_t frames; /* max resident pages; 0: no limit */
        uint32_t tlb_entries;
        uint32_t tlb_ways;
        int policy; /* Cowd__V1__Policy; 0: the daemon's */
};

struct replay_figures {
        uint64_t accesses;
        uint64_t page_faults; /* first touches + major: accesses that found the page absent */
        uint64_t first_touch;
        bool first_touch_counted; /* the daemon counts first touches */
        uint64_t minor;
        uint64_t major;
        uint64_t tlb_hits;
        uint64_t tlb_misses;
        uint64_t evictions; /* sys_stats delta: every process's */
        uint64_t resident;  /* pages present at the end: real frames and zero-page mappings */
        uint64_t chunks;    /* 1 MiB regions mapped */
};

/* The 1 MiB chunks mapped so far: an open-addressing set of chunk numbers + 1 (0: empty). */
struct chunk_set {
        uint64_t *slot;
        size_t cap; /* a power of two, or 0 */
        size_t n;
};

struct replay_run {
        struct cmd_ctx *ctx;
        const char *label; /* progress prefix, or NULL */
        struct lackey_parser parser;
        uint32_t pid;
        struct chunk_set chunks;
        struct cowc_trace_access *batch;
        uint64_t *lines; /* the trace line of each batched access */
        size_t n, cap;
        uint64_t done;   /* accesses the daemon has carried out */
        bool progress;   /* stderr is a terminal */
        bool ticked;     /* a progress line is showing */
        struct timespec last_tick;
        uint64_t bytes_read, bytes_total; /* bytes_total 0: unknown (a pipe) */
};

static uint64_t mix64(uint64_t x)
{
        x ^= x >> 33;
        x *= UINT64_C(0xff51afd7ed558ccd);
        x ^= x >> 33;
        return x;
}

static bool chunk_set_has(const struct chunk_set *s, uint64_t key)
{
        if (!s->cap)
                return false;
        for (size_t i = mix64(key) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
                if (s->slot[i] == key + 1)
                        return true;
                if (s->slot[i] == 0)
                        return false;
        }
}

static int chunk_set_add(struct chunk_set *s, uint64_t key)
{
        if ((s->n + 1) * 2 > s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 64;
                uint64_t *slot = calloc(cap, sizeof(*slot));
                if (!slot)
                        return -ENOMEM;
                for (size_t j = 0; j < s->cap; j++) {
                        if (!s->slot[j])
                                continue;
                        size_t i = mix64(s->slot[j] - 1) & (cap - 1);
                        while (slot[i])
                                i = (i + 1) & (cap - 1);
                        slot[i] = s->slot[j];
                }
                free(s->slot);
                s->slot = slot;
                s->cap = cap;
        }
        size_t i = mix64(key) & (s->cap - 1);
        while (s->slot[i])
                i = (i + 1) & (s->cap - 1);
        s->slot[i] = key + 1;
        s->n++;
        return 0;
}

static long elapsed_ns(const struct timespec *a, const struct timespec *b)
{
        return (long)(b->tv_sec - a->tv_sec) * 1000000000L + (b->tv_nsec - a->tv_nsec);
}

/*
 * The progress line, on a terminal only, at most five times a second. Drawn
 * only after a batch has been answered, so that its figures are real ones.
 */
static void progress_tick(struct replay_run *run, bool force)
{
        struct timespec now;

        if (!run->progress)
                return;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!force && run->ticked && elapsed_ns(&run->last_tick, &now) < REPLAY_TICK_NS)
                return;
        run->last_tick = now;
        run->ticked = true;
        fprintf(stderr, "\r\033[K%s%s%" PRIu64 " accesses, line %" PRIu64,
                run->label ? run->label : "", run->label ? ": " : "", run->done,
                run->parser.line);
        if (run->bytes_total)
                fprintf(stderr, ", %.0f%%", 100.0 * (double)run->bytes_read /
                                                    (double)run->bytes_total);
        fflush(stderr);
}

static void progress_clear(struct replay_run *run)
{
        if (run->ticked) {
                fputs("\r\033[K", stderr);
                fflush(stderr);
                run->ticked = false;
        }
}

/* Puts prefix in front of the daemon's message, cutting the message's end if need be. */
static void prefix_message(struct cowc_error *err, const char *prefix)
{
        size_t cap = sizeof(err->message) - 1;
        size_t pl = strlen(prefix), ml = strnlen(err->message, cap);

        if (pl > cap)
                pl = cap;
        if (pl + ml > cap)
                ml = cap - pl;
        memmove(err->message + pl, err->message, ml);
        memcpy(err->message, prefix, pl);
        err->message[pl + ml] = '\0';
}

/*
 * Sends the batched accesses. On a failed access, puts its trace line in
 * front of the daemon's message and returns its code.
 */
static int replay_flush(struct replay_run *run)
{
        struct cmd_ctx *ctx = run->ctx;
        size_t done = 0;
        int r;

        if (run->n == 0)
                return 0;
        r = cowc_trace(ctx->conn, run->pid, run->batch, run->n, &done, &ctx->err);
        if (r < 0)
                return cmd_fail(ctx, r, "trace request: %s", strerror(-r));
        run->done += done;
        if (r > 0) {
                char prefix[48];
                snprintf(prefix, sizeof(prefix), "trace line %" PRIu64 ": ",
                         done < run->n ? run->lines[done] : run->parser.line);
                prefix_message(&ctx->err, prefix);
                return r;
        }
        run->n = 0;
        progress_tick(run, false);
        return 0;
}

/* Maps chunk number c (MAP_FIXED: the chunk set says nothing is there yet). */
static int replay_map_chunk(struct replay_run *run, uint64_t c)
{
        struct cmd_ctx *ctx = run->ctx;
        struct cowc_mmap_args a = { .addr = c * REPLAY_CHUNK, .length = REPLAY_CHUNK,
                                    .prot = 3, .fixed = true };
        uint64_t addr;
        int r;

        /* Address 0 asks the daemon to choose: the first chunk starts a page in. */
        if (a.addr == 0) {
                a.addr = ctx->page_size;
                a.length -= ctx->page_size;
        }
        r = cowc_mmap(ctx->conn, run->pid, &a, &addr, &ctx->err);
        if (r < 0)
                return cmd_fail(ctx, r, "mmap: %s", strerror(-r));
        if (r > 0) {
                char prefix[80];
                snprintf(prefix, sizeof(prefix),
                         "trace line %" PRIu64 ": mapping 0x%" PRIx64 " for it: ",
                         run->parser.line + 1, a.addr);
                prefix_message(&ctx->err, prefix);
                return r;
        }
        return chunk_set_add(&run->chunks, c) < 0 ? cmd_fail(ctx, -ENOMEM, "out of memory")
                                                    : 0;
}

static enum cowc_trace_kind kind_to_trace(enum lackey_kind k)
{
        switch (k) {
        case LACKEY_INSTR:
                return COWC_TRACE_INSTR;
        case LACKEY_STORE:
                return COWC_TRACE_STORE;
        case LACKEY_MODIFY:
                return COWC_TRACE_MODIFY;
        case LACKEY_LOAD:
                break;
        }
        return COWC_TRACE_LOAD;
}

/* The parser's callback: map what the access needs, batch it, send full batches. */
static int replay_on_access(void *p, const struct lackey_access *a)
{
        struct replay_run *run = p;
        uint64_t first = a->addr / REPLAY_CHUNK, last = (a->addr + a->size - 1) / REPLAY_CHUNK;
        int r;

        if (a->size > run->ctx->page_size)
                return cmd_fail(run->ctx, -EINVAL,
                                "trace line %" PRIu64 ": an access of %u bytes is larger than "
                                "a page (%u)",
                                run->parser.line + 1, a->size, run->ctx->page_size);
        for (uint64_t c = first; c <= last; c++) {
                if (chunk_set_has(&run->chunks, c))
                        continue;
                /* Accesses already batched may lie in no chunk mapped before this one. */
                r = replay_flush(run);
                if (r == 0)
                        r = replay_map_chunk(run, c);
                if (r != 0)
                        return r;
        }
        run->batch[run->n] = (struct cowc_trace_access){ a->addr, a->size, kind_to_trace(a->kind) };
        run->lines[run->n] = run->parser.line + 1;
        if (++run->n == run->cap)
                return replay_flush(run);
        return 0;
}

/* Reads the trace from fd to its end through the parser. */
static int replay_stream(struct replay_run *run, int fd, const char *path)
{
        char *buf = malloc(REPLAY_READ);
        int r = 0;

        if (!buf)
                return cmd_fail(run->ctx, -ENOMEM, "out of memory");
        for (;;) {
                ssize_t n = read(fd, buf, REPLAY_READ);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = cmd_fail(run->ctx, -errno, "%s: %s", path, strerror(errno));
                        break;
                }
                if (n == 0) {
                        r = lackey_finish(&run->parser);
                        break;
                }
                run->bytes_read += (uint64_t)n;
                r = lackey_feed(&run->parser, buf, (size_t)n);
                if (r != 0)
                        break;
        }
        if (r == -EINVAL && run->parser.error[0])
                r = cmd_fail(run->ctx, -EINVAL, "%s: %s", path, run->parser.error);
        if (r == 0)
                r = replay_flush(run);
        free(buf);
        return r;
}

static uint64_t sys_evictions(struct cmd_ctx *ctx, int *r)
{
        Cowd__V1__Response *resp = NULL;
        uint64_t v = 0;

        *r = cowc_sys_stats(ctx->conn, &resp, &ctx->err);
        if (*r == 0)
                v = resp->sys_stats->evictions;
        cowc_response_free(resp);
        return v;
}

/*
 * Spawns the process for one run. A shape needs the daemon's per-process
 * limits; a daemon without them answers UNIMPLEMENTED, and the run stops
 * there rather than replay with a shape other than the one asked for.
 */
static int replay_spawn(struct cmd_ctx *ctx, const struct replay_shape *shape, uint32_t *ret_pid)
{
        struct cowc_spawn_args args = {
                .name = "replay",
                .max_resident = shape->frames,
                .tlb_entries = shape->tlb_entries,
                .tlb_ways = shape->tlb_ways,
                .policy = shape->policy,
        };
        int r = cowc_spawn_args(ctx->conn, &args, ret_pid, &ctx->err);

        if (r == COWD__V1__CODE__UNIMPLEMENTED &&
            (shape->frames || shape->tlb_entries || shape->policy))
                return cmd_fail(ctx, -EOPNOTSUPP,
                                "this daemon cannot give a process its own frames, TLB or "
                                "policy (--frames, --tlb-entries, --tlb-ways, --policy and "
                                "--compare need per-process limits): %s",
                                ctx->err.message);
        return r;
}

/* One whole replay of path with shape, into *ret. */
static int replay_once(struct cmd_ctx *ctx, const char *path, const struct replay_shape *shape,
                       const char *label, struct replay_figures *ret)
{
        struct replay_run run = { .ctx = ctx, .label = label };
        Cowd__V1__Response *resp = NULL;
        uint64_t evictions_before;
        struct stat st;
        int fd = -1, r;

        if (strcmp(path, "-") == 0)
                fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 0);
        else
                fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return cmd_fail(ctx, -errno, "%s: %s", path, strerror(errno));
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
                run.bytes_total = (uint64_t)st.st_size;
        run.progress = !ctx->quiet && isatty(STDERR_FILENO);
        run.cap = cowc_trace_batch_max(ctx->conn);
        run.batch = calloc(run.cap ? run.cap : 1, sizeof(*run.batch));
        run.lines = calloc(run.cap ? run.cap : 1, sizeof(*run.lines));
        if (!run.batch || !run.lines || run.cap == 0) {
                r = cmd_fail(ctx, -ENOMEM, "out of memory");
                goto out;
        }
        lackey_init(&run.parser, replay_on_access, &run);

        evictions_before = sys_evictions(ctx, &r);
        if (r != 0)
                goto out;
        r = replay_spawn(ctx, shape, &run.pid);
        if (r != 0)
                goto out;
        r = replay_stream(&run, fd, path);
        progress_clear(&run);
        if (r != 0)
                goto out;

        r = cowc_proc_stats(ctx->conn, run.pid, &resp, &ctx->err);
        if (r != 0)
                goto out;
        const Cowd__V1__ProcStats *ps = resp->proc_stats;
        memset(ret, 0, sizeof(*ret));
        ret->accesses = run.done;
        ret->first_touch = ps->faults_first_touch;
        /* Any access to a fresh, empty process first-touches some page. */
        ret->first_touch_counted = ps->faults_first_touch > 0 || run.done == 0;
        ret->minor = ps->faults_zero_map + ps->faults_zero_fill + ps->faults_cow_copy +
                     ps->faults_cow_reuse;
        ret->major = ps->faults_major;
        ret->page_faults = ps->faults_first_touch + ps->faults_major;
        ret->tlb_hits = ps->tlb_hits;
        ret->tlb_misses = ps->tlb_misses;
        ret->resident = ps->rss_pages + ps->zero_pages;
        ret->chunks = run.chunks.n;
        ret->evictions = sys_evictions(ctx, &r) - evictions_before;
out:
        progress_clear(&run);
        if (run.pid) {
                struct cowc_error ignored;
                (void)cowc_exit(ctx->conn, run.pid, &ignored);
        }
        cowc_response_free(resp);
        free(run.chunks.slot);
        free(run.batch);
        free(run.lines);
        close(fd);
        return r;
}

static double tlb_hit_rate(const struct replay_figures *f)
{
        uint64_t all = f->tlb_hits + f->tlb_misses;
        return all ? (double)f->tlb_hits / (double)all : 0.0;
}

static void print_figures(struct cmd_ctx *ctx, const struct replay_figures *f)
{
        if (ctx->mode == OUT_JSON) {
                json_t *o = json_object();
                json_object_set_new(o, "accesses", json_integer((json_int_t)f->accesses));
                json_object_set_new(o, "first_touch_faults",
                                    f->first_touch_counted
                                            ? json_integer((json_int_t)f->first_touch)
                                            : json_null());
                json_object_set_new(o, "minor_faults", json_integer((json_int_t)f->minor));
                json_object_set_new(o, "major_faults", json_integer((json_int_t)f->major));
                json_object_set_new(o, "tlb_hits", json_integer((json_int_t)f->tlb_hits));
                json_object_set_new(o, "tlb_misses", json_integer((json_int_t)f->tlb_misses));
                json_object_set_new(o, "tlb_hit_rate", json_real(tlb_hit_rate(f)));
                json_object_set_new(o, "evictions", json_integer((json_int_t)f->evictions));
                json_object_set_new(o, "resident_pages", json_integer((json_int_t)f->resident));
                json_object_set_new(o, "mapped_chunks", json_integer((json_int_t)f->chunks));
                out_json(o, ctx->out);
                return;
        }
        FILE *o = ctx->out;
        const char *sep = ctx->mode == OUT_PLAIN ? "\t" : " ";
        int w = ctx->mode == OUT_PLAIN ? 0 : -18;
        fprintf(o, "%*s%s%" PRIu64 "\n", w, "accesses", sep, f->accesses);
        if (f->first_touch_counted)
                fprintf(o, "%*s%s%" PRIu64 "\n", w, "first_touch_faults", sep, f->first_touch);
        else
                fprintf(o, "%*s%sn/a (this daemon does not count them)\n", w,
                        "first_touch_faults", sep);
        fprintf(o, "%*s%s%" PRIu64 "\n", w, "minor_faults", sep, f->minor);
        fprintf(o, "%*s%s%" PRIu64 "\n", w, "major_faults", sep, f->major);
        fprintf(o, "%*s%s%.4f\n", w, "tlb_hit_rate", sep, tlb_hit_rate(f));
        fprintf(o, "%*s%s%" PRIu64 "\n", w, "evictions", sep, f->evictions);
        fprintf(o, "%*s%s%" PRIu64 "\n", w, "resident_pages", sep, f->resident);
        fprintf(o, "%*s%s%" PRIu64 "\n", w, "mapped_chunks", sep, f->chunks);
}

static const char *const policy_names[] = { "clock", "fifo", "lru" };

/* "clock", "fifo", "lru" to the wire's Policy (1, 2, 3); -1 if unknown. */
static int policy_from_name(const char *s, size_t len)
{
        for (size_t i = 0; i < ARRAY_SIZE(policy_names); i++)
                if (strlen(policy_names[i]) == len && strncmp(s, policy_names[i], len) == 0)
                        return (int)i + 1;
        return -1;
}

static int parse_u32(struct cmd_ctx *ctx, const char *what, const char *s, uint32_t *ret)
{
        uint64_t v;
        int r = cmd_parse_u64(ctx, what, s, &v);
        if (r < 0)
                return r;
        if (v > UINT32_MAX)
                return cmd_fail(ctx, -EINVAL, "%s '%s' is too large", what, s);
        *ret = (uint32_t)v;
        return 0;
}

/* Writes the comparison's picture: fault rate against frames, one line per policy. */
static int write_picture(struct cmd_ctx *ctx, const char *file, const char *trace,
                         const int *policies, size_t np, const uint64_t *frames, size_t nf,
                         const struct replay_figures *fig)
{
        struct plot_series series[COMPARE_MAX_POLICIES];
        double x[COMPARE_MAX_POLICIES][COMPARE_MAX_FRAMES];
        double y[COMPARE_MAX_POLICIES][COMPARE_MAX_FRAMES];
        char notes[COMPARE_MAX_POLICIES][COMPARE_MAX_FRAMES][24];
        const char *labels[COMPARE_MAX_POLICIES][COMPARE_MAX_FRAMES];
        char title[160];
        FILE *f;
        int r;

        for (size_t p = 0; p < np; p++) {
                for (size_t i = 0; i < nf; i++) {
                        const struct replay_figures *g = &fig[p * nf + i];
                        uint64_t faults = g->page_faults;
                        x[p][i] = (double)frames[i];
                        y[p][i] = g->accesses ? (double)faults / (double)g->accesses : 0;
                        snprintf(notes[p][i], sizeof(notes[p][i]), "%" PRIu64, faults);
                        labels[p][i] = notes[p][i];
                }
                series[p] = (struct plot_series){ policy_names[policies[p] - 1], x[p], y[p],
                                                  labels[p], nf };
        }
        const char *base = strrchr(trace, '/');
        snprintf(title, sizeof(title), "Fault rate against frames: %s", base ? base + 1 : trace);
        f = fopen(file, "we");
        if (!f)
                return cmd_fail(ctx, -errno, "%s: %s", file, strerror(errno));
        r = plot_svg(f, title, "frames", "faults per access (points: faults)", series, np);
        if (fclose(f) != 0 || r < 0)
                return cmd_fail(ctx, -EIO, "%s: writing failed", file);
        return 0;
}

/*
 * Runs the trace once per policy and frame count. Its "faults" are page
 * faults in the textbook sense: accesses that found their page absent, the
 * first touches plus the pages read back from swap. (A write just after a
 * swap-in may take a second, minor fault on the same page; it is not a
 * page-in and is not counted here.)
 */
static int replay_compare(struct cmd_ctx *ctx, const char *path, const char *list,
                          char **words, int nwords, const struct replay_shape *base,
                          const char *svg)
{
        static const char *const cols[] = { "policy",     "frames",       "faults",
                                            "fault_rate", "major_faults", "tlb_hit_rate",
                                            "evictions" };
        int policies[COMPARE_MAX_POLICIES];
        uint64_t frames[COMPARE_MAX_FRAMES];
        struct replay_figures *fig = NULL;
        struct table *t = NULL;
        size_t np = 0, nf = 0;
        int r = 0;

        if (strcmp(path, "-") == 0)
                return cmd_fail(ctx, -EINVAL, "--compare reads the trace once per run: give a "
                                              "file, not -");
        for (const char *s = list; *s;) {
                size_t len = strcspn(s, ",");
                int p = policy_from_name(s, len);
                if (p < 0)
                        return cmd_fail(ctx, -EINVAL, "unknown policy '%.*s' (clock, fifo, lru)",
                                        (int)len, s);
                if (np == COMPARE_MAX_POLICIES)
                        return cmd_fail(ctx, -EINVAL, "at most %d policies",
                                        COMPARE_MAX_POLICIES);
                policies[np++] = p;
                s += len + (s[len] == ',');
        }
        if (np == 0 || nwords == 0)
                return cmd_fail(ctx, -EINVAL, "--compare needs policies (fifo,lru) and frame "
                                              "counts (replay TRACE --compare fifo 3 4)");
        if (nwords > COMPARE_MAX_FRAMES)
                return cmd_fail(ctx, -EINVAL, "at most %d frame counts", COMPARE_MAX_FRAMES);
        for (int i = 0; i < nwords; i++) {
                r = cmd_parse_u64(ctx, "frame count", words[i], &frames[nf]);
                if (r < 0)
                        return r;
                if (frames[nf] == 0)
                        return cmd_fail(ctx, -EINVAL, "frame counts start at 1");
                nf++;
        }

        fig = calloc(np * nf, sizeof(*fig));
        t = table_new(ARRAY_SIZE(cols), cols);
        if (!fig || !t) {
                r = cmd_fail(ctx, -ENOMEM, "out of memory");
                goto out;
        }
        for (size_t p = 0; p < np && r == 0; p++) {
                for (size_t i = 0; i < nf && r == 0; i++) {
                        struct replay_shape shape = *base;
                        struct replay_figures *g = &fig[p * nf + i];
                        char label[48];

                        shape.policy = policies[p];
                        shape.frames = frames[i];
                        snprintf(label, sizeof(label), "%s, %" PRIu64 " frames",
                                 policy_names[policies[p] - 1], frames[i]);
                        r = replay_once(ctx, path, &shape, label, g);
                        if (r != 0)
                                break;
                        char rate[32], hit[32];
                        snprintf(rate, sizeof(rate), "%.4f",
                                 g->accesses ? (double)g->page_faults / (double)g->accesses
                                             : 0.0);
                        snprintf(hit, sizeof(hit), "%.4f", tlb_hit_rate(g));
                        if (table_add_str(t, policy_names[policies[p] - 1]) < 0 ||
                            table_add_u64(t, frames[i]) < 0 ||
                            table_add_u64(t, g->page_faults) < 0 ||
                            table_add_str(t, rate) < 0 || table_add_u64(t, g->major) < 0 ||
                            table_add_str(t, hit) < 0 || table_add_u64(t, g->evictions) < 0)
                                r = cmd_fail(ctx, -ENOMEM, "out of memory");
                }
        }
        if (r != 0)
                goto out;
        r = write_picture(ctx, svg, path, policies, np, frames, nf, fig);
        if (r != 0)
                goto out;
        if (!ctx->quiet) {
                table_print(t, ctx->mode, ctx->out);
                fprintf(stderr, "picture: %s\n", svg);
        }
out:
        table_free(t);
        free(fig);
        return r;
}

static int cmd_replay_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        struct args_opt opts[] = {
                { .name = "--frames", .has_value = true },
                { .name = "--tlb-entries", .has_value = true },
                { .name = "--tlb-ways", .has_value = true },
                { .name = "--policy", .has_value = true },
                { .name = "--compare", .has_value = true },
                { .name = "--svg", .has_value = true },
        };
        struct replay_shape shape = { 0 };
        struct replay_figures fig;
        char *pos[1 + COMPARE_MAX_FRAMES + 1];
        int n, r;

        (void)ret;
        n = args_split(argc, argv, opts, ARRAY_SIZE(opts), pos, (int)ARRAY_SIZE(pos), ctx->why,
                       sizeof(ctx->why));
        if (n < 0)
                return n;
        if (n < 1 || (n > 1 && !opts[4].seen))
                return cmd_usage(ctx, &cmd_replay_entry);
        if (opts[0].seen && (r = cmd_parse_u64(ctx, "--frames", opts[0].value, &shape.frames)) < 0)
                return r;
        if (opts[1].seen &&
            (r = parse_u32(ctx, "--tlb-entries", opts[1].value, &shape.tlb_entries)) < 0)
                return r;
        if (opts[2].seen && (r = parse_u32(ctx, "--tlb-ways", opts[2].value, &shape.tlb_ways)) < 0)
                return r;
        if (shape.tlb_ways && !shape.tlb_entries)
                return cmd_fail(ctx, -EINVAL, "--tlb-ways needs --tlb-entries");
        if (opts[3].seen) {
                shape.policy = policy_from_name(opts[3].value, strlen(opts[3].value));
                if (shape.policy < 0)
                        return cmd_fail(ctx, -EINVAL, "unknown policy '%s' (clock, fifo, lru)",
                                        opts[3].value);
        }
        if (opts[4].seen && (opts[0].seen || opts[3].seen))
                return cmd_fail(ctx, -EINVAL, "--compare chooses the policies and frames itself");
        if (opts[5].seen && !opts[4].seen)
                return cmd_fail(ctx, -EINVAL, "--svg goes with --compare");
        r = cmd_connect(ctx);
        if (r < 0)
                return r;
        if (opts[4].seen)
                return replay_compare(ctx, pos[0], opts[4].value, pos + 1, n - 1, &shape,
                                      opts[5].seen ? opts[5].value : "replay-compare.svg");
        r = replay_once(ctx, pos[0], &shape, NULL, &fig);
        if (r != 0)
                return r;
        if (!ctx->quiet)
                print_figures(ctx, &fig);
        return 0;
}

const struct cmd_entry cmd_replay_entry = {
        .name = "replay",
        .usage = "TRACE|- [--frames N] [--tlb-entries N] [--tlb-ways N] [--policy P] "
                 "[--compare POLICIES FRAMES... [--svg FILE]]",
        .summary = "replay a Valgrind lackey trace; report faults, TLB hit rate, evictions",
        .exec = cmd_replay_exec,
};
