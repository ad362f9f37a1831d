/* chat.h - rooms shared by the chat service's two transports: TCP/Unix
 * connections (chat.c) and UDP peers with leases (chat_udp.c).
 *
 * The service never decides where a room's order, membership and history
 * live: it calls chat_join / chat_say / chat_leave, and those go to the
 * server's backend (chat_backend below). The local backend keeps rooms in
 * this process (chat_room.c).
 *
 * Where a room lives: rooms are shared by every loop, and each room has one
 * mutex held while a message gets its place in the room's order (history
 * append and the hand-off to every member's loop). Deliveries to a member
 * always go through sk__server_post to the member's loop - also when it is the
 * sender's own loop - and each loop runs its posted tasks in FIFO order, so
 * every member sees the room's order exactly. The alternative, one owner loop
 * per room, costs two extra hops per message (say to the owner, then out) and
 * an asynchronous join reply; a lock held for an encode and a few list
 * appends is cheaper and keeps join/say/leave synchronous.
 *
 * Ownership: a member belongs to its owner (a connection's chat state, or a
 * UDP peer) and is created and freed on the owner's thread; the room's list
 * links it under the room's lock. A delivery task holds a reference on each
 * target connection (or peer) and on the one shared frame.
 */
#ifndef SOCKIT_SERVICES_CHAT_H
#define SOCKIT_SERVICES_CHAT_H

#include <stdatomic.h>

#include "service/service.h"

#define CHAT_NAME_MAX 32
#define CHAT_SAY_MAX 65536u
#define CHAT_SLOW_BYTES (8u << 20) /* unsent output that drops a member */
/* What one peer may hold, and what all of them together (issue 15: 17
 * sockets from one address once held every room, and filling histories took
 * a server to 1 GiB). Histories: --chat-history messages and CHAT_HIST_BYTES
 * per room, --chat-history-bytes (default 64 MiB) for every room together,
 * an empty room's dropped after 10 minutes. A room without history costs
 * ~200 bytes, so CHAT_MAX_ROOMS of them are ~3 MiB. */
#define CHAT_HIST_BYTES (1u << 20) /* per room (or the total, if smaller) */
#define CHAT_MAX_ROOMS 16384       /* empty rooms are evicted beyond this */
#define CHAT_CONN_ROOMS 32         /* rooms one TCP/Unix connection may be in */
#define CHAT_SOURCE_ROOMS 64       /* distinct rooms one source address may be in */
#define CHAT_MAX_JOINS 64          /* rooms one UDP peer may be in */
#define CHAT_ROOM_BUCKETS 4096

typedef struct chat_srv chat_srv;
typedef struct chat_room chat_room;
typedef struct chat_member chat_member;
typedef struct chat_peer chat_peer;
typedef struct chat_join_out chat_join_out;
typedef struct chat_sources chat_sources;
typedef struct chat_join_req chat_join_req;
typedef struct chat_say_req chat_say_req;
typedef struct chat_held chat_held;

/* A place in a room's one order, for a backend that orders rooms outside
 * this process (a Redis stream entry id, ms-seq). {0,0}: unordered (the
 * local backend's deliveries, which the room lock already orders). */
typedef struct chat_pos {
  uint64_t ms, seq;
} chat_pos;

int chat_pos_cmp(chat_pos a, chat_pos b);

/* Whoever joins: a connection's chat state or a UDP peer. Owner thread only. */
typedef struct chat_owner {
  chat_srv *chat;
  chat_member *members; /* its memberships */
  int n;
  sk_conn *conn;                  /* a TCP/Unix owner, else NULL */
  chat_peer *peer;                /* a UDP owner, else NULL */
  int loop;                       /* index of the loop its deliveries run on */
  const char *addr;               /* a UDP owner's address, for the log */
  char source[SK__RATELIMIT_KEY]; /* a TCP/Unix owner's sk__conn_source, or "" */
} chat_owner;

struct chat_member {
  chat_room *room;
  chat_member *rprev, *rnext; /* in the room (room lock) */
  chat_member *onext;         /* in the owner's list (owner thread) */
  chat_owner *owner;
  char nick[CHAT_NAME_MAX + 1];
  char *skel;                    /* the nick's UTS #39 skeleton: nick_taken compares these */
  char rname[CHAT_NAME_MAX + 1]; /* its room's name, for the owner's side */
  /* An asynchronous join (owner thread): pending until the backend calls
   * chat_join_done; deliveries that come meanwhile are held, in order. */
  int pending;
  chat_join_req *jreq;
  chat_held *held, **held_tail;
  size_t held_bytes;
  chat_pos since; /* the newest ordered delivery it was handed */
  int live;       /* joined and answered (room lock): a backend may count it */
  uint64_t tag;   /* the backend's name for this membership */
  void *be;       /* the backend's pending work for it */
};

