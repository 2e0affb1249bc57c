/* SPDX-License-Identifier: MIT */
/*
 * `cowctl bench`: a load generator. Options, the processes to act on, the
 * daemon's statistics before and after, and the report (text, --json or
 * --csv). The run itself is in bench-driver.c, the operations in
 * bench-workload.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "args.h"
#include "bench.h"
#include "cmd.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Descriptors the bench needs besides one per connection (stdio, its control connection). */
#define FD_SLACK 32

/* The daemon's figures compared before and after, by SysStats field name. */
static const char *const delta_fields[] = {
        "requests_total", "frames_used", "cow_copies", "cow_reuses", "zero_fills",
        "zero_maps",      "segv_faults", "tlb_hits",   "tlb_misses", "procs_created",
};

enum { OPT_C, OPT_P, OPT_N, OPT_D, OPT_S, OPT_WARMUP, OPT_RATE, OPT_MIX, OPT_SHARED, OPT_CSV,
       OPT_PROC_SIZE, OPT_COW_PAGES, OPT_ZERO_SIZE, OPT_NO_PROGRESS, N_OPTS };

static int parse_number(struct cmd_ctx *ctx, const char *what, const char *s, uint64_t min,
                        uint64_t max, uint64_t *ret)
{
        uint64_t v = 0;
        int r = cmd_parse_u64(ctx, what, s, &v);

        if (r < 0)
                return r;
        if (v < min || v > max)
                return cmd_fail(ctx, -EINVAL, "%s must be from %" PRIu64 " to %" PRIu64, what,
                                min, max);
        *ret = v;
        return 0;
}

/* Seconds, fractions allowed ("0.5", "10"). */
static int parse_seconds(struct cmd_ctx *ctx, const char *what, const char *s, double *ret)
{
        char *end;
        double v = strtod(s, &end);

        if (*s == '\0' || *end != '\0' || !(v >= 0.0) || v > 86400.0)
                return cmd_fail(ctx, -EINVAL, "%s takes seconds from 0 to 86400, not '%s'", what,
                                s);
        *ret = v;
        return 0;
}

/* "read=70,write=20,fork=10" into weights. */
static int parse_mix(struct cmd_ctx *ctx, const char *s, unsigned weights[BENCH_N_OPS])
{
        char buf[256];
        char *save = NULL;

        if (strlen(s) >= sizeof(buf))
                return cmd_fail(ctx, -EINVAL, "--mix is too long");
        strcpy(buf, s);
        memset(weights, 0, BENCH_N_OPS * sizeof(weights[0]));
        for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(tok, '=');
                uint64_t w = 0;
                int op;

                if (!eq)
                        return cmd_fail(ctx, -EINVAL, "--mix: '%s' is not OP=WEIGHT", tok);
                *eq = '\0';
                op = bench_op_from_name(tok);
                if (op < 0)
                        return cmd_fail(ctx, -EINVAL,
                                        "--mix: unknown operation '%s' (read, write, fork, cow, "
                                        "zero, exam)", tok);
                if (parse_number(ctx, "a --mix weight", eq + 1, 0, 1000000, &w) < 0)
                        return -EINVAL;
                weights[op] += (unsigned)w;
        }
        unsigned sum = 0;
        for (int i = 0; i < BENCH_N_OPS; i++)
                sum += weights[i];
        if (sum == 0)
                return cmd_fail(ctx, -EINVAL, "--mix: the weights add up to 0");
        return 0;
}

/*
 * Makes room for conns sockets: raises the soft open-file limit up to the
 * hard one, or the hard one too when the process may (root). Returns 0 or
 * -EMFILE with a sentence saying which limit stands in the way.
 */
static int raise_fd_limit(struct cmd_ctx *ctx, unsigned conns)
{
        struct rlimit rl;
        rlim_t need = (rlim_t)conns + FD_SLACK;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return cmd_fail(ctx, -errno, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= need)
                return 0;
        if (rl.rlim_cur == RLIM_INFINITY)
                return 0;
        struct rlimit want = { .rlim_cur = need,
                               .rlim_max = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need
                                                   ? rl.rlim_max
                                                   : need };
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
                return 0;
        return cmd_fail(ctx, -EMFILE,
                        "%u connections need %llu open files, but the hard limit is %llu and "
                        "cannot be raised (ulimit -Hn; or use fewer connections)",
                        conns, (unsigned long long)need, (unsigned long long)rl.rlim_max);
}

