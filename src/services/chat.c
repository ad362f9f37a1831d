/* chat.c - the chat service on native TCP/Unix connections (SPEC 4.8):
 * join / joined / say / msg / presence / leave. Rooms, their order and the
 * fan-out are in chat_room.c; UDP members in chat_udp.c. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/chat.h"
#include "services/services.h"
#include "sockit/error.h"

static const char bad_name[] =
    "room and nick must be 1..32 bytes of printable UTF-8 without spaces, controls or "
    "invisible characters";

void chat_log(chat_owner *o, const char *event, const char *room, const char *nick,
              const char *reason) {
  if (o->conn != NULL)
    sk_conn_log(o->conn, event, "room", 's', room, "nick", 's', nick, reason ? "reason" : NULL, 's',
                reason, NULL);
  else
    sk__server_log(o->chat->srv, o->addr, event, "room", 's', room, "nick", 's', nick, "transport",
                   's', "udp", reason ? "reason" : NULL, 's', reason, NULL);
}

/* ---- the backend's calls ------------------------------------------------ */

static void member_free(chat_member *m) {
  free(m->skel);
  free(m);
}

static void owner_unlink(chat_owner *o, chat_member *m) {
  for (chat_member **pp = &o->members; *pp != NULL; pp = &(*pp)->onext)
    if (*pp == m) {
      *pp = m->onext;
      break;
    }
  o->n--;
}

/* The member is on its owner's list from the start, pending: a second join
 * of the room is refused and closing the owner cancels the join. */
int chat_join(chat_owner *o, const char *room, const char *nick, size_t want_hist,
              size_t members_max, chat_join_out *out, chat_join_req *req) {
  chat_member *m = calloc(1, sizeof(*m));
  int rc;

  memset(out, 0, sizeof(*out));
  if (m == NULL || (m->skel = chat_nick_skeleton(o->chat->spoof, nick)) == NULL) {
    free(m);
    return -ENOMEM;
  }
  m->owner = o;
  snprintf(m->nick, sizeof(m->nick), "%s", nick);
  snprintf(m->rname, sizeof(m->rname), "%s", room);
  if ((rc = chat_sources_enter(o->chat->sources, o->source, room)) < 0) {
    member_free(m);
    return rc;
  }
  m->pending = 1;
  m->jreq = req;
  m->onext = o->members;
  o->members = m;
  o->n++;
  rc = o->chat->backend->join(m, room, want_hist, members_max, out);
  if (rc == SK_ASYNC)
    return rc;
  m->pending = 0;
  m->jreq = NULL;
  if (rc < 0) {
    owner_unlink(o, m);
    chat_sources_exit(o->chat->sources, o->source, room);
    member_free(m);
  }
  if (rc == 0)
    chat_metric(o, SK_G_CHAT_MEMBERS, 1);
  return rc;
}

void chat_join_done(chat_member *m, int rc, chat_join_out *out) {
  chat_join_req *req = m->jreq;
  m->pending = 0;
  m->jreq = NULL;
  if (rc < 0 && rc != -ECANCELED) { /* a cancelled m is chat_leave's to free */
    owner_unlink(m->owner, m);
    chat_sources_exit(m->owner->chat->sources, m->owner->source, m->rname);
    member_free(m);
  } else if (rc == 0) {
    chat_metric(m->owner, SK_G_CHAT_MEMBERS, 1);
  }
  req->done(req, rc, out);
}

int chat_say(chat_member *m, const uint8_t *text, size_t n, chat_say_req *req) {
  int rc = m->owner->chat->backend->say(m, text, n, req);
  if (rc == 0) /* a backend that answers later counts it then */
    chat_metric(m->owner, SK_M_CHAT_SAID, 1);
  return rc;
}

/* m, already out of its owner's list: out of its room, then freed. The room
 * name is the member's own copy: once the backend has let go of an emptied
 * room, another loop's join may sweep or evict it, so m->room is not read
 * after. */
