/* conn.c - a native-wire connection: read, decode, authenticate, dispatch,
 * and its lifetime (the write side is wqueue.c).
 *
 * The way a request travels: bytes land in a lazily allocated read buffer;
 * sk_decode_head() cuts heads out of it; until auth_ok only an auth frame is
 * accepted; then the head goes to the handler that registered its type, with
 * the body gathered whole (small bodies, within their limit) or streamed to
 * the handler's sink. Responses are encoded straight into the write queue and
 * flushed once per loop iteration as one scatter-gather write.
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
  return c->authed && c->srv->auth;
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
  return c->active || c->bmode != BODY_NONE || c->pending != NULL;
}

void sk_conn_ref(sk_conn *c) {
  atomic_fetch_add(&c->refs, 1);
}

static void conn_free(sk_conn *c) {
  if (c->tp->release != NULL)
    c->tp->release(c);
  sk__wq_free(c);
  free(c->gather);
  free(c->svc_state);
  if (c->fhead != c->req_head) /* a streamed body's head is the active request's */
    sk_head_free(c->fhead);
  sk_head_free(c->pending);
  sk_head_free(c->req_head);
  if (c->rbuf != NULL)
    sk__rbuf_put(c->loop, c->rbuf);
  free(c);
}

void *sk__conn_adapter_state(const sk_conn *c) {
  return c->ad_state;
}
void sk__conn_set_adapter_state(sk_conn *c, void *state) {
  c->ad_state = state;
}
uint8_t *sk__conn_rbuf(sk_conn *c, size_t *rpos, size_t *rlen) {
  *rpos = c->rpos;
  *rlen = c->rlen;
  return c->rbuf;
}
void sk__conn_set_rbuf(sk_conn *c, size_t rpos, size_t rlen) {
  c->rpos = rpos;
  c->rlen = rlen;
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
  if (c->authed || c->srv->log == NULL)
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
  for (int i = 0; i < c->srv->nservices; i++)
    if (c->svc_setup & (1u << i) && c->srv->services[i]->finish)
      c->srv->services[i]->finish(c, c->svc_state[i]);
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
    for (int i = 0; i < c->srv->nservices; i++)
      if (c->svc_setup & (1u << i) && c->srv->services[i]->drained)
        c->srv->services[i]->drained(c, c->svc_state[i]);
    process(c);
  }
}

void sk__conn_stop_all(sk_loop *l) {
  for (sk_conn *c = l->conns, *next; c != NULL; c = next) {
    next = c->next;
    c->stop_when_idle = 1;
    if (!sk__conn_active(c))
      sk_conn_close(c, 0);
  }
}

void sk__conn_close_all(sk_loop *l) {
  for (sk_conn *c = l->conns, *next; c != NULL; c = next) {
    next = c->next;
    sk__conn_hard_close(c);
  }
}

/* ---- dispatch ----------------------------------------------------------- */

/* The metrics type slot of a request (metrics.h). */
static int type_slot(const sk_conn *c, const sk_handler_ref *ref) {
  return ref != NULL ? (int)(ref - c->srv->handlers) : SK_MT_OTHER;
}

static void count_batch(sk_conn *c) {
  if (c->batch_n == 0)
    return;
  sk__metric_requests(&c->loop->metrics, c->batch_slot, 0, c->batch_n, c->t_read, uv_hrtime());
  c->batch_n = 0;
}

/* A request ends with result err (0, or the error it was answered with).
 * The common case, a request of the last read answered at once, costs an
 * increment: the clock is read once per batch (count_batch). */
static void count_request(sk_conn *c, int slot, int err, uint64_t t0) {
  if (err == 0 && t0 == c->t_read && c->in_process) {
    if (c->batch_n > 0 && c->batch_slot != slot)
      count_batch(c);
    c->batch_slot = slot;
    c->batch_n++;
    return;
  }
  sk__metric_requests(&c->loop->metrics, slot, err, 1, t0, uv_hrtime());
}

/* The same for a request of the last read, answered now: inline, since
 * nearly every request ends here. */
