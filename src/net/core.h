/* core.h - the server core's internal structures (src/net).
 *
 * Ownership in one paragraph: the server owns its loops; a loop owns its
 * listeners, connections, timers and read-buffer pool; a connection owns its
 * handle, timer, read buffer, write queue, request heads and per-service
 * states, and is freed only when its close callback has run and the last
 * sk_conn_ref holder has let go.
 */
#ifndef SOCKIT_NET_CORE_H
#define SOCKIT_NET_CORE_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "auth/ratelimit.h"
#include "common/addr.h"
#include "net/log.h"
#include "service/dgram.h"
#include "service/service.h"
#include "sockit/auth.h"
#include "sockit/server.h"

#define SK_MAX_SERVICES 32
#define SK_MAX_HANDLERS 128
#define SK_MAX_LISTENERS 32
#define SK_MAX_CIDRS 64
#define SK_MAX_SVC_OPTIONS 48 /* the services' options together */
#define SK_MAX_WIRES 16       /* wires other than native (sk__server_add_wire) */

#define SK_RBUF_SIZE (256u * 1024)   /* read buffer: > one max head + prefix */
#define SK_RBUF_POOL 32              /* idle read buffers kept per loop */
#define SK_WCHUNK (16u * 1024)       /* write coalescing buffer size */
#define SK_WCHUNK_POOL 64            /* idle write chunks kept per loop */
#define SK_POOL_MAX 64               /* the most any pool keeps */
#define SK_WQ_PAUSE (1u << 20)       /* stop reading above this much unsent */
#define SK_WQ_LOW (256u * 1024)      /* resume below this */
#define SK_PREAUTH_HEAD 4096u        /* head limit until auth_ok */
#define SK_DEFAULT_BODY (64u * 1024) /* SPEC 4.2 default body limit */
#define SK_IOV_MAX 64                /* iovecs per write */
#define SK_LINGER_MS 2000            /* drain input this long after an error close */
#define SK_AUTH_DEADLINE_MS 10000
#define SK_TLS_SILENCE_MS 2000 /* no ClientHello by then: a plain client (tls_conn.c) */
#define SK_CLOSE_GRACE_MS 5000 /* longest wait to flush a closing conn */

#include "net/metrics.h" /* needs SK_MAX_HANDLERS and SK_MAX_LISTENERS */

typedef struct sk_loop sk_loop;

/* Idle blocks of one size kept by a loop (only its thread touches them):
 * allocating and freeing a buffer per read or write made glibc trim and
 * regrow its heap (brk) over and over, 15 % of the server's CPU in a
 * pipelined echo. Zeroed memory is an empty pool. */
typedef struct sk__pool {
  int n;
  void *items[SK_POOL_MAX];
} sk__pool;
typedef struct sk_listener sk_listener;

/* A listener: a stream socket we accept on ourselves (h.poll, accept.c), or
 * a handle that owns its socket (UDP). The loop closes it on stop and frees
 * h.handle.data, whose first member is this struct. */
struct sk_listener {
  union {
    uv_poll_t poll; /* stream listeners: readable means connections wait */
    uv_udp_t udp;
    uv_handle_t handle;
  } h;
  sk_loop *loop;
  const struct sk_listen_spec *spec;
  const sk_wire *wire;
  int fd;     /* the listening socket of a poll listener, closed with it */
  int paused; /* polling stopped until the loop's accept_retry timer */
};

enum sk_listen_kind {
  SK_LISTEN_STREAM,
  SK_LISTEN_UDP,
  SK_LISTEN_DAYTIME,
  SK_LISTEN_RFC868,
  SK_LISTEN_HTTP /* --http: HTTP and WebSocket (src/http) */
};

typedef struct sk_listen_spec {
  char text[SK_ADDR_TEXT];  /* as given */
  char bound[SK_ADDR_TEXT]; /* after bind, with the real port */
  enum sk_listen_kind kind;
  char wire[16];    /* "native" or "seed" */
  char service[32]; /* for seed listeners */
  int wire_explicit;
  int tls; /* native listeners: TLS (set at start from --no-tls / --tls) */
  sk_addr addr;
  int fd; /* the first bound socket (to learn port 0) */
} sk_listen_spec;

typedef struct sk_cidr {
  int family;
  uint8_t addr[16];
  unsigned bits;
} sk_cidr;

/* Options: every core `sockit serve` flag lands here (config.c); the
 * services' own are in sk_server.svc_opts. */
