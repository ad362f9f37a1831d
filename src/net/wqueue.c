/* wqueue.c - the write side of a native connection: responses are encoded
 * straight into a queue of shared buffers (small frames coalesce into 16 KiB
 * chunks, large bodies are queued by reference) and flushed once per loop
 * iteration as one scatter-gather write (uv_try_write first, uv_write for
 * the rest). Pushes wait while a response body is being queued in pieces. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/conn_int.h"
#include "net/core.h"
#include "net/fastsend.h"
#include "sockit/error.h"
#include "wire/text.h"

/* --max-buffered: every byte queued is counted server-wide as well, with
 * one relaxed atomic per change (no lock); budget.c acts when it is over. */
static void budget_add(sk_conn *c, size_t n) {
  size_t total = atomic_fetch_add_explicit(&c->srv->buffered, n, memory_order_relaxed) + n;
  if (total > (size_t)c->srv->cfg.max_buffered)
    sk__budget_over(c->loop);
}

static void budget_sub(sk_conn *c, size_t n) {
  atomic_fetch_sub_explicit(&c->srv->buffered, n, memory_order_relaxed);
}

void sk__mark_dirty(sk_conn *c) {
  if (c->dirty || c->hard_closing)
    return;
  c->dirty = 1;
  sk_conn_ref(c); /* the dirty list's reference */
  c->next_dirty = c->loop->dirty;
  c->loop->dirty = c;
}

/* ---- write queue -------------------------------------------------------- */

static int wq_reserve(sk_conn *c) {
  if (c->wq_n < c->wq_cap)
    return 0;
  if (c->wq_first > 0 && c->winflight == 0) { /* compact once per batch */
    memmove(c->wq, c->wq + c->wq_first, (size_t)(c->wq_n - c->wq_first) * sizeof(*c->wq));
    c->wq_n -= c->wq_first;
    c->wq_first = 0;
    if (c->wq_n < c->wq_cap)
      return 0;
  }
  int cap = c->wq_cap ? c->wq_cap * 2 : 4; /* an idle connection keeps its first array */
  wq_item *wq = realloc(c->wq, (size_t)cap * sizeof(*wq));
  if (wq == NULL)
    return -ENOMEM;
  c->wq = wq;
  c->wq_cap = cap;
  return 0;
}

/* Append a reference (taken over from the caller) to the queue. */
static int wq_push(sk_conn *c, sk_buf *b, size_t off, size_t len, int chunk) {
  if (wq_reserve(c) < 0) {
    sk_buf_unref(b);
    return -ENOMEM;
  }
  c->wq[c->wq_n++] = (wq_item){b, off, len, chunk};
  c->queued += len;
  budget_add(c, len);
  sk__mark_dirty(c);
  return 0;
}

/* Room at the end of the tail chunk, if it can still grow (not in flight). */
static uint8_t *wq_tail_room(sk_conn *c, size_t *room) {
  wq_item *t;
  if (c->wq_n == c->wq_first || c->wq_n - 1 < c->wq_first + c->winflight)
    return NULL;
  t = &c->wq[c->wq_n - 1];
  if (!t->chunk)
    return NULL;
  *room = sk_buf_cap(t->buf) - sk_buf_len(t->buf);
  return sk_buf_data(t->buf) + sk_buf_len(t->buf);
}

static void wq_tail_grow(sk_conn *c, size_t n) {
  wq_item *t = &c->wq[c->wq_n - 1];
  sk_buf_set_len(t->buf, sk_buf_len(t->buf) + n);
  t->len += n;
  c->queued += n;
  budget_add(c, n);
  sk__mark_dirty(c);
}

static void wchunk_recycle(void *loop, void *data) {
  sk__wchunk_put(loop, data);
}

/* A chunk whose memory comes from the loop's pool and goes back to it: a
 * queue's chunks are unreferenced only on its loop (written or dropped). */