/* The service's side of a join or say that a backend answers later (the
 * libuv request pattern): the service owns the struct and keeps it until
 * done runs, exactly once, on the owner's thread. A join that is left
 * before its answer comes gets done(-ECANCELED) from inside chat_leave. */
struct chat_join_req {
  void (*done)(chat_join_req *req, int rc, chat_join_out *out);
};
struct chat_say_req {
  void (*done)(chat_say_req *req, int rc);
};

/* A chat backend: one table of functions, chosen once per server (as a
 * redis ae backend or a curl TLS backend is). Each runs on the calling
 * owner's thread. The owner's side (its member list, the count of its
 * rooms, allocation and free of the member) is chat.c's, never a backend's.
 *
 * join  Put m (owner, nick and skel set, on its owner's list; in no room
 *       yet) into room. The answer goes to out: the joined head (every nick
 *       in the room, the joiner's included, cut to members_max bytes) and up
 *       to want_hist earlier msg frames. The room's other members get a
 *       join presence. Returns 0, SK_ENICKTAKEN or another SK_E* / -errno
 *       code (then m is in no room and out is empty), or SK_ASYNC: the
 *       answer comes later through chat_join_done (m->pending meanwhile).
 * say   Give text (valid UTF-8, at most CHAT_SAY_MAX bytes) its place in the
 *       room's order and hand it to every member, the sender included.
 *       0 or an error now, or SK_ASYNC: req->done says later whether it
 *       got its place (SK_EUNAVAILABLE when it could not).
 * leave Take m out of its room and tell the others (presence, or always
 *       when the room outlives this server). A pending m's join is
 *       cancelled first. m is freed by the caller after the call.
 * start, stop (optional) Per server, after the registry exists / before it
 *       is freed. */
typedef struct chat_backend {
  const char *name;
  int (*start)(chat_srv *ch);
  void (*stop)(chat_srv *ch);
  int (*join)(chat_member *m, const char *room, size_t want_hist, size_t members_max,
              chat_join_out *out);
  int (*say)(chat_member *m, const uint8_t *text, size_t n, chat_say_req *req);
  void (*leave)(chat_member *m, int presence);
} chat_backend;

extern const chat_backend chat_backend_local; /* chat_room.c */
extern const chat_backend chat_backend_redis; /* chat_redis.c */

/* History bounds from the server's options, for whichever backend keeps
 * the history. */
typedef struct chat_limits {
  size_t hist_msgs;        /* --chat-history: messages kept per room */
  size_t hist_room_bytes;  /* per room: CHAT_HIST_BYTES, or the total if smaller */
  size_t hist_total_bytes; /* --chat-history-bytes: every room together */
  uint64_t room_ttl_ns;    /* an empty room's history is dropped after this */
} chat_limits;
void chat_limits_init(chat_limits *lim, const sk_server *srv);

struct chat_srv {
  sk_server *srv;
  const chat_backend *backend;
  void *be;        /* the backend's own state */
  uv_mutex_t lock; /* the room registry */
  chat_room *buckets[CHAT_ROOM_BUCKETS];
  int nrooms;
  uint64_t swept; /* uv_hrtime() of the last sweep of expired rooms */
  chat_limits limits;
  struct {
    uv_mutex_t lock; /* every room's history (taken under a room's lock) */
    struct hist_entry *oldest, *newest;
    size_t bytes;
  } hist;                      /* the local backend's histories (chat_room.c) */
  chat_sources *sources;       /* distinct rooms per source address (TCP/Unix) */
  struct USpoofChecker *spoof; /* ICU's, for nick skeletons (chat_names.c) */
  void *udp;                   /* chat_udp.c's peer table (UDP loop only) */
};

/* Count for /metrics on the owner's loop: every caller runs on its thread. */
static inline void chat_metric(const chat_owner *o, enum sk_metric which, int64_t n) {
  sk__server_metric(o->chat->srv, o->loop, which, n);
}

/* What a join hands back: the joined head and the history frames (each a
 * reference the caller drops). */
struct chat_join_out {
  sk_head *joined;
  sk_buf **hist;
  size_t nhist;
};

/* Names and text (chat_names.c). A name: 1..32 bytes of UTF-8 whose every
 * code point draws as itself (no controls, format characters, spaces or
 * default-ignorables). Text: any valid UTF-8. */
int chat_valid_name(const char *s, size_t len);
int chat_valid_text(const uint8_t *p, size_t n);
/* The server's spoof checker: 0, -ENOMEM, or -ENOENT when ICU has no data. */
int chat_names_open(struct USpoofChecker **out);
void chat_names_close(struct USpoofChecker *sc);
/* nick's skeleton (malloc'd), or NULL when out of memory. */
char *chat_nick_skeleton(const struct USpoofChecker *sc, const char *nick);
/* Distinct rooms per source address (chat_source.c). enter: 0, SK_EBUSY
 * (the source is in max_rooms other rooms) or -ENOMEM; an empty key is
 * never counted. Each 0 from enter is owed one exit. Any thread. */
