/* ratelimit.c - a hash table of recent failed authentications per address.
 *
 * Each address keeps the times of its last max_fails wrong macs in a ring;
 * the window is sliding, so "5 within 60 s" means exactly that and not "5
 * in the same minute bucket". Entries also sit on a list ordered by their
 * last fail, oldest first, which makes both pruning and eviction O(1). */
#include "auth/ratelimit.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* INET6_ADDRSTRLEN plus a scope id ("%eth0") fits; longer input is cut,
 * which can only merge addresses, never let one escape its count. */
#define IP_MAX 64

struct entry {
  struct entry *hnext;       /* hash chain */
  struct entry *prev, *next; /* by last fail, oldest first */
  double last;               /* newest fail */
  double ban_until;          /* banned while now < ban_until */
  unsigned n, pos;           /* fails in ts[], next slot to write */
  char ip[IP_MAX];
  double ts[]; /* max_fails slots */
};

struct sk__ratelimit {
  pthread_mutex_t mu;
  unsigned max_fails;
  double window, ban;
  size_t cap, size, mask;
  uint64_t seed;
  struct entry **buckets;
  struct entry *head, *tail;
};

/* Seeded so that a peer choosing its source addresses (an IPv6 /64 offers
 * plenty) cannot aim them all at one bucket. */
static size_t hash(const sk__ratelimit *rl, const char *ip) {
  uint64_t h = 0xcbf29ce484222325ull ^ rl->seed;
  for (; *ip; ip++)
    h = (h ^ (uint8_t)*ip) * 0x100000001b3ull;
  h ^= h >> 29;
  return (size_t)h & rl->mask;
}

static uint64_t make_seed(void) {
  uint64_t seed = 0;
  struct timespec ts;

  /* No entropy yet is no reason to fail: the seed only spreads buckets. */
  if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
    clock_gettime(CLOCK_MONOTONIC, &ts);
    seed = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)&seed;
  }
  return seed;
}

static size_t bucket_count(size_t cap) {
  size_t n = 16;
  while (n < cap / 2 && n < ((size_t)1 << 24))
    n <<= 1;
  return n;
}

sk__ratelimit *sk__ratelimit_new_cap(unsigned max_fails, double window_s, double ban_s,
                                     size_t cap) {
  sk__ratelimit *rl;

  /* The comparisons are written so that NaN is refused too. */
  if (max_fails < 1 || max_fails > SK__RATELIMIT_MAX_FAILS || !(window_s > 0) || !(ban_s >= 0) ||
      cap < 1)
    return NULL;
  rl = calloc(1, sizeof *rl);
  if (!rl)
    return NULL;
  rl->max_fails = max_fails;
  rl->window = window_s;
  rl->ban = ban_s;
  rl->cap = cap;
  rl->mask = bucket_count(cap) - 1;
  rl->seed = make_seed();
  rl->buckets = calloc(rl->mask + 1, sizeof *rl->buckets);
  if (!rl->buckets || pthread_mutex_init(&rl->mu, NULL) != 0) {
    free(rl->buckets);
    free(rl);
    return NULL;
  }
  return rl;
}

sk__ratelimit *sk__ratelimit_new(unsigned max_fails, double window_s, double ban_s) {
  return sk__ratelimit_new_cap(max_fails, window_s, ban_s, SK__RATELIMIT_CAP);
}

void sk__ratelimit_free(sk__ratelimit *rl) {
  struct entry *e, *next;

  if (!rl)
    return;
  for (e = rl->head; e; e = next) {
    next = e->next;
    free(e);
  }
  pthread_mutex_destroy(&rl->mu);
  free(rl->buckets);
  free(rl);
}

/* The ends are found by comparing with head and tail rather than by a NULL
 * prev or next: the same under the list's invariants, and it lets the static
 * analyzer see that unlinking the head moves rl->head. */
static void list_unlink(sk__ratelimit *rl, struct entry *e) {
  if (rl->head == e)
    rl->head = e->next;
  else
    e->prev->next = e->next;
  if (rl->tail == e)
    rl->tail = e->prev;
  else
    e->next->prev = e->prev;
  e->prev = e->next = NULL;
}

static void list_append(sk__ratelimit *rl, struct entry *e) {
  e->prev = rl->tail;
  e->next = NULL;
  if (rl->tail)
    rl->tail->next = e;
  else
    rl->head = e;
  rl->tail = e;
}

