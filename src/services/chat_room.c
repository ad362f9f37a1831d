/* chat_room.c - rooms: the registry, membership, history and fan-out that
 * both chat transports share (see chat.h for where a room lives and why). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/chat.h"
#include "sockit/error.h"

/* One message of a room's history. It is in two lists: its room's, and
 * every room's together in the order they were said, so that the server's
 * total (--chat-history-bytes) drops the oldest message of any room. */
typedef struct hist_entry {
  sk_buf *frame; /* the msg frame as sent */
  chat_room *room;
  struct hist_entry *rnext;         /* the room's next newer message */
  struct hist_entry *gprev, *gnext; /* every room's, oldest first */
  size_t cost;                      /* the frame and this entry */
} hist_entry;

struct chat_room {
  uv_mutex_t lock;
  chat_room *hnext;            /* hash chain (registry lock) */
  chat_member *members, *tail; /* in join order */
  int nmembers;
  uint64_t emptied;           /* uv_hrtime() when it last became empty */
  hist_entry *hfirst, *hlast; /* oldest first (ch->hist.lock) */
  size_t hn, hbytes;          /* (ch->hist.lock) */
  char name[CHAT_NAME_MAX + 1];
  chat_pos read_pos; /* an ordering backend's: read up to here */
  int read_on;       /* ... and being read (off when the room empties) */
};

/* One message on its way to the members that live on one loop. */
typedef struct target {
  sk_conn *conn; /* referenced; NULL for a UDP peer */
  chat_owner *owner;
} target;

typedef struct delivery {
  sk_buf *frame;
  chat_pos pos; /* its place in the room's order, or {0,0} */
  char room[CHAT_NAME_MAX + 1];
  int n;
  target t[];
} delivery;

/* A delivery held for a member whose join is not answered yet. */
struct chat_held {
  chat_held *next;
  sk_buf *frame;
  chat_pos pos;
};

/* ---- names ------------------------------------------------------------ */

const char *chat_room_name(const chat_room *r) {
  return r->name;
}

chat_member *chat_find(const chat_owner *o, const char *room) {
  for (chat_member *m = o->members; m != NULL; m = m->onext)
    if (strcmp(m->room->name, room) == 0)
      return m;
  return NULL;
}

int chat_pos_cmp(chat_pos a, chat_pos b) {
  if (a.ms != b.ms)
    return a.ms < b.ms ? -1 : 1;
  return a.seq < b.seq ? -1 : a.seq > b.seq;
}

static int pos_none(chat_pos p) {
  return p.ms == 0 && p.seq == 0;
}

/* ---- fan-out ------------------------------------------------------------ */

/* Owner thread: is the owner still there to be written to? A live
 * connection's chat state is live. */
static int owner_alive(const chat_owner *o) {
  return o->conn ? !sk_conn_is_closing(o->conn) : chat_udp_alive(o->peer);
}

/* Owner thread: queue the shared frame on o's connection (or datagram
 * queue). A connection whose unsent output passes 8 MiB is dropped at
 * once; the others never wait for it. */
static void push_to(chat_owner *o, sk_buf *frame) {
  sk_conn *c = o->conn;
  chat_metric(o, SK_M_CHAT_DELIVERED, 1);
  if (c == NULL) {
    chat_udp_push(o->peer, frame);
    return;
  }
  sk_conn_push_frame(c, frame);
  if (sk_conn_queued(c) > CHAT_SLOW_BYTES) {
    chat_leave_all(o, 1, "slow_consumer");
    sk_conn_close(c, SK_ESLOWCONSUMER);
  }
}

static void held_free(chat_held *h) {
  while (h != NULL) {
    chat_held *next = h->next;
    sk_buf_unref(h->frame);
    free(h);
    h = next;
  }
}

/* Owner thread: keep an ordered delivery for m until its join is answered.
 * Past CHAT_SLOW_BYTES m could not have kept up anyway: it is dropped as a
 * slow consumer when the answer comes (held_bytes SIZE_MAX). */
