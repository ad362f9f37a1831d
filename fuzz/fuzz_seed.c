/* fuzz_seed.c - the seed wire's pure parsers (SPEC 6, src/wire/seed.c).
 *
 * Byte 0 picks the parser, the rest is its input: the time service's
 * timestamp (Python int() rules), the put head's length prefix, the put
 * head's JSON and the base name it yields, and the auth challenge's digit
 * drawing, and seed chat's control replacement. Each result is checked against what the format
 * promises: a name that can be created under the root (one component, not hidden, no control
 * bytes), lengths in range, digits that are digits. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "sockit/error.h"
#include "wire/seed.h"

static void check_name(const char *name, size_t len) {
  FUZZ_CHECK(len > 0 && len <= SK_SEED_NAME_MAX && strlen(name) == len);
  FUZZ_CHECK(name[0] != '.');
  FUZZ_CHECK(strchr(name, '/') == NULL && strchr(name, '\\') == NULL);
  for (size_t i = 0; i < len; i++)
    FUZZ_CHECK((unsigned char)name[i] >= 0x20 && name[i] != 0x7f);
}

static void fuzz_ts(const uint8_t *p, size_t n) {
  int64_t v = 0;
  int rc = sk__seed_parse_ts((const char *)p, n, &v);
  FUZZ_CHECK(rc == 0 || rc == SK_EBADREQ);
  if (rc == 0) { /* there was at least one digit and nothing but digits, sign, spaces */
    int digit = 0;
    for (size_t i = 0; i < n; i++)
      digit |= p[i] >= '0' && p[i] <= '9';
    FUZZ_CHECK(digit);
  }
}

static void fuzz_head_len(const uint8_t *p, size_t n) {
  uint8_t b[4] = {0}, back[4];
  uint32_t v = 0;
  memcpy(b, p, n < 4 ? n : 4);
  int rc = sk__seed_head_len(b, &v);
  FUZZ_CHECK(rc == 0 || rc == SK_ETOOLARGE || rc == SK_EBADREQ);
  if (rc == 0) {
    FUZZ_CHECK(v >= SK_SEED_HEAD_MIN && v <= SK_SEED_HEAD_MAX);
    sk__seed_put_u32le(back, v);
    FUZZ_CHECK(memcmp(back, b, 4) == 0);
  }
}

static void fuzz_put_head(const uint8_t *p, size_t n) {
  sk_seed_put_head h;
  uint64_t max = n > 0 ? (uint64_t)p[0] << 20 : 0;
  int rc = sk__seed_put_head_parse((const char *)p, n, max, &h);
  FUZZ_CHECK(rc == 0 || rc == SK_EBADREQ || rc == SK_ETOOLARGE || rc == SK_EFORBIDDEN);
  if (rc == 0) {
    check_name(h.name, strlen(h.name));
    FUZZ_CHECK(h.size <= max);
  }
}

static void fuzz_base_name(const uint8_t *p, size_t n) {
  char out[SK_SEED_NAME_MAX + 1];
  int rc = sk__seed_base_name((const char *)p, n, out, sizeof(out));
  FUZZ_CHECK(rc > 0 || rc == SK_EFORBIDDEN);
  if (rc > 0)
    check_name(out, (size_t)rc);
}

static void fuzz_digits(const uint8_t *p, size_t n) {
  char out[64];
  size_t want = n > 0 ? (size_t)p[0] % 40 : 1;
  int rc = sk__seed_digits(p, n, out, sizeof(out), want);
  FUZZ_CHECK(rc == (int)want || rc == -EAGAIN || rc == -EINVAL);
  if (rc > 0) {
    FUZZ_CHECK(strlen(out) == want && out[0] != '0');
    for (size_t i = 0; i < want; i++)
      FUZZ_CHECK(out[i] >= '0' && out[i] <= '9');
  }
  if (n >= 2)
    FUZZ_CHECK(sk__seed_equal(p, p, n / 2) == 1);
}

/* Relayed chat bytes hold no control character but newline and tab, and
 * what was held back is a cut UTF-8 sequence's start. */
static void fuzz_chat_clean(const uint8_t *p, size_t n) {
  uint8_t *out = malloc(3 * n + 1);
  size_t keep, w;
  FUZZ_CHECK(out != NULL);
  w = sk__seed_chat_clean(p, n, out, &keep);
  FUZZ_CHECK(w <= 3 * n && keep <= SK_SEED_CHAT_KEEP_MAX && keep <= n);
  for (size_t i = 0; i < w; i++) {
    FUZZ_CHECK(out[i] >= 0x20 || out[i] == '\n' || out[i] == '\t');
    FUZZ_CHECK(out[i] != 0x7f);
    FUZZ_CHECK(!(out[i] == 0xc2 && i + 1 < w && out[i + 1] >= 0x80 && out[i + 1] <= 0x9f));
  }
  if (keep > 0)
    FUZZ_CHECK(p[n - keep] >= 0xc2);
  free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static void (*const parsers[])(const uint8_t *, size_t) = {
      fuzz_ts, fuzz_head_len, fuzz_put_head, fuzz_base_name, fuzz_digits, fuzz_chat_clean};
  uint8_t *copy;
  if (size < 1)
    return 0;
  /* an exact-length copy, so that ASan sees any read past the input */
  copy = malloc(size - 1 ? size - 1 : 1);
  FUZZ_CHECK(copy != NULL);
  memcpy(copy, data + 1, size - 1);
  parsers[data[0] % (sizeof(parsers) / sizeof(*parsers))](copy, size - 1);
  free(copy);
  return 0;
}