static struct entry *find(sk__ratelimit *rl, const char *ip) {
  struct entry *e = rl->buckets[hash(rl, ip)];
  while (e && strcmp(e->ip, ip) != 0)
    e = e->hnext;
  return e;
}

static void remove_entry(sk__ratelimit *rl, struct entry *e) {
  struct entry **pp = &rl->buckets[hash(rl, e->ip)];
  while (*pp != e)
    pp = &(*pp)->hnext;
  *pp = e->hnext;
  list_unlink(rl, e);
  rl->size--;
  free(e);
}

/* Not banned and no fail inside the window: the entry remembers nothing that
 * could still matter. */
static int expired(const sk__ratelimit *rl, const struct entry *e, double now) {
  return now >= e->ban_until && (e->n == 0 || now - e->last >= rl->window);
}

/* Stops at the first live entry. With ban != window the list is not exactly
 * in expiry order, so a few dead entries may linger a little; they still
 * count as nothing and are pruned or evicted later. */
static void prune(sk__ratelimit *rl, double now) {
  while (rl->head && expired(rl, rl->head, now))
    remove_entry(rl, rl->head);
}

static struct entry *insert(sk__ratelimit *rl, const char *ip) {
  struct entry *e;
  size_t b;

  if (rl->size >= rl->cap)
    remove_entry(rl, rl->head);
  e = calloc(1, sizeof *e + rl->max_fails * sizeof e->ts[0]);
  if (!e)
    return NULL;
  memcpy(e->ip, ip, strlen(ip) + 1);
  b = hash(rl, ip);
  e->hnext = rl->buckets[b];
  rl->buckets[b] = e;
  list_append(rl, e);
  rl->size++;
  return e;
}

/* Copies ip into key, cut to IP_MAX - 1 bytes. 0 for no address. */
static int make_key(const char *ip, char key[IP_MAX]) {
  size_t len;

  if (!ip || !*ip)
    return 0;
  len = strnlen(ip, IP_MAX - 1);
  memcpy(key, ip, len);
  key[len] = '\0';
  return 1;
}

int sk__ratelimit_blocked(sk__ratelimit *rl, const char *ip, double now) {
  char key[IP_MAX];
  struct entry *e;
  int banned;

  if (!rl || !make_key(ip, key))
    return 0;
  pthread_mutex_lock(&rl->mu);
  prune(rl, now);
  e = find(rl, key);
  banned = e && now < e->ban_until;
  pthread_mutex_unlock(&rl->mu);
  return banned;
}

/* The ring holds the newest max_fails fails; once full, ts[pos] is the
 * oldest of them, and if even that one is inside the window, ban. */
static void record(sk__ratelimit *rl, struct entry *e, double now) {
  e->ts[e->pos] = now;
  e->pos = (e->pos + 1) % rl->max_fails;
  if (e->n < rl->max_fails)
    e->n++;
  e->last = now;
  list_unlink(rl, e);
  list_append(rl, e);
  if (e->n == rl->max_fails && now - e->ts[e->pos] < rl->window) {
    e->ban_until = now + rl->ban;
    e->n = e->pos = 0;
  }
}

void sk__ratelimit_fail(sk__ratelimit *rl, const char *ip, double now) {
  char key[IP_MAX];
  struct entry *e;

  if (!rl || !make_key(ip, key))
    return;
  pthread_mutex_lock(&rl->mu);
  prune(rl, now);
  e = find(rl, key);
  if (!e)
    e = insert(rl, key);
  /* Out of memory loses this one count; refusing the peer for our own
   * shortage would be worse. */
  if (e && now >= e->ban_until)
    record(rl, e, now);
  pthread_mutex_unlock(&rl->mu);
}

void sk__ratelimit_success(sk__ratelimit *rl, const char *ip, double now) {
  char key[IP_MAX];
  struct entry *e;

  if (!rl || !make_key(ip, key))
    return;
  pthread_mutex_lock(&rl->mu);
  e = find(rl, key);
  if (e && now >= e->ban_until)
    remove_entry(rl, e);
  else if (e)
    e->n = e->pos = 0;
  pthread_mutex_unlock(&rl->mu);
}

size_t sk__ratelimit_size(sk__ratelimit *rl, double now) {
  size_t n;

  if (!rl)
    return 0;
  pthread_mutex_lock(&rl->mu);
  prune(rl, now);
  n = rl->size;
  pthread_mutex_unlock(&rl->mu);
  return n;
}
