/* test_chat_sources.c - distinct rooms per source address (issue 15, 4). */
#include <check.h>
#include <stdio.h>

#include "services/chat.h"
#include "sockit/error.h"

START_TEST(distinct_rooms_are_capped_per_source) {
  chat_sources *t = chat_sources_new(3);
  ck_assert_ptr_nonnull(t);
  ck_assert_int_eq(chat_sources_enter(t, "10.0.0.1", "a"), 0);
  ck_assert_int_eq(chat_sources_enter(t, "10.0.0.1", "b"), 0);
  ck_assert_int_eq(chat_sources_enter(t, "10.0.0.1", "c"), 0);
  ck_assert_int_eq(chat_sources_enter(t, "10.0.0.1", "d"), SK_EBUSY);
  for (int i = 0; i < 100; i++) /* more members of a room it is in: fine */
    ck_assert_int_eq(chat_sources_enter(t, "10.0.0.1", "a"), 0);
  ck_assert_int_eq(chat_sources_enter(t, "10.0.0.2", "d"), 0); /* another source */
  ck_assert_int_eq(chat_sources_enter(t, "", "e"), 0);         /* not counted */
  chat_sources_exit(t, "10.0.0.1", "b");
  ck_assert_int_eq(chat_sources_enter(t, "10.0.0.1", "d"), 0); /* b's place */
  ck_assert_int_eq(chat_sources_enter(t, "10.0.0.1", "e"), SK_EBUSY);
  for (int i = 0; i < 100; i++)
    chat_sources_exit(t, "10.0.0.1", "a");
  ck_assert_int_eq(chat_sources_enter(t, "10.0.0.1", "e"), SK_EBUSY); /* one a is left */
  chat_sources_exit(t, "10.0.0.1", "a");
  ck_assert_int_eq(chat_sources_enter(t, "10.0.0.1", "e"), 0);
  chat_sources_exit(t, "10.0.0.9", "a"); /* unknown: ignored */
  chat_sources_free(t);                  /* still holding entries: freed */
}
END_TEST

START_TEST(many_sources_come_and_go) {
  chat_sources *t = chat_sources_new(64);
  char key[32], room[16];
  for (int s = 0; s < 1000; s++)
    for (int r = 0; r < 64; r++) {
      snprintf(key, sizeof(key), "uid:%d", s);
      snprintf(room, sizeof(room), "r%d", r);
      ck_assert_int_eq(chat_sources_enter(t, key, room), 0);
    }
  for (int s = 0; s < 1000; s++)
    for (int r = 0; r < 64; r++) {
      snprintf(key, sizeof(key), "uid:%d", s);
      snprintf(room, sizeof(room), "r%d", r);
      chat_sources_exit(t, key, room);
    }
  chat_sources_free(t);
}
END_TEST

int main(void) {
  Suite *s = suite_create("chat_sources");
  TCase *tc = tcase_create("chat_sources");
  tcase_add_test(tc, distinct_rooms_are_capped_per_source);
  tcase_add_test(tc, many_sources_come_and_go);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
