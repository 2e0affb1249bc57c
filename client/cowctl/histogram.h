/* SPDX-License-Identifier: MIT */
/*
 * A latency histogram with log-linear buckets, in the manner of
 * HdrHistogram: values below 256 each have their own bucket; above, every
 * power of two is split into 128 equal buckets, so a bucket is never wider
 * than 1/128 of its lower bound. A percentile is reported as the middle of
 * its bucket, clamped to the exact minimum and maximum recorded, which
 * bounds its relative error by 1/256 (0.4%) for any value up to 2^64 - 1.
 *
 * Recording is O(1) and allocation-free; the histogram itself is 59 KiB.
 */
#ifndef COWCTL_HISTOGRAM_H
#define COWCTL_HISTOGRAM_H

#include <stdint.h>

typedef struct histogram histogram;

/* An empty histogram. Returns 0 or -ENOMEM. */
int histogram_new(histogram **ret);

/* Accepts NULL. */
void histogram_free(histogram *h);

/* Forgets every value. */
void histogram_reset(histogram *h);

/* Records value n times. */
void histogram_record_n(histogram *h, uint64_t value, uint64_t n);

static inline void histogram_record(histogram *h, uint64_t value)
{
        histogram_record_n(h, value, 1);
}

/* Adds every value recorded in from to into. */
void histogram_merge(histogram *into, const histogram *from);

/* Values recorded, smallest and largest (0 when empty), and their mean (0 when empty). */
uint64_t histogram_count(const histogram *h);
uint64_t histogram_min(const histogram *h);
uint64_t histogram_max(const histogram *h);
double histogram_mean(const histogram *h);

/*
 * The value at percentile p (0..100) by nearest rank: the smallest recorded
 * value v such that at least p% of the values are <= v, within the error
 * above. p <= 0 gives the minimum, p >= 100 the maximum; an empty histogram
 * gives 0.
 */
uint64_t histogram_percentile(const histogram *h, double p);

#endif /* COWCTL_HISTOGRAM_H */
