/* fuzz_frame.c - the incremental frame decoder fed arbitrary splits.
 *
 * Input: byte 0 picks the head limit (pre-auth 4096 or SK_HEAD_MAX), bytes
 * 1..8 pick chunk lengths (cycled), the rest is the stream. The stream is
 * decoded twice: whole, and chunk by chunk the way the server's connection
 * does it (append, cut heads, consume body bytes as they come). Both must see
 * the same heads, the same body bytes and end the same way; every head must
 * survive an encode/parse round trip. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "sockit/error.h"
#include "sockit/frame.h"

#define SPLITS 8

/* Encode h, parse it back, encode again: the two encodings must match. */
static uint64_t round_trip(uint64_t hash, const sk_head *h) {
  uint8_t *a = NULL, *b = NULL;
  ssize_t na = sk_head_encode_alloc(h, &a), nb;
  sk_head *again;
  int err = 0;
  FUZZ_CHECK(na >= (ssize_t)(SK_PREFIX_LEN + SK_HEAD_MIN) || na == SK_ETOOLARGE || na == -ENOMEM);
  if (na < 0)
    return hash;
  again = sk_head_parse(a + SK_PREFIX_LEN, (size_t)na - SK_PREFIX_LEN, &err);
  FUZZ_CHECK(again != NULL);
  FUZZ_CHECK(strcmp(sk_head_type(again), sk_head_type(h)) == 0);
  FUZZ_CHECK(sk_head_size(again) == sk_head_size(h));
  nb = sk_head_encode_alloc(again, &b);
  FUZZ_CHECK(nb == na && memcmp(a, b, (size_t)na) == 0);
  hash = fuzz_fnv(hash, a, (size_t)na);
  sk_head_free(again);
  free(a);
  free(b);
  return hash;
}

typedef struct run {
  sk_decoder dec;
  uint64_t hash;
  size_t heads;
  ssize_t end; /* 0: stopped for more bytes; < 0: the error */
} run;

/* Decode what buf[*pos..len) holds; returns 0 to wait for more, else the error. */
static ssize_t drain(run *r, const uint8_t *buf, size_t len, size_t *pos) {
  for (;;) {
    if (r->dec.in_body) {
      size_t n = sk_decoder_body_avail(&r->dec, len - *pos);
      if (n == 0)
        return 0;
      r->hash = fuzz_fnv(r->hash, buf + *pos, n);
      *pos += n;
      sk_decoder_body_consume(&r->dec, n);
      continue;
    }
    sk_head *h = NULL;
    ssize_t used = sk_decode_head(&r->dec, buf + *pos, len - *pos, &h);
    if (used <= 0) {
      FUZZ_CHECK(h == NULL);
      /* a decoder that wants more may never ask for more than one head */
      FUZZ_CHECK(used != 0 || len - *pos < SK_PREFIX_LEN + r->dec.max_head);
      return used;
    }
    FUZZ_CHECK(h != NULL && (size_t)used <= len - *pos);
    FUZZ_CHECK(sk_head_type(h) != NULL && sk_head_size(h) <= SK_SIZE_MAX);
    FUZZ_CHECK(r->dec.in_body == (sk_head_size(h) > 0));
    r->hash = round_trip(fuzz_fnv(r->hash, "H", 1), h);
    r->heads++;
    *pos += (size_t)used;
    sk_head_free(h);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  run whole, split;
  size_t pos = 0, have = 0, k = 0;
  const uint8_t *stream, *cuts;
  uint32_t limit;

  if (size < 1 + SPLITS)
    return 0;
  limit = (data[0] & 1) ? 4096 : 0;
  cuts = data + 1;
  stream = data + 1 + SPLITS;
  size -= 1 + SPLITS;

  memset(&whole, 0, sizeof(whole));
  sk_decoder_init(&whole.dec, limit);
  whole.hash = FUZZ_FNV_INIT;
  whole.end = drain(&whole, stream, size, &pos);

  /* The split run reads from a copy that grows chunk by chunk, in a buffer
   * of exactly that length so that ASan catches any read past it. */
  memset(&split, 0, sizeof(split));
  sk_decoder_init(&split.dec, limit);
  split.hash = FUZZ_FNV_INIT;
  pos = 0;
  while (have < size) {
    size_t step = (size_t)cuts[k++ % SPLITS] + 1;
    uint8_t *view;
    if (step > size - have)
      step = size - have;
    have += step;
    view = malloc(have - pos ? have - pos : 1);
    FUZZ_CHECK(view != NULL);
    memcpy(view, stream + pos, have - pos);
    size_t vpos = 0;
    split.end = drain(&split, view, have - pos, &vpos);
    pos += vpos;
    free(view);
    if (split.end < 0)
      break;
  }
  if (size == 0)
    split.end = 0;
  FUZZ_CHECK(split.heads == whole.heads);
  FUZZ_CHECK(split.hash == whole.hash);
  FUZZ_CHECK(split.end == whole.end);
  return 0;
}