static void hold(chat_member *m, sk_buf *frame, chat_pos pos) {
  chat_held *h = m->held_bytes < CHAT_SLOW_BYTES ? malloc(sizeof(*h)) : NULL;
  if (h == NULL) {
    m->held_bytes = SIZE_MAX;
    return;
  }
  *h = (chat_held){NULL, sk_buf_ref(frame), pos};
  if (m->held == NULL)
    m->held_tail = &m->held;
  *m->held_tail = h;
  m->held_tail = &h->next;
  m->held_bytes += sk_buf_len(frame);
}

/* Owner thread: does the ordered delivery d go to o's member now? Each
 * member takes a place in the order once, and only past its own join. */
static int ordered_take(chat_owner *o, const delivery *d) {
  chat_member *m = chat_find(o, d->room);
  if (m == NULL)
    return 0;
  if (m->pending) {
    hold(m, d->frame, d->pos);
    return 0;
  }
  if (chat_pos_cmp(d->pos, m->since) <= 0)
    return 0;
  m->since = d->pos;
  return 1;
}

void chat_member_ready(chat_member *m, chat_pos pos, chat_ready *rd) {
  chat_held *h = m->held, **tail = &rd->held;

  *rd = (chat_ready){.o = m->owner, .tag = m->tag, .slow = m->held_bytes == SIZE_MAX};
  memcpy(rd->room, m->room->name, sizeof(rd->room));
  uv_mutex_lock(&m->room->lock);
  m->live = 1;
  uv_mutex_unlock(&m->room->lock);
  m->held = NULL;
  m->held_bytes = 0;
  m->since = pos;
  for (chat_held *next; h != NULL; h = next) { /* only what comes after pos */
    next = h->next;
    h->next = NULL;
    if (chat_pos_cmp(h->pos, m->since) > 0) {
      m->since = h->pos;
      *tail = h;
      tail = &h->next;
    } else {
      held_free(h);
    }
  }
}

void chat_ready_push(chat_ready *rd) {
  chat_owner *o = rd->o;
  chat_member *m = chat_find(o, rd->room);
  if (m == NULL || m->tag != rd->tag || !owner_alive(o)) {
    /* it left (or left and joined again) before the answer was out */
  } else if (rd->slow && o->conn != NULL) {
    chat_leave_all(o, 1, "slow_consumer");
    sk_conn_close(o->conn, SK_ESLOWCONSUMER);
  } else {
    for (chat_held *h = rd->held; h != NULL && owner_alive(o); h = h->next)
      push_to(o, h->frame); /* may drop o as a slow consumer */
  }
  held_free(rd->held);
  rd->held = NULL;
}

static void target_release(target *t) {
  if (t->conn != NULL)
    sk_conn_unref(t->conn); /* never the last: the member still holds the conn */
  else
    chat_udp_unref(t->owner->peer);
}

/* On the target loop: hand the frame to each of the loop's members. */
static void deliver(void *arg) {
  delivery *d = arg;
  for (int i = 0; i < d->n; i++) {
    target *t = &d->t[i];
    /* the connection first: a closing connection's chat state may be gone */
    int alive = t->conn ? !sk_conn_is_closing(t->conn) : chat_udp_alive(t->owner->peer);
    if (alive && (pos_none(d->pos) || ordered_take(t->owner, d)))
      push_to(t->owner, d->frame);
    target_release(t);
  }
  sk_buf_unref(d->frame);
  free(d);
}

static void post_delivery(chat_srv *ch, int loop, delivery *d) {
  if (sk__server_post(ch->srv, loop, deliver, d) == 0)
    return;
  for (int i = 0; i < d->n; i++)
    target_release(&d->t[i]);
  sk_buf_unref(d->frame);
  free(d);
}

