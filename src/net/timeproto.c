/* timeproto.c - RFC 867 daytime and RFC 868 time (SPEC 7), each on TCP and
 * UDP at one address, on loop 0.
 *
 * Every handle lives in a tp_listener (first member: sk_listener) that is
 * put in loop->listeners[] as soon as its handle exists, so the loop's
 * graceful stop closes and frees it like any other listener. A TCP peer gets
 * its answer, then a FIN; we keep reading (and dropping) what it sends until
 * its EOF or TP_LINGER_MS, so that a chatty client's unread bytes cannot turn
 * our close into a reset that destroys the answer in flight. No auth: these
 * protocols have none, and they are off unless asked for.
 *
 * UDP reflection: an answer goes to whatever address the datagram claims,
 * and both answers are longer than an empty request (26 and 4 bytes for 0).
 * So an empty datagram gets no answer (classic RFC 868 clients send one:
 * they have to send a byte now), and each source (net/srclimit.h) gets at
 * most SK_SRCLIMIT_RATE answers a second, per listener.
 *
 * The answers come from the server's clock: the system's, or the one the
 * application gave sk_server_set_clock (tests use it for RFC 868's 2036
 * wrap, through a test program of their own). */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/zone.h"
#include "net/core.h"
#include "net/srclimit.h"
#include "sockit/error.h"

#define TP_LINGER_MS 2000
#define TP_ANSWER_MAX 64
#define RFC868_EPOCH_OFFSET 2208988800u /* seconds from 1900-01-01 to 1970-01-01 */

typedef struct tp_listener {
  sk_listener l;      /* first: the loop frees the whole through l.h.handle.data */
  char drop[512];     /* UDP requests are read here and ignored */
  sk__srclimit limit; /* UDP answers per source */
} tp_listener;

/* One accepted TCP peer: freed when both of its handles have closed. */
typedef struct tp_conn {
  uv_tcp_t tcp;
  uv_timer_t linger;
  uv_write_t wr;
  uv_shutdown_t sd;
  char out[TP_ANSWER_MAX];
  char drop[512];
  int open_handles;
} tp_conn;

static void accept_peer(sk_listener *l, int fd);
static const sk_wire wire_daytime = {.name = "daytime", .accept = accept_peer};
static const sk_wire wire_rfc868 = {.name = "rfc868", .accept = accept_peer};

/* ---- the answers ----------------------------------------------------------- */

static int64_t now(const sk_server *srv) {
  return srv->clock != NULL ? srv->clock(srv->clock_ctx) : (int64_t)time(NULL);
}

/* asctime's layout ("Thu Nov  6 01:10:00 2026") in local time (UTC if
 * local time cannot say), then CRLF. Returns the length. */
static size_t daytime_answer(int64_t t, char *out) {
  static const char layout[] = "%a %b %e %H:%M:%S %Y";
  int n = sk__time_format(t, "local", layout, out, TP_ANSWER_MAX - 2);
  if (n < 0 && (n = sk__time_format(t, "UTC", layout, out, TP_ANSWER_MAX - 2)) < 0)
    n = 0;
  memcpy(out + n, "\r\n", 2);
  return (size_t)n + 2;
}

/* Seconds since 1900 modulo 2^32, big-endian: unsigned arithmetic wraps in
 * 2036 exactly as RFC 868 clients expect. Returns the length (4). */
static size_t rfc868_answer(int64_t t, char *out) {
  uint32_t v = (uint32_t)t + RFC868_EPOCH_OFFSET;
  out[0] = (char)(v >> 24);
  out[1] = (char)(v >> 16);
  out[2] = (char)(v >> 8);
  out[3] = (char)v;
  return 4;
}

static size_t answer(const sk_listener *l, char *out) {
  int64_t t = now(l->loop->srv);
  return l->wire == &wire_daytime ? daytime_answer(t, out) : rfc868_answer(t, out);
}

/* ---- TCP peers ------------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h) {
  tp_conn *c = h->data;
  if (--c->open_handles == 0)
    free(c);
}

static void conn_close(tp_conn *c) {
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
  if (!uv_is_closing((uv_handle_t *)&c->linger))
    uv_close((uv_handle_t *)&c->linger, on_conn_closed);
}

static void on_linger(uv_timer_t *t) {
  conn_close(t->data);
}

static void on_drop_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  tp_conn *c = h->data;
  *buf = uv_buf_init(c->drop, sizeof(c->drop));
}

/* Whatever the peer sends is ignored; its EOF (or an error) ends the peer. */
static void on_drop_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  if (n < 0)
    conn_close(s->data);
}

