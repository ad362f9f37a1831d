/* bench_run.c - the load engine of `sockit bench`.
 *
 * One or two worker threads, each with its own libuv loop and its share of
 * the connections. A connection connects, does the SPEC 4.3 handshake
 * (verifying the server's mac), then keeps up to --pipeline requests in
 * flight. Requests carry their sequence number in the first body bytes and a
 * fixed pattern after it, so every echoed byte is checked, in order, as it
 * streams in. Latency runs from the moment a request was due: in a closed
 * loop that is when it was queued; with --rate it is its slot in the fixed
 * schedule, so a stalled server is charged for every request it delayed
 * (no coordinated omission). The calling thread only coordinates: it starts
 * the traffic when every connection is ready, watches the clock, shows
 * progress and stops the workers.
 *
 * Over TLS (what the probe connection of bench.c found the server to
 * speak), each connection runs OpenSSL over a pair of memory BIOs: bytes
 * read go into the rbio and come out of SSL_read into the worker's read
 * buffer, which the frame reader then walks as if it had come in clear;
 * what the writers build goes through SSL_write, and the wbio's ciphertext
 * is written from where OpenSSL left it (copied aside only when the socket
 * takes part of it).
 */
#include <errno.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "bench.h"
#include "bench_tls.h"
#include "cli.h"
#include "common/addr.h"

#define RBUF_SIZE (256u * 1024) /* one per worker: every read lands here */
#define PBUF_SIZE (64u * 1024)  /* one per worker over TLS: what SSL_read gives */
#define BATCH_MAX 64            /* requests built into one write */
#define SMALL_BODY 4096         /* bodies up to this are copied, larger ones referenced */
#define PORTS_PER_SRC 28000     /* ephemeral ports one source address can use */
#define SEQ_BYTES 8             /* the sequence number leading each body */
#define CHAT_LEAD 24            /* chat text: 16 hex digits of the send time, 8 of the sender */

enum cstate { C_IDLE, C_CONNECTING, C_TLS, C_HELLO, C_AUTH, C_JOIN, C_READY, C_DONE };
enum { CMD_NONE, CMD_GO, CMD_STOP };

typedef struct bworker bworker;

/* What every worker reads and nobody writes once the run starts. */
typedef struct bench_ctx {
  const bench_opts *o;
  sk_key key;
  int key_rc;
  sk_addr addr;
  char host[256];  /* checked against a server certificate ("" for unix:) */
  sk__tls *tls;    /* NULL: plain */
  int src_bind;    /* bind 127.1.0.k source addresses (conns past one port range) */
  uint8_t req[64]; /* the request frame head, prefix included */
  size_t req_len;
  uint8_t resp[64]; /* the expected response head (no prefix) */
  size_t resp_len;
  const char *resp_type; /* its type, for the slow path */
  size_t body;           /* echo body size (0 for ping), chat text size */
  size_t lead;           /* body bytes that differ per request (SEQ_BYTES or CHAT_LEAD) */
  uint8_t *pattern;      /* body bytes after the lead */
  char room[32];         /* chat: the room every member joins */
  atomic_int failed;     /* a fatal error in any worker */
} bench_ctx;

typedef struct bconn {
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_stream_t stream;
    uv_handle_t handle;
  } h;
  uv_connect_t creq;
  uv_write_t wreq;
  bworker *w;
  int index; /* over all workers: picks the source address */
  int slot;  /* position among the worker's ready connections (pacing) */
  enum cstate state;
  unsigned writing : 1, closed : 1, settled : 1;
  uint64_t sent, built, done; /* requests queued, written out, answered */
  uint64_t *due;              /* ring of pipeline slots: when each request was due */
  uint8_t *part;              /* a head split across reads */
  size_t part_len;
  uint64_t body_left, body_off;
  uint8_t stamp[CHAT_LEAD]; /* chat: the lead of the message being read */
  uint8_t *out;             /* heads and small bodies of the write in flight */
  uv_buf_t *iov;
  bench_tls *tls; /* NULL: plain */
  char sn[SK_NONCE_HEX + 1], cn[SK_NONCE_HEX + 1];
} bconn;

struct bworker {
  bench_ctx *g;
  uv_loop_t loop;
  uv_thread_t thread;
  uv_async_t wake;
  uv_poll_t pacer; /* --rate: wakes at the next request's due time */
  int tfd;         /* the pacer's timerfd */
  bconn *c;
  int n, next, connecting;
  bconn **ready; /* READY connections at the start, in slot order */
  int nready;
  uint64_t t_go, t_measure, t_end; /* uv_hrtime() ns; set before CMD_GO */
  double interval;                 /* ns between this worker's requests; 0: closed loop */
  int going, stopping;
  uint8_t *rbuf;
  uint8_t *pbuf; /* TLS: plaintext out of SSL_read */
  sk_hist hist;
  uint64_t requests, body_bytes, says;
  atomic_int cmd, live_ready, live_settled, live_lost, live_senders;
  atomic_uint_fast64_t live_done;
  int code; /* the first failure seen here */
  char error[256];
};

static void conn_flush(bconn *c);
static void pump(bconn *c, uint64_t now);

/* ---- failures ----------------------------------------------------------- */

static void settle(bconn *c) {
  bworker *w = c->w;
  if (c->settled)
    return;
  c->settled = 1;
  w->connecting--;
  atomic_fetch_add(&w->live_settled, 1);
}

static void conn_close(bconn *c) {
  if (c->closed || c->state == C_IDLE)
    return;
  c->closed = 1;
  uv_close(&c->h.handle, NULL);
}

static void connect_next(bworker *w);

/* A connection failed: keep the first reason, close it, and unless this is
 * conns mode (where a lost connection is a result, not an abort) stop all. */
static void conn_fail(bconn *c, int code, const char *fmt, ...) {
  bworker *w = c->w;
  va_list ap;
  if (w->stopping || c->state == C_DONE)
    return;
  if (w->code == 0) {
    w->code = code;
    va_start(ap, fmt);
    vsnprintf(w->error, sizeof(w->error), fmt, ap);
    va_end(ap);
  }
  if (c->state == C_READY)
    atomic_fetch_add(&w->live_lost, 1);
  c->state = C_DONE;
  conn_close(c);
  if (w->g->o->mode != BENCH_CONNS)
    atomic_store(&w->g->failed, 1);
  if (!c->settled) {
    settle(c);
    connect_next(w);
  }
}

/* ---- writing ------------------------------------------------------------ */

static void put_seq(uint8_t *p, uint64_t seq, size_t n) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)(seq >> (8 * i));
}

static void put_hex(uint8_t *p, uint64_t v, int digits) {
  while (digits-- > 0) {
    p[digits] = (uint8_t) "0123456789abcdef"[v & 15];
    v >>= 4;
  }
}

/* The bytes that make request c->built unique: its sequence number (echo),
 * or when it was due and who says it (chat), as text. */
