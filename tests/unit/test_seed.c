/* test_seed.c - the seed wire's pure parsers (src/wire/seed.c): timestamps
 * as Python's int() reads them, the put head and its base names, the auth
 * challenge digits. Inputs end right before a PROT_NONE page where it
 * matters, so a read past the end crashes the test. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sockit/error.h"
#include "wire/seed.h"

/* A copy of p[0..n) that ends at a PROT_NONE page. */
static const char *guarded(const char *p, size_t n) {
  static char *area;
  static size_t page;
  if (area == NULL) {
    page = (size_t)sysconf(_SC_PAGESIZE);
    area = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(area, MAP_FAILED);
    ck_assert_int_eq(mprotect(area + page, page, PROT_NONE), 0);
  }
  ck_assert_uint_le(n, page);
  memcpy(area + page - n, p, n);
  return area + page - n;
}

static int ts(const char *s, int64_t *out) {
  return sk__seed_parse_ts(guarded(s, strlen(s)), strlen(s), out);
}

START_TEST(ts_accepts_what_python_int_accepts) {
  int64_t v;
  ck_assert_int_eq(ts("1700000000", &v), 0);
  ck_assert_int_eq(v, 1700000000);
  ck_assert_int_eq(ts(" \t1700000000\r\n", &v), 0);
  ck_assert_int_eq(v, 1700000000);
  ck_assert_int_eq(ts("-86400", &v), 0);
  ck_assert_int_eq(v, -86400);
  ck_assert_int_eq(ts("+7", &v), 0);
  ck_assert_int_eq(v, 7);
  ck_assert_int_eq(ts("0", &v), 0);
  ck_assert_int_eq(v, 0);
  ck_assert_int_eq(ts("9223372036854775807", &v), 0);
  ck_assert_int_eq(v, INT64_MAX);
  ck_assert_int_eq(ts("-9223372036854775808", &v), 0);
  ck_assert_int_eq(v, INT64_MIN);
}
END_TEST

START_TEST(ts_refuses_the_rest) {
  static const char *bad[] = {"",         " ",     "+",   "-",   "12a", "1 2",
                              "1.5",      "0x10",  "--1", "1e9", "abc", "9223372036854775808",
                              "\xff\xfe", "12:00", "１２"};
  int64_t v = 42;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ck_assert_msg(ts(bad[i], &v) == SK_EBADREQ, "accepted '%s'", bad[i]);
    ck_assert_int_eq(v, 42);
  }
  ck_assert_int_eq(sk__seed_parse_ts("1\0"
                                     "2",
                                     3, &v),
                   SK_EBADREQ);
}
END_TEST

START_TEST(head_len_limits) {
  uint8_t b[4];
  uint32_t n = 0;
  sk__seed_put_u32le(b, 0x01020304);
  ck_assert(b[0] == 4 && b[1] == 3 && b[2] == 2 && b[3] == 1);
  sk__seed_put_u32le(b, 2);
  ck_assert_int_eq(sk__seed_head_len(b, &n), 0);
  ck_assert_uint_eq(n, 2);
  sk__seed_put_u32le(b, SK_SEED_HEAD_MAX);
  ck_assert_int_eq(sk__seed_head_len(b, &n), 0);
  ck_assert_uint_eq(n, SK_SEED_HEAD_MAX);
  sk__seed_put_u32le(b, SK_SEED_HEAD_MAX + 1);
  ck_assert_int_eq(sk__seed_head_len(b, &n), SK_ETOOLARGE);
  sk__seed_put_u32le(b, 0xffffffffu); /* struct.pack('i', -1) */
  ck_assert_int_eq(sk__seed_head_len(b, &n), SK_ETOOLARGE);
  sk__seed_put_u32le(b, 1);
  ck_assert_int_eq(sk__seed_head_len(b, &n), SK_EBADREQ);
  sk__seed_put_u32le(b, 0);
  ck_assert_int_eq(sk__seed_head_len(b, &n), SK_EBADREQ);
}
END_TEST

static int base(const char *s, char *out) {
  return sk__seed_base_name(guarded(s, strlen(s)), strlen(s), out, SK_SEED_NAME_MAX + 1);
}

