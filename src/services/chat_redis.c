/* chat_redis.c - the Redis chat backend (SPEC 9): rooms shared by every
 * server started with the same --chat-redis.
 *
 * Keys, all of room R's under the hash tag {R} (one Redis Cluster slot):
 *   sockit:{R}:log      stream, the room's one order: an entry per message
 *                       (t=m n=NICK b=TEXT), join (t=j n=NICK) and leave
 *                       (t=l n=NICK); XADD ... MAXLEN ~ keeps it bounded.
 *   sockit:{R}:members  hash: nick skeleton -> "SERVER:TAG NICK". A field
 *                       per skeleton makes nick_taken (confusables too) one
 *                       atomic check across servers.
 *   sockit:{R}:servers  sorted set: SERVER -> heartbeat deadline (ms on
 *                       Redis's clock). A server past it is dead: any
 *                       server's script removes its members and announces
 *                       them as left.
 *   sockit:{R}:reaped   sorted set: SERVER -> when it was taken for dead.
 *                       A server that was only cut off from Redis finds
 *                       itself here when it is heard from again, and puts
 *                       its members back announced as joined (the others
 *                       saw them leave). Kept a day.
 * Each key expires 10 minutes after the last heartbeat of any server with
 * members in the room: an empty room's history goes as SPEC 5 says. One
 * key outside every room's slot:
 *   sockit:bell         stream: an entry (k=LOG KEY) after each script
 *                       that appended to a room's log, by an XADD of its
 *                       own pipelined after the script (ring()).
 *
 * Every command names keys of one slot: a script its room's, an XREAD one
 * stream, the bell its own XADD. So the same code runs on a Redis Cluster
 * (the tests use a one-node one, which refuses two slots with CROSSSLOT);
 * hiredis has no Cluster client, so MOVED is not followed: several nodes
 * need that first.
 *
 * Order: a say is an XADD (then its bell); nobody is handed a message until
 * it comes back from the stream, so order never depends on the bell. Loop 0
 * waits on the bell with a blocking XREAD on its own connection, then reads
 * the log of each room the bell named that has members here (an XREAD per
 * room, pipelined), and fans each entry out exactly as the local backend
 * does; every member takes each entry once, past its own join, in stream
 * order (chat_room.c's ordered deliveries). A room is read from its join
 * when it begins to be read here (CLIENT UNBLOCK wakes the reader), every
 * room after a reconnect and every sync tick, each from the last id it
 * handed out (which also covers a bell lost between a script and its
 * XADD). Waiting on every room's log instead made each read cost every
 * room the server holds: 1000 quiet rooms took a busy room's p99 from 0.6
 * to 13 ms.
 *
 * Each loop has its own command connection (joins, says, leaves, on the
 * loop of the member's owner: a member's commands stay in order). Joins,
 * says and leaves are Lua scripts, so each is one atomic step in Redis.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sockit/auth.h"
#include "services/chat.h"
#include "services/redis_link.h"
#include "sockit/error.h"

#define SYNC_MS 5000        /* heartbeat, re-assertion and owed leaves */
#define SERVER_TTL_MS 15000 /* a server silent this long is dead */
#define STREAM_MIN_LEN 1000 /* entries a stream keeps, at least */
#define XREAD_BATCH 512     /* entries per stream per read */
#define XREAD_COUNT XSTR(XREAD_BATCH)
#define XREAD_BLOCK_MS "5000"
#define BELL_KEY "sockit:bell" /* a stream: one entry per entry of any room's log */
#define BELL_MAXLEN "100000"
#define KEY_MAX (CHAT_NAME_MAX + 32)
#define VALUE_MAX (64 + CHAT_NAME_MAX)
#define XSTR_(x) #x
#define XSTR(x) XSTR_(x) /* a number as a string literal */

typedef struct rb rb;

/* A growing argument vector whose strings it owns. */
typedef struct args {
  int argc, cap;
  char **v;
  size_t *len;
} args;

/* Rooms to read: their log keys, and (in the same order) their positions. */
typedef struct read_set {
  args keys, ids;
  int err;
} read_set;

/* One loop's command connection. */
typedef struct node {
  redis_link link;
  rb *b;
} node;

/* A leave Redis has not confirmed: sent again until it is. */
typedef struct owed {
  struct owed *next;
  rb *b;
  char room[CHAT_NAME_MAX + 1];
  char skel[4 * CHAT_NAME_MAX + 16]; /* a skeleton may be longer than its nick */
  char value[VALUE_MAX];
  char nick[CHAT_NAME_MAX + 1];
} owed;

struct rb {
  chat_srv *ch;
  redis_target t;
  char sid[17]; /* this server, among all servers on the Redis */
  char maxlen[24];
  char hist_bytes[24];
  char key_ttl[24]; /* ms a room's keys outlive its last heartbeat */
  atomic_uint_fast64_t tags;
  int nnodes;
  node *nodes;         /* node i lives on loop i */
  redis_link reader;   /* loop 0: the blocking XREAD */
  long long reader_id; /* its CLIENT ID, for CLIENT UNBLOCK (loop 0) */
  int reading;         /* the reader's commands in flight (loop 0) */
  int blocked;         /* ... and it is the blocking read of the bell */
  int read_lost;       /* a read of the batch in flight got no answer */
  read_set again;      /* rooms of the batch in flight that gave a full one */
  int want_all;        /* read every room before the bell again */
  int want_fresh;      /* read the rooms just begun before the bell */
  int bell_known;      /* bell_pos is set */
  char bell_pos[48];   /* the last bell entry read */
  int unblocking;      /* a CLIENT UNBLOCK is in flight (loop 0) */
  atomic_int poked;    /* a poke is posted to loop 0 */
  uv_timer_t sync;     /* loop 0 */
  int sync_open;
  uv_mutex_t owed_lock;
  owed *owed;
};

