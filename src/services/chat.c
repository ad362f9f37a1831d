/* chat.c - the chat service on native TCP/Unix connections (SPEC 4.8):
 * join / joined / say / msg / presence / leave. Rooms, their order and the
 * fan-out are in chat_room.c; UDP members in chat_udp.c. */
#include <errno.h>
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
    sk__log_event(o->chat->srv->log, o->addr, event, "room", 's', room, "nick", 's', nick,
                  "transport", 's', "udp", reason ? "reason" : NULL, 's', reason, NULL);
}

/* ---- the backend's calls ------------------------------------------------ */

static void member_free(chat_member *m) {
  free(m->skel);
  free(m);
}

int chat_join(chat_owner *o, const char *room, const char *nick, size_t want_hist,
              size_t members_max, chat_join_out *out) {
  chat_member *m = calloc(1, sizeof(*m));
  int rc;

  memset(out, 0, sizeof(*out));
  if (m == NULL || (m->skel = chat_nick_skeleton(o->chat->spoof, nick)) == NULL) {
    free(m);
    return -ENOMEM;
  }
  m->owner = o;
  snprintf(m->nick, sizeof(m->nick), "%s", nick);
  if ((rc = chat_sources_enter(o->chat->sources, o->source, room)) < 0) {
    member_free(m);
    return rc;
  }
  if ((rc = o->chat->backend->join(m, room, want_hist, members_max, out)) < 0) {
    chat_sources_exit(o->chat->sources, o->source, room);
    member_free(m);
    return rc;
  }
  m->onext = o->members;
  o->members = m;
  o->n++;
  chat_metric(o, SK_G_CHAT_MEMBERS, 1);
  return 0;
}

int chat_say(chat_member *m, const uint8_t *text, size_t n) {
  int rc = m->owner->chat->backend->say(m, text, n);
  if (rc == 0)
    chat_metric(m->owner, SK_M_CHAT_SAID, 1);
  return rc;
}

/* m, already out of its owner's list: out of its room, then freed. The room
 * name is copied first: once the backend has let go of an emptied room,
 * another loop's join may sweep or evict it, so m->room is not read after. */
static void member_leave(chat_member *m, int presence) {
  chat_owner *o = m->owner;
  char room[CHAT_NAME_MAX + 1];
  snprintf(room, sizeof(room), "%s", chat_room_name(m->room));
  o->chat->backend->leave(m, presence);
  chat_sources_exit(o->chat->sources, o->source, room);
  o->n--;
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

static int send_joined(sk_conn *c, chat_join_out *jo) {
  int rc = sk_conn_send(c, jo->joined, NULL, 0);
  for (size_t i = 0; rc == 0 && i < jo->nhist; i++)
    rc = sk_conn_push_frame(c, jo->hist[i]);
  return rc;
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
  rc = chat_join(o, room, nick, (size_t)hist, SIZE_MAX, &jo);
  if (rc == SK_ENICKTAKEN)
    return sk_conn_error(c, rc, "that nick is taken in this room: pick another"), 0;
  if (rc == SK_EBUSY)
    return sk_conn_error(c, rc,
                         "too many rooms: connections from this address are in 64, "
                         "or the server is full; leave one first"),
           0;
  if (rc < 0)
    return rc;
  chat_log(o, "join", room, nick, NULL);
  rc = send_joined(c, &jo);
  chat_join_out_free(&jo);
  return rc == -EPIPE ? 0 : rc;
}

static int handle_say(sk_conn *c, const sk_request *req) {
  chat_owner *o = req->state;
  const char *room = req_room(c, req->head);
  chat_member *m;
  if (room == NULL)
    return 0;
  if ((m = chat_find(o, room)) == NULL)
    return sk_conn_error(c, SK_EFORBIDDEN, "not in this room: join it first"), 0;
  if (!chat_valid_text(req->body, (size_t)req->size))
    return sk_conn_error(c, SK_EBADREQ, "a message must be UTF-8 text"), 0;
  return chat_say(m, req->body, (size_t)req->size);
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
  for (int i = 0; i < srv->nservices; i++)
    if (srv->services[i] == &sk__svc_chat)
      return srv->svc_shared[i];
  return NULL;
}

static int setup(sk_conn *c, void **state) {
  chat_owner *o = calloc(1, sizeof(*o));
  if (o == NULL)
    return -ENOMEM;
  o->chat = chat_of(sk_conn_server(c));
  o->conn = c;
  o->loop = sk__conn_loop(c)->index;
  snprintf(o->source, sizeof(o->source), "%s", sk__conn_source(c));
  *state = o;
  return 0;
}

/* Closing the connection leaves every room. */
static void finish(sk_conn *c, void *state) {
  chat_owner *o = state;
  if (o == NULL)
    return;
  chat_leave_all(o, 1, "close");
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
  ch->backend = &chat_backend_local;
  uv_mutex_init(&ch->lock);
  uv_mutex_init(&ch->hist.lock);
  for (int i = 0; i < srv->nservices; i++)
    if (srv->services[i] == &sk__svc_chat)
      srv->svc_shared[i] = ch;
  if (ch->backend->start != NULL && (rc = ch->backend->start(ch)) < 0)
    goto fail;
  if ((rc = chat_udp_start(ch)) < 0) {
    if (ch->backend->stop != NULL)
      ch->backend->stop(ch);
    goto fail;
  }
  return 0;
fail:
  for (int i = 0; i < srv->nservices; i++)
    if (srv->services[i] == &sk__svc_chat)
      srv->svc_shared[i] = NULL;
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
  for (int i = 0; i < srv->nservices; i++)
    if (srv->services[i] == &sk__svc_chat)
      srv->svc_shared[i] = NULL;
}

static const sk_handler chat_handlers[] = {
    {.type = "join", .handle = handle_join},
    {.type = "say", .handle = handle_say, .max_body = CHAT_SAY_MAX},
    {.type = "leave", .handle = handle_leave},
    {0},
};

const sk_service sk__svc_chat = {.name = "chat",
                                 .handlers = chat_handlers,
                                 .setup = setup,
                                 .finish = finish,
                                 .start = start,
                                 .stop = stop};