/* Hand frame (at pos in the room's order, or {0,0}) to every member but
 * skip, one task per loop. Room locked: the posts to each loop happen in the
 * room's order. */
static void broadcast(chat_room *r, chat_srv *ch, sk_buf *frame, const chat_member *skip,
                      chat_pos pos) {
  int count[SK_MAX_LOOPS] = {0}, nloops = sk__server_loops(ch->srv);
  delivery *d[SK_MAX_LOOPS] = {0};

  for (chat_member *m = r->members; m != NULL; m = m->rnext)
    if (m != skip)
      count[m->owner->loop]++;
  for (int l = 0; l < nloops; l++)
    if (count[l] > 0 && (d[l] = malloc(sizeof(delivery) + (size_t)count[l] * sizeof(target))))
      *d[l] = (delivery){.frame = sk_buf_ref(frame), .pos = pos};
  for (chat_member *m = r->members; m != NULL; m = m->rnext) {
    delivery *x = m != skip ? d[m->owner->loop] : NULL;
    if (x == NULL)
      continue; /* out of memory: this loop's members miss the message */
    x->t[x->n++] = (target){m->owner->conn, m->owner};
    if (m->owner->conn)
      sk_conn_ref(m->owner->conn);
    else
      chat_udp_ref(m->owner->peer);
  }
  for (int l = 0; l < nloops; l++)
    if (d[l] != NULL) {
      memcpy(d[l]->room, r->name, sizeof(r->name));
      post_delivery(ch, l, d[l]);
    }
}

void chat_room_fanout(chat_room *r, sk_buf *frame, chat_pos pos) {
  if (r->members != NULL)
    broadcast(r, r->members->owner->chat, frame, NULL, pos);
}

static void free_encoded(void *ctx, void *data) {
  free(data);
}

/* A frame with no body and no "size" member (SPEC 4.8's presence). */
static sk_buf *encode_bare(const sk_head *h) {
  uint8_t *p = NULL;
  ssize_t n = sk_head_encode_alloc(h, &p);
  sk_buf *b = n > 0 ? sk_buf_wrap(p, (size_t)n, free_encoded, NULL) : NULL;
  if (b == NULL)
    free(p);
  return b;
}

sk_buf *chat_presence_frame(const char *room, const char *nick, const char *event) {
  sk_head *h = sk_head_new("presence");
  sk_buf *frame = NULL;
  if (h != NULL && sk_head_set_str(h, "room", room) == 0 && sk_head_set_str(h, "nick", nick) == 0 &&
      sk_head_set_str(h, "event", event) == 0)
    frame = encode_bare(h);
  sk_head_free(h);
  return frame;
}

sk_buf *chat_msg_frame(const char *room, const char *from, double ts, const uint8_t *text,
                       size_t n) {
  sk_head *h = sk_head_new("msg");
  sk_buf *frame = NULL;
  if (h != NULL && sk_head_set_str(h, "room", room) == 0 && sk_head_set_str(h, "from", from) == 0 &&
      sk_head_set_double(h, "ts", ts) == 0)
    frame = sk_frame_encode(h, text, n); /* once, shared by every member */
  sk_head_free(h);
  return frame;
}

static void presence(chat_room *r, chat_srv *ch, const chat_member *m, const char *event) {
  sk_buf *frame = chat_presence_frame(r->name, m->nick, event);
  if (frame != NULL) {
    broadcast(r, ch, frame, m, (chat_pos){0, 0});
    sk_buf_unref(frame);
  }
}

/* ---- history ------------------------------------------------------------ */

/* What a kept message costs beyond its frame: the entry, the sk_buf and
 * the allocator's headers. Counted so that many tiny messages cannot hold
 * more memory than the bound says. */
#define HIST_OVERHEAD (sizeof(hist_entry) + 64)