static void put_lead(const bconn *c, uint8_t *p, size_t n) {
  const bench_opts *o = c->w->g->o;
  if (o->mode != BENCH_CHAT) {
    put_seq(p, c->built, n);
    return;
  }
  put_hex(p, c->due[c->built % (uint64_t)o->pipeline], 16);
  put_hex(p + 16, (uint64_t)c->index, 8);
}

/* Lay out requests [built, sent) (at most BATCH_MAX) as iovecs: heads,
 * sequence numbers and small bodies are copied into c->out; a large body's
 * pattern is referenced where it lies. Returns the iovec count. */
static int build(bconn *c) {
  const bench_ctx *g = c->w->g;
  size_t seq_n = g->body < g->lead ? g->body : g->lead, rest = g->body - seq_n;
  uint8_t *p = c->out, *seg = c->out;
  int niov = 0;
  for (int k = 0; c->built < c->sent && k < BATCH_MAX; k++, c->built++) {
    memcpy(p, g->req, g->req_len);
    p += g->req_len;
    put_lead(c, p, seq_n);
    p += seq_n;
    if (rest > 0 && g->body <= SMALL_BODY) {
      memcpy(p, g->pattern + seq_n, rest);
      p += rest;
    } else if (rest > 0) {
      c->iov[niov++] = uv_buf_init((char *)seg, (unsigned)(p - seg));
      c->iov[niov++] = uv_buf_init((char *)g->pattern + seq_n, (unsigned)rest);
      seg = p;
    }
  }
  if (p > seg)
    c->iov[niov++] = uv_buf_init((char *)seg, (unsigned)(p - seg));
  return niov;
}

static void on_written(uv_write_t *req, int status) {
  bconn *c = req->data;
  c->writing = 0;
  if (status < 0)
    conn_fail(c, EXIT_FAIL, "write failed: %s", uv_strerror(status));
  else
    conn_flush(c);
}

/* Skip the first n bytes of iov[0..niov); returns the index of the first
 * iovec with bytes left (adjusted in place). */
static int iov_advance(uv_buf_t *iov, int niov, size_t n) {
  int i = 0;
  while (i < niov && n >= iov[i].len)
    n -= iov[i++].len;
  if (i < niov) {
    iov[i].base += n;
    iov[i].len -= n;
  }
  return i;
}

/* ---- TLS ---------------------------------------------------------------- */

static void tls_push(bconn *c);

static void on_tls_written(uv_write_t *req, int status) {
  bconn *c = req->data;
  c->writing = 0;
  bench_tls_sent(c->tls);
  if (status < 0) {
    conn_fail(c, EXIT_FAIL, "write failed: %s", uv_strerror(status));
    return;
  }
  tls_push(c);
  conn_flush(c);
}

/* Write the ciphertext OpenSSL made: at once as far as the socket takes
 * it, the rest by uv_write (while that runs, new records wait). */
static void tls_push(bconn *c) {
  const uint8_t *p;
  size_t n;
  uv_buf_t b;
  int w;
  if (c->writing || c->state == C_DONE || !bench_tls_out(c->tls, &p, &n))
    return;
  b = uv_buf_init((char *)p, (unsigned)n);
  if ((w = uv_try_write(&c->h.stream, &b, 1)) == UV_EAGAIN)
    w = 0;
  if (w < 0) {
    conn_fail(c, EXIT_FAIL, "write failed: %s", uv_strerror(w));
    return;
  }
  if ((size_t)w == n) {
    bench_tls_sent(c->tls);
    return;
  }
  b.base += w;
  b.len -= (size_t)w;
  c->wreq.data = c;
  if (uv_write(&c->wreq, &c->h.stream, &b, 1, on_tls_written) < 0) {
    conn_fail(c, EXIT_FAIL, "write failed");
    return;
  }
  c->writing = 1;
}

/* Encrypt what is queued, a batch at a time while the socket keeps up. */
static void tls_flush(bconn *c) {
  while (!c->writing && c->built < c->sent && c->state == C_READY) {
    int niov = build(c);
    for (int i = 0; i < niov; i++)
      if (bench_tls_write(c->tls, c->iov[i].base, c->iov[i].len) < 0) {
        conn_fail(c, EXIT_FAIL, "TLS: %s", sk__tls_reason());
        return;
      }
    tls_push(c);
  }
}

/* Write what is queued: try at once, and leave the rest to uv_write. */
static void conn_flush(bconn *c) {
  if (c->tls != NULL) {
    tls_flush(c);
    return;
  }
  while (!c->writing && c->built < c->sent && c->state == C_READY) {
    int niov = build(c), first;
    int w = uv_try_write(&c->h.stream, c->iov, (unsigned)niov);
    if (w == UV_EAGAIN)
      w = 0;
    if (w < 0) {
      conn_fail(c, EXIT_FAIL, "write failed: %s", uv_strerror(w));
      return;
    }
    first = iov_advance(c->iov, niov, (size_t)w);
    if (first == niov)
      continue;
    c->wreq.data = c;
    if (uv_write(&c->wreq, &c->h.stream, c->iov + first, (unsigned)(niov - first), on_written)) {
      conn_fail(c, EXIT_FAIL, "write failed");
      return;
    }
    c->writing = 1;
  }
}

/* Queue one request that was due at time due. */
static void queue_request(bconn *c, uint64_t due) {
  c->due[c->sent % (uint64_t)c->w->g->o->pipeline] = due;
  c->sent++;
}

/* ---- pacing ------------------------------------------------------------- */

/* With --rate the worker's requests form one schedule: request g is due at
 * t_go + g * interval and goes to ready connection g mod nready. How many of
 * slot j's requests are due by now? */
static uint64_t due_count(const bworker *w, int slot, uint64_t now) {
  if (now < w->t_go)
    return 0;
  uint64_t g_due = (uint64_t)((double)(now - w->t_go) / w->interval) + 1;
  if (g_due <= (uint64_t)slot)
    return 0;
  return (g_due - (uint64_t)slot - 1) / (uint64_t)w->nready + 1;
}

/* Top the connection's window up with the requests that are due. */
static void pump(bconn *c, uint64_t now) {
  bworker *w = c->w;
  const bench_opts *o = w->g->o;
  uint64_t limit = w->interval > 0 ? due_count(w, c->slot, now) : UINT64_MAX;
  if (!w->going || c->state != C_READY || (o->mode != BENCH_CONNS && now >= w->t_end))
    return;
  if (o->mode == BENCH_CHAT && c->index >= o->senders)
    return; /* a member that only listens */
  if (o->mode == BENCH_CONNS && limit > 1)
    limit = 1; /* conns: one ping each */
  while (c->sent < limit && c->sent - c->done < (uint64_t)o->pipeline) {
    uint64_t due =
        w->interval > 0
            ? w->t_go + (uint64_t)((double)(c->sent * (uint64_t)w->nready + (uint64_t)c->slot) *
                                   w->interval)
            : now;
    queue_request(c, due);
  }
}