START_TEST(base_name_keeps_the_last_component) {
  char out[SK_SEED_NAME_MAX + 1];
  ck_assert_int_eq(base("../../evil", out), 4);
  ck_assert_str_eq(out, "evil");
  ck_assert_int_eq(base("2016_01_05_22_21_IMG_1333.JPG", out), 29);
  ck_assert_str_eq(out, "2016_01_05_22_21_IMG_1333.JPG");
  ck_assert_int_eq(base("E:\\照片\\a.jpg", out), 5);
  ck_assert_str_eq(out, "a.jpg");
  ck_assert_int_eq(base("/etc/passwd", out), 6);
  ck_assert_str_eq(out, "passwd");
  ck_assert_int_eq(base("a..b", out), 4);
  ck_assert_str_eq(out, "a..b");
}
END_TEST

START_TEST(base_name_refusals) {
  static const char *bad[] = {"",   ".",       "..",     "a/..",      "dir/",   "/",
                              "\\", ".bashrc", "x/.ssh", "tab\tname", "del\x7f"};
  char out[SK_SEED_NAME_MAX + 1], longname[300];
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ck_assert_msg(base(bad[i], out) == SK_EFORBIDDEN, "accepted '%s'", bad[i]);
  memset(longname, 'a', sizeof(longname));
  ck_assert_int_eq(sk__seed_base_name(longname, SK_SEED_NAME_MAX, out, sizeof(out)),
                   SK_SEED_NAME_MAX);
  ck_assert_int_eq(sk__seed_base_name(longname, SK_SEED_NAME_MAX + 1, out, sizeof(out)),
                   SK_EFORBIDDEN);
  ck_assert_int_eq(sk__seed_base_name("a\0b", 3, out, sizeof(out)), SK_EFORBIDDEN);
  ck_assert_int_eq(sk__seed_base_name("abc", 3, out, 3), SK_EFORBIDDEN); /* no room */
}
END_TEST

static int head(const char *json, uint64_t max, sk_seed_put_head *h) {
  return sk__seed_put_head_parse(guarded(json, strlen(json)), strlen(json), max, h);
}

START_TEST(put_head_as_the_tutorial_sends_it) {
  sk_seed_put_head h;
  ck_assert_int_eq(head("{\"filepath\": \"E:\\\\\\u7167\\u7247\", \"filename\": "
                        "\"2016_01_05_22_21_IMG_1333.JPG\", \"filesize\": 20971520}",
                        UINT64_MAX, &h),
                   0);
  ck_assert_str_eq(h.name, "2016_01_05_22_21_IMG_1333.JPG");
  ck_assert_uint_eq(h.size, 20971520);
  ck_assert_int_eq(head("{\"filename\":\"../../evil\",\"filesize\":0}", 10, &h), 0);
  ck_assert_str_eq(h.name, "evil");
  ck_assert_uint_eq(h.size, 0);
}
END_TEST

START_TEST(put_head_refusals) {
  sk_seed_put_head h;
  ck_assert_int_eq(head("[]", 10, &h), SK_EBADREQ);
  ck_assert_int_eq(head("{}", 10, &h), SK_EBADREQ);
  ck_assert_int_eq(head("not json", 10, &h), SK_EBADREQ);
  ck_assert_int_eq(head("{\"filename\":\"a\",\"filesize\":null}", 10, &h), SK_EBADREQ);
  ck_assert_int_eq(head("{\"filename\":\"a\",\"filesize\":\"3\"}", 10, &h), SK_EBADREQ);
  ck_assert_int_eq(head("{\"filename\":\"a\",\"filesize\":1.5}", 10, &h), SK_EBADREQ);
  ck_assert_int_eq(head("{\"filename\":\"a\",\"filesize\":-1}", 10, &h), SK_EBADREQ);
  ck_assert_int_eq(head("{\"filename\":7,\"filesize\":1}", 10, &h), SK_EBADREQ);
  ck_assert_int_eq(head("{\"filename\":\"a\",\"filesize\":11}", 10, &h), SK_ETOOLARGE);
  ck_assert_int_eq(head("{\"filename\":\"a\\u0000b\",\"filesize\":1}", 10, &h), SK_EBADREQ);
  ck_assert_int_eq(head("{\"filename\":\"..\",\"filesize\":1}", 10, &h), SK_EFORBIDDEN);
  ck_assert_int_eq(head("{\"filename\":\".x\",\"filesize\":1}", 10, &h), SK_EFORBIDDEN);
  ck_assert_int_eq(head("{\"filename\":\"a\",\"filename\":\"b\",\"filesize\":1}", 10, &h),
                   SK_EBADREQ);
}
END_TEST

