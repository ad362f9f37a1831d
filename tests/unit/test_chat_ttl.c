/* test_chat_ttl.c - an empty room's history is dropped after its TTL (10
 * minutes; issue 15 item 4). The TTL is the library option
 * "chat-room-ttl" (seconds), so the test runs a server in this process with 1 s
 * instead of waiting ten minutes, and talks to it over a Unix socket. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sockit/sockit.h"

#define TTL_MS 1000

static char dir[64], sock_addr[128];
static sk_server *srv;
static pthread_t runner;

static void *run(void *arg) {
  const char *why = NULL;
  (void)arg;
  ck_assert_int_eq(sk_server_run(srv, 0, &why), 0);
  return NULL;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void set(const char *name, const char *value) {
  const char *why = NULL;
  ck_assert_msg(sk_server_set(srv, name, value, &why) == 0, "%s: %s", name, why ? why : "");
}

static void start_server(void) {
  char ttl[16];
  snprintf(dir, sizeof(dir), "/tmp/sockit-ttl-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(sock_addr, sizeof(sock_addr), "unix:%s/s", dir);
  snprintf(ttl, sizeof(ttl), "%g", TTL_MS / 1000.0);
  ck_assert_int_eq(sk_server_new(&srv), 0);
  set("listen", sock_addr);
  set("no-auth", NULL);
  set("services", "chat");
  set("root", dir);
  set("threads", "1");
  set("chat-room-ttl", ttl);
  sk_server_set_process(srv, SK_PROCESS_SIGNALS); /* as before: no SIGPIPE from a closed peer */
  ck_assert_int_eq(pthread_create(&runner, NULL, run, NULL), 0);
}

static void stop_server(void) {
  char path[160];
  sk_server_stop(srv);
  pthread_join(runner, NULL);
  sk_server_free(srv);
  snprintf(path, sizeof(path), "%s/s", dir);
  unlink(path);
  rmdir(dir);
}

/* Connected once the server listens (bounded wait). */
static sk_client *connect_client(void) {
  sk_client_opts opts = {.no_auth = 1, .timeout_ms = 5000};
  sk_client *c = NULL;
  double deadline = now_ms() + 10000;
  while (sk_client_connect(&c, sock_addr, &opts) < 0 && now_ms() < deadline)
    usleep(10000);
  ck_assert_ptr_nonnull(c);
  return c;
}

static void send_head(sk_client *c, const char *type, const char *room, const char *nick,
                      int64_t history, const char *body) {
  sk_head *h = sk_head_new(type);
  if (room != NULL)
    sk_head_set_str(h, "room", room);
  if (nick != NULL)
    sk_head_set_str(h, "nick", nick);
  if (history >= 0)
    sk_head_set_int(h, "history", history);
  ck_assert_int_eq(sk_client_send(c, h, body, body ? strlen(body) : 0), 0);
  sk_head_free(h);
}

/* Read frames until one of type; count the msg frames on the way. */
static int until(sk_client *c, const char *type) {
  int msgs = 0;
  for (;;) {
    sk_head *h = NULL;
    uint8_t *body = NULL;
    size_t n = 0;
    ck_assert_int_eq(sk_client_recv(c, &h, &body, &n, 1 << 20), 0);
    int done = strcmp(sk_head_type(h), type) == 0;
    ck_assert_str_ne(sk_head_type(h), "error");
    msgs += strcmp(sk_head_type(h), "msg") == 0;
    sk_head_free(h);
    free(body);
    if (done)
      return msgs;
  }
}

/* Join room with "history":10, count the history, leave; the ping makes
 * sure the server has handled the leave. */
static int history_of(sk_client *c, const char *room) {
  send_head(c, "join", room, "reader", 10, NULL);
  until(c, "joined");
  send_head(c, "ping", NULL, NULL, -1, NULL);
  int n = until(c, "pong");
  send_head(c, "leave", room, NULL, -1, NULL);
  send_head(c, "ping", NULL, NULL, -1, NULL);
  until(c, "pong");
  return n;
}

/* alice says n messages in room, then leaves it. */
static void fill_and_leave(sk_client *a, const char *room, int n) {
  send_head(a, "join", room, "alice", -1, NULL);
  until(a, "joined");
  for (int i = 0; i < n; i++) {
    send_head(a, "say", room, NULL, -1, "text");
    until(a, "msg");
  }
  send_head(a, "leave", room, NULL, -1, NULL);
  send_head(a, "ping", NULL, NULL, -1, NULL);
  until(a, "pong");
}

START_TEST(empty_room_history_dropped_after_ttl) {
  start_server();
  sk_client *a = connect_client(), *b = connect_client();
  send_head(a, "join", "busy", "alice", -1, NULL); /* a room that stays occupied */
  until(a, "joined");
  send_head(a, "say", "busy", NULL, -1, "kept");
  until(a, "msg");
  fill_and_leave(a, "lazy", 2);
  fill_and_leave(a, "swept", 3);

  /* empty, within the TTL: kept (each read empties the room again) */
  ck_assert_int_eq(history_of(b, "lazy"), 2);
  ck_assert_int_eq(history_of(b, "swept"), 3);
  double left = now_ms(); /* the server emptied both rooms before this */
  while (now_ms() - left < TTL_MS)
    usleep(10000); /* the TTL itself is what this test waits for */

  /* a join of a new room sweeps the expired ones away ... */
  send_head(a, "join", "new", "alice", -1, NULL);
  until(a, "joined");
  ck_assert_int_eq(history_of(b, "swept"), 0);
  /* ... and a join finds an expired room cleared even between sweeps */
  ck_assert_int_eq(history_of(b, "lazy"), 0);
  ck_assert_int_eq(history_of(b, "busy"), 1); /* an occupied room keeps its history */
  sk_client_close(a);
  sk_client_close(b);
  stop_server();
}
END_TEST

START_TEST(ttl_is_an_option_not_a_flag) {
  const char *why = NULL;
  ck_assert_int_eq(sk_server_new(&srv), 0);
  ck_assert_int_eq(sk_server_opt_int(srv, "chat-history-bytes"), 64 << 20);
  ck_assert_int_eq(sk_server_set(srv, "chat-room-ttl", "0", &why), -EINVAL);
  ck_assert_int_eq(sk_server_set(srv, "chat-room-ttl", "0.25", &why), 0);
  ck_assert_int_eq(sk_server_set(srv, "chat-history-bytes", "1G", &why), 0);
  ck_assert_int_eq(sk_server_opt_int(srv, "chat-history-bytes"), 1 << 30);
  sk_server_free(srv);
}
END_TEST

int main(void) {
  Suite *s = suite_create("chat_ttl");
  TCase *tc = tcase_create("chat_ttl");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, empty_room_history_dropped_after_ttl);
  tcase_add_test(tc, ttl_is_an_option_not_a_flag);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
