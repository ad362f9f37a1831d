/* metrics.c - per-loop counting and the sum a scrape reads (metrics.h). */
#include <string.h>

#include "net/conn_int.h"
#include "net/core.h"

/* From a cached echo (~10 us) to a long transfer: a few fixed buckets. */
const double sk__metric_bucket_s[SK_MBUCKETS] = {0.0001, 0.001, 0.01, 0.1, 1, 10, 60};
static const uint64_t bucket_ns[SK_MBUCKETS] = {
    100000ull, 1000000ull, 10000000ull, 100000000ull, 1000000000ull, 10000000000ull, 60000000000ull,
};

int sk__metric_code_slot(int err) {
  if (err >= 0)
    return 0;
  /* errno values and codes without a wire name count under the wire code
   * the peer saw (io_error, internal, ...) */
  int wire = sk_err_from_wire(sk_err_wire_name(err));
  if (wire <= SK_EFIRST_ || wire >= SK_ELAST_)
    return sk__metric_code_slot(SK_EINTERNAL);
  return wire - SK_EFIRST_;
}

void sk__metric_requests(sk__metrics *m, int t, int err, uint64_t n, uint64_t t0, uint64_t t1) {
  uint64_t ns = t1 - t0;
  int b = 0;
  while (b < SK_MBUCKETS && ns > bucket_ns[b])
    b++;
  sk__mu_add(&m->req[t][err == 0 ? 0 : sk__metric_code_slot(err)], n);
  sk__mu_add(&m->dur_bucket[t][b], n);
  sk__mu_add(&m->dur_ns[t], ns * n);
}

void sk__conn_metric(sk_conn *c, enum sk_metric which, int64_t n) {
  sk__mi_add(&c->loop->metrics.m[which], n);
}

void sk__loop_metric(sk_loop *l, enum sk_metric which, int64_t n) {
  sk__mi_add(&l->metrics.m[which], n);
}

#define LOAD(p) atomic_load_explicit(&(p), memory_order_relaxed)

void sk__metrics_sum(const sk_server *srv, sk__metrics *out) {
  memset(out, 0, sizeof(*out));
  for (int i = 0; i < srv->nloops_ready; i++) {
    const sk__metrics *m = &srv->loops[i].metrics;
    for (int t = 0; t < SK_MT_COUNT; t++) {
      for (int k = 0; k < SK_MC_COUNT; k++)
        out->req[t][k] += LOAD(m->req[t][k]);
      for (int b = 0; b <= SK_MBUCKETS; b++)
        out->dur_bucket[t][b] += LOAD(m->dur_bucket[t][b]);
      out->dur_ns[t] += LOAD(m->dur_ns[t]);
    }
    out->bytes_in += LOAD(m->bytes_in);
    out->bytes_out += LOAD(m->bytes_out);
    for (int l = 0; l < SK_MAX_LISTENERS; l++) {
      out->conns_open[l] += LOAD(m->conns_open[l]);
      out->conns_total[l] += LOAD(m->conns_total[l]);
    }
    for (int k = 0; k < SK_M_COUNT; k++)
      out->m[k] += LOAD(m->m[k]);
  }
}