static inline void count_answered(sk_conn *c, int slot, int err) {
  if (err == 0 && c->in_process && (c->batch_n == 0 || c->batch_slot == slot)) {
    c->batch_slot = slot;
    c->batch_n++;
  } else {
    count_request(c, slot, err, c->t_read);
  }
}

static uint64_t body_limit(const sk_server *srv, const sk_handler *h) {
  if (h->limit != NULL)
    return h->limit(srv);
  return h->max_body ? h->max_body : SK_DEFAULT_BODY;
}

static int ensure_state(sk_conn *c, int svc) {
  const sk_service *s = c->srv->services[svc];
  if (c->svc_setup & (1u << svc))
    return 0;
  if (c->svc_state == NULL) {
    c->svc_state = calloc((size_t)c->srv->nservices, sizeof(void *));
    if (c->svc_state == NULL)
      return -ENOMEM;
  }
  if (s->setup != NULL) {
    int rc = s->setup(c, &c->svc_state[svc]);
    if (rc < 0)
      return rc;
  }
  c->svc_setup |= 1u << svc;
  return 0;
}

/* Skip a body we will not use: read and drop it if it is small enough,
 * otherwise close (SPEC 4.2). */
static void skip_body(sk_conn *c, uint64_t size) {
  if (size == 0)
    return;
  if (size > SK_DISCARD_MAX) {
    sk_conn_close(c, 0);
    return;
  }
  c->bmode = BODY_DISCARD;
}

static void frame_done(sk_conn *c) {
  c->bmode = BODY_NONE;
  free(c->gather);
  c->gather = NULL;
  c->gathered = 0;
  if (c->fhead != c->req_head)
    sk_head_free(c->fhead);
  c->fhead = NULL;
  c->fref = NULL;
}

static int call_handler(sk_conn *c, sk_head *h, const sk_handler_ref *ref, const uint8_t *body) {
  sk_request req = {h, sk_head_type(h), sk_head_size(h), body, c->svc_state[ref->svc]};
  const sk_head *saved = c->cur_head;
  int follow = c->active, saved_err = c->cur_err;
  int rc;

  c->cur_head = h;
  c->cur_err = 0;
  rc = ref->h->handle(c, &req);
  if (rc < 0)
    sk__send_error(c, h, rc, NULL);
  c->cur_head = saved;
  if (rc == SK_ASYNC && !follow) {
    c->active = 1;
    c->active_svc = ref->svc;
    c->active_slot = type_slot(c, ref);
    c->req_head = h;
    c->req_err = c->cur_err;
    c->t_req = c->t_read;
  } else {
    count_answered(c, type_slot(c, ref), c->cur_err);
  }
  c->cur_err = saved_err;
  if (rc < 0 && sk_err_is_fatal(rc))
    sk_conn_close(c, 0);
  return rc;
}

static void start_frame(sk_conn *c, sk_head *h, const sk_handler_ref *ref) {
  uint64_t size = sk_head_size(h);
  int rc = ensure_state(c, ref->svc);

  c->fhead = h;
  c->fref = ref;
  if (rc < 0) {
    sk__send_error(c, h, rc, NULL);
    count_request(c, type_slot(c, ref), rc, c->t_read);
    skip_body(c, size);
  } else if (size == 0) {
    call_handler(c, h, ref, NULL);
  } else if (ref->h->flags & SK_H_STREAM) {
    rc = call_handler(c, h, ref, NULL);
    if (rc == SK_ASYNC && ref->h->body != NULL)
      c->bmode = BODY_SINK;
    else
      skip_body(c, size);
  } else if (c->rlen - c->rpos >= size) {
    /* the whole body is already here: hand it on without a copy */
    call_handler(c, h, ref, c->rbuf + c->rpos);
    c->rpos += size;
    sk_decoder_body_consume(&c->dec, size);
  } else {
    c->gather = malloc(size); /* size was checked against the limit */
    if (c->gather == NULL) {
      sk__send_error(c, h, -ENOMEM, NULL);
      skip_body(c, size);
    } else {
      c->bmode = BODY_GATHER;
    }
  }
  if (c->bmode == BODY_NONE)
    frame_done(c);
}