/* ---- scripts ------------------------------------------------------------ */

/* Every script's KEYS are its room's alone (one slot); KEYS[2] is the
 * room's log, which post() appends to. The bell is rung by a command of
 * its own after the script (ring()). */
#define LUA_POST                                                                                   \
  "local posted = false\n"                                                                         \
  "local function post(maxlen, ...)\n"                                                             \
  "  posted = true\n"                                                                              \
  "  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', ...)\n"                        \
  "end\n"

/* KEYS: members, log, servers, reaped. A reaped server is remembered
 * for a day (86400000 ms): one cut off longer comes back unannounced. */
#define LUA_COMMON                                                                                 \
  LUA_POST                                                                                         \
  "local function now_ms()\n"                                                                      \
  "  local t = redis.call('TIME')\n"                                                               \
  "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                           \
  "end\n"                                                                                          \
  "local function reap(now, maxlen)\n"                                                             \
  "  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - 86400000)\n"                            \
  "  local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)\n"                             \
  "  if #dead == 0 then return end\n"                                                              \
  "  local gone = {}\n"                                                                            \
  "  for _, s in ipairs(dead) do\n"                                                                \
  "    gone[s] = true\n"                                                                           \
  "    redis.call('ZADD', KEYS[4], now, s)\n"                                                      \
  "  end\n"                                                                                        \
  "  local all = redis.call('HGETALL', KEYS[1])\n"                                                 \
  "  for i = 1, #all, 2 do\n"                                                                      \
  "    local sid, nick = string.match(all[i + 1], '^([^:]*):%S* (.*)$')\n"                         \
  "    if sid and gone[sid] then\n"                                                                \
  "      redis.call('HDEL', KEYS[1], all[i])\n"                                                    \
  "      post(maxlen, 't', 'l', 'n', nick)\n"                                                      \
  "    end\n"                                                                                      \
  "  end\n"                                                                                        \
  "  redis.call('ZREM', KEYS[3], unpack(dead))\n"                                                  \
  "end\n"                                                                                          \
  "local function touch(ttl)\n"                                                                    \
  "  for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ttl) end\n"                                    \
  "end\n"

/* ARGV: sid, value, skel, nick, want, maxlen, server_ttl, hist_bytes,
 * key_ttl. Returns {0} (the skeleton is another server's member) or
 * {1, join id, {nicks}, {id, nick, text, ...} newest first}. */
static const char join_lua[] = LUA_COMMON
    "local now = now_ms()\n"
    "redis.call('ZADD', KEYS[3], now + tonumber(ARGV[7]), ARGV[1])\n"
    "reap(now, ARGV[6])\n"
    "local cur = redis.call('HGET', KEYS[1], ARGV[3])\n"
    "if cur and string.sub(cur, 1, #ARGV[1] + 1) ~= ARGV[1] .. ':' then return {0} end\n"
    "redis.call('HSET', KEYS[1], ARGV[3], ARGV[2])\n"
    "local id = post(ARGV[6], 't', 'j', 'n', ARGV[4])\n"
    "touch(tonumber(ARGV[9]))\n"
    "local members = {}\n"
    "for _, v in ipairs(redis.call('HVALS', KEYS[1])) do\n"
    "  members[#members + 1] = string.match(v, ' (.*)$')\n"
    "end\n"
    "local hist, want, budget, last = {}, tonumber(ARGV[5]), tonumber(ARGV[8]), '(' .. id\n"
    "while want > 0 do\n"
    "  local batch = redis.call('XREVRANGE', KEYS[2], last, '-', 'COUNT', 128)\n"
    "  if #batch == 0 then break end\n"
    "  for _, e in ipairs(batch) do\n"
    "    last = '(' .. e[1]\n"
    "    local f = e[2]\n"
    "    if f[2] == 'm' then\n"
    "      budget = budget - #f[6]\n"
    "      if budget < 0 then want = 0 break end\n"
    "      hist[#hist + 1] = e[1]\n"
    "      hist[#hist + 1] = f[4]\n"
    "      hist[#hist + 1] = f[6]\n"
    "      want = want - 1\n"
    "      if want == 0 then break end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return {1, id, members, hist}\n";

/* KEYS: members, log. ARGV: skel, value, nick, maxlen. Only this very
 * membership goes (a later one with the same nick has another value). */
static const char leave_lua[] = LUA_POST "if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then\n"
                                         "  redis.call('HDEL', KEYS[1], ARGV[1])\n"
                                         "  post(ARGV[4], 't', 'l', 'n', ARGV[3])\n"
                                         "end\n"
                                         "return 1\n";

/* KEYS: members, log. ARGV: maxlen, nick, text. Returns the id. */
static const char say_lua[] =
    LUA_POST "return post(ARGV[1], 't', 'm', 'n', ARGV[2], 'b', ARGV[3])\n";

/* KEYS: members, log, servers, reaped. ARGV: sid, server_ttl, maxlen,
 * key_ttl, then skel, value per member here: the heartbeat, the dead
 * reaped, our members put back. Put back silently after a Redis restart
 * lost them (nobody saw them leave), but announced as joined when this
 * server had been taken for dead (everybody saw them leave). Returns the
 * log's key if it appended to it (the bell is rung then), else 0. */
static const char sync_lua[] =
    LUA_COMMON "local now = now_ms()\n"
               "local back = redis.call('ZREM', KEYS[4], ARGV[1]) == 1\n"
               "redis.call('ZADD', KEYS[3], now + tonumber(ARGV[2]), ARGV[1])\n"
               "reap(now, ARGV[3])\n"
               "for i = 5, #ARGV, 2 do\n"
               "  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 and back then\n"
               "    local nick = string.match(ARGV[i + 1], ' (.*)$')\n"
               "    post(ARGV[3], 't', 'j', 'n', nick)\n"
               "  end\n"
               "end\n"
               "touch(tonumber(ARGV[4]))\n"
               "if posted then return KEYS[2] end\n"
               "return 0\n";

