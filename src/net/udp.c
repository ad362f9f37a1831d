/* udp.c - datagram listeners (SPEC 5): exactly one frame per datagram,
 * answered to its sender by the tables services registered (net/udp.h).
 *
 * Every endpoint is bound on loop 0 and nowhere else: UDP here carries small
 * requests, and a single thread per endpoint keeps per-peer state (chat
 * leases) free of locks; SO_REUSEPORT would spread one peer's datagrams by
 * a hash we do not control for no gain. The endpoints, a stop watcher and a
 * one-second tick belong to one sk__udp set, which closes them itself on a
 * graceful stop (they are not in loop->listeners) and frees itself when the
 * last of them has closed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/random.h>

#include "auth/dgram.h"
#include "net/srclimit.h"
#include "net/udp.h"
#include "sockit/error.h"

#define UDP_TICK_MS 250
#define COOKIE_BYTES 16
#define COOKIE_HEX (2 * COOKIE_BYTES)
#define COOKIE_PERIOD_MS 60000 /* a cookie is good this minute and the next */

typedef struct udp_ep {
  uv_udp_t h;
  struct sk__udp *set;
  int open;
} udp_ep;

typedef struct sk__udp {
  sk_server *srv;
  sk_loop *loop;
  uv_check_t stopper; /* sees srv->stopping right after the wake-up */
  uv_timer_t tick;
  udp_ep *eps[SK_MAX_LISTENERS];
  int neps, handles, closing;
  sk__dg_guard *guard; /* a server with a key: every datagram is authenticated */
  int limited;         /* no key: answers to unproven sources are limited */
  sk__srclimit limit;
  uint8_t cookie_key[32]; /* random per process (no key) */
  uint64_t received, malformed, denied, answered, refused, unauthentic, stale, throttled;
  uint8_t rbuf[65536];
} sk__udp;

typedef struct push_req {
  uv_udp_send_t req;
  sk_buf *frame;
} push_req;

static sk_loop *udp_loop(sk_server *srv) {
  return &srv->loops[0];
}

int sk__udp_loop_index(const sk_server *srv) {
  return 0;
}

int sk__dgram_register(sk_server *srv, const sk_dgram_table *t) {
  if (srv->ndgram >= SK_MAX_DGRAM)
    return -ENOMEM;
  srv->dgram[srv->ndgram++] = *t;
  return 0;
}

/* ---- answering ---------------------------------------------------------- */

static udp_ep *endpoint(sk_server *srv, int ep) {
  sk__udp *u = srv->udp;
  if (u == NULL || ep < 0 || ep >= u->neps || u->eps[ep] == NULL || !u->eps[ep]->open)
    return NULL;
  return u->eps[ep];
}

void sk__dgram_prove(sk_dgram *d) {
  if (!d->proven) {
    d->proven = 1;
    d->budget += SK_UDP_AMP;
  }
}

/* An unproven source's answers are rate-limited: asked once per datagram. */
static int may_answer(sk_dgram *d) {
  sk__udp *u = d->srv->udp;
  if (d->proven || !u->limited)
    return 1;
  if (d->rate == 0)
    d->rate =
        sk__srclimit_take(&u->limit, (struct sockaddr *)&d->from, uv_now(&u->loop->uv)) ? 1 : -1;
  if (d->rate < 0)
    u->throttled++;
  return d->rate > 0;
}

/* Answers are best effort, as UDP is: a full socket drops them and the
 * client's retry asks again. */
static int send_now(sk_dgram *d, const uv_buf_t *bufs, unsigned n, size_t total) {
  udp_ep *e = endpoint(d->srv, d->ep);
  if (e == NULL)
    return -EPIPE;
  if (total > d->budget || total > SK_UDP_MAX)
    return SK_ETOOLARGE;
  if (!may_answer(d))
    return 0; /* silence, as for a lost datagram */
  d->budget -= total;
  int rc = uv_udp_try_send(&e->h, bufs, n, (const struct sockaddr *)&d->from);
  if (rc >= 0)
    e->set->answered++;
  return rc < 0 && rc != UV_EAGAIN ? rc : 0;
}