static sk_buf *wchunk_new(sk_loop *l) {
  void *data = sk__wchunk_get(l);
  sk_buf *b = data != NULL ? sk_buf_wrap(data, SK_WCHUNK, wchunk_recycle, l) : NULL;
  if (b == NULL) {
    if (data != NULL)
      sk__wchunk_put(l, data);
    return NULL;
  }
  sk_buf_set_len(b, 0);
  return b;
}

/* Space for n bytes at the tail, in the current chunk or a new one. */
static uint8_t *wq_space(sk_conn *c, size_t n) {
  size_t room = 0;
  uint8_t *p = wq_tail_room(c, &room);
  if (p != NULL && room >= n)
    return p;
  sk_buf *b = n > SK_WCHUNK ? sk_buf_new(n) : wchunk_new(c->loop);
  if (b == NULL || wq_push(c, b, 0, 0, 1) < 0)
    return NULL;
  return sk_buf_data(b);
}

static int wq_copy_raw(sk_conn *c, const void *data, size_t n) {
  if (n == 0)
    return 0;
  if (n > SK_WCHUNK) { /* big bodies get a buffer of their own */
    sk_buf *b = sk_buf_new(n);
    if (b == NULL)
      return -ENOMEM;
    memcpy(sk_buf_data(b), data, n);
    sk_buf_set_len(b, n);
    return wq_push(c, b, 0, n, 0);
  }
  uint8_t *p = wq_space(c, n);
  if (p == NULL)
    return -ENOMEM;
  memcpy(p, data, n);
  wq_tail_grow(c, n);
  return 0;
}

/* A body (or a piece of one): the adapter may wrap it first. */
static int wq_copy(sk_conn *c, const void *data, size_t n) {
  int rc;
  if (n > 0 && c->ad != NULL && (rc = c->ad->body(c, n)) < 0)
    return rc;
  return wq_copy_raw(c, data, n);
}

static int wq_push_body(sk_conn *c, sk_buf *b, size_t off, size_t n) {
  int rc;
  if (c->ad != NULL && (rc = c->ad->body(c, n)) < 0) {
    sk_buf_unref(b);
    return rc;
  }
  return wq_push(c, b, off, n, 0);
}

int sk__conn_write_raw(sk_conn *c, const void *data, size_t n) {
  return wq_copy_raw(c, data, n);
}

int sk__conn_write_buf(sk_conn *c, sk_buf *b, size_t off, size_t n) {
  return n == 0 ? 0 : wq_push(c, sk_buf_ref(b), off, n, 0);
}

static int wq_head(sk_conn *c, const sk_head *h, uint64_t body_n) {
  size_t room = 0;
  uint8_t *p;
  ssize_t need;
  if (c->ad != NULL) { /* its header goes first: it needs the length */
    int rc;
    if ((need = sk_head_encode(h, NULL, 0)) < 0)
      return (int)need;
    if ((rc = c->ad->frame(c, (size_t)need, body_n)) < 0)
      return rc;
  }
  p = wq_tail_room(c, &room);
  need = p ? sk_head_encode(h, p, room) : -1;
  if (need > 0 && (size_t)need <= room) {
    wq_tail_grow(c, (size_t)need);
    return 0;
  }
  if (need < 0 && need != -1)
    return (int)need;
  need = sk_head_encode(h, NULL, 0);
  if (need < 0)
    return (int)need;
  p = wq_space(c, (size_t)need);
  if (p == NULL)
    return -ENOMEM;
  sk_head_encode(h, p, (size_t)need);
  wq_tail_grow(c, (size_t)need);
  return 0;
}

/* Drop n written bytes from the front of the queue. */
void sk__wq_consume(sk_conn *c, size_t n) {
  c->bytes_out += n;
  sk__mu_add(&c->loop->metrics.bytes_out, n);
  c->queued -= n;
  budget_sub(c, n);
  while (n > 0 && c->wq_first < c->wq_n) {
    wq_item *it = &c->wq[c->wq_first];
    size_t k = n < it->len ? n : it->len;
    it->off += k;
    it->len -= k;
    n -= k;
    if (it->len > 0)
      break;
    sk_buf_unref(it->buf);
    c->wq_first++;
  }
  if (c->wq_first == c->wq_n)
    c->wq_first = c->wq_n = 0;
}

