/* hist.h - a log-linear latency histogram in the manner of HdrHistogram.
 *
 * Values (nanoseconds, or any unsigned count) below 2^SK_HIST_SUB are kept
 * exactly; above that, every power of two is split into SK_HIST_HALF equal
 * buckets, so a recorded value is known to within 1/SK_HIST_HALF (< 1.6 %)
 * of itself, over the whole 64-bit range, in a fixed ~30 KiB table: no
 * allocation, no rescaling, and two histograms merge by adding counters.
 * Not thread-safe: keep one per thread and merge at the end.
 */
#ifndef SOCKIT_COMMON_HIST_H
#define SOCKIT_COMMON_HIST_H

#include <stdint.h>

#define SK_HIST_SUB 7                          /* values < 2^7 are exact */
#define SK_HIST_HALF (1u << (SK_HIST_SUB - 1)) /* buckets per power of two */
#define SK_HIST_BUCKETS ((66u - SK_HIST_SUB) * SK_HIST_HALF)

typedef struct sk_hist {
  uint64_t count, min, max;
  double sum; /* for the mean; a double so that it cannot overflow */
  uint64_t c[SK_HIST_BUCKETS];
} sk_hist;

/* Empty the histogram (also how one starts: a zeroed sk_hist is not empty-
 * valid because of min). */
void sk__hist_reset(sk_hist *h);

void sk__hist_record(sk_hist *h, uint64_t v);

/* Add src's counts to dst. */
void sk__hist_merge(sk_hist *dst, const sk_hist *src);

/* The value at percentile p (0..100): the highest value that is equivalent
 * (same bucket) to the ceil(p% of count)-th smallest recorded value, capped at
 * the recorded max; 0 for an empty histogram. p >= 100 gives the max. */
uint64_t sk__hist_percentile(const sk_hist *h, double p);

double sk__hist_mean(const sk_hist *h); /* 0 when empty */

/* The bucket of v, and the lowest and highest value that bucket holds. */
unsigned sk__hist_index(uint64_t v);
uint64_t sk__hist_low(unsigned idx);
uint64_t sk__hist_high(unsigned idx);

#endif