int sk__dgram_reply(sk_dgram *d, sk_head *h, const void *body, size_t n) {
  sk__dg_guard *guard = d->srv->udp ? d->srv->udp->guard : NULL;
  uint8_t head[SK_PREFIX_LEN + 2048], *big = NULL, tag[SK_UDP_TAG_LEN];
  size_t seal = guard ? SK_UDP_TAG_LEN : 0;
  ssize_t len;
  int rc;

  if (sk_head_copy_member(h, d->req, "id") < 0 ||
      ((n > 0 || sk_head_has(h, "size")) && sk_head_set_int(h, "size", (int64_t)n) < 0) ||
      (guard && sk__dg_stamp(h, sk__dg_wall_ms()) < 0))
    return -ENOMEM;
  len = sk_head_encode(h, head, sizeof(head));
  if (len < 0)
    return (int)len;
  if ((size_t)len + n + seal > d->budget || (size_t)len + n + seal > SK_UDP_MAX)
    return SK_ETOOLARGE; /* checked before any allocation */
  if ((size_t)len > sizeof(head)) {
    if ((len = sk_head_encode_alloc(h, &big)) < 0)
      return (int)len;
  }
  uv_buf_t bufs[3] = {uv_buf_init((char *)(big ? big : head), (unsigned)len),
                      uv_buf_init((char *)body, (unsigned)n)};
  unsigned nbufs = n > 0 ? 2 : 1;
  if (guard) {
    struct iovec iov[2] = {{bufs[0].base, bufs[0].len}, {bufs[1].base, bufs[1].len}};
    if ((rc = sk__dg_tag(guard, iov, (int)nbufs, tag)) < 0)
      goto out;
    bufs[nbufs++] = uv_buf_init((char *)tag, sizeof(tag));
  }
  rc = send_now(d, bufs, nbufs, (size_t)len + n + seal);
out:
  free(big);
  return rc;
}

/* A pre-encoded frame (a chat message, shared with TCP members) as this
 * server's datagram: with a key, a copy whose head carries a new ts and n,
 * followed by the trailer; without, the frame itself. A new reference, or
 * NULL (out of memory, or not one frame). */
static sk_buf *datagram_of(sk__udp *u, sk_buf *frame) {
  const uint8_t *p = sk_buf_data(frame);
  size_t len = sk_buf_len(frame), body;
  sk_decoder dec;
  sk_head *h = NULL;
  sk_buf *out = NULL;
  ssize_t used, hl;

  if (u->guard == NULL)
    return sk_buf_ref(frame);
  sk_decoder_init(&dec, 0);
  if ((used = sk_decode_head(&dec, p, len, &h)) <= 0)
    return NULL;
  body = len - (size_t)used;
  if (sk_head_size(h) != body || sk__dg_stamp(h, sk__dg_wall_ms()) < 0 ||
      (hl = sk_head_encode(h, NULL, 0)) < 0 ||
      (out = sk_buf_new((size_t)hl + body + SK_UDP_TAG_LEN)) == NULL)
    goto out;
  uint8_t *q = sk_buf_data(out);
  sk_head_encode(h, q, (size_t)hl);
  memcpy(q + hl, p + used, body);
  struct iovec iov = {q, (size_t)hl + body};
  if (sk__dg_tag(u->guard, &iov, 1, q + hl + body) < 0) {
    sk_buf_unref(out);
    out = NULL;
    goto out;
  }
  sk_buf_set_len(out, (size_t)hl + body + SK_UDP_TAG_LEN);
out:
  sk_head_free(h);
  return out;
}

int sk__dgram_reply_frame(sk_dgram *d, sk_buf *frame) {
  sk_buf *dg = d->srv->udp ? datagram_of(d->srv->udp, frame) : NULL;
  if (dg == NULL)
    return -ENOMEM;
  uv_buf_t b = uv_buf_init((char *)sk_buf_data(dg), (unsigned)sk_buf_len(dg));
  int rc = send_now(d, &b, 1, sk_buf_len(dg));
  sk_buf_unref(dg);
  return rc;
}

int sk__dgram_error(sk_dgram *d, int err, const char *msg) {
  sk_head *h = sk_head_new("error");
  int rc = h ? 0 : -ENOMEM;
  if (rc == 0) {
    sk_head_set_str(h, "code", sk_err_wire_name(err));
    sk_head_set_str(h, "message", msg ? msg : sk_strerror(err));
    rc = sk__dgram_reply(d, h, NULL, 0);
    if (rc == SK_ETOOLARGE) { /* a huge message text: the code alone */
      sk_head_del(h, "message");
      rc = sk__dgram_reply(d, h, NULL, 0);
    }
  }
  sk_head_free(h);
  return rc;
}

/* ---- return routability (no key) ----------------------------------------- */