const uint8_t *sk__wq_front(const sk_conn *c, size_t *n) {
  for (int i = c->wq_first; i < c->wq_n; i++) {
    if (c->wq[i].len == 0)
      continue;
    *n = c->wq[i].len;
    return sk_buf_data(c->wq[i].buf) + c->wq[i].off;
  }
  *n = 0;
  return NULL;
}

/* Point iov at the first queued items; returns the iovec count and sets
 * *items to how many queue items they cover and *bytes to their length. */
static int build_iov(sk_conn *c, uv_buf_t *iov, int *items, size_t *bytes) {
  int n = 0, i;
  *bytes = 0;
  for (i = c->wq_first; i < c->wq_n && n < SK_IOV_MAX; i++) {
    if (c->wq[i].len == 0)
      continue;
    iov[n].base = (char *)sk_buf_data(c->wq[i].buf) + c->wq[i].off;
    iov[n].len = c->wq[i].len;
    *bytes += iov[n].len;
    n++;
  }
  *items = i - c->wq_first;
  return n;
}

static void on_write(uv_write_t *req, int status) {
  sk_conn *c = req->data;
  free(req);
  c->winflight = 0;
  if (status < 0) {
    sk__conn_hard_close(c);
  } else {
    sk__wq_consume(c, c->wbytes);
    sk__wq_flush_plain(c);
    sk__conn_after_drain(c);
  }
  sk_conn_unref(c);
}

/* The iovec array lives on the stack and the write request is allocated
 * only when a write has to wait: libuv copies the iovecs into its request,
 * and an idle connection then holds neither (1.2 KiB of the 3 KiB that
 * each of 10,000 idle connections cost). */
void sk__wq_flush_plain(sk_conn *c) {
  uv_buf_t iov[SK_IOV_MAX];
  uv_write_t *req;
  int n, items;
  size_t want;
  if (c->winflight || c->hard_closing)
    return;
  while (c->queued > 0) {
    n = build_iov(c, iov, &items, &want);
    int w = uv_try_write(&c->h.stream, iov, (unsigned)n);
    if (w == UV_EAGAIN || w == UV_ENOSYS)
      break;
    if (w < 0) {
      sk__conn_hard_close(c);
      return;
    }
    sk__wq_consume(c, (size_t)w);
    if ((size_t)w < want)
      break; /* the socket is full: wait for it below */
  }
  if (c->queued == 0)
    return;
  /* uv_write keeps the iovs' memory referenced by the queue items; the items
   * stay put (only appended after) until on_write consumes them. */
  n = build_iov(c, iov, &items, &want);
  if ((req = malloc(sizeof(*req))) == NULL) {
    sk__conn_hard_close(c);
    return;
  }
  req->data = c;
  if (uv_write(req, &c->h.stream, iov, (unsigned)n, on_write) < 0) {
    free(req);
    sk__conn_hard_close(c);
    return;
  }
  c->winflight = items;
  c->wbytes = want;
  sk_conn_ref(c);
}

void sk__conn_flush_dirty(sk_loop *l) {
  sk_conn *c;
  while ((c = l->dirty) != NULL) {
    l->dirty = c->next_dirty;
    c->dirty = 0;
    c->tp->flush(c);
    sk__conn_after_drain(c);
    sk_conn_unref(c); /* the dirty list holds a reference */
  }
}

/* ---- sending frames ----------------------------------------------------- */

/* Does h already say "size": n? Most sized responses do (echo sets it), and
 * replacing the member would cost an allocation and a free per frame. */
static int size_is(const sk_head *h, uint64_t n) {
  int64_t v;
  return sk_head_int(h, "size", &v) == 0 && v >= 0 && (uint64_t)v == n;
}

