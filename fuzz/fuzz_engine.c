/* fuzz_engine.c - the connection engine (src/net/engine.[ch]) on its own:
 * no socket, no loop. The input is a program: reads of frames (or, in
 * wild mode, of raw bytes), reads into a sink's lent memory, and
 * interleavings of done, resume, close, a full output and deadlines, with
 * the run queue simulated as the plumbing does it (done/resume only mark
 * the engine runnable; a later step runs it).
 *
 * Invariants checked (a broken one aborts):
 *  - no frame is handled twice and frames are handled in order: the ids
 *    the handlers see only grow (frames carry 1, 2, 3, ... in order);
 *  - a request that is not SK_H_FOLLOW never starts while one is active;
 *  - nothing is handled after close;
 *  - a sink gets no more bytes than its body has, hears its end at most
 *    once, and nothing once its request ended;
 *  - an idle deadline never fires while a request is in progress;
 *  - every buffer is released: heads, gather buffers and state go with
 *    sk__engine_free (LeakSanitizer), lent memory is told back exactly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "net/core.h"
#include "net/engine.h"
#include "sockit/error.h"

#define BUF_CAP 4096
#define LEND_CAP 64

typedef struct fz {
  sk_engine e;
  uint8_t buf[BUF_CAP];
  uint8_t lend[LEND_CAP];
  int wild;           /* raw bytes were read: ids are not ours */
  int64_t last_id;    /* the last id a handler saw */
  int64_t next_id;    /* the next frame's id */
  int closed;         /* the host closed the connection */
  int out_full;       /* the host's queue is over its pause mark */
  int runnable;       /* done/resume asked for a run (the run queue) */
  size_t sink_take;   /* most bytes the sink takes per call */
  int sink_fail;      /* the sink's next call fails */
  ssize_t lend_room;  /* what the sink's body_buf offers */
  size_t lent;        /* bytes of lend[] handed out for the read in progress */
  uint64_t body_left; /* the streamed body's bytes not yet taken (-1: none) */
  int in_sink;        /* a streamed body is open for the sink */
  uint64_t now;
} fz;

static sk_server fz_srv;
static int fz_ready;

static void fz_close(sk_conn *c, int err) {
  fz *f = (fz *)c;
  (void)err;
  f->closed = 1;
  sk__engine_close(&f->e);
}

static int fz_send_error(sk_conn *c, const sk_head *id_src, int err, const char *msg) {
  fz *f = (fz *)c;
  int64_t id;
  (void)msg;
  sk__engine_answered(&f->e, id_src, err);
  /* a refused frame is answered in its turn: never before an earlier one */
  if (!f->wild && id_src != NULL && sk_head_int(id_src, "id", &id) == 0)
    FUZZ_CHECK(id >= f->last_id);
  return 0;
}

static void fz_auth(sk_conn *c, const sk_head *h) {
  fz *f = (fz *)c;
  const char *mac = sk_head_str(h, "mac");
  if (f->e.authed)
    return;
  if (mac != NULL && strcmp(mac, "ok") == 0)
    sk__engine_authed(&f->e);
  else
    fz_close(c, SK_EAUTHFAIL);
}

static int fz_out_full(sk_conn *c) {
  return ((fz *)c)->out_full;
}

static void fz_count(sk_conn *c, int slot, int err, uint32_t n, uint64_t t0) {
  (void)c, (void)slot, (void)err, (void)n, (void)t0;
}

static const sk_engine_host fz_host = {
    .send_error = fz_send_error,
    .close = fz_close,
    .auth = fz_auth,
    .out_full = fz_out_full,
    .count = fz_count,
};

/* Every handler call: in order, once, never after close, and a request
 * that is not a follower only when none is active. */
static void handled(fz *f, const sk_request *r, int follow) {
  int64_t id = 0;
  FUZZ_CHECK(!f->closed && !f->e.closed);
  if (f->wild)
    return;
  FUZZ_CHECK(sk_head_int(r->head, "id", &id) == 0);
  FUZZ_CHECK(id > f->last_id);
  f->last_id = id;
  if (!follow)
    FUZZ_CHECK(!f->e.active);
}