/* History locked. Forget r's oldest message. */
static void hist_drop_oldest(chat_srv *ch, chat_room *r) {
  hist_entry *e = r->hfirst;
  if ((r->hfirst = e->rnext) == NULL)
    r->hlast = NULL;
  r->hn--;
  r->hbytes -= e->cost;
  if (e->gprev)
    e->gprev->gnext = e->gnext;
  else
    ch->hist.oldest = e->gnext;
  if (e->gnext)
    e->gnext->gprev = e->gprev;
  else
    ch->hist.newest = e->gprev;
  ch->hist.bytes -= e->cost;
  sk_buf_unref(e->frame);
  free(e);
}

/* Room locked (the room's order). Keep frame as r's newest message: first
 * the room's bounds (--chat-history messages, CHAT_HIST_BYTES), then the
 * server's total, dropping the oldest message of any room. */
static void hist_push(chat_srv *ch, chat_room *r, sk_buf *frame) {
  const chat_limits *lim = &ch->limits;
  size_t cost = sk_buf_len(frame) + HIST_OVERHEAD;
  hist_entry *e;
  if (lim->hist_msgs == 0 || cost > lim->hist_room_bytes || (e = malloc(sizeof(*e))) == NULL)
    return;
  *e = (hist_entry){.frame = sk_buf_ref(frame), .room = r, .cost = cost};
  uv_mutex_lock(&ch->hist.lock);
  while (r->hn > 0 && (r->hn >= lim->hist_msgs || r->hbytes + cost > lim->hist_room_bytes))
    hist_drop_oldest(ch, r);
  while (ch->hist.oldest != NULL && ch->hist.bytes + cost > lim->hist_total_bytes)
    hist_drop_oldest(ch, ch->hist.oldest->room); /* the oldest of all is its room's oldest */
  if (r->hlast)
    r->hlast->rnext = e;
  else
    r->hfirst = e;
  r->hlast = e;
  r->hn++;
  r->hbytes += cost;
  e->gprev = ch->hist.newest;
  if (ch->hist.newest)
    ch->hist.newest->gnext = e;
  else
    ch->hist.oldest = e;
  ch->hist.newest = e;
  ch->hist.bytes += cost;
  uv_mutex_unlock(&ch->hist.lock);
}

/* Room locked. References on r's newest min(want, kept) messages, oldest
 * first, into out; -ENOMEM. */
static int hist_copy(chat_srv *ch, chat_room *r, size_t want, chat_join_out *out) {
  int rc = 0;
  uv_mutex_lock(&ch->hist.lock);
  size_t nh = want < r->hn ? want : r->hn;
  if (nh > 0 && (out->hist = malloc(nh * sizeof(sk_buf *))) == NULL)
    rc = -ENOMEM;
  else if (nh > 0) {
    hist_entry *e = r->hfirst;
    for (size_t skip = r->hn - nh; skip > 0; skip--)
      e = e->rnext;
    for (; e != NULL; e = e->rnext)
      out->hist[out->nhist++] = sk_buf_ref(e->frame);
  }
  uv_mutex_unlock(&ch->hist.lock);
  return rc;
}

static void hist_clear(chat_srv *ch, chat_room *r) {
  uv_mutex_lock(&ch->hist.lock);
  while (r->hn > 0)
    hist_drop_oldest(ch, r);
  uv_mutex_unlock(&ch->hist.lock);
}

void chat_limits_init(chat_limits *lim, const sk_server *srv) {
  lim->hist_msgs = (size_t)sk_server_opt_int(srv, "chat-history");
  lim->hist_total_bytes = (size_t)sk_server_opt_int(srv, "chat-history-bytes");
  lim->hist_room_bytes =
      lim->hist_total_bytes < CHAT_HIST_BYTES ? lim->hist_total_bytes : CHAT_HIST_BYTES;
  lim->room_ttl_ns = (uint64_t)sk_server_opt_int(srv, "chat-room-ttl") * 1000000u;
}

/* ---- the registry ------------------------------------------------------- */

