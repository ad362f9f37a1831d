/* chat_udp.c - chat members that speak UDP (SPEC 5): a join registers the
 * sender's address, any datagram from it renews a 120 s lease, and an
 * expired lease leaves every room. They sit in the same rooms as TCP members
 * (chat_room.c); every peer lives on the UDP loop, so the peer table needs
 * no lock.
 *
 * Amplification: a registered address receives every message of its rooms,
 * so registering one must cost proof that the registrant receives there. On
 * a server with a key the datagram's authentication is that proof; without
 * one the first join from an address is answered with a cookie only and the
 * join that repeats it registers (net/udp.h). And one source address (all
 * its ports) holds at most SOURCE_MAX_JOINS memberships. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/dgram.h"
#include "services/chat.h"
#include "sockit/error.h"

#define PEER_BUCKETS 256
#define PEER_MAX 4096
#define SOURCE_MAX_JOINS 16 /* memberships per source address, all ports */
#define IP_TEXT 64

struct chat_peer {
  chat_owner owner; /* its memberships */
  atomic_int refs;  /* the table's, plus one per delivery in flight */
  int gone;         /* out of the table: deliveries are dropped */
  int ep;           /* the endpoint it last spoke to */
  struct sockaddr_storage addr;
  socklen_t alen;
  uint64_t expires; /* UDP loop time, ms */
  chat_peer *hnext;
  struct peer_source *src; /* its address without the port */
  chat_peer *snext;        /* the source's other peers */
  char text[SK_ADDR_TEXT];
};

/* The peers of one IP address, whatever their ports. */
typedef struct peer_source {
  chat_peer *peers;
  struct peer_source *next;
  char ip[IP_TEXT];
} peer_source;

typedef struct peer_table {
  chat_peer *buckets[PEER_BUCKETS];
  peer_source *sources[PEER_BUCKETS];
  int npeers;
  uint64_t lease_ms;
} peer_table;

static const char bad_name[] =
    "room and nick must be 1..32 bytes of printable UTF-8 without spaces";

/* ---- peers -------------------------------------------------------------- */

void chat_udp_ref(chat_peer *p) {
  atomic_fetch_add(&p->refs, 1);
}

void chat_udp_unref(chat_peer *p) {
  if (atomic_fetch_sub(&p->refs, 1) == 1)
    free(p);
}

int chat_udp_alive(const chat_peer *p) {
  return !p->gone;
}

void chat_udp_push(chat_peer *p, sk_buf *frame) {
  /* a frame over the UDP limit (a 64 KiB say from TCP) cannot reach UDP
   * members; a full send queue drops it: UDP members accept loss */
  if (!p->gone)
    sk__udp_push(p->owner.chat->srv, p->ep, (struct sockaddr *)&p->addr, p->alen, frame);
}

static uint64_t now_ms(chat_srv *ch) {
  return uv_now(sk__server_uv(ch->srv, sk__udp_loop_index(ch->srv)));
}

static unsigned bucket_of(const char *text) {
  uint32_t h = 2166136261u;
  for (const uint8_t *s = (const uint8_t *)text; *s; s++)
    h = (h ^ *s) * 16777619u;
  return h % PEER_BUCKETS;
}

static chat_peer **peer_slot(peer_table *pt, const char *text) {
  chat_peer **pp = &pt->buckets[bucket_of(text)];
  while (*pp != NULL && strcmp((*pp)->text, text) != 0)
    pp = &(*pp)->hnext;
  return pp;
}

/* The source record of ip, created when create is set; NULL without one. */
static peer_source *source_of(peer_table *pt, const char *ip, int create) {
  peer_source **sp = &pt->sources[bucket_of(ip)];
  while (*sp != NULL && strcmp((*sp)->ip, ip) != 0)
    sp = &(*sp)->next;
  if (*sp == NULL && create && (*sp = calloc(1, sizeof(**sp))) != NULL)
    snprintf((*sp)->ip, sizeof((*sp)->ip), "%s", ip);
  return *sp;
}

