/* SPDX-License-Identifier: MIT */
/*
 * The load generator behind `cowctl bench`: what a run is asked to do, the
 * operations it can mix, and what it measured. bench-workload.c knows the
 * operations (the requests each one is made of) and prepares the simulated
 * processes they act on; bench-driver.c runs them over many connections
 * from one libevent loop; cmd-bench.c parses options and reports.
 */
#ifndef COWCTL_BENCH_H
#define COWCTL_BENCH_H

#include <stdbool.h>
#include <stdint.h>

#include "cowd/client.h"
#include "histogram.h"

/* The operations a workload mixes. One operation may take several requests. */
enum bench_op {
        BENCH_READ,  /* read SIZE bytes of the process's populated region */
        BENCH_WRITE, /* write SIZE bytes there */
        BENCH_FORK,  /* fork the process, exit the child */
        BENCH_COW,   /* fork, the child writes COW_PAGES pages (COW copies), exit it */
        BENCH_ZERO,  /* mmap ZERO_SIZE, read it all (zero page), write one page, munmap */
        BENCH_EXAM,  /* the exam paper: fork a candidate, read the read-only paper,
                      * write it (must fail with SEGV_ACCERR), exit the candidate */
        BENCH_N_OPS,
};

/* Outcomes beyond the status codes (0..16), counted with them. */
enum {
        BENCH_CODE_TRANSPORT = 17, /* the connection failed with the operation in flight */
        BENCH_CODE_WRONG = 18,     /* a reply of the wrong shape, or an outcome the
                                    * simulation must not produce */
        BENCH_N_CODES = 19,
};

#define BENCH_MAX_OP_CASE 32 /* Request op_case values counted per operation */
#define BENCH_EXAM_PAGES 16  /* pages of the exam paper */

struct bench_config {
        const char *endpoint;
        const char *token;     /* sent in each connection's hello (TCP); NULL: none */
        unsigned conns;        /* -c */
        unsigned pipeline;     /* -P: operations in flight per connection */
        uint64_t total_ops;    /* -n: measured operations; 0 = run for duration_s */
        double duration_s;     /* -d */
        double warmup_s;       /* --warmup: run, but record nothing, this long first */
        double rate;           /* --rate: operations per second, all connections; 0 = no cap */
        uint32_t size;         /* -s: bytes per read or write */
        uint64_t proc_size;    /* --proc-size: the populated region of each process */
        uint32_t cow_pages;    /* --cow-pages */
        uint64_t zero_size;    /* --zero-size */
        unsigned weights[BENCH_N_OPS]; /* --mix, or the one workload named */
        bool shared;           /* every connection acts on one process */
        bool progress;         /* a live line on stderr */
        uint32_t page_size;    /* from the daemon's hello */
        uint32_t max_frame;
};

/* A simulated process the operations act on. */
struct bench_target {
        uint32_t pid;
        uint64_t region; /* proc_size bytes, read-write, every page written */
        uint64_t paper;  /* BENCH_EXAM_PAGES read-only pages; 0 unless exam is mixed in */
};

struct bench_results {
        histogram *latency[BENCH_N_OPS]; /* nanoseconds, measured operations only */
        uint64_t ops[BENCH_N_OPS];       /* measured operations completed, errors included */
        uint64_t errors[BENCH_N_OPS];
        uint64_t errors_by_code[BENCH_N_CODES];
        uint64_t warmup_ops;
        uint64_t requests;                              /* every request sent */
        uint64_t requests_by_op[BENCH_MAX_OP_CASE + 1]; /* by Request op_case */
        uint64_t connections_lost;
        double elapsed_s;                               /* the measured phase */
};

/* Name of an operation ("read"), and the operation called name (-1 when none). */
const char *bench_op_name(enum bench_op op);
int bench_op_from_name(const char *name);

/* Name of a code counted in errors_by_code ("NOT_FOUND", "TRANSPORT"). */
const char *bench_code_name(unsigned code);

/*
 * Everything one step of an operation sends: a Request and the message it
 * points at, with room for the payload pointer.
 */
struct bench_request {
        Cowd__V1__Request req;
        union {
                Cowd__V1__ReadRequest read;
                Cowd__V1__WriteRequest write;
                Cowd__V1__ForkRequest fork;
                Cowd__V1__ExitRequest exit;
                Cowd__V1__MmapRequest mmap;
                Cowd__V1__MunmapRequest munmap;
                Cowd__V1__HelloRequest hello;
        } m;
};

/* One operation in flight. */
struct bench_op_state {
        enum bench_op op;
        unsigned step;
        int code;          /* the first failure, BENCH_CODE_* or a status code; 0 so far */
        uint32_t child;    /* a forked child still to exit; 0 when none */
        uint64_t addr;     /* the zero op's mapping */
        uint64_t seq;      /* picks the offset of reads and writes */
        uint64_t start_ns; /* when it started, or was meant to under --rate */
};

/* Fills out with the hello every connection begins with (token may be NULL). */
void bench_hello_request(struct bench_request *out, const char *token);

/*
 * The workload's payload buffer (pattern bytes), sized for the largest write
 * cfg asks for. Returns 0 or -ENOMEM; bench_workload_release() frees it.
 */
int bench_workload_init(const struct bench_config *cfg);
void bench_workload_release(void);

/*
 * Advances st: reply is the answer to its previous request (NULL when the
 * operation is starting). Returns 1 with *out holding the next request
 * (id left 0 for the caller), or 0 when the operation is over; st->code
 * then says how it ended. A child forked by the operation is always exited
 * before it ends, even after a failure.
 */
int bench_op_step(const struct bench_config *cfg, const struct bench_target *t,
                  struct bench_op_state *st, const Cowd__V1__Response *reply,
                  struct bench_request *out);

/*
 * Prepares n targets through conn (blocking, pipelined): spawn, map and
 * write the region, and the exam paper when cfg mixes exam in. Counts its
 * requests in res. Returns 0, a negative errno, or a positive status code
 * with err filled.
 */
int bench_targets_setup(cowc_conn *conn, const struct bench_config *cfg,
                        struct bench_target *targets, unsigned n, struct bench_results *res,
                        struct cowc_error *err);

/* Exits the n targets' processes. Same returns. */
int bench_targets_teardown(cowc_conn *conn, const struct bench_target *targets, unsigned n,
                           struct bench_results *res, struct cowc_error *err);

/*
 * Runs the workload: cfg->conns connections to cfg->endpoint, connection i
 * acting on targets[shared ? 0 : i], until the operation count or duration
 * is reached, then waits for every operation in flight. Fills res (whose
 * histograms must exist). Returns 0 (errors are in res) or a negative
 * errno when the run could not start, with a sentence in why.
 */
int bench_run(const struct bench_config *cfg, const struct bench_target *targets,
              struct bench_results *res, char *why, size_t whylen);

#endif /* COWCTL_BENCH_H */
