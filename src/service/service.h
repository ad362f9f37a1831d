/* service.h - the service API: everything a built-in service (src/services)
 * may know of the server beyond include/sockit/server.h and sockit/uv.h.
 *
 * The rule (scripts/check-layers.sh, part of `make lint`): no file under
 * src/services/ includes a src/net/ header, and no file under src/net/
 * names a service. A service sees the server through sk_conn_* and
 * sk_server_* (public) and the calls below; the core implements them
 * (src/net/service.c) and includes this header, never the other way up.
 *
 * Loops are numbered 0 .. sk__server_loops(srv) - 1. Every call here that
 * names a loop or a connection runs on that loop's thread unless it says
 * otherwise.
 */
#ifndef SOCKIT_SERVICE_SERVICE_H
#define SOCKIT_SERVICE_SERVICE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "auth/ratelimit.h"
#include "service/metric.h"
#include "sockit/auth.h"
#include "sockit/server.h"
#include "sockit/uv.h"

#define SK_MAX_LOOPS 64            /* --threads at most */
#define SK_DISCARD_MAX (16u << 20) /* over-limit bodies up to this are skipped */

/* ---- per-server state: made by .start, freed by .stop ------------------ */

/* The state a service's .start hook stored for this server (NULL before
 * and after). svc is the table as registered (a built-in's own table).
 * Any thread: set once at start, before the loops run. */
void *sk__service_state(const sk_server *srv, const sk_service *svc);
void sk__service_set_state(sk_server *srv, const sk_service *svc, void *state);
/* From .start: the line that says why it failed (static text), which
 * sk_server_run hands back as *why. */
void sk__service_failed(sk_server *srv, const char *why);
/* Is the service of that name on (--services, its switch)? After start. */
int sk__service_enabled(const sk_server *srv, const char *name);

/* ---- options ------------------------------------------------------------ */

/* A service declares its own options in a table (sk__builtin in builtin.c
 * pairs it with the service); the core parses them like its own, so that
 * `sockit serve --NAME VALUE` and sk_server_set take them, `sockit serve
 * --help` lists them (sk_server_option) and sk_config holds none of them. */
enum sk__opt_kind {
  SK__OPT_FLAG,   /* --NAME, no value: 1 when given */
  SK__OPT_SWITCH, /* a flag that turns the service on, whatever --services
                     lists (exec: --allow-exec); at most one per service */
  SK__OPT_INT,    /* a number in [min, max] */
  SK__OPT_SIZE,   /* bytes, with a K/M/G/T suffix: "16M" */
  SK__OPT_MS,     /* seconds with fractions, kept in ms; min, max in ms */
  SK__OPT_STR,    /* text, at most SK__OPT_STR_MAX - 1 bytes */
};
#define SK__OPT_STR_MAX 4096

typedef struct sk__option {
  const char *name; /* without the dashes: "exec-timeout" */
  enum sk__opt_kind kind;
  int64_t def;      /* numbers, flags: the value when not given (strings: "") */
  int64_t min, max; /* strings: max is the longest value (0: SK__OPT_STR_MAX - 1) */
  const char *arg;  /* --help: the value's placeholder ("S"); NULL for flags */
  const char *help; /* --help: the text, '\n' between lines; NULL: not a
                       command-line flag (for applications and tests) */
} sk__option;

/* Register svc's options (terminated by an entry with name NULL), from
 * sk_server_new. 0, -EEXIST (a name is taken) or -ENOMEM. */
int sk__server_add_options(sk_server *srv, const sk_service *svc, const sk__option *opts);

/* A string option's value by name ("exec-user"), "" when unset, NULL for no
 * such option. Numbers, flags and sizes: sk_server_opt_int (server.h). */
const char *sk__server_opt_str(const sk_server *srv, const char *name);

/* Make and open the file root (--root, else $XDG_DATA_HOME/sockit/files):
 * from the .start hook of a service that keeps files there, or a wire's
 * check. Once per server; then sk_server_root / sk_server_root_fd answer.
 * 0, or an error with *why (static text) saying what failed. */
int sk__server_root_open(sk_server *srv, const char **why);

/* ---- loops and threads -------------------------------------------------- */

int sk__server_loops(const sk_server *srv);
int sk__conn_loop_index(const sk_conn *c);
/* The libuv loop of loop i: handles, timers, uv_queue_work, on its thread. */
uv_loop_t *sk__server_uv(sk_server *srv, int loop);
/* Run fn(arg) on loop i's thread, soon (any thread; never inline; tasks
 * posted from one thread run in order). 0, or -ENOMEM: fn never runs. */
int sk__server_post(sk_server *srv, int loop, void (*fn)(void *arg), void *arg);

