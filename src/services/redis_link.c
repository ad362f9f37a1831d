/* redis_link.c - one connection to Redis on one loop (see redis_link.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/redis_link.h"
#include "sockit/error.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
#define WATCH_MS 2000     /* how often an up link looks at itself */
#define IDLE_PING_MS 5000 /* a link with nothing in flight pings this often */
#define DEAD_MS 15000     /* no reply for this long with work in flight: gone */
#define DRAIN_TICK_MS 20

/* ---- the target --------------------------------------------------------- */

static int resolve(redis_target *t, const char *host, const char **why) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
  int rc = getaddrinfo(host, NULL, &hints, &ai);
  if (rc != 0 || ai == NULL) {
    *why = "--chat-redis: cannot resolve its host name";
    return -ENOENT;
  }
  if (ai->ai_family == AF_INET6)
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, t->ip, sizeof(t->ip));
  else
    inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, t->ip, sizeof(t->ip));
  freeaddrinfo(ai);
  return 0;
}

/* A decimal number in [lo, hi] that is all of s. */
static int parse_num(const char *s, long lo, long hi, long *out) {
  char *end;
  long v;
  if (*s < '0' || *s > '9')
    return -EINVAL;
  errno = 0;
  v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < lo || v > hi)
    return -EINVAL;
  *out = v;
  return 0;
}

int redis_target_parse(redis_target *t, const char *url, const char **why) {
  static const char usage[] = "--chat-redis: want redis://HOST:PORT[/DB] or unix:PATH (the "
                              "password goes in --chat-redis-password-file)";
  char host[256], *p, *slash, *colon;
  long port = 6379, db = 0;

  memset(t, 0, sizeof(*t));
  *why = usage;
  if (strlen(url) >= sizeof(t->text))
    return -EINVAL;
  snprintf(t->text, sizeof(t->text), "%s", url);
  if (strncmp(url, "unix:", 5) == 0) {
    if (url[5] == '\0' || strlen(url + 5) >= sizeof(t->path))
      return -EINVAL;
    snprintf(t->path, sizeof(t->path), "%s", url + 5);
    return 0;
  }
  if (strncmp(url, "redis://", 8) != 0 || strlen(url + 8) >= sizeof(host) ||
      strchr(url + 8, '@') != NULL)
    return -EINVAL;
  snprintf(host, sizeof(host), "%s", url + 8);
  if ((slash = strchr(host, '/')) != NULL) {
    *slash = '\0';
    if (slash[1] != '\0' && parse_num(slash + 1, 0, 1000000, &db) < 0)
      return -EINVAL;
  }
  p = host;
  if (*p == '[') { /* [IPv6]:PORT */
    char *close = strchr(p, ']');
    if (close == NULL || (close[1] != '\0' && close[1] != ':'))
      return -EINVAL;
    *close = '\0';
    colon = close[1] == ':' ? close + 1 : NULL;
    p++;
  } else {
    colon = strrchr(p, ':');
    if (colon != NULL)
      *colon = '\0';
  }
  if (*p == '\0' || (colon != NULL && parse_num(colon + 1, 1, 65535, &port) < 0))
    return -EINVAL;
  t->port = (int)port;
  t->db = (int)db;
  return resolve(t, p, why);
}

int redis_target_password(redis_target *t, const char *file, const char **why) {
  FILE *f = fopen(file, "re");
  size_t n;
  if (f == NULL) {
    *why = "cannot read --chat-redis-password-file";
    return -errno;
  }
  if (fgets(t->password, sizeof(t->password), f) == NULL)
    t->password[0] = '\0';
  fclose(f);
  n = strcspn(t->password, "\r\n");
  t->password[n] = '\0';
  if (n == 0 || n == sizeof(t->password) - 1) {
    *why = "--chat-redis-password-file: want the password on its first line (1..510 bytes)";
    return -EINVAL;
  }
  return 0;
}

/* ---- the loop adapter ---------------------------------------------------- */

/* hiredis's adapters/libuv.h, with one change: when libuv reports an error
 * on the socket (a reset peer: POLLERR), Debian's hiredis 0.14 adapter
 * returns without telling hiredis and libuv stops the poll, so the link
 * would stay "up" on a dead socket. Here hiredis is asked to read (and
 * write) then, finds the error and disconnects, as newer hiredis does. */
typedef struct uv_events {
  redisAsyncContext *ac;
  uv_poll_t poll;
  int events;
} uv_events;

static void on_poll(uv_poll_t *h, int status, int events) {
  uv_events *p = h->data;
  int ev = status < 0 ? p->events : events;
  if (p->ac != NULL && (ev & UV_READABLE))
    redisAsyncHandleRead(p->ac);
  if (p->ac != NULL && (ev & UV_WRITABLE))
    redisAsyncHandleWrite(p->ac);
}

static void set_events(uv_events *p, int events) {
  p->events = events;
  if (events)
    uv_poll_start(&p->poll, events, on_poll);
  else
    uv_poll_stop(&p->poll);
}

