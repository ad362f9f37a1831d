/* conn.c - a native-wire connection's plumbing: the socket, the transport,
 * the timer and the lifetime around its protocol engine (engine.c), and the
 * engine's host (auth checks, error frames, the output's pause mark). The
 * write side is wqueue.c.
 *
 * The way a request travels: bytes land in a lazily allocated read buffer
 * lent to the engine; process() runs the engine, which cuts heads out of it,
 * takes only an auth frame until auth_ok (host_auth checks it), then hands
 * each head to the handler that registered its type, with the body gathered
 * whole or streamed to the handler's sink. Responses are encoded straight
 * into the write queue and flushed once per loop iteration as one
 * scatter-gather write. sk_conn_done / sk_conn_resume put the connection on
 * its loop's run queue; the loop runs it before it flushes.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/conn_int.h"
#include "net/core.h"
#include "net/fastsend.h"
#include "sockit/error.h"
#include "sockit/version.h"
#include "tls/tls.h"
#include "wire/text.h"

static void process(sk_conn *c);
static void on_timer(uv_timer_t *t);
static void update_reading(sk_conn *c);

/* ---- small helpers ------------------------------------------------------ */

static uint64_t now_ms(sk_conn *c) {
  return uv_now(&c->loop->uv);
}

sk_loop *sk__conn_loop(const sk_conn *c) {
  return c->loop;
}

const char *sk__conn_source(const sk_conn *c) {
  return c->src;
}
sk_server *sk_conn_server(const sk_conn *c) {
  return c->srv;
}
const char *sk_conn_peer(const sk_conn *c) {
  return c->peer;
}
int sk_conn_authenticated(const sk_conn *c) {
  return c->eng.authed && c->srv->auth;
}
int sk_conn_is_closing(const sk_conn *c) {
  return c->closing;
}
size_t sk_conn_queued(const sk_conn *c) {
  return c->queued + c->deferred_bytes;
}
int sk_conn_congested(sk_conn *c) {
  if (c->queued <= SK_WQ_PAUSE)
    return 0;
  c->congested = 1; /* so that .drained runs once the peer catches up */
  return 1;
}
int sk__conn_active(const sk_conn *c) {
  return sk__engine_busy(&c->eng);
}

void sk_conn_ref(sk_conn *c) {
  atomic_fetch_add(&c->refs, 1);
}

static void conn_free(sk_conn *c) {
  if (c->tp->release != NULL)
    c->tp->release(c);
  sk__wq_free(c);
  sk__engine_free(&c->eng);
  if (c->eng.rbuf != NULL)
    sk__rbuf_put(c->loop, c->eng.rbuf);
  free(c);
}

void *sk__conn_adapter_state(const sk_conn *c) {
  return c->ad_state;
}
void sk__conn_set_adapter_state(sk_conn *c, void *state) {
  c->ad_state = state;
}
uint8_t *sk__conn_rbuf(sk_conn *c, size_t *rpos, size_t *rlen) {
  *rpos = c->eng.rpos;
  *rlen = c->eng.rlen;
  return c->eng.rbuf;
}
void sk__conn_set_rbuf(sk_conn *c, size_t rpos, size_t rlen) {
  c->eng.rpos = rpos;
  c->eng.rlen = rlen;
}
int sk__conn_send_error(sk_conn *c, int err) {
  return sk__send_error(c, sk__id_source(c), err, NULL);
}
void sk__conn_abort(sk_conn *c) {
  sk__conn_hard_close(c);
}

void sk_conn_unref(sk_conn *c) {
  if (atomic_fetch_sub(&c->refs, 1) == 1)
    conn_free(c);
}

void sk_conn_log(sk_conn *c, const char *event, ...) {
  va_list ap;
  va_start(ap, event);
  if (c->eng.authed || c->srv->log == NULL)
    sk__log_eventv(c->srv->log, c->peer, event, ap);
  else /* before authentication: limited per source */
    sk__log_preauthv(c->srv->log, c->src, sk__now_mono(), c->peer, event, ap);
  va_end(ap);
}