static unsigned bucket_of(const char *name) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (const uint8_t *p = (const uint8_t *)name; *p; p++)
    h = (h ^ *p) * 16777619u;
  return h % CHAT_ROOM_BUCKETS;
}

static void room_free(chat_srv *ch, chat_room *r) {
  hist_clear(ch, r);
  uv_mutex_destroy(&r->lock);
  free(r);
}

/* Room locked. Empty for the TTL: its history is to be forgotten. */
static int room_expired(const chat_srv *ch, const chat_room *r, uint64_t now) {
  return r->nmembers == 0 && now - r->emptied >= ch->limits.room_ttl_ns;
}

/* Registry locked. Free every room that has been empty for the TTL. Run
 * from joins at most ten times per TTL: a lazy sweep needs no timer, and a
 * room's history is never read after its TTL because local_join clears an
 * expired room it finds before the sweep got to it. */
static void sweep_expired(chat_srv *ch, uint64_t now) {
  if (now - ch->swept < ch->limits.room_ttl_ns / 10)
    return;
  ch->swept = now;
  for (int b = 0; b < CHAT_ROOM_BUCKETS; b++)
    for (chat_room **pp = &ch->buckets[b]; *pp != NULL;) {
      chat_room *r = *pp;
      uv_mutex_lock(&r->lock);
      int expired = room_expired(ch, r, now);
      uv_mutex_unlock(&r->lock);
      if (!expired) {
        pp = &r->hnext;
        continue;
      }
      *pp = r->hnext;
      ch->nrooms--;
      room_free(ch, r); /* empty and unlisted: nobody else can reach it */
    }
}

/* Registry locked. Frees the empty room that has been empty longest. */
static int evict_one(chat_srv *ch) {
  chat_room **best = NULL;
  uint64_t oldest = UINT64_MAX;
  for (int b = 0; b < CHAT_ROOM_BUCKETS; b++)
    for (chat_room **pp = &ch->buckets[b]; *pp != NULL; pp = &(*pp)->hnext) {
      uv_mutex_lock(&(*pp)->lock);
      if ((*pp)->nmembers == 0 && (*pp)->emptied < oldest) {
        oldest = (*pp)->emptied;
        best = pp;
      }
      uv_mutex_unlock(&(*pp)->lock);
    }
  if (best == NULL)
    return SK_EBUSY;
  chat_room *r = *best;
  *best = r->hnext;
  ch->nrooms--;
  room_free(ch, r); /* empty and in no list: nobody else can reach it */
  return 0;
}

/* Registry locked. */
static chat_room *room_get(chat_srv *ch, const char *name, int *err) {
  unsigned b = bucket_of(name);
  chat_room *r;
  for (r = ch->buckets[b]; r != NULL; r = r->hnext)
    if (strcmp(r->name, name) == 0)
      return r;
  sweep_expired(ch, uv_hrtime());
  if (ch->nrooms >= CHAT_MAX_ROOMS && (*err = evict_one(ch)) < 0)
    return NULL;
  if ((r = calloc(1, sizeof(*r))) == NULL) {
    *err = -ENOMEM;
    return NULL;
  }
  uv_mutex_init(&r->lock);
  snprintf(r->name, sizeof(r->name), "%s", name);
  r->hnext = ch->buckets[b];
  ch->buckets[b] = r;
  ch->nrooms++;
  return r;
}

void chat_rooms_free(chat_srv *ch) {
  for (int b = 0; b < CHAT_ROOM_BUCKETS; b++)
    while (ch->buckets[b] != NULL) {
      chat_room *r = ch->buckets[b];
      ch->buckets[b] = r->hnext;
      room_free(ch, r);
    }
}

/* ---- the local backend: join, say, leave ------------------------------- */