/* Reads the delta_fields of the daemon's SysStats into out. */
static int read_sys_stats(struct cmd_ctx *ctx, struct bench_results *res,
                          uint64_t out[ARRAY_SIZE(delta_fields)])
{
        Cowd__V1__Response *resp = NULL;
        int r;

        res->requests++;
        res->requests_by_op[COWD__V1__REQUEST__OP_SYS_STATS]++;
        r = cowc_sys_stats(ctx->conn, &resp, &ctx->err);
        if (r != 0)
                return r;
        for (size_t i = 0; i < ARRAY_SIZE(delta_fields); i++) {
                struct value v = { 0 };
                out[i] = out_message_field(&resp->sys_stats->base, delta_fields[i], &v) == 0 &&
                                         v.type == VALUE_INT
                                 ? (uint64_t)v.i
                                 : 0;
                value_clear(&v);
        }
        cowc_response_free(resp);
        return 0;
}

static double us(uint64_t ns)
{
        return (double)ns / 1000.0;
}

static const char *request_name(unsigned op_case)
{
        const ProtobufCFieldDescriptor *f =
                protobuf_c_message_descriptor_get_field(&cowd__v1__request__descriptor, op_case);
        return f ? f->name : "?";
}

struct report {
        const struct bench_config *cfg;
        const char *workload;
        const struct bench_results *res;
        histogram *all;
        uint64_t ops, errors;
        uint64_t before[ARRAY_SIZE(delta_fields)], after[ARRAY_SIZE(delta_fields)];
};

static json_t *latency_json(const histogram *h)
{
        return json_pack("{sI sf sf sf sf sf sf sf}", "count", (json_int_t)histogram_count(h),
                         "min", us(histogram_min(h)), "mean", histogram_mean(h) / 1000.0, "p50",
                         us(histogram_percentile(h, 50)), "p90", us(histogram_percentile(h, 90)),
                         "p99", us(histogram_percentile(h, 99)), "p99_9",
                         us(histogram_percentile(h, 99.9)), "max", us(histogram_max(h)));
}

static void report_json(const struct report *rp, FILE *f)
{
        const struct bench_config *cfg = rp->cfg;
        const struct bench_results *res = rp->res;
        json_t *root = json_object(), *lat = json_object(), *ops = json_object();
        json_t *codes = json_object(), *byop = json_object(), *delta = json_object();
        json_t *mix = json_object();

        for (int i = 0; i < BENCH_N_OPS; i++) {
                if (cfg->weights[i])
                        json_object_set_new(mix, bench_op_name(i), json_integer(cfg->weights[i]));
                if (!cfg->weights[i] && !res->ops[i])
                        continue;
                json_object_set_new(ops, bench_op_name(i), json_integer((json_int_t)res->ops[i]));
                json_object_set_new(lat, bench_op_name(i), latency_json(res->latency[i]));
        }
        json_object_set_new(lat, "all", latency_json(rp->all));
        for (unsigned c = 1; c < BENCH_N_CODES; c++)
                if (res->errors_by_code[c])
                        json_object_set_new(codes, bench_code_name(c),
                                            json_integer((json_int_t)res->errors_by_code[c]));
        for (unsigned k = 0; k <= BENCH_MAX_OP_CASE; k++)
                if (res->requests_by_op[k])
                        json_object_set_new(byop, request_name(k),
                                            json_integer((json_int_t)res->requests_by_op[k]));
        for (size_t i = 0; i < ARRAY_SIZE(delta_fields); i++)
                json_object_set_new(delta, delta_fields[i],
                                    json_integer((json_int_t)(rp->after[i] - rp->before[i])));

        json_object_set_new(root, "workload", json_string(rp->workload));
        json_object_set_new(root, "mix", mix);
        json_object_set_new(root, "connections", json_integer(cfg->conns));
        json_object_set_new(root, "pipeline", json_integer(cfg->pipeline));
        json_object_set_new(root, "size", json_integer(cfg->size));
        json_object_set_new(root, "shared", json_boolean(cfg->shared));
        json_object_set_new(root, "rate", json_real(cfg->rate));
        json_object_set_new(root, "elapsed_s", json_real(res->elapsed_s));
        json_object_set_new(root, "ops", json_integer((json_int_t)rp->ops));
        json_object_set_new(root, "ops_per_sec",
                            json_real(res->elapsed_s > 0 ? (double)rp->ops / res->elapsed_s : 0));
        json_object_set_new(root, "ops_by_kind", ops);
        json_object_set_new(root, "warmup_ops", json_integer((json_int_t)res->warmup_ops));
        json_object_set_new(root, "errors", json_integer((json_int_t)rp->errors));
        json_object_set_new(root, "errors_by_code", codes);
        json_object_set_new(root, "connections_lost",
                            json_integer((json_int_t)res->connections_lost));
        json_object_set_new(root, "latency_us", lat);
        json_object_set_new(root, "requests", json_integer((json_int_t)res->requests));
        json_object_set_new(root, "requests_by_op", byop);
        json_object_set_new(root, "daemon_delta", delta);
        out_json(root, f);
}

