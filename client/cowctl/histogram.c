/* SPDX-License-Identifier: MIT */
#include "histogram.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/*
 * Layout: SUB = 2^SUB_BITS buckets per power of two. Values below 2 * SUB
 * index themselves. A larger value v with highest set bit e (e >= SUB_BITS
 * + 1) keeps its top SUB_BITS + 1 bits, a mantissa m in [SUB, 2 * SUB); its
 * bucket is 2 * SUB + (e - SUB_BITS - 1) * SUB + (m - SUB) and covers
 * [m << s, (m + 1) << s) with s = e - SUB_BITS.
 */
#define SUB_BITS 7
#define SUB (1u << SUB_BITS)
#define N_BUCKETS (2 * SUB + (64 - SUB_BITS - 1) * SUB)

struct histogram {
        uint64_t count;
        uint64_t min, max;
        double sum; /* for the mean; a double so that it cannot overflow */
        uint64_t buckets[N_BUCKETS];
};

static unsigned bucket_of(uint64_t v)
{
        if (v < 2 * SUB)
                return (unsigned)v;
        unsigned e = 63u - (unsigned)__builtin_clzll(v);
        unsigned s = e - SUB_BITS;
        return 2 * SUB + (e - SUB_BITS - 1) * SUB + (unsigned)((v >> s) - SUB);
}

/* The middle of bucket i: its lower bound plus half its width, rounded down. */
static uint64_t bucket_middle(unsigned i)
{
        if (i < 2 * SUB)
                return i;
        unsigned k = i - 2 * SUB;
        unsigned s = k / SUB + 1;
        uint64_t m = SUB + k % SUB;
        uint64_t lo = m << s;
        return lo + (((uint64_t)1 << s) - 1) / 2;
}

int histogram_new(histogram **ret)
{
        histogram *h = malloc(sizeof(*h));

        if (!h)
                return -ENOMEM;
        histogram_reset(h);
        *ret = h;
        return 0;
}

void histogram_free(histogram *h)
{
        free(h);
}

void histogram_reset(histogram *h)
{
        memset(h, 0, sizeof(*h));
        h->min = UINT64_MAX;
}

void histogram_record_n(histogram *h, uint64_t value, uint64_t n)
{
        if (n == 0)
                return;
        h->buckets[bucket_of(value)] += n;
        h->count += n;
        h->sum += (double)value * (double)n;
        if (value < h->min)
                h->min = value;
        if (value > h->max)
                h->max = value;
}

void histogram_merge(histogram *into, const histogram *from)
{
        if (from->count == 0)
                return;
        for (unsigned i = 0; i < N_BUCKETS; i++)
                into->buckets[i] += from->buckets[i];
        into->count += from->count;
        into->sum += from->sum;
        if (from->min < into->min)
                into->min = from->min;
        if (from->max > into->max)
                into->max = from->max;
}

uint64_t histogram_count(const histogram *h)
{
        return h->count;
}

uint64_t histogram_min(const histogram *h)
{
        return h->count ? h->min : 0;
}

uint64_t histogram_max(const histogram *h)
{
        return h->max;
}

double histogram_mean(const histogram *h)
{
        return h->count ? h->sum / (double)h->count : 0.0;
}

uint64_t histogram_percentile(const histogram *h, double p)
{
        if (h->count == 0)
                return 0;
        if (!(p > 0.0)) /* also NaN */
                return h->min;
        if (p >= 100.0)
                return h->max;

        /* Nearest rank: the ceil(p/100 * n)-th smallest value, 1-based. */
        double want = ceil(p / 100.0 * (double)h->count);
        uint64_t rank = want < 1.0 ? 1 : (uint64_t)want;
        if (rank > h->count)
                rank = h->count;

        uint64_t seen = 0;
        for (unsigned i = 0; i < N_BUCKETS; i++) {
                seen += h->buckets[i];
                if (seen >= rank) {
                        uint64_t v = bucket_middle(i);
                        if (v < h->min)
                                return h->min;
                        return v > h->max ? h->max : v;
                }
        }
        return h->max; /* not reached: the buckets add up to count */
}
