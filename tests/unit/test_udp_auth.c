/* test_udp_auth.c - authenticated datagrams (SPEC 5): K_udp, the trailer,
 * "ts"/"n" and the replay cache; and the per-source answer limit of
 * datagrams from unproven addresses.
 *
 * The vectors were computed outside sockit, three ways that agreed:
 *   python3: prk = hmac.new(b"sockit/2 udp", SECRET, sha256).digest()
 *            k   = hmac.new(prk, b"udp\x01", sha256).hexdigest()
 *   python3 cryptography: HKDF(SHA256(), 32, salt=b"sockit/2 udp", info=b"udp")
 *   openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt key:SECRET
 *               -kdfopt salt:"sockit/2 udp" -kdfopt info:udp HKDF
 * and the trailer with hmac.new(k, struct.pack(">I", len(HEAD)) + HEAD, sha256). */
#include "auth/dgram.h"
#include "net/srclimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <sockit/auth.h>
#include <sockit/error.h>

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECRET "sockit-test-secret-0123456789"
#define PRK_HEX "f6fee6c6fe416c78b906f7d77d3bf9b3b45f0dc04a16d3f84d395e236f126626"
#define KUDP_HEX "fbbc8a79a9f606a7268bf1ad98346734022972657c42fcaef22639130e45a7b2"
#define SECRET2 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define KUDP2_HEX "cf0e7302d170c417ea57c94906cbce4f52bddf99ecd69def91024b2b73c07a57"
#define HEAD "{\"type\":\"ping\",\"ts\":1764748800000,\"n\":\"0011223344556677\"}"
#define TAG_HEX "9ff0b98f38c5a709e676050569825edce64db2b4ab4ac7df2ca53142db785a6b"
#define NOW_MS INT64_C(1764748800000)

static void hex(const uint8_t *p, size_t n, char *out) {
  for (size_t i = 0; i < n; i++)
    sprintf(out + 2 * i, "%02x", p[i]);
}

static sk_key key_of(const char *s) {
  return (sk_key){(uint8_t *)s, strlen(s)};
}

/* prefix + HEAD + trailer, as a datagram; returns its length */
static size_t make_datagram(const sk__dg_guard *g, const char *head, uint8_t *out) {
  size_t hl = strlen(head);
  out[0] = (uint8_t)(hl >> 24), out[1] = (uint8_t)(hl >> 16), out[2] = (uint8_t)(hl >> 8);
  out[3] = (uint8_t)hl;
  memcpy(out + 4, head, hl);
  struct iovec iov = {out, 4 + hl};
  ck_assert_int_eq(sk__dg_tag(g, &iov, 1, out + 4 + hl), 0);
  return 4 + hl + SK_UDP_TAG_LEN;
}

static sk_head *head_with(int64_t ts, const char *n) {
  sk_head *h = sk_head_new("ping");
  ck_assert_ptr_nonnull(h);
  sk_head_set_int(h, "ts", ts);
  if (n)
    sk_head_set_str(h, "n", n);
  return h;
}

START_TEST(test_udp_key_vectors) {
  uint8_t k[SK_UDP_KEY_LEN];
  char got[2 * SK_UDP_KEY_LEN + 1];
  sk_key key = key_of(SECRET), key2 = key_of(SECRET2);
  ck_assert_int_eq(sk_auth_udp_key(&key, k), 0);
  hex(k, sizeof k, got);
  ck_assert_str_eq(got, KUDP_HEX);
  ck_assert_int_eq(sk_auth_udp_key(&key2, k), 0);
  hex(k, sizeof k, got);
  ck_assert_str_eq(got, KUDP2_HEX);
  ck_assert_int_eq(sk_auth_udp_key(NULL, k), -EINVAL);
}
END_TEST

START_TEST(test_hkdf_extract_step) {
  /* the first step alone, so a wrong salt/key order is caught by name */
  uint8_t prk[32];
  char got[65];
  struct iovec secret = {(void *)SECRET, strlen(SECRET)};
  ck_assert_int_eq(sk__hmac_sha256v("sockit/2 udp", 12, &secret, 1, prk), 0);
  hex(prk, sizeof prk, got);
  ck_assert_str_eq(got, PRK_HEX);
}
END_TEST