/* ---- keys, ids and arguments -------------------------------------------- */

static void room_key(char *out, const char *room, const char *what) {
  snprintf(out, KEY_MAX, "sockit:{%s}:%s", room, what);
}

/* The room of a stream key, or NULL. */
static const char *key_room(const char *key, size_t n, char *room) {
  static const char pre[] = "sockit:{", post[] = "}:log";
  size_t len;
  if (n < sizeof(pre) + sizeof(post) - 2 || memcmp(key, pre, sizeof(pre) - 1) != 0 ||
      memcmp(key + n - (sizeof(post) - 1), post, sizeof(post) - 1) != 0)
    return NULL;
  len = n - (sizeof(pre) - 1) - (sizeof(post) - 1);
  if (len == 0 || len > CHAT_NAME_MAX)
    return NULL;
  memcpy(room, key + sizeof(pre) - 1, len);
  room[len] = '\0';
  return room;
}

static int parse_pos(const char *s, chat_pos *p) {
  char *end;
  p->ms = strtoull(s, &end, 10);
  if (*end != '-')
    return -EINVAL;
  p->seq = strtoull(end + 1, &end, 10);
  return *end == '\0' ? 0 : -EINVAL;
}

static void member_value(const rb *b, const chat_member *m, char *out) {
  snprintf(out, VALUE_MAX, "%s:%llu %s", b->sid, (unsigned long long)m->tag, m->nick);
}

static int args_add(args *a, const char *s, size_t n) {
  if (a->argc == a->cap) {
    int cap = a->cap ? a->cap * 2 : 16;
    char **v = realloc(a->v, (size_t)cap * sizeof(*v));
    size_t *len = v ? realloc(a->len, (size_t)cap * sizeof(*len)) : NULL;
    if (v != NULL)
      a->v = v;
    if (len == NULL)
      return -ENOMEM;
    a->len = len;
    a->cap = cap;
  }
  if ((a->v[a->argc] = malloc(n + 1)) == NULL)
    return -ENOMEM;
  memcpy(a->v[a->argc], s, n);
  a->v[a->argc][n] = '\0';
  a->len[a->argc++] = n;
  return 0;
}

static int args_str(args *a, const char *s) {
  return args_add(a, s, strlen(s));
}

static void args_free(args *a) {
  for (int i = 0; i < a->argc; i++)
    free(a->v[i]);
  free(a->v);
  free(a->len);
  memset(a, 0, sizeof(*a));
}

static int args_send(redis_link *l, args *a, redis_reply_fn fn, void *priv) {
  return redis_link_cmd(l, fn, priv, a->argc, (const char **)a->v, a->len);
}

static rb *backend(const chat_member *m) {
  return m->owner->chat->be;
}

/* Ring the bell for a room's log: XADD to sockit:bell, its own command
 * (a script naming it beside the room's keys would span two Cluster slots).
 * Sent on the link of the script that appended to the log, after it, so
 * the entry is in the log when a reader sees the bell. A bell lost (the
 * link fell between the two) delays the room until the reader's next
 * read of every room (every sync tick, every reconnect); a bell for
 * nothing (the script failed) costs a read that finds nothing. Nobody is
 * handed an entry until it is read from the log, so order never depends
 * on the bell. */
static void ring(redis_link *l, const char *klog, size_t n) {
  const char *argv[] = {"XADD", BELL_KEY, "MAXLEN", "~", BELL_MAXLEN, "*", "k", klog};
  size_t lens[8];
  for (int i = 0; i < 7; i++)
    lens[i] = strlen(argv[i]);
  lens[7] = n;
  redis_link_cmd(l, NULL, NULL, 8, argv, lens); /* down: see above */
}

/* ---- the reader (loop 0) ------------------------------------------------ */

static void read_next(rb *b);

/* An entry of the stream as the frame members get; NULL if malformed. */
static sk_buf *entry_frame(const char *room, const redisReply *fields, chat_pos pos) {
  const redisReply *t = NULL, *n = NULL, *body = NULL;
  if (fields == NULL || fields->type != REDIS_REPLY_ARRAY)
    return NULL;
  for (size_t i = 0; i + 1 < fields->elements; i += 2) {
    const redisReply *k = fields->element[i], *v = fields->element[i + 1];
    if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || k->len != 1)
      continue;
    if (k->str[0] == 't')
      t = v;
    else if (k->str[0] == 'n')
      n = v;
    else if (k->str[0] == 'b')
      body = v;
  }
  if (t == NULL || n == NULL || t->len != 1 || n->len > CHAT_NAME_MAX)
    return NULL;
  if (t->str[0] == 'm' && body != NULL)
    return chat_msg_frame(room, n->str, (double)pos.ms / 1000.0, (const uint8_t *)body->str,
                          body->len);
  if (t->str[0] == 'j' || t->str[0] == 'l')
    return chat_presence_frame(room, n->str, t->str[0] == 'j' ? "join" : "leave");
  return NULL;
}

/* One stream's new entries, to the room's members here, in order. */
static void fan_stream(rb *b, const redisReply *s) {
  char name[CHAT_NAME_MAX + 1];
  const redisReply *entries;
  chat_room *r;
  if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
      s->element[0]->type != REDIS_REPLY_STRING ||
      key_room(s->element[0]->str, s->element[0]->len, name) == NULL ||
      (entries = s->element[1])->type != REDIS_REPLY_ARRAY ||
      (r = chat_room_lock(b->ch, name)) == NULL)
    return;
  for (size_t i = 0; i < entries->elements; i++) {
    const redisReply *e = entries->element[i];
    chat_pos pos, *at = chat_room_read_pos(r);
    sk_buf *frame;
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING || parse_pos(e->element[0]->str, &pos) < 0 ||
        chat_pos_cmp(pos, *at) <= 0)
      continue;
    *at = pos; /* a malformed entry is passed over, once */
    if ((frame = entry_frame(name, e->element[1], pos)) != NULL) {
      chat_room_fanout(r, frame, pos);
      sk_buf_unref(frame);
    }
  }
  chat_room_unlock(r);
}

