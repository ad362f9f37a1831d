/* hash.c - hash algorithms as a table of functions (STYLE 12): each entry
 * knows how to start, feed and finish one digest. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#ifdef HAVE_XXHASH
#include <xxhash.h>
#endif

#include "common/hash.h"

#define HASH_READ (1u << 20)
#define DIGEST_MAX 64

typedef struct hash_alg {
  const char *name;
  void *(*start)(void);
  void (*update)(void *ctx, const void *data, size_t n);
  size_t (*finish)(void *ctx, uint8_t *out); /* digest length */
  void (*drop)(void *ctx);
} hash_alg;

struct sk__hash {
  const hash_alg *alg;
  void *ctx;
};

static void *sha256_start(void) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
    EVP_MD_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

static void sha256_update(void *ctx, const void *data, size_t n) {
  EVP_DigestUpdate(ctx, data, n);
}

static size_t sha256_finish(void *ctx, uint8_t *out) {
  unsigned len = 0;
  return EVP_DigestFinal_ex(ctx, out, &len) == 1 ? len : 0;
}

static void sha256_drop(void *ctx) {
  EVP_MD_CTX_free(ctx);
}

#ifdef HAVE_XXHASH
static void *xxh128_start(void) {
  XXH3_state_t *st = XXH3_createState();
  if (st != NULL && XXH3_128bits_reset(st) != XXH_OK) {
    XXH3_freeState(st);
    return NULL;
  }
  return st;
}

static void xxh128_update(void *ctx, const void *data, size_t n) {
  XXH3_128bits_update(ctx, data, n);
}

static size_t xxh128_finish(void *ctx, uint8_t *out) {
  XXH128_canonical_t canon;
  XXH128_canonicalFromHash(&canon, XXH3_128bits_digest(ctx));
  memcpy(out, canon.digest, sizeof(canon.digest)); /* big-endian, as xxhsum prints it */
  return sizeof(canon.digest);
}

static void xxh128_drop(void *ctx) {
  XXH3_freeState(ctx);
}
#endif

/* Fastest first. */
static const hash_alg algs[] = {
#ifdef HAVE_XXHASH
    {"xxh128", xxh128_start, xxh128_update, xxh128_finish, xxh128_drop},
#endif
    {"sha256", sha256_start, sha256_update, sha256_finish, sha256_drop},
};
#define NALGS (sizeof(algs) / sizeof(algs[0]))

static const char *const names[] = {
#ifdef HAVE_XXHASH
    "xxh128",
#endif
    "sha256",
};

const char *const *sk__hash_names(size_t *n) {
  *n = NALGS;
  return names;
}

static const hash_alg *find(const char *name) {
  for (size_t i = 0; name != NULL && i < NALGS; i++)
    if (strcmp(algs[i].name, name) == 0)
      return &algs[i];
  return NULL;
}

int sk__hash_known(const char *name) {
  return find(name) != NULL;
}

sk__hash *sk__hash_new(const char *name) {
  const hash_alg *alg = find(name);
  sk__hash *h = alg ? malloc(sizeof(*h)) : NULL;
  if (h == NULL)
    return NULL;
  h->alg = alg;
  if ((h->ctx = alg->start()) == NULL) {
    free(h);
    return NULL;
  }
  return h;
}

void sk__hash_update(sk__hash *h, const void *data, size_t n) {
  if (n > 0)
    h->alg->update(h->ctx, data, n);
}

int sk__hash_final(sk__hash *h, char *out, size_t cap) {
  uint8_t d[DIGEST_MAX];
  size_t n = h->alg->finish(h->ctx, d);
  int w = snprintf(out, cap, "%s:", h->alg->name);
  if (n == 0 || w < 0 || (size_t)w + 2 * n + 1 > cap)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++)
    snprintf(out + w + 2 * i, 3, "%02x", d[i]);
  return 0;
}

void sk__hash_free(sk__hash *h) {
  if (h == NULL)
    return;
  h->alg->drop(h->ctx);
  free(h);
}

int sk__hash_fd_prefix(sk__hash *h, int fd, uint64_t n) {
  uint8_t *buf = n > 0 ? malloc(HASH_READ) : NULL;
  uint64_t off = 0;
  int rc = 0;
  if (n > 0 && buf == NULL)
    return -ENOMEM;
  while (rc == 0 && off < n) {
    size_t want = n - off < HASH_READ ? (size_t)(n - off) : HASH_READ;
    ssize_t r = pread(fd, buf, want, (off_t)off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      rc = r < 0 ? -errno : -EIO;
    else {
      sk__hash_update(h, buf, (size_t)r);
      off += (uint64_t)r;
    }
  }
  free(buf);
  return rc;
}