static void member_leave(chat_member *m, int presence) {
  chat_owner *o = m->owner;
  int counted = !m->pending; /* a join never answered was never counted */
  o->chat->backend->leave(m, presence);
  chat_sources_exit(o->chat->sources, o->source, m->rname);
  o->n--;
  if (counted)
    chat_metric(o, SK_G_CHAT_MEMBERS, -1);
  member_free(m);
}

void chat_leave(chat_member *m, int presence) {
  for (chat_member **pp = &m->owner->members; *pp != NULL; pp = &(*pp)->onext)
    if (*pp == m) {
      *pp = m->onext;
      break;
    }
  member_leave(m, presence);
}

void chat_leave_all(chat_owner *o, int presence, const char *reason) {
  chat_member *m;
  while ((m = o->members) != NULL) {
    o->members = m->onext;
    if (!m->pending) /* a join never answered was never logged */
      chat_log(o, "leave", chat_room_name(m->room), m->nick, reason);
    member_leave(m, presence);
  }
}

/* ---- requests ----------------------------------------------------------- */

/* Room name of a request, or NULL (an error has been sent). */
static const char *req_room(sk_conn *c, const sk_head *h) {
  const char *room = sk_head_str(h, "room");
  if (room == NULL || !chat_valid_name(room, sk_head_strlen(h, "room"))) {
    sk_conn_error(c, SK_EBADREQ, bad_name);
    return NULL;
  }
  return room;
}

static const char unavailable[] =
    "chat is unavailable: this server cannot reach the Redis its rooms are shared through; try "
    "again shortly";

/* A say whose backend answers later. Says may follow each other while
 * earlier ones wait (SK_H_FOLLOW: a sender keeps a window of them, as on one
 * server), but nothing else does: the connection stays "active" until every
 * say and join has its answer, so an error still comes before the answer
 * to any later request. */
typedef struct tcp_say tcp_say;
struct tcp_say {
  chat_say_req req;
  struct tcp_owner *t;
  sk_conn *c;    /* referenced while the backend has it */
  sk_head *id;   /* the say's "id" alone (or NULL), for a late error */
  tcp_say *next; /* queued: a say to the room being joined waits for it */
  char room[CHAT_NAME_MAX + 1];
  uint8_t *text;
  size_t n;
};

/* A connection's chat state: its memberships, the one join that may be
 * waiting for its backend, and the says that are. */
typedef struct tcp_owner {
  chat_owner o; /* first: the service's state is this */
  chat_join_req jreq;
  int joining;              /* a join waits for its backend */
  int says;                 /* says waiting (for the backend, or queued) */
  tcp_say *queued, **qtail; /* says for the room being joined, in order */
} tcp_owner;

static void say_free(tcp_say *ts) {
  sk_head_free(ts->id);
  free(ts->text);
  free(ts);
}

/* The error of a say answered late: with the say's own id. */
static void say_error(sk_conn *c, const sk_head *id, int rc) {
  sk_head *h = sk_head_new("error");
  if (h == NULL)
    return;
  if (sk_head_set_str(h, "code", sk_err_wire_name(rc)) == 0 &&
      sk_head_set_str(h, "message", rc == SK_EUNAVAILABLE ? unavailable : sk_strerror(rc)) == 0 &&
      (id == NULL || sk_head_copy_member(h, id, "id") == 0))
    sk_conn_push(c, h, NULL, 0);
  sk_head_free(h);
}

/* Every join and say of the connection is answered: its next requests may
 * run. */
static void tcp_settled(tcp_owner *t) {
  if (!t->joining && t->says == 0)
    sk_conn_done(t->o.conn);
}

static int send_joined(sk_conn *c, chat_join_out *jo) {
  int rc = sk_conn_send(c, jo->joined, NULL, 0);
  for (size_t i = 0; rc == 0 && i < jo->nhist; i++)
    rc = sk_conn_push_frame(c, jo->hist[i]);
  return rc;
}