static void source_unlink(peer_table *pt, chat_peer *p) {
  peer_source *s = p->src, **sp;
  chat_peer **pp = &s->peers;
  while (*pp != NULL && *pp != p)
    pp = &(*pp)->snext;
  if (*pp == p)
    *pp = p->snext;
  if (s->peers != NULL)
    return;
  for (sp = &pt->sources[bucket_of(s->ip)]; *sp != NULL && *sp != s; sp = &(*sp)->next) {
  }
  if (*sp == s)
    *sp = s->next;
  free(s);
}

/* Memberships held by the source's peers together. At most
 * SOURCE_MAX_JOINS peers hold any, so this stays short. */
static int source_joins(const peer_source *s) {
  int n = 0;
  for (const chat_peer *p = s->peers; p != NULL; p = p->snext)
    n += p->owner.n;
  return n;
}

static chat_peer *peer_new(chat_srv *ch, peer_table *pt, sk_dgram *d) {
  char ip[IP_TEXT];
  peer_source *s;
  chat_peer *p;
  sk__addr_ip((struct sockaddr *)&d->from, ip, sizeof(ip));
  if (pt->npeers >= PEER_MAX || (p = calloc(1, sizeof(*p))) == NULL)
    return NULL;
  if ((s = source_of(pt, ip, 1)) == NULL) {
    free(p);
    return NULL;
  }
  atomic_init(&p->refs, 1);
  p->owner =
      (chat_owner){.chat = ch, .peer = p, .loop = sk__udp_loop_index(ch->srv), .addr = p->text};
  p->ep = d->ep;
  memcpy(&p->addr, &d->from, d->fromlen);
  p->alen = d->fromlen;
  p->expires = now_ms(ch) + pt->lease_ms;
  snprintf(p->text, sizeof(p->text), "%s", d->peer);
  p->hnext = pt->buckets[bucket_of(p->text)];
  pt->buckets[bucket_of(p->text)] = p;
  p->src = s;
  p->snext = s->peers;
  s->peers = p;
  pt->npeers++;
  return p;
}

/* Out of the table and every room; deliveries still in flight hold it. */
static void peer_remove(peer_table *pt, chat_peer *p, int presence, const char *reason) {
  chat_peer **pp = peer_slot(pt, p->text);
  chat_leave_all(&p->owner, presence, reason);
  if (*pp == p)
    *pp = p->hnext;
  source_unlink(pt, p);
  pt->npeers--;
  p->gone = 1;
  chat_udp_unref(p);
}

/* ---- requests ----------------------------------------------------------- */

static const char *dgram_room(sk_dgram *d, const sk_head *h) {
  const char *room = sk_head_str(h, "room");
  if (room == NULL || !chat_valid_name(room, sk_head_strlen(h, "room"))) {
    sk__dgram_error(d, SK_EBADREQ, bad_name);
    return NULL;
  }
  return room;
}

/* The newest history frames that still fit the answer budget, in order. */
static void send_history(sk_dgram *d, const chat_join_out *jo) {
  size_t first = jo->nhist, bytes = 0, seal = d->authed ? SK_UDP_SEAL_MAX : 0;
  while (first > 0 && bytes + sk_buf_len(jo->hist[first - 1]) + seal <= d->budget)
    bytes += sk_buf_len(jo->hist[--first]) + seal;
  for (size_t i = first; i < jo->nhist; i++)
    sk__dgram_reply_frame(d, jo->hist[i]);
}

/* A join or say whose backend answers later: the datagram is kept to be
 * answered then. The peer outlives a waiting join (leaving cancels it). */
typedef struct udp_join_req {
  chat_join_req req;
  sk_dgram *d;
  chat_peer *p;
} udp_join_req;

typedef struct udp_say_req {
  chat_say_req req;
  sk_dgram *d;
} udp_say_req;

static const char unavailable[] = "chat is unavailable: the server cannot reach its Redis";

/* The answer to a join, now or when its backend answers. */
static int join_answer(peer_table *pt, chat_peer *p, sk_dgram *d, int rc, chat_join_out *jo) {
  if (rc < 0) {
    if (p->owner.n == 0)
      peer_remove(pt, p, 0, NULL);
    if (rc == SK_ENICKTAKEN)
      return sk__dgram_error(d, rc, "that nick is taken in this room");
    return rc == SK_EUNAVAILABLE ? sk__dgram_error(d, rc, unavailable) : rc;
  }
  chat_log(&p->owner, "join", sk_head_str(jo->joined, "room"), sk_head_str(jo->joined, "nick"),
           NULL);
  sk__dgram_reply(d, jo->joined, NULL, 0);
  send_history(d, jo);
  chat_join_out_free(jo);
  return 0;
}

