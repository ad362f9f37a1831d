/* seed_conn.c - the stream plumbing every seed service shares: accept and
 * admit, one read buffer, copied writes, an idle timer, a flushing close,
 * and the single place a connection is freed. */
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/core.h"
#include "service/seed.h"
#include "sockit/error.h"

typedef struct wreq {
  uv_write_t req;
  size_t n;
  char data[];
} wreq;

/* The seed formats never authenticate (but for `auth`), so their
 * connection lines are limited per source as the native pre-auth ones are;
 * what a connection did (exec, put) is always logged. */
void sk__seed_log(sk_seed_conn *sc, const char *event, ...) {
  static const char *const limited[] = {"accept", "close", "timeout", "auth_failed",
                                        "rate_limited"};
  int limit = 0;
  va_list ap;
  for (size_t i = 0; i < sizeof(limited) / sizeof(limited[0]); i++)
    limit |= strcmp(event, limited[i]) == 0;
  va_start(ap, event);
  if (limit && sc->srv->log != NULL)
    sk__log_preauthv(sc->srv->log, sc->src, sk__now_mono(), sc->peer, event, ap);
  else
    sk__log_eventv(sc->srv->log, sc->peer, event, ap);
  va_end(ap);
}

void sk__seed_hold(sk_seed_conn *sc) {
  sc->holds++;
}

/* The one release point: runs when the handles are closed and no request
 * holds the connection any more. */
void sk__seed_drop(sk_seed_conn *sc) {
  if (--sc->holds > 0)
    return;
  sk__loop_untrack(sc->loop, &sc->wc);
  if (sc->counted)
    atomic_fetch_sub(&sc->srv->nconns, 1);
  sk__seed_log(sc, "close", "wire", 's', sc->ops->name, "bytes_in", 'i', (int64_t)sc->bytes_in,
               "bytes_out", 'i', (int64_t)sc->bytes_out, "duration", 'f',
               (double)(uv_hrtime() - sc->t_start) / 1e9, NULL);
  if (sc->ops->free)
    sc->ops->free(sc);
  free(sc->rbuf);
  free(sc);
}

static void on_handle_closed(uv_handle_t *h) {
  sk__seed_drop(h->data);
}

static void close_handles(sk_seed_conn *sc) {
  if (sc->handles_closing)
    return;
  sc->handles_closing = 1;
  uv_close(&sc->h.handle, on_handle_closed);
  uv_close((uv_handle_t *)&sc->idle, on_handle_closed);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  close_handles(req->data);
}

void sk__seed_close(sk_seed_conn *sc, int flush) {
  if (!sc->closing) {
    sc->closing = 1;
    uv_read_stop(&sc->h.stream);
    if (sc->ops->closing)
      sc->ops->closing(sc);
    /* a flushing close waits for the queued writes, then closes */
    if (flush && uv_is_writable(&sc->h.stream) && sk__seed_queued(sc) > 0 &&
        uv_shutdown(&sc->shutdown, &sc->h.stream, on_shutdown) == 0)
      return;
  }
  close_handles(sc);
}

void sk__seed_done(sk_seed_conn *sc) {
  if (sc->stop_asked)
    sk__seed_close(sc, 1);
}

static void on_written(uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  sk_seed_conn *sc = req->data;
  if (status == 0)
    sc->bytes_out += w->n;
  free(w);
  if (status < 0)
    sk__seed_close(sc, 0);
}

int sk__seed_writev(sk_seed_conn *sc, const uv_buf_t *bufs, unsigned nbufs) {
  size_t n = 0;
  wreq *w;
  uv_buf_t one;
  int rc;

  if (sc->closing)
    return -EPIPE;
  for (unsigned i = 0; i < nbufs; i++)
    n += bufs[i].len;
  w = malloc(sizeof(*w) + n);
  if (w == NULL)
    return -ENOMEM;
  w->n = 0;
  for (unsigned i = 0; i < nbufs; i++) {
    if (bufs[i].len > 0) /* an empty piece may have a NULL base */
      memcpy(w->data + w->n, bufs[i].base, bufs[i].len);
    w->n += bufs[i].len;
  }
  w->req.data = sc;
  one = uv_buf_init(w->data, (unsigned)n);
  rc = uv_write(&w->req, &sc->h.stream, &one, 1, on_written);
  if (rc < 0)
    free(w); /* the callback will never run */
  return rc;
}

int sk__seed_write(sk_seed_conn *sc, const void *p, size_t n) {
  uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
  return sk__seed_writev(sc, &b, 1);
}

size_t sk__seed_queued(const sk_seed_conn *sc) {
  return uv_stream_get_write_queue_size(&sc->h.stream);
}

/* ---- reading -------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  sk_seed_conn *sc = h->data;
  *buf = uv_buf_init(sc->rbuf, SK_SEED_RBUF);
}

static void on_idle(uv_timer_t *t) {
  sk_seed_conn *sc = t->data;
  /* not reading because of our own work (a command running, a slow disk):
   * that is not the peer being idle */
  if (!sc->reading && sc->ops->busy && sc->ops->busy(sc)) {
    uv_timer_start(&sc->idle, on_idle, (uint64_t)sc->srv->cfg.idle_timeout * 1000, 0);
    return;
  }
  sk__seed_log(sc, "timeout", "wire", 's', sc->ops->name, NULL);
  sk__seed_close(sc, 0);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  sk_seed_conn *sc = s->data;
  if (n == 0 || sc->closing)
    return;
  if (n < 0) {
    sc->eof = 1;
    uv_read_stop(s);
    if (sc->ops->eof)
      sc->ops->eof(sc);
    else
      sk__seed_close(sc, 1);
    return;
  }
  sc->bytes_in += (uint64_t)n;
  uv_timer_start(&sc->idle, on_idle, (uint64_t)sc->srv->cfg.idle_timeout * 1000, 0);
  sc->ops->read(sc, buf->base, (size_t)n);
}