typedef struct sk_config {
  sk_listen_spec listen[SK_MAX_LISTENERS];
  int nlisten;
  char services[256]; /* --services; unless services_given: the built-ins
                         without a switch and the application's services */
  int services_given;
  char root[4096];
  char key_file[4096];
  char log_file[4096];
  char log_format[8];
  char wire[16], service[32]; /* current --wire/--service for the next -l */
  int wire_pending;           /* set after the last -l: applies to it */
  char http_token_file[4096];
  int no_auth, wire_seed_public;
  int no_tls, tls;                    /* --no-tls; --tls: Unix listeners too */
  char tls_cert[4096], tls_key[4096]; /* certificate mode (PEM) */
  int64_t max_conns, idle_timeout, threads;
  int64_t max_buffered; /* --max-buffered: output queued server-wide (budget.c) */
  sk_cidr allow[SK_MAX_CIDRS], deny[SK_MAX_CIDRS], rl_exempt[SK_MAX_CIDRS];
  int nallow, ndeny, nrl_exempt;
} sk_config;

/* A service's option and its value (config.c). */
typedef struct sk_svc_opt {
  const sk__option *o;
  int svc;   /* index into sk_server.services */
  int64_t n; /* numbers, flags */
  char *s;   /* strings: owned, NULL for "" */
} sk_svc_opt;

typedef struct sk_handler_ref {
  const sk_handler *h;
  int svc; /* index into sk_server.services */
} sk_handler_ref;

struct sk_server {
  sk_config cfg;
  const sk_service *services[SK_MAX_SERVICES];
  int enabled[SK_MAX_SERVICES];
  int started[SK_MAX_SERVICES]; /* .start ran: .stop is owed */
  int nservices;
  sk_handler_ref handlers[SK_MAX_HANDLERS];
  int nhandlers;
  sk_key key;
  int auth;            /* 1: hmac-sha256 */
  struct sk__tls *tls; /* NULL: every listener is plain */
  int root_fd;
  sk__ratelimit *rl;
  sk__log *log;
  atomic_int nconns;
  atomic_size_t buffered; /* output queued on every connection (budget.c) */
  atomic_int stopping;
  sk_loop *loops;
  int nloops;
  int nloops_ready; /* initialized by sk__loop_init, so owed sk__loop_fini */
  uv_mutex_t lock;  /* guards what services share (see services) */
  /* Accepting at the fd limit (accept.c): loops accept holding it shared;
   * shedding holds it exclusively, so that the descriptor it frees by
   * closing reserve_fd is the one its own accept gets. */
  uv_rwlock_t accept_lock;
  int reserve_fd;                     /* -1 while lost (someone else took its number) */
  void *svc_shared[SK_MAX_SERVICES];  /* per-service server-wide state */
  const char *start_why;              /* what a service's failed start() says to do */
  char hello_services[512];           /* cached JSON array text */
  sk_dgram_table dgram[SK_MAX_DGRAM]; /* UDP request tables (udp.c) */
  int ndgram;
  struct sk__udp *udp; /* UDP endpoints, owned by udp.c */
  /* --http-metrics-token-file's token (the HTTP wire's start-up check
   * reads it); without one /metrics answers loopback peers only */
  char http_token[256];
  size_t http_token_len;
  sk_notice_fn notice; /* sk_server_on_notice: NULL says nothing */
  void *notice_ctx;
  unsigned process;  /* SK_PROCESS_* the application allowed */
  sk_clock_fn clock; /* sk_server_set_clock: NULL is time(NULL) */
  void *clock_ctx;
  /* sk_server_add_service's copies of the user's tables, freed with the
   * server (common/sized.h) */
  sk_service *user_copies[SK_MAX_SERVICES];
  int nuser_copies;
  /* the services' options (sk__server_add_options, config.c) */
  sk_svc_opt svc_opts[SK_MAX_SVC_OPTIONS];
  int nsvc_opts;
  struct sk_wire_ref { /* sk__server_add_wire */
    const char *wire, *service;
    const sk_wire *impl;
  } wires[SK_MAX_WIRES];
  int nwires;
};

/* A task handed to another loop's thread. */
typedef struct sk_task {
  struct sk_task *next;
  void (*fn)(void *arg);
  void *arg;
} sk_task;

