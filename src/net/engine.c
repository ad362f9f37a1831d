/* engine.c - a native connection's protocol engine (engine.h): decode heads
 * from the bytes the host lends, authenticate through the host, dispatch to
 * the handlers in request order, move bodies (gathered, streamed to a sink,
 * skipped) and count requests. No libuv call and no socket here: the host
 * (conn.c) moves the bytes and runs the engine.
 */
#include "net/engine.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/core.h"
#include "sockit/error.h"

void sk__engine_init(sk_engine *e, const sk_engine_host *host, sk_conn *conn, sk_server *srv,
                     uint32_t max_head) {
  memset(e, 0, sizeof(*e));
  e->host = host;
  e->conn = conn;
  e->srv = srv;
  sk_decoder_init(&e->dec, max_head);
}

void sk__engine_free(sk_engine *e) {
  free(e->gather);
  free(e->svc_state);
  if (e->fhead != e->req_head) /* a streamed body's head is the active request's */
    sk_head_free(e->fhead);
  sk_head_free(e->pending);
  sk_head_free(e->req_head);
  e->gather = NULL;
  e->svc_state = NULL;
  e->fhead = e->pending = e->req_head = NULL;
}

void sk__engine_finish(sk_engine *e) {
  for (int i = 0; i < e->srv->nservices; i++)
    if (e->svc_setup & (1u << i) && e->srv->services[i]->finish)
      e->srv->services[i]->finish(e->conn, e->svc_state[i]);
}

void sk__engine_drained(sk_engine *e) {
  for (int i = 0; i < e->srv->nservices; i++)
    if (e->svc_setup & (1u << i) && e->srv->services[i]->drained)
      e->srv->services[i]->drained(e->conn, e->svc_state[i]);
}

void sk__engine_close(sk_engine *e) {
  e->closed = 1;
}

void sk__engine_authed(sk_engine *e) {
  e->authed = 1;
  sk_decoder_init(&e->dec, 0);
}

void sk__engine_answered(sk_engine *e, const sk_head *id_src, int err) {
  if (id_src != NULL && id_src == e->cur_head)
    e->cur_err = err;
  else if (id_src != NULL && id_src == e->req_head)
    e->req_err = err;
}

static int send_error(sk_engine *e, const sk_head *id_src, int err, const char *msg) {
  return e->host->send_error(e->conn, id_src, err, msg);
}

/* ---- counting ----------------------------------------------------------- */

/* The metrics type slot of a request (metrics.h). */
static int type_slot(const sk_engine *e, const sk_handler_ref *ref) {
  return ref != NULL ? (int)(ref - e->srv->handlers) : SK_MT_OTHER;
}

static void count_batch(sk_engine *e) {
  if (e->batch_n == 0)
    return;
  e->host->count(e->conn, e->batch_slot, 0, e->batch_n, e->t_read);
  e->batch_n = 0;
}

/* A request ends with result err (0, or the error it was answered with).
 * The common case, a request of the last read answered at once, costs an
 * increment: the host reads its clock once per batch (count_batch). */
static void count_request(sk_engine *e, int slot, int err, uint64_t t0) {
  if (err == 0 && t0 == e->t_read && e->running) {
    if (e->batch_n > 0 && e->batch_slot != slot)
      count_batch(e);
    e->batch_slot = slot;
    e->batch_n++;
    return;
  }
  e->host->count(e->conn, slot, err, 1, t0);
}

/* The same for a request of the last read, answered now: inline, since
 * nearly every request ends here. */
static inline void count_answered(sk_engine *e, int slot, int err) {
  if (err == 0 && e->running && (e->batch_n == 0 || e->batch_slot == slot)) {
    e->batch_slot = slot;
    e->batch_n++;
  } else {
    count_request(e, slot, err, e->t_read);
  }
}

/* ---- dispatch ----------------------------------------------------------- */

static uint64_t body_limit(const sk_server *srv, const sk_handler *h) {
  if (h->limit != NULL)
    return h->limit(srv);
  return h->max_body ? h->max_body : SK_DEFAULT_BODY;
}

static int ensure_state(sk_engine *e, int svc) {
  const sk_service *s = e->srv->services[svc];
  if (e->svc_setup & (1u << svc))
    return 0;
  if (e->svc_state == NULL) {
    e->svc_state = calloc((size_t)e->srv->nservices, sizeof(void *));
    if (e->svc_state == NULL)
      return -ENOMEM;
  }
  if (s->setup != NULL) {
    int rc = s->setup(e->conn, &e->svc_state[svc]);
    if (rc < 0)
      return rc;
  }
  e->svc_setup |= 1u << svc;
  return 0;
}

