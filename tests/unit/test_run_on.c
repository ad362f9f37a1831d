/* test_run_on.c - sk_server_run_on (issue 14): a server on the
 * application's libuv loop. The application's loop connects to it and
 * reads the hello, stops it, and sees done() once, after which the loop
 * holds nothing of the server (uv_run returns, uv_loop_close succeeds).
 * With one loop and with two (the second on its own thread); a start-up
 * that fails leaves nothing on the loop and never calls done(). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sockit/sockit.h"
#include "sockit/uv.h"

typedef struct app {
  uv_loop_t loop;
  uv_tcp_t tcp;
  uv_connect_t req;
  uv_timer_t guard; /* fails the test if it hangs */
  sk_server *srv;
  int port;
  char got[512];
  size_t ngot;
  int done_calls;
  int tcp_open, guard_open;
} app;

static void on_notice(void *ctx, sk_notice_level level, const char *text) {
  app *a = ctx;
  sscanf(text, "listening on 127.0.0.1:%d", &a->port);
}

static void on_guard(uv_timer_t *t) {
  ck_abort_msg("the server did not answer and stop within 10 s");
}

static void close_guard(app *a) {
  if (a->guard_open) {
    a->guard_open = 0;
    uv_close((uv_handle_t *)&a->guard, NULL);
  }
}

static void on_done(sk_server *srv, void *ctx) {
  app *a = ctx;
  ck_assert_ptr_eq(srv, a->srv);
  a->done_calls++;
  close_guard(a);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  app *a = h->data;
  *buf = uv_buf_init(a->got + a->ngot, (unsigned)(sizeof(a->got) - 1 - a->ngot));
}

/* A whole frame: 4-byte big-endian head length, then the head. */
static int have_frame(const app *a) {
  size_t n;
  if (a->ngot < 4)
    return 0;
  n = ((size_t)(uint8_t)a->got[0] << 24) | ((size_t)(uint8_t)a->got[1] << 16) |
      ((size_t)(uint8_t)a->got[2] << 8) | (uint8_t)a->got[3];
  return a->ngot >= 4 + n;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  app *a = s->data;
  ck_assert_msg(n >= 0 || n == UV_EOF, "read: %s", uv_strerror((int)n));
  if (n > 0)
    a->ngot += (size_t)n;
  if (n < 0 || have_frame(a) || a->ngot == sizeof(a->got) - 1) {
    a->got[a->ngot] = '\0';
    uv_close((uv_handle_t *)s, NULL);
    sk_server_stop(a->srv); /* from the loop's own thread */
  }
}

static void on_connect(uv_connect_t *req, int status) {
  app *a = req->data;
  ck_assert_msg(status == 0, "connect: %s", uv_strerror(status));
  uv_read_start((uv_stream_t *)&a->tcp, on_alloc, on_read);
}

static sk_server *new_server(app *a, const char *threads, const char *services) {
  sk_server *srv = NULL;
  const char *why = NULL;
  ck_assert_int_eq(sk_server_new(&srv), 0);
  sk_server_on_notice(srv, on_notice, a);
  sk_server_set_process(srv, SK_PROCESS_SIGNALS);
  ck_assert_int_eq(sk_server_set(srv, "listen", "127.0.0.1:0", &why), 0);
  ck_assert_int_eq(sk_server_set(srv, "services", services, &why), 0);
  ck_assert_int_eq(sk_server_set(srv, "threads", threads, &why), 0);
  ck_assert_int_eq(sk_server_set(srv, "no-auth", NULL, &why), 0);
  return srv;
}

static void serve_once(const char *threads) {
  app a = {0};
  struct sockaddr_in sin;
  const char *why = NULL;
  ck_assert_int_eq(uv_loop_init(&a.loop), 0);
  a.srv = new_server(&a, threads, "echo");
  ck_assert_int_eq(sk_server_run_on(a.srv, &a.loop, on_done, &a, &why), 0);
  ck_assert_ptr_null(why);
  ck_assert_int_gt(a.port, 0); /* bound before run_on returned */
  uv_timer_init(&a.loop, &a.guard);
  uv_timer_start(&a.guard, on_guard, 10000, 0);
  a.guard_open = 1;
  uv_tcp_init(&a.loop, &a.tcp);
  a.tcp.data = a.req.data = &a;
  uv_ip4_addr("127.0.0.1", a.port, &sin);
  ck_assert_int_eq(uv_tcp_connect(&a.req, &a.tcp, (struct sockaddr *)&sin, on_connect), 0);
  ck_assert_int_eq(uv_run(&a.loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(a.done_calls, 1);
  ck_assert_msg(have_frame(&a) && strstr(a.got + 4, "\"type\":\"hello\"") != NULL &&
                    strstr(a.got + 4, "\"services\":[\"echo\"]") != NULL,
                "no hello: %s", a.ngot > 4 ? a.got + 4 : "");
  ck_assert_int_eq(uv_loop_close(&a.loop), 0); /* nothing of the server left on it */
  sk_server_free(a.srv);
}

START_TEST(test_one_loop) {
  serve_once("1");
}
END_TEST

START_TEST(test_two_loops) {
  serve_once("2");
}
END_TEST

START_TEST(test_stopped_before_its_first_turn) {
  app a = {0};
  ck_assert_int_eq(uv_loop_init(&a.loop), 0);
  a.srv = new_server(&a, "2", "echo");
  ck_assert_int_eq(sk_server_run_on(a.srv, &a.loop, on_done, &a, NULL), 0);
  sk_server_stop(a.srv);
  ck_assert_int_eq(uv_run(&a.loop, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(a.done_calls, 1);
  ck_assert_int_eq(uv_loop_close(&a.loop), 0);
  sk_server_free(a.srv);
}
END_TEST

START_TEST(test_failed_start_leaves_nothing) {
  app a = {0};
  const char *why = NULL;
  ck_assert_int_eq(uv_loop_init(&a.loop), 0);
  a.srv = new_server(&a, "2", "echo,nosuch"); /* a service nobody registered */
  ck_assert_int_lt(sk_server_run_on(a.srv, &a.loop, on_done, &a, &why), 0);
  ck_assert_ptr_nonnull(why);
  ck_assert_int_eq(uv_run(&a.loop, UV_RUN_DEFAULT), 0); /* no handle of the server */
  ck_assert_int_eq(a.done_calls, 0);
  ck_assert_int_eq(uv_loop_close(&a.loop), 0);
  sk_server_free(a.srv);
}
END_TEST

int main(void) {
  Suite *s = suite_create("run_on");
  TCase *tc = tcase_create("run_on");
  SRunner *sr;
  int failed;
  tcase_set_timeout(tc, 30);
  tcase_add_test(tc, test_one_loop);
  tcase_add_test(tc, test_two_loops);
  tcase_add_test(tc, test_stopped_before_its_first_turn);
  tcase_add_test(tc, test_failed_start_leaves_nothing);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