static int cookie_for(sk__udp *u, const sk_dgram *d, int64_t minute, char out[COOKIE_HEX + 1]) {
  static const char digits[] = "0123456789abcdef";
  char when[24];
  uint8_t mac[32];
  int k = snprintf(when, sizeof(when), ":%lld", (long long)minute);
  struct iovec iov[2] = {{(void *)d->peer, strlen(d->peer)}, {when, (size_t)k}};
  if (sk__hmac_sha256v(u->cookie_key, sizeof(u->cookie_key), iov, 2, mac) < 0)
    return -1;
  for (int i = 0; i < COOKIE_BYTES; i++) {
    out[2 * i] = digits[mac[i] >> 4];
    out[2 * i + 1] = digits[mac[i] & 15];
  }
  out[COOKIE_HEX] = '\0';
  return 0;
}

/* Constant time in the cookie's content: it is a secret per address. */
static int same_cookie(const char *a, const char *b) {
  unsigned diff = 0;
  for (int i = 0; i < COOKIE_HEX; i++)
    diff |= (unsigned)(a[i] ^ b[i]);
  return diff == 0;
}

int sk__dgram_cookie_ok(sk_dgram *d, const char *cookie) {
  sk__udp *u = d->srv->udp;
  int64_t minute = sk__dg_wall_ms() / COOKIE_PERIOD_MS;
  char want[COOKIE_HEX + 1];
  if (u == NULL || cookie == NULL || strnlen(cookie, COOKIE_HEX + 1) != COOKIE_HEX)
    return 0;
  for (int64_t m = minute; m >= minute - 1; m--)
    if (cookie_for(u, d, m, want) == 0 && same_cookie(cookie, want)) {
      sk__dgram_prove(d);
      return 1;
    }
  return 0;
}

int sk__dgram_send_cookie(sk_dgram *d) {
  char c[COOKIE_HEX + 1];
  sk_head *h;
  int rc;
  if (d->srv->udp == NULL || cookie_for(d->srv->udp, d, sk__dg_wall_ms() / COOKIE_PERIOD_MS, c) < 0)
    return SK_EINTERNAL;
  if ((h = sk_head_new("cookie")) == NULL)
    return -ENOMEM;
  rc = sk_head_set_str(h, "cookie", c);
  if (rc == 0)
    rc = sk__dgram_reply(d, h, NULL, 0);
  sk_head_free(h);
  return rc == SK_ETOOLARGE ? 0 : rc; /* a join shorter than its cookie: silence */
}

sk_dgram *sk__dgram_keep(const sk_dgram *d) {
  sk_dgram *k = malloc(sizeof(*k));
  sk_head *req = d->req ? sk_head_dup(d->req) : NULL;
  if (k == NULL || (d->req != NULL && req == NULL)) {
    free(k);
    sk_head_free(req);
    return NULL;
  }
  *k = *d;
  k->req = req;
  return k;
}

void sk__dgram_free(sk_dgram *d) {
  if (d == NULL)
    return;
  sk_head_free((sk_head *)d->req); /* the copy's own, from sk__dgram_keep */
  free(d);
}

/* ---- pushes ------------------------------------------------------------- */

static void on_pushed(uv_udp_send_t *req, int status) {
  push_req *p = (push_req *)req;
  sk_buf_unref(p->frame);
  free(p);
}

/* The socket is full: queue the datagram (a reference of its own), unless
 * the queue is already past SK_UDP_SENDQ. */
static int queue_push(udp_ep *e, sk_buf *dg, const uv_buf_t *b, const struct sockaddr *to) {
  push_req *p;
  int rc;
  if (uv_udp_get_send_queue_size(&e->h) > SK_UDP_SENDQ)
    return SK_EBUSY; /* a peer that cannot keep up loses datagrams, nobody waits */
  if ((p = malloc(sizeof(*p))) == NULL)
    return -ENOMEM;
  p->frame = sk_buf_ref(dg);
  if ((rc = uv_udp_send(&p->req, &e->h, b, 1, to, on_pushed)) < 0) {
    sk_buf_unref(p->frame);
    free(p);
  }
  return rc;
}

int sk__udp_push(sk_server *srv, int ep, const struct sockaddr *to, socklen_t len, sk_buf *frame) {
  udp_ep *e = endpoint(srv, ep);
  sk_buf *dg;
  int rc;

  if (e == NULL)
    return -EPIPE;
  if (sk_buf_len(frame) > SK_UDP_MAX)
    return SK_ETOOLARGE;
  if ((dg = datagram_of(e->set, frame)) == NULL)
    return -ENOMEM;
  uv_buf_t b = uv_buf_init((char *)sk_buf_data(dg), (unsigned)sk_buf_len(dg));
  rc = sk_buf_len(dg) > SK_UDP_MAX ? SK_ETOOLARGE : uv_udp_try_send(&e->h, &b, 1, to);
  if (rc == UV_EAGAIN)
    rc = queue_push(e, dg, &b, to);
  sk_buf_unref(dg);
  return rc < 0 ? rc : 0;
}