static void dispatch(sk_conn *c, sk_head *h) {
  const char *type = sk_head_type(h);
  uint64_t size = sk_head_size(h);
  const sk_handler_ref *ref = sk__find_handler(c->srv, type);

  if (c->active && (ref == NULL || ref->svc != c->active_svc || !(ref->h->flags & SK_H_FOLLOW))) {
    c->pending = h; /* responses keep request order: wait for the active one */
    return;
  }
  if (ref == NULL || !c->srv->enabled[ref->svc]) {
    const char *off = ref ? c->srv->services[ref->svc]->off_message : NULL;
    int err = off ? SK_EFORBIDDEN : SK_EUNKNOWNTYPE;
    sk__send_error(c, h, err, off);
    count_request(c, type_slot(c, ref), err, c->t_read);
    skip_body(c, size);
  } else if (size > body_limit(c->srv, ref->h)) {
    sk__send_error(c, h, SK_ETOOLARGE, NULL);
    count_request(c, type_slot(c, ref), SK_ETOOLARGE, c->t_read);
    skip_body(c, size);
  } else {
    start_frame(c, h, ref);
    return;
  }
  c->fhead = h;
  if (c->bmode == BODY_NONE)
    frame_done(c);
}

/* ---- authentication ----------------------------------------------------- */

static void auth_frame(sk_conn *c, sk_head *h) {
  const char *cn = sk_head_str(h, "nonce"), *mac = sk_head_str(h, "mac");
  const char *src = c->src;
  double now = sk__now_mono();
  char expect[SK_MAC_HEX + 1], reply[SK_MAC_HEX + 1];
  sk_head *ok;

  c->cur_head = h;
  c->cur_err = 0;
  if (sk__ratelimit_blocked(c->srv->rl, src, now) > 0) {
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
    c->authed = 1;
    sk__ratelimit_success(c->srv->rl, src, now);
    sk_decoder_init(&c->dec, 0);
    sk_head_set_str(ok, "mac", reply);
    sk__send_frame(c, ok, h, 0);
    sk_head_free(ok);
    sk_conn_log(c, "auth_ok", NULL);
    uv_timer_start(&c->timer, on_timer, (uint64_t)c->srv->cfg.idle_timeout * 1000, 0);
  } else {
    sk_conn_close(c, SK_EINTERNAL);
  }
  count_request(c, SK_MT_AUTH, c->cur_err, c->t_read);
  c->cur_head = NULL;
  c->cur_err = 0;
  sk_head_free(h);
}

/* An auth frame on an authenticated connection: harmless on a --no-auth
 * server (a client that always authenticates), a mistake otherwise. */
static void auth_again(sk_conn *c, sk_head *h) {
  sk_head *ok;
  if (c->srv->auth) {
    sk__send_error(c, h, SK_EBADREQ, "already authenticated");
  } else if ((ok = sk_head_new("auth_ok")) != NULL) {
    sk__send_frame(c, ok, h, 0);
    sk_head_free(ok);
  }
  c->fhead = h;
  skip_body(c, sk_head_size(h));
  if (c->bmode == BODY_NONE)
    frame_done(c);
}

static void on_head(sk_conn *c, sk_head *h) {
  int is_auth = strcmp(sk_head_type(h), "auth") == 0;
  c->last_active = now_ms(c);
  if (c->authed && is_auth && !c->active) {
    auth_again(c, h);
  } else if (c->authed) {
    dispatch(c, h);
  } else if (is_auth && sk_head_size(h) == 0) {
    auth_frame(c, h);
  } else {
    c->cur_head = h; /* the error repeats the request's id */
    sk_conn_close(c, SK_EAUTHREQ);
    count_request(c, is_auth ? SK_MT_AUTH : type_slot(c, sk__find_handler(c->srv, sk_head_type(h))),
                  SK_EAUTHREQ, c->t_read);
    c->cur_head = NULL;
    sk_head_free(h);
  }
}

/* ---- the read loop ------------------------------------------------------ */

