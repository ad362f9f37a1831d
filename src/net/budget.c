/* budget.c - a server-wide budget for queued output (--max-buffered).
 *
 * Each connection already stops reading above 1 MiB unsent, but that bounds
 * one connection, not the server: 20 peers that never read their 16 MiB
 * echoes held 310 MiB. wqueue.c counts every queued byte in srv->buffered
 * (one relaxed atomic per change) and calls sk__budget_over when the total
 * passes the budget; the loop then looks at its own connections on its next
 * turn, and every BUDGET_CHECK_MS while the total stays over:
 *
 *  - connections with a queue of BUDGET_PAUSE_MIN or more stop reading (no
 *    new requests: no new output), and read again once the total is back
 *    under BUDGET_RESUME_PCT of the budget;
 *  - from the second look on, while still over, the slowest consumers are
 *    dropped: first those whose queue did not move since the last look,
 *    largest queue first, then the largest queues. Each drop is a log line
 *    (`over_budget`) and a close without flushing (the peer is not reading:
 *    a last frame would only wait in the same queue).
 *
 * With several loops each one drops from its own connections; the total is
 * shared, so together they stop as soon as it is under the budget. */
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "net/conn_int.h"
#include "net/core.h"

#define BUDGET_CHECK_MS 100
#define BUDGET_PAUSE_MIN (64u * 1024)
#define BUDGET_RESUME_PCT 75
#define BUDGET_DEFAULT_MAX ((int64_t)1 << 30)

int64_t sk__budget_default(void) {
  long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
  int64_t quarter = pages > 0 && size > 0 ? (int64_t)pages * size / 4 : BUDGET_DEFAULT_MAX;
  return quarter < BUDGET_DEFAULT_MAX ? quarter : BUDGET_DEFAULT_MAX;
}

static size_t total(const sk_server *srv) {
  return atomic_load_explicit(&srv->buffered, memory_order_relaxed);
}

/* Back under the resume mark: every paused connection reads again. */
static void resume_all(sk_loop *l) {
  for (sk_conn *c = l->conns; c != NULL; c = c->next)
    if (c->budget_paused)
      sk__conn_budget_pause(c, 0);
}

/* Stop reading from every connection with a real queue. */
static void pause_largest(sk_loop *l) {
  for (sk_conn *c = l->conns; c != NULL; c = c->next)
    if (!c->budget_paused && c->queued >= BUDGET_PAUSE_MIN && !c->closing)
      sk__conn_budget_pause(c, 1);
}

/* The next connection to drop: stalled (no byte written since the last
 * look) before moving, larger queue before smaller. NULL if none queues. */
static sk_conn *slowest(sk_loop *l) {
  sk_conn *best = NULL;
  int best_stalled = 0;
  for (sk_conn *c = l->conns; c != NULL; c = c->next) {
    int stalled = c->bytes_out == c->budget_mark;
    if (c->hard_closing || c->queued == 0)
      continue;
    if (best == NULL || stalled > best_stalled ||
        (stalled == best_stalled && c->queued > best->queued)) {
      best = c;
      best_stalled = stalled;
    }
  }
  return best;
}

static void drop_slowest(sk_loop *l) {
  sk_server *srv = l->srv;
  size_t left = total(srv), max = (size_t)srv->cfg.max_buffered;
  sk_conn *c;
  while (left > max && (c = slowest(l)) != NULL) {
    sk_conn_log(c, "over_budget", "queued", 'i', (int64_t)c->queued, "buffered", 'i', (int64_t)left,
                "max_buffered", 'i', (int64_t)max, "result", 's', "slow_consumer", NULL);
    left = c->queued < left ? left - c->queued : 0; /* freed when its handle closes */
    sk__conn_hard_close(c);
    l->budget_dropped = 1;
  }
}

static void mark_progress(sk_loop *l) {
  for (sk_conn *c = l->conns; c != NULL; c = c->next)
    c->budget_mark = c->bytes_out;
}

/* The queues dropped at the last look are freed by now (their close
 * callbacks ran): give the memory back. glibc keeps big blocks in its heap
 * once its mmap threshold has grown past them, and the point of dropping
 * is to lower what the server holds. */
static void give_back(sk_loop *l) {
  if (!l->budget_dropped)
    return;
  l->budget_dropped = 0;
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

static void on_budget(uv_timer_t *t) {
  sk_loop *l = t->data;
  sk_server *srv = l->srv;
  size_t now = total(srv), max = (size_t)srv->cfg.max_buffered;
  give_back(l);
  if (now <= max / 100 * BUDGET_RESUME_PCT) {
    resume_all(l);
    l->budget_looks = 0;
    return; /* the next sk__budget_over starts a new episode */
  }
  if (now > max) {
    pause_largest(l);
    if (l->budget_looks++ > 0) /* the first look only pauses: who moves? */
      drop_slowest(l);
  }
  mark_progress(l);
  uv_timer_start(t, on_budget, BUDGET_CHECK_MS, 0);
}

void sk__budget_over(sk_loop *l) {
  if (!uv_is_active((uv_handle_t *)&l->budget))
    uv_timer_start(&l->budget, on_budget, 0, 0);
}

void sk__budget_init(sk_loop *l) {
  uv_timer_init(&l->uv, &l->budget);
  l->budget.data = l;
  uv_unref((uv_handle_t *)&l->budget);
}

void sk__budget_close(sk_loop *l) {
  uv_close((uv_handle_t *)&l->budget, NULL);
}