/* ---- closing ------------------------------------------------------------ */

static void on_close(uv_handle_t *handle) {
  sk_conn *c = handle->data;
  if (--c->handles_open > 0)
    return;
  sk__engine_finish(&c->eng);
  if (c->ad != NULL && c->ad->finish != NULL)
    c->ad->finish(c);
  if (c->prev)
    c->prev->next = c->next;
  else
    c->loop->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  if (c->counted)
    atomic_fetch_sub(&c->srv->nconns, 1);
  sk__mi_add(&c->loop->metrics.conns_open[c->lidx], -1);
  sk_conn_log(c, "close", "bytes_in", 'i', (int64_t)c->bytes_in, "bytes_out", 'i',
              (int64_t)c->bytes_out, "duration", 'f', (double)(uv_hrtime() - c->t_start) / 1e9,
              NULL);
  sk_conn_unref(c);
}

void sk__conn_hard_close(sk_conn *c) {
  if (c->hard_closing)
    return;
  c->hard_closing = c->closing = 1;
  sk__engine_close(&c->eng);
  uv_close(&c->h.handle, on_close);
  uv_close((uv_handle_t *)&c->timer, on_close);
}

static void on_linger_timeout(uv_timer_t *t) {
  sk__conn_hard_close(t->data);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  sk_conn *c = req->data;
  free(req);
  if (status < 0 || c->eof)
    sk__conn_hard_close(c);
  sk_conn_unref(c);
}

/* Nothing waits to be written: neither in the queue nor in the transport. */
static int drained(const sk_conn *c) {
  return c->queued == 0 && (c->tp->unsent == NULL || c->tp->unsent(c) == 0);
}

/* Everything owed is written: half-close, then drain what the peer still
 * sends for a moment so that our last frame is not lost to a reset. */
static void finish_close(sk_conn *c) {
  uv_shutdown_t *req;
  if (c->hard_closing || c->lingering)
    return;
  c->lingering = 1;
  if (c->tp->goodbye != NULL)
    c->tp->goodbye(c);
  uv_timer_start(&c->timer, on_linger_timeout, SK_LINGER_MS, 0);
  if ((req = malloc(sizeof(*req))) == NULL) { /* closing only: not worth a field */
    sk__conn_hard_close(c);
    return;
  }
  req->data = c;
  if (uv_shutdown(req, &c->h.stream, on_shutdown) < 0) {
    free(req);
    sk__conn_hard_close(c);
    return;
  }
  sk_conn_ref(c);
  update_reading(c);
}

void sk_conn_close(sk_conn *c, int err) {
  if (c->closing)
    return;
  if (c->ad != NULL && c->ad->closing != NULL)
    c->ad->closing(c, err); /* it sends the error frame, if any, itself */
  else if (err < 0)
    sk__send_error(c, sk__id_source(c), err, NULL);
  c->closing = 1;
  sk__engine_close(&c->eng);
  update_reading(c);
  if (drained(c)) {
    finish_close(c);
  } else {
    sk__mark_dirty(c);
    /* a peer that does not read its last frames does not hold us long */
    uv_timer_start(&c->timer, on_timer, SK_CLOSE_GRACE_MS, 0);
  }
}

void sk__conn_after_drain(sk_conn *c) {
  if (c->hard_closing)
    return;
  if (c->closing) {
    if (drained(c))
      finish_close(c);
    return;
  }
  if (c->congested && c->queued < SK_WQ_LOW) {
    c->congested = 0;
    sk__engine_drained(&c->eng);
    process(c);
  }
}

static void stop_all(sk_loop *l) {
  for (sk_conn *c = l->conns, *next; c != NULL; c = next) {
    next = c->next;
    c->stop_when_idle = 1;
    if (!sk__conn_active(c))
      sk_conn_close(c, 0);
  }
}

static void close_all(sk_loop *l) {
  for (sk_conn *c = l->conns, *next; c != NULL; c = next) {
    next = c->next;
    sk__conn_hard_close(c);
  }
}