int sk__send_frame(sk_conn *c, sk_head *head, const sk_head *id_src, uint64_t n) {
  if (c->closing)
    return -EPIPE;
  if (id_src != NULL && sk_head_copy_member(head, id_src, "id") < 0)
    return -ENOMEM;
  if ((n > 0 || sk_head_has(head, "size")) && !size_is(head, n) &&
      sk_head_set_int(head, "size", (int64_t)n) < 0)
    return -ENOMEM;
  return wq_head(c, head, n);
}

int sk_conn_send(sk_conn *c, sk_head *head, const void *body, size_t n) {
  int rc = sk__send_frame(c, head, sk__id_source(c), n);
  return rc < 0 ? rc : wq_copy(c, body, n);
}

/* [prefix][text] with ,"id":ID spliced in before text's closing brace. */
static int wq_text_put(sk_conn *c, const char *text, size_t n, const char *id, size_t idn,
                       uint64_t body_n) {
  static const char key[] = ",\"id\":";
  size_t hlen = idn > 0 ? n + sizeof(key) - 1 + idn : n;
  uint8_t *p;
  if (hlen > SK_HEAD_MAX)
    return SK_ETOOLARGE;
  if (c->ad != NULL) {
    int rc = c->ad->frame(c, SK_PREFIX_LEN + hlen, body_n);
    if (rc < 0)
      return rc;
  }
  if ((p = wq_space(c, SK_PREFIX_LEN + hlen)) == NULL)
    return -ENOMEM;
  p[0] = (uint8_t)(hlen >> 24);
  p[1] = (uint8_t)(hlen >> 16);
  p[2] = (uint8_t)(hlen >> 8);
  p[3] = (uint8_t)hlen;
  if (idn == 0) {
    memcpy(p + SK_PREFIX_LEN, text, n);
  } else {
    uint8_t *q = p + SK_PREFIX_LEN + n - 1;
    memcpy(p + SK_PREFIX_LEN, text, n - 1);
    memcpy(q, key, sizeof(key) - 1);
    memcpy(q + sizeof(key) - 1, id, idn);
    q[sizeof(key) - 1 + idn] = '}';
  }
  wq_tail_grow(c, SK_PREFIX_LEN + hlen);
  return 0;
}

/* The same bytes that send_frame writes for a head whose members are text
 * (in order) plus the request's "id", without building a head object. */
static int wq_text_head(sk_conn *c, const char *text, size_t n, uint64_t body_n) {
  const sk_head *src = sk__id_source(c);
  char small[256], *id = small;
  ssize_t idn = src ? sk__head_member_text(src, "id", small, sizeof(small)) : 0;
  int rc;
  if (idn > (ssize_t)sizeof(small)) {
    if ((id = malloc((size_t)idn)) == NULL)
      return -ENOMEM;
    idn = sk__head_member_text(src, "id", id, (size_t)idn);
  }
  rc = idn < 0 ? (int)idn : wq_text_put(c, text, n, id, (size_t)idn, body_n);
  if (id != small)
    free(id);
  return rc;
}

int sk__conn_send_text(sk_conn *c, const char *head, size_t n, const void *body, size_t bn) {
  int rc;
  if (c->closing)
    return -EPIPE;
  rc = wq_text_head(c, head, n, bn);
  return rc < 0 ? rc : wq_copy(c, body, bn);
}

int sk_conn_send_buf(sk_conn *c, sk_head *head, sk_buf *b, size_t off, size_t n) {
  int rc = sk__send_frame(c, head, sk__id_source(c), n);
  if (rc < 0 || n == 0)
    return rc;
  return wq_push_body(c, sk_buf_ref(b), off, n);
}

/* A whole encoded frame (taken over): wrapped as one piece. */
static int wq_push_frame(sk_conn *c, sk_buf *f) {
  int rc;
  if (c->ad != NULL && (rc = c->ad->frame(c, sk_buf_len(f), 0)) < 0) {
    sk_buf_unref(f);
    return rc;
  }
  return wq_push(c, f, 0, sk_buf_len(f), 0);
}