static void add_read(void *priv) {
  set_events(priv, ((uv_events *)priv)->events | UV_READABLE);
}
static void del_read(void *priv) {
  set_events(priv, ((uv_events *)priv)->events & ~UV_READABLE);
}
static void add_write(void *priv) {
  set_events(priv, ((uv_events *)priv)->events | UV_WRITABLE);
}
static void del_write(void *priv) {
  set_events(priv, ((uv_events *)priv)->events & ~UV_WRITABLE);
}

static void on_poll_closed(uv_handle_t *h) {
  free(h->data);
}

static void cleanup(void *priv) {
  uv_events *p = priv;
  p->ac = NULL; /* hiredis is freeing the context */
  uv_close((uv_handle_t *)&p->poll, on_poll_closed);
}

static int attach(redisAsyncContext *ac, uv_loop_t *loop) {
  uv_events *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return -ENOMEM;
  if (uv_poll_init(loop, &p->poll, ac->c.fd) != 0) {
    free(p);
    return -EIO;
  }
  p->ac = ac;
  p->poll.data = p;
  ac->ev.data = p;
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = cleanup;
  return 0;
}

/* ---- commands ----------------------------------------------------------- */

typedef struct cmd_ctx {
  redis_link *l;
  redis_reply_fn fn;
  void *priv;
} cmd_ctx;

const char *redis_reply_error(const redisReply *r) {
  if (r == NULL)
    return "no answer (connection lost)";
  return r->type == REDIS_REPLY_ERROR ? r->str : NULL;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv) {
  cmd_ctx *c = priv;
  redis_link *l = c->l;
  l->inflight--;
  if (reply != NULL)
    l->last_rx = uv_now(l->uv);
  if (c->fn != NULL)
    c->fn(l, reply, c->priv);
  free(c);
}

static int send_argv(redis_link *l, redis_reply_fn fn, void *priv, int argc, const char **argv,
                     const size_t *lens) {
  cmd_ctx *c = malloc(sizeof(*c));
  if (c == NULL)
    return -ENOMEM;
  *c = (cmd_ctx){l, fn, priv};
  if (l->ac == NULL || redisAsyncCommandArgv(l->ac, on_reply, c, argc, argv, lens) != REDIS_OK) {
    free(c);
    return SK_EUNAVAILABLE;
  }
  l->inflight++;
  return 0;
}

int redis_link_cmd(redis_link *l, redis_reply_fn fn, void *priv, int argc, const char **argv,
                   const size_t *lens) {
  if (!l->up)
    return SK_EUNAVAILABLE;
  return send_argv(l, fn, priv, argc, argv, lens);
}

/* ---- up and down -------------------------------------------------------- */

static void log_state(redis_link *l, const char *event, const char *reason) {
  sk__server_log(l->srv, "redis", event, "link", 's', l->name, "redis", 's', l->t->text,
                 reason ? "reason" : NULL, 's', reason, NULL);
}

static void said_down(redis_link *l, const char *reason) {
  if (!l->said_down)
    log_state(l, "redis_down", reason ? reason : "closed");
  l->said_down = 1;
}

static void connect_now(redis_link *l);

static void on_retry(uv_timer_t *t) {
  connect_now(t->data);
}

static void retry_later(redis_link *l) {
  if (l->closing)
    return;
  uv_timer_start(&l->timer, on_retry, l->backoff, 0);
  l->backoff = l->backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : l->backoff * 2;
}

/* Watchdog: a peer that stopped answering (a cut cable gives no RST) is
 * dropped, so that the link can come back; an idle link pings. */
static void on_watch(uv_timer_t *t) {
  redis_link *l = t->data;
  uint64_t now = uv_now(l->uv);
  static const char *ping[] = {"PING"};
  if (!l->up || l->ac == NULL)
    return;
  if (l->inflight > 0 && now - l->last_rx > DEAD_MS) {
    said_down(l, "no answer for 15 s");
    redisAsyncFree(l->ac); /* replies NULL, then on_disconnect */
  } else if (l->inflight == 0 && now - l->last_rx >= IDLE_PING_MS) {
    send_argv(l, NULL, NULL, 1, ping, NULL);
  }
}

/* The last handshake reply: AUTH and SELECT went before it, in order. */
static void on_ready(redis_link *l, redisReply *r, void *priv) {
  const char *err = redis_reply_error(r);
  if (r == NULL)
    return; /* on_connect / on_disconnect say why */
  if (err != NULL || l->hs_bad) {
    said_down(l, err ? err : "AUTH or SELECT refused");
    redisAsyncDisconnect(l->ac);
    return;
  }
  l->up = 1;
  sk__server_metric(l->srv, l->loop, SK_G_REDIS_UP, 1);
  l->said_down = 0;
  l->backoff = BACKOFF_MIN_MS;
  log_state(l, "redis_up", NULL);
  uv_timer_start(&l->timer, on_watch, WATCH_MS, WATCH_MS);
  if (l->on_up != NULL)
    l->on_up(l);
}