/* Release what is due on every connection, then sleep until the next
 * request is due. libuv timers have millisecond resolution, which would
 * add up to a millisecond to every latency measured from the schedule, and
 * spinning would take a CPU from the server on a small machine: a timerfd
 * (CLOCK_MONOTONIC, the clock of uv_hrtime) wakes the loop to the
 * microsecond. */
static void pace(bworker *w) {
  uint64_t now = uv_hrtime(), g_next = 0, next;
  struct itimerspec its = {{0, 0}, {0, 0}};
  for (int i = 0; i < w->nready; i++) {
    pump(w->ready[i], now);
    conn_flush(w->ready[i]);
  }
  if (now >= w->t_go)
    g_next = (uint64_t)((double)(now - w->t_go) / w->interval) + 1;
  next = w->t_go + (uint64_t)((double)g_next * w->interval);
  its.it_value.tv_sec = (time_t)(next / 1000000000u);
  its.it_value.tv_nsec = (long)(next % 1000000000u);
  if (!w->stopping)
    timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void on_pacer(uv_poll_t *p, int status, int events) {
  bworker *w = p->data;
  uint64_t ticks;
  if (read(w->tfd, &ticks, sizeof(ticks)) == (ssize_t)sizeof(ticks))
    pace(w);
}

/* ---- responses ---------------------------------------------------------- */

static void complete(bconn *c, uint64_t now) {
  bworker *w = c->w;
  uint64_t due = c->due[c->done % (uint64_t)w->g->o->pipeline];
  c->done++;
  if (now >= w->t_measure && now < w->t_end) {
    sk__hist_record(&w->hist, now > due ? now - due : 0);
    w->requests++;
    w->body_bytes += w->g->body;
  }
  atomic_store_explicit(&w->live_done,
                        atomic_load_explicit(&w->live_done, memory_order_relaxed) + 1,
                        memory_order_relaxed);
  pump(c, now);
}

static void response_head(bconn *c, uint64_t size, uint64_t now) {
  if (c->done == c->sent) {
    conn_fail(c, EXIT_FAIL, "a response arrived for no request");
    return;
  }
  c->body_left = size;
  c->body_off = 0;
  if (size == 0)
    complete(c, now);
}

/* Does this piece of the body match what request c->done sent? */
static int body_matches(const bconn *c, const uint8_t *p, size_t n) {
  const bench_ctx *g = c->w->g;
  size_t off = (size_t)c->body_off, i = 0;
  for (; i < n && off + i < SEQ_BYTES; i++)
    if (p[i] != (uint8_t)(c->done >> (8 * (off + i))))
      return 0;
  return i == n || memcmp(p + i, g->pattern + off + i, n - i) == 0;
}

/* A head that is not byte for byte the expected one: parse it properly. */
static void odd_head(bconn *c, const uint8_t *h, size_t n, uint64_t now) {
  int err = 0;
  sk_head *hd = sk_head_parse(h, n, &err);
  const char *type = hd ? sk_head_type(hd) : NULL;
  if (hd == NULL) {
    conn_fail(c, EXIT_FAIL, "the server sent a malformed head");
  } else if (strcmp(type, "error") == 0) {
    const char *code = sk_head_str(hd, "code"), *msg = sk_error_message(hd);
    conn_fail(c, EXIT_FAIL, "server said %s: %s", code ? code : "?", msg ? msg : "");
  } else if (strcmp(type, c->w->g->resp_type) != 0 || sk_head_size(hd) != c->w->g->body) {
    conn_fail(c, EXIT_FAIL, "unexpected %s frame of %llu bytes", type,
              (unsigned long long)sk_head_size(hd));
  } else {
    response_head(c, c->w->g->body, now);
  }
  sk_head_free(hd);
}

/* ---- the handshake ------------------------------------------------------ */

static void on_auth_sent(uv_write_t *req, int status) {
  free(req->data);
  free(req);
}

/* Send one frame built from a head (handshake only: rare, so it may
 * allocate). */
static int send_head(bconn *c, sk_head *h) {
  uint8_t *buf = NULL;
  ssize_t n = sk_head_encode_alloc(h, &buf);
  uv_write_t *req;
  uv_buf_t b;
  if (n < 0)
    return (int)n;
  if (c->tls != NULL) { /* encrypted at once: the record owns the bytes */
    int rc = bench_tls_write(c->tls, buf, (size_t)n);
    free(buf);
    if (rc == 0)
      tls_push(c);
    return rc;
  }
  if ((req = malloc(sizeof(*req))) == NULL) {
    free(buf);
    return -ENOMEM;
  }
  b = uv_buf_init((char *)buf, (unsigned)n);
  req->data = buf;
  if (uv_write(req, &c->h.stream, &b, 1, on_auth_sent) < 0) {
    free(buf);
    free(req);
    return -EPIPE;
  }
  return 0;
}

static void conn_ready(bconn *c) {
  c->state = C_READY;
  atomic_fetch_add(&c->w->live_ready, 1);
  if (c->w->g->o->mode == BENCH_CHAT && c->index < c->w->g->o->senders)
    atomic_fetch_add(&c->w->live_senders, 1);
  settle(c);
  connect_next(c->w);
}

/* Authenticated: ready, or in chat mode first a member of the room. */
static void authed(bconn *c) {
  sk_head *j;
  char nick[16];
  if (c->w->g->o->mode != BENCH_CHAT) {
    conn_ready(c);
    return;
  }
  snprintf(nick, sizeof(nick), "b%d", c->index);
  j = sk_head_new("join");
  if (j == NULL || sk_head_set_str(j, "room", c->w->g->room) < 0 ||
      sk_head_set_str(j, "nick", nick) < 0 || send_head(c, j) < 0)
    conn_fail(c, EXIT_CONN, "cannot send the join frame");
  else
    c->state = C_JOIN;
  sk_head_free(j);
}

/* The server's first word: hello, or an error such as busy or rate_limited. */
static int refused(bconn *c, const sk_head *hd, const char *want) {
  const char *type = hd ? sk_head_type(hd) : NULL;
  if (type != NULL && strcmp(type, want) == 0)
    return 0;
  if (type != NULL && strcmp(type, "error") == 0)
    conn_fail(c, EXIT_CONN, "server said %s: %s",
              sk_head_str(hd, "code") ? sk_head_str(hd, "code") : "?",
              sk_error_message(hd) ? sk_error_message(hd) : "");
  else
    conn_fail(c, EXIT_CONN, "expected %s from the server, got %s", want, type ? type : "junk");
  return 1;
}

static void on_hello(bconn *c, const sk_head *hd) {
  const bench_ctx *g = c->w->g;
  const char *auth = sk_head_str(hd, "auth"), *sn = sk_head_str(hd, "nonce");
  char mac[SK_MAC_HEX + 1];
  sk_head *a;
  if (auth != NULL && (strcmp(auth, "none") == 0 ||
                       (strcmp(auth, "tls-psk") == 0 && g->o->security == BENCH_TLS_PSK))) {
    authed(c); /* a PSK handshake proved the key both ways */
    return;
  }
  if (auth == NULL || strcmp(auth, "hmac-sha256") != 0 || sn == NULL || !sk_auth_is_hex64(sn)) {
    conn_fail(c, EXIT_CONN, "the server's hello offers no usable authentication");
    return;
  }
  if (g->o->client.no_auth || g->key_rc < 0) {
    conn_fail(c, EXIT_CONN,
              g->o->client.no_auth
                  ? "%s requires authentication: drop --no-auth and give --key-file F"
                  : "%s requires authentication and the key file is unusable: "
                    "use --key-file F (mode 0600, 16+ bytes)",
              g->o->addr);
    return;
  }
  memcpy(c->sn, sn, SK_NONCE_HEX + 1);
  a = sk_head_new("auth");
  if (a == NULL || sk_auth_nonce(c->cn) < 0 || sk_auth_client_mac(&g->key, c->sn, c->cn, mac) < 0 ||
      sk_head_set_str(a, "nonce", c->cn) < 0 || sk_head_set_str(a, "mac", mac) < 0 ||
      send_head(c, a) < 0)
    conn_fail(c, EXIT_CONN, "cannot send the auth frame");
  else
    c->state = C_AUTH;
  sk_head_free(a);
}

static void on_auth_ok(bconn *c, const sk_head *hd) {
  char want[SK_MAC_HEX + 1];
  const char *mac = sk_head_str(hd, "mac");
  if (sk_auth_server_mac(&c->w->g->key, c->sn, c->cn, want) < 0 || mac == NULL ||
      !sk_auth_mac_equal(mac, want)) {
    conn_fail(c, EXIT_CONN, "server failed mutual authentication (wrong key?)");
    return;
  }
  authed(c);
}

static void handshake_head(bconn *c, const uint8_t *h, size_t n) {
  static const char *const want[] = {
      [C_HELLO] = "hello", [C_AUTH] = "auth_ok", [C_JOIN] = "joined"};
  int err = 0;
  sk_head *hd = sk_head_parse(h, n, &err);
  if (!refused(c, hd, want[c->state])) {
    if (c->state == C_HELLO)
      on_hello(c, hd);
    else if (c->state == C_AUTH)
      on_auth_ok(c, hd);
    else
      conn_ready(c);
  }
  sk_head_free(hd);
}

/* ---- chat: deliveries -------------------------------------------------- */

/* The "size" of a head that ends in ,"size":N} (what the server writes for
 * msg), or -1: parse it properly then. */
static int64_t tail_size(const uint8_t *h, size_t n) {
  static const char key[] = ",\"size\":";
  size_t i = n - 1, k = sizeof(key) - 1;
  int64_t v = 0, mul = 1;
  if (n < k + 2 || h[i] != '}')
    return -1;
  while (i > 0 && h[i - 1] >= '0' && h[i - 1] <= '9' && mul <= 1000000000000)
    v += (h[--i] - '0') * mul, mul *= 10;
  return mul > 1 && i >= k && memcmp(h + i - k, key, k) == 0 ? v : -1;
}

/* A frame at a member: a msg (its text follows), a presence (ignored), or
 * something that ends the run. */
static void chat_head(bconn *c, const uint8_t *h, size_t n) {
  static const char msg[] = "{\"type\":\"msg\",";
  int64_t size = n > sizeof(msg) && memcmp(h, msg, sizeof(msg) - 1) == 0 ? tail_size(h, n) : -1;
  int err = 0;
  sk_head *hd;
  if (size < 0 && (hd = sk_head_parse(h, n, &err)) != NULL) {
    const char *type = sk_head_type(hd);
    if (strcmp(type, "msg") == 0)
      size = (int64_t)sk_head_size(hd);
    else if (strcmp(type, "presence") != 0)
      refused(c, hd, "msg");
    sk_head_free(hd);
  }
  if (size >= 0 && (uint64_t)size != c->w->g->body)
    conn_fail(c, EXIT_FAIL, "a message of %lld bytes arrived, %zu were said", (long long)size,
              c->w->g->body);
  else if (size >= 0)
    c->body_left = (uint64_t)size, c->body_off = 0;
}

static uint64_t get_hex(const uint8_t *p, int digits, int *bad) {
  uint64_t v = 0;
  for (int i = 0; i < digits; i++) {
    int d = p[i] >= '0' && p[i] <= '9'   ? p[i] - '0'
            : p[i] >= 'a' && p[i] <= 'f' ? p[i] - 'a' + 10
                                         : -1;
    *bad |= d < 0;
    v = v << 4 | (uint64_t)(d & 15);
  }
  return v;
}

/* A whole message arrived at member c: its latency from when it was due,
 * and at its sender one more message out of the window. */
static void delivered(bconn *c, uint64_t now) {
  bworker *w = c->w;
  int bad = 0;
  uint64_t due = get_hex(c->stamp, 16, &bad), from = get_hex(c->stamp + 16, 8, &bad);
  if (bad || due > now) {
    conn_fail(c, EXIT_FAIL, "a message arrived with a garbled time stamp");
    return;
  }
  if (now >= w->t_measure && now < w->t_end) {
    sk__hist_record(&w->hist, now - due);
    w->requests++;
    w->body_bytes += w->g->body;
  }
  atomic_store_explicit(&w->live_done,
                        atomic_load_explicit(&w->live_done, memory_order_relaxed) + 1,
                        memory_order_relaxed);
  if (from != (uint64_t)c->index)
    return;
  if (c->done == c->sent) {
    conn_fail(c, EXIT_FAIL, "a message came back that its sender did not say");
    return;
  }
  c->done++;
  if (now >= w->t_measure && now < w->t_end)
    w->says++;
  pump(c, now);
}

/* Text bytes of the message being read: the lead is kept, the rest must be
 * the pattern. Returns 0 after a failure. */
static int chat_text(bconn *c, const uint8_t *p, size_t n) {
  const bench_ctx *g = c->w->g;
  size_t off = (size_t)c->body_off, i = 0;
  for (; i < n && off + i < CHAT_LEAD; i++)
    c->stamp[off + i] = p[i];
  if (i < n && memcmp(p + i, g->pattern + off + i, n - i) != 0) {
    conn_fail(c, EXIT_FAIL, "a message arrived with other text than was said");
    return 0;
  }
  return 1;
}

static void on_head(bconn *c, const uint8_t *h, size_t n, uint64_t now) {
  const bench_ctx *g = c->w->g;
  if (c->state != C_READY)
    handshake_head(c, h, n);
  else if (g->o->mode == BENCH_CHAT)
    chat_head(c, h, n);
  else if (n == g->resp_len && memcmp(h, g->resp, n) == 0)
    response_head(c, g->body, now); /* the usual case: exactly what we expect */
  else
    odd_head(c, h, n, now);
}

/* ---- reading ------------------------------------------------------------ */

static uint32_t get_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A head split across reads is gathered in c->part (allocated only then).
 * Returns the bytes taken, or 0 after a failure. */
static size_t gather_head(bconn *c, const uint8_t *p, size_t n, uint64_t now) {
  size_t need, take;
  if (c->part == NULL && (c->part = malloc(SK_PREFIX_LEN + SK_HEAD_MAX)) == NULL) {
    conn_fail(c, EXIT_FAIL, "out of memory");
    return 0;
  }
  need = c->part_len < SK_PREFIX_LEN ? SK_PREFIX_LEN : SK_PREFIX_LEN + get_be32(c->part);
  take = n < need - c->part_len ? n : need - c->part_len;
  memcpy(c->part + c->part_len, p, take);
  c->part_len += take;
  if (c->part_len == SK_PREFIX_LEN) {
    uint32_t hlen = get_be32(c->part);
    if (hlen < SK_HEAD_MIN || hlen > SK_HEAD_MAX) {
      conn_fail(c, EXIT_FAIL, "the server sent a bad frame length (%u)", hlen);
      return 0;
    }
  } else if (c->part_len == need) {
    on_head(c, c->part + SK_PREFIX_LEN, need - SK_PREFIX_LEN, now);
    free(c->part);
    c->part = NULL;
    c->part_len = 0;
  }
  return take;
}

/* One head from p: in place when it is whole, else gathered. */
static size_t take_head(bconn *c, const uint8_t *p, size_t n, uint64_t now) {
  if (c->part_len == 0 && n >= SK_PREFIX_LEN) {
    uint32_t hlen = get_be32(p);
    if (hlen < SK_HEAD_MIN || hlen > SK_HEAD_MAX) {
      conn_fail(c, EXIT_FAIL, "the server sent a bad frame length (%u)", hlen);
      return 0;
    }
    if (n - SK_PREFIX_LEN >= hlen) {
      on_head(c, p + SK_PREFIX_LEN, hlen, now);
      return SK_PREFIX_LEN + hlen;
    }
  }
  return gather_head(c, p, n, now);
}

static void on_bytes(bconn *c, const uint8_t *p, size_t n, uint64_t now) {
  while (n > 0 && c->state != C_DONE) {
    size_t used;
    if (c->body_left > 0 && c->w->g->o->mode == BENCH_CHAT) {
      used = n < c->body_left ? n : (size_t)c->body_left;
      if (!chat_text(c, p, used))
        return;
      c->body_off += used;
      if ((c->body_left -= used) == 0)
        delivered(c, now);
    } else if (c->body_left > 0) {
      used = n < c->body_left ? n : (size_t)c->body_left;
      if (!body_matches(c, p, used)) {
        conn_fail(c, EXIT_FAIL, "echo %llu came back wrong (in its bytes %llu..%llu)",
                  (unsigned long long)c->done, (unsigned long long)c->body_off,
                  (unsigned long long)(c->body_off + used - 1));
        return;
      }
      c->body_off += used;
      c->body_left -= used;
      if (c->body_left == 0)
        complete(c, now);
    } else if ((used = take_head(c, p, n, now)) == 0) {
      return;
    }
    p += used;
    n -= used;
  }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  bconn *c = h->data;
  *buf = uv_buf_init((char *)c->w->rbuf, RBUF_SIZE);
}

/* The handshake with what came in: 1 once done (the hello comes next). */
static int tls_handshaken(bconn *c) {
  int rc = bench_tls_handshake(c->tls);
  tls_push(c);
  if (rc == 1)
    c->state = C_HELLO;
  else if (rc < 0)
    conn_fail(c, EXIT_CONN, "the TLS handshake with %s failed: %s%s%s", c->w->g->o->addr,
              sk_strerror(rc), rc == SK_ETLS ? ": " : "", rc == SK_ETLS ? sk__tls_reason() : "");
  return rc == 1;
}

/* Ciphertext in: records decrypted into the worker's plaintext buffer and
 * read as frames, as plain bytes are. */
static void tls_bytes(bconn *c, const uint8_t *p, size_t n, uint64_t now) {
  ssize_t r;
  bench_tls_input(c->tls, p, n);
  if (c->state == C_TLS && !tls_handshaken(c))
    return;
  while ((r = bench_tls_read(c->tls, c->w->pbuf, PBUF_SIZE)) > 0) {
    on_bytes(c, c->w->pbuf, (size_t)r, now);
    if (c->state == C_DONE)
      return;
  }
  if (r == SK_ECLOSED)
    conn_fail(c, c->state == C_READY ? EXIT_FAIL : EXIT_CONN, "the server closed the connection");
  else if (r < 0)
    conn_fail(c, c->state == C_READY ? EXIT_FAIL : EXIT_CONN, "TLS: %s", sk__tls_reason());
  else
    tls_push(c); /* a read may answer (a key update) */
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  bconn *c = s->data;
  if (nread > 0 && c->tls != NULL) {
    tls_bytes(c, (const uint8_t *)buf->base, (size_t)nread, uv_hrtime());
    conn_flush(c);
  } else if (nread > 0) {
    on_bytes(c, (const uint8_t *)buf->base, (size_t)nread, uv_hrtime());
    conn_flush(c); /* one write for everything this read released */
  } else if (nread < 0) {
    conn_fail(c, c->state == C_READY ? EXIT_FAIL : EXIT_CONN,
              "the server closed the connection%s%s", nread == UV_EOF ? "" : ": ",
              nread == UV_EOF ? "" : uv_strerror((int)nread));
  }
}

/* ---- connecting --------------------------------------------------------- */

static void on_connect(uv_connect_t *req, int status) {
  bconn *c = req->data;
  const bench_ctx *g = c->w->g;
  if (status < 0) {
    conn_fail(c, EXIT_CONN, "cannot connect to %s: %s", c->w->g->o->addr, uv_strerror(status));
    return;
  }
  if (c->h.handle.type == UV_TCP)
    uv_tcp_nodelay(&c->h.tcp, 1);
  c->state = C_HELLO;
  if (g->tls != NULL) {
    if ((c->tls = bench_tls_new(g->tls, g->host[0] ? g->host : NULL)) == NULL) {
      conn_fail(c, EXIT_FAIL, "out of memory for TLS");
      return;
    }
    c->state = C_TLS;
  }
  if (uv_read_start(&c->h.stream, on_alloc, on_read) < 0)
    conn_fail(c, EXIT_CONN, "cannot read from %s", g->o->addr);
  else if (c->tls != NULL)
    tls_handshaken(c); /* the ClientHello */
}

/* Past one address's port range, connections come from 127.1.0.k: the
 * whole of 127/8 is local, and IP_BIND_ADDRESS_NO_PORT lets the kernel pick
 * the port at connect time, per destination. */
static int bind_source(bconn *c) {
  struct sockaddr_in src = {.sin_family = AF_INET};
  uv_os_fd_t fd;
  int one = 1;
  src.sin_addr.s_addr = htonl(0x7f010000u + 1u + (uint32_t)(c->index / PORTS_PER_SRC));
  if (uv_fileno(&c->h.handle, &fd) == 0)
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
  return uv_tcp_bind(&c->h.tcp, (const struct sockaddr *)&src, 0);
}

static int start_connect(bconn *c) {
  const bench_ctx *g = c->w->g;
  int rc;
  c->creq.data = c;
  if (g->addr.family == AF_UNIX) {
    if ((rc = uv_pipe_init(&c->w->loop, &c->h.pipe, 0)) < 0)
      return rc;
    c->h.handle.data = c;
    c->state = C_CONNECTING;
    uv_pipe_connect(&c->creq, &c->h.pipe, ((const struct sockaddr_un *)&g->addr.ss)->sun_path,
                    on_connect);
    return 0;
  }
  if ((rc = uv_tcp_init_ex(&c->w->loop, &c->h.tcp, (unsigned)g->addr.family)) < 0)
    return rc;
  c->h.handle.data = c;
  c->state = C_CONNECTING;
  if (g->src_bind && (rc = bind_source(c)) < 0)
    return rc;
  return uv_tcp_connect(&c->creq, &c->h.tcp, (const struct sockaddr *)&g->addr.ss, on_connect);
}

/* Keep --connect-batch handshakes in flight until every connection had its
 * turn (more at once overflows the listen backlog into SYN retries). */
static void connect_next(bworker *w) {
  while (w->next < w->n && w->connecting < w->g->o->connect_batch && !w->stopping) {
    bconn *c = &w->c[w->next++];
    int rc;
    w->connecting++;
    if ((rc = start_connect(c)) < 0)
      conn_fail(c, EXIT_CONN, "cannot connect to %s: %s", w->g->o->addr, uv_strerror(rc));
  }
}

/* ---- worker commands ---------------------------------------------------- */

static void worker_go(bworker *w) {
  uint64_t now = uv_hrtime();
  const bench_opts *o = w->g->o;
  for (int i = 0; i < w->n; i++) /* chat: the schedule is the senders' */
    if (w->c[i].state == C_READY && (o->mode != BENCH_CHAT || w->c[i].index < o->senders)) {
      w->c[i].slot = w->nready;
      w->ready[w->nready++] = &w->c[i];
    }
  w->going = 1;
  if (w->interval > 0 && w->nready > 0) {
    uv_poll_start(&w->pacer, UV_READABLE, on_pacer);
    pace(w);
    return;
  }
  for (int i = 0; i < w->nready; i++) {
    pump(w->ready[i], now);
    conn_flush(w->ready[i]);
  }
}

static void worker_stop(bworker *w) {
  w->stopping = 1;
  for (int i = 0; i < w->n; i++)
    conn_close(&w->c[i]);
  uv_close((uv_handle_t *)&w->pacer, NULL);
  uv_close((uv_handle_t *)&w->wake, NULL);
}

static void on_wake(uv_async_t *a) {
  bworker *w = a->data;
  int cmd = atomic_exchange(&w->cmd, CMD_NONE);
  if (cmd == CMD_GO && !w->going)
    worker_go(w);
  else if (cmd == CMD_STOP && !w->stopping)
    worker_stop(w);
}

static void worker_main(void *arg) {
  bworker *w = arg;
  connect_next(w);
  uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* ---- setting up --------------------------------------------------------- */

static int conn_alloc(bconn *c, const bench_ctx *g) {
  size_t per = g->req_len + (g->body <= SMALL_BODY ? g->body : g->lead);
  int batch = g->o->pipeline < BATCH_MAX ? g->o->pipeline : BATCH_MAX;
  c->due = calloc((size_t)g->o->pipeline, sizeof(*c->due));
  c->out = malloc(per * (size_t)batch);
  c->iov = malloc(sizeof(*c->iov) * (size_t)(2 * batch + 1));
  return c->due && c->out && c->iov ? 0 : -ENOMEM;
}

static void worker_free(bworker *w) {
  for (int i = 0; w->c != NULL && i < w->n; i++) {
    free(w->c[i].due);
    free(w->c[i].out);
    free(w->c[i].iov);
    free(w->c[i].part);
    bench_tls_free(w->c[i].tls);
  }
  free(w->c);
  free(w->ready);
  free(w->rbuf);
  free(w->pbuf);
  if (w->tfd > 0)
    close(w->tfd);
}

static int worker_init(bworker *w, bench_ctx *g, int first, int n) {
  w->g = g;
  w->n = n;
  w->code = EXIT_OK;
  sk__hist_reset(&w->hist);
  w->c = calloc((size_t)(n ? n : 1), sizeof(*w->c));
  w->ready = calloc((size_t)(n ? n : 1), sizeof(*w->ready));
  w->rbuf = malloc(RBUF_SIZE);
  if (g->tls != NULL && (w->pbuf = malloc(PBUF_SIZE)) == NULL)
    return -ENOMEM;
  if (w->c == NULL || w->ready == NULL || w->rbuf == NULL)
    return -ENOMEM;
  for (int i = 0; i < n; i++) {
    w->c[i].w = w;
    w->c[i].index = first + i;
    if (conn_alloc(&w->c[i], g) < 0)
      return -ENOMEM;
  }
  if (uv_loop_init(&w->loop) < 0)
    return -ENOMEM;
  uv_async_init(&w->loop, &w->wake, on_wake);
  w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (w->tfd < 0 || uv_poll_init(&w->loop, &w->pacer, w->tfd) < 0)
    return -EMFILE;
  w->wake.data = w->pacer.data = w;
  return 0;
}

/* chat: every member joins one room of this run; members say the same
 * head, and what comes back is a msg per member (no response head to
 * compare: see chat_head). */
static int make_chat_frame(bench_ctx *g) {
  sk_head *say = sk_head_new("say");
  ssize_t a = -ENOMEM;
  snprintf(g->room, sizeof(g->room), "bench-%ld", (long)getpid());
  g->body = g->o->size;
  g->lead = CHAT_LEAD;
  g->resp_type = "msg";
  if (say && sk_head_set_str(say, "room", g->room) == 0 &&
      sk_head_set_int(say, "size", (int64_t)g->body) == 0)
    a = sk_head_encode(say, g->req, sizeof(g->req));
  sk_head_free(say);
  if (a < 0 || (size_t)a > sizeof(g->req))
    return -ENOMEM;
  g->req_len = (size_t)a;
  return 0;
}

/* The request and the expected response, encoded once by the codec. */
static int make_frames(bench_ctx *g) {
  int echo = g->o->mode == BENCH_ECHO;
  if (g->o->mode == BENCH_CHAT)
    return make_chat_frame(g);
  g->lead = SEQ_BYTES;
  sk_head *req = sk_head_new(echo ? "echo" : "ping"), *resp = sk_head_new(echo ? "echo" : "pong");
  ssize_t a = -ENOMEM, b = -ENOMEM;
  g->body = echo ? g->o->size : 0;
  g->resp_type = echo ? "echo" : "pong";
  if (req && resp &&
      (!echo || (sk_head_set_int(req, "size", (int64_t)g->body) == 0 &&
                 sk_head_set_int(resp, "size", (int64_t)g->body) == 0))) {
    a = sk_head_encode(req, g->req, sizeof(g->req));
    b = sk_head_encode(resp, g->resp, sizeof(g->resp));
  }
  sk_head_free(req);
  sk_head_free(resp);
  if (a < 0 || b < 0 || (size_t)a > sizeof(g->req) || (size_t)b > sizeof(g->resp))
    return -ENOMEM;
  g->req_len = (size_t)a;
  g->resp_len = (size_t)b - SK_PREFIX_LEN;
  memmove(g->resp, g->resp + SK_PREFIX_LEN, g->resp_len);
  return 0;
}

/* A fixed pseudo-random pattern, so that shifted or mixed-up bodies fail
 * (chat: letters, as a message must be text). */
static int make_pattern(bench_ctx *g) {
  size_t n = g->body > g->lead ? g->body : g->lead;
  uint32_t x = 2463534242u;
  g->pattern = malloc(n);
  if (g->pattern == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    g->pattern[i] = g->o->mode == BENCH_CHAT ? (uint8_t)('a' + x % 26) : (uint8_t)x;
  }
  return 0;
}

/* Connections need descriptors: take the hard limit, and as root raise it. */
static int raise_fd_limit(int conns, char *why, size_t cap) {
  struct rlimit rl;
  rlim_t want = (rlim_t)conns + 64;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
    return 0;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
    struct rlimit more = {want, want};
    if (setrlimit(RLIMIT_NOFILE, &more) == 0)
      return 0;
  }
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
    snprintf(why, cap,
             "%d connections need %lu file descriptors and the limit is %lu: raise it "
             "with ulimit -n",
             conns, (unsigned long)want, (unsigned long)rl.rlim_cur);
    return -EMFILE;
  }
  return 0;
}

