/* encode.c - write a head as [u32 BE head_len][compact JSON] (SPEC 4.1).
 * The body is never copied here: callers send it as a separate buffer. */
#include "sockit/error.h"
#include "sockit/frame.h"
#include "wire/fastpath.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* One json_dumpb straight into buf+4: it writes only what fits and always
 * returns the full length, so a short buffer costs no extra pass. */
static ssize_t encode_json(const json_t *o, uint8_t *p, size_t cap) {
  size_t room = cap > SK_PREFIX_LEN ? cap - SK_PREFIX_LEN : 0;
  char *text = room ? (char *)p + SK_PREFIX_LEN : NULL;
  ssize_t fast = sk__head_dump_fast(o, text, room);
  size_t n = fast >= 0 ? (size_t)fast : json_dumpb(o, text, room, JSON_COMPACT);
  if (n == 0)
    return -EINVAL; /* not an object, or nested too deep to encode */
  if (n > SK_HEAD_MAX)
    return SK_ETOOLARGE;
  if (n <= room)
    put_be32(p, (uint32_t)n);
  return (ssize_t)(n + SK_PREFIX_LEN);
}

ssize_t sk_head_encode(const sk_head *h, void *buf, size_t cap) {
  json_t *tmp;
  const json_t *o = sk__head_json(h, &tmp);
  ssize_t n = o != NULL ? encode_json(o, buf, cap) : -ENOMEM;
  json_decref(tmp);
  return n;
}

/* Measure, allocate exactly once, then encode into the buffer. */
ssize_t sk_head_encode_alloc(const sk_head *h, uint8_t **out) {
  ssize_t need = sk_head_encode(h, NULL, 0);
  ssize_t n;
  uint8_t *b;
  if (need < 0)
    return need;
  b = malloc((size_t)need);
  if (b == NULL)
    return -ENOMEM;
  n = sk_head_encode(h, b, (size_t)need);
  if (n != need) {
    free(b);
    return n < 0 ? n : SK_EINTERNAL;
  }
  *out = b;
  return n;
}
