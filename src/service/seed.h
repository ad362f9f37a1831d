/* seed.h - the seed wire's adapter API (SPEC 6): the tutorial's own Python
 * programs served unchanged. One adapter per service in src/services/seed/;
 * src/net/seed_conn.c has the stream plumbing they share; the formats are
 * parsed in src/wire/seed.c.
 *
 * Ownership: a seed_conn owns its stream handle, idle timer and service
 * state. It is freed in exactly one place (release() in seed_conn.c): after
 * its handles' close callbacks have run and the last hold (sk__seed_hold,
 * taken by every request in flight: writes to disk, a child process) has
 * been dropped. Everything runs on loop 0's thread. */
#ifndef SOCKIT_SERVICE_SEED_H
#define SOCKIT_SERVICE_SEED_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "auth/ratelimit.h"
#include "common/addr.h"
#include "service/service.h"

#define SK_SEED_RBUF (64u * 1024) /* read buffer, allocated once per conn */

typedef struct sk_seed_conn sk_seed_conn;

/* What a service does with its connection; every member optional but read. */
typedef struct sk_seed_ops {
  const char *name; /* "time", ... for the log */
  /* A connection was accepted and admitted (e.g. send a challenge). */
  void (*start)(sk_seed_conn *sc);
  /* One read: n > 0 bytes at p, valid only during the call. */
  void (*read)(sk_seed_conn *sc, const char *p, size_t n);
  /* The peer closed its side or the read failed. Default: close. */
  void (*eof)(sk_seed_conn *sc);
  /* The connection is closing (once): stop what is in flight. */
  void (*closing)(sk_seed_conn *sc);
  /* Last call before the memory is freed: release the service's state. */
  void (*free)(sk_seed_conn *sc);
  /* A graceful stop asked: 1 if the service is busy (let it finish). */
  int (*busy)(sk_seed_conn *sc);
  size_t size; /* sizeof the service's struct, which starts with sk_seed_conn */
} sk_seed_ops;

struct sk_seed_conn {
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_handle_t handle;
    uv_stream_t stream;
  } h;
  uv_timer_t idle;
  uv_shutdown_t shutdown; /* a flushing close in progress */
  sk_wire_conn wc;
  struct sk_loop *loop; /* the core's (seed_conn.c) */
  uv_loop_t *uv;        /* its libuv loop, for the adapter's handles and requests */
  sk_server *srv;
  const sk_listen_spec *spec;
  const sk_seed_ops *ops;
  char *rbuf;
  int holds;           /* handles open + requests in flight */
  int closing;         /* sk__seed_close was called */
  int handles_closing; /* uv_close called on both handles */
  int eof;             /* the peer closed its side: never read again */
  int reading;         /* wanted by the service (sk__seed_pause / resume) */
  int stop_asked;      /* the server is stopping: close when idle */
  int counted;         /* in srv->nconns */
  uint64_t bytes_in, bytes_out, t_start;
  char peer[SK_ADDR_TEXT];
  char src[SK__RATELIMIT_KEY]; /* failed-auth source (ratelimit.h); "" exempt */
};

/* The wire's accept for a service: allocate ops->size bytes, open fd (a
 * connection accepted on l, ours to close in every case) in its handle,
 * admit the peer (--allow/--deny, --max-conns) and start reading. */
void sk__seed_accept(sk_listener *l, int fd, const sk_seed_ops *ops);

/* The shared start-up check: loopback only unless --wire-seed-public, and
 * the one-time warning that the seed wire is unframed and insecure. */
int sk__seed_check(sk_server *srv, const sk_listen_spec *ls, const char **why);

/* Queue n bytes (copied) for the peer. Returns 0 or a negative error (the
 * connection is closing). */
int sk__seed_write(sk_seed_conn *sc, const void *p, size_t n);

/* The same for several pieces sent as one write, in order. */
int sk__seed_writev(sk_seed_conn *sc, const uv_buf_t *bufs, unsigned nbufs);

/* Bytes queued for the peer and not yet written. */
size_t sk__seed_queued(const sk_seed_conn *sc);

/* Close after what is queued has been written (flush = 1) or at once. Safe
 * to call more than once and from any callback of the connection. */
void sk__seed_close(sk_seed_conn *sc, int flush);

/* A request finished: if the server is stopping, close now. */
void sk__seed_done(sk_seed_conn *sc);

/* Stop / restart reading (a request is in flight: let TCP push back). */
void sk__seed_pause(sk_seed_conn *sc);
void sk__seed_resume(sk_seed_conn *sc);

/* Keep the connection's memory alive across an asynchronous request;
 * sk__seed_drop may free it (call it last). */
void sk__seed_hold(sk_seed_conn *sc);
void sk__seed_drop(sk_seed_conn *sc);

/* A log line for the connection (sk__log_event fields, closed by NULL). */
void sk__seed_log(sk_seed_conn *sc, const char *event, ...);

#endif