sk_head *chat_joined_head(const char *room, const char *nick, const char *const *names, size_t n,
                          size_t members_max) {
  sk_head *h = sk_head_new("joined");
  size_t fit = 0, bytes = 0;
  if (h == NULL)
    return NULL;
  for (; fit < n; fit++) {
    size_t cost = 2 * strlen(names[fit]) + 3; /* quotes, comma, worst-case escapes */
    if (bytes + cost > members_max)
      break;
    bytes += cost;
  }
  if (sk_head_set_str(h, "room", room) < 0 || sk_head_set_str(h, "nick", nick) < 0 ||
      sk_head_set_strv(h, "members", names, fit) < 0 ||
      (fit < n && sk_head_set_bool(h, "truncated", 1) < 0)) {
    sk_head_free(h);
    h = NULL;
  }
  return h;
}

/* Room locked. The joined head: every nick, cut to members_max bytes. */
static sk_head *joined_head(chat_room *r, const char *nick, size_t members_max) {
  const char **names = malloc((size_t)r->nmembers * sizeof(*names));
  size_t n = 0;
  sk_head *h;
  if (names == NULL)
    return NULL;
  for (chat_member *m = r->members; m != NULL; m = m->rnext)
    names[n++] = m->nick;
  h = chat_joined_head(r->name, nick, names, n, members_max);
  free(names);
  return h;
}

/* The same nick, or one a reader could mistake for it (chat_names.c). */
static int nick_taken(const chat_room *r, const char *skel) {
  for (const chat_member *m = r->members; m != NULL; m = m->rnext)
    if (strcmp(m->skel, skel) == 0)
      return 1;
  return 0;
}

/* Room locked: the member in, the answer built. */
static int join_locked(chat_room *r, chat_member *m, size_t want, size_t members_max,
                       chat_join_out *out) {
  chat_srv *ch = m->owner->chat;
  if (room_expired(ch, r, uv_hrtime()))
    hist_clear(ch, r); /* empty for the TTL: the sweep has not come by yet */
  if (nick_taken(r, m->skel))
    return SK_ENICKTAKEN;
  m->rprev = r->tail;
  if (r->tail)
    r->tail->rnext = m;
  else
    r->members = m;
  r->tail = m;
  if (r->nmembers++ == 0)
    chat_metric(m->owner, SK_G_CHAT_ROOMS, 1);
  if ((out->joined = joined_head(r, m->nick, members_max)) == NULL ||
      hist_copy(ch, r, want, out) < 0) {
    sk_head_free(out->joined);
    out->joined = NULL;
    return -ENOMEM; /* the caller unlinks m */
  }
  presence(r, ch, m, "join");
  return 0;
}

static void unlink_locked(chat_room *r, chat_member *m) {
  if (m->rprev)
    m->rprev->rnext = m->rnext;
  else
    r->members = m->rnext;
  if (m->rnext)
    m->rnext->rprev = m->rprev;
  else
    r->tail = m->rprev;
  m->rprev = m->rnext = NULL;
  if (--r->nmembers == 0) {
    r->emptied = uv_hrtime();
    r->read_on = 0;
    chat_metric(m->owner, SK_G_CHAT_ROOMS, -1);
  }
}

/* The room called name (made if need be), locked; NULL with *err set. */
static chat_room *room_get_locked(chat_srv *ch, const char *name, int *err) {
  chat_room *r;
  uv_mutex_lock(&ch->lock);
  r = room_get(ch, name, err);
  if (r != NULL)
    uv_mutex_lock(&r->lock); /* registry, then room: the one lock order */
  uv_mutex_unlock(&ch->lock);
  return r;
}

static int local_join(chat_member *m, const char *room, size_t want_hist, size_t members_max,
                      chat_join_out *out) {
  int rc = -ENOMEM;
  chat_room *r = room_get_locked(m->owner->chat, room, &rc);
  if (r == NULL)
    return rc;
  m->room = r;
  rc = join_locked(r, m, want_hist, members_max, out);
  if (rc == -ENOMEM)
    unlink_locked(r, m);
  uv_mutex_unlock(&r->lock);
  return rc;
}

