/* decode.c - the incremental frame decoder (SPEC 4.1).
 *
 * Pure: no I/O, and no allocation but the parsed head. Lengths are checked
 * as soon as the 4-byte prefix is there, so a peer claiming a 1 GiB head is
 * refused before a single head byte is buffered. */
#include "sockit/error.h"
#include "sockit/frame.h"

#include <errno.h>

static uint32_t get_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A larger max_head than SPEC allows is clamped: it can only tighten. */
void sk_decoder_init(sk_decoder *d, uint32_t max_head) {
  d->body_left = 0;
  d->max_head = (max_head == 0 || max_head > SK_HEAD_MAX) ? SK_HEAD_MAX : max_head;
  d->in_body = 0;
}

ssize_t sk_decode_head(sk_decoder *d, const void *buf, size_t len, sk_head **head) {
  const uint8_t *p = buf;
  uint32_t max = d->max_head ? d->max_head : SK_HEAD_MAX; /* a zeroed decoder works too */
  uint32_t hlen;
  sk_head *h;
  int err = SK_EBADFRAME;
  if (d->in_body)
    return -EINVAL; /* caller bug: the body must be consumed first */
  if (len < SK_PREFIX_LEN)
    return 0;
  hlen = get_be32(p);
  if (hlen < SK_HEAD_MIN || hlen > max)
    return SK_EBADFRAME;
  if (len - SK_PREFIX_LEN < hlen)
    return 0;
  h = sk_head_parse(p + SK_PREFIX_LEN, hlen, &err);
  if (h == NULL)
    return err;
  d->body_left = sk_head_size(h);
  d->in_body = d->body_left > 0;
  *head = h;
  return (ssize_t)(SK_PREFIX_LEN + hlen);
}

void sk_decoder_body_consume(sk_decoder *d, size_t n) {
  /* Never wrap: consuming more than is left is a caller bug, not a new frame. */
  d->body_left -= n < d->body_left ? n : d->body_left;
  d->in_body = d->body_left > 0;
}
