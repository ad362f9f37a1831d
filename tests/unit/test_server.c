/* test_server.c - service registration rules of the server framework. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sockit/sockit.h"

static int answer(sk_conn *c, const sk_request *req) {
  return 0;
}

/* later: the answer comes from a task posted to the connection's loop
 * (sk_conn_post), after the handler has returned. */
static void answer_later(void *arg) {
  sk_conn *c = arg;
  if (!sk_conn_is_closing(c)) {
    sk_head *h = sk_head_new("later");
    sk_conn_send(c, h, NULL, 0);
    sk_head_free(h);
    sk_conn_done(c);
  }
  sk_conn_unref(c);
}

static int handle_later(sk_conn *c, const sk_request *req) {
  sk_conn_ref(c);
  if (sk_conn_post(c, answer_later, c) < 0) {
    sk_conn_unref(c);
    return -ENOMEM;
  }
  return SK_ASYNC;
}

static const sk_handler later_handlers[] = {{.type = "later", .handle = handle_later}, {0}};
static const sk_service later = {.name = "later", .handlers = later_handlers};

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

/* ---- the services' options: declared in their tables (service.h) ------- */

START_TEST(service_options_by_name) {
  sk_server *srv;
  const char *why = NULL, *arg = NULL, *help = NULL, *name;
  int seen_switch = 0, seen_ttl = 0;
  ck_assert_int_eq(sk_server_new(&srv), 0);
  /* defaults from the tables, values parsed by the core */
  ck_assert_int_eq(sk_server_opt_int(srv, "exec-timeout"), 300);
  ck_assert_int_eq(sk_server_opt_int(srv, "allow-exec"), 0);
  ck_assert_int_eq(sk_server_opt_int(srv, "udp-lease"), 120000);
  ck_assert_int_eq(sk_server_set(srv, "exec-timeout", "7", &why), 0);
  ck_assert_int_eq(sk_server_opt_int(srv, "exec-timeout"), 7);
  ck_assert_int_eq(sk_server_set(srv, "exec-timeout", "0", &why), -EINVAL);
  ck_assert_str_eq(why, "expected a number in range");
  ck_assert_int_eq(sk_server_set(srv, "udp-lease", "1.5", &why), 0);
  ck_assert_int_eq(sk_server_opt_int(srv, "udp-lease"), 1500);
  ck_assert_int_eq(sk_server_set(srv, "chat-history-bytes", "1G", &why), 0);
  ck_assert_int_eq(sk_server_opt_int(srv, "chat-history-bytes"), 1 << 30);
  ck_assert_int_eq(sk_server_set(srv, "allow-exec", NULL, &why), 0);
  ck_assert_int_eq(sk_server_opt_int(srv, "allow-exec"), 1);
  ck_assert_int_eq(sk_server_set(srv, "exec-user", "nobody", &why), 0);
  ck_assert_int_eq(sk_server_set(srv, "exec-user", NULL, &why), -EINVAL);
  ck_assert_int_eq(sk_server_opt_int(srv, "exec-user"), -1); /* a string */
  /* the list --help is made from: every table's flags, in order */
  for (int i = 0; (name = sk_server_option(srv, i, &arg, &help)) != NULL; i++) {
    if (strcmp(name, "allow-exec") == 0) {
      seen_switch = 1;
      ck_assert_ptr_null(arg); /* a flag */
      ck_assert_ptr_nonnull(help);
    }
    if (strcmp(name, "chat-room-ttl") == 0) {
      seen_ttl = 1;
      ck_assert_ptr_null(help); /* not a command-line flag */
    }
  }
  ck_assert(seen_switch && seen_ttl);
  ck_assert_ptr_null(sk_server_option(srv, -1, NULL, NULL));
  sk_server_free(srv);
}
END_TEST

/* ---- --services governs the application's services too (issue 16 item 17) */

typedef struct running {
  sk_server *srv;
  pthread_t t;
  char path[64], addr[80];
  int rc;
} running;

static void *run_thread(void *arg) {
  running *r = arg;
  const char *why = NULL;
  r->rc = sk_server_run(r->srv, 0, &why);
  return NULL;
}

/* A --no-auth server on a fresh Unix socket with kv registered and the
 * services option as given (NULL: left at its default). */