chat_sources *chat_sources_new(int max_rooms);
void chat_sources_free(chat_sources *t);
int chat_sources_enter(chat_sources *t, const char *key, const char *room);
void chat_sources_exit(chat_sources *t, const char *key, const char *room);

chat_member *chat_find(const chat_owner *o, const char *room);
const char *chat_room_name(const chat_room *r);

/* The service's calls; each goes to the server's backend (chat.c). */

/* Join o to room as nick. members_max bounds the bytes of the members list
 * (UDP answers are bounded; the list is cut and "truncated":true added).
 * Returns 0, SK_ENICKTAKEN, SK_EBUSY (too many rooms), SK_EUNAVAILABLE,
 * -ENOMEM, or SK_ASYNC: req->done answers later. */
int chat_join(chat_owner *o, const char *room, const char *nick, size_t want_hist,
              size_t members_max, chat_join_out *out, chat_join_req *req);
void chat_join_out_free(chat_join_out *out);
/* A backend answers an SK_ASYNC join (rc < 0: m is freed here). */
void chat_join_done(chat_member *m, int rc, chat_join_out *out);

/* Give the text its place in the room's order and hand it to every member:
 * 0, an error, or SK_ASYNC (req->done answers later). */
int chat_say(chat_member *m, const uint8_t *text, size_t n, chat_say_req *req);

/* Leave one room (presence: tell the others), or every room. */
void chat_leave(chat_member *m, int presence);
void chat_leave_all(chat_owner *o, int presence, const char *reason);
void chat_rooms_free(chat_srv *ch); /* at server stop */

/* ---- the registry as a backend that orders rooms elsewhere uses it ----
 * (chat_room.c; the Redis backend) */
/* Link m into room here (made if need be), refusing a nick whose skeleton
 * a member here has: 0, SK_ENICKTAKEN, SK_EBUSY or -ENOMEM. */
int chat_room_link(chat_member *m, const char *room);
void chat_room_unlink(chat_member *m); /* drops what m held */
/* The room called name, locked; NULL if there is none. */
chat_room *chat_room_lock(chat_srv *ch, const char *name);
void chat_room_unlock(chat_room *r);
/* Call fn on every room, each locked during the call. */
void chat_rooms_each(chat_srv *ch, void (*fn)(chat_room *r, void *arg), void *arg);
/* Locked room: its members here, and the backend's read position in it
 * (read_on: the room is being read, from read_pos on). */
int chat_room_nmembers(const chat_room *r);
chat_member *chat_room_members(const chat_room *r);
chat_pos *chat_room_read_pos(chat_room *r);
int *chat_room_read_on(chat_room *r);
/* Locked room: hand frame, which is at pos in the room's order, to each
 * member here; a member gets it once and only past its join (see held). */
void chat_room_fanout(chat_room *r, sk_buf *frame, chat_pos pos);
/* m's join is answered and it joined at pos: from now on deliveries go
 * to it directly, and rd takes what was held for it past pos. Then, after
 * the joined answer is queued (which may run the owner's next requests),
 * chat_ready_push hands rd's frames over if the member is still there. */
typedef struct chat_ready {
  chat_owner *o;
  char room[CHAT_NAME_MAX + 1];
  uint64_t tag;
  chat_held *held;
  int slow; /* too much was held: drop it as a slow consumer */
} chat_ready;
void chat_member_ready(chat_member *m, chat_pos pos, chat_ready *rd);
void chat_ready_push(chat_ready *rd);
/* Frames, each encoded once for every member. */
sk_buf *chat_msg_frame(const char *room, const char *from, double ts, const uint8_t *text,
                       size_t n);
sk_buf *chat_presence_frame(const char *room, const char *nick, const char *event);
sk_head *chat_joined_head(const char *room, const char *nick, const char *const *names, size_t n,
                          size_t members_max);
/* One join/leave line in the connection log. */
void chat_log(chat_owner *o, const char *event, const char *room, const char *nick,
              const char *reason);

/* UDP side (chat_udp.c). */
int chat_udp_start(chat_srv *ch);
void chat_udp_free(chat_srv *ch);
/* On the UDP loop: is the peer still in the table; send it a frame. */
int chat_udp_alive(const chat_peer *p);
void chat_udp_push(chat_peer *p, sk_buf *frame);
void chat_udp_ref(chat_peer *p);
void chat_udp_unref(chat_peer *p);

#endif