static void add_room(read_set *rs, chat_room *r) {
  char key[KEY_MAX], id[48];
  chat_pos *p = chat_room_read_pos(r);
  room_key(key, chat_room_name(r), "log");
  snprintf(id, sizeof(id), "%llu-%llu", (unsigned long long)p->ms, (unsigned long long)p->seq);
  if (args_str(&rs->keys, key) < 0 || args_str(&rs->ids, id) < 0)
    rs->err = -ENOMEM;
}

/* A room's chat_room_read_on: read here from now on, and not read since. */
#define READ_ON 1
#define READ_FRESH 2

/* Every room read here (chat_rooms_each). */
static void collect_room(chat_room *r, void *arg) {
  if (chat_room_nmembers(r) > 0 && *chat_room_read_on(r)) {
    add_room(arg, r);
    *chat_room_read_on(r) = READ_ON;
  }
}

/* The rooms read here from now on, not read yet (chat_rooms_each). */
static void collect_fresh(chat_room *r, void *arg) {
  if (chat_room_nmembers(r) > 0 && *chat_room_read_on(r) == READ_FRESH) {
    add_room(arg, r);
    *chat_room_read_on(r) = READ_ON;
  }
}

/* A room named by its log key, if it is read here and not in rs yet. */
static void collect_key(rb *b, read_set *rs, const char *key, size_t n) {
  char name[CHAT_NAME_MAX + 1];
  chat_room *r;
  for (int i = 0; i < rs->keys.argc; i++)
    if (rs->keys.len[i] == n && memcmp(rs->keys.v[i], key, n) == 0)
      return;
  if (key_room(key, n, name) == NULL || (r = chat_room_lock(b->ch, name)) == NULL)
    return;
  if (chat_room_nmembers(r) > 0 && *chat_room_read_on(r))
    add_room(rs, r);
  chat_room_unlock(r);
}

/* The rooms of the last batch that gave a full read, into rs (their
 * positions as they are now). */
static void take_again(rb *b, read_set *rs) {
  for (int i = 0; i < b->again.keys.argc; i++)
    collect_key(b, rs, b->again.keys.v[i], b->again.keys.len[i]);
  args_free(&b->again.keys);
  args_free(&b->again.ids);
  b->again.err = 0;
}

static void on_room(redis_link *l, redisReply *reply, void *priv);
static void on_bell(redis_link *l, redisReply *reply, void *priv);

/* An XREAD [BLOCK] of one stream from a position: one key a command, so
 * that each stays in its room's Cluster slot. */
static int send_xread(rb *b, const char *key, size_t klen, const char *id, size_t idlen, int block,
                      redis_reply_fn fn) {
  const char *argv[8];
  size_t lens[8];
  int n = 0;
  argv[n++] = "XREAD";
  argv[n++] = "COUNT";
  argv[n++] = XREAD_COUNT;
  if (block) {
    argv[n++] = "BLOCK";
    argv[n++] = XREAD_BLOCK_MS;
  }
  argv[n++] = "STREAMS";
  for (int i = 0; i < n; i++)
    lens[i] = strlen(argv[i]);
  argv[n] = key;
  lens[n++] = klen;
  argv[n] = id;
  lens[n++] = idlen;
  return redis_link_cmd(&b->reader, fn, b, n, argv, lens);
}

/* The rooms in rs, each read from its position by an XREAD of its own,
 * pipelined on the reader (their answers come in order: on_room); 0 if
 * any was sent. rs is emptied. */
static int send_rooms(rb *b, read_set *rs) {
  int err = rs->err;
  for (int i = 0; err == 0 && i < rs->keys.argc; i++)
    if ((err = send_xread(b, rs->keys.v[i], rs->keys.len[i], rs->ids.v[i], rs->ids.len[i], 0,
                          on_room)) == 0)
      b->reading++;
  args_free(&rs->keys);
  args_free(&rs->ids);
  rs->err = 0;
  return b->reading > 0 ? 0 : err < 0 ? err : -EINVAL;
}

/* The reader's next step, on its own connection: every room being read
 * (after a reconnect, each sync tick), or the rooms that have just begun
 * to be read, else a read of the bell. A room is read from its position
 * when the bell names it, so a read costs the rooms that spoke, not every
 * room this server holds. Rooms that gave a full read go along with the
 * next batch, and the bell is then read without blocking: a room that
 * always has 512 more must not keep the bell, and every other room, from
 * being read. */
static void read_next(rb *b) {
  read_set rs = {0};
  int block;
  if (b->reading || !b->reader.up || b->reader.closing || !b->bell_known)
    return;
  if (b->want_all || b->want_fresh) {
    chat_rooms_each(b->ch, b->want_all ? collect_room : collect_fresh, &rs);
    b->want_all = b->want_fresh = 0;
    take_again(b, &rs);
    if (rs.err == 0 && rs.keys.argc > 0 && send_rooms(b, &rs) == 0)
      return;
    args_free(&rs.keys);
    args_free(&rs.ids);
  }
  block = b->again.keys.argc == 0;
  if (send_xread(b, BELL_KEY, strlen(BELL_KEY), b->bell_pos, strlen(b->bell_pos), block, on_bell) ==
      0) {
    b->reading = 1;
    b->blocked = block;
  }
}

/* One room's new entries (a batch's reads answer in turn): handed out; a
 * room that gave a full batch may have more, so it is read again in the
 * next batch (with the rooms the bell names meanwhile), once every read of
 * this one is answered. */