/* The body is complete: the gathered handler runs, or the sink hears (NULL, 0). */
static void body_end(sk_conn *c) {
  if (c->bmode == BODY_GATHER) {
    call_handler(c, c->fhead, c->fref, c->gather);
  } else if (c->bmode == BODY_SINK) {
    ssize_t rc = c->fref->h->body(c, c->svc_state[c->fref->svc], NULL, 0);
    if (rc < 0) {
      sk__send_error(c, c->fhead, (int)rc, NULL);
      sk_conn_done(c);
    }
  }
  frame_done(c);
}

/* Offer n body bytes in the read buffer to the sink. Returns the bytes
 * taken, or -1 when the sink failed (the rest is then discarded). */
static ssize_t to_sink(sk_conn *c, const uint8_t *p, size_t n) {
  ssize_t took = c->fref->h->body(c, c->svc_state[c->fref->svc], p, n);
  if (took < 0) {
    sk__send_error(c, c->fhead, (int)took, NULL);
    c->bmode = BODY_DISCARD;
    sk_conn_done(c);
    return -1;
  }
  if ((size_t)took < n)
    c->sink_paused = 1;
  return took;
}

/* Body bytes from the read buffer: gathered, offered to the sink or
 * dropped. Returns the bytes used (0: none buffered), or -1 as to_sink. */
static ssize_t take_buffered(sk_conn *c) {
  size_t n = sk_decoder_body_avail(&c->dec, c->rlen - c->rpos);
  const uint8_t *p;
  ssize_t took = (ssize_t)n;
  if (n == 0)
    return 0; /* and c->rbuf may be NULL: no pointer made from it */
  p = c->rbuf + c->rpos;
  if (c->bmode == BODY_GATHER) {
    memcpy(c->gather + c->gathered, p, n);
    c->gathered += n;
  } else if (c->bmode == BODY_SINK && (took = to_sink(c, p, n)) < 0) {
    return -1;
  }
  c->rpos += (size_t)took;
  return took;
}

/* Body bytes read straight into the sink's memory (lend): the sink has
 * them already; it only hears how many. lend() lends only to a sink. */
static size_t take_lent(sk_conn *c) {
  size_t n = c->got;
  c->got = 0;
  if (c->bmode == BODY_SINK)
    c->fref->h->body_got(c, c->svc_state[c->fref->svc], n);
  return n;
}

/* Move body bytes to where they go. Returns 0 when it cannot go on (needs
 * input, or the sink paused), 1 to keep going. */
static int step_body(sk_conn *c) {
  ssize_t took = c->got > 0 ? (ssize_t)take_lent(c) : take_buffered(c);
  if (took <= 0) /* -1: failed, the rest is discarded; 0: needs input or paused */
    return took < 0;
  sk_decoder_body_consume(&c->dec, (size_t)took);
  if (c->dec.in_body)
    return !c->sink_paused;
  body_end(c);
  return 1;
}

static int blocked(const sk_conn *c) {
  return c->closing || c->sink_paused || (c->pending && c->active);
}

/* Application bytes the transport still holds (TLS: undecrypted records). */
static ssize_t pull(sk_conn *c) {
  return c->tp->pull != NULL ? c->tp->pull(c) : 0;
}

void sk__conn_process(sk_conn *c) {
  process(c);
}