/* ---- the engine's host -------------------------------------------------- */

/* Authenticate (engine.h: the host checks auth frames). Before auth_ok
 * the nonce of the hello decides; after it, a --no-auth server answers a
 * client that always authenticates, and an authenticating one refuses. */
static void host_auth(sk_conn *c, const sk_head *h) {
  const char *cn = sk_head_str(h, "nonce"), *mac = sk_head_str(h, "mac");
  const char *src = c->src;
  double now = sk__now_mono();
  char expect[SK_MAC_HEX + 1], reply[SK_MAC_HEX + 1];
  sk_head *ok;

  if (c->eng.authed) {
    if (c->srv->auth) {
      sk__send_error(c, h, SK_EBADREQ, "already authenticated");
    } else if ((ok = sk_head_new("auth_ok")) != NULL) {
      sk__send_frame(c, ok, h, 0);
      sk_head_free(ok);
    }
  } else if (sk__ratelimit_blocked(c->srv->rl, src, now) > 0) {
    sk__conn_metric(c, SK_M_RATE_LIMITED, 1);
    sk_conn_close(c, SK_ERATELIMIT);
  } else if (cn == NULL || mac == NULL || !sk_auth_is_hex64(cn) ||
             sk_auth_client_mac(&c->srv->key, c->nonce, cn, expect) < 0 ||
             !sk_auth_mac_equal(mac, expect)) {
    sk__ratelimit_fail(c->srv->rl, src, now);
    sk__conn_metric(c, SK_M_AUTH_FAILURES, 1);
    sk_conn_log(c, "auth_fail", NULL);
    sk_conn_close(c, SK_EAUTHFAIL);
  } else if (sk_auth_server_mac(&c->srv->key, c->nonce, cn, reply) == 0 &&
             (ok = sk_head_new("auth_ok")) != NULL) {
    sk__engine_authed(&c->eng);
    sk__ratelimit_success(c->srv->rl, src, now);
    sk_head_set_str(ok, "mac", reply);
    sk__send_frame(c, ok, h, 0);
    sk_head_free(ok);
    sk_conn_log(c, "auth_ok", NULL);
    uv_timer_start(&c->timer, on_timer, (uint64_t)c->srv->cfg.idle_timeout * 1000, 0);
  } else {
    sk_conn_close(c, SK_EINTERNAL);
  }
}

static int host_out_full(sk_conn *c) {
  if (c->queued <= SK_WQ_PAUSE)
    return 0;
  c->congested = 1; /* the peer is not reading: read again once it drained */
  return 1;
}

/* Application bytes the transport still holds (TLS: undecrypted records). */
static ssize_t host_pull(sk_conn *c) {
  return c->tp->pull != NULL ? c->tp->pull(c) : 0;
}

/* The adapter owns the bytes until it starts the engine: bytes it left
 * when its answers filled the queue go on, while it makes progress (the
 * engine's queue check pauses it again). */
static int host_adapt(sk_conn *c) {
  sk_engine *e = &c->eng;
  size_t before = e->rpos;
  if (c->ad == NULL)
    return 0;
  if (e->rpos == e->rlen)
    return host_pull(c) > 0; /* TLS: decrypted bytes went through the adapter */
  if (c->ad->input(c, e->rpos) < 0 || (e->rpos == before && !e->native))
    return 0;
  return 1;
}

static void host_count(sk_conn *c, int slot, int err, uint32_t n, uint64_t t0) {
  sk__metric_requests(&c->loop->metrics, slot, err, n, t0, uv_hrtime());
}

static const sk_engine_host conn_host = {
    .send_error = sk__send_error,
    .close = sk_conn_close,
    .auth = host_auth,
    .out_full = host_out_full,
    .pull = host_pull,
    .adapt = host_adapt,
    .count = host_count,
};

/* ---- running the engine ------------------------------------------------- */

void sk__conn_process(sk_conn *c) {
  process(c);
}

