/* SPDX-License-Identifier: MIT */
/*
 * The bench's latency histogram against exact percentiles: the same
 * samples are sorted and the nearest-rank value read off directly, and the
 * histogram's answer must lie within 1% of it, for distributions shaped
 * like latencies (heavy tails), for values at every scale up to 2^64 - 1,
 * exactly for small values, and after merging.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "histogram.h"

static const double PCTS[] = { 0.0, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0 };

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return (x > y) - (x < y);
}

/* The nearest-rank percentile of sorted[0..n). */
static uint64_t exact_percentile(const uint64_t *sorted, size_t n, double p)
{
        if (p <= 0.0)
                return sorted[0];
        double want = ceil(p / 100.0 * (double)n);
        size_t rank = want < 1.0 ? 1 : (size_t)want;
        if (rank > n)
                rank = n;
        return sorted[rank - 1];
}

/* xorshift64*: a fixed sequence, so a failure replays. */
static uint64_t rng_next(uint64_t *s)
{
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        return *s * UINT64_C(2685821657736338717);
}

static double rng_unit(uint64_t *s)
{
        return (double)(rng_next(s) >> 11) / 9007199254740992.0; /* [0, 1) */
}

/* Records samples[0..n) and checks every percentile in PCTS, min, max, count, mean. */
static void check_against_sorted(uint64_t *samples, size_t n)
{
        histogram *h = NULL;
        double sum = 0.0;

        assert_int_equal(histogram_new(&h), 0);
        for (size_t i = 0; i < n; i++) {
                histogram_record(h, samples[i]);
                sum += (double)samples[i];
        }
        qsort(samples, n, sizeof(samples[0]), cmp_u64);

        assert_int_equal(histogram_count(h), n);
        assert_int_equal(histogram_min(h), samples[0]);
        assert_int_equal(histogram_max(h), samples[n - 1]);
        assert_true(fabs(histogram_mean(h) - sum / (double)n) <= 1e-9 * (sum / (double)n));
        for (size_t i = 0; i < sizeof(PCTS) / sizeof(PCTS[0]); i++) {
                uint64_t want = exact_percentile(samples, n, PCTS[i]);
                uint64_t got = histogram_percentile(h, PCTS[i]);
                double err = fabs((double)got - (double)want);

                if (err > 0.01 * (double)want)
                        fail_msg("p%g: histogram %llu, exact %llu (n %zu)", PCTS[i],
                                 (unsigned long long)got, (unsigned long long)want, n);
        }
        histogram_free(h);
}

/* Log-normal latencies around 50 us with a heavy tail, in nanoseconds. */
static void test_lognormal_latencies(void **state)
{
        enum { N = 200000 };
        uint64_t *v = malloc(N * sizeof(*v));
        uint64_t s = 0x9E3779B97F4A7C15u;

        (void)state;
        assert_non_null(v);
        for (size_t i = 0; i < N; i++) {
                /* Box-Muller, then exp(): a median of 50 us, sigma 1.2. */
                double u1 = rng_unit(&s) + 1e-12, u2 = rng_unit(&s);
                double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
                v[i] = (uint64_t)(50000.0 * exp(1.2 * z)) + 1;
        }
        check_against_sorted(v, N);
        free(v);
}

/* Uniform over every bit length: values from 0 to 2^64 - 1, each octave alike. */
static void test_every_scale(void **state)
{
        enum { N = 64 * 1000 };
        uint64_t *v = malloc(N * sizeof(*v));
        uint64_t s = 12345;

        (void)state;
        assert_non_null(v);
        for (size_t i = 0; i < N; i++) {
                unsigned bits = (unsigned)(i % 64) + 1;
                uint64_t r = rng_next(&s);
                v[i] = bits == 64 ? r : r & ((UINT64_C(1) << bits) - 1);
        }
        v[0] = UINT64_MAX;
        v[1] = 0;
        check_against_sorted(v, N);
        free(v);
}

/* Few samples: every rank boundary matters (n = 1, 2, 3, 10, 101). */
static void test_small_counts(void **state)
{
        static const size_t sizes[] = { 1, 2, 3, 10, 101 };
        uint64_t v[101];
        uint64_t s = 777;

        (void)state;
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
                for (size_t i = 0; i < sizes[k]; i++)
                        v[i] = 1000 + rng_next(&s) % 1000000;
                check_against_sorted(v, sizes[k]);
        }
}

/* Below 256 every value is its own bucket: percentiles are exact. */
static void test_small_values_exact(void **state)
{
        histogram *h = NULL;

        (void)state;
        assert_int_equal(histogram_new(&h), 0);
        for (uint64_t x = 0; x < 256; x++)
                histogram_record(h, x);
        assert_int_equal(histogram_percentile(h, 50.0), 127);  /* rank 128 */
        assert_int_equal(histogram_percentile(h, 99.0), 253);  /* rank ceil(253.44) = 254 */
        assert_int_equal(histogram_percentile(h, 100.0), 255);
        assert_int_equal(histogram_percentile(h, 0.0), 0);
        histogram_free(h);
}

/* Two halves merged answer like one histogram fed everything; an empty one answers 0. */
static void test_merge_and_empty(void **state)
{
        enum { N = 20000 };
        histogram *a = NULL, *b = NULL, *all = NULL;
        uint64_t s = 4242;

        (void)state;
        assert_int_equal(histogram_new(&a), 0);
        assert_int_equal(histogram_new(&b), 0);
        assert_int_equal(histogram_new(&all), 0);
        assert_int_equal(histogram_percentile(a, 50.0), 0);
        assert_int_equal(histogram_min(a), 0);
        assert_int_equal(histogram_max(a), 0);
        assert_true(histogram_mean(a) == 0.0);

        for (size_t i = 0; i < N; i++) {
                uint64_t x = 1 + rng_next(&s) % 10000000;
                histogram_record(i % 2 ? a : b, x);
                histogram_record(all, x);
        }
        histogram_merge(a, b);
        assert_int_equal(histogram_count(a), N);
        assert_int_equal(histogram_min(a), histogram_min(all));
        assert_int_equal(histogram_max(a), histogram_max(all));
        for (size_t i = 0; i < sizeof(PCTS) / sizeof(PCTS[0]); i++)
                assert_int_equal(histogram_percentile(a, PCTS[i]),
                                 histogram_percentile(all, PCTS[i]));

        histogram_record_n(b, 5, 0); /* n = 0 records nothing */
        histogram_reset(b);
        histogram_record_n(b, 5000, 3);
        assert_int_equal(histogram_count(b), 3);
        assert_int_equal(histogram_percentile(b, 50.0), 5000);
        histogram_free(a);
        histogram_free(b);
        histogram_free(all);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_lognormal_latencies),
                cmocka_unit_test(test_every_scale),
                cmocka_unit_test(test_small_counts),
                cmocka_unit_test(test_small_values_exact),
                cmocka_unit_test(test_merge_and_empty),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
