/* redis_link.h - one connection to Redis on one sockit loop.
 *
 * hiredis does no I/O of its own: a libuv adapter (hiredis's, with a fix:
 * see redis_link.c) joins the connection to the loop that owns the link, so
 * every command, reply and callback runs on that loop's thread and nothing
 * ever blocks it. A link connects without
 * blocking (the host was resolved once at start), says AUTH and SELECT,
 * counts as up when they are answered, comes back with backoff after any
 * failure, watches for a peer that stopped answering, and writes one line to
 * the connection log each time it goes up or down.
 *
 * A link is one of its loop's non-native connections (sk_wire_conn): a
 * server stop closes it, and the loop does not end before it is closed.
 */
#ifndef SOCKIT_SERVICES_REDIS_LINK_H
#define SOCKIT_SERVICES_REDIS_LINK_H

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "service/service.h"

/* Where Redis is: --chat-redis redis://HOST:PORT[/DB] or unix:PATH, and the
 * password from --chat-redis-password-file. */
typedef struct redis_target {
  char ip[64]; /* HOST, resolved at start (connects never resolve) */
  int port;
  char path[108]; /* unix:PATH */
  int db;
  char password[512]; /* "" for none */
  char text[1100];    /* as given, for the log */
} redis_target;

/* Parse url into t (and resolve its host: call before the loops run).
 * 0, or -EINVAL / -ENOENT with *why set for the user. */
int redis_target_parse(redis_target *t, const char *url, const char **why);
/* Read the password (first line of file, at most 511 bytes). */
int redis_target_password(redis_target *t, const char *file, const char **why);

typedef struct redis_link redis_link;
struct redis_link {
  sk_wire_conn wc; /* first: the loop's list of non-native connections */
  sk_server *srv;
  int loop;      /* the loop it lives on (service.h) */
  uv_loop_t *uv; /* that loop's */
  const redis_target *t;
  const char *name; /* in log lines: which link */
  redisAsyncContext *ac;
  int up;           /* connected and AUTH/SELECT answered */
  int was_up;       /* the log has said "up" since it last said "down" */
  int said_down;    /* the log has said "down" since the last "up" */
  int closing;      /* the server stops: no reconnects */
  int drain;        /* close once the loop's connections are gone */
  int no_drain;     /* set by the owner: close at once on a stop */
  int hs_bad;       /* AUTH or SELECT was refused */
  unsigned backoff; /* ms until the next connect attempt */
  uv_timer_t timer; /* reconnect while down, watchdog while up */
  int timer_open;
  int inflight;     /* commands sent, not answered */
  uint64_t last_rx; /* loop time of the last reply */
  void (*on_up)(redis_link *l);
  void (*on_down)(redis_link *l);
  void (*on_closed)(redis_link *l); /* every handle closed: may be freed */
  void *data;
};

/* On loop l->loop's thread: start connecting. The callbacks and data are set by
 * the caller first. */
void redis_link_start(redis_link *l);
/* Send a command; fn(reply, priv) runs once on the loop (reply NULL when
 * the link failed before an answer came). Returns 0, or SK_EUNAVAILABLE
 * while the link is down (fn is then never called). */
typedef void (*redis_reply_fn)(redis_link *l, redisReply *reply, void *priv);
int redis_link_cmd(redis_link *l, redis_reply_fn fn, void *priv, int argc, const char **argv,
                   const size_t *lens);
/* A reply that is an error, or NULL: its text for the log. */
const char *redis_reply_error(const redisReply *r);

#endif
