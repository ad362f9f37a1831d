/* test_sized.c - public structs that callers fill carry their size
 * (issue 14): a caller's struct, longer (built against a newer libsockit)
 * or ABI 1's (size 0), is read member by member as far as both know, so
 * structs can grow without breaking programs built before. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/sized.h"
#include "sockit/sockit.h"

/* ---- the copy itself ---------------------------------------------------- */

typedef struct v2 {
  size_t size;
  int a, b; /* ABI 1 ends at b */
  int c;    /* added later */
} v2;

START_TEST(test_copy_zero_size_is_abi1) {
  v2 given = {.size = 0, .a = 1, .b = 2, .c = 3}, whole;
  ck_assert_ptr_eq(sk__sized_copy(&whole, sizeof(whole), &given, SK__END_OF(v2, b)), &whole);
  ck_assert_int_eq(whole.a, 1);
  ck_assert_int_eq(whole.b, 2);
  ck_assert_int_eq(whole.c, 0); /* not ABI 1's: not read */
  ck_assert_uint_eq(whole.size, sizeof(v2));
}
END_TEST

START_TEST(test_copy_longer_is_cut_shorter_is_zero_filled) {
  struct {
    v2 known;
    int future;
  } longer = {{.size = sizeof(longer), .a = 1, .b = 2, .c = 3}, 4};
  v2 whole;
  size_t old_size = SK__END_OF(v2, a);
  v2 shorter = {.size = old_size, .a = 5, .b = 6, .c = 7};
  sk__sized_copy(&whole, sizeof(whole), &longer, SK__END_OF(v2, b));
  ck_assert_int_eq(whole.c, 3);
  sk__sized_copy(&whole, sizeof(whole), &shorter, SK__END_OF(v2, b));
  ck_assert_int_eq(whole.a, 5);
  ck_assert_int_eq(whole.b, 0);
  ck_assert_int_eq(whole.c, 0);
  ck_assert_ptr_null(sk__sized_copy(&whole, sizeof(whole), NULL, SK__END_OF(v2, b)));
  ck_assert_int_eq(whole.a, 0);
}
END_TEST

/* ---- a server and a client whose tables come from a "newer" library ----- */

typedef struct newer_handler {
  sk_handler h;
  uint64_t future[3]; /* members this library does not know */
} newer_handler;

typedef struct newer_service {
  sk_service s;
  void *future[2];
} newer_service;

typedef struct newer_opts {
  sk_client_opts o;
  char future[40];
} newer_opts;

static int answer(sk_conn *c, const sk_request *req) {
  sk_head *h = sk_head_new("got");
  int rc = sk_head_set_str(h, "what", req->type);
  if (rc == 0)
    rc = sk_conn_send(c, h, NULL, 0);
  sk_head_free(h);
  return rc;
}

static const newer_handler handlers[] = {
    {{.size = sizeof(newer_handler), .type = "first", .handle = answer}, {1, 2, 3}},
    {{.size = sizeof(newer_handler), .type = "second", .handle = answer}, {4, 5, 6}},
    {{.size = sizeof(newer_handler)}, {7, 8, 9}},
};

static sk_server *srv;

static void *run(void *arg) {
  const char *why = NULL;
  (void)arg;
  ck_assert_int_eq(sk_server_run(srv, 0, &why), 0);
  return NULL;
}

static void ask(sk_client *c, const char *type) {
  sk_head *req = sk_head_new(type), *resp = NULL;
  ck_assert_int_eq(sk_client_request(c, req, NULL, 0, &resp, NULL, NULL), 0);
  ck_assert_str_eq(sk_head_type(resp), "got");
  ck_assert_str_eq(sk_head_str(resp, "what"), type);
  sk_head_free(req);
  sk_head_free(resp);
}

START_TEST(test_newer_tables_and_options_work) {
  char dir[] = "/tmp/sockit-sized-XXXXXX", addr[64], sock[64];
  newer_service svc = {{.size = sizeof(newer_service), .name = "newer", .handlers = &handlers[0].h},
                       {&svc, &svc}};
  newer_opts opts = {{.size = sizeof(newer_opts), .no_auth = 1, .timeout_ms = 5000},
                     "members this library does not know"};
  const char *why = NULL;
  sk_client *c = NULL;
  pthread_t runner;
  int rc = -1;

  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(addr, sizeof(addr), "unix:%s/s", dir);
  snprintf(sock, sizeof(sock), "%s/s", dir);
  ck_assert_int_eq(sk_server_new(&srv), 0);
  ck_assert_int_eq(sk_server_set(srv, "listen", addr, &why), 0);
  ck_assert_int_eq(sk_server_set(srv, "services", "newer", &why), 0);
  ck_assert_int_eq(sk_server_set(srv, "no-auth", NULL, &why), 0);
  ck_assert_int_eq(sk_server_set(srv, "threads", "1", &why), 0);
  sk_server_set_process(srv, SK_PROCESS_SIGNALS);
  ck_assert_int_eq(sk_server_add_service(srv, &svc.s), 0);
  memset(&svc, 0xa5, sizeof(svc)); /* the server keeps its own copy */
  ck_assert_int_eq(pthread_create(&runner, NULL, run, NULL), 0);
  /* the socket is there once the server listens: wait for it, bounded */
  for (int i = 0; i < 500 && (rc = sk_client_connect(&c, addr, &opts.o)) < 0; i++)
    usleep(10000);
  ck_assert_int_eq(rc, 0);
  ask(c, "first");
  ask(c, "second");
  sk_client_close(c);
  sk_server_stop(srv);
  ck_assert_int_eq(pthread_join(runner, NULL), 0);
  sk_server_free(srv);
  unlink(sock);
  rmdir(dir);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("sized");
  TCase *tc = tcase_create("sized");
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_copy_zero_size_is_abi1);
  tcase_add_test(tc, test_copy_longer_is_cut_shorter_is_zero_filled);
  tcase_add_test(tc, test_newer_tables_and_options_work);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  int failed;
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