static void on_room(redis_link *l, redisReply *reply, void *priv) {
  rb *b = priv;
  b->reading--;
  if (reply == NULL)
    b->read_lost = 1; /* the link is going down: reader_up reads every room */
  else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1) {
    const redisReply *st = reply->element[0]; /* nil: nothing new; an error: the next tick */
    fan_stream(b, st);
    if (st->type == REDIS_REPLY_ARRAY && st->elements == 2 &&
        st->element[0]->type == REDIS_REPLY_STRING && st->element[1]->type == REDIS_REPLY_ARRAY &&
        st->element[1]->elements >= XREAD_BATCH)
      collect_key(b, &b->again, st->element[0]->str, st->element[0]->len);
  }
  if (b->reading > 0)
    return;
  if (b->read_lost) {
    b->read_lost = 0;
    args_free(&b->again.keys); /* reader_up reads every room */
    args_free(&b->again.ids);
    b->again.err = 0;
    return;
  }
  read_next(b); /* the bell, and the rooms in b->again with what it names */
}

/* The bell: each entry names a room's log that got an entry. The rooms read
 * here among them are read next, from their positions. */
static void on_bell(redis_link *l, redisReply *reply, void *priv) {
  rb *b = priv;
  read_set rs = {0};
  const redisReply *entries;
  b->reading = 0;
  b->blocked = 0;
  if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
    return; /* b->again waits for the next read of every room */
  take_again(b, &rs);
  if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
      reply->element[0]->type == REDIS_REPLY_ARRAY && reply->element[0]->elements == 2 &&
      (entries = reply->element[0]->element[1])->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i < entries->elements; i++) {
      const redisReply *e = entries->element[i], *f;
      if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
          e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len >= sizeof(b->bell_pos))
        continue;
      memcpy(b->bell_pos, e->element[0]->str, e->element[0]->len + 1);
      f = e->element[1];
      if (f->type == REDIS_REPLY_ARRAY && f->elements == 2 &&
          f->element[1]->type == REDIS_REPLY_STRING)
        collect_key(b, &rs, f->element[1]->str, f->element[1]->len);
    }
  }
  if (rs.err == 0 && rs.keys.argc > 0 && send_rooms(b, &rs) == 0)
    return;
  args_free(&rs.keys);
  args_free(&rs.ids);
  read_next(b); /* a nil reply: timed out or unblocked */
}

static void on_unblocked(redis_link *l, redisReply *reply, void *priv) {
  ((rb *)priv)->unblocking = 0;
}

/* Loop 0: a room is to be read from now on: read it once from its join
 * (the bell may have named it before it was read here). */
static void on_poke(void *arg) {
  rb *b = arg;
  char id[32];
  const char *argv[] = {"CLIENT", "UNBLOCK", id};
  atomic_store(&b->poked, 0);
  if (b->reader.closing || !b->reader.timer_open)
    return; /* the server is stopping */
  b->want_fresh = 1;
  if (!b->reading) {
    read_next(b);
    return;
  }
  if (!b->blocked || b->unblocking || b->reader_id <= 0)
    return; /* a read that does not block: read_next follows it */
  snprintf(id, sizeof(id), "%lld", b->reader_id);
  if (redis_link_cmd(&b->nodes[0].link, on_unblocked, b, 3, argv, NULL) == 0)
    b->unblocking = 1;
}

/* Any loop: have loop 0's reader take in the rooms being read now. */
static void poke_reader(rb *b) {
  if (atomic_exchange(&b->poked, 1) == 0 && sk__server_post(b->ch->srv, 0, on_poke, b) < 0)
    atomic_store(&b->poked, 0); /* out of memory: the sync tick reads it */
}

static void on_client_id(redis_link *l, redisReply *reply, void *priv) {
  rb *b = priv;
  if (reply != NULL && reply->type == REDIS_REPLY_INTEGER)
    b->reader_id = reply->integer;
}

/* The bell's newest entry, the first time: reading starts there, after one
 * read of every room. */
static void on_bell_start(redis_link *l, redisReply *reply, void *priv) {
  rb *b = priv;
  b->reading = 0;
  if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
    return; /* reader_up asks again */
  snprintf(b->bell_pos, sizeof(b->bell_pos), "0-0");
  if (reply->elements == 1 && reply->element[0]->type == REDIS_REPLY_ARRAY &&
      reply->element[0]->elements == 2 &&
      reply->element[0]->element[0]->type == REDIS_REPLY_STRING &&
      reply->element[0]->element[0]->len < sizeof(b->bell_pos))
    memcpy(b->bell_pos, reply->element[0]->element[0]->str, reply->element[0]->element[0]->len + 1);
  b->bell_known = 1;
  read_next(b);
}

/* Loop 0: read on (the first time, once the bell's position is known). */
static void read_on(rb *b) {
  static const char *const newest[] = {"XREVRANGE", BELL_KEY, "+", "-", "COUNT", "1"};
  if (b->bell_known)
    read_next(b);
  else if (!b->reading && b->reader.up &&
           redis_link_cmd(&b->reader, on_bell_start, b, 6, (const char **)newest, NULL) == 0)
    b->reading = 1;
}

static void reader_up(redis_link *l) {
  rb *b = l->data;
  static const char *const id[] = {"CLIENT", "ID"};
  b->reader_id = 0;
  redis_link_cmd(l, on_client_id, b, 2, (const char **)id, NULL);
  /* every room once, from where it stopped (nothing lost, nothing twice),
   * then the bell from where it stopped */
  b->want_all = 1;
  read_on(b);
}

static void reader_down(redis_link *l) {
  rb *b = l->data;
  b->reading = 0; /* every read was answered (NULL) before: nothing is owed */
  b->blocked = 0;
  b->reader_id = 0;
}

/* ---- leaves that must reach Redis --------------------------------------- */

