/* buf.c - shared, reference-counted byte buffers (sockit/server.h).
 *
 * A frame fanned out to many connections (chat) or a file block on its way to
 * the socket is one sk_buf; each write queue holds a reference, so the bytes
 * are never copied per reader. Counts are atomic because rooms and workers
 * hand buffers between threads. */
#include <stdatomic.h>
#include <stdlib.h>

#include "sockit/server.h"

struct sk_buf {
  atomic_uint refs;
  size_t len, cap;
  uint8_t *data;
  void (*free_fn)(void *ctx, void *data); /* NULL: data is inline */
  void *ctx;
  uint8_t inline_data[];
};

sk_buf *sk_buf_new(size_t cap) {
  sk_buf *b = malloc(sizeof(*b) + cap);
  if (b == NULL)
    return NULL;
  atomic_init(&b->refs, 1);
  b->len = 0;
  b->cap = cap;
  b->data = b->inline_data;
  b->free_fn = NULL;
  b->ctx = NULL;
  return b;
}

sk_buf *sk_buf_wrap(void *data, size_t len, void (*free_fn)(void *ctx, void *data), void *ctx) {
  sk_buf *b = malloc(sizeof(*b));
  if (b == NULL)
    return NULL;
  atomic_init(&b->refs, 1);
  b->len = b->cap = len;
  b->data = data;
  b->free_fn = free_fn;
  b->ctx = ctx;
  return b;
}

uint8_t *sk_buf_data(sk_buf *b) {
  return b->data;
}
size_t sk_buf_len(const sk_buf *b) {
  return b->len;
}
size_t sk_buf_cap(const sk_buf *b) {
  return b->cap;
}
void sk_buf_set_len(sk_buf *b, size_t len) {
  b->len = len <= b->cap ? len : b->cap;
}

sk_buf *sk_buf_ref(sk_buf *b) {
  atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
  return b;
}

void sk_buf_unref(sk_buf *b) {
  if (b == NULL || atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
    return;
  if (b->free_fn != NULL)
    b->free_fn(b->ctx, b->data);
  free(b);
}