struct sk_loop {
  uv_loop_t uv;
  sk_server *srv;
  int index;
  uv_thread_t thread;
  uv_async_t wake;         /* tasks posted and stop requests */
  uv_prepare_t prepare;    /* flushes dirty write queues before blocking */
  uv_check_t check;        /* ... and right after I/O callbacks */
  uv_idle_t run_idle;      /* on while runq waits: the loop does not block (sk__loop_want_turn) */
  uv_timer_t drain;        /* graceful stop: polls until connections are gone */
  uv_timer_t accept_retry; /* restarts paused listeners (accept.c) */
  uv_timer_t tick;         /* loop 0, with a log: pre-auth log summaries, once a second */
  uv_timer_t budget;       /* over --max-buffered: pause and drop (budget.c) */
  int budget_looks;        /* looks in this over-budget episode */
  int budget_dropped;      /* the last look dropped connections */
  uv_tcp_t first_stream;   /* opened and closed at init: see sk__loop_init */
  uv_signal_t sigint, sigterm; /* loop 0 only */
  uv_mutex_t qlock;
  sk_task *qhead, *qtail;
  sk_listener *listeners[SK_MAX_LISTENERS * 2];
  int nlisteners;
  sk__pool rbufs;   /* read buffers, SK_RBUF_SIZE */
  sk__pool wchunks; /* write chunks' memory (wqueue.c), SK_WCHUNK */
  sk_conn *conns;   /* every open connection on this loop */
  sk_conn *dirty;   /* connections with unflushed output */
  sk_conn *runq;    /* connections whose engine can go on (sk_conn_done/resume) */
  const struct sk_loop_conn_ops *conn_ops; /* the connections, as the loop sees them */
  sk_wire_conn *wire_conns;                /* connections of other wires (seed) */
  int stopping;
  uint64_t stop_deadline;
  sk__metrics metrics; /* written by this loop's thread only (metrics.h) */
};

/* What a loop asks of the native connections on it. conn.c provides it
 * (sk__conn_loop_ops) and server.c hands it to sk__loop_init, so that the
 * loop calls nothing above it by name: loop.c sits below conn.c, wqueue.c
 * and server.c, not in a circle with them. */
typedef struct sk_loop_conn_ops {
  void (*init)(sk_loop *l);          /* per-loop state (the --max-buffered timer) */
  void (*turn)(sk_loop *l);          /* run the runnable engines, then write every queue */
  void (*stop)(sk_loop *l, int now); /* 0: close each when idle; 1: the deadline passed */
  void (*end)(sk_loop *l);           /* every connection has gone: close the per-loop state */
} sk_loop_conn_ops;

/* ---- loops (loop.c) ---- */
int sk__loop_init(sk_loop *l, sk_server *srv, int index, const sk_loop_conn_ops *ops);
/* Every loop begins its graceful stop (any thread; sk_server_stop). */
void sk__loops_stop(sk_server *srv);
void sk__loop_handle_signals(sk_loop *l);
void sk__loop_run(sk_loop *l);   /* until it ends, then sk__loop_close */
void sk__loop_close(sk_loop *l); /* after its last uv_run: closes the uv loop */
void sk__loop_fini(sk_loop *l);  /* once all loops have ended */
int sk__loop_post(sk_loop *l, void (*fn)(void *arg), void *arg);
void *sk__rbuf_get(sk_loop *l);
void sk__rbuf_put(sk_loop *l, void *buf);
void *sk__wchunk_get(sk_loop *l);
void sk__wchunk_put(sk_loop *l, void *buf);

/* budget.c: --max-buffered. The total passed the budget: the loop looks at
 * its connections on its next turn (cheap to call again: once armed, no-op). */
void sk__budget_over(sk_loop *l);
void sk__budget_init(sk_loop *l);
void sk__budget_close(sk_loop *l);
int64_t sk__budget_default(void); /* a quarter of RAM, at most 1 GiB */
sk_loop *sk__conn_loop(const sk_conn *c);
/* Link / unlink a non-native connection (loop thread only). */
void sk__loop_track(sk_loop *l, sk_wire_conn *wc);
void sk__loop_untrack(sk_loop *l, sk_wire_conn *wc);

/* ---- metrics (metrics.c) ---- */
/* Count n (negative for a gauge going down) on c's or l's loop; only from
 * that loop's thread. */
void sk__loop_metric(sk_loop *l, enum sk_metric which, int64_t n);
/* Every loop's counters added up, for a scrape (any thread). */
void sk__metrics_sum(const sk_server *srv, sk__metrics *out);