/* ---- receiving ---------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  udp_ep *e = h->data;
  /* one datagram is handled completely before the next is read */
  *buf = uv_buf_init((char *)e->set->rbuf, sizeof(e->set->rbuf));
}

/* Exactly one frame filling the whole datagram; otherwise NULL. */
static sk_head *decode_datagram(const uint8_t *p, size_t n, size_t *head_len) {
  sk_decoder dec;
  sk_head *h = NULL;
  sk_decoder_init(&dec, 0);
  ssize_t used = sk_decode_head(&dec, p, n, &h);
  if (used <= 0)
    return NULL;
  if ((size_t)used > n || sk_head_size(h) != n - (size_t)used) {
    sk_head_free(h);
    return NULL;
  }
  *head_len = (size_t)used;
  return h;
}

static void dispatch(sk_dgram *d, const sk_head *h, const uint8_t *body, size_t n) {
  sk_server *srv = d->srv;
  const char *type = sk_head_type(h);
  for (int i = 0; i < srv->ndgram; i++)
    if (srv->dgram[i].seen)
      srv->dgram[i].seen(d, srv->dgram[i].ctx);
  for (int i = 0; i < srv->ndgram; i++)
    for (const char *const *t = srv->dgram[i].types; t && *t; t++)
      if (strcmp(*t, type) == 0) {
        int rc = srv->dgram[i].handle(d, h, body, n, srv->dgram[i].ctx);
        if (rc < 0)
          sk__dgram_error(d, rc, NULL);
        return;
      }
  srv->udp->refused++;
  sk__dgram_error(d, SK_EFORBIDDEN,
                  "not served over UDP (no authentication there): use a TCP listener");
}

/* With a key: the trailer first (nothing of an unauthenticated datagram is
 * parsed), then, once it is decoded, ts and n. Any failure is silence. */
static sk_head *accept_datagram(sk__udp *u, const uv_buf_t *buf, size_t n, size_t *head_len) {
  sk_head *head;
  if (u->guard != NULL) {
    ssize_t flen = sk__dg_verify(u->guard, (const uint8_t *)buf->base, n);
    if (flen < 0) {
      u->unauthentic++;
      return NULL;
    }
    n = (size_t)flen;
  }
  /* garbage is counted and dropped, never answered: answering it would
   * reflect whatever a forged sender address asks for */
  if ((head = decode_datagram((const uint8_t *)buf->base, n, head_len)) == NULL) {
    u->malformed++;
    return NULL;
  }
  if (u->guard != NULL &&
      sk__dg_fresh(u->guard, head, sk__dg_wall_ms(), uv_now(&u->loop->uv)) < 0) {
    u->stale++;
    sk_head_free(head);
    return NULL;
  }
  return head;
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags) {
  udp_ep *e = h->data;
  sk__udp *u = e->set;
  size_t head_len = 0, frame_len;
  sk_head *head;

  if (nread < 0 || addr == NULL || u->closing)
    return;
  u->received++;
  if (!sk__peer_allowed(u->srv, addr)) {
    u->denied++;
    return;
  }
  if (flags & UV_UDP_PARTIAL) {
    u->malformed++;
    return;
  }
  if ((head = accept_datagram(u, buf, (size_t)nread, &head_len)) == NULL)
    return;
  frame_len = (size_t)nread - (u->guard ? SK_UDP_TAG_LEN : 0);
  /* an authenticated datagram is a key holder's, and fresh: its address is
   * taken as proven; any other has to prove it (see net/udp.h) */
  sk_dgram d = {.srv = u->srv,
                .req = head,
                .len = (size_t)nread,
                .budget = (size_t)nread + (u->guard ? SK_UDP_AMP : 0),
                .authed = u->guard != NULL,
                .proven = u->guard != NULL};
  for (d.ep = 0; d.ep < u->neps && u->eps[d.ep] != e; d.ep++) {
  }
  d.fromlen =
      addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
  memcpy(&d.from, addr, d.fromlen);
  sk__addr_format(addr, d.fromlen, d.peer, sizeof(d.peer));
  dispatch(&d, head, (const uint8_t *)buf->base + head_len, frame_len - head_len);
  sk_head_free(head);
}

/* ---- life cycle --------------------------------------------------------- */

