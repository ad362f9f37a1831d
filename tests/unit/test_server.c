/* test_server.c - service registration rules of the server framework. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "sockit/sockit.h"

static int answer(sk_conn *c, const sk_request *req) {
  return 0;
}

static const sk_handler get_handlers[] = {{.type = "get", .handle = answer}, {0}};
static const sk_handler kv_handlers[] = {{.type = "kv", .handle = answer}, {0}};
static const sk_service my_get = {.name = "mine", .handlers = get_handlers};
static const sk_service other_get = {.name = "other", .handlers = get_handlers};
static const sk_service kv = {.name = "kv", .handlers = kv_handlers};

START_TEST(user_service_may_take_over_a_builtin_type) {
  sk_server *srv;
  ck_assert_int_eq(sk_server_new(&srv), 0);
  /* "get" belongs to the built-in files service, which --services may leave out */
  ck_assert_int_eq(sk_server_add_service(srv, &my_get), 0);
  ck_assert_int_eq(sk_server_add_service(srv, &other_get), -EEXIST);
  ck_assert_int_eq(sk_server_add_service(srv, &kv), 0);
  ck_assert_int_eq(sk_server_add_service(srv, &kv), -EEXIST);
  sk_server_free(srv);
}
END_TEST

START_TEST(options_by_name) {
  sk_server *srv;
  const char *why = NULL;
  ck_assert_int_eq(sk_server_new(&srv), 0);
  ck_assert_int_eq(sk_server_set(srv, "max-conns", "12", &why), 0);
  ck_assert_int_eq(sk_server_opt_int(srv, "max-conns"), 12);
  ck_assert_int_eq(sk_server_set(srv, "max-message", "2M", &why), 0);
  ck_assert_int_eq(sk_server_opt_int(srv, "max-message"), 2 << 20);
  ck_assert_int_eq(sk_server_set(srv, "max-conns", "0", &why), -EINVAL);
  ck_assert_ptr_nonnull(why);
  ck_assert_int_eq(sk_server_set(srv, "no-such-flag", "1", &why), -ENOENT);
  ck_assert_int_eq(sk_server_set(srv, "listen", "[::1:80", &why), -EINVAL);
  ck_assert_int_eq(sk_server_set(srv, "allow", "10.0.0.0/33", &why), -EINVAL);
  ck_assert_int_eq(sk_server_set(srv, "allow", "10.0.0.0/8", &why), 0);
  sk_server_free(srv);
}
END_TEST

int main(void) {
  Suite *s = suite_create("server");
  TCase *tc = tcase_create("registration");
  SRunner *sr;
  int failed;
  tcase_add_test(tc, user_service_may_take_over_a_builtin_type);
  tcase_add_test(tc, options_by_name);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