/* A connection of the service's own on a loop (a Redis link): the loop asks
 * it to close on a graceful stop and does not end before it has untracked
 * itself. The struct is the caller's, usually its first member. */
typedef struct sk_wire_conn {
  struct sk_wire_conn *next, *prev;
  /* now == 0: the server is stopping, close when idle; now == 1: the stop
   * deadline passed, close at once. May be called more than once. */
  void (*stop)(struct sk_wire_conn *wc, int now);
} sk_wire_conn;
void sk__server_track(sk_server *srv, int loop, sk_wire_conn *wc);
void sk__server_untrack(sk_server *srv, int loop, sk_wire_conn *wc);
/* Loop i has begun its graceful stop (tracked connections were asked to
 * close, or will be: one tracked now should close at once). */
int sk__server_loop_stopping(const sk_server *srv, int loop);
/* Loop i still has native connections (they may still need a service's
 * own connection to leave cleanly: chat's Redis links wait for them). */
int sk__server_loop_has_conns(const sk_server *srv, int loop);

/* ---- telling the operator ----------------------------------------------- */

/* One line in the connection log (sk_conn_log's fields, closed by NULL),
 * for events that belong to no connection; peer names the side. */
void sk__server_log(const sk_server *srv, const char *peer, const char *event, ...);
/* Tell the operator (sk_server_on_notice): one line, printf-style, no
 * newline. The library's only way to say something outside a connection. */
void sk__notice(const sk_server *srv, sk_notice_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- metrics (the names are in service/metric.h) ------------------------ */

/* Count n (negative for a gauge going down) on c's loop, or loop i; only
 * from that loop's thread. */
void sk__conn_metric(sk_conn *c, enum sk_metric which, int64_t n);
void sk__server_metric(sk_server *srv, int loop, enum sk_metric which, int64_t n);

/* ---- connections -------------------------------------------------------- */

/* The peer's source key (auth/ratelimit.h: IPv4 address, IPv6 /64, "uid:N"),
 * "" for a --rate-limit-exempt peer. Services count per-source limits by it. */
const char *sk__conn_source(const sk_conn *c);

/* Like sk_conn_send, with the head given as compact JSON text: a non-empty
 * object whose "size" (if any) is bn and that has no "id" member. The core
 * adds the request's "id" as sk_conn_send does, so the bytes on the wire
 * are the same as for the equal head object; no head object is built,
 * encoded and freed per response (echo, pong). */
int sk__conn_send_text(sk_conn *c, const char *head, size_t n, const void *body, size_t bn);

/* ---- the server's secrets, for wires that authenticate (seed auth) ------ */

const sk_key *sk__server_key(const sk_server *srv); /* len 0: --no-auth */
sk__ratelimit *sk__server_ratelimit(sk_server *srv);

/* ---- wires other than native -------------------------------------------- */

typedef struct sk_listener sk_listener;
typedef struct sk_listen_spec sk_listen_spec;

/* A wire is how a listener's connections speak: native frames, or one of
 * the seed (tutorial) formats. */
typedef struct sk_wire {
  const char *name;
  /* fd was accepted on l (non-blocking, close-on-exec): allocate the wire's
   * own object with a handle on l's loop and uv_tcp_open / uv_pipe_open fd
   * in it. The wire owns fd from the call on and closes it, also when it
   * cannot serve it. */
  void (*accept)(sk_listener *l, int fd);
  /* Optional start-up check of a listener using this wire (e.g. the seed
   * wire's loopback-only rule). 0 or an error with *why set. */
  int (*check)(sk_server *srv, const sk_listen_spec *ls, const char **why);
  /* every loop binds its own SO_REUSEPORT socket (native, http); else
   * accepted on loop 0 only (a seed chat broker sees all its members there) */
  int per_loop;
} sk_wire;

/* Register a wire for `--wire WIRE --service SERVICE` listeners (the seed
 * wire's adapters, from sk_server_new). 0 or -ENOMEM. */
int sk__server_add_wire(sk_server *srv, const char *wire, const char *service, const sk_wire *impl);

/* ---- the built-in set (src/services/builtin.c: sk_server_new) ---------- */

/* A server with its defaults and no service yet; sk_server_free frees it. */
int sk__server_create(sk_server **out);
/* Register a table as a built-in (decided by --services) or, builtin 0, as
 * the application's (sk_server_add_service). 0, -EEXIST or -ENOMEM. */
int sk__server_add(sk_server *srv, const sk_service *svc, int builtin);

/* Unix seconds with fractions; seconds on CLOCK_MONOTONIC (penalties,
 * intervals). */
double sk__now_wall(void);
double sk__now_mono(void);

#endif
