/* ratelimit.c - a hash table of failed authentications per source, and
 * the penalty policy of ratelimit.h.
 *
 * Each source keeps the times of its last max_fails wrong macs in a ring;
 * the window is sliding, so "5 within 60 s" means exactly that and not "5
 * in the same minute bucket". After its first penalty a source keeps the
 * length of its last one, which the next wrong mac doubles. Entries also sit
 * on a list ordered by their last change, oldest first, which makes both
 * pruning and eviction O(1). */
#include "auth/ratelimit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/un.h>
#include <time.h>

#define KEY_MAX SK__RATELIMIT_KEY

const sk__rl_policy sk__rl_spec_policy = {
    .max_fails = 5, .window = 60, .first = 5, .max = 600, .decay = 600};

struct entry {
  struct entry *hnext;       /* hash chain */
  struct entry *prev, *next; /* by last change, oldest first */
  double last;               /* newest counted fail */
  double until;              /* in penalty while now < until */
  double penalty;            /* the last penalty's length; 0: none yet */
  unsigned n, pos;           /* fails in ts[], next slot to write */
  char key[KEY_MAX];
  double ts[]; /* max_fails slots */
};

struct sk__ratelimit {
  pthread_mutex_t mu;
  sk__rl_policy p;
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

sk__ratelimit *sk__ratelimit_new(const sk__rl_policy *policy, size_t cap) {
  const sk__rl_policy *p = policy ? policy : &sk__rl_spec_policy;
  sk__ratelimit *rl;

  if (cap == 0)
    cap = SK__RATELIMIT_CAP;
  /* The comparisons are written so that NaN is refused too. */
  if (p->max_fails < 1 || p->max_fails > SK__RATELIMIT_MAX_FAILS || !(p->window > 0) ||
      !(p->first >= 0) || !(p->max >= p->first) || !(p->decay >= 0))
    return NULL;
  rl = calloc(1, sizeof *rl);
  if (!rl)
    return NULL;
  rl->p = *p;
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

static struct entry *find(sk__ratelimit *rl, const char *key) {
  struct entry *e = rl->buckets[hash(rl, key)];
  while (e && strcmp(e->key, key) != 0)
    e = e->hnext;
  return e;
}

static void remove_entry(sk__ratelimit *rl, struct entry *e) {
  struct entry **pp = &rl->buckets[hash(rl, e->key)];
  while (*pp != e)
    pp = &(*pp)->hnext;
  *pp = e->hnext;
  list_unlink(rl, e);
  rl->size--;
  free(e);
}

/* Nothing it remembers can matter any more: not in a penalty, and either
 * never punished with no fail left inside the window, or punished and
 * quiet for `decay` seconds since that penalty ended. */
static int expired(const sk__ratelimit *rl, const struct entry *e, double now) {
  if (now < e->until)
    return 0;
  if (e->penalty > 0)
    return now - (e->last > e->until ? e->last : e->until) >= rl->p.decay;
  return e->n == 0 || now - e->last >= rl->p.window;
}

/* Stops at the first live entry. The list is ordered by last change, not
 * exactly by expiry, so a few dead entries may linger a little; they still
 * count as nothing and are pruned or evicted later. */
static void prune(sk__ratelimit *rl, double now) {
  while (rl->head && expired(rl, rl->head, now))
    remove_entry(rl, rl->head);
}

static struct entry *insert(sk__ratelimit *rl, const char *key) {
  struct entry *e;
  size_t b;

  if (rl->size >= rl->cap)
    remove_entry(rl, rl->head);
  e = calloc(1, sizeof *e + rl->p.max_fails * sizeof e->ts[0]);
  if (!e)
    return NULL;
  memcpy(e->key, key, strlen(key) + 1);
  b = hash(rl, key);
  e->hnext = rl->buckets[b];
  rl->buckets[b] = e;
  list_append(rl, e);
  rl->size++;
  return e;
}

/* Copies key in, cut to KEY_MAX - 1 bytes (which can only merge sources,
 * never let one escape its count). 0 for no key. */
static int make_key(const char *in, char key[KEY_MAX]) {
  size_t len;

  if (!in || !*in)
    return 0;
  len = strnlen(in, KEY_MAX - 1);
  memcpy(key, in, len);
  key[len] = '\0';
  return 1;
}

double sk__ratelimit_blocked(sk__ratelimit *rl, const char *in, double now) {
  char key[KEY_MAX];
  struct entry *e;
  double left = 0;

  if (!rl || !make_key(in, key))
    return 0;
  pthread_mutex_lock(&rl->mu);
  prune(rl, now);
  e = find(rl, key);
  if (e && now < e->until)
    left = e->until - now;
  pthread_mutex_unlock(&rl->mu);
  return left;
}

static void touch(sk__ratelimit *rl, struct entry *e) {
  list_unlink(rl, e);
  list_append(rl, e);
}

static void punish(sk__ratelimit *rl, struct entry *e, double now) {
  double next = e->penalty > 0 ? e->penalty * 2 : rl->p.first;
  e->penalty = next < rl->p.max ? next : rl->p.max;
  e->until = now + e->penalty;
  e->n = e->pos = 0;
}

/* The ring holds the newest max_fails fails; once full, ts[pos] is the
 * oldest of them, and if even that one is inside the window, punish. After
 * a first penalty every wrong mac is punished. */
static void record(sk__ratelimit *rl, struct entry *e, double now) {
  e->last = now;
  touch(rl, e);
  if (e->penalty > 0) {
    punish(rl, e, now);
    return;
  }
  e->ts[e->pos] = now;
  e->pos = (e->pos + 1) % rl->p.max_fails;
  if (e->n < rl->p.max_fails)
    e->n++;
  if (e->n == rl->p.max_fails && now - e->ts[e->pos] < rl->p.window)
    punish(rl, e, now);
}

void sk__ratelimit_fail(sk__ratelimit *rl, const char *in, double now) {
  char key[KEY_MAX];
  struct entry *e;

  if (!rl || !make_key(in, key))
    return;
  pthread_mutex_lock(&rl->mu);
  prune(rl, now);
  e = find(rl, key);
  if (e && expired(rl, e, now)) { /* decayed, but not pruned yet */
    remove_entry(rl, e);
    e = NULL;
  }
  if (!e)
    e = insert(rl, key);
  /* Out of memory loses this one count; refusing the peer for our own
   * shortage would be worse. */
  if (e && now >= e->until)
    record(rl, e, now);
  pthread_mutex_unlock(&rl->mu);
}

void sk__ratelimit_success(sk__ratelimit *rl, const char *in, double now) {
  char key[KEY_MAX];
  struct entry *e;

  if (!rl || !make_key(in, key))
    return;
  pthread_mutex_lock(&rl->mu);
  e = find(rl, key);
  if (e && e->penalty == 0)
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

size_t sk__ratelimit_penalized(sk__ratelimit *rl, double now) {
  size_t n = 0;

  if (!rl)
    return 0;
  pthread_mutex_lock(&rl->mu);
  prune(rl, now);
  for (const struct entry *e = rl->head; e != NULL; e = e->next)
    n += now < e->until;
  pthread_mutex_unlock(&rl->mu);
  return n;
}

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

char *sk__ratelimit_source(const struct sockaddr *sa, int fd, char key[KEY_MAX]) {
  key[0] = '\0';
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, key, KEY_MAX);
  } else if (sa->sa_family == AF_INET6) {
    struct in6_addr a = ((const struct sockaddr_in6 *)sa)->sin6_addr;
    if (memcmp(a.s6_addr, v4_mapped, sizeof v4_mapped) == 0) {
      inet_ntop(AF_INET, a.s6_addr + 12, key, KEY_MAX);
    } else {
      char net[INET6_ADDRSTRLEN];
      memset(a.s6_addr + 8, 0, 8);
      if (inet_ntop(AF_INET6, &a, net, sizeof net) != NULL)
        snprintf(key, KEY_MAX, "%s/64", net);
    }
  } else if (sa->sa_family == AF_UNIX) {
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
      snprintf(key, KEY_MAX, "uid:%u", (unsigned)cred.uid);
  }
  return key;
}