static void on_closed(uv_handle_t *h) {
  sk__udp *u = h->data;
  if (h->type == UV_UDP) {
    udp_ep *e = (udp_ep *)h;
    u = e->set;
    free(e);
  }
  if (--u->handles > 0)
    return;
  sk__log_event(u->srv->log, "udp", "udp_stats", "received", 'i', (int64_t)u->received, "answered",
                'i', (int64_t)u->answered, "malformed", 'i', (int64_t)u->malformed, "refused", 'i',
                (int64_t)u->refused, "denied", 'i', (int64_t)u->denied, "unauthentic", 'i',
                (int64_t)u->unauthentic, "stale", 'i', (int64_t)u->stale, "throttled", 'i',
                (int64_t)u->throttled, NULL);
  u->srv->udp = NULL;
  sk__dg_guard_free(u->guard);
  free(u);
}

static void close_all(sk__udp *u) {
  sk_server *srv = u->srv;
  u->closing = 1;
  for (int i = 0; i < srv->ndgram; i++)
    if (srv->dgram[i].closing)
      srv->dgram[i].closing(srv, srv->dgram[i].ctx);
  for (int i = 0; i < u->neps; i++) {
    u->eps[i]->open = 0;
    uv_close((uv_handle_t *)&u->eps[i]->h, on_closed);
    u->eps[i] = NULL;
  }
  uv_close((uv_handle_t *)&u->stopper, on_closed);
  uv_close((uv_handle_t *)&u->tick, on_closed);
}

static void on_check(uv_check_t *c) {
  sk__udp *u = c->data;
  if (!u->closing && atomic_load(&u->srv->stopping))
    close_all(u);
}

static void on_tick(uv_timer_t *t) {
  sk__udp *u = t->data;
  for (int i = 0; i < u->srv->ndgram; i++)
    if (u->srv->dgram[i].tick)
      u->srv->dgram[i].tick(u->srv, u->srv->dgram[i].ctx);
}

static int set_create(sk_server *srv) {
  sk__udp *u = calloc(1, sizeof(*u));
  if (u == NULL)
    return -ENOMEM;
  u->srv = srv;
  u->loop = udp_loop(srv);
  if (srv->auth) {
    if ((u->guard = sk__dg_guard_new(&srv->key, SK_UDP_REPLAY_MAX)) == NULL) {
      free(u);
      return -ENOMEM;
    }
  } else {
    if (getrandom(u->cookie_key, sizeof(u->cookie_key), 0) != (ssize_t)sizeof(u->cookie_key)) {
      free(u);
      return -EAGAIN;
    }
    sk__srclimit_init(&u->limit, SK_SRCLIMIT_RATE, SK_SRCLIMIT_BURST);
    u->limited = 1;
  }
  uv_check_init(&u->loop->uv, &u->stopper);
  uv_check_start(&u->stopper, on_check);
  uv_timer_init(&u->loop->uv, &u->tick);
  uv_timer_start(&u->tick, on_tick, UDP_TICK_MS, UDP_TICK_MS);
  u->stopper.data = u->tick.data = u;
  u->handles = 2;
  srv->udp = u;
  return 0;
}

static int ep_bind(udp_ep *e, sk_listen_spec *ls) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  unsigned flags = ls->addr.family == AF_INET6 ? UV_UDP_IPV6ONLY : 0;
  int rc = uv_udp_bind(&e->h, (const struct sockaddr *)&ls->addr.ss, flags);
  if (rc == 0)
    rc = uv_udp_getsockname(&e->h, (struct sockaddr *)&ss, &len);
  if (rc == 0)
    rc = uv_udp_recv_start(&e->h, on_alloc, on_recv);
  if (rc == 0)
    sk__addr_format((struct sockaddr *)&ss, (socklen_t)len, ls->bound, sizeof(ls->bound));
  return rc;
}

int sk__udp_open(sk_server *srv, sk_listen_spec *ls, const char **why) {
  udp_ep *e;
  int rc;

  if (ls->addr.family != AF_INET && ls->addr.family != AF_INET6) {
    *why = "--udp wants an IP address (HOST:PORT or [IPv6]:PORT), not a Unix socket";
    return -EINVAL;
  }
  if (srv->udp == NULL && (rc = set_create(srv)) < 0)
    return rc;
  if (srv->udp->neps >= SK_MAX_LISTENERS || (e = calloc(1, sizeof(*e))) == NULL)
    return -ENOMEM;
  e->set = srv->udp;
  if ((rc = uv_udp_init_ex(&srv->udp->loop->uv, &e->h, (unsigned)ls->addr.family)) < 0) {
    free(e);
    return rc;
  }
  e->h.data = e;
  srv->udp->handles++;
  srv->udp->eps[srv->udp->neps++] = e;
  e->open = 1;
  return ep_bind(e, ls); /* a failure is closed with the rest at stop */
}
