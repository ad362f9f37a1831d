/* hash.h - the file hashes of SPEC 4.7 as one table: sha256 (always) and
 * xxh128 (when built with libxxhash). Used by the files service and by the
 * client's put/get, so both sides name and print digests alike. */
#ifndef SOCKIT_COMMON_HASH_H
#define SOCKIT_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

#define SK_HASH_HEX_MAX 160 /* "name:" + hex digest + NUL, for any algorithm */

typedef struct sk__hash sk__hash;

/* The algorithms this build offers, fastest first (the order a client uses
 * to pick "the fastest both sides have"). *n receives the count. */
const char *const *sk__hash_names(size_t *n);

/* 1 if name is an algorithm of this build. */
int sk__hash_known(const char *name);

/* A new running hash; NULL for an unknown name or when out of memory. */
sk__hash *sk__hash_new(const char *name);
void sk__hash_update(sk__hash *h, const void *data, size_t n);

/* Finish into out as "name:lowerhex" (cap >= SK_HASH_HEX_MAX). Returns 0 or
 * -ENOMEM; the hash cannot be updated afterwards. */
int sk__hash_final(sk__hash *h, char *out, size_t cap);
void sk__hash_free(sk__hash *h);

/* Hash n bytes of fd from offset 0 with pread (a resumed prefix). Returns 0
 * or a negative errno; -EIO if the file is shorter than n. */
int sk__hash_fd_prefix(sk__hash *h, int fd, uint64_t n);

#endif