static void process(sk_conn *c) {
  if (c->in_process) {
    c->rerun = 1;
    return;
  }
  c->in_process = 1;
  sk_conn_ref(c);
  do {
    c->rerun = 0;
    while (!blocked(c)) {
      /* A waiting head first: the decoder may be inside its body, which
       * must reach the frame it belongs to once that frame is dispatched. */
      if (c->pending != NULL) {
        sk_head *h = c->pending;
        c->pending = NULL;
        dispatch(c, h);
        continue;
      }
      if (c->dec.in_body) {
        if (!step_body(c) && (blocked(c) || pull(c) <= 0))
          break;
        continue;
      }
      if (c->queued > SK_WQ_PAUSE) {
        c->congested = 1; /* the peer is not reading: stop taking requests */
        break;
      }
      if (!c->native) { /* the adapter owns the bytes until it starts the engine */
        size_t before = c->rpos;
        /* bytes it left when its answers filled the queue: on, while it
         * makes progress (the queue check above pauses it again) */
        if (c->ad != NULL && c->rpos == c->rlen && pull(c) > 0)
          continue; /* TLS: decrypted bytes went through the adapter */
        if (c->ad == NULL || c->rpos == c->rlen || c->ad->input(c, c->rpos) < 0 ||
            (c->rpos == before && !c->native))
          break;
        continue;
      }
      /* nothing read yet (and NULL + 0 is undefined: fuzz_svc_*): the
       * transport may hold some (TLS records not yet decrypted) */
      sk_head *h = NULL;
      ssize_t used =
          c->rbuf == NULL ? 0 : sk_decode_head(&c->dec, c->rbuf + c->rpos, c->rlen - c->rpos, &h);
      if (used == 0) {
        if (pull(c) > 0)
          continue;
        break;
      }
      if (used < 0) {
        sk_conn_close(c, SK_EBADFRAME);
        break;
      }
      c->rpos += (size_t)used;
      on_head(c, h);
    }
  } while (c->rerun && !c->closing);
  count_batch(c);
  c->in_process = 0;
  if (c->rbuf != NULL && c->rpos == c->rlen) {
    sk__rbuf_put(c->loop, c->rbuf); /* idle connections hold no buffer */
    c->rbuf = NULL;
    c->rpos = c->rlen = 0;
  }
  if (c->stop_when_idle && !sk__conn_active(c))
    sk_conn_close(c, 0);
  update_reading(c);
  sk_conn_unref(c);
}

/* In a streamed body whose sink lends memory, with none of the body's bytes
 * in the read buffer: read straight into the sink's memory, capped at the
 * bytes the body still owes so that the next frame never lands there.
 * Returns 0 to read into the read buffer instead. */
static int lend(sk_conn *c, uv_buf_t *buf) {
  const sk_handler *h = c->bmode == BODY_SINK ? c->fref->h : NULL;
  uint8_t *p = NULL;
  ssize_t room;

  if (h == NULL || h->body_buf == NULL || c->ad != NULL || c->closing || c->sink_paused ||
      !c->dec.in_body || (c->rbuf != NULL && c->rpos < c->rlen))
    return 0;
  room = h->body_buf(c, c->svc_state[c->fref->svc], &p);
  if (room < 0)
    return 0;
  if (room == 0) { /* no room: on_read sees UV_ENOBUFS and stops reading */
    c->sink_paused = 1;
    buf->base = NULL;
    buf->len = 0;
    return 1;
  }
  buf->base = (char *)p;
  buf->len = sk_decoder_body_avail(&c->dec, (size_t)room);
  c->lent = 1;
  return 1;
}

void sk__conn_app_buf(sk_conn *c, uv_buf_t *buf) {
  if (lend(c, buf))
    return;
  if (c->rbuf == NULL) {
    c->rbuf = sk__rbuf_get(c->loop);
    c->rpos = c->rlen = 0;
    if (c->rbuf == NULL) {
      buf->base = NULL;
      buf->len = 0;
      return;
    }
  }
  if (c->rpos > 0 && SK_RBUF_SIZE - c->rlen < SK_PREFIX_LEN + SK_HEAD_MAX) {
    memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos); /* once per batch */
    c->rlen -= c->rpos;
    c->rpos = 0;
  }
  buf->base = (char *)c->rbuf + c->rlen;
  buf->len = SK_RBUF_SIZE - c->rlen;
}

/* n application bytes landed where sk__conn_app_buf said. A wire adapter
 * (adapter.h) turns new bytes in the read buffer into native ones first.
 * Returns -1 when the adapter closed the connection. */
static int app_bytes(sk_conn *c, size_t n, int lent) {
  size_t at = c->rlen;
  if (lent) {
    c->got = n; /* step_body tells the sink first: nothing is buffered */
    return 0;
  }
  c->rlen += n;
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
  if (c->lingering || why != UV_EOF || sk__conn_active(c))
    sk__conn_hard_close(c);
  else
    sk_conn_close(c, 0);
}

/* ---- the plain transport: libuv reads into the application's memory ---- */

static void plain_read(sk_conn *c, size_t n, int lent) {
  if (c->closing) { /* lingering: drop what arrives */
    c->rlen = c->rpos = 0;
    return;
  }
  if (app_bytes(c, n, lent) == 0)
    process(c);
}