static void udp_joined(chat_join_req *req, int rc, chat_join_out *jo) {
  udp_join_req *uj = (udp_join_req *)req;
  if (rc != -ECANCELED && (rc = join_answer(uj->p->owner.chat->udp, uj->p, uj->d, rc, jo)) < 0)
    sk__dgram_error(uj->d, rc, NULL);
  sk__dgram_free(uj->d);
  free(uj);
}

static void udp_said(chat_say_req *req, int rc) {
  udp_say_req *us = (udp_say_req *)req;
  if (rc < 0 && us->d != NULL)
    sk__dgram_error(us->d, rc, rc == SK_EUNAVAILABLE ? unavailable : NULL);
  sk__dgram_free(us->d);
  free(us);
}

static int join_checked(chat_srv *ch, peer_table *pt, sk_dgram *d, const char *room,
                        const char *nick, size_t hist) {
  chat_peer *p = *peer_slot(pt, d->peer);
  chat_join_out jo;
  udp_join_req *uj;
  int rc;

  if (p == NULL && (p = peer_new(ch, pt, d)) == NULL)
    return SK_EBUSY;
  if (chat_find(&p->owner, room) != NULL)
    return sk__dgram_error(d, SK_EBADREQ, "already in this room: leave it first");
  if (p->owner.n >= CHAT_MAX_JOINS || source_joins(p->src) >= SOURCE_MAX_JOINS) {
    if (p->owner.n == 0)
      peer_remove(pt, p, 0, NULL);
    return sk__dgram_error(d, SK_EBUSY, "at most 16 rooms per address over UDP: leave one");
  }
  if ((uj = calloc(1, sizeof(*uj))) == NULL || (uj->d = sk__dgram_keep(d)) == NULL) {
    free(uj);
    if (p->owner.n == 0)
      peer_remove(pt, p, 0, NULL);
    return -ENOMEM;
  }
  uj->req.done = udp_joined;
  uj->p = p;
  /* the members list is cut so that joined fits the reflection budget */
  rc = chat_join(&p->owner, room, nick, hist, SK_UDP_AMP - 64, &jo, &uj->req);
  if (rc == SK_ASYNC)
    return 0;
  sk__dgram_free(uj->d);
  free(uj);
  return join_answer(pt, p, d, rc, &jo);
}

static int udp_join(chat_srv *ch, peer_table *pt, sk_dgram *d, const sk_head *h) {
  /* an address registers only once it has proven that it receives here */
  if (!d->proven && !sk__dgram_cookie_ok(d, sk_head_str(h, "cookie")))
    return sk__dgram_send_cookie(d);
  const char *room = dgram_room(d, h), *nick = sk_head_str(h, "nick");
  int64_t hist = 0;
  int rc = sk_head_int(h, "history", &hist);
  if (room == NULL)
    return 0;
  if (nick == NULL || !chat_valid_name(nick, sk_head_strlen(h, "nick")))
    return sk__dgram_error(d, SK_EBADREQ, bad_name);
  if ((rc < 0 && rc != -ENOENT) || hist < 0)
    return sk__dgram_error(d, SK_EBADREQ, "history must be a count of messages (0 or more)");
  return join_checked(ch, pt, d, room, nick, (size_t)hist);
}

static chat_member *member_of(peer_table *pt, sk_dgram *d, const char *room) {
  chat_peer *p = *peer_slot(pt, d->peer);
  return p ? chat_find(&p->owner, room) : NULL;
}

static int udp_say(peer_table *pt, sk_dgram *d, const sk_head *h, const uint8_t *body, size_t n) {
  const char *room = dgram_room(d, h);
  chat_member *m;
  udp_say_req *us;
  int rc;
  if (room == NULL)
    return 0;
  if ((m = member_of(pt, d, room)) == NULL)
    return sk__dgram_error(d, SK_EFORBIDDEN, "not in this room (or the lease ran out): join");
  if (m->pending)
    return sk__dgram_error(d, SK_EFORBIDDEN, "still joining this room: wait for joined");
  if (!chat_valid_text(body, n))
    return sk__dgram_error(d, SK_EBADREQ, "a message must be UTF-8 text");
  if ((us = calloc(1, sizeof(*us))) == NULL)
    return -ENOMEM;
  us->req.done = udp_said;
  rc = chat_say(m, body, n, &us->req);
  if (rc == SK_ASYNC) {
    us->d = sk__dgram_keep(d); /* NULL: the answer cannot be sent */
    return 0;
  }
  free(us);
  return rc == SK_EUNAVAILABLE ? sk__dgram_error(d, rc, unavailable) : rc;
}