/* Skip a body we will not use: read and drop it if it is small enough,
 * otherwise close (SPEC 4.2). */
static void skip_body(sk_engine *e, uint64_t size) {
  if (size == 0)
    return;
  if (size > SK_DISCARD_MAX) {
    e->host->close(e->conn, 0);
    return;
  }
  e->bmode = SK_BODY_DISCARD;
}

static void frame_done(sk_engine *e) {
  e->bmode = SK_BODY_NONE;
  free(e->gather);
  e->gather = NULL;
  e->gathered = 0;
  if (e->fhead != e->req_head)
    sk_head_free(e->fhead);
  e->fhead = NULL;
  e->fref = NULL;
}

static int call_handler(sk_engine *e, sk_head *h, const sk_handler_ref *ref, const uint8_t *body) {
  sk_request req = {h, sk_head_type(h), sk_head_size(h), body, e->svc_state[ref->svc]};
  const sk_head *saved = e->cur_head;
  int follow = e->active, saved_err = e->cur_err;
  int rc;

  e->cur_head = h;
  e->cur_err = 0;
  rc = ref->h->handle(e->conn, &req);
  if (rc < 0)
    send_error(e, h, rc, NULL);
  e->cur_head = saved;
  if (rc == SK_ASYNC && !follow) {
    e->active = 1;
    e->active_svc = ref->svc;
    e->active_slot = type_slot(e, ref);
    e->req_head = h;
    e->req_err = e->cur_err;
    e->t_req = e->t_read;
  } else {
    count_answered(e, type_slot(e, ref), e->cur_err);
  }
  e->cur_err = saved_err;
  if (rc < 0 && sk_err_is_fatal(rc))
    e->host->close(e->conn, 0);
  return rc;
}

static void start_frame(sk_engine *e, sk_head *h, const sk_handler_ref *ref) {
  uint64_t size = sk_head_size(h);
  int rc = ensure_state(e, ref->svc);

  e->fhead = h;
  e->fref = ref;
  if (rc < 0) {
    send_error(e, h, rc, NULL);
    count_request(e, type_slot(e, ref), rc, e->t_read);
    skip_body(e, size);
  } else if (size == 0) {
    call_handler(e, h, ref, NULL);
  } else if (ref->h->flags & SK_H_STREAM) {
    rc = call_handler(e, h, ref, NULL);
    if (rc == SK_ASYNC && ref->h->body != NULL)
      e->bmode = SK_BODY_SINK;
    else
      skip_body(e, size);
  } else if (e->rlen - e->rpos >= size) {
    /* the whole body is already here: hand it on without a copy */
    call_handler(e, h, ref, e->rbuf + e->rpos);
    e->rpos += size;
    sk_decoder_body_consume(&e->dec, size);
  } else {
    e->gather = malloc(size); /* size was checked against the limit */
    if (e->gather == NULL) {
      send_error(e, h, -ENOMEM, NULL);
      skip_body(e, size);
    } else {
      e->bmode = SK_BODY_GATHER;
    }
  }
  if (e->bmode == SK_BODY_NONE)
    frame_done(e);
}

static void dispatch(sk_engine *e, sk_head *h) {
  const char *type = sk_head_type(h);
  uint64_t size = sk_head_size(h);
  const sk_handler_ref *ref = sk__find_handler(e->srv, type);

  if (e->active && (ref == NULL || ref->svc != e->active_svc || !(ref->h->flags & SK_H_FOLLOW))) {
    e->pending = h; /* responses keep request order: wait for the active one */
    return;
  }
  if (ref == NULL || !e->srv->enabled[ref->svc]) {
    const char *off = ref ? e->srv->services[ref->svc]->off_message : NULL;
    int err = off ? SK_EFORBIDDEN : SK_EUNKNOWNTYPE;
    send_error(e, h, err, off);
    count_request(e, type_slot(e, ref), err, e->t_read);
    skip_body(e, size);
  } else if (size > body_limit(e->srv, ref->h)) {
    send_error(e, h, SK_ETOOLARGE, NULL);
    count_request(e, type_slot(e, ref), SK_ETOOLARGE, e->t_read);
    skip_body(e, size);
  } else {
    start_frame(e, h, ref);
    return;
  }
  e->fhead = h;
  if (e->bmode == SK_BODY_NONE)
    frame_done(e);
}