START_TEST(test_trailer_vector_and_pieces) {
  sk_key key = key_of(SECRET);
  sk__dg_guard *g = sk__dg_guard_new(&key, 16);
  uint8_t dg[256], tag[32];
  char got[65];
  size_t len = make_datagram(g, HEAD, dg);
  hex(dg + len - 32, 32, got);
  ck_assert_str_eq(got, TAG_HEX);
  /* the same bytes in three pieces give the same trailer */
  struct iovec parts[3] = {{dg, 4}, {dg + 4, 10}, {dg + 14, len - 32 - 14}};
  ck_assert_int_eq(sk__dg_tag(g, parts, 3, tag), 0);
  ck_assert_mem_eq(tag, dg + len - 32, 32);
  ck_assert_int_eq(sk__dg_verify(g, dg, len), (ssize_t)(len - 32));
  sk__dg_guard_free(g);
}
END_TEST

START_TEST(test_verify_refuses_any_change) {
  sk_key key = key_of(SECRET), other = key_of(SECRET2);
  sk__dg_guard *g = sk__dg_guard_new(&key, 16), *g2 = sk__dg_guard_new(&other, 16);
  uint8_t dg[256];
  size_t len = make_datagram(g, HEAD, dg);
  for (size_t i = 0; i < len; i++) { /* one flipped bit anywhere */
    dg[i] ^= 0x01;
    ck_assert_int_eq(sk__dg_verify(g, dg, len), -1);
    dg[i] ^= 0x01;
  }
  ck_assert_int_eq(sk__dg_verify(g2, dg, len), -1);    /* another key */
  ck_assert_int_eq(sk__dg_verify(g, dg, len - 1), -1); /* cut */
  ck_assert_int_eq(sk__dg_verify(g, dg, 20), -1);      /* shorter than any */
  ck_assert_int_eq(sk__dg_verify(g, dg, len), (ssize_t)(len - 32));
  sk__dg_guard_free(g);
  sk__dg_guard_free(g2);
}
END_TEST

START_TEST(test_stamp) {
  sk_head *a = sk_head_new("x"), *b = sk_head_new("x");
  ck_assert_int_eq(sk__dg_stamp(a, NOW_MS), 0);
  ck_assert_int_eq(sk__dg_stamp(b, NOW_MS), 0);
  int64_t ts = 0;
  ck_assert_int_eq(sk_head_int(a, "ts", &ts), 0);
  ck_assert(ts == NOW_MS);
  ck_assert_uint_eq(sk_head_strlen(a, "n"), 16);
  ck_assert_uint_eq(strspn(sk_head_str(a, "n"), "0123456789abcdef"), 16);
  ck_assert_str_ne(sk_head_str(a, "n"), sk_head_str(b, "n"));
  sk_head_free(a);
  sk_head_free(b);
}
END_TEST

START_TEST(test_fresh_window_and_form) {
  sk_key key = key_of(SECRET);
  sk__dg_guard *g = sk__dg_guard_new(&key, 64);
  struct {
    int64_t ts;
    const char *n;
    int want;
  } cases[] = {
      {NOW_MS, "0011223344556677", 0},
      {NOW_MS - 30000, "0011223344556678", 0},
      {NOW_MS + 30000, "0011223344556679", 0},
      {NOW_MS - 30001, "001122334455667a", -ERANGE},
      {NOW_MS + 30001, "001122334455667b", -ERANGE},
      {NOW_MS / 1000, "001122334455667c", -ERANGE}, /* seconds, not ms */
      {NOW_MS, "0011223344556677", -EALREADY},
      {NOW_MS, NULL, SK_EBADREQ},
      {NOW_MS, "00112233445566", SK_EBADREQ},
      {NOW_MS, "00112233445566778", SK_EBADREQ},
      {NOW_MS, "00112233445566AA", SK_EBADREQ},
      {NOW_MS, "001122334455667g", SK_EBADREQ},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    sk_head *h = head_with(cases[i].ts, cases[i].n);
    ck_assert_msg(sk__dg_fresh(g, h, NOW_MS, 1000) == cases[i].want, "case %zu", i);
    sk_head_free(h);
  }
  sk_head *h = sk_head_new("ping"); /* "ts" a string */
  sk_head_set_str(h, "ts", "1764748800000");
  sk_head_set_str(h, "n", "0011223344556699");
  ck_assert_int_eq(sk__dg_fresh(g, h, NOW_MS, 1000), SK_EBADREQ);
  sk_head_free(h);
  sk__dg_guard_free(g);
}
END_TEST