/* AUTH, SELECT: a refusal spoils the handshake (on_ready sees it). */
static void on_handshake(redis_link *l, redisReply *r, void *priv) {
  if (r != NULL && r->type == REDIS_REPLY_ERROR) {
    said_down(l, r->str);
    l->hs_bad = 1;
  }
}

static void on_connect(const redisAsyncContext *ac, int status) {
  redis_link *l = ac->data;
  if (status == REDIS_OK || l == NULL)
    return;
  l->ac = NULL; /* hiredis frees it */
  said_down(l, ac->errstr);
  retry_later(l);
}

static void finish_close(redis_link *l);

static void on_disconnect(const redisAsyncContext *ac, int status) {
  redis_link *l = ac->data;
  int was_up;
  if (l == NULL)
    return;
  was_up = l->up;
  l->ac = NULL;
  l->up = 0;
  if (was_up) {
    sk__server_metric(l->srv, l->loop, SK_G_REDIS_UP, -1);
    if (!l->closing)
      sk__server_metric(l->srv, l->loop, SK_M_REDIS_DROPS, 1);
  }
  uv_timer_stop(&l->timer);
  if (!l->closing || was_up)
    said_down(l, l->closing ? "stop" : status == REDIS_OK ? "closed" : ac->errstr);
  if (was_up && l->on_down != NULL)
    l->on_down(l);
  if (l->closing)
    finish_close(l);
  else
    retry_later(l);
}

static void connect_now(redis_link *l) {
  redisAsyncContext *ac;
  char db[16];
  const char *auth[] = {"AUTH", l->t->password}, *sel[] = {"SELECT", db}, *ping[] = {"PING"};

  if (l->closing)
    return;
  ac = l->t->path[0] ? redisAsyncConnectUnix(l->t->path) : redisAsyncConnect(l->t->ip, l->t->port);
  if (ac == NULL || ac->err) {
    said_down(l, ac ? ac->errstr : "out of memory");
    if (ac != NULL)
      redisAsyncFree(ac);
    retry_later(l);
    return;
  }
  ac->data = l;
  if (attach(ac, l->uv) < 0) {
    said_down(l, "cannot watch the socket");
    redisAsyncFree(ac);
    retry_later(l);
    return;
  }
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  l->ac = ac;
  l->last_rx = uv_now(l->uv);
  l->hs_bad = 0;
  snprintf(db, sizeof(db), "%d", l->t->db);
  if (l->t->password[0])
    send_argv(l, on_handshake, NULL, 2, auth, NULL);
  if (l->t->db != 0)
    send_argv(l, on_handshake, NULL, 2, sel, NULL);
  send_argv(l, on_ready, NULL, 1, ping, NULL);
}

/* ---- life --------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h) {
  redis_link *l = h->data;
  sk__server_untrack(l->srv, l->loop, &l->wc);
  if (l->on_closed != NULL)
    l->on_closed(l);
}

static void finish_close(redis_link *l) {
  if (!l->timer_open)
    return;
  l->timer_open = 0;
  uv_close((uv_handle_t *)&l->timer, on_timer_closed);
}

static void close_now(redis_link *l) {
  redisAsyncContext *ac = l->ac;
  l->closing = 1;
  l->drain = 0;
  if (ac == NULL) {
    finish_close(l);
    return;
  }
  redisAsyncFree(ac); /* on_disconnect runs if it was connected */
  if (l->ac == ac) {  /* it was still connecting */
    l->ac = NULL;
    finish_close(l);
  }
}

/* A graceful stop: the loop's connections are leaving their rooms, which
 * takes a command each; close once they are gone and answered. */
static void on_drain_tick(uv_timer_t *t) {
  redis_link *l = t->data;
  if (l->drain &&
      (sk__server_loop_has_conns(l->srv, l->loop) || (l->ac != NULL && l->up && l->inflight > 0)))
    return;
  uv_timer_stop(t);
  close_now(l);
}

static void link_stop(sk_wire_conn *wc, int now) {
  redis_link *l = (redis_link *)wc;
  if (!l->timer_open)
    return; /* closing already */
  l->closing = 1;
  if (now || l->ac == NULL || !l->up || l->no_drain) {
    uv_timer_stop(&l->timer);
    close_now(l);
    return;
  }
  l->drain = 1;
  uv_timer_start(&l->timer, on_drain_tick, DRAIN_TICK_MS, DRAIN_TICK_MS);
}

void redis_link_start(redis_link *l) {
  l->wc.stop = link_stop;
  l->backoff = BACKOFF_MIN_MS;
  uv_timer_init(l->uv, &l->timer);
  l->timer.data = l;
  l->timer_open = 1;
  sk__server_track(l->srv, l->loop, &l->wc);
  if (sk__server_loop_stopping(l->srv, l->loop)) {
    close_now(l);
    return;
  }
  connect_now(l);
}
