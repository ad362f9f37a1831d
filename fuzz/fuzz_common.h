/* fuzz_common.h - small helpers shared by the harnesses (header only). */
#ifndef SOCKIT_FUZZ_COMMON_H
#define SOCKIT_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* A check that survives NDEBUG: a broken invariant is a crash for libFuzzer. */
#define FUZZ_CHECK(cond)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);                 \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)

/* The input, read as a stream of choices; 0 once it is used up. */
typedef struct fz_in {
  const uint8_t *p;
  size_t n;
} fz_in;

static inline uint8_t fz_byte(fz_in *in) {
  if (in->n == 0)
    return 0;
  in->n--;
  return *in->p++;
}

/* FNV-1a, to compare two event streams without storing them. */
static inline uint64_t fuzz_fnv(uint64_t h, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= UINT64_C(1099511628211);
  }
  return h;
}
#define FUZZ_FNV_INIT UINT64_C(14695981039346656037)

#endif