void chat_join_out_free(chat_join_out *out) {
  for (size_t i = 0; i < out->nhist; i++)
    sk_buf_unref(out->hist[i]);
  free(out->hist);
  sk_head_free(out->joined);
  memset(out, 0, sizeof(*out));
}

static int local_say(chat_member *m, const uint8_t *text, size_t n, chat_say_req *req) {
  chat_room *r = m->room;
  chat_srv *ch = m->owner->chat;
  sk_buf *frame;
  uv_mutex_lock(&r->lock);
  /* the timestamp is taken where the order is decided, so ts never goes
   * backwards within a room */
  frame = chat_msg_frame(r->name, m->nick, sk__now_wall(), text, n);
  if (frame != NULL) {
    hist_push(ch, r, frame);
    broadcast(r, ch, frame, NULL, (chat_pos){0, 0});
  }
  uv_mutex_unlock(&r->lock);
  sk_buf_unref(frame);
  return frame ? 0 : -ENOMEM;
}

static void local_leave(chat_member *m, int presence_too) {
  chat_room *r = m->room;
  uv_mutex_lock(&r->lock);
  unlink_locked(r, m);
  if (presence_too)
    presence(r, m->owner->chat, m, "leave");
  uv_mutex_unlock(&r->lock);
}

/* Rooms in this process: the order is taken under the room's lock. */
const chat_backend chat_backend_local = {
    .name = "local", .join = local_join, .say = local_say, .leave = local_leave};

/* ---- the registry as an ordering backend uses it ------------------------ */

int chat_room_link(chat_member *m, const char *room) {
  int rc = -ENOMEM;
  chat_room *r = room_get_locked(m->owner->chat, room, &rc);
  if (r == NULL)
    return rc;
  if (nick_taken(r, m->skel)) {
    uv_mutex_unlock(&r->lock);
    return SK_ENICKTAKEN;
  }
  m->room = r;
  m->rprev = r->tail;
  if (r->tail)
    r->tail->rnext = m;
  else
    r->members = m;
  r->tail = m;
  if (r->nmembers++ == 0)
    chat_metric(m->owner, SK_G_CHAT_ROOMS, 1);
  uv_mutex_unlock(&r->lock);
  return 0;
}

void chat_room_unlink(chat_member *m) {
  chat_room *r = m->room;
  uv_mutex_lock(&r->lock);
  unlink_locked(r, m);
  m->live = 0;
  uv_mutex_unlock(&r->lock);
  held_free(m->held);
  m->held = NULL;
  m->held_bytes = 0;
}

chat_room *chat_room_lock(chat_srv *ch, const char *name) {
  chat_room *r;
  uv_mutex_lock(&ch->lock);
  for (r = ch->buckets[bucket_of(name)]; r != NULL; r = r->hnext)
    if (strcmp(r->name, name) == 0)
      break;
  if (r != NULL)
    uv_mutex_lock(&r->lock);
  uv_mutex_unlock(&ch->lock);
  return r;
}

void chat_room_unlock(chat_room *r) {
  uv_mutex_unlock(&r->lock);
}

void chat_rooms_each(chat_srv *ch, void (*fn)(chat_room *r, void *arg), void *arg) {
  uv_mutex_lock(&ch->lock);
  for (int b = 0; b < CHAT_ROOM_BUCKETS; b++)
    for (chat_room *r = ch->buckets[b]; r != NULL; r = r->hnext) {
      uv_mutex_lock(&r->lock);
      fn(r, arg);
      uv_mutex_unlock(&r->lock);
    }
  uv_mutex_unlock(&ch->lock);
}

int chat_room_nmembers(const chat_room *r) {
  return r->nmembers;
}

chat_member *chat_room_members(const chat_room *r) {
  return r->members;
}

chat_pos *chat_room_read_pos(chat_room *r) {
  return &r->read_pos;
}

int *chat_room_read_on(chat_room *r) {
  return &r->read_on;
}
