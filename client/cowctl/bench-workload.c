/* SPDX-License-Identifier: MIT */
/*
 * The operations of `cowctl bench`, as chains of requests, and the
 * processes they act on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

static const char *const op_names[BENCH_N_OPS] = {
        [BENCH_READ] = "read", [BENCH_WRITE] = "write", [BENCH_FORK] = "fork",
        [BENCH_COW] = "cow",   [BENCH_ZERO] = "zero",   [BENCH_EXAM] = "exam",
};

/* What a candidate scribbles on the read-only paper. */
static const char exam_answer[] = "my answer";

static uint8_t *payload;
static size_t payload_len;

const char *bench_op_name(enum bench_op op)
{
        return (unsigned)op < BENCH_N_OPS ? op_names[op] : "?";
}

int bench_op_from_name(const char *name)
{
        for (int i = 0; i < BENCH_N_OPS; i++)
                if (strcmp(op_names[i], name) == 0)
                        return i;
        return -1;
}

const char *bench_code_name(unsigned code)
{
        if (code == BENCH_CODE_TRANSPORT)
                return "TRANSPORT";
        if (code == BENCH_CODE_WRONG)
                return "WRONG_RESULT";
        const char *n = cowc_code_name((int)code);
        return n ? n : "UNKNOWN_CODE";
}

int bench_workload_init(const struct bench_config *cfg)
{
        size_t len = cfg->size;
        size_t cow = (size_t)cfg->cow_pages * cfg->page_size;
        size_t chunk = 1u << 20; /* setup writes the region in pieces of this size */

        if (cow > len)
                len = cow;
        if (chunk > len)
                len = chunk;
        payload = malloc(len);
        if (!payload)
                return -ENOMEM;
        for (size_t i = 0; i < len; i++)
                payload[i] = (uint8_t)('a' + i % 26);
        payload_len = len;
        return 0;
}

void bench_workload_release(void)
{
        free(payload);
        payload = NULL;
        payload_len = 0;
}

/* ---- building requests ------------------------------------------------------------- */

static void req_read(struct bench_request *o, uint32_t pid, uint64_t addr, uint64_t len)
{
        cowd__v1__read_request__init(&o->m.read);
        o->m.read.pid = pid;
        o->m.read.addr = addr;
        o->m.read.length = len;
        o->req.op_case = COWD__V1__REQUEST__OP_READ;
        o->req.read = &o->m.read;
}

static void req_write(struct bench_request *o, uint32_t pid, uint64_t addr, const void *data,
                      size_t len)
{
        cowd__v1__write_request__init(&o->m.write);
        o->m.write.pid = pid;
        o->m.write.addr = addr;
        o->m.write.data.data = (uint8_t *)data;
        o->m.write.data.len = len;
        o->req.op_case = COWD__V1__REQUEST__OP_WRITE;
        o->req.write = &o->m.write;
}

static void req_fork(struct bench_request *o, uint32_t pid)
{
        cowd__v1__fork_request__init(&o->m.fork);
        o->m.fork.pid = pid;
        o->req.op_case = COWD__V1__REQUEST__OP_FORK;
        o->req.fork = &o->m.fork;
}

static void req_exit(struct bench_request *o, uint32_t pid)
{
        cowd__v1__exit_request__init(&o->m.exit);
        o->m.exit.pid = pid;
        o->req.op_case = COWD__V1__REQUEST__OP_EXIT;
        o->req.exit = &o->m.exit;
}

static void req_mmap(struct bench_request *o, uint32_t pid, uint64_t len)
{
        cowd__v1__mmap_request__init(&o->m.mmap);
        o->m.mmap.pid = pid;
        o->m.mmap.length = len;
        o->m.mmap.prot = 3;
        o->req.op_case = COWD__V1__REQUEST__OP_MMAP;
        o->req.mmap = &o->m.mmap;
}

static void req_munmap(struct bench_request *o, uint32_t pid, uint64_t addr, uint64_t len)
{
        cowd__v1__munmap_request__init(&o->m.munmap);
        o->m.munmap.pid = pid;
        o->m.munmap.addr = addr;
        o->m.munmap.length = len;
        o->req.op_case = COWD__V1__REQUEST__OP_MUNMAP;
        o->req.munmap = &o->m.munmap;
}

