/* loop.c - event loops: one per --threads, each running on its own thread
 * with its own listeners (SO_REUSEPORT), connections and buffers, so that
 * the hot path takes no lock. Cross-loop work goes through sk__loop_post. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net/core.h"

double sk__now_wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double sk__now_mono(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

_Static_assert(SK_RBUF_POOL <= SK_POOL_MAX && SK_WCHUNK_POOL <= SK_POOL_MAX,
               "a pool keeps at most SK_POOL_MAX blocks");

static void *pool_get(sk__pool *p, size_t size) {
  return p->n > 0 ? p->items[--p->n] : malloc(size);
}

/* Keep buf for the next get, up to keep blocks; free the rest. */
static void pool_put(sk__pool *p, int keep, void *buf) {
  if (p->n < keep)
    p->items[p->n++] = buf;
  else
    free(buf);
}

static void pool_drain(sk__pool *p) {
  while (p->n > 0)
    free(p->items[--p->n]);
}

void *sk__rbuf_get(sk_loop *l) {
  return pool_get(&l->rbufs, SK_RBUF_SIZE);
}
void sk__rbuf_put(sk_loop *l, void *buf) {
  pool_put(&l->rbufs, SK_RBUF_POOL, buf);
}
void *sk__wchunk_get(sk_loop *l) {
  return pool_get(&l->wchunks, SK_WCHUNK);
}
void sk__wchunk_put(sk_loop *l, void *buf) {
  pool_put(&l->wchunks, SK_WCHUNK_POOL, buf);
}

int sk__loop_post(sk_loop *l, void (*fn)(void *arg), void *arg) {
  sk_task *t = malloc(sizeof(*t));
  if (t == NULL)
    return -ENOMEM;
  t->fn = fn;
  t->arg = arg;
  t->next = NULL;
  uv_mutex_lock(&l->qlock);
  if (l->qtail)
    l->qtail->next = t;
  else
    l->qhead = t;
  l->qtail = t;
  uv_mutex_unlock(&l->qlock);
  uv_async_send(&l->wake);
  return 0;
}

static void run_tasks(sk_loop *l) {
  sk_task *t;
  uv_mutex_lock(&l->qlock);
  t = l->qhead;
  l->qhead = l->qtail = NULL;
  uv_mutex_unlock(&l->qlock);
  while (t != NULL) {
    sk_task *next = t->next;
    t->fn(t->arg);
    free(t);
    t = next;
  }
}

/* Twice per iteration, after the I/O callbacks and before blocking: the
 * connections that may go on run (their answers join the queues), then
 * every queue is written (conn_ops->turn). The idle handle is on only while
 * work waits for a turn that libuv would otherwise block before. */
static void turn(sk_loop *l) {
  l->conn_ops->turn(l);
  if (uv_is_active((uv_handle_t *)&l->run_idle))
    uv_idle_stop(&l->run_idle);
}
static void on_run_idle(uv_idle_t *i) {
  turn(i->data);
}
void sk__loop_want_turn(sk_loop *l) {
  if (!uv_is_active((uv_handle_t *)&l->run_idle))
    uv_idle_start(&l->run_idle, on_run_idle);
}
static void on_flush_prepare(uv_prepare_t *p) {
  turn(p->data);
}
static void on_flush_check(uv_check_t *p) {
  turn(p->data);
}

static void on_tick(uv_timer_t *t) {
  sk_loop *l = t->data;
  sk__log_tick(l->srv->log, sk__now_mono());
}

static void close_internal(sk_loop *l) {
  l->conn_ops->end(l);
  uv_close((uv_handle_t *)&l->wake, NULL);
  uv_close((uv_handle_t *)&l->prepare, NULL);
  uv_close((uv_handle_t *)&l->check, NULL);
  uv_close((uv_handle_t *)&l->run_idle, NULL);
  uv_close((uv_handle_t *)&l->drain, NULL);
  uv_close((uv_handle_t *)&l->accept_retry, NULL);
  uv_close((uv_handle_t *)&l->tick, NULL);
  if (l->index == 0) {
    uv_close((uv_handle_t *)&l->sigint, NULL);
    uv_close((uv_handle_t *)&l->sigterm, NULL);
  }
}

void sk__loop_track(sk_loop *l, sk_wire_conn *wc) {
  wc->prev = NULL;
  wc->next = l->wire_conns;
  if (wc->next)
    wc->next->prev = wc;
  l->wire_conns = wc;
}

void sk__loop_untrack(sk_loop *l, sk_wire_conn *wc) {
  if (wc->prev)
    wc->prev->next = wc->next;
  else
    l->wire_conns = wc->next;
  if (wc->next)
    wc->next->prev = wc->prev;
  wc->next = wc->prev = NULL;
}

/* Ask every non-native connection to close (now: at once). */
static void stop_wire_conns(sk_loop *l, int now) {
  for (sk_wire_conn *wc = l->wire_conns, *next; wc != NULL; wc = next) {
    next = wc->next;
    wc->stop(wc, now);
  }
}