/* The answer to a join, now or when its backend answers: 0 or a code for
 * the core to send. */
static int join_answer(sk_conn *c, chat_owner *o, int rc, chat_join_out *jo) {
  if (rc == SK_ENICKTAKEN)
    return sk_conn_error(c, rc, "that nick is taken in this room: pick another"), 0;
  if (rc == SK_EBUSY)
    return sk_conn_error(c, rc,
                         "too many rooms: connections from this address are in 64, "
                         "or the server is full; leave one first"),
           0;
  if (rc == SK_EUNAVAILABLE)
    return sk_conn_error(c, rc, unavailable), 0;
  if (rc < 0)
    return rc;
  chat_log(o, "join", sk_head_str(jo->joined, "room"), sk_head_str(jo->joined, "nick"), NULL);
  rc = send_joined(c, jo);
  chat_join_out_free(jo);
  return rc == -EPIPE ? 0 : rc;
}

static void tcp_said(chat_say_req *req, int rc) {
  tcp_say *ts = (tcp_say *)req;
  sk_conn *c = ts->c;
  if (!sk_conn_is_closing(c)) { /* a live connection's chat state is live */
    if (rc < 0)
      say_error(c, ts->id, rc);
    ts->t->says--;
    tcp_settled(ts->t);
  }
  sk_conn_unref(c);
  say_free(ts);
}

/* Hand ts to the backend: 0 (answered now) or SK_ASYNC (tcp_said later). */
static int say_start(tcp_owner *t, chat_member *m, tcp_say *ts, const uint8_t *text, size_t n) {
  int rc = chat_say(m, text, n, &ts->req);
  if (rc == SK_ASYNC) {
    sk_conn_ref(ts->c);
    t->says++;
    return rc;
  }
  if (rc < 0)
    say_error(ts->c, ts->id, rc);
  say_free(ts);
  return 0;
}

static void tcp_joined(chat_join_req *req, int rc, chat_join_out *jo) {
  tcp_owner *t = (tcp_owner *)((char *)req - offsetof(tcp_owner, jreq));
  sk_conn *c = t->o.conn;
  tcp_say *q = t->queued;
  if (rc == -ECANCELED) /* the connection is closing: finish frees the queue */
    return;
  if ((rc = join_answer(c, &t->o, rc, jo)) < 0)
    sk_conn_error(c, rc, NULL);
  t->joining = 0;
  t->queued = NULL;
  while (q != NULL) { /* the says that waited for this join, in order */
    tcp_say *ts = q;
    chat_member *m = chat_find(&t->o, ts->room);
    q = ts->next;
    t->says--;
    if (m == NULL || m->pending) {
      say_error(c, ts->id, SK_EFORBIDDEN);
      say_free(ts);
    } else {
      say_start(t, m, ts, ts->text, ts->n);
    }
  }
  tcp_settled(t);
}

static int handle_join(sk_conn *c, const sk_request *req) {
  chat_owner *o = req->state;
  const char *room = req_room(c, req->head), *nick = sk_head_str(req->head, "nick");
  int64_t hist = 0;
  int rc = sk_head_int(req->head, "history", &hist);
  chat_join_out jo;

  if (room == NULL)
    return 0;
  if (nick == NULL || !chat_valid_name(nick, sk_head_strlen(req->head, "nick")))
    return sk_conn_error(c, SK_EBADREQ, bad_name), 0;
  if ((rc < 0 && rc != -ENOENT) || hist < 0)
    return sk_conn_error(c, SK_EBADREQ, "history must be a count of messages (0 or more)"), 0;
  if (chat_find(o, room) != NULL)
    return sk_conn_error(c, SK_EBADREQ, "already in this room: leave it first"), 0;
  if (o->n >= CHAT_CONN_ROOMS)
    return sk_conn_error(c, SK_EBUSY, "in too many rooms at once (32): leave one first"), 0;
  ((tcp_owner *)o)->jreq.done = tcp_joined;
  rc = chat_join(o, room, nick, (size_t)hist, SIZE_MAX, &jo, &((tcp_owner *)o)->jreq);
  if (rc != SK_ASYNC)
    return join_answer(c, o, rc, &jo);
  ((tcp_owner *)o)->joining = 1; /* nothing else runs meanwhile: no says in flight */
  return rc;
}