static int udp_leave(peer_table *pt, sk_dgram *d, const sk_head *h) {
  const char *room = dgram_room(d, h);
  chat_member *m;
  if (room == NULL)
    return 0;
  if ((m = member_of(pt, d, room)) == NULL)
    return sk__dgram_error(d, SK_ENOTFOUND, "not in this room");
  chat_peer *p = m->owner->peer;
  chat_log(&p->owner, "leave", room, m->nick, "leave");
  chat_leave(m, 1);
  if (p->owner.n == 0)
    peer_remove(pt, p, 0, NULL);
  return 0;
}

/* ---- the datagram table ------------------------------------------------- */

static int on_dgram(sk_dgram *d, const sk_head *h, const uint8_t *body, size_t n, void *ctx) {
  chat_srv *ch = ctx;
  const char *type = sk_head_type(h);
  if (strcmp(type, "join") == 0)
    return udp_join(ch, ch->udp, d, h);
  if (strcmp(type, "say") == 0)
    return udp_say(ch->udp, d, h, body, n);
  return udp_leave(ch->udp, d, h);
}

/* Any datagram from a member renews its lease. */
static void on_seen(sk_dgram *d, void *ctx) {
  chat_srv *ch = ctx;
  chat_peer *p = *peer_slot(ch->udp, d->peer);
  if (p != NULL) {
    p->expires = now_ms(ch) + ((peer_table *)ch->udp)->lease_ms;
    p->ep = d->ep;
    sk__dgram_prove(d); /* a member's address proved itself when it joined */
  }
}

static void on_tick(sk_server *srv, void *ctx) {
  chat_srv *ch = ctx;
  peer_table *pt = ch->udp;
  uint64_t now = now_ms(ch);
  for (int b = 0; b < PEER_BUCKETS; b++)
    for (chat_peer *p = pt->buckets[b], *next; p != NULL; p = next) {
      next = p->hnext;
      if (now >= p->expires)
        peer_remove(pt, p, 1, "lease_expired");
    }
}

/* Every peer out, each read before it goes (as on_tick does): not
 * "remove the bucket's head until it is empty", which relies on peer_remove
 * finding the head by its text for the loop to end. */
static void peer_remove_all(peer_table *pt, const char *reason) {
  for (int b = 0; b < PEER_BUCKETS; b++)
    for (chat_peer *p = pt->buckets[b], *next; p != NULL; p = next) {
      next = p->hnext;
      peer_remove(pt, p, 0, reason);
    }
}

/* The UDP sockets close (server stop): members go quietly. */
static void on_closing(sk_server *srv, void *ctx) {
  chat_srv *ch = ctx;
  peer_remove_all(ch->udp, "stop");
}

int chat_udp_start(chat_srv *ch) {
  static const char *const types[] = {"join", "say", "leave", NULL};
  peer_table *pt = calloc(1, sizeof(*pt));
  if (pt == NULL)
    return -ENOMEM;
  pt->lease_ms =
      (uint64_t)sk_server_opt_int(ch->srv, "udp-lease"); /* --udp-lease, 120 s by default */
  ch->udp = pt;
  sk_dgram_table t = {.types = types,
                      .handle = on_dgram,
                      .seen = on_seen,
                      .tick = on_tick,
                      .closing = on_closing,
                      .ctx = ch};
  int rc = sk__dgram_register(ch->srv, &t);
  if (rc < 0) {
    free(pt);
    ch->udp = NULL;
  }
  return rc;
}

void chat_udp_free(chat_srv *ch) {
  peer_table *pt = ch->udp;
  if (pt == NULL)
    return;
  peer_remove_all(pt, NULL);
  free(pt);
  ch->udp = NULL;
}
