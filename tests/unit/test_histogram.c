/* test_histogram.c - the log-linear latency histogram (src/common/hist.c). */
#include <check.h>
#include <stdlib.h>

#include "common/hist.h"

static sk_hist *hist_new(void) {
  sk_hist *h = malloc(sizeof(*h));
  ck_assert_ptr_nonnull(h);
  sk__hist_reset(h);
  return h;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* xorshift64*: repeatable values without libc's rand state */
static uint64_t next_rand(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * UINT64_C(2685821657736338717);
}

START_TEST(empty) {
  sk_hist *h = hist_new();
  ck_assert_uint_eq(sk__hist_percentile(h, 50), 0);
  ck_assert_uint_eq(sk__hist_percentile(h, 100), 0);
  ck_assert(sk__hist_mean(h) == 0.0);
  free(h);
}
END_TEST

/* Every bucket follows the previous one without a gap or an overlap, and is
 * at most 1/HALF of its low value wide. */
START_TEST(buckets_tile_the_range) {
  for (unsigned i = 1; i < SK_HIST_BUCKETS; i++) {
    ck_assert_uint_eq(sk__hist_low(i), sk__hist_high(i - 1) + 1);
    ck_assert_uint_le(sk__hist_high(i) - sk__hist_low(i), sk__hist_low(i) / SK_HIST_HALF);
  }
  ck_assert_uint_eq(sk__hist_high(SK_HIST_BUCKETS - 1), UINT64_MAX);
  ck_assert_uint_eq(sk__hist_index(UINT64_MAX), SK_HIST_BUCKETS - 1);
}
END_TEST

START_TEST(index_round_trip) {
  uint64_t s = 42;
  for (int i = 0; i < 100000; i++) {
    uint64_t v = next_rand(&s) >> (next_rand(&s) % 64);
    unsigned idx = sk__hist_index(v);
    ck_assert_uint_lt(idx, SK_HIST_BUCKETS);
    ck_assert_uint_le(sk__hist_low(idx), v);
    ck_assert_uint_ge(sk__hist_high(idx), v);
  }
}
END_TEST

START_TEST(small_values_exact) {
  sk_hist *h = hist_new();
  for (uint64_t v = 1; v <= 100; v++)
    sk__hist_record(h, v);
  ck_assert_uint_eq(sk__hist_percentile(h, 50), 50);
  ck_assert_uint_eq(sk__hist_percentile(h, 90), 90);
  ck_assert_uint_eq(sk__hist_percentile(h, 99), 99);
  ck_assert_uint_eq(sk__hist_percentile(h, 99.9), 100);
  ck_assert_uint_eq(sk__hist_percentile(h, 100), 100);
  ck_assert_uint_eq(sk__hist_percentile(h, 0), 1);
  ck_assert_uint_eq(h->min, 1);
  ck_assert(sk__hist_mean(h) == 50.5);
  free(h);
}
END_TEST

/* Against the exact answer from a sorted copy: within the bucket precision,
 * and never below the true value (the highest equivalent value is given). */
START_TEST(percentiles_match_sorted) {
  enum { N = 200000 };
  static uint64_t v[N];
  static const double ps[] = {1, 25, 50, 90, 99, 99.9, 99.99};
  sk_hist *h = hist_new();
  uint64_t s = 7;
  for (int i = 0; i < N; i++) {
    v[i] = 1000 + next_rand(&s) % (next_rand(&s) % 2 ? 50000 : 50000000);
    sk__hist_record(h, v[i]);
  }
  qsort(v, N, sizeof(v[0]), cmp_u64);
  for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
    size_t rank = (size_t)(ps[i] / 100.0 * N + 0.999999);
    uint64_t exact = v[rank - 1], got = sk__hist_percentile(h, ps[i]);
    ck_assert_uint_ge(got, exact);
    ck_assert_uint_le(got - exact, exact / SK_HIST_HALF);
  }
  ck_assert_uint_eq(sk__hist_percentile(h, 100), v[N - 1]);
  ck_assert_uint_eq(h->max, v[N - 1]);
  ck_assert_uint_eq(h->min, v[0]);
  free(h);
}
END_TEST

START_TEST(merge_adds) {
  sk_hist *a = hist_new(), *b = hist_new(), *all = hist_new();
  for (uint64_t v = 1; v < 5000000; v += 997) {
    sk__hist_record(v % 2 ? a : b, v);
    sk__hist_record(all, v);
  }
  sk__hist_merge(a, b);
  ck_assert_uint_eq(a->count, all->count);
  ck_assert_uint_eq(a->max, all->max);
  ck_assert_uint_eq(a->min, all->min);
  for (double p = 0; p <= 100; p += 0.5)
    ck_assert_uint_eq(sk__hist_percentile(a, p), sk__hist_percentile(all, p));
  sk__hist_reset(b);
  sk__hist_merge(a, b); /* an empty one changes nothing, min included */
  ck_assert_uint_eq(a->min, all->min);
  free(a);
  free(b);
  free(all);
}
END_TEST

START_TEST(extremes) {
  sk_hist *h = hist_new();
  sk__hist_record(h, 0);
  sk__hist_record(h, UINT64_MAX);
  ck_assert_uint_eq(sk__hist_percentile(h, 50), 0);
  ck_assert_uint_eq(sk__hist_percentile(h, 100), UINT64_MAX);
  ck_assert_uint_eq(sk__hist_percentile(h, 99.9), UINT64_MAX);
  free(h);
}
END_TEST

int main(void) {
  Suite *s = suite_create("histogram");
  TCase *tc = tcase_create("core");
  int failed;
  tcase_add_test(tc, empty);
  tcase_add_test(tc, buckets_tile_the_range);
  tcase_add_test(tc, index_round_trip);
  tcase_add_test(tc, small_values_exact);
  tcase_add_test(tc, percentiles_match_sorted);
  tcase_add_test(tc, merge_adds);
  tcase_add_test(tc, extremes);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