/* The first auth frame: the host checks it (and answers or closes). */
static void auth_frame(sk_engine *e, sk_head *h) {
  e->cur_head = h;
  e->cur_err = 0;
  e->host->auth(e->conn, h);
  count_request(e, SK_MT_AUTH, e->cur_err, e->t_read);
  e->cur_head = NULL;
  e->cur_err = 0;
  sk_head_free(h);
}

/* An auth frame on an authenticated connection: the host answers it
 * (harmless on a --no-auth server, a mistake otherwise); its body, if
 * any, is skipped. */
static void auth_again(sk_engine *e, sk_head *h) {
  e->host->auth(e->conn, h);
  e->fhead = h;
  skip_body(e, sk_head_size(h));
  if (e->bmode == SK_BODY_NONE)
    frame_done(e);
}

static void on_head(sk_engine *e, sk_head *h) {
  int is_auth = strcmp(sk_head_type(h), "auth") == 0;
  e->last_active = e->now;
  if (e->authed && is_auth && !e->active) {
    auth_again(e, h);
  } else if (e->authed) {
    dispatch(e, h);
  } else if (is_auth && sk_head_size(h) == 0) {
    auth_frame(e, h);
  } else {
    e->cur_head = h; /* the error repeats the request's id */
    e->host->close(e->conn, SK_EAUTHREQ);
    count_request(e, is_auth ? SK_MT_AUTH : type_slot(e, sk__find_handler(e->srv, sk_head_type(h))),
                  SK_EAUTHREQ, e->t_read);
    e->cur_head = NULL;
    sk_head_free(h);
  }
}

/* ---- bodies ------------------------------------------------------------- */

int sk__engine_done(sk_engine *e) {
  if (!e->active)
    return 0;
  e->active = 0;
  count_request(e, e->active_slot, e->req_err, e->t_req);
  if (e->fhead == e->req_head)
    e->fhead = NULL; /* the body's frame ends with it */
  sk_head_free(e->req_head);
  e->req_head = NULL;
  if (e->bmode == SK_BODY_SINK)
    e->bmode = SK_BODY_DISCARD;
  if (e->running)
    e->rerun = 1;
  return 1;
}

int sk__engine_resume(sk_engine *e) {
  if (!e->sink_paused)
    return 0;
  e->sink_paused = 0;
  if (e->running)
    e->rerun = 1;
  return 1;
}

/* The body is complete: the gathered handler runs, or the sink hears (NULL, 0). */
static void body_end(sk_engine *e) {
  if (e->bmode == SK_BODY_GATHER) {
    call_handler(e, e->fhead, e->fref, e->gather);
  } else if (e->bmode == SK_BODY_SINK) {
    ssize_t rc = e->fref->h->body(e->conn, e->svc_state[e->fref->svc], NULL, 0);
    if (rc < 0) {
      send_error(e, e->fhead, (int)rc, NULL);
      sk__engine_done(e);
    }
  }
  frame_done(e);
}

/* Offer n body bytes to the sink. Returns the bytes taken, or -1 when the
 * sink failed (the rest is then discarded). */
static ssize_t to_sink(sk_engine *e, const uint8_t *p, size_t n) {
  ssize_t took = e->fref->h->body(e->conn, e->svc_state[e->fref->svc], p, n);
  if (took < 0) {
    send_error(e, e->fhead, (int)took, NULL);
    e->bmode = SK_BODY_DISCARD;
    sk__engine_done(e);
    return -1;
  }
  if ((size_t)took < n)
    e->sink_paused = 1;
  return took;
}

/* Body bytes held in the read buffer: gathered, offered to the sink or
 * dropped. Returns the bytes used (0: none held), or -1 as to_sink. */
static ssize_t take_buffered(sk_engine *e) {
  size_t n = sk_decoder_body_avail(&e->dec, e->rlen - e->rpos);
  const uint8_t *p;
  ssize_t took = (ssize_t)n;
  if (n == 0)
    return 0; /* and e->rbuf may be NULL: no pointer made from it */
  p = e->rbuf + e->rpos;
  if (e->bmode == SK_BODY_GATHER) {
    memcpy(e->gather + e->gathered, p, n);
    e->gathered += n;
  } else if (e->bmode == SK_BODY_SINK && (took = to_sink(e, p, n)) < 0) {
    return -1;
  }
  e->rpos += (size_t)took;
  return took;
}

