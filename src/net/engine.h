/* engine.h - a native connection's protocol engine: bytes in, frames
 * dispatched in order, deadlines as values. It makes no libuv call and
 * owns no socket: the plumbing around it (conn.c, with a transport of
 * conn_int.h) lends it the read buffer, runs it when bytes came or work
 * finished, and does what it asks through a small host table. Handlers
 * answer through the connection's write queue (wqueue.c) as before; the
 * engine itself only asks the host to send error frames.
 *
 * The rules it keeps (docs/internals.md, "Requests, in order"):
 *  - before authentication only an auth frame is taken (the host checks it);
 *  - a frame's body is gathered whole, streamed to the handler's sink, or
 *    skipped (over its limit, refused);
 *  - while a request is active (SK_ASYNC) only its service's SK_H_FOLLOW
 *    frames are dispatched; any other head waits (pending) until done;
 *  - above the output's pause mark, and while a sink is paused, no frame
 *    is taken.
 * Every member runs on the owning connection's loop thread. */
#ifndef SOCKIT_NET_ENGINE_H
#define SOCKIT_NET_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sockit/frame.h"
#include "sockit/server.h"

struct sk_handler_ref;

enum sk_body_mode { SK_BODY_NONE, SK_BODY_GATHER, SK_BODY_SINK, SK_BODY_DISCARD };

/* What a timer tells the engine's deadlines (sk__engine_deadline). */
enum sk_deadline { SK_DEADLINE_WAIT, SK_DEADLINE_AUTH, SK_DEADLINE_IDLE };

/* What the engine asks of the connection around it. conn.c is the real
 * host; the unit tests and the fuzzer bring their own. Each member gets the
 * engine's owner (what handlers see as their sk_conn). */
typedef struct sk_engine_host {
  /* Queue the error frame for err, repeating id_src's "id" (NULL: none). */
  int (*send_error)(sk_conn *c, const sk_head *id_src, int err, const char *msg);
  /* End the connection (err < 0: with that error frame). The host calls
   * sk__engine_close before it returns. */
  void (*close)(sk_conn *c, int err);
  /* An auth frame before authentication: answer and call
   * sk__engine_authed, or close. The head stays the engine's. */
  void (*auth)(sk_conn *c, const sk_head *h);
  /* Is the output queue over its pause mark? No frame is taken then. */
  int (*out_full)(sk_conn *c);
  /* The engine used every byte it holds: make more (TLS decrypts). > 0
   * added, 0 none, < 0 failed. NULL: the host holds none. */
  ssize_t (*pull)(sk_conn *c);
  /* Not native yet (an adapter owns the bytes): its turn. 1 it made
   * progress (go on), 0 stop. NULL: never. */
  int (*adapt)(sk_conn *c);
  /* n requests of metrics type slot ended with err, begun at t0 (the
   * host's hrtime). */
  void (*count)(sk_conn *c, int slot, int err, uint32_t n, uint64_t t0);
} sk_engine_host;

typedef struct sk_engine {
  const sk_engine_host *host;
  sk_conn *conn; /* the owner, as handlers see it */
  sk_server *srv;

  /* application bytes: [rpos, rlen) of rbuf, the host's read buffer (NULL:
   * none held); got: body bytes the host read straight into the sink's
   * memory (sk__engine_lend), not yet told */
  uint8_t *rbuf;
  size_t rpos, rlen, got;
  sk_decoder dec;

  /* the frame whose body is being read */
  sk_head *fhead;
  const struct sk_handler_ref *fref;
  enum sk_body_mode bmode;
  uint8_t *gather;
  size_t gathered;

  sk_head *pending; /* a head that waits for the active request to finish */

  /* the active (SK_ASYNC) request */
  int active, active_svc, active_slot;
  sk_head *req_head;
  const sk_head *cur_head; /* set during a handler call: whose id to repeat */

  /* metrics: when the last read came in (t_read: the requests it carried
   * began then), the active request's start, and the error each request
   * sent (0: none yet); a batch of one type answered in one run is counted
   * once, at its end */
  uint64_t t_read, t_req;
  int cur_err, req_err;
  int batch_slot;
  uint32_t batch_n;

  void **svc_state;
  uint32_t svc_setup;

  /* deadlines, in the host's milliseconds: now is set by the host before
   * it runs the engine; auth_by is the authentication deadline */
  uint64_t now, last_active, auth_by;

  unsigned authed : 1;      /* frames go to handlers */
  unsigned native : 1;      /* the engine decodes (else the adapter owns the bytes) */
  unsigned closed : 1;      /* the connection is closing: take nothing more */
  unsigned sink_paused : 1; /* the sink took less than offered: until resume */
  unsigned running : 1, rerun : 1;
} sk_engine;

/* max_head: the decoder's head limit until authentication (0: none).
 * Nothing is decoded until the host sets native (the hello went out). */
void sk__engine_init(sk_engine *e, const sk_engine_host *host, sk_conn *conn, sk_server *srv,
                     uint32_t max_head);
/* Release every head, the gather buffer and the state table (not rbuf). */
void sk__engine_free(sk_engine *e);
/* The connection is gone: each service that set up state hears finish. */
void sk__engine_finish(sk_engine *e);
/* The output drained below its low mark: each service hears drained. */
void sk__engine_drained(sk_engine *e);

/* Take frames from the bytes held until blocked or out of bytes. Re-entered
 * (a handler ending its request at once), it only asks for another pass. */
void sk__engine_run(sk_engine *e);
/* The active request ended (sk_conn_done) / the sink takes bytes again
 * (sk_conn_resume). 1: the engine can go on, run it (later, not from
 * inside a handler: the host schedules it); 0: nothing changed. */
int sk__engine_done(sk_engine *e);
int sk__engine_resume(sk_engine *e);
/* The connection closes: no frame is taken after this. */
void sk__engine_close(sk_engine *e);
/* The host accepted the auth frame: no pre-auth head limit from now on. */
void sk__engine_authed(sk_engine *e);
/* An error frame for id_src was queued: the request it answers ends with err. */
void sk__engine_answered(sk_engine *e, const sk_head *id_src, int err);

/* Whose "id" a response repeats: the request a handler is running for, or
 * else the active (SK_ASYNC) request. */
static inline const sk_head *sk__engine_id_source(const sk_engine *e) {
  return e->cur_head ? e->cur_head : e->req_head;
}
/* A request is active, a body is being read, or a head waits. */
static inline int sk__engine_busy(const sk_engine *e) {
  return e->active || e->bmode != SK_BODY_NONE || e->pending != NULL;
}
/* No frame can be taken now, whatever bytes come. */
static inline int sk__engine_blocked(const sk_engine *e) {
  return e->closed || e->sink_paused || (e->pending != NULL && e->active);
}

/* In a streamed body whose sink lends memory, with none of the body's bytes
 * held: the sink's memory for the next read, capped at what the body still
 * owes. > 0 its size (*p set), 0 the sink has no room (paused until
 * resume), < 0 read into the read buffer instead. */
ssize_t sk__engine_lend(sk_engine *e, uint8_t **p);

/* Deadlines as values: at now (ms), with idle_ms of idleness allowed, does
 * the connection time out? SK_DEADLINE_WAIT sets *wait to the ms left. */
enum sk_deadline sk__engine_deadline(const sk_engine *e, uint64_t now, uint64_t idle_ms,
                                     uint64_t *wait);

#endif
