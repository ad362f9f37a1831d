/* test_escape.c - untrusted text shown on a terminal (common/escape.h,
 * issue 15 item 5): what is escaped, what passes, cutting, bad UTF-8. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/escape.h"
#include "common/visible.h"

static const char *esc(const char *s) {
  static char buf[1024];
  size_t need = sk__escape_text(buf, sizeof(buf), s, strlen(s));
  ck_assert_uint_eq(need, strlen(buf));
  return buf;
}

START_TEST(plain_text_passes) {
  ck_assert_str_eq(esc("hello, world"), "hello, world");
  ck_assert_str_eq(esc("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac"),
                   "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac");
  /* emoji with ZWJ and a variation selector stay as they are */
  ck_assert_str_eq(esc("\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb\xe2\x9d\xa4\xef\xb8\x8f"),
                   "\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb\xe2\x9d\xa4\xef\xb8\x8f");
  ck_assert(!sk__text_needs_escape("alice", 5));
}
END_TEST

START_TEST(controls_escaped) {
  ck_assert_str_eq(esc("\n[07:00:00] alice: hi"), "\\n[07:00:00] alice: hi");
  ck_assert_str_eq(esc("\x1b]52;c;aGk=\x07"), "\\x1b]52;c;aGk=\\x07");
  ck_assert_str_eq(esc("\x1b[2J"), "\\x1b[2J");
  ck_assert_str_eq(esc("a\rb\tc\x7f"), "a\\rb\\tc\\x7f");
  ck_assert_str_eq(esc("\xc2\x9b"
                       "2J"),
                   "\\u009b2J"); /* C1 CSI */
  ck_assert(sk__text_needs_escape("\x1b", 1));
}
END_TEST

START_TEST(format_and_bidi_escaped) {
  ck_assert_str_eq(esc("abc\xe2\x80\xae"
                       "def"),
                   "abc\\u202edef");                                     /* RLO */
  ck_assert_str_eq(esc("\xe2\x81\xa6x\xe2\x81\xa9"), "\\u2066x\\u2069"); /* isolates */
  ck_assert_str_eq(esc("a\xe2\x80\x8b"
                       "b"),
                   "a\\u200bb");                            /* ZWSP */
  ck_assert_str_eq(esc("\xe2\x81\xa4"), "\\u2064");         /* invisible plus */
  ck_assert_str_eq(esc("\xe3\x85\xa4"), "\\u3164");         /* Hangul filler */
  ck_assert_str_eq(esc("\xe2\x80\xa8"), "\\u2028");         /* line separator */
  ck_assert_str_eq(esc("\xf3\xa0\x80\x81"), "\\U000e0001"); /* language tag */
  ck_assert_str_eq(esc("\xc2\xad"), "\\u00ad");             /* soft hyphen */
}
END_TEST

START_TEST(bad_utf8_as_bytes) {
  ck_assert_str_eq(esc("a\xff"
                       "b"),
                   "a\\xffb");
  ck_assert_str_eq(esc("\xc0\xaf"), "\\xc0\\xaf");          /* overlong '/' */
  ck_assert_str_eq(esc("\xed\xa0\x80"), "\\xed\\xa0\\x80"); /* a surrogate */
  ck_assert_str_eq(esc("\xe2\x80"), "\\xe2\\x80");          /* cut sequence */
}
END_TEST

START_TEST(cut_at_whole_escapes) {
  char buf[8];
  /* "ab\x1b" needs 6; with 5 bytes of room the escape does not fit whole */
  size_t need = sk__escape_text(buf, 6, "ab\x1b", 3);
  ck_assert_uint_eq(need, 6);
  ck_assert_str_eq(buf, "ab");
  need = sk__escape_text(buf, sizeof(buf), "ab\x1b", 3);
  ck_assert_str_eq(buf, "ab\\x1b");
  ck_assert_uint_eq(sk__escape_text(NULL, 0, "\x1b\x1b", 2), 8);
  /* an embedded NUL is text like any other byte */
  ck_assert_uint_eq(sk__escape_text(buf, sizeof(buf), "a\0b", 3), 6);
  ck_assert_str_eq(buf, "a\\x00b");
}
END_TEST

START_TEST(unsafe_code_points) {
  ck_assert(sk__cp_is_unsafe(0x00));
  ck_assert(sk__cp_is_unsafe(0x9F));
  ck_assert(sk__cp_is_unsafe(0x202A));
  ck_assert(sk__cp_is_unsafe(0xFEFF));
  ck_assert(!sk__cp_is_unsafe(' '));
  ck_assert(!sk__cp_is_unsafe(0xA0));
  ck_assert(!sk__cp_is_unsafe(0x200D));
  ck_assert(!sk__cp_is_unsafe(0xFE0F));
  ck_assert(!sk__cp_is_unsafe(0x1F600));
}
END_TEST

/* --json lines (cli_jsonl_print): the encoder's text with DEL, C1, bidi and
 * format characters inside its strings spelled \uXXXX; the rest as it was */
START_TEST(json_text_made_visible) {
  static const char in[] = "{\"name\":\"a\x7f\xc2\x9b\xe2\x80\xae\xf3\xa0\x80\x81\xff b\","
                           "\"ok\":\"caf\xc3\xa9 \\\"q\\\" \\u001b\",\"n\":1}";
  static const char want[] = "{\"name\":\"a\\u007f\\u009b\\u202e\\udb40\\udc01\\ufffd b\","
                             "\"ok\":\"caf\xc3\xa9 \\\"q\\\" \\u001b\",\"n\":1}";
  char out[256], small[16];
  ck_assert_uint_eq(sk__json_visible(out, sizeof out, in, strlen(in)), strlen(want));
  ck_assert_str_eq(out, want);
  /* cut short, never inside an escape: "{"name":"a" and no part of \u007f */
  ck_assert_uint_eq(sk__json_visible(small, sizeof small, in, strlen(in)), 10);
  ck_assert_str_eq(small, "{\"name\":\"a");
}
END_TEST

/* A code point past U+FFFF is two escapes (a surrogate pair): cut short,
 * both go or neither, never a lone high surrogate. */
START_TEST(surrogate_pair_never_cut) {
  static const char tag[] = "\xf3\xa0\x80\x81"; /* U+E0001, a format character */
  char out[16];
  /* room for the quote and one escape, not two */
  ck_assert_uint_eq(sk__quote_visible(out, 10, tag, 4), 2);
  ck_assert_str_eq(out, "\"\"");
  ck_assert_uint_eq(sk__quote_visible(out, 16, tag, 4), 14);
  ck_assert_str_eq(out, "\"\\udb40\\udc01\"");
  ck_assert_uint_eq(sk__json_visible(out, 9, tag, 4), 0);
  ck_assert_str_eq(out, "");
}
END_TEST

int main(void) {
  Suite *s = suite_create("escape");
  TCase *tc = tcase_create("core");
  int failed;
  tcase_add_test(tc, plain_text_passes);
  tcase_add_test(tc, controls_escaped);
  tcase_add_test(tc, format_and_bidi_escaped);
  tcase_add_test(tc, bad_utf8_as_bytes);
  tcase_add_test(tc, cut_at_whole_escapes);
  tcase_add_test(tc, unsafe_code_points);
  tcase_add_test(tc, json_text_made_visible);
  tcase_add_test(tc, surrogate_pair_never_cut);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
