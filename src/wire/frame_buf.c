/* frame_buf.c - a whole frame in one shared buffer (sk_frame_encode).
 *
 * Chat encodes each msg once and hands the same bytes to every member's
 * write queue by reference; this is the one place that builds such a
 * buffer. */
#include <errno.h>
#include <string.h>

#include "sockit/error.h"
#include "sockit/server.h"

sk_buf *sk_frame_encode(sk_head *head, const void *body, size_t n) {
  ssize_t need;
  sk_buf *b;

  if (sk_head_set_int(head, "size", (int64_t)n) < 0)
    return NULL;
  need = sk_head_encode(head, NULL, 0);
  if (need < 0)
    return NULL;
  b = sk_buf_new((size_t)need + n);
  if (b == NULL)
    return NULL;
  if (sk_head_encode(head, sk_buf_data(b), (size_t)need) != need) {
    sk_buf_unref(b);
    return NULL;
  }
  if (n > 0)
    memcpy(sk_buf_data(b) + need, body, n);
  sk_buf_set_len(b, (size_t)need + n);
  return b;
}
