/* metrics.h - what the server counts, per loop (SPEC 10's /metrics).
 *
 * Each loop owns one sk__metrics and is the only thread that writes it: a
 * count is a relaxed load and store of a plain counter, no lock and no
 * atomic read-modify-write on the request path. A scrape (any thread) sums
 * the loops with relaxed loads; a value may be a few requests old, never
 * torn. Gauges are per-loop differences (+1 where a thing starts, -1 on the
 * same loop where it ends): their sum over the loops is the server's value.
 */
#ifndef SOCKIT_NET_METRICS_H
#define SOCKIT_NET_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "service/metric.h"
#include "sockit/error.h"

/* Request latency buckets, in seconds; the last bucket (+Inf) is implied. */
#define SK_MBUCKETS 7
extern const double sk__metric_bucket_s[SK_MBUCKETS];

/* Request types: one slot per registered handler, then these two. */
#define SK_MT_AUTH (SK_MAX_HANDLERS)      /* the auth frame */
#define SK_MT_OTHER (SK_MAX_HANDLERS + 1) /* a type no service registered */
#define SK_MT_COUNT (SK_MAX_HANDLERS + 2)
/* Result codes: 0 is "ok", then every SK_E* code in table order. */
#define SK_MC_COUNT (SK_ELAST_ - SK_EFIRST_)

typedef struct sk__metrics {
  _Atomic uint64_t req[SK_MT_COUNT][SK_MC_COUNT];
  _Atomic uint64_t dur_bucket[SK_MT_COUNT][SK_MBUCKETS + 1]; /* not cumulative */
  _Atomic uint64_t dur_ns[SK_MT_COUNT];                      /* sum, nanoseconds */
  _Atomic uint64_t bytes_in, bytes_out;
  _Atomic int64_t conns_open[SK_MAX_LISTENERS];
  _Atomic uint64_t conns_total[SK_MAX_LISTENERS];
  _Atomic int64_t m[SK_M_COUNT];
} sk__metrics;

/* Only the owning loop's thread calls these. */
static inline void sk__mu_add(_Atomic uint64_t *p, uint64_t n) {
  atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + n, memory_order_relaxed);
}
static inline void sk__mi_add(_Atomic int64_t *p, int64_t n) {
  atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + n, memory_order_relaxed);
}

/* The result-code slot of err (0: ok). */
int sk__metric_code_slot(int err);
/* n finished requests of type slot t with result err, begun at t0 and
 * finished at t1 (uv_hrtime). */
void sk__metric_requests(sk__metrics *m, int t, int err, uint64_t n, uint64_t t0, uint64_t t1);

#endif
