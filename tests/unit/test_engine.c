/* test_engine.c - the connection engine's states (src/net/engine.[ch]),
 * driven without a socket or a loop: a fake host records what the engine
 * asks for, fake handlers record what they are given, and the tests feed
 * bytes and call done / resume / deadline as the plumbing would. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/core.h"
#include "net/engine.h"
#include "sockit/error.h"

/* ---- the fake connection ------------------------------------------------ */

#define LOG_MAX 64

typedef struct fake {
  sk_engine e;
  sk_server *srv;
  uint8_t buf[64 * 1024]; /* the read buffer lent to the engine */
  /* what happened, in order: "slow:1" = handler slow for id 1, "err:2:-N",
   * "close:-N", "body:3:n", "end:3" */
  char log[LOG_MAX][48];
  int nlog;
  int out_full;      /* the host's output is over its pause mark */
  size_t sink_take;  /* most bytes the sink takes per call */
  size_t sink_total; /* bytes the sink took */
  uint32_t counted;  /* requests the host was told about */
  int closes;
} fake;

static fake *F; /* the handlers' way back: sk_conn is the fake itself */

static void note(fake *f, const char *fmt, int64_t a, int64_t b) {
  ck_assert_int_lt(f->nlog, LOG_MAX);
  snprintf(f->log[f->nlog++], sizeof(f->log[0]), fmt, (long long)a, (long long)b);
}

static int64_t id_of(const sk_head *h) {
  int64_t id = -1;
  sk_head_int(h, "id", &id);
  return id;
}

static int host_send_error(sk_conn *c, const sk_head *id_src, int err, const char *msg) {
  fake *f = (fake *)c;
  (void)msg;
  sk__engine_answered(&f->e, id_src, err);
  note(f, "err:%lld:%lld", id_src ? id_of(id_src) : -1, err);
  return 0;
}

static void host_close(sk_conn *c, int err) {
  fake *f = (fake *)c;
  f->closes++;
  note(f, "close:%lld", err, 0);
  sk__engine_close(&f->e);
}

static void host_auth(sk_conn *c, const sk_head *h) {
  fake *f = (fake *)c;
  const char *mac = sk_head_str(h, "mac");
  if (f->e.authed)
    return;
  if (mac != NULL && strcmp(mac, "right") == 0)
    sk__engine_authed(&f->e);
  else
    host_close(c, SK_EAUTHFAIL);
}

static int host_out_full(sk_conn *c) {
  return ((fake *)c)->out_full;
}

static void host_count(sk_conn *c, int slot, int err, uint32_t n, uint64_t t0) {
  (void)slot, (void)err, (void)t0;
  ((fake *)c)->counted += n;
}

static const sk_engine_host fake_host = {
    .send_error = host_send_error,
    .close = host_close,
    .auth = host_auth,
    .out_full = host_out_full,
    .count = host_count,
};

/* ---- the fake service --------------------------------------------------- */

static int on_quick(sk_conn *c, const sk_request *r) {
  note((fake *)c, "quick:%lld", id_of(r->head), 0);
  return 0;
}
static int on_slow(sk_conn *c, const sk_request *r) {
  note((fake *)c, "slow:%lld", id_of(r->head), 0);
  return SK_ASYNC;
}
static int on_follow(sk_conn *c, const sk_request *r) {
  note((fake *)c, "follow:%lld", id_of(r->head), 0);
  return 0;
}
static int on_gather(sk_conn *c, const sk_request *r) {
  /* the body is whole: bytes i are (uint8_t)i */
  for (uint64_t i = 0; i < r->size; i++)
    ck_assert_uint_eq(r->body[i], (uint8_t)i);
  note((fake *)c, "gather:%lld:%lld", id_of(r->head), (int64_t)r->size);
  return 0;
}
static int on_up(sk_conn *c, const sk_request *r) {
  note((fake *)c, "up:%lld", id_of(r->head), 0);
  return SK_ASYNC;
}
static ssize_t up_body(sk_conn *c, void *state, const uint8_t *data, size_t n) {
  fake *f = (fake *)c;
  (void)state;
  if (data == NULL) {
    note(f, "end:%lld", (int64_t)f->sink_total, 0);
    return 0;
  }
  size_t k = n < f->sink_take ? n : f->sink_take;
  f->sink_total += k;
  return (ssize_t)k;
}

static const sk_handler handlers[] = {
    {.type = "quick", .handle = on_quick},
    {.type = "slow", .handle = on_slow},
    {.type = "follow", .handle = on_follow, .flags = SK_H_FOLLOW},
    {.type = "gather", .handle = on_gather, .max_body = 1000},
    {.type = "up", .handle = on_up, .body = up_body, .flags = SK_H_STREAM, .max_body = 1 << 20},
    {0},
};
static const sk_service fake_svc = {.name = "fake", .handlers = handlers};