static void owe(rb *b, owed *o) {
  uv_mutex_lock(&b->owed_lock);
  o->next = b->owed;
  b->owed = o;
  uv_mutex_unlock(&b->owed_lock);
}

static void on_left(redis_link *l, redisReply *reply, void *priv) {
  owed *o = priv;
  if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
    owe(o->b, o);
  else
    free(o);
}

static int send_leave(redis_link *l, owed *o) {
  char kmem[KEY_MAX], klog[KEY_MAX];
  const char *argv[] = {"EVAL",  leave_lua, "2",     kmem,        klog,
                        o->skel, o->value,  o->nick, o->b->maxlen};
  int rc;
  room_key(kmem, o->room, "members");
  room_key(klog, o->room, "log");
  /* a leave appends to the log unless the membership was gone already */
  if ((rc = redis_link_cmd(l, on_left, o, 9, argv, NULL)) == 0)
    ring(l, klog, strlen(klog));
  return rc;
}

static void pay_owed(rb *b) {
  owed *list;
  uv_mutex_lock(&b->owed_lock);
  list = b->owed;
  b->owed = NULL;
  uv_mutex_unlock(&b->owed_lock);
  while (list != NULL) {
    owed *o = list;
    list = o->next;
    if (send_leave(&b->nodes[0].link, o) < 0)
      owe(b, o);
  }
}

/* ---- the heartbeat (loop 0) --------------------------------------------- */

typedef struct sync_set {
  rb *b;
  args *rooms; /* one argument vector per room */
  int n, cap;
} sync_set;

static void collect_sync(chat_room *r, void *arg) {
  sync_set *ss = arg;
  rb *b = ss->b;
  char kmem[KEY_MAX], klog[KEY_MAX], ksrv[KEY_MAX], kreap[KEY_MAX], value[VALUE_MAX];
  args *a;
  int err = 0;
  if (chat_room_nmembers(r) == 0)
    return;
  if (ss->n == ss->cap) {
    int cap = ss->cap ? ss->cap * 2 : 16;
    args *v = realloc(ss->rooms, (size_t)cap * sizeof(*v));
    if (v == NULL)
      return;
    ss->rooms = v;
    ss->cap = cap;
  }
  a = &ss->rooms[ss->n++];
  memset(a, 0, sizeof(*a));
  room_key(kmem, chat_room_name(r), "members");
  room_key(klog, chat_room_name(r), "log");
  room_key(ksrv, chat_room_name(r), "servers");
  room_key(kreap, chat_room_name(r), "reaped");
  err |= args_str(a, "EVAL") | args_str(a, sync_lua) | args_str(a, "4") | args_str(a, kmem) |
         args_str(a, klog) | args_str(a, ksrv) | args_str(a, kreap) | args_str(a, b->sid);
  err |= args_str(a, XSTR(SERVER_TTL_MS)) | args_str(a, b->maxlen) | args_str(a, b->key_ttl);
  for (chat_member *m = chat_room_members(r); m != NULL; m = m->rnext)
    if (m->live) {
      member_value(b, m, value);
      err |= args_str(a, m->skel) | args_str(a, value);
    }
  if (err != 0) {
    args_free(a);
    ss->n--;
  }
}

/* A heartbeat's answer: the room's log key if it appended to the log (it
 * seldom does: a dead server reaped, members put back), to ring for. A
 * bell per heartbeat would have every server read every room it holds
 * every tick. */
static void on_synced(redis_link *l, redisReply *reply, void *priv) {
  if (reply != NULL && reply->type == REDIS_REPLY_STRING)
    ring(l, reply->str, reply->len);
}

static void sync_rooms(rb *b) {
  sync_set ss = {.b = b};
  chat_rooms_each(b->ch, collect_sync, &ss);
  for (int i = 0; i < ss.n; i++) {
    args_send(&b->nodes[0].link, &ss.rooms[i], on_synced, NULL); /* down: next tick */
    args_free(&ss.rooms[i]);
  }
  free(ss.rooms);
}

static void on_sync(uv_timer_t *t) {
  rb *b = t->data;
  sync_rooms(b);
  pay_owed(b);
  /* every room once in a while: a bell trimmed away before it was read
   * (a reader that fell 100000 behind) delays a room by this tick at most */
  b->want_all = 1;
  read_on(b); /* and after a read error or a lost poke */
}

static void node0_up(redis_link *l) {
  rb *b = ((node *)l)->b;
  sync_rooms(b); /* a restarted Redis learns our members again at once */
  pay_owed(b);
}

static void on_sync_closed(uv_handle_t *h) {}

static void node0_closed(redis_link *l) {
  rb *b = ((node *)l)->b;
  if (b->sync_open) {
    b->sync_open = 0;
    uv_close((uv_handle_t *)&b->sync, on_sync_closed);
  }
}

/* ---- start and stop ----------------------------------------------------- */

static void node_start(void *arg) {
  node *nd = arg;
  rb *b = nd->b;
  redis_link_start(&nd->link);
  if (nd != &b->nodes[0])
    return;
  redis_link_start(&b->reader);
  if (nd->link.closing)
    return; /* the server stopped before it started */
  uv_timer_init(nd->link.uv, &b->sync);
  b->sync.data = b;
  b->sync_open = 1;
  uv_timer_start(&b->sync, on_sync, SYNC_MS, SYNC_MS);
}

static void link_init(rb *b, redis_link *l, int loop, const char *name) {
  l->srv = b->ch->srv;
  l->loop = loop;
  l->uv = sk__server_uv(b->ch->srv, loop);
  l->t = &b->t;
  l->name = name;
  l->data = b;
}

static const char *const node_names[] = {"loop0", "loop1", "loop2", "loop3", "loop4",
                                         "loop5", "loop6", "loop7", "loopN"};