static void start(running *r, const char *services) {
  const char *why = NULL;
  snprintf(r->path, sizeof(r->path), "/tmp/sk-unit-%d-%p.sock", (int)getpid(), (void *)r);
  snprintf(r->addr, sizeof(r->addr), "unix:%s", r->path);
  unlink(r->path);
  ck_assert_int_eq(sk_server_new(&r->srv), 0);
  ck_assert_int_eq(sk_server_add_service(r->srv, &kv), 0);
  ck_assert_int_eq(sk_server_add_service(r->srv, &later), 0);
  ck_assert_int_eq(sk_server_set(r->srv, "listen", r->addr, &why), 0);
  ck_assert_int_eq(sk_server_set(r->srv, "no-auth", NULL, &why), 0);
  ck_assert_int_eq(sk_server_set(r->srv, "threads", "1", &why), 0);
  if (services != NULL)
    ck_assert_int_eq(sk_server_set(r->srv, "services", services, &why), 0);
  ck_assert_int_eq(pthread_create(&r->t, NULL, run_thread, r), 0);
}

static void stop(running *r) {
  sk_server_stop(r->srv);
  pthread_join(r->t, NULL);
  ck_assert_int_eq(r->rc, 0);
  sk_server_free(r->srv);
  unlink(r->path);
}

/* Connect (retrying while the server starts) and ask for kv. */
static int ask_kv(running *r, int *offered) {
  /* kv's handler answers nothing: served means no answer in 300 ms */
  sk_client_opts o = {.no_auth = 1, .timeout_ms = 300};
  sk_client *c = NULL;
  sk_head *req = sk_head_new("kv");
  int rc = -1;
  for (int i = 0; i < 500 && (rc = sk_client_connect(&c, r->addr, &o)) < 0; i++)
    usleep(10000);
  ck_assert_int_eq(rc, 0);
  *offered = sk_client_has_service(c, "kv");
  rc = sk_client_request(c, req, NULL, 0, NULL, NULL, NULL);
  sk_head_free(req);
  sk_client_close(c);
  return rc;
}

START_TEST(user_service_served_by_default) {
  running r = {0};
  int offered;
  start(&r, NULL);
  ck_assert_int_eq(ask_kv(&r, &offered), -ETIMEDOUT);
  ck_assert(offered);
  stop(&r);
}
END_TEST

START_TEST(user_service_left_out_of_services_is_not_served) {
  running r = {0};
  int offered;
  start(&r, "echo,time");
  ck_assert_int_eq(ask_kv(&r, &offered), SK_EUNKNOWNTYPE); /* kv has no off_message */
  ck_assert(!offered);
  stop(&r);
}
END_TEST

START_TEST(user_service_named_in_services_is_served) {
  running r = {0};
  int offered;
  start(&r, "echo,kv");
  ck_assert_int_eq(ask_kv(&r, &offered), -ETIMEDOUT);
  ck_assert(offered);
  stop(&r);
}
END_TEST

START_TEST(posted_task_answers_on_the_connections_loop) {
  running r = {0};
  sk_client_opts o = {.no_auth = 1, .timeout_ms = 5000};
  sk_client *c = NULL;
  sk_head *req = sk_head_new("later"), *resp = NULL;
  int rc = -1;
  start(&r, NULL);
  for (int i = 0; i < 500 && (rc = sk_client_connect(&c, r.addr, &o)) < 0; i++)
    usleep(10000);
  ck_assert_int_eq(rc, 0);
  for (int i = 0; i < 3; i++) { /* in order, one after the other */
    ck_assert_int_eq(sk_client_request(c, req, NULL, 0, &resp, NULL, NULL), 0);
    ck_assert_str_eq(sk_head_type(resp), "later");
    sk_head_free(resp);
  }
  sk_head_free(req);
  sk_client_close(c);
  stop(&r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("server");
  TCase *tc = tcase_create("registration");
  SRunner *sr;
  int failed;
  tcase_add_test(tc, user_service_may_take_over_a_builtin_type);
  tcase_add_test(tc, options_by_name);
  tcase_add_test(tc, service_options_by_name);
  tcase_add_test(tc, user_service_served_by_default);
  tcase_add_test(tc, user_service_left_out_of_services_is_not_served);
  tcase_add_test(tc, user_service_named_in_services_is_served);
  tcase_add_test(tc, posted_task_answers_on_the_connections_loop);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
