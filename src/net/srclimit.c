/* srclimit.c - per-source token buckets for datagram answers (srclimit.h).
 *
 * Open addressing over SK_SRCLIMIT_SLOTS entries, a source probing at most PROBES slots
 * from its hash (seeded: forged sources cannot be aimed at one run of
 * slots). Buckets count in thousandths of an answer, so a refill of `rate`
 * a second is `rate` thousandths a millisecond: integers only. */
#include "net/srclimit.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/random.h>

#define PROBES 8
#define MILLI 1000u

typedef sk__srclimit_bucket bucket;

void sk__srclimit_init(sk__srclimit *l, unsigned rate, unsigned burst) {
  memset(l, 0, sizeof(*l));
  l->rate = rate > 0 ? rate : 1;
  l->burst = burst > 0 ? burst : 1;
  if (getrandom(&l->seed, sizeof l->seed, GRND_NONBLOCK) != (ssize_t)sizeof l->seed)
    l->seed = (uint64_t)(uintptr_t)l * 0x9e3779b97f4a7c15ull; /* spreads, no more */
}

/* The source of sa as a key; 0 for a family without one (never limited:
 * only IP datagrams come here). */
static int source_key(const struct sockaddr *sa, uint8_t key[9]) {
  memset(key, 0, 9);
  if (sa->sa_family == AF_INET) {
    key[0] = 4;
    memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    return 1;
  }
  if (sa->sa_family == AF_INET6) {
    key[0] = 6;
    memcpy(key + 1, &((const struct sockaddr_in6 *)sa)->sin6_addr, 8);
    return 1;
  }
  return 0;
}

static size_t hash(const sk__srclimit *l, const uint8_t key[9]) {
  uint64_t h = 0xcbf29ce484222325ull ^ l->seed;
  for (int i = 0; i < 9; i++)
    h = (h ^ key[i]) * 0x100000001b3ull;
  h ^= h >> 29;
  return (size_t)h;
}

/* Refill b to now; 1 when it is full (its source may be forgotten). */
static int refill(const sk__srclimit *l, bucket *b, uint64_t now) {
  uint64_t full = (uint64_t)l->burst * MILLI;
  uint64_t got = now > b->last ? (now - b->last) * l->rate : 0;
  b->milli = (uint32_t)(b->milli + got >= full ? full : b->milli + got);
  b->last = now;
  return b->milli >= full;
}

int sk__srclimit_take(sk__srclimit *l, const struct sockaddr *sa, uint64_t now_ms) {
  uint8_t key[9];
  bucket *free_slot = NULL;
  if (!source_key(sa, key))
    return 1;
  size_t h = hash(l, key);
  for (int i = 0; i < PROBES; i++) {
    bucket *b = &l->slots[(h + (size_t)i) % SK_SRCLIMIT_SLOTS];
    if (b->key[0] != 0 && memcmp(b->key, key, sizeof key) == 0) {
      refill(l, b, now_ms);
      if (b->milli < MILLI)
        return 0;
      b->milli -= MILLI;
      return 1;
    }
    if (free_slot == NULL && (b->key[0] == 0 || refill(l, b, now_ms)))
      free_slot = b;
  }
  if (free_slot == NULL)
    return 0; /* every slot busy with a source still spending: refuse */
  memcpy(free_slot->key, key, sizeof key);
  free_slot->last = now_ms;
  free_slot->milli = (l->burst - 1) * MILLI;
  return 1;
}