/* Queue ts (its text copied) until the room's join is answered. */
static int say_queue(tcp_owner *t, tcp_say *ts, const char *room, const uint8_t *text, size_t n) {
  if (n > 0 && (ts->text = malloc(n)) == NULL) {
    say_free(ts);
    return -ENOMEM;
  }
  if (n > 0)
    memcpy(ts->text, text, n);
  ts->n = n;
  snprintf(ts->room, sizeof(ts->room), "%s", room);
  if (t->queued == NULL)
    t->qtail = &t->queued;
  *t->qtail = ts;
  t->qtail = &ts->next;
  t->says++;
  return SK_ASYNC;
}

/* May run while earlier says (or a join) of the connection wait: see
 * tcp_say. An answer now is an error for this say; later, say_error. */
static int handle_say(sk_conn *c, const sk_request *req) {
  chat_owner *o = req->state;
  tcp_owner *t = (tcp_owner *)o;
  const char *room = req_room(c, req->head);
  chat_member *m;
  tcp_say *ts;
  if (room == NULL)
    return 0;
  if ((m = chat_find(o, room)) == NULL)
    return sk_conn_error(c, SK_EFORBIDDEN, "not in this room: join it first"), 0;
  if (!chat_valid_text(req->body, (size_t)req->size))
    return sk_conn_error(c, SK_EBADREQ, "a message must be UTF-8 text"), 0;
  if ((ts = calloc(1, sizeof(*ts))) == NULL)
    return -ENOMEM;
  *ts = (tcp_say){.req = {tcp_said}, .t = t, .c = c};
  if (sk_head_has(req->head, "id") &&
      ((ts->id = sk_head_new("id")) == NULL || sk_head_copy_member(ts->id, req->head, "id") < 0)) {
    say_free(ts);
    return -ENOMEM;
  }
  if (m->pending) /* pipelined right after its join */
    return say_queue(t, ts, room, req->body, (size_t)req->size);
  return say_start(t, m, ts, req->body, (size_t)req->size);
}

/* SPEC 4.8 defines no answer to leave: the others see the presence. */
static int handle_leave(sk_conn *c, const sk_request *req) {
  chat_owner *o = req->state;
  const char *room = req_room(c, req->head);
  chat_member *m;
  if (room == NULL)
    return 0;
  if ((m = chat_find(o, room)) == NULL)
    return sk_conn_error(c, SK_ENOTFOUND, "not in this room"), 0;
  chat_log(o, "leave", room, m->nick, "leave");
  chat_leave(m, 1);
  return 0;
}

/* ---- per connection ----------------------------------------------------- */

static chat_srv *chat_of(const sk_server *srv) {
  return sk__service_state(srv, &sk__svc_chat);
}

static int setup(sk_conn *c, void **state) {
  tcp_owner *t = calloc(1, sizeof(*t));
  chat_owner *o;
  if (t == NULL)
    return -ENOMEM;
  o = &t->o;
  o->chat = chat_of(sk_conn_server(c));
  o->conn = c;
  o->loop = sk__conn_loop_index(c);
  snprintf(o->source, sizeof(o->source), "%s", sk__conn_source(c));
  *state = o;
  return 0;
}

/* Closing the connection leaves every room. */
static void finish(sk_conn *c, void *state) {
  chat_owner *o = state;
  tcp_owner *t = state;
  if (o == NULL)
    return;
  chat_leave_all(o, 1, "close"); /* a waiting join is cancelled */
  while (t->queued != NULL) {
    tcp_say *ts = t->queued;
    t->queued = ts->next;
    say_free(ts);
  }
  free(o);
}

/* ---- per server --------------------------------------------------------- */