static void report_csv(const struct report *rp, FILE *f)
{
        const struct bench_results *res = rp->res;

        fprintf(f, "op,count,ops_per_sec,errors,min_us,p50_us,p90_us,p99_us,p99_9_us,max_us\n");
        for (int i = 0; i <= BENCH_N_OPS; i++) {
                const histogram *h = i < BENCH_N_OPS ? res->latency[i] : rp->all;
                uint64_t n = i < BENCH_N_OPS ? res->ops[i] : rp->ops;
                uint64_t e = i < BENCH_N_OPS ? res->errors[i] : rp->errors;

                if (i < BENCH_N_OPS && !rp->cfg->weights[i] && !n)
                        continue;
                fprintf(f, "%s,%" PRIu64 ",%.1f,%" PRIu64 ",%.1f,%.1f,%.1f,%.1f,%.1f,%.1f\n",
                        i < BENCH_N_OPS ? bench_op_name(i) : "all", n,
                        res->elapsed_s > 0 ? (double)n / res->elapsed_s : 0.0, e,
                        us(histogram_min(h)), us(histogram_percentile(h, 50)),
                        us(histogram_percentile(h, 90)), us(histogram_percentile(h, 99)),
                        us(histogram_percentile(h, 99.9)), us(histogram_max(h)));
        }
}

static void report_text(const struct report *rp, FILE *f)
{
        const struct bench_config *cfg = rp->cfg;
        const struct bench_results *res = rp->res;

        fprintf(f, "%s: %u connection%s, pipeline %u, %u-byte values%s%s\n", rp->workload,
                cfg->conns, cfg->conns == 1 ? "" : "s", cfg->pipeline, cfg->size,
                cfg->shared ? ", shared processes" : "", cfg->rate > 0 ? ", rate-capped" : "");
        fprintf(f, "%" PRIu64 " operations in %.2f s: %.0f ops/s; %" PRIu64 " errors\n", rp->ops,
                res->elapsed_s, res->elapsed_s > 0 ? (double)rp->ops / res->elapsed_s : 0.0,
                rp->errors);
        for (unsigned c = 1; c < BENCH_N_CODES; c++)
                if (res->errors_by_code[c])
                        fprintf(f, "  %-20s %" PRIu64 "\n", bench_code_name(c),
                                res->errors_by_code[c]);
        if (res->connections_lost)
                fprintf(f, "  %" PRIu64 " connections lost\n", res->connections_lost);
        fprintf(f, "\nlatency (us)   %10s %9s %9s %9s %9s %9s %9s\n", "count", "min", "p50", "p90",
                "p99", "p99.9", "max");
        for (int i = 0; i <= BENCH_N_OPS; i++) {
                const histogram *h = i < BENCH_N_OPS ? res->latency[i] : rp->all;
                if (i < BENCH_N_OPS && !cfg->weights[i] && !res->ops[i])
                        continue;
                fprintf(f, "  %-12s %10" PRIu64 " %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f\n",
                        i < BENCH_N_OPS ? bench_op_name(i) : "all", histogram_count(h),
                        us(histogram_min(h)), us(histogram_percentile(h, 50)),
                        us(histogram_percentile(h, 90)), us(histogram_percentile(h, 99)),
                        us(histogram_percentile(h, 99.9)), us(histogram_max(h)));
        }
        fprintf(f, "\ndaemon, during the run:");
        for (size_t i = 0; i < ARRAY_SIZE(delta_fields); i++)
                fprintf(f, "%s %s %+" PRId64, i ? "," : "", delta_fields[i],
                        (int64_t)(rp->after[i] - rp->before[i]));
        fprintf(f, "\n%" PRIu64 " requests sent (setup included)\n", res->requests);
}