static int redis_start(chat_srv *ch) {
  sk_server *srv = ch->srv;
  char nonce[SK_NONCE_HEX + 1];
  const char *why = NULL, *url = sk__server_opt_str(srv, "chat-redis"),
             *password_file = sk__server_opt_str(srv, "chat-redis-password-file");
  size_t hist = ch->limits.hist_msgs, len = hist * 2 > STREAM_MIN_LEN ? hist * 2 : STREAM_MIN_LEN;
  rb *b = calloc(1, sizeof(*b));
  int rc;

  if (b == NULL)
    return -ENOMEM;
  b->ch = ch;
  if ((rc = redis_target_parse(&b->t, url, &why)) < 0 ||
      (password_file[0] && (rc = redis_target_password(&b->t, password_file, &why)) < 0) ||
      (rc = sk_auth_nonce(nonce)) < 0 ||
      (b->nodes = calloc((size_t)sk__server_loops(srv), sizeof(*b->nodes))) == NULL) {
    sk__service_failed(srv, why);
    free(b);
    return rc < 0 ? rc : -ENOMEM;
  }
  snprintf(b->sid, sizeof(b->sid), "%.16s", nonce);
  snprintf(b->maxlen, sizeof(b->maxlen), "%zu", len);
  snprintf(b->hist_bytes, sizeof(b->hist_bytes), "%zu", ch->limits.hist_room_bytes);
  /* an empty room's history goes after the chat-room-ttl option, as locally
   * (plus a heartbeat's margin: keys must outlive the beats of a room in use) */
  snprintf(b->key_ttl, sizeof(b->key_ttl), "%llu",
           (unsigned long long)(ch->limits.room_ttl_ns / 1000000) + SERVER_TTL_MS);
  uv_mutex_init(&b->owed_lock);
  b->nnodes = sk__server_loops(srv);
  for (int i = 0; i < b->nnodes; i++) {
    b->nodes[i].b = b;
    link_init(b, &b->nodes[i].link, i, node_names[i < 8 ? i : 8]);
  }
  b->nodes[0].link.on_up = node0_up;
  b->nodes[0].link.on_closed = node0_closed;
  link_init(b, &b->reader, 0, "reader");
  b->reader.no_drain = 1; /* it blocks in XREAD: nothing to wait for */
  b->reader.on_up = reader_up;
  b->reader.on_down = reader_down;
  ch->be = b;
  for (int i = 0; i < b->nnodes; i++)
    sk__server_post(srv, i, node_start, &b->nodes[i]);
  return 0;
}

/* After the loops have ended: every link is closed by now. */
static void redis_stop(chat_srv *ch) {
  rb *b = ch->be;
  if (b == NULL)
    return;
  while (b->owed != NULL) { /* the heartbeat's end reaps them */
    owed *o = b->owed;
    b->owed = o->next;
    free(o);
  }
  args_free(&b->again.keys);
  args_free(&b->again.ids);
  uv_mutex_destroy(&b->owed_lock);
  free(b->nodes);
  free(b);
  ch->be = NULL;
}

/* ---- join --------------------------------------------------------------- */

typedef struct join_op {
  chat_member *m; /* NULL once the member left: the answer is dropped */
  rb *b;
  size_t members_max;
} join_op;

/* The answer of join_lua, as the service's out. */
static int build_answer(const redisReply *r, chat_member *m, size_t members_max, chat_join_out *out,
                        chat_pos *at) {
  const redisReply *names = r->element[2], *hist = r->element[3];
  const char **v;
  size_t n = 0, nh;
  const char *room = chat_room_name(m->room);

  if (r->element[1]->type != REDIS_REPLY_STRING || parse_pos(r->element[1]->str, at) < 0 ||
      names->type != REDIS_REPLY_ARRAY || hist->type != REDIS_REPLY_ARRAY)
    return SK_EUNAVAILABLE;
  if ((v = malloc((names->elements + 1) * sizeof(*v))) == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < names->elements; i++)
    if (names->element[i]->type == REDIS_REPLY_STRING)
      v[n++] = names->element[i]->str;
  out->joined = chat_joined_head(room, m->nick, v, n, members_max);
  free(v);
  if (out->joined == NULL)
    return -ENOMEM;
  nh = hist->elements / 3;
  if (nh == 0)
    return 0;
  if ((out->hist = calloc(nh, sizeof(sk_buf *))) == NULL)
    return -ENOMEM;
  /* newest first from Redis; members get them oldest first */
  for (size_t i = nh; i-- > 0;) {
    const redisReply *id = hist->element[3 * i], *from = hist->element[3 * i + 1],
                     *text = hist->element[3 * i + 2];
    chat_pos p;
    sk_buf *f;
    if (id->type != REDIS_REPLY_STRING || parse_pos(id->str, &p) < 0 ||
        from->type != REDIS_REPLY_STRING || text->type != REDIS_REPLY_STRING ||
        from->len > CHAT_NAME_MAX)
      continue;
    f = chat_msg_frame(room, from->str, (double)p.ms / 1000.0, (const uint8_t *)text->str,
                       text->len);
    if (f == NULL)
      return -ENOMEM;
    out->hist[out->nhist++] = f;
  }
  return 0;
}

/* Start reading the room (from the join on, if nobody here reads it). */
static void read_from(rb *b, chat_member *m, chat_pos at) {
  chat_room *r = chat_room_lock(b->ch, chat_room_name(m->room));
  int start = 0;
  if (r == NULL)
    return;
  if (!*chat_room_read_on(r)) {
    chat_pos *p = chat_room_read_pos(r);
    *chat_room_read_on(r) = READ_FRESH;
    if (chat_pos_cmp(*p, at) < 0)
      *p = at;
    start = 1;
  }
  chat_room_unlock(r);
  if (start)
    poke_reader(b);
}