/* Body bytes read straight into the sink's memory (lend): the sink has
 * them already; it only hears how many. Only a sink is lent memory. */
static size_t take_lent(sk_engine *e) {
  size_t n = e->got;
  e->got = 0;
  if (e->bmode == SK_BODY_SINK)
    e->fref->h->body_got(e->conn, e->svc_state[e->fref->svc], n);
  return n;
}

/* Move body bytes to where they go. Returns 0 when it cannot go on (needs
 * input, or the sink paused), 1 to keep going. */
static int step_body(sk_engine *e) {
  ssize_t took = e->got > 0 ? (ssize_t)take_lent(e) : take_buffered(e);
  if (took <= 0) /* -1: failed, the rest is discarded; 0: needs input or paused */
    return took < 0;
  sk_decoder_body_consume(&e->dec, (size_t)took);
  if (e->dec.in_body)
    return !e->sink_paused;
  body_end(e);
  return 1;
}

ssize_t sk__engine_lend(sk_engine *e, uint8_t **p) {
  const sk_handler *h = e->bmode == SK_BODY_SINK ? e->fref->h : NULL;
  ssize_t room;
  if (h == NULL || h->body_buf == NULL || e->closed || e->sink_paused || !e->dec.in_body ||
      (e->rbuf != NULL && e->rpos < e->rlen))
    return -1;
  room = h->body_buf(e->conn, e->svc_state[e->fref->svc], p);
  if (room < 0)
    return -1;
  if (room == 0) { /* no room: the host stops reading until resume */
    e->sink_paused = 1;
    return 0;
  }
  return (ssize_t)sk_decoder_body_avail(&e->dec, (size_t)room);
}

/* ---- the run ------------------------------------------------------------ */

/* Application bytes the host still holds (TLS: undecrypted records). */
static ssize_t pull(sk_engine *e) {
  return e->host->pull != NULL ? e->host->pull(e->conn) : 0;
}

void sk__engine_run(sk_engine *e) {
  if (e->running) {
    e->rerun = 1;
    return;
  }
  e->running = 1;
  do {
    e->rerun = 0;
    while (!sk__engine_blocked(e)) {
      /* A waiting head first: the decoder may be inside its body, which
       * must reach the frame it belongs to once that frame is dispatched. */
      if (e->pending != NULL) {
        sk_head *h = e->pending;
        e->pending = NULL;
        dispatch(e, h);
        continue;
      }
      if (e->dec.in_body) {
        if (!step_body(e) && (sk__engine_blocked(e) || pull(e) <= 0))
          break;
        continue;
      }
      /* the peer is not reading: take no more requests */
      if (e->host->out_full(e->conn))
        break;
      /* the adapter owns the bytes until it starts the engine */
      if (!e->native) {
        if (e->host->adapt == NULL || !e->host->adapt(e->conn))
          break;
        continue;
      }
      /* nothing read yet (and NULL + 0 is undefined: fuzz_svc_*): the
       * host may hold some (TLS records not yet decrypted) */
      sk_head *h = NULL;
      ssize_t used =
          e->rbuf == NULL ? 0 : sk_decode_head(&e->dec, e->rbuf + e->rpos, e->rlen - e->rpos, &h);
      if (used == 0) {
        if (pull(e) > 0)
          continue;
        break;
      }
      if (used < 0) {
        e->host->close(e->conn, SK_EBADFRAME);
        break;
      }
      e->rpos += (size_t)used;
      on_head(e, h);
    }
  } while (e->rerun && !e->closed);
  count_batch(e);
  e->running = 0;
}

/* ---- deadlines ---------------------------------------------------------- */

enum sk_deadline sk__engine_deadline(const sk_engine *e, uint64_t now, uint64_t idle_ms,
                                     uint64_t *wait) {
  if (!e->authed) {
    if (now >= e->auth_by)
      return SK_DEADLINE_AUTH;
    *wait = e->auth_by - now;
    return SK_DEADLINE_WAIT;
  }
  if (sk__engine_busy(e)) { /* a request in progress is not idleness */
    *wait = idle_ms;
    return SK_DEADLINE_WAIT;
  }
  if (now < e->last_active)
    now = e->last_active;
  if (now - e->last_active >= idle_ms)
    return SK_DEADLINE_IDLE;
  *wait = idle_ms - (now - e->last_active);
  return SK_DEADLINE_WAIT;
}