/* The client context of what the probe found: the PSK of our key, or the
 * certificate check the options ask for. */
static int tls_init(bench_ctx *g, bench_result *r) {
  const bench_opts *o = g->o;
  sk__tls_opts to = {.server = 0, .ca_file = o->client.tls_ca, .pin = o->client.tls_pin};
  const char *why = NULL;
  if (o->security == BENCH_TLS_PSK) {
    if (g->key_rc < 0) {
      snprintf(r->error, sizeof(r->error), "TLS keyed by the secret needs the key file");
      return -1;
    }
    to.key = &g->key;
  }
  if (strncmp(o->addr, "unix:", 5) != 0)
    cli_host_of(o->addr, g->host, sizeof(g->host));
  if ((g->tls = sk__tls_new(&to, &why)) == NULL) {
    snprintf(r->error, sizeof(r->error), "cannot set up TLS: %s", why ? why : sk__tls_reason());
    return -1;
  }
  return 0;
}

static int ctx_init(bench_ctx *g, const bench_opts *o, bench_result *r) {
  const char *why = NULL;
  char path[4096];
  memset(g, 0, sizeof(*g));
  g->o = o;
  g->key_rc = -ENOENT;
  if (!o->client.no_auth) {
    g->key_rc = o->client.key_file ? 0 : sk_key_default_path(path, sizeof(path));
    if (g->key_rc == 0)
      g->key_rc = sk_key_load(o->client.key_file ? o->client.key_file : path, &g->key, &why);
  }
  if (sk__addr_resolve(o->addr, 0, &g->addr, 1, &why) < 1) {
    snprintf(r->error, sizeof(r->error), "bad address '%s': %s", o->addr, why ? why : "unknown");
    return EXIT_USAGE;
  }
  g->src_bind = g->addr.family == AF_INET && o->conns > PORTS_PER_SRC &&
                (ntohl(((struct sockaddr_in *)&g->addr.ss)->sin_addr.s_addr) >> 24) == 127;
  if (raise_fd_limit(o->conns, r->error, sizeof(r->error)) < 0)
    return EXIT_FAIL;
  if (o->security != BENCH_PLAIN && tls_init(g, r) < 0)
    return EXIT_FAIL;
  if (make_frames(g) < 0 || make_pattern(g) < 0) {
    snprintf(r->error, sizeof(r->error), "out of memory");
    return EXIT_FAIL;
  }
  return EXIT_OK;
}

