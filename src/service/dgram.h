/* dgram.h - the service API for datagrams (SPEC 5): how a service answers
 * over the --udp listeners (src/net/udp.c).
 *
 * Every --udp endpoint lives on the UDP loop (loop 0): datagrams are small
 * request/answer pairs, so one thread serves them, and whatever a service
 * keeps per UDP peer (chat leases) is touched by that one thread only.
 *
 * Authentication (SPEC 5): on a server with a key every datagram, both
 * ways, carries "ts"/"n" and the HMAC trailer of auth/dgram.h. udp.c checks
 * them before any table sees the datagram and drops failures silently;
 * answers and pushes are stamped and sealed here, so services never see
 * either. A datagram that passed is d->authed.
 *
 * Reflection: a datagram's sender address can be forged. An address is
 * proven when the datagram is authenticated (a key holder's, fresh), when
 * it belongs to a registered chat member, or when it repeats the cookie this
 * server sent it (sk__dgram_cookie_ok: it receives at that address). All
 * frames answering one datagram together are at most as long as the
 * datagram for an unproven address, and at most SK_UDP_AMP bytes longer for
 * a proven one; an unproven source also gets at most SK_SRCLIMIT_RATE
 * answers a second (src/net/srclimit.h). sk__dgram_reply enforces both.
 */
#ifndef SOCKIT_SERVICE_DGRAM_H
#define SOCKIT_SERVICE_DGRAM_H

#include <sys/socket.h>

#include "common/addr.h"
#include "sockit/server.h"

#define SK_UDP_MAX 65507u /* largest UDP payload (IPv4) */
#define SK_UDP_AMP 512u   /* answer bytes allowed beyond the request */
/* What stamping and sealing add to a pre-encoded frame, at most: the
 * trailer and ',"ts":<13 digits>,"n":"<16 hex>"' (a frame's own "ts" is
 * replaced). For budgeting history. */
#define SK_UDP_SEAL_MAX (32u + 48u)

/* A service that answers over UDP registers a table from its .start hook. */
typedef struct sk_dgram sk_dgram;
typedef struct sk_dgram_table {
  const char *const *types; /* request types it answers; NULL-terminated */
  int (*handle)(sk_dgram *d, const sk_head *h, const uint8_t *body, size_t n, void *ctx);
  void (*seen)(sk_dgram *d, void *ctx);       /* optional: every well-formed datagram */
  void (*tick)(sk_server *srv, void *ctx);    /* optional: once a second, UDP loop */
  void (*closing)(sk_server *srv, void *ctx); /* optional: UDP sockets close (stop) */
  void *ctx;
} sk_dgram_table;
#define SK_MAX_DGRAM 4

/* One datagram being answered; valid only during the handler call. */
struct sk_dgram {
  sk_server *srv;
  int ep;                       /* the endpoint it came in on (sk__udp_push) */
  struct sockaddr_storage from; /* its sender */
  socklen_t fromlen;
  char peer[SK_ADDR_TEXT]; /* the sender as text, for logs */
  const sk_head *req;      /* answers repeat its "id" */
  size_t len;              /* the datagram's length */
  size_t budget;           /* answer bytes still allowed */
  int authed;              /* its trailer, ts and n passed (server with a key) */
  int proven;              /* its sender receives at its address (see the top) */
  int rate;                /* 0: not asked yet; 1 / -1: its source may / may not be answered */
};

/* The sender is proven (a chat member's address): its answers may be
 * SK_UDP_AMP bytes larger than the datagram, and are not rate-limited. */
void sk__dgram_prove(sk_dgram *d);

/* Return routability on a server without a key (SPEC 5): the cookie is 16
 * bytes of HMAC-SHA256(per-process random key, sender address ":" minute)
 * as 32 hex chars. _ok: 1 when cookie is this minute's or the last one's
 * for d's sender (d is then proven), else 0. _send: answer
 * {"type":"cookie","cookie":C} (nothing when that is longer than d). */
int sk__dgram_cookie_ok(sk_dgram *d, const char *cookie);
int sk__dgram_send_cookie(sk_dgram *d);

/* Register a table (copied) from a service's .start hook. Returns 0 or
 * -ENOMEM when SK_MAX_DGRAM tables are taken. */
int sk__dgram_register(sk_server *srv, const sk_dgram_table *t);

/* Answer the datagram: adds the request's "id", sets "size" to n (when n > 0
 * or head has one) and sends head+body as one datagram to the sender.
 * Returns 0, SK_ETOOLARGE when the answer would exceed the budget (nothing
 * is sent; the caller may send a smaller answer), or a negative error. */
int sk__dgram_reply(sk_dgram *d, sk_head *h, const void *body, size_t n);

/* Answer with a pre-encoded frame (chat history); same budget rule. On a
 * server with a key its head is stamped again and the frame sealed. */
int sk__dgram_reply_frame(sk_dgram *d, sk_buf *frame);

/* Answer with an error frame (message NULL: the table's text). */
int sk__dgram_error(sk_dgram *d, int err, const char *msg);

/* A copy of d that can still be answered after the handler has returned
 * (an answer that waits for other work), within the same budget; NULL when
 * out of memory. Only on the UDP loop's thread; sk__dgram_free releases it. */
sk_dgram *sk__dgram_keep(const sk_dgram *d);
void sk__dgram_free(sk_dgram *d);

/* The loop every UDP endpoint runs on (service/service.h numbers loops). */
int sk__udp_loop_index(const sk_server *srv);

/* Send a whole frame to a peer from endpoint ep, outside any answer (chat
 * pushes). Only on the UDP loop's thread. The frame is referenced until
 * sent (on a server with a key, a stamped and sealed copy is). Returns 0, -EPIPE when the endpoint
 * has closed, SK_ETOOLARGE for a frame over SK_UDP_MAX, SK_EBUSY when the send queue is full
 * (dropped). */
int sk__udp_push(sk_server *srv, int ep, const struct sockaddr *to, socklen_t len, sk_buf *frame);

#endif