static void on_drain(uv_timer_t *t) {
  sk_loop *l = t->data;
  if ((l->conns != NULL || l->wire_conns != NULL) && uv_now(&l->uv) < l->stop_deadline)
    return;
  l->conn_ops->stop(l, 1);
  stop_wire_conns(l, 1);
  uv_timer_stop(t);
  /* the connections' close callbacks run before the loop can end */
  if (l->conns == NULL && l->wire_conns == NULL)
    close_internal(l);
  else
    uv_timer_start(t, on_drain, 100, 100);
}

/* A poll listener's socket is its own to close: uv_poll_t never owns one. */
static void on_listener_closed(uv_handle_t *h) {
  sk_listener *l = h->data;
  if (h->type == UV_POLL)
    close(l->fd);
  free(l);
}

static void begin_stop(sk_loop *l) {
  if (l->stopping)
    return;
  l->stopping = 1;
  for (int i = 0; i < l->nlisteners; i++)
    uv_close(&l->listeners[i]->h.handle, on_listener_closed);
  l->nlisteners = 0;
  l->conn_ops->stop(l, 0);
  stop_wire_conns(l, 0);
  l->stop_deadline = uv_now(&l->uv) + 10000;
  uv_timer_start(&l->drain, on_drain, 0, 100);
}

static void on_wake(uv_async_t *a) {
  sk_loop *l = a->data;
  run_tasks(l);
  if (atomic_load(&l->srv->stopping))
    begin_stop(l);
}

void sk__loops_stop(sk_server *srv) {
  atomic_store(&srv->stopping, 1);
  for (int i = 0; i < srv->nloops_ready; i++)
    uv_async_send(&srv->loops[i].wake);
}

static void on_signal(uv_signal_t *s, int signum) {
  sk__loops_stop(s->data);
}

int sk__loop_init(sk_loop *l, sk_server *srv, int index, const sk_loop_conn_ops *ops) {
  int rc;
  memset(l, 0, sizeof(*l));
  l->srv = srv;
  l->conn_ops = ops;
  l->index = index;
  if ((rc = uv_loop_init(&l->uv)) < 0)
    return rc;
  l->uv.data = l;
  uv_mutex_init(&l->qlock);
  uv_async_init(&l->uv, &l->wake, on_wake);
  l->wake.data = l;
  uv_prepare_init(&l->uv, &l->prepare);
  uv_prepare_start(&l->prepare, on_flush_prepare);
  l->prepare.data = l;
  uv_check_init(&l->uv, &l->check);
  uv_check_start(&l->check, on_flush_check);
  l->check.data = l;
  uv_idle_init(&l->uv, &l->run_idle);
  l->run_idle.data = l;
  uv_timer_init(&l->uv, &l->drain);
  l->drain.data = l;
  uv_timer_init(&l->uv, &l->accept_retry);
  l->accept_retry.data = l;
  uv_timer_init(&l->uv, &l->tick);
  l->tick.data = l;
  ops->init(l);
  if (index == 0 && srv->log != NULL) {
    uv_timer_start(&l->tick, on_tick, 1000, 1000);
    uv_unref((uv_handle_t *)&l->tick); /* housekeeping keeps no loop alive */
  }
  /* libuv opens a spare descriptor per loop with its first stream handle
   * (for an EMFILE trick we do not use: accept.c). Have it now, so that
   * the first connection does not add a descriptor for good. */
  uv_tcp_init(&l->uv, &l->first_stream);
  uv_close((uv_handle_t *)&l->first_stream, NULL);
  if (index == 0) {
    uv_signal_init(&l->uv, &l->sigint);
    uv_signal_init(&l->uv, &l->sigterm);
    l->sigint.data = l->sigterm.data = srv;
  }
  return 0;
}

void sk__loop_handle_signals(sk_loop *l) {
  uv_signal_start(&l->sigint, on_signal, SIGINT);
  uv_signal_start(&l->sigterm, on_signal, SIGTERM);
}

static void close_walk(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

void sk__loop_run(sk_loop *l) {
  uv_run(&l->uv, UV_RUN_DEFAULT);
  sk__loop_close(l);
}

/* Unreferenced handles (the log tick) can outlive the last referenced one:
 * close them too, so that the loop's memory can go. */
void sk__loop_close(sk_loop *l) {
  if (uv_loop_close(&l->uv) == UV_EBUSY) {
    uv_walk(&l->uv, close_walk, NULL);
    uv_run(&l->uv, UV_RUN_DEFAULT);
    uv_loop_close(&l->uv);
  }
}

/* After every loop has ended (no thread runs any more): run the tasks other
 * loops posted while this one was shutting down. They only drop references
 * and push to connections that are closed by now, which refuse politely; a
 * task that was never run would leak what it holds. Then free the pool. */
void sk__loop_fini(sk_loop *l) {
  run_tasks(l);
  l->conn_ops->turn(l); /* every connection is closed: only drops references */
  pool_drain(&l->rbufs);
  pool_drain(&l->wchunks);
  uv_mutex_destroy(&l->qlock);
}
