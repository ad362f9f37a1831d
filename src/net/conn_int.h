/* conn_int.h - a native connection's state, shared by conn.c (read side,
 * dispatch, authentication, lifetime) and wqueue.c (write side). Nothing
 * outside src/net includes it: services see an opaque sk_conn. */
#ifndef SOCKIT_NET_CONN_INT_H
#define SOCKIT_NET_CONN_INT_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "net/adapter.h"
#include "net/core.h"

typedef struct wq_item {
  sk_buf *buf;
  size_t off, len;
  int chunk; /* a coalescing chunk we own: more bytes may be appended */
} wq_item;

enum body_mode { BODY_NONE, BODY_GATHER, BODY_SINK, BODY_DISCARD };

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
  atomic_int refs;
  int handles_open;

  unsigned authed : 1, closing : 1, hard_closing : 1, lingering : 1, reading : 1;
  unsigned in_process : 1, rerun : 1, dirty : 1, sink_paused : 1, congested : 1;
  unsigned stop_when_idle : 1, counted : 1, eof : 1;
  unsigned lent : 1;          /* the read in progress goes to the sink's memory (on_alloc) */
  unsigned budget_paused : 1; /* not read while the server is over --max-buffered */
  unsigned native : 1;        /* the engine decodes frames (else the adapter owns the bytes) */

  /* a wire adapter below the engine (adapter.h), or NULL for plain native */
  const sk_adapter *ad;
  void *ad_state;

  /* read side */
  uint8_t *rbuf;
  size_t rpos, rlen;
  sk_decoder dec;
  size_t got; /* body bytes just read into the sink's memory, not yet told */

  /* the frame whose body is being read */
  sk_head *fhead;
  const sk_handler_ref *fref;
  enum body_mode bmode;
  uint8_t *gather;
  size_t gathered;

  /* a head that waits for the active request to finish */
  sk_head *pending;

  /* the active (SK_ASYNC) request */
  int active, active_svc;
  int active_slot; /* its metrics type slot */
  /* metrics: when the last read came in (the requests it carried began
   * then), the active request's start, and the error each request sent
   * (0: none yet), for sockit_requests_total's code label */
  uint64_t t_read, t_req;
  int cur_err, req_err;
  /* successful requests of one type that came in the last read and were
   * answered in this pass of process(): counted at its end with one clock
   * reading (their answers leave together then) */
  int batch_slot;
  uint32_t batch_n;
  int lidx; /* index of the listener's spec in srv->cfg.listen */
  sk_head *req_head;
  const sk_head *cur_head; /* set during a handler call: whose id to repeat */

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

  void **svc_state;
  uint32_t svc_setup;

  char nonce[SK_NONCE_HEX + 1];
  uint64_t bytes_in, bytes_out, t_start, last_active;
  char peer[64];               /* "[v6]:port" is at most 54 bytes, Unix peers are "unix" */
  char src[SK__RATELIMIT_KEY]; /* failed-auth source (ratelimit.h); "" exempt */
  sk_conn *prev, *next, *next_dirty;
};

/* Whose "id" a response repeats: the request a handler is running for, or
 * else the active (SK_ASYNC) request. */
static inline const sk_head *sk__id_source(const sk_conn *c) {
  return c->cur_head ? c->cur_head : c->req_head;
}

/* ---- wqueue.c ---- */
void sk__mark_dirty(sk_conn *c); /* flush before the loop blocks */
/* Queue a head (adds id_src's "id", sets "size" to n); the body follows. */
int sk__send_frame(sk_conn *c, sk_head *head, const sk_head *id_src, uint64_t n);
int sk__send_error(sk_conn *c, const sk_head *id_src, int err, const char *msg);
void sk__wq_free(sk_conn *c); /* drop every queued and deferred buffer */

/* ---- conn.c ---- */
void sk__conn_hard_close(sk_conn *c);               /* close now: handles, then finish() */
void sk__conn_after_drain(sk_conn *c);              /* the queue shrank: resume or close */
void sk__conn_budget_pause(sk_conn *c, int paused); /* budget.c: stop or restart reading */

#endif
