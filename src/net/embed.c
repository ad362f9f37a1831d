/* embed.c - sockit/uv.h: a connection's libuv loop, for services that run
 * their own libuv work next to the core's, and a server run on the
 * application's libuv loop (sk_server_run_on).
 *
 * libuv cannot move handles from one loop to another, and the core's
 * handles are made on loop 0 before it runs. So loop 0 stays a uv_loop_t
 * of its own and is embedded the way libuv provides for (uv_backend_fd,
 * UV_RUN_NOWAIT; libuv's test-embed.c): the application's loop watches
 * loop 0's backend descriptor (epoll) with a poll handle, and a timer waits
 * for loop 0's next timeout. Either one runs loop 0 once without blocking.
 * So every callback of loop 0 runs on the application's thread, inside its
 * uv_run, and the server costs that loop two handles. */
#include <errno.h>
#include <stdlib.h>

#include "net/core.h"
#include "sockit/uv.h"

uv_loop_t *sk_conn_uv_loop(sk_conn *c) {
  return &sk__conn_loop(c)->uv;
}

typedef struct sk_embedding {
  uv_poll_t poll;   /* loop 0's backend descriptor is readable */
  uv_timer_t timer; /* loop 0's next timeout is due (0: it has work pending) */
  sk_server *srv;
  sk_server_done_fn done;
  void *ctx;
  int open_handles; /* poll and timer, until both have closed */
} sk_embedding;

/* The last handle is closed: the application's loop holds nothing of the
 * server any more, so done() may free it. */
static void on_embedding_closed(uv_handle_t *h) {
  sk_embedding *e = h->data;
  sk_server *srv = e->srv;
  sk_server_done_fn done = e->done;
  void *ctx = e->ctx;
  if (--e->open_handles > 0)
    return;
  free(e);
  if (done != NULL)
    done(srv, ctx);
}

static void embedding_close(sk_embedding *e) {
  uv_close((uv_handle_t *)&e->poll, on_embedding_closed);
  uv_close((uv_handle_t *)&e->timer, on_embedding_closed);
}

static void on_timer(uv_timer_t *t);

/* Run loop 0 once without blocking, then wait for what it waits for: its
 * descriptor (the poll handle stays started) and its next timeout. Once it
 * has ended (the server stopped), wait for the other loops and release. */
static void step(sk_embedding *e) {
  sk_loop *l = &e->srv->loops[0];
  int timeout;
  if (uv_run(&l->uv, UV_RUN_NOWAIT) == 0) {
    uv_poll_stop(&e->poll);
    sk__loop_close(l);
    sk__server_finish(e->srv);
    embedding_close(e);
    return;
  }
  timeout = uv_backend_timeout(&l->uv);
  if (timeout >= 0)
    uv_timer_start(&e->timer, on_timer, (uint64_t)timeout, 0);
  else
    uv_timer_stop(&e->timer);
}

static void on_timer(uv_timer_t *t) {
  step(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  (void)status; /* an error on an epoll descriptor: loop 0's run says more */
  (void)events;
  step(p->data);
}

int sk_server_run_on(sk_server *srv, uv_loop_t *loop, sk_server_done_fn done, void *ctx,
                     const char **why) {
  const char *dummy;
  sk_embedding *e;
  int rc;
  if (why == NULL)
    why = &dummy;
  *why = NULL;
  if (srv == NULL || loop == NULL)
    return -EINVAL;
  if ((e = calloc(1, sizeof(*e))) == NULL)
    return -ENOMEM;
  e->srv = srv;
  e->done = done;
  e->ctx = ctx;
  if ((rc = sk__server_start(srv, 0, why)) < 0) {
    free(e);
    return rc;
  }
  if ((rc = uv_poll_init(loop, &e->poll, uv_backend_fd(&srv->loops[0].uv))) < 0) {
    /* nothing has run yet: stop at once, on this thread */
    *why = "cannot watch the server's loop from the application's loop";
    sk_server_stop(srv);
    sk__loop_run(&srv->loops[0]);
    sk__server_finish(srv);
    free(e);
    return rc;
  }
  uv_timer_init(loop, &e->timer);
  e->poll.data = e->timer.data = e;
  e->open_handles = 2;
  uv_poll_start(&e->poll, UV_READABLE, on_poll);
  uv_timer_start(&e->timer, on_timer, 0, 0); /* loop 0's first turn */
  return 0;
}
