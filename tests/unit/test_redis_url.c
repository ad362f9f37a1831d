/* test_redis_url.c - --chat-redis addresses and password files (SPEC 9). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "services/redis_link.h"

START_TEST(urls_that_parse) {
  redis_target t;
  const char *why = NULL;
  ck_assert_int_eq(redis_target_parse(&t, "redis://127.0.0.1:6380/2", &why), 0);
  ck_assert_str_eq(t.ip, "127.0.0.1");
  ck_assert_int_eq(t.port, 6380);
  ck_assert_int_eq(t.db, 2);
  ck_assert_str_eq(t.path, "");
  ck_assert_int_eq(redis_target_parse(&t, "redis://127.0.0.1", &why), 0); /* 6379, DB 0 */
  ck_assert_int_eq(t.port, 6379);
  ck_assert_int_eq(t.db, 0);
  ck_assert_int_eq(redis_target_parse(&t, "redis://[::1]:7000/", &why), 0);
  ck_assert_str_eq(t.ip, "::1");
  ck_assert_int_eq(t.port, 7000);
  ck_assert_int_eq(redis_target_parse(&t, "redis://localhost:6379", &why), 0); /* resolved */
  ck_assert(t.ip[0] != '\0');
  ck_assert_int_eq(redis_target_parse(&t, "unix:/run/redis/redis.sock", &why), 0);
  ck_assert_str_eq(t.path, "/run/redis/redis.sock");
  ck_assert_str_eq(t.text, "unix:/run/redis/redis.sock");
}
END_TEST

START_TEST(urls_that_do_not) {
  static const char *const bad[] = {
      "",
      "http://127.0.0.1:6379",
      "redis://",
      "redis://h:0",
      "redis://h:x",
      "redis://h:65536",
      "redis://h:1/x",
      "redis://u:pw@127.0.0.1",
      "unix:",
      "redis://[::1",
      "redis://[::1]x:1",
      "redis://127.0.0.1:6379/-1",
  };
  redis_target t;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    const char *why = NULL;
    ck_assert_msg(redis_target_parse(&t, bad[i], &why) < 0, "%s parsed", bad[i]);
    ck_assert_ptr_nonnull(why);
  }
}
END_TEST

START_TEST(password_file) {
  char path[] = "/tmp/sk-redis-pwXXXXXX";
  int fd = mkstemp(path);
  redis_target t = {0};
  const char *why = NULL;
  FILE *f;
  ck_assert_int_ge(fd, 0);
  f = fdopen(fd, "w");
  fputs("s3cret word\r\nsecond line\n", f);
  fclose(f);
  ck_assert_int_eq(redis_target_password(&t, path, &why), 0);
  ck_assert_str_eq(t.password, "s3cret word"); /* the first line, no CR/LF */
  f = fopen(path, "w");
  fputs("\n", f);
  fclose(f);
  ck_assert_int_eq(redis_target_password(&t, path, &why), -EINVAL); /* empty */
  unlink(path);
  ck_assert_int_eq(redis_target_password(&t, path, &why), -ENOENT);
  ck_assert_ptr_nonnull(why);
}
END_TEST

int main(void) {
  Suite *s = suite_create("redis_url");
  TCase *tc = tcase_create("core");
  SRunner *sr;
  int failed;
  tcase_add_test(tc, urls_that_parse);
  tcase_add_test(tc, urls_that_do_not);
  tcase_add_test(tc, password_file);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