static int on_quick(sk_conn *c, const sk_request *r) {
  handled((fz *)c, r, 0);
  return 0;
}
static int on_slow(sk_conn *c, const sk_request *r) {
  handled((fz *)c, r, 0);
  return SK_ASYNC;
}
static int on_follow(sk_conn *c, const sk_request *r) {
  handled((fz *)c, r, 1);
  return 0;
}
static int on_fail(sk_conn *c, const sk_request *r) {
  handled((fz *)c, r, 0);
  return SK_EBADREQ;
}
static int on_gather(sk_conn *c, const sk_request *r) {
  handled((fz *)c, r, 0);
  FUZZ_CHECK(r->size == 0 || r->body != NULL);
  volatile uint8_t x = 0;
  for (uint64_t i = 0; i < r->size; i++) /* every byte is readable (ASan) */
    x ^= r->body[i];
  (void)x;
  return 0;
}
static int on_up(sk_conn *c, const sk_request *r) {
  fz *f = (fz *)c;
  handled(f, r, 0);
  f->body_left = r->size;
  f->in_sink = 1;
  return SK_ASYNC;
}
static ssize_t up_body(sk_conn *c, void *state, const uint8_t *data, size_t n) {
  fz *f = (fz *)c;
  (void)state;
  FUZZ_CHECK(f->in_sink && f->e.active && !f->closed);
  if (data == NULL) { /* the end: heard once, after the whole body */
    FUZZ_CHECK(f->body_left == 0);
    f->in_sink = 0;
    return 0;
  }
  if (f->sink_fail) {
    f->sink_fail = 0;
    f->in_sink = 0;
    return SK_EINTERNAL;
  }
  size_t k = n < f->sink_take ? n : f->sink_take;
  FUZZ_CHECK(k <= f->body_left);
  f->body_left -= k;
  return (ssize_t)k;
}
static ssize_t up_buf(sk_conn *c, void *state, uint8_t **buf) {
  fz *f = (fz *)c;
  (void)state;
  FUZZ_CHECK(f->in_sink && f->e.active);
  *buf = f->lend;
  return f->lend_room;
}
static void up_got(sk_conn *c, void *state, size_t n) {
  fz *f = (fz *)c;
  (void)state;
  FUZZ_CHECK(f->in_sink && n <= f->lent && n <= f->body_left);
  f->body_left -= n;
  f->lent = 0;
}

static const sk_handler fz_handlers[] = {
    {.type = "quick", .handle = on_quick},
    {.type = "slow", .handle = on_slow},
    {.type = "follow", .handle = on_follow, .flags = SK_H_FOLLOW},
    {.type = "fail", .handle = on_fail},
    {.type = "gather", .handle = on_gather, .max_body = 300},
    {.type = "up",
     .handle = on_up,
     .body = up_body,
     .body_buf = up_buf,
     .body_got = up_got,
     .flags = SK_H_STREAM,
     .max_body = 100000},
    {0},
};
static const sk_service fz_svc = {.name = "fz", .handlers = fz_handlers};
static const char *const fz_types[] = {"quick",  "slow", "follow", "fail",
                                       "gather", "up",   "auth",   "nosuch"};

static void fz_init_server(void) {
  fz_srv.services[0] = &fz_svc;
  fz_srv.enabled[0] = 1;
  fz_srv.nservices = 1;
  for (int i = 0; fz_handlers[i].type != NULL; i++)
    fz_srv.handlers[fz_srv.nhandlers++] = (sk_handler_ref){&fz_handlers[i], 0};
  fz_ready = 1;
}

/* ---- the program -------------------------------------------------------- */

/* Room for n more bytes in the read buffer, moving what is left to the
 * front as the plumbing does; NULL when it is full (it stops reading). */
static uint8_t *room(fz *f, size_t n) {
  if (f->e.rlen + n > BUF_CAP && f->e.rpos > 0) {
    memmove(f->buf, f->buf + f->e.rpos, f->e.rlen - f->e.rpos);
    f->e.rlen -= f->e.rpos;
    f->e.rpos = 0;
  }
  return f->e.rlen + n <= BUF_CAP ? f->buf + f->e.rlen : NULL;
}

static void run(fz *f) {
  f->runnable = 0;
  f->e.now = f->now;
  if (!f->closed) /* the plumbing runs no closed connection */
    sk__engine_run(&f->e);
}

/* A frame of a type the input picks, the next id, a small body (or one
 * over its limit), delivered in one read or cut in two. */
static void read_frame(fz *f, fz_in *x) {
  char head[160];
  uint8_t pick = fz_byte(x);
  const char *type = fz_types[pick % 8];
  size_t body = fz_byte(x) % 64;
  if (pick & 0x80)
    body = 250 + (size_t)fz_byte(x) * 2; /* near and over gather's limit */
  int hl = strcmp(type, "auth") == 0
               ? snprintf(head, sizeof(head), "{\"type\":\"auth\",\"mac\":\"%s\"}",
                          fz_byte(x) & 1 ? "ok" : "no")
           : body ? snprintf(head, sizeof(head), "{\"type\":\"%s\",\"id\":%lld,\"size\":%zu}", type,
                             (long long)f->next_id, body)
                  : snprintf(head, sizeof(head), "{\"type\":\"%s\",\"id\":%lld}", type,
                             (long long)f->next_id);
  if (strcmp(type, "auth") == 0)
    body = 0;
  size_t total = 4 + (size_t)hl + body, cut = total;
  if (pick & 0x40)
    cut = fz_byte(x) % (total + 1);
  uint8_t *p = room(f, total);
  if (p == NULL)
    return;
  f->next_id++;
  p[0] = p[1] = 0;
  p[2] = (uint8_t)(hl >> 8);
  p[3] = (uint8_t)hl;
  memcpy(p + 4, head, (size_t)hl);
  for (size_t i = 0; i < body; i++)
    p[4 + hl + i] = fz_byte(x);
  f->e.rlen += cut;
  run(f);
  if (cut < total && !f->closed) {
    /* the rest: the run may have moved nothing (rpos only grows) */
    f->e.rlen += total - cut;
    run(f);
  }
}