static void setup(void) {
  F = calloc(1, sizeof(*F));
  F->srv = calloc(1, sizeof(*F->srv));
  F->srv->services[0] = &fake_svc;
  F->srv->enabled[0] = 1;
  F->srv->nservices = 1;
  for (int i = 0; handlers[i].type != NULL; i++)
    F->srv->handlers[F->srv->nhandlers++] = (sk_handler_ref){&handlers[i], 0};
  sk__engine_init(&F->e, &fake_host, (sk_conn *)F, F->srv, 0);
  F->e.native = 1;
  F->e.authed = 1;
  F->e.rbuf = F->buf;
  F->sink_take = (size_t)-1;
}

static void teardown(void) {
  sk__engine_free(&F->e);
  free(F->srv);
  free(F);
}

/* Append a frame {"type":T,"id":ID[,"size":N]} + N body bytes (i as byte i). */
static void feed(const char *type, int id, size_t n) {
  char head[128];
  int hl = n ? snprintf(head, sizeof(head), "{\"type\":\"%s\",\"id\":%d,\"size\":%zu}", type, id, n)
             : snprintf(head, sizeof(head), "{\"type\":\"%s\",\"id\":%d}", type, id);
  uint8_t *p = F->buf + F->e.rlen;
  ck_assert_uint_le(F->e.rlen + 4 + (size_t)hl + n, sizeof(F->buf));
  p[0] = 0, p[1] = 0, p[2] = (uint8_t)(hl >> 8), p[3] = (uint8_t)hl;
  memcpy(p + 4, head, (size_t)hl);
  for (size_t i = 0; i < n; i++)
    p[4 + hl + i] = (uint8_t)i;
  F->e.rlen += 4 + (size_t)hl + n;
}

static void run(void) {
  sk__engine_run(&F->e);
}

static void expect(int n, ...) {
  va_list ap;
  va_start(ap, n);
  ck_assert_int_eq(F->nlog, n);
  for (int i = 0; i < n; i++)
    ck_assert_str_eq(F->log[i], va_arg(ap, const char *));
  va_end(ap);
}

/* ---- tests -------------------------------------------------------------- */

START_TEST(pipelined_frames_in_order) {
  feed("quick", 1, 0);
  feed("quick", 2, 0);
  feed("gather", 3, 10);
  run();
  expect(3, "quick:1", "quick:2", "gather:3:10");
  ck_assert_uint_eq(F->e.rpos, F->e.rlen);
  ck_assert_uint_eq(F->counted, 3);
  ck_assert(!sk__engine_busy(&F->e));
}
END_TEST

START_TEST(active_request_holds_the_next) {
  feed("slow", 1, 0);
  feed("quick", 2, 0);
  run();
  expect(1, "slow:1");
  ck_assert(sk__engine_busy(&F->e));
  ck_assert(sk__engine_blocked(&F->e)); /* the quick head waits */
  ck_assert_int_eq(sk__engine_resume(&F->e), 0);
  ck_assert_int_eq(sk__engine_done(&F->e), 1); /* the host would schedule a run */
  expect(1, "slow:1");                         /* done itself dispatches nothing */
  ck_assert_int_eq(sk__engine_done(&F->e), 0); /* a second done changes nothing */
  run();
  expect(2, "slow:1", "quick:2");
  ck_assert(!sk__engine_busy(&F->e));
}
END_TEST

START_TEST(follow_frames_pass_the_active_request) {
  feed("slow", 1, 0);
  feed("follow", 2, 0);
  feed("quick", 3, 0);
  feed("follow", 4, 0);
  run();
  expect(2, "slow:1", "follow:2");
  sk__engine_done(&F->e);
  run();
  expect(4, "slow:1", "follow:2", "quick:3", "follow:4");
}
END_TEST

START_TEST(gathered_body_split_across_reads) {
  feed("gather", 7, 500);
  size_t all = F->e.rlen;
  F->e.rlen = all - 300; /* the rest has not come yet */
  run();
  expect(0);
  ck_assert_int_eq(F->e.bmode, SK_BODY_GATHER);
  F->e.rlen = all;
  run();
  expect(1, "gather:7:500");
  ck_assert_int_eq(F->e.bmode, SK_BODY_NONE);
}
END_TEST

START_TEST(sink_pauses_and_resumes) {
  F->sink_take = 300;
  feed("up", 1, 1000);
  feed("quick", 2, 0);
  run();
  expect(1, "up:1");
  ck_assert(F->e.sink_paused);
  ck_assert_uint_eq(F->sink_total, 300);
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(sk__engine_resume(&F->e), 1);
    run();
  }
  ck_assert_uint_eq(F->sink_total, 1000);
  expect(2, "up:1", "end:1000"); /* the sink hears the end once; quick waits */
  sk__engine_done(&F->e);
  run();
  expect(3, "up:1", "end:1000", "quick:2");
}
END_TEST

START_TEST(done_mid_body_discards_the_rest) {
  F->sink_take = 100;
  feed("up", 1, 1000);
  feed("quick", 2, 0);
  run();
  sk__engine_done(&F->e); /* the service gave up: no more body for it */
  sk__engine_resume(&F->e);
  run();
  ck_assert_uint_eq(F->sink_total, 100);
  expect(2, "up:1", "quick:2");
}
END_TEST