/* Pushes that arrive while a response body is still being queued in pieces
 * wait here: a frame may never land inside another frame's body. */
static int defer_push(sk_conn *c, sk_buf *frame) {
  if (c->ndeferred == c->deferred_cap) {
    int cap = c->deferred_cap ? c->deferred_cap * 2 : 8;
    sk_buf **d = realloc(c->deferred, (size_t)cap * sizeof(*d));
    if (d == NULL) {
      sk_buf_unref(frame);
      return -ENOMEM;
    }
    c->deferred = d;
    c->deferred_cap = cap;
  }
  c->deferred[c->ndeferred++] = frame;
  c->deferred_bytes += sk_buf_len(frame);
  return 0;
}

static void release_deferred(sk_conn *c) {
  for (int i = 0; i < c->ndeferred; i++) {
    sk_buf *f = c->deferred[i];
    c->deferred_bytes -= sk_buf_len(f);
    if (c->closing)
      sk_buf_unref(f);
    else
      wq_push_frame(c, f); /* on failure it releases f itself */
  }
  c->ndeferred = 0;
}

int sk_conn_send_head(sk_conn *c, sk_head *head, uint64_t size) {
  int rc = sk__send_frame(c, head, sk__id_source(c), size);
  if (rc == 0)
    c->out_left = size;
  return rc;
}

int sk_conn_send_more(sk_conn *c, sk_buf *b, size_t off, size_t n) {
  int rc;
  if (c->closing)
    return -EPIPE;
  if (n > c->out_left)
    return -EINVAL; /* more than the head announced would break the framing */
  rc = n == 0 ? 0 : wq_push_body(c, sk_buf_ref(b), off, n);
  if (rc == 0 && (c->out_left -= n) == 0)
    release_deferred(c);
  return rc;
}

int sk_conn_push(sk_conn *c, sk_head *head, const void *body, size_t n) {
  if (c->out_left > 0) {
    sk_buf *f = c->closing ? NULL : sk_frame_encode(head, body, n);
    return f == NULL ? (c->closing ? -EPIPE : -ENOMEM) : defer_push(c, f);
  }
  int rc = sk__send_frame(c, head, NULL, n);
  return rc < 0 ? rc : wq_copy(c, body, n);
}

int sk_conn_push_frame(sk_conn *c, sk_buf *frame) {
  if (c->closing)
    return -EPIPE;
  if (c->out_left > 0)
    return defer_push(c, sk_buf_ref(frame));
  return wq_push_frame(c, sk_buf_ref(frame));
}

int sk__send_error(sk_conn *c, const sk_head *id_src, int err, const char *msg) {
  sk_head *h;
  int rc;
  /* the request this answers ends with err (sockit_requests_total) */
  sk__engine_answered(&c->eng, id_src, err);
  if ((h = sk_head_new("error")) == NULL)
    return -ENOMEM;
  sk_head_set_str(h, "code", sk_err_wire_name(err));
  sk_head_set_str(h, "message", msg ? msg : sk_strerror(err));
  rc = sk__send_frame(c, h, id_src, 0);
  sk_head_free(h);
  return rc;
}

int sk_conn_error(sk_conn *c, int err, const char *msg) {
  int rc = sk__send_error(c, sk__id_source(c), err, msg);
  if (sk_err_is_fatal(err))
    sk_conn_close(c, 0);
  return rc;
}

void sk__wq_free(sk_conn *c) {
  budget_sub(c, c->queued);
  c->queued = 0;
  for (int i = 0; i < c->ndeferred; i++)
    sk_buf_unref(c->deferred[i]);
  free(c->deferred);
  for (int i = c->wq_first; i < c->wq_n; i++)
    sk_buf_unref(c->wq[i].buf);
  free(c->wq);
}