/* Answer, then FIN: libuv runs the shutdown after the write. */
static int conn_start(sk_listener *l, tp_conn *c) {
  struct sockaddr_storage ss;
  int len = sizeof(ss), rc;
  uv_buf_t b;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) < 0 ||
      !sk__peer_allowed(l->loop->srv, (struct sockaddr *)&ss))
    return -EACCES;
  b = uv_buf_init(c->out, (unsigned)answer(l, c->out));
  if ((rc = uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, NULL)) < 0 ||
      (rc = uv_shutdown(&c->sd, (uv_stream_t *)&c->tcp, NULL)) < 0 ||
      (rc = uv_read_start((uv_stream_t *)&c->tcp, on_drop_alloc, on_drop_read)) < 0)
    return rc;
  return uv_timer_start(&c->linger, on_linger, TP_LINGER_MS, 0);
}

static void accept_peer(sk_listener *l, int fd) {
  tp_conn *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    close(fd); /* out of memory: the peer sees a close rather than silence */
    return;
  }
  uv_tcp_init(&l->loop->uv, &c->tcp);
  uv_timer_init(&l->loop->uv, &c->linger);
  c->tcp.data = c->linger.data = c;
  c->open_handles = 2;
  if (uv_tcp_open(&c->tcp, fd) < 0) {
    close(fd); /* the handle did not take it */
    conn_close(c);
  } else if (conn_start(l, c) < 0) {
    conn_close(c);
  }
}

/* ---- UDP ------------------------------------------------------------------- */

static void on_udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  tp_listener *tl = h->data;
  *buf = uv_buf_init(tl->drop, sizeof(tl->drop));
}

/* Any datagram of at least one byte gets the answer, within its source's
 * rate (see the top). A full socket buffer drops it, as UDP may. libuv
 * reports "nothing more to read" as n == 0 with no address, and an empty
 * datagram as n == 0 with one: both end here. */
static void on_udp_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                        unsigned flags) {
  sk_listener *l = u->data;
  tp_listener *tl = (tp_listener *)l;
  char out[TP_ANSWER_MAX];
  uv_buf_t b;
  if (n <= 0 || from == NULL || !sk__peer_allowed(l->loop->srv, from) ||
      !sk__srclimit_take(&tl->limit, from, uv_now(u->loop)))
    return;
  b = uv_buf_init(out, (unsigned)answer(l, out));
  uv_udp_try_send(u, &b, 1, from);
}

/* ---- opening ----------------------------------------------------------------- */

/* A listener on loop 0, already owned by the loop when this returns it. */
static tp_listener *add_listener(sk_server *srv, sk_listen_spec *ls, const sk_wire *wire) {
  sk_loop *loop = &srv->loops[0];
  tp_listener *tl;
  if (loop->nlisteners >= (int)(sizeof(loop->listeners) / sizeof(loop->listeners[0])))
    return NULL;
  if ((tl = calloc(1, sizeof(*tl))) == NULL)
    return NULL;
  tl->l.loop = loop;
  tl->l.spec = ls;
  tl->l.wire = wire;
  sk__srclimit_init(&tl->limit, SK_SRCLIMIT_RATE, SK_SRCLIMIT_BURST);
  return tl;
}

static void own(sk_loop *loop, tp_listener *tl) {
  tl->l.h.handle.data = tl;
  loop->listeners[loop->nlisteners++] = &tl->l;
}

/* Accepted by the core like every stream listener (accept.c). The socket
 * learns the real port into ls, so the UDP side binds the same one, also
 * when port 0 was asked for. */
static int open_tcp(sk_server *srv, sk_listen_spec *ls, const sk_wire *wire) {
  tp_listener *tl = add_listener(srv, ls, wire);
  int fd;
  if (tl == NULL)
    return -ENOMEM;
  if ((fd = sk__stream_socket(ls, 0)) < 0) {
    free(tl);
    return fd;
  }
  return sk__listener_start(&srv->loops[0], &tl->l, fd);
}

static int open_udp(sk_server *srv, sk_listen_spec *ls, const sk_wire *wire) {
  tp_listener *tl = add_listener(srv, ls, wire);
  int rc;
  if (tl == NULL)
    return -ENOMEM;
  uv_udp_init_ex(&srv->loops[0].uv, &tl->l.h.udp, (unsigned)ls->addr.family);
  own(&srv->loops[0], tl);
  if ((rc = uv_udp_bind(&tl->l.h.udp, (struct sockaddr *)&ls->addr.ss,
                        ls->addr.family == AF_INET6 ? UV_UDP_IPV6ONLY : 0)) < 0)
    return rc;
  return uv_udp_recv_start(&tl->l.h.udp, on_udp_alloc, on_udp_recv);
}

/* On failure the handles opened so far stay in loop 0's listeners and close
 * with it; the caller words the error ("cannot listen on ADDR: ..."). */
static int open_both(sk_server *srv, sk_listen_spec *ls, const sk_wire *wire, const char **why) {
  int rc = open_tcp(srv, ls, wire);
  if (rc == 0)
    rc = open_udp(srv, ls, wire);
  return rc;
}

int sk__daytime_open(sk_server *srv, sk_listen_spec *ls, const char **why) {
  return open_both(srv, ls, &wire_daytime, why);
}

int sk__rfc868_open(sk_server *srv, sk_listen_spec *ls, const char **why) {
  return open_both(srv, ls, &wire_rfc868, why);
}
