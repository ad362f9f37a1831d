/* hist.c - the log-linear histogram (hist.h). */
#include "common/hist.h"

#include <string.h>

void sk__hist_reset(sk_hist *h) {
  memset(h, 0, sizeof(*h));
  h->min = UINT64_MAX;
}

/* Below 2^SUB the value is its own bucket. Above, with k the index of the
 * top bit, shifting right by k-(SUB-1) leaves a mantissa in [HALF, 2*HALF):
 * the bucket is that mantissa in the shift-th group of HALF buckets, which
 * continues the exact range without a gap. */
unsigned sk__hist_index(uint64_t v) {
  if (v < 2u * SK_HIST_HALF)
    return (unsigned)v;
  unsigned k = 63u - (unsigned)__builtin_clzll(v);
  unsigned shift = k - (SK_HIST_SUB - 1);
  return shift * SK_HIST_HALF + (unsigned)(v >> shift);
}

uint64_t sk__hist_low(unsigned idx) {
  if (idx < 2u * SK_HIST_HALF)
    return idx;
  unsigned shift = idx / SK_HIST_HALF - 1;
  uint64_t mant = idx - shift * SK_HIST_HALF;
  return mant << shift;
}

uint64_t sk__hist_high(unsigned idx) {
  if (idx < 2u * SK_HIST_HALF)
    return idx;
  unsigned shift = idx / SK_HIST_HALF - 1;
  return sk__hist_low(idx) + ((UINT64_C(1) << shift) - 1);
}

void sk__hist_record(sk_hist *h, uint64_t v) {
  h->c[sk__hist_index(v)]++;
  h->count++;
  h->sum += (double)v;
  if (v < h->min)
    h->min = v;
  if (v > h->max)
    h->max = v;
}

void sk__hist_merge(sk_hist *dst, const sk_hist *src) {
  if (src->count == 0)
    return;
  for (unsigned i = 0; i < SK_HIST_BUCKETS; i++)
    dst->c[i] += src->c[i];
  dst->count += src->count;
  dst->sum += src->sum;
  if (src->min < dst->min)
    dst->min = src->min;
  if (src->max > dst->max)
    dst->max = src->max;
}

uint64_t sk__hist_percentile(const sk_hist *h, double p) {
  if (h->count == 0)
    return 0;
  if (p >= 100.0)
    return h->max;
  /* rank of the wanted value, 1-based; p 0 means the smallest */
  double want = p / 100.0 * (double)h->count;
  uint64_t rank = (uint64_t)want;
  if ((double)rank < want || rank == 0)
    rank++;
  uint64_t seen = 0;
  for (unsigned i = 0; i < SK_HIST_BUCKETS; i++) {
    seen += h->c[i];
    if (seen >= rank) {
      uint64_t v = sk__hist_high(i);
      return v < h->max ? v : h->max;
    }
  }
  return h->max;
}

double sk__hist_mean(const sk_hist *h) {
  return h->count ? h->sum / (double)h->count : 0.0;
}
