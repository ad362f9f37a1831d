/* dgram.c - authenticated datagrams (auth/dgram.h, SPEC 5).
 *
 * The replay cache is two generations of an open-addressing hash set of
 * (ts, n). Inserts go to the current one; a lookup asks both. When the
 * current one is REMEMBER_MS old it becomes the previous one and the older
 * previous one is emptied: everything in it was accepted at least REMEMBER_MS
 * ago. So an entry is kept between 60 and 120 s, never less, with no per-entry
 * timer and no deletion from the table. Its size is bounded by max_seen per
 * generation; past that, new datagrams are refused until the minute turns.
 */
#include "auth/dgram.h"

#include <sockit/error.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define GEN_FIRST_CAP 64 /* slots; doubled as needed up to 2 * max_seen */

typedef struct seen {
  int64_t ts; /* 0: an empty slot (a ts of 0 is never fresh: 1970) */
  uint64_t n;
} seen;

typedef struct generation {
  seen *slots;
  size_t cap, used; /* cap is a power of two, used <= cap / 2 */
  uint64_t since;   /* monotonic ms when it became the current one */
} generation;

struct sk__dg_guard {
  uint8_t key[SK_UDP_KEY_LEN];
  size_t max_seen; /* per generation */
  uint64_t seed;   /* spreads slots where a key holder cannot aim them */
  int cur, started;
  generation gen[2];
};

int64_t sk__dg_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

sk__dg_guard *sk__dg_guard_new(const sk_key *secret, size_t max_seen) {
  sk__dg_guard *g = calloc(1, sizeof(*g));
  if (g == NULL)
    return NULL;
  g->max_seen = max_seen > 0 ? max_seen : 1;
  if (sk_auth_udp_key(secret, g->key) < 0 || RAND_bytes((uint8_t *)&g->seed, sizeof g->seed) != 1) {
    sk__dg_guard_free(g);
    return NULL;
  }
  return g;
}

void sk__dg_guard_free(sk__dg_guard *g) {
  if (g == NULL)
    return;
  OPENSSL_cleanse(g->key, sizeof g->key);
  free(g->gen[0].slots);
  free(g->gen[1].slots);
  free(g);
}

/* ---- the trailer -------------------------------------------------------- */

int sk__dg_tag(const sk__dg_guard *g, const struct iovec *iov, int n, uint8_t tag[SK_UDP_TAG_LEN]) {
  return sk__hmac_sha256v(g->key, sizeof g->key, iov, n, tag);
}

ssize_t sk__dg_verify(const sk__dg_guard *g, const uint8_t *dgram, size_t len) {
  uint8_t want[SK_UDP_TAG_LEN];
  if (len < SK_PREFIX_LEN + SK_HEAD_MIN + SK_UDP_TAG_LEN)
    return -1;
  size_t flen = len - SK_UDP_TAG_LEN;
  struct iovec frame = {(void *)dgram, flen};
  if (sk__dg_tag(g, &frame, 1, want) < 0)
    return -1;
  return CRYPTO_memcmp(want, dgram + flen, SK_UDP_TAG_LEN) == 0 ? (ssize_t)flen : -1;
}

/* ---- ts and n ----------------------------------------------------------- */

int sk__dg_stamp(sk_head *h, int64_t wall_ms) {
  static const char digits[] = "0123456789abcdef";
  uint8_t raw[SK__DG_N_HEX / 2];
  char hex[SK__DG_N_HEX + 1];
  if (RAND_bytes(raw, sizeof raw) != 1)
    return SK_EINTERNAL;
  for (size_t i = 0; i < sizeof raw; i++) {
    hex[2 * i] = digits[raw[i] >> 4];
    hex[2 * i + 1] = digits[raw[i] & 15];
  }
  hex[SK__DG_N_HEX] = '\0';
  if (sk_head_set_int(h, "ts", wall_ms) < 0 || sk_head_set_str(h, "n", hex) < 0)
    return -ENOMEM;
  return 0;
}

