/* adapter.h - a wire adapter below a native connection's frame engine.
 *
 * A connection accepted with an adapter (the HTTP listener's, src/http)
 * runs the same engine as every native connection: reading, dispatch,
 * limits, auth, rate limit, slow-consumer drops, timers and log lines. The
 * adapter only changes the bytes on either side of it:
 *
 *   in:  bytes read from the socket land in the read buffer as usual; the
 *        adapter turns the new ones into native stream bytes in place (a
 *        WebSocket's payload without its frame headers, never longer than
 *        what came in), or consumes them itself (an HTTP request);
 *   out: before each native frame is queued the adapter may queue a header
 *        of its own (a WebSocket message header), and may wrap the pieces
 *        of a long body separately.
 *
 * Until the adapter calls sk__conn_start_native, the engine decodes nothing
 * and sends no hello: the adapter owns the connection's bytes.
 */
#ifndef SOCKIT_NET_ADAPTER_H
#define SOCKIT_NET_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

#include "sockit/server.h"

typedef struct sk_adapter {
  const char *name;
  /* A new connection: set up the state (sk__conn_adapter_state). 0 or an
   * error (the connection is then closed without a word). */
  int (*start)(sk_conn *c);
  /* Bytes [at, rlen) of the read buffer just came in. Either rewrite them
   * in place into native bytes (sk__conn_rbuf / sk__conn_set_rlen) and
   * return 0, or consume them (set rpos = rlen) and return 0. A negative
   * return means the adapter closed the connection. */
  int (*input)(sk_conn *c, size_t at);
  /* A native frame of head_n bytes (prefix and head) and body_n body bytes
   * is about to be queued. 0 or an error. */
  int (*frame)(sk_conn *c, size_t head_n, uint64_t body_n);
  /* n bytes of the current frame's body are about to be queued. */
  int (*body)(sk_conn *c, size_t n);
  /* The connection is closing (err < 0: with that error). Queue the last
   * words: the native error frame through sk__send_error, then its own. */
  void (*closing)(sk_conn *c, int err);
  /* The connection timer fired while the adapter owns the bytes. */
  void (*timeout)(sk_conn *c);
  /* The connection is gone: free the state. */
  void (*finish)(sk_conn *c);
} sk_adapter;

/* The adapter's per-connection state. */
void *sk__conn_adapter_state(const sk_conn *c);
void sk__conn_set_adapter_state(sk_conn *c, void *state);
/* The read buffer, its read position and length (see input above). */
uint8_t *sk__conn_rbuf(sk_conn *c, size_t *rpos, size_t *rlen);
void sk__conn_set_rbuf(sk_conn *c, size_t rpos, size_t rlen);
/* Queue raw bytes, not a frame (an HTTP response, a WebSocket header). */
int sk__conn_write_raw(sk_conn *c, const void *data, size_t n);
int sk__conn_write_buf(sk_conn *c, sk_buf *b, size_t off, size_t n);
/* Queue the error frame for err as the engine would (the request's id). */
int sk__conn_send_error(sk_conn *c, int err);
/* Hand the connection to the native engine: hello, auth deadline, frames. */
int sk__conn_start_native(sk_conn *c);
/* (Re)arm the connection timer for ms milliseconds (adapter-owned phase). */
void sk__conn_timer(sk_conn *c, uint64_t ms);
/* Close now, no last words (a peer that broke the protocol). */
void sk__conn_abort(sk_conn *c);

#endif