void bench_hello_request(struct bench_request *o, const char *token)
{
        cowd__v1__request__init(&o->req);
        cowd__v1__hello_request__init(&o->m.hello);
        o->m.hello.protocol_version = COWD__V1__PROTOCOL_VERSION__PROTOCOL_VERSION_CURRENT;
        o->m.hello.client = (char *)"cowctl-bench";
        if (token) {
                o->m.hello.token.data = (uint8_t *)token;
                o->m.hello.token.len = strlen(token);
        }
        o->req.op_case = COWD__V1__REQUEST__OP_HELLO;
        o->req.hello = &o->m.hello;
}

/* ---- the operations ----------------------------------------------------------------- */

/* The status code of reply (0 for OK). */
static int reply_code(const Cowd__V1__Response *reply)
{
        return reply->status ? (int)reply->status->code : 0;
}

/* Records the first failure of the operation. */
static void op_fail(struct bench_op_state *st, int code)
{
        if (st->code == 0)
                st->code = code;
}

/*
 * Checks that reply is an OK reply carrying result `want`; records a
 * failure otherwise. Returns true when it is.
 */
static bool reply_ok(struct bench_op_state *st, const Cowd__V1__Response *reply,
                     Cowd__V1__Response__ResultCase want)
{
        int code = reply_code(reply);

        if (code != 0) {
                op_fail(st, code);
                return false;
        }
        if (reply->result_case != want) {
                op_fail(st, BENCH_CODE_WRONG);
                return false;
        }
        return true;
}

/* Offset of the seq-th read or write in the region: the region is walked size by size. */
static uint64_t rw_offset(const struct bench_config *cfg, uint64_t seq)
{
        uint64_t slots = cfg->proc_size / cfg->size;

        return (seq % (slots ? slots : 1)) * cfg->size;
}

/* The fork-based operations: fork, then their own middle steps, then the child's exit. */
static int step_forked(const struct bench_config *cfg, const struct bench_target *t,
                       struct bench_op_state *st, const Cowd__V1__Response *reply,
                       struct bench_request *out)
{
        switch (st->step++) {
        case 0:
                req_fork(out, t->pid);
                return 1;
        case 1:
                if (!reply_ok(st, reply, COWD__V1__RESPONSE__RESULT_FORK) || !reply->fork->child_pid)
                        return 0;
                st->child = reply->fork->child_pid;
                if (st->op == BENCH_FORK)
                        break;
                if (st->op == BENCH_COW) {
                        size_t len = (size_t)cfg->cow_pages * cfg->page_size;
                        req_write(out, st->child, t->region, payload, len);
                } else {
                        req_read(out, st->child, t->paper, 64);
                }
                return 1;
        case 2:
                if (st->op == BENCH_COW) {
                        (void)reply_ok(st, reply, COWD__V1__RESPONSE__RESULT_WRITE);
                        break;
                }
                if (reply_ok(st, reply, COWD__V1__RESPONSE__RESULT_READ) &&
                    (reply->read->data.len != 64 || memcmp(reply->read->data.data, "Question", 8)))
                        op_fail(st, BENCH_CODE_WRONG);
                /* The paper is read-only: this write must fault. */
                req_write(out, st->child, t->paper, exam_answer, sizeof(exam_answer) - 1);
                return 1;
        case 3:
                if (reply_code(reply) != COWD__V1__CODE__FAILED_PRECONDITION || !reply->fault ||
                    reply->fault->kind != COWD__V1__FAULT_KIND__SEGV_ACCERR)
                        op_fail(st, reply_code(reply) ? reply_code(reply) : BENCH_CODE_WRONG);
                break;
        default:
                /* The child's exit has been answered. */
                (void)reply_ok(st, reply, COWD__V1__RESPONSE__RESULT_EXIT);
                st->child = 0;
                return 0;
        }
        /* The child exits whatever happened in between. */
        st->step = 100;
        req_exit(out, st->child);
        return 1;
}

