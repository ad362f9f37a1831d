/* chat_source.c - how many distinct rooms each source address is in.
 *
 * A room costs the server memory for as long as it has members (and its
 * history for a while after), so one peer must not hold a large share of
 * them: 17 connections from one address once held 1,021 rooms and every
 * other join got `busy`. A connection's own rooms are capped by chat.c; this
 * table caps the rooms of all connections from one source together. It
 * counts distinct rooms, not memberships: a hundred members of one room from
 * behind one NAT (or one bench) are one room.
 *
 * The source key is the connection's (ratelimit.h: an IPv4 address, an IPv6
 * /64, "uid:N" for a Unix peer). The table is shared by every loop under its
 * own mutex, taken once per join and once per leave and never while a room
 * lock is held. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "services/chat.h"
#include "sockit/error.h"

#define SOURCE_BUCKETS 256

typedef struct room_count {
  char room[CHAT_NAME_MAX + 1];
  int n; /* memberships of this source in the room */
} room_count;

typedef struct source {
  struct source *next;
  int nrooms, cap;
  room_count *rooms;
  char key[];
} source;

struct chat_sources {
  uv_mutex_t lock;
  int max_rooms;
  source *buckets[SOURCE_BUCKETS];
};

chat_sources *chat_sources_new(int max_rooms) {
  chat_sources *t = calloc(1, sizeof(*t));
  if (t == NULL)
    return NULL;
  uv_mutex_init(&t->lock);
  t->max_rooms = max_rooms;
  return t;
}

void chat_sources_free(chat_sources *t) {
  if (t == NULL)
    return;
  for (int b = 0; b < SOURCE_BUCKETS; b++)
    while (t->buckets[b] != NULL) {
      source *s = t->buckets[b];
      t->buckets[b] = s->next;
      free(s->rooms);
      free(s);
    }
  uv_mutex_destroy(&t->lock);
  free(t);
}

static source **find(chat_sources *t, const char *key) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (const uint8_t *p = (const uint8_t *)key; *p; p++)
    h = (h ^ *p) * 16777619u;
  source **pp = &t->buckets[h % SOURCE_BUCKETS];
  while (*pp != NULL && strcmp((*pp)->key, key) != 0)
    pp = &(*pp)->next;
  return pp;
}

static room_count *find_room(source *s, const char *room) {
  for (int i = 0; i < s->nrooms; i++)
    if (strcmp(s->rooms[i].room, room) == 0)
      return &s->rooms[i];
  return NULL;
}

/* Locked. Room for one more room in s's list (at most max_rooms). */
static int make_room(source *s) {
  int cap = s->cap ? s->cap * 2 : 4;
  room_count *r;
  if (s->nrooms < s->cap)
    return 0;
  if ((r = realloc(s->rooms, (size_t)cap * sizeof(*r))) == NULL)
    return -ENOMEM;
  s->rooms = r;
  s->cap = cap;
  return 0;
}

int chat_sources_enter(chat_sources *t, const char *key, const char *room) {
  source **pp, *s;
  room_count *rc;
  int err = 0;
  if (t == NULL || key == NULL || key[0] == '\0')
    return 0; /* a source that cannot be told is not counted */
  uv_mutex_lock(&t->lock);
  pp = find(t, key);
  if ((s = *pp) == NULL) {
    size_t klen = strlen(key) + 1;
    if ((s = calloc(1, sizeof(*s) + klen)) == NULL) {
      uv_mutex_unlock(&t->lock);
      return -ENOMEM;
    }
    memcpy(s->key, key, klen);
    *pp = s;
  }
  if ((rc = find_room(s, room)) != NULL) {
    rc->n++;
  } else if (s->nrooms >= t->max_rooms) {
    err = SK_EBUSY;
  } else if ((err = make_room(s)) == 0) {
    rc = &s->rooms[s->nrooms++];
    memset(rc, 0, sizeof(*rc));
    strncpy(rc->room, room, CHAT_NAME_MAX);
    rc->n = 1;
  }
  if (s->nrooms == 0) { /* a new source refused: forget it again */
    *pp = s->next;
    free(s->rooms);
    free(s);
  }
  uv_mutex_unlock(&t->lock);
  return err;
}

void chat_sources_exit(chat_sources *t, const char *key, const char *room) {
  source **pp, *s;
  room_count *rc;
  if (t == NULL || key == NULL || key[0] == '\0')
    return;
  uv_mutex_lock(&t->lock);
  pp = find(t, key);
  if ((s = *pp) != NULL && (rc = find_room(s, room)) != NULL && --rc->n == 0) {
    *rc = s->rooms[--s->nrooms]; /* order does not matter */
    if (s->nrooms == 0) {
      *pp = s->next;
      free(s->rooms);
      free(s);
    }
  }
  uv_mutex_unlock(&t->lock);
}