static int cmd_bench_exec(struct cmd_ctx *ctx, int argc, char **argv, struct value *ret)
{
        struct args_opt opts[N_OPTS] = {
                [OPT_C] = { .name = "-c", .has_value = true },
                [OPT_P] = { .name = "-P", .has_value = true },
                [OPT_N] = { .name = "-n", .has_value = true },
                [OPT_D] = { .name = "-d", .has_value = true },
                [OPT_S] = { .name = "-s", .has_value = true },
                [OPT_WARMUP] = { .name = "--warmup", .has_value = true },
                [OPT_RATE] = { .name = "--rate", .has_value = true },
                [OPT_MIX] = { .name = "--mix", .has_value = true },
                [OPT_SHARED] = { .name = "--shared" },
                [OPT_CSV] = { .name = "--csv" },
                [OPT_PROC_SIZE] = { .name = "--proc-size", .has_value = true },
                [OPT_COW_PAGES] = { .name = "--cow-pages", .has_value = true },
                [OPT_ZERO_SIZE] = { .name = "--zero-size", .has_value = true },
                [OPT_NO_PROGRESS] = { .name = "--no-progress" },
        };
        struct bench_config cfg = {
                .endpoint = ctx->endpoint, .conns = 1, .pipeline = 1, .duration_s = 5,
                .size = 4096, .proc_size = 64 * 1024, .cow_pages = 4, .zero_size = 256 * 1024,
        };
        struct bench_results res = { 0 };
        struct bench_target *targets = NULL;
        struct report rp = { .cfg = &cfg, .res = &res };
        char *pos[1];
        char token[512];
        bool fresh;
        uint64_t v = 0;
        unsigned ntargets;
        int n, r;

        (void)ret;
        n = args_split(argc, argv, opts, N_OPTS, pos, 1, ctx->why, sizeof(ctx->why));
        if (n < 0)
                return n;
        if (n == 1) {
                int op = bench_op_from_name(pos[0]);
                if (op < 0)
                        return cmd_fail(ctx, -EINVAL,
                                        "unknown workload '%s' (read, write, fork, cow, zero, "
                                        "exam, or --mix)", pos[0]);
                cfg.weights[op] = 1;
                rp.workload = pos[0];
        }
        if ((n == 1) == opts[OPT_MIX].seen)
                return cmd_fail(ctx, -EINVAL, "name one workload or give --mix, not %s",
                                n ? "both" : "neither");
        if (opts[OPT_MIX].seen) {
                if ((r = parse_mix(ctx, opts[OPT_MIX].value, cfg.weights)) < 0)
                        return r;
                rp.workload = opts[OPT_MIX].value;
        }
        if (opts[OPT_C].seen) {
                if ((r = parse_number(ctx, "-c", opts[OPT_C].value, 1, 1000000, &v)) < 0)
                        return r;
                cfg.conns = (unsigned)v;
        }
        if (opts[OPT_P].seen) {
                if ((r = parse_number(ctx, "-P", opts[OPT_P].value, 1, 4096, &v)) < 0)
                        return r;
                cfg.pipeline = (unsigned)v;
        }
        if (opts[OPT_N].seen && opts[OPT_D].seen)
                return cmd_fail(ctx, -EINVAL, "give -n or -d, not both");
        if (opts[OPT_N].seen &&
            (r = parse_number(ctx, "-n", opts[OPT_N].value, 1, UINT64_MAX, &cfg.total_ops)) < 0)
                return r;
        if (opts[OPT_D].seen && (r = parse_seconds(ctx, "-d", opts[OPT_D].value,
                                                   &cfg.duration_s)) < 0)
                return r;
        if (opts[OPT_WARMUP].seen &&
            (r = parse_seconds(ctx, "--warmup", opts[OPT_WARMUP].value, &cfg.warmup_s)) < 0)
                return r;
        if (opts[OPT_RATE].seen) {
                if ((r = parse_number(ctx, "--rate", opts[OPT_RATE].value, 1, 100000000, &v)) < 0)
                        return r;
                cfg.rate = (double)v;
        }
        if (opts[OPT_S].seen) {
                if ((r = parse_number(ctx, "-s", opts[OPT_S].value, 1, 1u << 22, &v)) < 0)
                        return r;
                cfg.size = (uint32_t)v;
        }
        if (opts[OPT_PROC_SIZE].seen &&
            (r = parse_number(ctx, "--proc-size", opts[OPT_PROC_SIZE].value, 1,
                              UINT64_C(1) << 40, &cfg.proc_size)) < 0)
                return r;
        if (opts[OPT_COW_PAGES].seen) {
                if ((r = parse_number(ctx, "--cow-pages", opts[OPT_COW_PAGES].value, 1, 1024,
                                      &v)) < 0)
                        return r;
                cfg.cow_pages = (uint32_t)v;
        }
        if (opts[OPT_ZERO_SIZE].seen &&
            (r = parse_number(ctx, "--zero-size", opts[OPT_ZERO_SIZE].value, 1, 1u << 22,
                              &cfg.zero_size)) < 0)
                return r;
        cfg.shared = opts[OPT_SHARED].seen;
        cfg.progress = !opts[OPT_NO_PROGRESS].seen && !ctx->quiet && isatty(STDERR_FILENO);

        if ((r = raise_fd_limit(ctx, cfg.conns)) < 0)
                return r;
        fresh = !ctx->conn; /* a shell or script may have said hello already */
        if ((r = cmd_connect(ctx)) < 0)
                return r;
        if (ctx->token_file) {
                if ((r = cmd_read_token(ctx, token, sizeof(token))) < 0)
                        return r;
                cfg.token = token;
        }
        cfg.page_size = ctx->page_size;
        cfg.max_frame = ctx->max_frame;
        /* The region holds at least one read or write and every page a cow child writes. */
        if (cfg.proc_size < cfg.size)
                cfg.proc_size = cfg.size;
        if (cfg.proc_size < (uint64_t)cfg.cow_pages * cfg.page_size)
                cfg.proc_size = (uint64_t)cfg.cow_pages * cfg.page_size;
        cfg.proc_size = (cfg.proc_size + cfg.page_size - 1) / cfg.page_size * cfg.page_size;

        ntargets = cfg.shared ? 1 : cfg.conns;
        targets = calloc(ntargets, sizeof(*targets));
        r = bench_workload_init(&cfg);
        for (int i = 0; r == 0 && i < BENCH_N_OPS; i++)
                r = histogram_new(&res.latency[i]);
        if (r == 0)
                r = histogram_new(&rp.all);
        if (r < 0 || !targets) {
                r = -ENOMEM;
                goto out;
        }

        /*
         * res.requests counts every request the bench sends, beginning with
         * the control connection's hello when this command made it, so that it can be
         * compared with the daemon's own counter from outside.
         */
        if (fresh) {
                res.requests++;
                res.requests_by_op[COWD__V1__REQUEST__OP_HELLO]++;
        }
        r = read_sys_stats(ctx, &res, rp.before);
        if (r == 0)
                r = bench_targets_setup(ctx->conn, &cfg, targets, ntargets, &res, &ctx->err);
        if (r != 0) {
                if (r < 0)
                        cmd_fail(ctx, r, "preparing %u processes: %s", ntargets, strerror(-r));
                goto out;
        }
        r = bench_run(&cfg, targets, &res, ctx->why, sizeof(ctx->why));
        if (r < 0) {
                if (!ctx->why[0])
                        cmd_fail(ctx, r, "%s", strerror(-r));
                (void)bench_targets_teardown(ctx->conn, targets, ntargets, &res, &ctx->err);
                goto out;
        }
        r = bench_targets_teardown(ctx->conn, targets, ntargets, &res, &ctx->err);
        if (r == 0)
                r = read_sys_stats(ctx, &res, rp.after);
        if (r != 0)
                goto out;

        for (int i = 0; i < BENCH_N_OPS; i++) {
                histogram_merge(rp.all, res.latency[i]);
                rp.ops += res.ops[i];
                rp.errors += res.errors[i];
        }
        if (!ctx->quiet) {
                if (opts[OPT_CSV].seen)
                        report_csv(&rp, ctx->out);
                else if (ctx->mode == OUT_JSON)
                        report_json(&rp, ctx->out);
                else
                        report_text(&rp, ctx->out);
        }
        /* A run with errors did not measure what it was asked to. */
        r = rp.errors || res.connections_lost
                    ? cmd_fail(ctx, -EIO, "%" PRIu64 " operations failed", rp.errors)
                    : 0;
out:
        histogram_free(rp.all);
        for (int i = 0; i < BENCH_N_OPS; i++)
                histogram_free(res.latency[i]);
        bench_workload_release();
        free(targets);
        explicit_bzero(token, sizeof(token));
        return r;
}

const struct cmd_entry cmd_bench_entry = {
        .name = "bench",
        .usage = "[WORKLOAD] [-c CONNS] [-P DEPTH] [-n OPS | -d SECONDS] [-s SIZE] [--warmup S] "
                 "[--rate OPS/S] [--mix OP=W,...] [--shared] [--csv] [--proc-size SIZE] "
                 "[--cow-pages K] [--zero-size SIZE] [--no-progress]",
        .summary = "load generator: read, write, fork, cow, zero, exam",
        .exec = cmd_bench_exec,
};