static int step_zero(const struct bench_config *cfg, const struct bench_target *t,
                     struct bench_op_state *st, const Cowd__V1__Response *reply,
                     struct bench_request *out)
{
        switch (st->step++) {
        case 0:
                req_mmap(out, t->pid, cfg->zero_size);
                return 1;
        case 1:
                if (!reply_ok(st, reply, COWD__V1__RESPONSE__RESULT_MMAP))
                        return 0;
                st->addr = reply->mmap->addr;
                req_read(out, t->pid, st->addr, cfg->zero_size);
                return 1;
        case 2:
                if (reply_ok(st, reply, COWD__V1__RESPONSE__RESULT_READ) &&
                    reply->read->data.len != cfg->zero_size)
                        op_fail(st, BENCH_CODE_WRONG);
                req_write(out, t->pid, st->addr + cfg->zero_size / 2, payload, 8);
                return 1;
        case 3:
                (void)reply_ok(st, reply, COWD__V1__RESPONSE__RESULT_WRITE);
                req_munmap(out, t->pid, st->addr, cfg->zero_size);
                return 1;
        default:
                (void)reply_ok(st, reply, COWD__V1__RESPONSE__RESULT_MUNMAP);
                return 0;
        }
}

int bench_op_step(const struct bench_config *cfg, const struct bench_target *t,
                  struct bench_op_state *st, const Cowd__V1__Response *reply,
                  struct bench_request *out)
{
        cowd__v1__request__init(&out->req);
        switch (st->op) {
        case BENCH_READ:
                if (st->step++ == 0) {
                        req_read(out, t->pid, t->region + rw_offset(cfg, st->seq), cfg->size);
                        return 1;
                }
                if (reply_ok(st, reply, COWD__V1__RESPONSE__RESULT_READ) &&
                    reply->read->data.len != cfg->size)
                        op_fail(st, BENCH_CODE_WRONG);
                return 0;
        case BENCH_WRITE:
                if (st->step++ == 0) {
                        req_write(out, t->pid, t->region + rw_offset(cfg, st->seq), payload,
                                  cfg->size);
                        return 1;
                }
                (void)reply_ok(st, reply, COWD__V1__RESPONSE__RESULT_WRITE);
                return 0;
        case BENCH_FORK:
        case BENCH_COW:
        case BENCH_EXAM:
                return step_forked(cfg, t, st, reply, out);
        case BENCH_ZERO:
                return step_zero(cfg, t, st, reply, out);
        case BENCH_N_OPS:
                break;
        }
        op_fail(st, BENCH_CODE_WRONG);
        return 0;
}

/* ---- setup and teardown, blocking and pipelined ------------------------------------- */

#define SETUP_BATCH 256

/*
 * Sends reqs[0..n) in one write, counts them, and checks every reply is OK;
 * replies[] receives them (the caller frees). Returns 0, a negative errno,
 * or the first refusal's code with err filled (all replies still handed over).
 */
static int setup_call(cowc_conn *conn, Cowd__V1__Request *reqs, size_t n,
                      Cowd__V1__Response **replies, struct bench_results *res,
                      struct cowc_error *err)
{
        const Cowd__V1__Request *ptrs[SETUP_BATCH];
        int r;

        for (size_t i = 0; i < n; i++) {
                ptrs[i] = &reqs[i];
                res->requests++;
                if ((unsigned)reqs[i].op_case <= BENCH_MAX_OP_CASE)
                        res->requests_by_op[reqs[i].op_case]++;
        }
        r = cowc_call_many(conn, ptrs, n, replies);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                int code = cowc_error_from_response(replies[i], err);
                if (code != 0)
                        return code;
        }
        return 0;
}

static void free_replies(Cowd__V1__Response **replies, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                cowc_response_free(replies[i]);
                replies[i] = NULL;
        }
}

/* One phase of setup over targets[0..n): build() fills the request for target i. */
typedef void (*setup_build_fn)(const struct bench_config *cfg, const struct bench_target *t,
                               unsigned i, uint64_t piece, struct bench_request *out);
typedef int (*setup_take_fn)(struct bench_target *t, const Cowd__V1__Response *reply);