/* ---- coordinating ------------------------------------------------------- */

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
  interrupted = 1;
}

static long rss_kb(long pid) {
  char path[64], line[256];
  long kb = -1;
  FILE *f;
  snprintf(path, sizeof(path), "/proc/%ld/status", pid);
  if ((f = fopen(path, "r")) == NULL)
    return -1;
  while (fgets(line, sizeof(line), f) != NULL)
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
      break;
  fclose(f);
  return kb;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void command(bworker *ws, int nt, int cmd) {
  for (int t = 0; t < nt; t++) {
    atomic_store(&ws[t].cmd, cmd);
    uv_async_send(&ws[t].wake);
  }
}

static void status_of(bworker *ws, int nt, bench_status *st) {
  st->ready = st->lost = 0;
  st->done = 0;
  for (int t = 0; t < nt; t++) {
    st->ready += atomic_load(&ws[t].live_ready);
    st->lost += atomic_load(&ws[t].live_lost);
    st->done += atomic_load_explicit(&ws[t].live_done, memory_order_relaxed);
  }
}

static int all_settled(bworker *ws, int nt) {
  for (int t = 0; t < nt; t++)
    if (atomic_load(&ws[t].live_settled) < ws[t].n)
      return 0;
  return 1;
}

/* Wait for every handshake (or the timeout); returns 0 when traffic may go. */
static int wait_setup(bench_ctx *g, bworker *ws, int nt, bench_progress_fn progress, void *ctx) {
  uint64_t start = uv_hrtime(), limit = (uint64_t)(g->o->timeout * 1e9);
  bench_status st = {.phase = 0, .total = g->o->conns};
  for (int tick = 0; !all_settled(ws, nt); tick++) {
    if (interrupted || (atomic_load(&g->failed) && g->o->mode != BENCH_CONNS) ||
        uv_hrtime() - start > limit)
      return -1;
    sleep_ms(10);
    if (progress && tick % 25 == 24) {
      status_of(ws, nt, &st);
      progress(ctx, &st);
    }
  }
  return 0;
}

/* Set each worker's clock and, with --rate, its share of the rate. */
static void plan(const bench_opts *o, bworker *ws, int nt, int ready) {
  uint64_t go = uv_hrtime() + 1000000;                  /* a moment for the command to arrive */
  for (int t = 0; o->mode == BENCH_CHAT && t < nt; t++) /* chat: the senders share the rate */
    ready = (t == 0 ? 0 : ready) + atomic_load(&ws[t].live_senders);
  for (int t = 0; t < nt; t++) {
    int mine = atomic_load(o->mode == BENCH_CHAT ? &ws[t].live_senders : &ws[t].live_ready);
    ws[t].t_go = go;
    ws[t].t_measure = go + (uint64_t)(o->warmup * 1e9);
    ws[t].t_end =
        o->mode == BENCH_CONNS ? UINT64_MAX : ws[t].t_measure + (uint64_t)(o->duration * 1e9);
    double rate = o->mode == BENCH_CONNS ? (double)ready / (o->hold > 0 ? o->hold : 1e-3) : o->rate;
    ws[t].interval = rate > 0 && mine > 0 ? 1e9 / (rate * mine / ready) : 0;
  }
}

/* Is the run over? conns mode: every ping answered, or the drain timed out. */
static int run_over(const bench_opts *o, const bworker *ws, const bench_status *st, uint64_t now) {
  uint64_t t_go = ws[0].t_go;
  if (o->mode != BENCH_CONNS)
    return now >= ws[0].t_end;
  if (now < t_go + (uint64_t)(o->hold * 1e9))
    return 0;
  return st->done + (uint64_t)st->lost >= (uint64_t)st->ready ||
         now >= t_go + (uint64_t)((o->hold + o->timeout) * 1e9);
}

static void watch_run(bench_ctx *g, bworker *ws, int nt, bench_progress_fn progress, void *ctx) {
  const bench_opts *o = g->o;
  bench_status st = {.total = o->conns};
  for (int tick = 0;; tick++) {
    uint64_t now = uv_hrtime();
    status_of(ws, nt, &st);
    if (interrupted || atomic_load(&g->failed) || run_over(o, ws, &st, now))
      return;
    sleep_ms(10);
    if (progress && tick % 25 == 24) {
      st.elapsed = now > ws[0].t_go ? (double)(now - ws[0].t_go) / 1e9 : 0;
      st.phase = o->mode == BENCH_CONNS ? 3 : now < ws[0].t_measure ? 1 : 2;
      progress(ctx, &st);
    }
  }
}

/* Fold the workers into r: counts, histograms, the first error. */
static void collect(const bench_opts *o, bworker *ws, int nt, bench_result *r, uint64_t stop) {
  uint64_t from = ws[0].t_measure, to = stop < ws[0].t_end ? stop : ws[0].t_end;
  r->seconds = to > from ? (double)(to - from) / 1e9 : 0;
  for (int t = 0; t < nt; t++) {
    sk__hist_merge(&r->hist, &ws[t].hist);
    r->requests += ws[t].requests;
    r->body_bytes += ws[t].body_bytes;
    r->says += ws[t].says;
    r->established += atomic_load(&ws[t].live_ready);
    r->answered += (int)atomic_load(&ws[t].live_done);
    if (r->code == EXIT_OK && ws[t].code != EXIT_OK) {
      r->code = ws[t].code;
      snprintf(r->error, sizeof(r->error), "%s", ws[t].error);
    }
  }
  if (o->mode == BENCH_CONNS && r->code == EXIT_OK && r->answered < o->conns) {
    r->code = r->established < o->conns ? EXIT_CONN : EXIT_FAIL;
    snprintf(r->error, sizeof(r->error), "%d of %d connections answered the ping", r->answered,
             o->conns);
  }
}

static void run_workers(bench_ctx *g, bworker *ws, int nt, bench_result *r,
                        bench_progress_fn progress, void *ctx) {
  const bench_opts *o = g->o;
  uint64_t t0 = uv_hrtime();
  for (int t = 0; t < nt; t++)
    uv_thread_create(&ws[t].thread, worker_main, &ws[t]);
  int ok = wait_setup(g, ws, nt, progress, ctx) == 0;
  r->setup_s = (double)(uv_hrtime() - t0) / 1e9;
  bench_status st;
  status_of(ws, nt, &st);
  if (ok && st.ready > 0) {
    if (o->server_pid > 0) {
      sleep_ms(200); /* let the server finish its accept work */
      r->rss_after_kb = rss_kb(o->server_pid);
    }
    plan(o, ws, nt, st.ready);
    command(ws, nt, CMD_GO);
    watch_run(g, ws, nt, progress, ctx);
  }
  uint64_t stop = uv_hrtime();
  if (o->server_pid > 0 && r->rss_after_kb >= 0) {
    long end = rss_kb(o->server_pid);
    r->rss_after_kb = end > r->rss_after_kb ? end : r->rss_after_kb;
  }
  command(ws, nt, CMD_STOP);
  for (int t = 0; t < nt; t++)
    uv_thread_join(&ws[t].thread);
  collect(o, ws, nt, r, ok ? stop : ws[0].t_measure);
  if (r->code == EXIT_OK && !ok) {
    r->code = EXIT_CONN;
    snprintf(r->error, sizeof(r->error), "%d of %d connections were ready after %.0f s", st.ready,
             o->conns, o->timeout);
  }
}

int bench_run(const bench_opts *o, bench_result *r, bench_progress_fn progress, void *ctx) {
  bench_ctx g = {0};
  int nt = o->threads < o->conns ? o->threads : o->conns;
  bworker *ws = calloc((size_t)nt, sizeof(*ws));
  void (*old)(int) = signal(SIGINT, on_sigint);
  memset(r, 0, sizeof(*r));
  sk__hist_reset(&r->hist);
  r->rss_before_kb = r->rss_after_kb = -1;
  r->code = ws ? ctx_init(&g, o, r) : EXIT_FAIL;
  for (int t = 0, first = 0; r->code == EXIT_OK && t < nt; t++) {
    int n = o->conns / nt + (t < o->conns % nt);
    if (worker_init(&ws[t], &g, first, n) < 0) {
      r->code = EXIT_FAIL;
      snprintf(r->error, sizeof(r->error), "out of memory for %d connections", o->conns);
    }
    first += n;
  }
  if (r->code == EXIT_OK) {
    if (o->server_pid > 0)
      r->rss_before_kb = rss_kb(o->server_pid);
    run_workers(&g, ws, nt, r, progress, ctx);
    r->interrupted = interrupted;
    if (interrupted && r->code == EXIT_OK) {
      r->code = EXIT_FAIL;
      snprintf(r->error, sizeof(r->error), "interrupted");
    }
  }
  for (int t = 0; ws && t < nt; t++) {
    if (ws[t].g != NULL)
      uv_loop_close(&ws[t].loop);
    worker_free(&ws[t]);
  }
  free(ws);
  free(g.pattern);
  sk__tls_free(g.tls);
  sk_key_clear(&g.key);
  signal(SIGINT, old);
  return r->code;
}