static owed *owed_new(rb *b, const chat_member *m) {
  owed *o = calloc(1, sizeof(*o));
  if (o == NULL)
    return NULL;
  o->b = b;
  snprintf(o->room, sizeof(o->room), "%s", chat_room_name(m->room));
  snprintf(o->skel, sizeof(o->skel), "%s", m->skel);
  snprintf(o->nick, sizeof(o->nick), "%s", m->nick);
  member_value(b, m, o->value);
  return o;
}

/* The member is in Redis but cannot be here: take it out there too. */
static void undo_join(rb *b, redis_link *l, chat_member *m) {
  owed *o = owed_new(b, m);
  if (o != NULL && send_leave(l, o) < 0)
    owe(b, o);
}

static void on_joined(redis_link *l, redisReply *reply, void *priv) {
  join_op *op = priv;
  chat_member *m = op->m;
  chat_join_out out = {0};
  chat_ready rd;
  chat_pos at;
  int rc;

  if (m == NULL) { /* left meanwhile: its leave followed on this link */
    free(op);
    return;
  }
  m->be = NULL;
  if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements == 0 ||
      reply->element[0]->type != REDIS_REPLY_INTEGER ||
      (reply->element[0]->integer != 0 && reply->elements != 4))
    rc = SK_EUNAVAILABLE; /* no answer, or not join_lua's */
  else if (reply->element[0]->integer == 0)
    rc = SK_ENICKTAKEN;
  else if ((rc = build_answer(reply, m, op->members_max, &out, &at)) < 0)
    undo_join(op->b, l, m);
  free(op);
  if (rc < 0) {
    chat_join_out_free(&out);
    chat_room_unlink(m);
    chat_join_done(m, rc, NULL);
    return;
  }
  read_from(backend(m), m, at);
  chat_member_ready(m, at, &rd);
  chat_join_done(m, 0, &out); /* joined and history first, then the rest */
  chat_ready_push(&rd);
}

static int redis_join(chat_member *m, const char *room, size_t want_hist, size_t members_max,
                      chat_join_out *out) {
  rb *b = backend(m);
  redis_link *l = &b->nodes[m->owner->loop].link;
  char kmem[KEY_MAX], klog[KEY_MAX], ksrv[KEY_MAX], kreap[KEY_MAX], value[VALUE_MAX], want[24];
  const char *argv[] = {
      "EVAL",        join_lua,  "4",     kmem,    klog, ksrv,      kreap,
      b->sid,        value,     m->skel, m->nick, want, b->maxlen, XSTR(SERVER_TTL_MS),
      b->hist_bytes, b->key_ttl};
  join_op *op;
  int rc;

  if (!l->up)
    return SK_EUNAVAILABLE;
  if ((op = calloc(1, sizeof(*op))) == NULL)
    return -ENOMEM;
  if ((rc = chat_room_link(m, room)) < 0) { /* a nick taken here needs no Redis */
    free(op);
    return rc;
  }
  m->tag = atomic_fetch_add(&b->tags, 1) + 1;
  member_value(b, m, value);
  room_key(kmem, room, "members");
  room_key(klog, room, "log");
  room_key(ksrv, room, "servers");
  room_key(kreap, room, "reaped");
  /* the stream keeps more entries than --chat-history; a join gets no
   * more than a server without Redis keeps */
  snprintf(want, sizeof(want), "%zu",
           want_hist < b->ch->limits.hist_msgs ? want_hist : b->ch->limits.hist_msgs);
  *op = (join_op){m, b, members_max};
  if ((rc = redis_link_cmd(l, on_joined, op, (int)(sizeof(argv) / sizeof(argv[0])), argv, NULL)) <
      0) {
    chat_room_unlink(m);
    free(op);
    return rc;
  }
  ring(l, klog, strlen(klog)); /* a join appends to the log (or reaps: a nick taken) */
  m->be = op;
  return SK_ASYNC;
}

/* ---- say and leave ------------------------------------------------------ */

static void on_said(redis_link *l, redisReply *reply, void *priv) {
  chat_say_req *req = priv;
  int ok = reply != NULL && reply->type == REDIS_REPLY_STRING;
  if (ok) /* the link lives on the sayer's loop */
    sk__server_metric(l->srv, l->loop, SK_M_CHAT_SAID, 1);
  req->done(req, ok ? 0 : SK_EUNAVAILABLE);
}

static int redis_say(chat_member *m, const uint8_t *text, size_t n, chat_say_req *req) {
  rb *b = backend(m);
  char kmem[KEY_MAX], klog[KEY_MAX];
  redis_link *l = &b->nodes[m->owner->loop].link;
  const char *argv[] = {"EVAL", say_lua, "2", kmem, klog, b->maxlen, m->nick, (const char *)text};
  size_t lens[8];
  room_key(kmem, chat_room_name(m->room), "members");
  room_key(klog, chat_room_name(m->room), "log");
  for (int i = 0; i < 7; i++)
    lens[i] = strlen(argv[i]);
  lens[7] = n; /* the text is not NUL-terminated */
  if (redis_link_cmd(l, on_said, req, 8, argv, lens) < 0)
    return SK_EUNAVAILABLE;
  ring(l, klog, strlen(klog));
  return SK_ASYNC;
}

static void redis_leave(chat_member *m, int presence) {
  rb *b = backend(m);
  owed *o;
  if (m->pending) { /* its join goes on in Redis; the leave below follows it */
    ((join_op *)m->be)->m = NULL;
    m->be = NULL;
    chat_join_done(m, -ECANCELED, NULL);
  }
  /* others on other servers see the leave whatever presence says: the
   * room outlives this server */
  if ((o = owed_new(b, m)) != NULL && send_leave(&b->nodes[m->owner->loop].link, o) < 0)
    owe(b, o);
  chat_room_unlink(m);
}

const chat_backend chat_backend_redis = {.name = "redis",
                                         .start = redis_start,
                                         .stop = redis_stop,
                                         .join = redis_join,
                                         .say = redis_say,
                                         .leave = redis_leave};