static int setup_phase(cowc_conn *conn, const struct bench_config *cfg,
                       struct bench_target *targets, unsigned n, uint64_t pieces,
                       setup_build_fn build, setup_take_fn take, struct bench_results *res,
                       struct cowc_error *err)
{
        static struct bench_request breq[SETUP_BATCH];
        static Cowd__V1__Request reqs[SETUP_BATCH];
        static unsigned owner[SETUP_BATCH];
        Cowd__V1__Response *replies[SETUP_BATCH] = { 0 };
        uint64_t total = (uint64_t)n * pieces, done = 0;
        int r = 0;

        while (done < total) {
                size_t k = 0;
                for (; k < SETUP_BATCH && done + k < total; k++) {
                        uint64_t j = done + k;
                        unsigned i = (unsigned)(j / pieces);
                        cowd__v1__request__init(&breq[k].req);
                        build(cfg, &targets[i], i, j % pieces, &breq[k]);
                        reqs[k] = breq[k].req;
                        owner[k] = i;
                }
                r = setup_call(conn, reqs, k, replies, res, err);
                for (size_t q = 0; r == 0 && take && q < k; q++)
                        r = take(&targets[owner[q]], replies[q]);
                free_replies(replies, k);
                if (r != 0)
                        return r;
                done += k;
        }
        return 0;
}

static void build_spawn(const struct bench_config *cfg, const struct bench_target *t,
                        unsigned i, uint64_t piece, struct bench_request *out)
{
        static Cowd__V1__SpawnRequest sp[SETUP_BATCH];
        static char names[SETUP_BATCH][32];
        static unsigned next;
        unsigned k = next++ % SETUP_BATCH;

        (void)cfg;
        (void)t;
        (void)piece;
        cowd__v1__spawn_request__init(&sp[k]);
        snprintf(names[k], sizeof(names[k]), "bench-%u", i);
        sp[k].name = names[k];
        out->req.op_case = COWD__V1__REQUEST__OP_SPAWN;
        out->req.spawn = &sp[k];
}

static int take_spawn(struct bench_target *t, const Cowd__V1__Response *reply)
{
        if (reply->result_case != COWD__V1__RESPONSE__RESULT_SPAWN || !reply->spawn->pid)
                return -EPROTO;
        t->pid = reply->spawn->pid;
        return 0;
}

static void build_map_region(const struct bench_config *cfg, const struct bench_target *t,
                             unsigned i, uint64_t piece, struct bench_request *out)
{
        (void)i;
        (void)piece;
        req_mmap(out, t->pid, cfg->proc_size);
}

static int take_region(struct bench_target *t, const Cowd__V1__Response *reply)
{
        if (reply->result_case != COWD__V1__RESPONSE__RESULT_MMAP || !reply->mmap->addr)
                return -EPROTO;
        t->region = reply->mmap->addr;
        return 0;
}

static void build_map_paper(const struct bench_config *cfg, const struct bench_target *t,
                            unsigned i, uint64_t piece, struct bench_request *out)
{
        (void)i;
        (void)piece;
        req_mmap(out, t->pid, (uint64_t)BENCH_EXAM_PAGES * cfg->page_size);
}

static int take_paper(struct bench_target *t, const Cowd__V1__Response *reply)
{
        if (reply->result_case != COWD__V1__RESPONSE__RESULT_MMAP || !reply->mmap->addr)
                return -EPROTO;
        t->paper = reply->mmap->addr;
        return 0;
}

/* Setup writes the region in pieces of at most 1 MiB (the payload's size). */
static uint64_t region_pieces(const struct bench_config *cfg)
{
        return (cfg->proc_size + (1u << 20) - 1) >> 20;
}

static void build_fill(const struct bench_config *cfg, const struct bench_target *t,
                       unsigned i, uint64_t piece, struct bench_request *out)
{
        static Cowd__V1__WriteRequest w[SETUP_BATCH];
        static unsigned next;
        unsigned k = next++ % SETUP_BATCH;
        uint64_t off = piece << 20;
        uint64_t len = cfg->proc_size - off < (1u << 20) ? cfg->proc_size - off : 1u << 20;

        (void)i;
        cowd__v1__write_request__init(&w[k]);
        w[k].pid = t->pid;
        w[k].addr = t->region + off;
        w[k].data.data = payload;
        w[k].data.len = len;
        out->req.op_case = COWD__V1__REQUEST__OP_WRITE;
        out->req.write = &w[k];
}