/* Run the engine over what was read, then settle the plumbing: give back
 * an emptied read buffer, close a stopping connection that went idle, and
 * read again (or not). The caller holds a reference (process, run queue). */
static void run_engine(sk_conn *c) {
  sk_engine *e = &c->eng;
  e->now = now_ms(c);
  sk__engine_run(e);
  if (e->rbuf != NULL && e->rpos == e->rlen) {
    sk__rbuf_put(c->loop, e->rbuf); /* idle connections hold no buffer */
    e->rbuf = NULL;
    e->rpos = e->rlen = 0;
  }
  if (c->stop_when_idle && !sk__engine_busy(e))
    sk_conn_close(c, 0);
  update_reading(c);
}

static void process(sk_conn *c) {
  if (c->eng.running) {
    c->eng.rerun = 1;
    return;
  }
  sk_conn_ref(c);
  run_engine(c);
  sk_conn_unref(c);
}

/* sk_conn_done and sk_conn_resume come from anywhere on the loop: a
 * service's after-work callback, a child's exit, another connection's
 * handler. They do not re-enter the engine; the connection joins the
 * loop's run queue, which runs before the loop flushes and blocks
 * (sk__conn_run_queue). Inside the engine's own run they only ask for
 * another pass. */
static void schedule(sk_conn *c) {
  if (c->eng.running || c->runnable || c->hard_closing)
    return;
  c->runnable = 1;
  sk_conn_ref(c); /* the run queue's reference */
  c->next_run = c->loop->runq;
  c->loop->runq = c;
  sk__loop_want_turn(c->loop);
}

void sk__conn_run_queue(sk_loop *l) {
  sk_conn *c;
  while ((c = l->runq) != NULL) {
    l->runq = c->next_run;
    c->runnable = 0;
    if (!c->hard_closing && !c->eng.running)
      run_engine(c); /* under the queue's reference */
    sk_conn_unref(c);
  }
}

void sk_conn_done(sk_conn *c) {
  if (sk__engine_done(&c->eng))
    schedule(c);
}

void sk_conn_resume(sk_conn *c) {
  if (sk__engine_resume(&c->eng))
    schedule(c);
}

/* ---- reading ------------------------------------------------------------ */

/* In a streamed body whose sink lends memory: read straight into it
 * (sk__engine_lend). Returns 0 to read into the read buffer instead. */
static int lend(sk_conn *c, uv_buf_t *buf) {
  uint8_t *p = NULL;
  ssize_t room;
  if (c->ad != NULL || c->closing || (room = sk__engine_lend(&c->eng, &p)) < 0)
    return 0;
  buf->base = (char *)p; /* room 0: on_read sees UV_ENOBUFS and stops reading */
  buf->len = (size_t)room;
  c->lent = room > 0;
  return 1;
}

void sk__conn_app_buf(sk_conn *c, uv_buf_t *buf) {
  sk_engine *e = &c->eng;
  if (lend(c, buf))
    return;
  if (e->rbuf == NULL) {
    e->rbuf = sk__rbuf_get(c->loop);
    e->rpos = e->rlen = 0;
    if (e->rbuf == NULL) {
      buf->base = NULL;
      buf->len = 0;
      return;
    }
  }
  if (e->rpos > 0 && SK_RBUF_SIZE - e->rlen < SK_PREFIX_LEN + SK_HEAD_MAX) {
    memmove(e->rbuf, e->rbuf + e->rpos, e->rlen - e->rpos); /* once per batch */
    e->rlen -= e->rpos;
    e->rpos = 0;
  }
  buf->base = (char *)e->rbuf + e->rlen;
  buf->len = SK_RBUF_SIZE - e->rlen;
}

/* n application bytes landed where sk__conn_app_buf said. A wire adapter
 * (adapter.h) turns new bytes in the read buffer into native ones first.
 * Returns -1 when the adapter closed the connection. */