START_TEST(test_replay_remembered_a_minute) {
  sk_key key = key_of(SECRET);
  sk__dg_guard *g = sk__dg_guard_new(&key, 1024);
  sk_head *h = head_with(NOW_MS, "aaaaaaaaaaaaaaaa");
  uint64_t t0 = 5000;
  ck_assert_int_eq(sk__dg_fresh(g, h, NOW_MS, t0), 0);
  /* the same (ts, n) at every second of the next minute: refused (the wall
   * clock stays put so that the skew check does not do the work) */
  for (uint64_t dt = 0; dt < SK__DG_REMEMBER_MS; dt += 1000)
    ck_assert_int_eq(sk__dg_fresh(g, h, NOW_MS, t0 + dt), -EALREADY);
  ck_assert_int_eq(sk__dg_fresh(g, h, NOW_MS, t0 + SK__DG_REMEMBER_MS - 1), -EALREADY);
  /* another n at the same ts is another datagram */
  sk_head *h2 = head_with(NOW_MS, "aaaaaaaaaaaaaaab");
  ck_assert_int_eq(sk__dg_fresh(g, h2, NOW_MS, t0 + 59000), 0);
  /* two minutes on, both are forgotten and the table is empty again */
  ck_assert_int_eq(sk__dg_fresh(g, h, NOW_MS, t0 + 3 * SK__DG_REMEMBER_MS), 0);
  ck_assert_uint_eq(sk__dg_remembered(g), 1);
  sk_head_free(h);
  sk_head_free(h2);
  sk__dg_guard_free(g);
}
END_TEST

START_TEST(test_replay_cache_bounded) {
  sk_key key = key_of(SECRET);
  sk__dg_guard *g = sk__dg_guard_new(&key, 100);
  char n[17];
  int accepted = 0, busy = 0;
  for (int i = 0; i < 300; i++) {
    snprintf(n, sizeof n, "%016x", i + 1);
    sk_head *h = head_with(NOW_MS, n);
    int rc = sk__dg_fresh(g, h, NOW_MS, 1000 + (uint64_t)i);
    accepted += rc == 0;
    busy += rc == SK_EBUSY;
    sk_head_free(h);
  }
  ck_assert_int_eq(accepted, 100); /* full: refused, never forgotten early */
  ck_assert_int_eq(busy, 200);
  ck_assert_uint_le(sk__dg_remembered(g), 100);
  /* a minute later the first generation is still remembered (it is the
   * previous one now), new ones are taken again */
  sk_head *first = head_with(NOW_MS, "0000000000000001"),
          *fresh = head_with(NOW_MS, "ffffffffffffffff");
  ck_assert_int_eq(sk__dg_fresh(g, first, NOW_MS, 1000 + 61000), -EALREADY);
  ck_assert_int_eq(sk__dg_fresh(g, fresh, NOW_MS, 1000 + 61000), 0);
  sk_head_free(first);
  sk_head_free(fresh);
  sk__dg_guard_free(g);
}
END_TEST

/* ---- the per-source answer limit (net/srclimit.h) ---- */

static struct sockaddr_storage v4(const char *ip) {
  struct sockaddr_storage ss = {0};
  struct sockaddr_in *a = (struct sockaddr_in *)&ss;
  a->sin_family = AF_INET;
  a->sin_port = htons(1234);
  ck_assert_int_eq(inet_pton(AF_INET, ip, &a->sin_addr), 1);
  return ss;
}