void sk__seed_pause(sk_seed_conn *sc) {
  sc->reading = 0;
  uv_read_stop(&sc->h.stream);
}

void sk__seed_resume(sk_seed_conn *sc) {
  sc->reading = 1;
  if (!sc->closing && !sc->eof)
    uv_read_start(&sc->h.stream, on_alloc, on_read);
}

/* ---- accepting ------------------------------------------------------------ */

static void on_stop(sk_wire_conn *wc, int now) {
  sk_seed_conn *sc = (sk_seed_conn *)((char *)wc - offsetof(sk_seed_conn, wc));
  sc->stop_asked = 1;
  if (now || !sc->ops->busy || !sc->ops->busy(sc))
    sk__seed_close(sc, !now);
}

static sk_seed_conn *conn_new(sk_listener *l, const sk_seed_ops *ops) {
  sk_seed_conn *sc = calloc(1, ops->size);
  char *rbuf = malloc(SK_SEED_RBUF);
  int rc = -ENOMEM;
  if (sc != NULL && rbuf != NULL)
    rc = l->spec->addr.family != AF_UNIX ? uv_tcp_init(&l->loop->uv, &sc->h.tcp)
                                         : uv_pipe_init(&l->loop->uv, &sc->h.pipe, 0);
  if (rc < 0) {
    free(sc);
    free(rbuf);
    return NULL;
  }
  sc->rbuf = rbuf;
  sc->loop = l->loop;
  sc->uv = &l->loop->uv;
  sc->srv = l->loop->srv;
  sc->spec = l->spec;
  sc->ops = ops;
  sc->h.handle.data = sc;
  uv_timer_init(&l->loop->uv, &sc->idle);
  sc->idle.data = sc;
  sc->shutdown.data = sc;
  sc->holds = 2; /* the two handles */
  sc->t_start = uv_hrtime();
  sc->wc.stop = on_stop;
  sk__loop_track(sc->loop, &sc->wc);
  return sc;
}

/* --allow/--deny and --max-conns, as for native connections. */
static int admit(sk_seed_conn *sc, const struct sockaddr *sa) {
  int rc = sk__admit(sc->srv, sa);
  sc->counted = rc == 0;
  return rc;
}

void sk__seed_accept(sk_listener *l, int fd, const sk_seed_ops *ops) {
  sk_seed_conn *sc = conn_new(l, ops);
  struct sockaddr_storage ss;
  int rc;

  if (sc == NULL) {
    close(fd); /* out of memory: the peer sees a close rather than silence */
    return;
  }
  if (sk__stream_adopt(&sc->h.stream, fd, &ss, sc->peer, sizeof(sc->peer)) < 0) {
    sk__seed_close(sc, 0);
    return;
  }
  sk__rl_source(sc->srv, (struct sockaddr *)&ss, fd, sc->src);
  rc = admit(sc, (struct sockaddr *)&ss);
  if (rc != -EACCES)
    sk__seed_log(sc, "accept", "wire", 's', ops->name, NULL);
  if (rc < 0 || atomic_load(&sc->srv->stopping)) {
    sk__seed_close(sc, 0); /* the seed formats have no way to say why */
    return;
  }
  uv_timer_start(&sc->idle, on_idle, (uint64_t)sc->srv->cfg.idle_timeout * 1000, 0);
  if (ops->start)
    ops->start(sc);
  if (!sc->closing)
    sk__seed_resume(sc);
}

/* ---- start-up --------------------------------------------------------------- */

static int is_loopback(const sk_addr *a) {
  if (a->family == AF_UNIX)
    return 1; /* only this machine can connect */
  if (a->family == AF_INET)
    return ((const uint8_t *)&((const struct sockaddr_in *)&a->ss)->sin_addr)[0] == 127;
  if (a->family == AF_INET6) {
    const struct in6_addr *in6 = &((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(in6) || (IN6_IS_ADDR_V4MAPPED(in6) && in6->s6_addr[12] == 127);
  }
  return 0;
}

/* Warn once per server: on the first seed listener in the option list. */
static int first_seed_listener(const sk_server *srv, const sk_listen_spec *ls) {
  for (int i = 0; i < srv->cfg.nlisten; i++) {
    const sk_listen_spec *o = &srv->cfg.listen[i];
    if (o->kind == SK_LISTEN_STREAM && strcmp(o->wire, "seed") == 0)
      return o == ls;
  }
  return 0;
}

int sk__seed_check(sk_server *srv, const sk_listen_spec *ls, const char **why) {
  static char msg[SK_ADDR_TEXT + 200];
  if (!srv->cfg.wire_seed_public && !is_loopback(&ls->addr)) {
    snprintf(msg, sizeof(msg),
             "--wire seed listener %s is not a loopback address: the seed wire has no real "
             "security; pass --wire-seed-public to serve it anyway",
             ls->text);
    *why = msg;
    return -EACCES;
  }
  if (first_seed_listener(srv, ls))
    sk__notice(srv, SK_NOTICE_WARNING,
               "--wire seed is unframed and insecure: the tutorial's formats have no "
               "framing, no encryption and weak or no authentication; use them for "
               "teaching and compatibility only");
  return 0;
}