static int plain_can_read(const sk_conn *c) {
  return c->rbuf == NULL || c->rlen < SK_RBUF_SIZE || c->rpos > 0;
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
  if (nread == UV_ENOBUFS && c->sink_paused) { /* the sink had no room (lend) */
    update_reading(c);
    return;
  }
  if (nread < 0) {
    sk__conn_eof(c, nread);
    return;
  }
  c->bytes_in += (uint64_t)nread;
  c->t_read = uv_hrtime();
  sk__mu_add(&c->loop->metrics.bytes_in, (uint64_t)nread);
  c->tp->read(c, (size_t)nread, lent);
}

void sk__conn_budget_pause(sk_conn *c, int paused) {
  c->budget_paused = paused != 0;
  update_reading(c);
}

static void update_reading(sk_conn *c) {
  int want = !c->hard_closing && !c->eof && (c->lingering || !blocked(c)) && !c->congested &&
             !c->budget_paused && c->tp->can_read(c);
  if (want && !c->reading)
    c->reading = uv_read_start(&c->h.stream, on_alloc, on_read) == 0;
  else if (!want && c->reading) {
    uv_read_stop(&c->h.stream);
    c->reading = 0;
  }
}

void sk_conn_done(sk_conn *c) {
  if (!c->active)
    return;
  c->active = 0;
  count_request(c, c->active_slot, c->req_err, c->t_req);
  if (c->fhead == c->req_head)
    c->fhead = NULL; /* the body's frame ends with it */
  sk_head_free(c->req_head);
  c->req_head = NULL;
  if (c->bmode == BODY_SINK)
    c->bmode = BODY_DISCARD;
  if (!c->hard_closing)
    process(c);
}

void sk_conn_resume(sk_conn *c) {
  if (!c->sink_paused)
    return;
  c->sink_paused = 0;
  if (!c->hard_closing)
    process(c);
}

/* ---- timers ------------------------------------------------------------- */

static void on_timer(uv_timer_t *t) {
  sk_conn *c = t->data;
  uint64_t idle = (uint64_t)c->srv->cfg.idle_timeout * 1000, now = now_ms(c);
  if (c->closing) {
    sk__conn_hard_close(c);
  } else if (!c->native && c->ad != NULL) {
    c->ad->timeout(c);
  } else if (!c->authed) {
    uint64_t age = (uv_hrtime() - c->t_start) / 1000000;
    if (c->tp->deadline != NULL && c->tp->deadline(c))
      return; /* a silent peer on a TLS port: told and closed */
    if (age < SK_AUTH_DEADLINE_MS) {
      uv_timer_start(&c->timer, on_timer, SK_AUTH_DEADLINE_MS - age, 0);
      return;
    }
    sk_conn_log(c, "auth_timeout", NULL);
    sk_conn_close(c, SK_ETIMEOUT);
  } else if (sk__conn_active(c) || now - c->last_active < idle) {
    uint64_t left = sk__conn_active(c) ? idle : idle - (now - c->last_active);
    uv_timer_start(&c->timer, on_timer, left, 0);
  } else {
    sk_conn_log(c, "idle_timeout", NULL);
    sk_conn_close(c, SK_ETIMEOUT);
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
  c->t_start = c->t_read = uv_hrtime();
  c->last_active = now_ms(c);
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
  c->native = 1;
  if (c->ad != NULL && (rc = rate_limited(c)) < 0) {
    sk_conn_close(c, rc);
    return 0;
  }
  c->authed = !c->srv->auth || c->tls_psk;
  if (c->tls_psk)
    sk_decoder_init(&c->dec, 0); /* the handshake authenticated: no pre-auth limit */
  if (send_hello(c) < 0)
    return -ENOMEM;
  uv_timer_start(&c->timer, on_timer,
                 c->authed ? (uint64_t)c->srv->cfg.idle_timeout * 1000 : SK_AUTH_DEADLINE_MS, 0);
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
  sk_decoder_init(&c->dec, c->srv->auth ? SK_PREAUTH_HEAD : 0); /* tight only until auth */
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