static struct sockaddr_storage v6(const char *ip) {
  struct sockaddr_storage ss = {0};
  struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
  a->sin6_family = AF_INET6;
  ck_assert_int_eq(inet_pton(AF_INET6, ip, &a->sin6_addr), 1);
  return ss;
}

static int takes(sk__srclimit *l, const struct sockaddr_storage *ss, int n, uint64_t now) {
  int got = 0;
  for (int i = 0; i < n; i++)
    got += sk__srclimit_take(l, (const struct sockaddr *)ss, now);
  return got;
}

START_TEST(test_srclimit_burst_then_rate) {
  static sk__srclimit l;
  struct sockaddr_storage a = v4("192.0.2.1"), b = v4("192.0.2.2");
  sk__srclimit_init(&l, 10, 20);
  ck_assert_int_eq(takes(&l, &a, 100, 1000), 20);  /* the burst, then nothing */
  ck_assert_int_eq(takes(&l, &b, 5, 1000), 5);     /* another source is not touched */
  ck_assert_int_eq(takes(&l, &a, 10, 1099), 0);    /* 99 ms: not a whole answer yet */
  ck_assert_int_eq(takes(&l, &a, 10, 1100), 1);    /* 100 ms at 10/s: one */
  ck_assert_int_eq(takes(&l, &a, 100, 2100), 10);  /* a second: ten */
  ck_assert_int_eq(takes(&l, &a, 100, 60000), 20); /* never more than the burst */
  ck_assert_int_eq(takes(&l, &a, 1, 50000), 0);    /* a clock that steps back gives nothing */
}
END_TEST

START_TEST(test_srclimit_ipv6_by_64) {
  static sk__srclimit l;
  struct sockaddr_storage a = v6("2001:db8:1:2::1"), b = v6("2001:db8:1:2:ffff::9"),
                          c = v6("2001:db8:1:3::1");
  sk__srclimit_init(&l, 1, 4);
  ck_assert_int_eq(takes(&l, &a, 3, 0), 3);
  ck_assert_int_eq(takes(&l, &b, 3, 0), 1); /* the same /64 shares the bucket */
  ck_assert_int_eq(takes(&l, &c, 3, 0), 3); /* the next /64 does not */
}
END_TEST

START_TEST(test_srclimit_full_table_refuses) {
  static sk__srclimit l;
  char ip[32];
  int refused = 0;
  sk__srclimit_init(&l, 1, 2);
  /* far more sources than slots, each still spending: some are refused,
   * none forgets another's spending */
  for (int i = 0; i < 3 * SK_SRCLIMIT_SLOTS; i++) {
    snprintf(ip, sizeof ip, "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255, i & 255);
    struct sockaddr_storage s = v4(ip);
    refused += !sk__srclimit_take(&l, (const struct sockaddr *)&s, 0);
  }
  ck_assert_int_ge(refused, SK_SRCLIMIT_SLOTS);
  /* two seconds on, every bucket is full again: its slot is free */
  struct sockaddr_storage late = v4("198.51.100.7");
  ck_assert_int_eq(takes(&l, &late, 1, 2000), 1);
}
END_TEST

int main(void) {
  Suite *s = suite_create("udp_auth");
  TCase *k = tcase_create("key"), *f = tcase_create("fresh");
  tcase_add_test(k, test_udp_key_vectors);
  tcase_add_test(k, test_hkdf_extract_step);
  tcase_add_test(k, test_trailer_vector_and_pieces);
  tcase_add_test(k, test_verify_refuses_any_change);
  tcase_add_test(f, test_stamp);
  tcase_add_test(f, test_fresh_window_and_form);
  tcase_add_test(f, test_replay_remembered_a_minute);
  tcase_add_test(f, test_replay_cache_bounded);
  TCase *lim = tcase_create("srclimit");
  tcase_add_test(lim, test_srclimit_burst_then_rate);
  tcase_add_test(lim, test_srclimit_ipv6_by_64);
  tcase_add_test(lim, test_srclimit_full_table_refuses);
  suite_add_tcase(s, k);
  suite_add_tcase(s, f);
  suite_add_tcase(s, lim);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