START_TEST(over_limit_body_is_refused_and_skipped) {
  feed("gather", 1, 2000); /* limit 1000 */
  feed("quick", 2, 0);
  run();
  char err[32];
  snprintf(err, sizeof(err), "err:1:%d", SK_ETOOLARGE);
  expect(2, err, "quick:2");
}
END_TEST

START_TEST(unknown_type_is_refused) {
  feed("nosuch", 5, 3);
  feed("quick", 6, 0);
  run();
  ck_assert_int_eq(F->nlog, 2);
  char err[32];
  snprintf(err, sizeof(err), "err:5:%d", SK_EUNKNOWNTYPE);
  ck_assert_str_eq(F->log[0], err);
  ck_assert_str_eq(F->log[1], "quick:6");
}
END_TEST

START_TEST(full_output_takes_nothing) {
  F->out_full = 1;
  feed("quick", 1, 0);
  run();
  expect(0);
  F->out_full = 0;
  run();
  expect(1, "quick:1");
}
END_TEST

START_TEST(garbage_closes) {
  memcpy(F->buf, "\xff\xff\xff\xff{}", 6);
  F->e.rlen = 6;
  run();
  ck_assert_int_eq(F->closes, 1);
  ck_assert(F->e.closed);
}
END_TEST

START_TEST(closed_engine_takes_nothing) {
  feed("quick", 1, 0);
  sk__engine_close(&F->e);
  run();
  expect(0);
}
END_TEST

START_TEST(auth_first) {
  F->e.authed = 0;
  const char *auth = "{\"type\":\"auth\",\"mac\":\"right\"}";
  size_t n = strlen(auth);
  F->buf[0] = F->buf[1] = F->buf[2] = 0;
  F->buf[3] = (uint8_t)n;
  memcpy(F->buf + 4, auth, n);
  F->e.rlen = 4 + n;
  feed("quick", 2, 0);
  run();
  ck_assert(F->e.authed);
  expect(1, "quick:2");
}
END_TEST

START_TEST(frame_before_auth_closes) {
  F->e.authed = 0;
  feed("quick", 1, 0);
  feed("quick", 2, 0);
  run();
  ck_assert_int_eq(F->closes, 1);
  ck_assert_int_eq(F->nlog, 1); /* no handler ran */
  ck_assert_int_eq(strncmp(F->log[0], "close:", 6), 0);
}
END_TEST

START_TEST(deadlines) {
  uint64_t wait = 0;
  F->e.authed = 0;
  F->e.auth_by = 10000;
  ck_assert_int_eq(sk__engine_deadline(&F->e, 4000, 300000, &wait), SK_DEADLINE_WAIT);
  ck_assert_uint_eq(wait, 6000);
  ck_assert_int_eq(sk__engine_deadline(&F->e, 10000, 300000, &wait), SK_DEADLINE_AUTH);
  F->e.authed = 1;
  F->e.last_active = 1000;
  ck_assert_int_eq(sk__engine_deadline(&F->e, 1600, 1000, &wait), SK_DEADLINE_WAIT);
  ck_assert_uint_eq(wait, 400);
  ck_assert_int_eq(sk__engine_deadline(&F->e, 2000, 1000, &wait), SK_DEADLINE_IDLE);
  feed("slow", 1, 0); /* a request in progress is not idleness */
  F->e.now = 2000;
  run();
  ck_assert_int_eq(sk__engine_deadline(&F->e, 9000, 1000, &wait), SK_DEADLINE_WAIT);
  ck_assert_uint_eq(wait, 1000);
  sk__engine_done(&F->e);
  ck_assert_int_eq(sk__engine_deadline(&F->e, 2500, 1000, &wait), SK_DEADLINE_WAIT);
  ck_assert_uint_eq(wait, 500); /* idle counts from the last frame */
}
END_TEST

static Suite *engine_suite(void) {
  Suite *s = suite_create("engine");
  TCase *tc = tcase_create("states");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, pipelined_frames_in_order);
  tcase_add_test(tc, active_request_holds_the_next);
  tcase_add_test(tc, follow_frames_pass_the_active_request);
  tcase_add_test(tc, gathered_body_split_across_reads);
  tcase_add_test(tc, sink_pauses_and_resumes);
  tcase_add_test(tc, done_mid_body_discards_the_rest);
  tcase_add_test(tc, over_limit_body_is_refused_and_skipped);
  tcase_add_test(tc, unknown_type_is_refused);
  tcase_add_test(tc, full_output_takes_nothing);
  tcase_add_test(tc, garbage_closes);
  tcase_add_test(tc, closed_engine_takes_nothing);
  tcase_add_test(tc, auth_first);
  tcase_add_test(tc, frame_before_auth_closes);
  tcase_add_test(tc, deadlines);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(engine_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
