/* test_chat_names.c - SPEC 4.8 (v2) chat names: which code points a room
 * name or nick may hold, and nick skeletons for confusables (issue 15, 5). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "services/chat.h"

static int valid(const char *name) {
  return chat_valid_name(name, strlen(name));
}

START_TEST(printable_names_pass) {
  static const char *const good[] = {
      "alice",
      "Bob_2",
      "x",
      "名字😀",
      "naïve",
      "Ωmega",
      "דני",
      "ع",
      "a.b-c",
      "🎉",
      "Zürich",
      "e\xcc\x81",                        /* e + combining acute: a mark, drawn on the e */
      "12345678901234567890123456789012", /* 32 bytes */
  };
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    ck_assert_msg(valid(good[i]), "refused %s", good[i]);
}
END_TEST

START_TEST(invisible_and_control_names_fail) {
  static const char *const bad[] = {
      "",
      "has space",
      "tab\there",
      "nl\nx",
      "esc\x1b[2J",
      "del\x7f",
      "c1\xc2\x9b"
      "31m",               /* U+009B CSI */
      "nel\xc2\x85",       /* U+0085 */
      "nb\xc2\xa0sp",      /* U+00A0 no-break space */
      "zw\xe2\x80\x8bsp",  /* U+200B zero width space */
      "in\xe2\x81\xa4vis", /* U+2064 invisible plus */
      "\xe2\x81\xa6"
      "lri", /* U+2066 left-to-right isolate */
      "\xe2\x80\xae"
      "rlo", /* U+202E right-to-left override */
      "\xe2\x80\x8f"
      "rlm", /* U+200F right-to-left mark */
      "\xd8\x9c"
      "alm",          /* U+061C arabic letter mark */
      "\xe3\x85\xa4", /* U+3164 hangul filler */
      "\xe1\x85\x9f"
      "x", /* U+115F hangul choseong filler */
      "\xef\xbe\xa0"
      "x", /* U+FFA0 halfwidth hangul filler */
      "a\xcd\x8f"
      "b",                                 /* U+034F combining grapheme joiner */
      "a\xef\xb8\x8f",                     /* U+FE0F variation selector-16 */
      "bom\xef\xbb\xbf",                   /* U+FEFF */
      "wj\xe2\x81\xa0",                    /* U+2060 word joiner */
      "tag\xf3\xa0\x80\x81",               /* U+E0001 language tag */
      "ls\xe2\x80\xa8",                    /* U+2028 line separator */
      "id\xe3\x80\x80sp",                  /* U+3000 ideographic space */
      "pua\xee\x80\x80",                   /* U+E000 private use */
      "un\xcd\xb8",                        /* U+0378 unassigned */
      "nc\xef\xbf\xbe",                    /* U+FFFE noncharacter */
      "bad\xc0\xaf",                       /* overlong '/' */
      "sur\xed\xa0\x80",                   /* a surrogate */
      "cut\xe2\x82",                       /* truncated sequence */
      "123456789012345678901234567890123", /* 33 bytes */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    ck_assert_msg(!valid(bad[i]), "accepted bad name #%zu", i);
  ck_assert(!chat_valid_name("ab\0c", 4)); /* an embedded NUL */
  ck_assert(!chat_valid_name(NULL, 0));
}
END_TEST

START_TEST(text_is_any_valid_utf8) {
  static const char ok[] = "line\n\ttab \x1b[31m \xe2\x80\xae \xc2\x9b";
  ck_assert(chat_valid_text((const uint8_t *)ok, sizeof(ok) - 1));
  ck_assert(!chat_valid_text((const uint8_t *)"\xff", 1));
  ck_assert(!chat_valid_text((const uint8_t *)"\xed\xa0\x80", 3));
  ck_assert(chat_valid_text((const uint8_t *)"", 0));
}
END_TEST

static int same_nick(struct USpoofChecker *sc, const char *a, const char *b) {
  char *sa = chat_nick_skeleton(sc, a), *sb = chat_nick_skeleton(sc, b);
  int same;
  ck_assert_ptr_nonnull(sa);
  ck_assert_ptr_nonnull(sb);
  same = strcmp(sa, sb) == 0;
  free(sa);
  free(sb);
  return same;
}

START_TEST(confusable_nicks_share_a_skeleton) {
  struct USpoofChecker *sc = NULL;
  ck_assert_int_eq(chat_names_open(&sc), 0);
  ck_assert(same_nick(sc, "alice", "alice"));
  ck_assert(same_nick(sc, "alice", "\xd0\xb0lice"));                 /* Cyrillic a */
  ck_assert(same_nick(sc, "paypal", "\xd1\x80\xd0\xb0yp\xd0\xb0l")); /* Cyrillic r, a */
  ck_assert(same_nick(sc, "modern", "rnodern"));                     /* rn reads as m */
  ck_assert(same_nick(sc, "bill", "biII"));                          /* capital I reads as l */
  ck_assert(same_nick(sc, "caf\xc3\xa9", "cafe\xcc\x81"));           /* composed or not */
  ck_assert(!same_nick(sc, "alice", "bob"));
  ck_assert(!same_nick(sc, "alice", "alicf"));
  chat_names_close(sc);
}
END_TEST

int main(void) {
  Suite *s = suite_create("chat_names");
  TCase *tc = tcase_create("chat_names");
  tcase_add_test(tc, printable_names_pass);
  tcase_add_test(tc, invisible_and_control_names_fail);
  tcase_add_test(tc, text_is_any_valid_utf8);
  tcase_add_test(tc, confusable_nicks_share_a_skeleton);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