/* "n" as a number: exactly 16 lowercase hex chars, else -1. */
static int parse_n(const sk_head *h, uint64_t *out) {
  const char *s = sk_head_str(h, "n");
  uint64_t v = 0;
  if (s == NULL || sk_head_strlen(h, "n") != SK__DG_N_HEX)
    return -1;
  for (int i = 0; i < SK__DG_N_HEX; i++) {
    char c = s[i];
    unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                 : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                                        : 16;
    if (d > 15)
      return -1;
    v = v << 4 | d;
  }
  *out = v;
  return 0;
}

/* ---- the replay cache --------------------------------------------------- */

static size_t slot_of(const sk__dg_guard *g, const generation *gen, int64_t ts, uint64_t n) {
  uint64_t x = ((uint64_t)ts * 0x9e3779b97f4a7c15ull) ^ n ^ g->seed;
  x ^= x >> 31;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 29;
  return (size_t)x & (gen->cap - 1);
}

static int gen_has(const sk__dg_guard *g, const generation *gen, int64_t ts, uint64_t n) {
  if (gen->cap == 0)
    return 0;
  for (size_t i = slot_of(g, gen, ts, n);; i = (i + 1) & (gen->cap - 1)) {
    if (gen->slots[i].ts == 0)
      return 0; /* never full: used <= cap / 2 */
    if (gen->slots[i].ts == ts && gen->slots[i].n == n)
      return 1;
  }
}

static void gen_put(const sk__dg_guard *g, generation *gen, int64_t ts, uint64_t n) {
  size_t i = slot_of(g, gen, ts, n);
  while (gen->slots[i].ts != 0)
    i = (i + 1) & (gen->cap - 1);
  gen->slots[i] = (seen){ts, n};
  gen->used++;
}

/* Room for one more entry: grow (rehash) up to the bound. 0 or SK_EBUSY /
 * -ENOMEM. */
static int gen_reserve(const sk__dg_guard *g, generation *gen) {
  if (gen->used + 1 > g->max_seen)
    return SK_EBUSY;
  if (gen->used + 1 <= gen->cap / 2)
    return 0;
  size_t cap = gen->cap ? gen->cap * 2 : GEN_FIRST_CAP;
  generation grown = {.slots = calloc(cap, sizeof(seen)), .cap = cap, .since = gen->since};
  if (grown.slots == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < gen->cap; i++)
    if (gen->slots[i].ts != 0)
      gen_put(g, &grown, gen->slots[i].ts, gen->slots[i].n);
  free(gen->slots);
  *gen = grown;
  return 0;
}

static void gen_clear(generation *gen, uint64_t since) {
  if (gen->slots != NULL)
    memset(gen->slots, 0, gen->cap * sizeof(seen));
  gen->used = 0;
  gen->since = since;
}

/* Turn the generations when the current one is a minute old; see the top. */
static void age(sk__dg_guard *g, uint64_t mono_ms) {
  generation *cur = &g->gen[g->cur];
  if (!g->started) {
    g->started = 1;
    cur->since = mono_ms;
    return;
  }
  if (mono_ms - cur->since < SK__DG_REMEMBER_MS)
    return;
  /* no insert since since + REMEMBER_MS (this would have turned then), so
   * after twice that, the current one holds nothing younger either */
  if (mono_ms - cur->since >= 2 * (uint64_t)SK__DG_REMEMBER_MS)
    gen_clear(cur, mono_ms);
  g->cur = 1 - g->cur;
  gen_clear(&g->gen[g->cur], mono_ms);
}

int sk__dg_fresh(sk__dg_guard *g, const sk_head *h, int64_t wall_ms, uint64_t mono_ms) {
  int64_t ts;
  uint64_t n;
  int rc;
  if (sk_head_int(h, "ts", &ts) < 0 || parse_n(h, &n) < 0)
    return SK_EBADREQ;
  if (ts < wall_ms - SK__DG_SKEW_MS || ts > wall_ms + SK__DG_SKEW_MS || ts == 0)
    return -ERANGE;
  age(g, mono_ms);
  if (gen_has(g, &g->gen[0], ts, n) || gen_has(g, &g->gen[1], ts, n))
    return -EALREADY;
  if ((rc = gen_reserve(g, &g->gen[g->cur])) < 0)
    return rc;
  gen_put(g, &g->gen[g->cur], ts, n);
  return 0;
}

size_t sk__dg_remembered(const sk__dg_guard *g) {
  return g->gen[0].used + g->gen[1].used;
}