static int start(sk_server *srv) {
  chat_srv *ch = calloc(1, sizeof(*ch));
  int rc;
  if (ch == NULL)
    return -ENOMEM;
  ch->srv = srv;
  chat_limits_init(&ch->limits, srv);
  if ((ch->sources = chat_sources_new(CHAT_SOURCE_ROOMS)) == NULL) {
    free(ch);
    return -ENOMEM;
  }
  if ((rc = chat_names_open(&ch->spoof)) < 0) {
    chat_sources_free(ch->sources);
    free(ch);
    return rc;
  }
  ch->backend =
      sk__server_opt_str(srv, "chat-redis")[0] ? &chat_backend_redis : &chat_backend_local;
  uv_mutex_init(&ch->lock);
  uv_mutex_init(&ch->hist.lock);
  sk__service_set_state(srv, &sk__svc_chat, ch);
  if (ch->backend->start != NULL && (rc = ch->backend->start(ch)) < 0)
    goto fail;
  if ((rc = chat_udp_start(ch)) < 0) {
    if (ch->backend->stop != NULL)
      ch->backend->stop(ch);
    goto fail;
  }
  return 0;
fail:
  sk__service_set_state(srv, &sk__svc_chat, NULL);
  uv_mutex_destroy(&ch->hist.lock);
  uv_mutex_destroy(&ch->lock);
  chat_names_close(ch->spoof);
  chat_sources_free(ch->sources);
  free(ch);
  return rc;
}

static void stop(sk_server *srv) {
  chat_srv *ch = chat_of(srv);
  if (ch == NULL)
    return;
  chat_udp_free(ch);
  if (ch->backend->stop != NULL)
    ch->backend->stop(ch);
  chat_rooms_free(ch);
  uv_mutex_destroy(&ch->hist.lock);
  uv_mutex_destroy(&ch->lock);
  chat_names_close(ch->spoof);
  chat_sources_free(ch->sources);
  free(ch);
  sk__service_set_state(srv, &sk__svc_chat, NULL);
}

const sk__option sk__chat_options[] = {
    {.name = "chat-history",
     .kind = SK__OPT_INT,
     .def = 100,
     .max = 100000,
     .arg = "N",
     .help = "messages kept per room (default 100, at most 1 MiB)"},
    {.name = "chat-history-bytes",
     .kind = SK__OPT_SIZE,
     .def = 64 << 20,
     .max = (int64_t)SK_SIZE_MAX,
     .arg = "B",
     .help = "history of every room together (default 64M);\npast it the oldest messages go first"},
    /* not a `sockit serve` flag: for embedders and tests (seconds; 600) */
    {.name = "chat-room-ttl", .kind = SK__OPT_MS, .def = 600000, .min = 1, .max = 86400 * 1000},
    {.name = "udp-lease",
     .kind = SK__OPT_MS,
     .def = 120 * 1000,
     .min = 1,
     .max = 3600 * 1000,
     .arg = "S",
     .help = "a UDP chat member silent for S seconds leaves (default 120)"},
    {.name = "chat-redis",
     .kind = SK__OPT_STR,
     .max = 1023,
     .arg = "URL",
     .help =
         "share chat rooms with every server on this Redis:\nredis://HOST:PORT[/DB] or unix:PATH"},
    {.name = "chat-redis-password-file",
     .kind = SK__OPT_STR,
     .max = 4095,
     .arg = "F",
     .help = "the Redis password (first line of F)"},
    {0},
};

static const sk_handler chat_handlers[] = {
    {.type = "join", .handle = handle_join},
    {.type = "say", .handle = handle_say, .flags = SK_H_FOLLOW, .max_body = CHAT_SAY_MAX},
    {.type = "leave", .handle = handle_leave},
    {0},
};

const sk_service sk__svc_chat = {.name = "chat",
                                 .handlers = chat_handlers,
                                 .setup = setup,
                                 .finish = finish,
                                 .start = start,
                                 .stop = stop};
