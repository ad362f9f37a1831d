/* fuzz_http.c - the HTTP front's request path (src/http) fed arbitrary bytes
 * in arbitrary splits: HTTP requests, the /ws upgrade, WebSocket frames.
 *
 * The adapter runs against a stand-in connection: the sk_conn functions it
 * calls are defined here (bytes written are counted and thrown away), so the
 * parser, the limits, the routing, /metrics rendering and the WebSocket
 * deframing run exactly as on a server, without a socket or a loop.
 *
 * Input: byte 0's low bit says whether the peer is on loopback (it decides
 * /metrics), bytes 1..4 pick chunk lengths (cycled), the rest is the stream.
 * Invariants: the adapter never grows the native stream past what came in,
 * never reads outside the buffer, and stops taking bytes once it closed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "http/http.h"
#include "net/conn_int.h"
#include "net/core.h"

#define RBUF (64 * 1024)

static const sk_adapter *adapter;
static sk_server srv;
static sk_loop loop;
static int closing, native;
static size_t written;
static const char *peer_ip = "";

/* ---- the stand-in connection ---- */

void sk__conn_accept_with(sk_listener *l, int fd, const struct sk_adapter *ad) {
  (void)l, (void)fd;
  adapter = ad;
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
  FUZZ_CHECK(rpos <= rlen && rlen <= RBUF);
  c->eng.rpos = rpos;
  c->eng.rlen = rlen;
}
int sk__conn_write_raw(sk_conn *c, const void *data, size_t n) {
  (void)c;
  if (n > 0)
    written = fuzz_fnv(written, data, n);
  return 0;
}
int sk__conn_write_buf(sk_conn *c, sk_buf *b, size_t off, size_t n) {
  FUZZ_CHECK(off + n <= sk_buf_len(b));
  return sk__conn_write_raw(c, sk_buf_data(b) + off, n);
}
int sk__conn_send_error(sk_conn *c, int err) {
  (void)c, (void)err;
  return 0;
}
int sk__conn_start_native(sk_conn *c) {
  (void)c;
  native = 1;
  return 0;
}
void sk__conn_timer(sk_conn *c, uint64_t ms) {
  (void)c, (void)ms;
}
const char *sk_conn_peer(const sk_conn *c) {
  (void)c;
  return peer_ip;
}
void sk__conn_abort(sk_conn *c) {
  (void)c;
  closing = 1;
}
void sk_conn_close(sk_conn *c, int err) {
  if (!closing && c->ad_state != NULL)
    adapter->closing(c, err);
  closing = 1;
}
double sk__now_mono(void) {
  return 1.0;
}
size_t sk_conn_queued(const sk_conn *c) {
  (void)c;
  return written & 1 ? (2u << 20) : 0; /* now and then "full": the parser pauses */
}
int sk_conn_is_closing(const sk_conn *c) {
  (void)c;
  return closing;
}
void sk_conn_log(sk_conn *c, const char *event, ...) {
  (void)c, (void)event;
}
sk_server *sk_conn_server(const sk_conn *c) {
  return c->srv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uint8_t rbuf[RBUF];
  sk_conn c;
  size_t pos = 5, k = 0;

  if (size < 5)
    return 0;
  if (adapter == NULL) {
    srv.loops = &loop;
    srv.nloops = srv.nloops_ready = 1;
    loop.srv = &srv;
    sk__wire_http.accept(NULL, -1);
  }
  memset(&c, 0, sizeof(c));
  c.srv = &srv;
  c.loop = &loop;
  c.eng.rbuf = rbuf;
  c.ad = adapter;
  closing = native = 0;
  peer_ip = (data[0] & 1) ? "127.0.0.1:9" : "192.0.2.9:9";
  FUZZ_CHECK(adapter->start(&c) == 0);
  while (pos < size && !closing) {
    size_t n = (size_t)data[1 + k++ % 4] * 7 + 1, at;
    if (n > size - pos)
      n = size - pos;
    if (c.eng.rpos == c.eng.rlen) /* the engine took everything: start over */
      c.eng.rpos = c.eng.rlen = 0;
    if (n > RBUF - c.eng.rlen)
      n = RBUF - c.eng.rlen;
    at = c.eng.rlen;
    memcpy(rbuf + at, data + pos, n);
    c.eng.rlen += n;
    pos += n;
    if (adapter->input(&c, at) < 0)
      FUZZ_CHECK(closing);
    while (!native && !closing && c.eng.rpos < c.eng.rlen) { /* process() resumes a paused parser */
      size_t before = c.eng.rpos;
      if (adapter->input(&c, c.eng.rpos) < 0 || (c.eng.rpos == before && !native))
        break;
    }
    FUZZ_CHECK(c.eng.rlen <= at + n && c.eng.rpos <= c.eng.rlen);
    if (native) { /* whatever came out of the WebSocket: the engine takes it */
      written = fuzz_fnv(written, rbuf + c.eng.rpos, c.eng.rlen - c.eng.rpos);
      c.eng.rpos = c.eng.rlen;
      /* and answers: one frame through the adapter's output side */
      if (!closing && adapter->frame(&c, 10, 3) == 0)
        adapter->body(&c, 3);
    }
  }
  adapter->finish(&c);
  return 0;
}
