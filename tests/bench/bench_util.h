/* SPDX-License-Identifier: MIT */
/* What every engine benchmark needs: failing loudly, a clock, and medians. */
#ifndef COWD_BENCH_UTIL_H
#define COWD_BENCH_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cowd/engine.h>

/* glibc's name of the running program; errno.h declares it only under _GNU_SOURCE. */
extern char *program_invocation_short_name;

/* Ends the benchmark: err is an engine error (< 0) or an errno (> 0). */
static inline void die(const char *what, int err)
{
        fprintf(stderr, "%s: %s: %s (%d)\n", program_invocation_short_name, what,
                err < 0 ? cow_engine_strerror(err) : strerror(err), err);
        exit(1);
}

static inline void check(int r, const char *what)
{
        if (r < 0)
                die(what, r);
}

static inline double now_ns(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return (x > y) - (x < y);
}

/* The median of v[0..n-1], sorting v. */
static inline double median(double *v, int n)
{
        qsort(v, (size_t)n, sizeof *v, cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif /* COWD_BENCH_UTIL_H */