static int app_bytes(sk_conn *c, size_t n, int lent) {
  size_t at = c->eng.rlen;
  if (lent) {
    c->eng.got = n; /* the engine tells the sink first: nothing is buffered */
    return 0;
  }
  c->eng.rlen += n;
  if (c->ad != NULL && (c->ad->input(c, at) < 0 || c->hard_closing))
    return -1;
  return 0;
}

void sk__conn_app_got(sk_conn *c, size_t n) {
  int lent = c->lent;
  c->lent = 0;
  app_bytes(c, n, lent); /* an adapter that closed: process sees closing */
}

void sk__conn_eof(sk_conn *c, ssize_t why) {
  c->eof = 1;
  /* A half-close after complete requests still gets its answers; a peer
   * gone in the middle of a request (or any error) ends it at once. */
  if (c->lingering || why != UV_EOF || sk__engine_busy(&c->eng))
    sk__conn_hard_close(c);
  else
    sk_conn_close(c, 0);
}

/* ---- the plain transport: libuv reads into the application's memory ---- */

static void plain_read(sk_conn *c, size_t n, int lent) {
  if (c->closing) { /* lingering: drop what arrives */
    c->eng.rlen = c->eng.rpos = 0;
    return;
  }
  if (app_bytes(c, n, lent) == 0)
    process(c);
}

static int plain_can_read(const sk_conn *c) {
  return c->eng.rbuf == NULL || c->eng.rlen < SK_RBUF_SIZE || c->eng.rpos > 0;
}

const sk_transport sk__plain_transport = {
    .name = "plain",
    .alloc = sk__conn_app_buf,
    .read = plain_read,
    .can_read = plain_can_read,
    .flush = sk__wq_flush_plain,
};