START_TEST(equal_compares_all_bytes) {
  uint8_t a[16] = {1, 2, 3}, b[16] = {1, 2, 3};
  ck_assert_int_eq(sk__seed_equal(a, b, 16), 1);
  b[15] = 1;
  ck_assert_int_eq(sk__seed_equal(a, b, 16), 0);
  ck_assert_int_eq(sk__seed_equal(a, b, 15), 1);
}
END_TEST

START_TEST(digits_by_rejection) {
  uint8_t rnd[64];
  char out[SK_SEED_AUTH_DIGITS + 1];
  for (size_t i = 0; i < sizeof(rnd); i++)
    rnd[i] = (uint8_t)(i * 37 + 11);
  ck_assert_int_eq(sk__seed_digits(rnd, sizeof(rnd), out, sizeof(out), SK_SEED_AUTH_DIGITS),
                   SK_SEED_AUTH_DIGITS);
  ck_assert_uint_eq(strlen(out), SK_SEED_AUTH_DIGITS);
  ck_assert(out[0] >= '1' && out[0] <= '9');
  for (int i = 0; i < SK_SEED_AUTH_DIGITS; i++)
    ck_assert(out[i] >= '0' && out[i] <= '9');
  /* 250..255 are skipped (bias), and a leading 0 is skipped */
  uint8_t skewed[] = {250, 255, 10, 3, 4};
  ck_assert_int_eq(sk__seed_digits(skewed, sizeof(skewed), out, sizeof(out), 2), 2);
  ck_assert_str_eq(out, "34");
  ck_assert_int_eq(sk__seed_digits(skewed, 3, out, sizeof(out), 2), -EAGAIN);
  ck_assert_int_eq(sk__seed_digits(rnd, sizeof(rnd), out, 2, 2), -EINVAL);
}
END_TEST

/* issue 15 item 7: controls but newline and tab become U+FFFD; a cut
 * UTF-8 sequence waits for the next read. */
START_TEST(chat_clean_replaces_controls) {
  static const char in[] = "\x1b[2J\r\n\tok\x7f\xc2\x9b\xc2\xa0\xe4\xbd\xa0\xc2";
  static const char want[] = "\xef\xbf\xbd[2J\xef\xbf\xbd\n\tok\xef\xbf\xbd\xef\xbf\xbd"
                             "\xc2\xa0\xe4\xbd\xa0";
  uint8_t out[3 * sizeof(in)];
  size_t keep, w = sk__seed_chat_clean((const uint8_t *)in, sizeof(in) - 1, out, &keep);
  ck_assert_uint_eq(keep, 1);
  ck_assert_uint_eq(w, sizeof(want) - 1);
  ck_assert_mem_eq(out, want, w);
  w = sk__seed_chat_clean((const uint8_t *)"\xe4\xbd", 2, out, &keep);
  ck_assert_uint_eq(w, 0);
  ck_assert_uint_eq(keep, 2);
  w = sk__seed_chat_clean((const uint8_t *)"\xe4\x41", 2, out, &keep); /* not a sequence */
  ck_assert_uint_eq(w, 2);
  ck_assert_uint_eq(keep, 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("seed");
  TCase *t = tcase_create("parsers");
  SRunner *sr;
  int failed;

  tcase_add_test(t, ts_accepts_what_python_int_accepts);
  tcase_add_test(t, ts_refuses_the_rest);
  tcase_add_test(t, head_len_limits);
  tcase_add_test(t, base_name_keeps_the_last_component);
  tcase_add_test(t, base_name_refusals);
  tcase_add_test(t, put_head_as_the_tutorial_sends_it);
  tcase_add_test(t, put_head_refusals);
  tcase_add_test(t, equal_compares_all_bytes);
  tcase_add_test(t, digits_by_rejection);
  tcase_add_test(t, chat_clean_replaces_controls);
  suite_add_tcase(s, t);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
