/* conn_int.h - a native connection's state, shared by conn.c (the plumbing
 * around the protocol engine of engine.h: reads, auth checks, timers,
 * lifetime), wqueue.c (write side) and tls_conn.c (TLS transport). Nothing
 * outside src/net includes it: services see an opaque sk_conn. */
#ifndef SOCKIT_NET_CONN_INT_H
#define SOCKIT_NET_CONN_INT_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "net/adapter.h"
#include "net/core.h"
#include "net/engine.h"

typedef struct wq_item {
  sk_buf *buf;
  size_t off, len;
  int chunk; /* a coalescing chunk we own: more bytes may be appended */
} wq_item;

/* A transport: how a connection's bytes meet its socket. The plain one
 * hands libuv the application's own memory (the read buffer, or a sink's
 * memory while a body streams) and writes the queue by reference; TLS
 * (tls_conn.c) reads ciphertext into a buffer of its own and encrypts the
 * queue as it writes. Everything above (decoding, dispatch, services) sees
 * application bytes only. Every member runs on the connection's loop. */
typedef struct sk_transport {
  const char *name;
  /* libuv asks for memory for the next read from the socket. */
  void (*alloc)(sk_conn *c, uv_buf_t *buf);
  /* n > 0 socket bytes landed in the memory of alloc; lent: the plain
   * transport gave a sink's memory (c->lent). Hands them on (process). */
  void (*read)(sk_conn *c, size_t n, int lent);
  /* process() has used every application byte: make more from what the
   * transport holds (decrypt). > 0 bytes added, 0 none, < 0 the connection
   * failed or ended (the transport closed it). NULL: nothing is held. */
  ssize_t (*pull)(sk_conn *c);
  /* Is there room to read from the socket? */
  int (*can_read)(const sk_conn *c);
  /* Write the queue (c->wq) out; called once per loop iteration. */
  void (*flush)(sk_conn *c);
  /* Bytes taken from the queue but not yet on the socket (NULL: none). */
  size_t (*unsent)(const sk_conn *c);
  /* The half-close comes next: a last word (TLS close_notify). Optional. */
  void (*goodbye)(sk_conn *c);
  /* The connection's timer fired before authentication (first after
   * SK_TLS_SILENCE_MS for TLS). 1: the transport ended the connection;
   * 0: the auth deadline applies as for plain connections. Optional. */
  int (*deadline)(sk_conn *c);
  /* The connection's memory goes. Optional. */
  void (*release)(sk_conn *c);
} sk_transport;

extern const sk_transport sk__plain_transport;
struct sk__tls_conn;

struct sk_conn {
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_handle_t handle;
    uv_stream_t stream;
  } h;
  uv_timer_t timer;
  sk_loop *loop;
  sk_server *srv;
  const sk_transport *tp;
  struct sk__tls_conn *tls; /* the TLS transport's state (NULL: plain) */
  atomic_int refs;
  int handles_open;

  unsigned closing : 1, hard_closing : 1, lingering : 1, reading : 1;
  unsigned dirty : 1, congested : 1, runnable : 1;
  unsigned stop_when_idle : 1, counted : 1, eof : 1;
  unsigned lent : 1;          /* the read in progress goes to the sink's memory (on_alloc) */
  unsigned budget_paused : 1; /* not read while the server is over --max-buffered */

  /* a wire adapter below the engine (adapter.h), or NULL for plain native */
  const sk_adapter *ad;
  void *ad_state;
  unsigned tls_psk : 1; /* TLS keyed by the secret: authenticated by the handshake */

  /* the protocol engine (engine.h): the read buffer it is lent, decoding,
   * dispatch, request order, bodies */
  sk_engine eng;
  int lidx; /* index of the listener's spec in srv->cfg.listen */

  /* write side */
  wq_item *wq;
  int wq_first, wq_n, wq_cap;
  int winflight;        /* queue items covered by the write in flight (0: none) */
  size_t wbytes;        /* bytes in the write in flight */
  size_t queued;        /* also counted in srv->buffered */
  uint64_t budget_mark; /* bytes_out when the budget last looked (budget.c) */
  uint64_t out_left;    /* body bytes owed after sk_conn_send_head */
  sk_buf **deferred;    /* pushes waiting for that body to end */
  int ndeferred, deferred_cap;
  size_t deferred_bytes;

  char nonce[SK_NONCE_HEX + 1];
  uint64_t bytes_in, bytes_out, t_start;
  char peer[64];               /* "[v6]:port" is at most 54 bytes, Unix peers are "unix" */
  char src[SK__RATELIMIT_KEY]; /* failed-auth source (ratelimit.h); "" exempt */
  sk_conn *prev, *next, *next_dirty;
  sk_conn *next_run; /* the loop's run queue (runnable) */
};

/* Whose "id" a response repeats: the request a handler is running for, or
 * else the active (SK_ASYNC) request. */
static inline const sk_head *sk__id_source(const sk_conn *c) {
  return sk__engine_id_source(&c->eng);
}

/* ---- wqueue.c ---- */
void sk__mark_dirty(sk_conn *c);     /* flush before the loop blocks */
void sk__wq_flush_plain(sk_conn *c); /* the plain transport's flush */
/* The first queued bytes (*n == 0: none) and dropping n written bytes. */
const uint8_t *sk__wq_front(const sk_conn *c, size_t *n);
void sk__wq_consume(sk_conn *c, size_t n);
/* Queue a head (adds id_src's "id", sets "size" to n); the body follows. */
int sk__send_frame(sk_conn *c, sk_head *head, const sk_head *id_src, uint64_t n);
int sk__send_error(sk_conn *c, const sk_head *id_src, int err, const char *msg);
void sk__wq_free(sk_conn *c); /* drop every queued and deferred buffer */

/* ---- conn.c ---- */
void sk__conn_hard_close(sk_conn *c);               /* close now: handles, then finish() */
void sk__conn_after_drain(sk_conn *c);              /* the queue shrank: resume or close */
void sk__conn_budget_pause(sk_conn *c, int paused); /* budget.c: stop or restart reading */
/* For transports: where application bytes go next (a lent sink buffer or
 * the read buffer; buf->len 0: no room), and n bytes that landed there. */
void sk__conn_app_buf(sk_conn *c, uv_buf_t *buf);
void sk__conn_app_got(sk_conn *c, size_t n);
void sk__conn_process(sk_conn *c);
/* The peer ended its side (UV_EOF) or failed (another error). */
void sk__conn_eof(sk_conn *c, ssize_t why);
/* The transport is ready for frames (the TLS handshake is done). */
void sk__conn_secured(sk_conn *c);

/* ---- tls_conn.c ---- */
/* Switch a just-accepted connection to TLS: no hello until the handshake
 * is done. 0 or an error (the caller closes). */
int sk__tls_conn_start(sk_conn *c);

#endif