/* ---- accepting (accept.c) ---- */
/* Raise RLIMIT_NOFILE's soft limit to the hard one (SK_PROCESS_NOFILE),
 * say the limit, and open the reserve descriptor. 0 or an error. */
int sk__accept_prepare(sk_server *srv);
/* Listen on fd and accept from it on loop. Takes l (calloc'ed, spec and wire
 * set) and fd in every case: on an error after l joined loop->listeners the
 * loop closes both on stop, before that they are released here. 0 or an
 * error. */
int sk__listener_start(sk_loop *loop, sk_listener *l, int fd);
/* A bound stream socket for ls (fills ls->fd and ls->bound on the first
 * call); the fd or an error (server.c). */
int sk__stream_socket(sk_listen_spec *ls, int reuseport);
/* What every wire does with an accepted fd, in order:
 * sk__stream_adopt puts it into s (a uv_tcp_t or uv_pipe_t, initialized),
 * fills *ss with the peer's address and peer with its text ("unix" for Unix
 * peers); 0, or an error with fd closed. sk__admit applies --allow/--deny
 * (-EACCES: serve nothing) and --max-conns (SK_EBUSY); on 0 the caller holds
 * one count in srv->nconns, to release when it closes. */
int sk__stream_adopt(uv_stream_t *s, int fd, struct sockaddr_storage *ss, char *peer, size_t cap);
int sk__admit(sk_server *srv, const struct sockaddr *sa);

/* ---- connections (conn.c) ---- */
void sk__conn_accept(sk_listener *l, int fd);
/* Accept fd on l with a wire adapter in front of the engine (adapter.h). */
struct sk_adapter;
void sk__conn_accept_with(sk_listener *l, int fd, const struct sk_adapter *ad);
void sk__conn_flush_dirty(sk_loop *l);
/* Run the engines that sk_conn_done / sk_conn_resume made runnable. */
void sk__conn_run_queue(sk_loop *l);
/* runq has work: the loop does not block before its next turn, wherever
 * the work came from (a close callback runs after the turn). */
void sk__loop_want_turn(sk_loop *l);
extern const sk_loop_conn_ops sk__conn_loop_ops;
int sk__conn_active(const sk_conn *c);

/* ---- config.c ---- */
void sk__config_defaults(sk_config *cfg);
void sk__config_free(sk_server *srv); /* the services' option values */
/* The service's switch (SK__OPT_SWITCH): 1 on, 0 off, -1 it has none. */
int sk__service_switch(const sk_server *srv, int svc);
int sk__cidr_match(const sk_cidr *list, int n, const struct sockaddr *sa);
/* A peer's failed-auth source (sk__ratelimit_source on fd), or "" when
 * --rate-limit-exempt covers it. */
void sk__rl_source(const sk_server *srv, const struct sockaddr *sa, int fd,
                   char key[SK__RATELIMIT_KEY]);
int sk__peer_allowed(const sk_server *srv, const struct sockaddr *sa);

/* ---- listeners other than native streams (udp.c, timeproto.c) ----
 * Each binds its sockets on the loops it wants; 0 or an error (*why set). */
typedef int (*sk_listen_open_fn)(sk_server *srv, sk_listen_spec *ls, const char **why);
int sk__udp_open(sk_server *srv, sk_listen_spec *ls, const char **why);
int sk__daytime_open(sk_server *srv, sk_listen_spec *ls, const char **why);
int sk__rfc868_open(sk_server *srv, sk_listen_spec *ls, const char **why);
/* sk_server_run in two halves, for sk_server_run_on (embed.c) too:
 * start binds, starts the services and the threads of loops 1..n-1 (loop 0
 * is the caller's to run), or closes all it opened again and returns the
 * error (*why says what to do); finish, once loop 0 has ended, waits for
 * the other loops and releases what the loops and services hold. */
int sk__server_start(sk_server *srv, int handle_signals, const char **why);
void sk__server_finish(sk_server *srv);

/* ---- the native wire, and the HTTP front (src/http) ---- */
extern const sk_wire sk__wire_native;
extern const sk_wire sk__wire_http;
/* The wire registered for --wire WIRE --service SERVICE (native answers
 * any service name), or NULL. */
const sk_wire *sk__wire_find(const sk_server *srv, const char *wire, const char *service);

/* The service table and index that own a request type, or NULL. */
const sk_handler_ref *sk__find_handler(const sk_server *srv, const char *type);

#endif