static void read_raw(fz *f, fz_in *x) {
  size_t n = fz_byte(x) % 128;
  uint8_t *p = room(f, n);
  if (p == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    p[i] = fz_byte(x);
  f->e.rlen += n;
  run(f);
}

/* A read into the sink's memory, when the engine lends it. */
static void read_lent(fz *f, fz_in *x) {
  uint8_t *p = NULL;
  ssize_t r = f->closed ? -1 : sk__engine_lend(&f->e, &p);
  if (r <= 0)
    return; /* -1: into the read buffer; 0: the sink paused */
  FUZZ_CHECK(p == f->lend && (size_t)r <= LEND_CAP && (uint64_t)r <= f->body_left);
  size_t n = 1 + fz_byte(x) % (size_t)r;
  memset(p, 0xab, n);
  f->lent = (size_t)r;
  f->e.got = n;
  run(f);
  FUZZ_CHECK(f->e.got == 0 || f->closed);
}

static void step(fz *f, fz_in *x) {
  uint8_t op = fz_byte(x);
  switch (op % 12) {
  case 0:
  case 1:
  case 2:
    if (f->wild)
      read_raw(f, x);
    else
      read_frame(f, x);
    break;
  case 3:
    read_lent(f, x);
    break;
  case 4: /* the service ends its request (any time, also twice) */
    if (sk__engine_done(&f->e)) {
      f->in_sink = 0;
      f->runnable = 1;
    }
    break;
  case 5:
    if (sk__engine_resume(&f->e))
      f->runnable = 1;
    break;
  case 6: /* the loop's turn: the run queue */
    if (f->runnable)
      run(f);
    break;
  case 7:
    f->out_full = !f->out_full;
    if (!f->out_full)
      run(f); /* the queue drained: the plumbing processes again */
    break;
  case 8: {
    uint64_t wait = 0;
    f->now += (uint64_t)fz_byte(x) * 1000;
    switch (sk__engine_deadline(&f->e, f->now, 100000, &wait)) {
    case SK_DEADLINE_WAIT:
      FUZZ_CHECK(wait > 0);
      break;
    case SK_DEADLINE_IDLE:
      FUZZ_CHECK(f->e.authed && !sk__engine_busy(&f->e));
      fz_close((sk_conn *)f, SK_ETIMEOUT);
      break;
    case SK_DEADLINE_AUTH:
      FUZZ_CHECK(!f->e.authed);
      fz_close((sk_conn *)f, SK_ETIMEOUT);
      break;
    }
    break;
  }
  case 9:
    if (op & 0x10)
      fz_close((sk_conn *)f, 0);
    break;
  case 10:
    f->sink_take = op >> 4 == 0 ? (size_t)-1 : op >> 4;
    f->lend_room = (ssize_t)(op >> 5) * 9 - 9; /* -9 (copy), 0 (no room), ... 54 */
    if (f->lend_room < 0)
      f->lend_room = -1;
    break;
  case 11:
    f->sink_fail = (op & 0x30) == 0x30;
    break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static fz f;
  fz_in x = {data, size};
  uint8_t mode = fz_byte(&x);
  if (!fz_ready)
    fz_init_server();
  sk__engine_init(&f.e, &fz_host, (sk_conn *)&f, &fz_srv, mode & 2 ? 256 : 0);
  memset(&f.buf, 0, sizeof(f.buf)); /* keeps f.e */
  f.wild = mode & 1;
  f.last_id = 0;
  f.next_id = 1;
  f.closed = f.out_full = f.runnable = f.sink_fail = f.in_sink = 0;
  f.sink_take = (size_t)-1;
  f.lend_room = -1;
  f.lent = 0;
  f.body_left = 0;
  f.now = 0;
  f.e.native = 1;
  f.e.authed = !(mode & 2);
  f.e.auth_by = 10000;
  f.e.rbuf = f.buf;
  for (int steps = 0; x.n > 0 && steps < 256; steps++)
    step(&f, &x);
  /* the last turns: what is runnable runs, then the connection closes */
  if (f.runnable)
    run(&f);
  sk__engine_free(&f.e);
  return 0;
}
