/* SPDX-License-Identifier: MIT */
#include "script-run.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* zeros(N) is for comparing with reads, which a frame bounds anyway. */
#define COW_ZEROS_MAX (8u << 20)

/* Commands run with a cap on arguments: more is a mistake, not a use. */
#define MAX_ARGS 32

struct script_var {
        char *name;
        struct value v;
};

static bool failure_name_ok(const char *name)
{
        return cowc_code_from_name(name) >= 0 || cowc_fault_from_name(name) > 0;
}

const struct script_syntax *script_run_syntax(void)
{
        static struct script_syntax syn = { .failure_name_ok = failure_name_ok };
        syn.commands = cmd_names();
        return &syn;
}

void script_env_release(struct script_env *env)
{
        for (size_t i = 0; i < env->nvars; i++) {
                free(env->vars[i].name);
                value_clear(&env->vars[i].v);
        }
        free(env->vars);
        env->vars = NULL;
        env->nvars = 0;
}

static struct value *var_find(struct script_env *env, const char *name)
{
        for (size_t i = 0; i < env->nvars; i++)
                if (strcmp(env->vars[i].name, name) == 0)
                        return &env->vars[i].v;
        return NULL;
}

/* Sets name to a copy of v. Returns 0 or -ENOMEM. */
static int var_set(struct script_env *env, const char *name, const struct value *v)
{
        struct value *slot = var_find(env, name);
        if (!slot) {
                struct script_var *n = realloc(env->vars, (env->nvars + 1) * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                env->vars = n;
                n[env->nvars] = (struct script_var){ .name = strdup(name) };
                if (!n[env->nvars].name)
                        return -ENOMEM;
                slot = &n[env->nvars++].v;
        }
        return value_copy(slot, v);
}

/* Prints "FILE:LINE: message" and returns -ECANCELED: the failure is reported. */
static int report(struct script_env *env, int line, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int report(struct script_env *env, int line, const char *fmt, ...)
{
        va_list ap;
        fflush(env->ctx->out);
        if (env->file)
                fprintf(stderr, "%s:%d: ", env->file, line);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return -ECANCELED;
}

/* ---- expressions ------------------------------------------------------ */

static int eval(struct script_env *env, int line, const struct script_expr *e, struct value *ret);

static int eval_int(struct script_env *env, int line, const struct script_expr *e,
                    const char *what, int64_t *ret, bool *ret_hex)
{
        struct value v = { 0 };
        int r = eval(env, line, e, &v);
        if (r < 0)
                return r;
        if (v.type != VALUE_INT) {
                char buf[64];
                r = report(env, line, "%s must be a number, not %s", what,
                           value_format(&v, buf, sizeof(buf)));
                value_clear(&v);
                return r;
        }
        *ret = v.i;
        if (ret_hex)
                *ret_hex = v.hex;
        return 0;
}

/* Fails a command's transport or daemon error as a script error. */
static int report_cmd(struct script_env *env, int line, const char *name, int r)
{
        char why[512];
        return report(env, line, "%s: %s", name, cmd_describe(env->ctx, r, why, sizeof(why)));
}

/* sys.FIELD, proc(PID).FIELD, page(PID, ADDR).FIELD: asks the daemon now. */
static int eval_stat(struct script_env *env, int line, const struct script_expr *e,
                     struct value *ret)
{
        struct cmd_ctx *ctx = env->ctx;
        Cowd__V1__Response *resp = NULL;
        const ProtobufCMessage *m = NULL;
        int64_t pid = 0, addr = 0;
        const char *what;
        int r;

        if (e->a && (r = eval_int(env, line, e->a, "a pid", &pid, NULL)) < 0)
                return r;
        if (e->b && (r = eval_int(env, line, e->b, "an address", &addr, NULL)) < 0)
                return r;
        if ((r = cmd_connect(ctx)) < 0)
                return report_cmd(env, line, "connect", r);
        memset(&ctx->err, 0, sizeof(ctx->err));
        ctx->why[0] = '\0';

        if (e->kind == EXPR_SYS) {
                what = "sys";
                r = cowc_sys_stats(ctx->conn, &resp, &ctx->err);
                if (r == 0)
                        m = &resp->sys_stats->base;
        } else if (e->kind == EXPR_PROC) {
                what = "proc";
                r = cowc_proc_stats(ctx->conn, (uint32_t)pid, &resp, &ctx->err);
                if (r == 0)
                        m = &resp->proc_stats->base;
        } else {
                what = "page";
                uint64_t base = (uint64_t)addr & ~(uint64_t)(ctx->page_size - 1);
                r = cowc_page_map(ctx->conn, (uint32_t)pid, base, ctx->page_size, &resp,
                                  &ctx->err);
                if (r == 0 && resp->page_map->n_pages < 1)
                        r = cmd_fail(ctx, -EPROTO, "the daemon described no page at 0x%" PRIx64,
                                     base);
                if (r == 0)
                        m = &resp->page_map->pages[0]->base;
        }
        if (r != 0) {
                cowc_response_free(resp);
                return report_cmd(env, line, what, r);
        }
        r = out_message_field(m, e->text, ret);
        if (r == -ENOENT) {
                char list[1024];
                size_t o = 0;
                for (unsigned i = 0; i < m->descriptor->n_fields && o < sizeof(list) - 40; i++)
                        o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "",
                                              m->descriptor->fields[i].name);
                r = report(env, line, "%s has no field '%s' (it has: %s)", what, e->text, list);
        } else if (r < 0) {
                r = report(env, line, "out of memory");
        }
        cowc_response_free(resp);
        return r;
}

/*
 * "+" with a string on either side joins the two, numbers written out:
 * "student-" + $i. Returns 0 when it did that, 1 when both sides are
 * numbers (the caller adds them), or -ECANCELED after reporting.
 */
static int eval_concat(struct script_env *env, int line, const struct script_expr *e,
                       struct value *ret)
{
        struct value a = { 0 }, b = { 0 };
        char abuf[32], bbuf[32];
        uint8_t *joined = NULL;
        int r;

        if ((r = eval(env, line, e->a, &a)) < 0 || (r = eval(env, line, e->b, &b)) < 0)
                goto out;
        if (a.type == VALUE_INT && b.type == VALUE_INT) {
                r = 1;
                goto out;
        }
        const uint8_t *pa = a.type == VALUE_BYTES ? a.bytes
                                                  : (const uint8_t *)value_format(&a, abuf, sizeof(abuf));
        const uint8_t *pb = b.type == VALUE_BYTES ? b.bytes
                                                  : (const uint8_t *)value_format(&b, bbuf, sizeof(bbuf));
        size_t la = a.type == VALUE_BYTES ? a.len : strlen(abuf);
        size_t lb = b.type == VALUE_BYTES ? b.len : strlen(bbuf);
        joined = malloc(la + lb + 1);
        if (!joined) {
                r = report(env, line, "out of memory");
                goto out;
        }
        memcpy(joined, pa, la);
        memcpy(joined + la, pb, lb);
        r = value_set_bytes(ret, joined, la + lb) < 0 ? report(env, line, "out of memory") : 0;
out:
        free(joined);
        value_clear(&a);
        value_clear(&b);
        return r;
}

static int eval(struct script_env *env, int line, const struct script_expr *e, struct value *ret)
{
        int64_t a, b, n;
        bool ahex = false, bhex = false;
        int r;

        switch (e->kind) {
        case EXPR_NUMBER:
                value_set_int(ret, (int64_t)e->num, e->hex);
                return 0;
        case EXPR_STRING:
        case EXPR_WORD:
                return value_set_bytes(ret, e->text, e->len) < 0 ? report(env, line, "out of memory")
                                                                  : 0;
        case EXPR_VAR: {
                const struct value *v = var_find(env, e->text);
                if (!v)
                        return report(env, line, "$%s is not set", e->text);
                return value_copy(ret, v) < 0 ? report(env, line, "out of memory") : 0;
        }
        case EXPR_ADD:
                r = eval_concat(env, line, e, ret);
                if (r <= 0)
                        return r;
                __attribute__((fallthrough)); /* two numbers: add them */
        case EXPR_SUB:
        case EXPR_MUL:
                if ((r = eval_int(env, line, e->a, "arithmetic", &a, &ahex)) < 0 ||
                    (r = eval_int(env, line, e->b, "arithmetic", &b, &bhex)) < 0)
                        return r;
                /* Unsigned arithmetic wraps instead of overflowing into undefined behaviour. */
                uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
                uint64_t res = e->kind == EXPR_ADD ? ua + ub : e->kind == EXPR_SUB ? ua - ub : ua * ub;
                value_set_int(ret, (int64_t)res, ahex || bhex);
                return 0;
        case EXPR_SYS:
        case EXPR_PROC:
        case EXPR_PAGE:
                return eval_stat(env, line, e, ret);
        case EXPR_ZEROS: {
                if ((r = eval_int(env, line, e->a, "zeros(LENGTH)", &n, NULL)) < 0)
                        return r;
                if (n < 0 || n > (int64_t)COW_ZEROS_MAX)
                        return report(env, line, "zeros(%" PRId64 "): at most %u bytes", n,
                                      (unsigned)COW_ZEROS_MAX);
                uint8_t *z = calloc(1, (size_t)n + 1);
                r = z ? value_set_bytes(ret, z, (size_t)n) : -ENOMEM;
                free(z);
                return r < 0 ? report(env, line, "out of memory") : 0;
        }
        }
        return report(env, line, "unknown expression");
}

/* ---- commands --------------------------------------------------------- */

/*
 * Evaluates a call's arguments into words and runs it. Integers become
 * decimal (or 0x hex for addresses); strings are passed as they are, which
 * is why a string holding a NUL byte is refused: use --hex for those.
 */
static int run_call(struct script_env *env, int line, const struct script_call *call, bool quiet,
                    struct value *ret)
{
        char *argv[MAX_ARGS + 1] = { 0 };
        int argc = 0, r = 0;

        if (call->nargs > MAX_ARGS)
                return report(env, line, "%s: too many arguments", call->name);
        argv[argc++] = call->name;
        for (size_t i = 0; i < call->nargs; i++) {
                struct value v = { 0 };
                char buf[32];
                if ((r = eval(env, line, call->args[i], &v)) < 0)
                        goto out;
                if (v.type == VALUE_INT) {
                        argv[argc] = strdup(value_format(&v, buf, sizeof(buf)));
                } else if (memchr(v.bytes, '\0', v.len)) {
                        value_clear(&v);
                        r = report(env, line,
                                   "%s: argument %zu holds a NUL byte; pass binary data with --hex",
                                   call->name, i + 1);
                        goto out;
                } else {
                        argv[argc] = (char *)v.bytes;
                        v.bytes = NULL;
                }
                value_clear(&v);
                if (!argv[argc++]) {
                        r = report(env, line, "out of memory");
                        goto out;
                }
        }

        bool was_quiet = env->ctx->quiet;
        env->ctx->quiet = quiet;
        r = cmd_exec(env->ctx, argc, argv, ret);
        env->ctx->quiet = was_quiet;
        fflush(env->ctx->out);
        /* A nested run has printed its own FILE:LINE: message. */
        if (r < 0 && env->ctx->reported)
                r = -ECANCELED;
out:
        for (int i = 1; i < argc; i++)
                free(argv[i]);
        return r;
}

/* ---- expectations ----------------------------------------------------- */

static bool compare(enum script_cmp cmp, int c)
{
        switch (cmp) {
        case CMP_EQ: return c == 0;
        case CMP_NE: return c != 0;
        case CMP_LT: return c < 0;
        case CMP_LE: return c <= 0;
        case CMP_GT: return c > 0;
        case CMP_GE: return c >= 0;
        }
        return false;
}

/* The statement's text after "expect ", for "expected ... but got ...". */
static const char *expectation_text(const struct script_stmt *s)
{
        const char *t = s->source;
        if (strncmp(t, "expect", 6) == 0)
                t += 6;
        while (*t == ' ' || *t == '\t')
                t++;
        return t;
}

static int expect_compare(struct script_env *env, const struct script_stmt *s)
{
        struct value lhs = { 0 }, rhs = { 0 };
        char lbuf[160], rbuf[160];
        int r, c;

        if (s->call) {
                r = run_call(env, s->line, s->call, true, &lhs);
                if (r == -ECANCELED)
                        goto out;
                if (r != 0) {
                        r = report_cmd(env, s->line, s->call->name, r);
                        goto out;
                }
                if (lhs.type == VALUE_NONE) {
                        r = report(env, s->line, "%s gives no value to compare", s->call->name);
                        goto out;
                }
        } else if ((r = eval(env, s->line, s->lhs, &lhs)) < 0) {
                goto out;
        }
        if ((r = eval(env, s->line, s->rhs, &rhs)) < 0)
                goto out;

        if (lhs.type == VALUE_INT && rhs.type == VALUE_INT) {
                c = (lhs.i > rhs.i) - (lhs.i < rhs.i);
        } else if (lhs.type == VALUE_BYTES && rhs.type == VALUE_BYTES) {
                size_t n = lhs.len < rhs.len ? lhs.len : rhs.len;
                c = n ? memcmp(lhs.bytes, rhs.bytes, n) : 0;
                if (c == 0)
                        c = (lhs.len > rhs.len) - (lhs.len < rhs.len);
        } else {
                r = report(env, s->line, "expected %s: cannot compare %s with %s",
                           expectation_text(s), value_format(&lhs, lbuf, sizeof(lbuf)),
                           value_format(&rhs, rbuf, sizeof(rbuf)));
                goto out;
        }
        r = 0;
        if (!compare(s->cmp, c)) {
                bool literal = s->rhs->kind == EXPR_NUMBER || s->rhs->kind == EXPR_STRING;
                r = report(env, s->line, "expected %s but got %s%s%s%s", expectation_text(s),
                           value_format(&lhs, lbuf, sizeof(lbuf)),
                           literal ? "" : " (the right side is ",
                           literal ? "" : value_format(&rhs, rbuf, sizeof(rbuf)),
                           literal ? "" : ")");
        }
out:
        value_clear(&lhs);
        value_clear(&rhs);
        return r;
}

static int expect_outcome(struct script_env *env, const struct script_stmt *s)
{
        struct value v = { 0 };
        char why[512];
        int r = run_call(env, s->line, s->call, true, &v);
        value_clear(&v);
        if (r == -ECANCELED)
                return r;
        if (r < 0) /* a usage mistake or a lost connection is never the expected failure */
                return report_cmd(env, s->line, s->call->name, r);

        if (s->expect == EXPECT_SUCCEEDS) {
                if (r == 0)
                        return 0;
                return report(env, s->line, "expected %s but got %s", expectation_text(s),
                              cmd_describe(env->ctx, r, why, sizeof(why)));
        }
        if (r == 0)
                return report(env, s->line, "expected %s but it succeeded", expectation_text(s));
        if (!s->fails)
                return 0;
        int fault = cowc_fault_from_name(s->fails);
        bool match = fault > 0 ? env->ctx->err.fault == fault
                               : env->ctx->err.code == cowc_code_from_name(s->fails);
        if (match)
                return 0;
        return report(env, s->line, "expected %s but got %s", expectation_text(s),
                      cmd_describe(env->ctx, r, why, sizeof(why)));
}

static int expect_page(struct script_env *env, const struct script_stmt *s)
{
        struct cmd_ctx *ctx = env->ctx;
        Cowd__V1__Response *resp = NULL;
        int64_t pid, addr;
        int r;

        if ((r = eval_int(env, s->line, s->args[0], "a pid", &pid, NULL)) < 0 ||
            (r = eval_int(env, s->line, s->args[1], "an address", &addr, NULL)) < 0)
                return r;
        if ((r = cmd_connect(ctx)) < 0)
                return report_cmd(env, s->line, "connect", r);
        uint64_t base = (uint64_t)addr & ~(uint64_t)(ctx->page_size - 1);
        r = cowc_page_map(ctx->conn, (uint32_t)pid, base, ctx->page_size, &resp, &ctx->err);
        if (r == 0 && resp->page_map->n_pages < 1)
                r = cmd_fail(ctx, -EPROTO, "the daemon described no page");
        if (r != 0) {
                cowc_response_free(resp);
                return report_cmd(env, s->line, "pagemap", r);
        }

        const ProtobufCMessage *m = &resp->page_map->pages[0]->base;
        r = 0;
        for (size_t i = 0; i < s->nflags && r == 0; i++) {
                bool negate = s->flags[i][0] == '!';
                struct value v = { 0 };
                if (out_message_field(m, s->flags[i] + negate, &v) < 0 || v.type != VALUE_INT)
                        continue;
                if ((v.i != 0) == negate) {
                        const Cowd__V1__PageEntry *pe = resp->page_map->pages[0];
                        r = report(env, s->line,
                                   "expected %s but the page is%s%s%s%s%s%s%s%s%s%s (frame %u, "
                                   "%u sharers)",
                                   expectation_text(s), pe->mapped ? " mapped" : " unmapped",
                                   pe->present ? " present" : " not-present",
                                   pe->writable ? " writable" : " not-writable",
                                   pe->cow ? " cow" : "", pe->zero ? " zero" : "",
                                   pe->shared ? " shared" : "", pe->in_tlb ? " in_tlb" : "",
                                   pe->file ? " file" : "", pe->dirty ? " dirty" : "",
                                   pe->device ? " device" : "", pe->frame, pe->sharers);
                }
                value_clear(&v);
        }
        cowc_response_free(resp);
        return r;
}

/* ---- statements ------------------------------------------------------- */

static int run_echo(struct script_env *env, const struct script_stmt *s)
{
        for (size_t i = 0; i < s->nargs; i++) {
                struct value v = { 0 };
                char buf[32];
                int r = eval(env, s->line, s->args[i], &v);
                if (r < 0)
                        return r;
                if (i)
                        fputc(' ', env->ctx->out);
                if (v.type == VALUE_BYTES)
                        fwrite(v.bytes, 1, v.len, env->ctx->out);
                else
                        fputs(value_format(&v, buf, sizeof(buf)), env->ctx->out);
                value_clear(&v);
        }
        fputc('\n', env->ctx->out);
        return 0;
}

static int run_repeat(struct script_env *env, const struct script_stmt *s)
{
        struct value saved = { 0 }, idx = { 0 };
        int64_t count;
        int r = eval_int(env, s->line, s->count, "repeat COUNT", &count, NULL);
        if (r < 0)
                return r;
        if (count < 0)
                return report(env, s->line, "repeat %" PRId64 ": the count is negative", count);

        /* $i is the loop index; an enclosing loop gets its own $i back afterwards. */
        struct value *outer = var_find(env, "i");
        bool had_outer = outer != NULL;
        if (had_outer && value_copy(&saved, outer) < 0)
                return report(env, s->line, "out of memory");
        for (int64_t k = 0; k < count && r == 0; k++) {
                value_set_int(&idx, k, false);
                if (var_set(env, "i", &idx) < 0)
                        r = report(env, s->line, "out of memory");
                else
                        r = script_run(env, s->body);
        }
        if (had_outer && r == 0 && var_set(env, "i", &saved) < 0)
                r = report(env, s->line, "out of memory");
        value_clear(&saved);
        return r;
}

static int run_stmt(struct script_env *env, const struct script_stmt *s)
{
        struct value v = { 0 };
        int r = 0;

        switch (s->kind) {
        case STMT_CALL:
                r = run_call(env, s->line, s->call, env->ctx->quiet, &v);
                if (r != 0 && r != -ECANCELED)
                        r = report_cmd(env, s->line, s->call->name, r);
                break;
        case STMT_ASSIGN:
                if (s->call) {
                        r = run_call(env, s->line, s->call, true, &v);
                        if (r != 0 && r != -ECANCELED)
                                r = report_cmd(env, s->line, s->call->name, r);
                        else if (r == 0 && v.type == VALUE_NONE)
                                r = report(env, s->line, "%s gives no value to assign",
                                           s->call->name);
                } else {
                        r = eval(env, s->line, s->lhs, &v);
                }
                if (r == 0 && var_set(env, s->var, &v) < 0)
                        r = report(env, s->line, "out of memory");
                break;
        case STMT_REPEAT:
                r = run_repeat(env, s);
                break;
        case STMT_ECHO:
                r = run_echo(env, s);
                break;
        case STMT_EXPECT:
                if (s->expect == EXPECT_COMPARE)
                        r = expect_compare(env, s);
                else if (s->expect == EXPECT_PAGE)
                        r = expect_page(env, s);
                else
                        r = expect_outcome(env, s);
                break;
        }
        value_clear(&v);
        return r < 0 ? -ECANCELED : 0;
}

int script_run(struct script_env *env, const struct script_stmt *s)
{
        for (; s; s = s->next) {
                int r = run_stmt(env, s);
                if (r < 0)
                        return r;
        }
        return 0;
}