static void build_question(const struct bench_config *cfg, const struct bench_target *t,
                           unsigned i, uint64_t piece, struct bench_request *out)
{
        static Cowd__V1__WriteRequest w[SETUP_BATCH];
        static char text[SETUP_BATCH][64];
        static unsigned next;
        unsigned k = next++ % SETUP_BATCH;

        (void)i;
        /* 64 bytes exactly: the candidates read 64 and check the start. */
        snprintf(text[k], sizeof(text[k]), "Question %-3u: explain copy-on-write, in detail.........",
                 (unsigned)piece + 1);
        memset(text[k] + strlen(text[k]), '.', sizeof(text[k]) - strlen(text[k]));
        cowd__v1__write_request__init(&w[k]);
        w[k].pid = t->pid;
        w[k].addr = t->paper + piece * cfg->page_size;
        w[k].data.data = (uint8_t *)text[k];
        w[k].data.len = sizeof(text[k]);
        out->req.op_case = COWD__V1__REQUEST__OP_WRITE;
        out->req.write = &w[k];
}

static void build_protect_paper(const struct bench_config *cfg, const struct bench_target *t,
                                unsigned i, uint64_t piece, struct bench_request *out)
{
        static Cowd__V1__MprotectRequest m[SETUP_BATCH];
        static unsigned next;
        unsigned k = next++ % SETUP_BATCH;

        (void)i;
        (void)piece;
        cowd__v1__mprotect_request__init(&m[k]);
        m[k].pid = t->pid;
        m[k].addr = t->paper;
        m[k].length = (uint64_t)BENCH_EXAM_PAGES * cfg->page_size;
        m[k].prot = 1;
        out->req.op_case = COWD__V1__REQUEST__OP_MPROTECT;
        out->req.mprotect = &m[k];
}

int bench_targets_setup(cowc_conn *conn, const struct bench_config *cfg,
                        struct bench_target *targets, unsigned n, struct bench_results *res,
                        struct cowc_error *err)
{
        int r;

        r = setup_phase(conn, cfg, targets, n, 1, build_spawn, take_spawn, res, err);
        if (r == 0)
                r = setup_phase(conn, cfg, targets, n, 1, build_map_region, take_region, res,
                                err);
        if (r == 0)
                r = setup_phase(conn, cfg, targets, n, region_pieces(cfg), build_fill, NULL,
                                res, err);
        if (r != 0 || cfg->weights[BENCH_EXAM] == 0)
                return r;
        r = setup_phase(conn, cfg, targets, n, 1, build_map_paper, take_paper, res, err);
        if (r == 0)
                r = setup_phase(conn, cfg, targets, n, BENCH_EXAM_PAGES, build_question, NULL,
                                res, err);
        if (r == 0)
                r = setup_phase(conn, cfg, targets, n, 1, build_protect_paper, NULL, res, err);
        return r;
}

static void build_exit(const struct bench_config *cfg, const struct bench_target *t,
                       unsigned i, uint64_t piece, struct bench_request *out)
{
        static Cowd__V1__ExitRequest e[SETUP_BATCH];
        static unsigned next;
        unsigned k = next++ % SETUP_BATCH;

        (void)cfg;
        (void)i;
        (void)piece;
        cowd__v1__exit_request__init(&e[k]);
        e[k].pid = t->pid;
        out->req.op_case = COWD__V1__REQUEST__OP_EXIT;
        out->req.exit = &e[k];
}

int bench_targets_teardown(cowc_conn *conn, const struct bench_target *targets, unsigned n,
                           struct bench_results *res, struct cowc_error *err)
{
        /* Only pids are read; setup_phase takes a mutable array for its take step. */
        return setup_phase(conn, NULL, (struct bench_target *)targets, n, 1, build_exit, NULL,
                           res, err);
}