static void on_alloc(uv_handle_t *handle, size_t hint, uv_buf_t *buf) {
  sk_conn *c = handle->data;
  c->tp->alloc(c, buf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  sk_conn *c = stream->data;
  int lent = c->lent;
  c->lent = 0;
  if (nread == 0)
    return;
  if (nread == UV_ENOBUFS && c->eng.sink_paused) { /* the sink had no room (lend) */
    update_reading(c);
    return;
  }
  if (nread < 0) {
    sk__conn_eof(c, nread);
    return;
  }
  c->bytes_in += (uint64_t)nread;
  c->eng.t_read = uv_hrtime();
  sk__mu_add(&c->loop->metrics.bytes_in, (uint64_t)nread);
  c->tp->read(c, (size_t)nread, lent);
}

void sk__conn_budget_pause(sk_conn *c, int paused) {
  c->budget_paused = paused != 0;
  update_reading(c);
}

static void update_reading(sk_conn *c) {
  int want = !c->hard_closing && !c->eof && (c->lingering || !sk__engine_blocked(&c->eng)) &&
             !c->congested && !c->budget_paused && c->tp->can_read(c);
  if (want && !c->reading)
    c->reading = uv_read_start(&c->h.stream, on_alloc, on_read) == 0;
  else if (!want && c->reading) {
    uv_read_stop(&c->h.stream);
    c->reading = 0;
  }
}

/* ---- timers ------------------------------------------------------------- */

static void on_timer(uv_timer_t *t) {
  sk_conn *c = t->data;
  uint64_t idle = (uint64_t)c->srv->cfg.idle_timeout * 1000, wait = 0;
  if (c->closing) {
    sk__conn_hard_close(c);
    return;
  }
  if (!c->eng.native && c->ad != NULL) {
    c->ad->timeout(c);
    return;
  }
  if (!c->eng.authed && c->tp->deadline != NULL && c->tp->deadline(c))
    return; /* a silent peer on a TLS port: told and closed */
  switch (sk__engine_deadline(&c->eng, now_ms(c), idle, &wait)) {
  case SK_DEADLINE_WAIT:
    uv_timer_start(&c->timer, on_timer, wait, 0);
    break;
  case SK_DEADLINE_AUTH:
    sk_conn_log(c, "auth_timeout", NULL);
    sk_conn_close(c, SK_ETIMEOUT);
    break;
  case SK_DEADLINE_IDLE:
    sk_conn_log(c, "idle_timeout", NULL);
    sk_conn_close(c, SK_ETIMEOUT);
    break;
  }
}

/* ---- accepting ---------------------------------------------------------- */

static int send_hello(sk_conn *c) {
  sk_server *srv = c->srv;
  sk_head *h = sk_head_new("hello");
  int rc = -ENOMEM;
  const char *names[SK_MAX_SERVICES];
  size_t n = 0;

  if (h == NULL)
    return rc;
  for (int i = 0; i < srv->nservices; i++)
    if (srv->enabled[i] && srv->services[i]->name[0] != '\0')
      names[n++] = srv->services[i]->name;
  sk_head_set_str(h, "proto", "sockit/1");
  sk_head_set_str(h, "server", "sockit " SK_VERSION);
  sk_head_set_str(h, "auth", c->tls_psk ? "tls-psk" : srv->auth ? "hmac-sha256" : "none");
  if (srv->auth && !c->tls_psk) {
    if (sk_auth_nonce(c->nonce) < 0)
      goto out;
    sk_head_set_str(h, "nonce", c->nonce);
  }
  sk_head_set_strv(h, "services", names, n);
  for (int i = 0; i < srv->nservices; i++)
    if (srv->enabled[i] && srv->services[i]->hello)
      srv->services[i]->hello(srv, h);
  rc = sk__send_frame(c, h, NULL, 0);
out:
  sk_head_free(h);
  return rc;
}

/* Decide whether to serve this peer (on fd) at all; returns 0 or the error
 * to send. */
/* A source in a failed-auth penalty gets rate_limited in place of the hello. */
static int rate_limited(sk_conn *c) {
  if (sk__ratelimit_blocked(c->srv->rl, c->src, sk__now_mono()) > 0) {
    sk__conn_metric(c, SK_M_RATE_LIMITED, 1);
    return SK_ERATELIMIT;
  }
  return 0;
}

/* ad: an adapted connection is checked for the rate limit only when it
 * starts the engine (an HTTP client may scrape /metrics or load the page
 * from an address that typed wrong keys; its WebSocket may not talk). */
static int admit(sk_conn *c, const struct sockaddr *sa, int fd, const sk_adapter *ad) {
  int rc;
  sk__rl_source(c->srv, sa, fd, c->src); /* first: refused peers' log lines are limited by it */
  if ((rc = sk__admit(c->srv, sa)) < 0)
    return rc;
  c->counted = 1;
  return ad == NULL ? rate_limited(c) : 0;
}

static sk_conn *conn_new(sk_listener *l) {
  sk_conn *c = calloc(1, sizeof(*c));
  int rc;
  if (c == NULL)
    return NULL;
  c->loop = l->loop;
  c->srv = l->loop->srv;
  atomic_init(&c->refs, 1);
  rc = l->spec->addr.family != AF_UNIX ? uv_tcp_init(&l->loop->uv, &c->h.tcp)
                                       : uv_pipe_init(&l->loop->uv, &c->h.pipe, 0);
  if (rc < 0) {
    free(c);
    return NULL;
  }
  c->h.handle.data = c;
  c->tp = &sk__plain_transport;
  uv_timer_init(&l->loop->uv, &c->timer);
  c->timer.data = c;
  c->handles_open = 2;
  /* tight only until auth */
  sk__engine_init(&c->eng, &conn_host, c, c->srv, c->srv->auth ? SK_PREAUTH_HEAD : 0);
  c->t_start = c->eng.t_read = uv_hrtime();
  c->eng.last_active = now_ms(c);
  c->eng.auth_by = c->eng.last_active + SK_AUTH_DEADLINE_MS;
  c->lidx = (int)(l->spec - c->srv->cfg.listen);
  sk__mi_add(&c->loop->metrics.conns_open[c->lidx], 1);
  sk__mu_add(&c->loop->metrics.conns_total[c->lidx], 1);
  c->next = l->loop->conns;
  if (c->next)
    c->next->prev = c;
  l->loop->conns = c;
  return c;
}

void sk__conn_timer(sk_conn *c, uint64_t ms) {
  uv_timer_start(&c->timer, on_timer, ms, 0);
}

int sk__conn_start_native(sk_conn *c) {
  int rc;
  c->eng.native = 1;
  if (c->ad != NULL && (rc = rate_limited(c)) < 0) {
    sk_conn_close(c, rc);
    return 0;
  }
  if (c->tls_psk)
    sk__engine_authed(&c->eng); /* the handshake authenticated: no pre-auth limit */
  else
    c->eng.authed = !c->srv->auth;
  if (send_hello(c) < 0)
    return -ENOMEM;
  uv_timer_start(&c->timer, on_timer,
                 c->eng.authed ? (uint64_t)c->srv->cfg.idle_timeout * 1000 : SK_AUTH_DEADLINE_MS,
                 0);
  return 0;
}

void sk__conn_accept(sk_listener *l, int fd) {
  sk__conn_accept_with(l, fd, NULL);
}

void sk__conn_accept_with(sk_listener *l, int fd, const sk_adapter *ad) {
  sk_conn *c = conn_new(l);
  struct sockaddr_storage ss;
  int rc;

  if (c == NULL) {
    close(fd); /* out of memory: the peer sees a close rather than silence */
    return;
  }
  if (sk__stream_adopt(&c->h.stream, fd, &ss, c->peer, sizeof(c->peer)) < 0) {
    sk__conn_hard_close(c);
    return;
  }
  rc = admit(c, (struct sockaddr *)&ss, fd, ad);
  if (rc == -EACCES) {
    sk__conn_hard_close(c); /* denied peers get nothing, not even a hello */
    return;
  }
  c->ad = ad;
  if (ad != NULL && ad->start(c) < 0) {
    c->ad = NULL; /* nothing to finish */
    sk__conn_hard_close(c);
    return;
  }
  sk_conn_log(c, "accept", NULL);
  if (rc < 0) {
    sk_conn_close(c, rc); /* busy, rate_limited: in plain, before any TLS */
    return;
  }
  if (l->spec->tls) {
    /* the hello waits for the handshake, which the auth deadline bounds;
     * an adapter (HTTPS) keeps its own deadline for the first request */
    if (sk__tls_conn_start(c) < 0) {
      sk__conn_hard_close(c);
      return;
    }
    if (ad == NULL)
      uv_timer_start(&c->timer, on_timer, SK_TLS_SILENCE_MS, 0);
    update_reading(c);
    return;
  }
  if (ad == NULL && sk__conn_start_native(c) < 0) {
    sk__conn_hard_close(c);
    return;
  }
  update_reading(c);
}

void sk__conn_secured(sk_conn *c) {
  sk__conn_metric(c, SK_M_TLS_HANDSHAKES, 1);
  if (c->ad == NULL && !c->closing && sk__conn_start_native(c) < 0)
    sk__conn_hard_close(c); /* an adapter starts the engine itself (/ws) */
}

const sk_wire sk__wire_native = {.name = "native", .accept = sk__conn_accept, .per_loop = 1};

/* ---- the loop's view of its connections (core.h) ------------------------ */

static void loop_stop(sk_loop *l, int now) {
  if (now)
    close_all(l);
  else
    stop_all(l);
}

/* Until no engine is left runnable: a write that drains a queue may let a
 * service end its request, and libuv would block with one waiting. */
static void loop_turn(sk_loop *l) {
  do {
    sk__conn_run_queue(l);
    sk__conn_flush_dirty(l);
  } while (l->runq != NULL);
}

static void loop_end(sk_loop *l) {
  sk__conn_run_queue(l); /* every connection is closed: only drops references */
  sk__budget_close(l);
}

const sk_loop_conn_ops sk__conn_loop_ops = {
    .init = sk__budget_init,
    .turn = loop_turn,
    .stop = loop_stop,
    .end = loop_end,
};
