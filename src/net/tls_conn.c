/* tls_conn.c - the TLS transport of a native connection (conn_int.h):
 * OpenSSL runs over a BIO of our own, the event loop moves the bytes.
 *
 *   socket --libuv--> in (ciphertext) --SSL_read--> read buffer / sink
 *   queue --SSL_write--> out (ciphertext) --uv_try_write / uv_write--> socket
 *
 * The BIO reads from `in` and appends to `out`; both come from the loop's
 * read-buffer pool and go back when empty, and SSL_MODE_RELEASE_BUFFERS
 * lets OpenSSL drop its record buffers, so an idle connection holds only
 * its SSL object. Nothing above the transport sees a record: the hello is
 * sent once the handshake is done (sk__conn_secured), and the auth
 * deadline bounds the handshake like any other authentication. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "net/conn_int.h"
#include "net/core.h"
#include "sockit/error.h"
#include "tls/tls.h"

#define BUF_CAP SK_RBUF_SIZE   /* in and out: the loop's pooled buffers */
#define RECORD_MAX 16384       /* plaintext per SSL_write: one record */
#define OUT_BATCH (64u * 1024) /* encrypt this much, then write it */

typedef struct sk__tls_conn {
  SSL *ssl;
  sk__tls_seen seen;
  uint8_t *in; /* ciphertext read, not yet taken by OpenSSL */
  size_t in_pos, in_len;
  uint8_t *out; /* ciphertext to write; [out_pos, out_len) */
  size_t out_pos, out_len;
  size_t wbytes; /* bytes of out in the write in flight */
  unsigned ready : 1, writing : 1, failed : 1;
} tls_conn;

static void tls_flush(sk_conn *c);

/* ---- the BIO: OpenSSL's view of in and out -------------------------------- */

static BIO_METHOD *conn_bio_method;
static uv_once_t conn_bio_once = UV_ONCE_INIT;

static int bio_read(BIO *b, char *buf, int len) {
  sk_conn *c = BIO_get_data(b);
  tls_conn *t = c->tls;
  size_t n = t->in_len - t->in_pos;
  BIO_clear_retry_flags(b);
  if (n == 0) {
    BIO_set_retry_read(b);
    return -1;
  }
  if (n > (size_t)len)
    n = (size_t)len;
  memcpy(buf, t->in + t->in_pos, n);
  t->in_pos += n;
  return (int)n;
}

/* Appends to out. While a write is in flight its bytes stay where they
 * are: new ones go after them, and when out is full OpenSSL is told to
 * retry (the write's completion drives it again). */
static int bio_write(BIO *b, const char *buf, int len) {
  sk_conn *c = BIO_get_data(b);
  tls_conn *t = c->tls;
  BIO_clear_retry_flags(b);
  if (t->out == NULL) {
    if ((t->out = sk__rbuf_get(c->loop)) == NULL)
      return -1;
    t->out_pos = t->out_len = 0;
  }
  if (!t->writing && t->out_pos > 0) { /* compact */
    memmove(t->out, t->out + t->out_pos, t->out_len - t->out_pos);
    t->out_len -= t->out_pos;
    t->out_pos = 0;
  }
  if (BUF_CAP - t->out_len < (size_t)len) {
    BIO_set_retry_write(b);
    return -1;
  }
  memcpy(t->out + t->out_len, buf, (size_t)len);
  t->out_len += (size_t)len;
  return len;
}

static void make_bio_method(void) {
  conn_bio_method = sk__tls_bio_method("sockit conn", bio_read, bio_write);
}

/* ---- buffers -------------------------------------------------------------- */

static void release_in_if_empty(sk_conn *c) {
  tls_conn *t = c->tls;
  if (t->in != NULL && t->in_pos == t->in_len) {
    sk__rbuf_put(c->loop, t->in);
    t->in = NULL;
    t->in_pos = t->in_len = 0;
  }
}

static void release_out_if_empty(sk_conn *c) {
  tls_conn *t = c->tls;
  if (t->out != NULL && !t->writing && t->out_pos == t->out_len) {
    sk__rbuf_put(c->loop, t->out);
    t->out = NULL;
    t->out_pos = t->out_len = 0;
  }
}

/* ---- failures ------------------------------------------------------------- */

/* A record that does not decrypt, a protocol violation: the connection
 * ends (a put in progress keeps its part file for a resume). */
static void tls_failed(sk_conn *c, const char *reason) {
  c->tls->failed = 1;
  sk_conn_log(c, "tls_error", "reason", 's', reason, NULL);
  tls_flush(c); /* the alert OpenSSL wrote, if the socket takes it */
  sk__conn_hard_close(c);
}

/* A failed handshake that offered a PSK identity is a failed
 * authentication: another key (the identity is a hash of the key) or a
 * forged binder. Anything else (garbage, a plain client, a scanner) is a
 * connection that never tried to authenticate, and does not count. */
static void handshake_failed(sk_conn *c) {
  tls_conn *t = c->tls;
  const char *reason = sk__tls_reason();
  t->failed = 1;
  sk__conn_metric(c, SK_M_TLS_FAILURES, 1);
  if (t->seen.psk_offered)
    sk__conn_metric(c, SK_M_AUTH_FAILURES, 1); /* a wrong key, as SPEC 4.3 counts it */
  if (t->seen.psk_offered) {
    sk__ratelimit_fail(c->srv->rl, c->src, sk__now_mono());
    sk_conn_log(c, "auth_fail", "reason", 's',
                t->seen.psk_matched ? "tls-psk binder did not verify" : "unknown tls-psk identity",
                NULL);
  } else {
    sk_conn_log(c, "tls_fail", "reason", 's', reason, NULL);
  }
  tls_flush(c); /* the alert */
  sk_conn_close(c, 0);
}

static void handshake_done(sk_conn *c) {
  tls_conn *t = c->tls;
  t->ready = 1;
  c->tls_psk = sk__tls_has_psk(c->srv->tls); /* a PSK context never sends a certificate */
  if (c->tls_psk)
    sk__ratelimit_success(c->srv->rl, c->src, sk__now_mono());
  sk_conn_log(c, c->tls_psk ? "auth_ok" : "tls", "auth", 's', c->tls_psk ? "tls-psk" : "cert",
              "tls", 's', sk__tls_version(t->ssl), "cipher", 's', sk__tls_cipher(t->ssl), NULL);
  sk__conn_secured(c);
}

static void drive_handshake(sk_conn *c) {
  tls_conn *t = c->tls;
  int rc, err;
  ERR_clear_error();
  rc = SSL_do_handshake(t->ssl);
  if (rc == 1) {
    handshake_done(c);
    tls_flush(c);
    return;
  }
  err = SSL_get_error(t->ssl, rc);
  tls_flush(c); /* our flight, if the step made one */
  if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE && !c->hard_closing)
    handshake_failed(c);
}

/* ---- reading -------------------------------------------------------------- */

static void tls_alloc(sk_conn *c, uv_buf_t *buf) {
  tls_conn *t = c->tls;
  if (t->in == NULL) {
    t->in = sk__rbuf_get(c->loop);
    t->in_pos = t->in_len = 0;
    if (t->in == NULL) {
      buf->base = NULL;
      buf->len = 0;
      return;
    }
  }
  if (t->in_pos > 0) {
    memmove(t->in, t->in + t->in_pos, t->in_len - t->in_pos);
    t->in_len -= t->in_pos;
    t->in_pos = 0;
  }
  buf->base = (char *)t->in + t->in_len;
  buf->len = BUF_CAP - t->in_len;
}

static void tls_read(sk_conn *c, size_t n, int lent) {
  tls_conn *t = c->tls;
  (void)lent;
  t->in_len += n;
  if (c->closing) { /* lingering: drop what arrives */
    t->in_pos = t->in_len;
    release_in_if_empty(c);
    return;
  }
  if (!t->ready) {
    drive_handshake(c);
    if (!t->ready || c->closing) {
      if (!c->hard_closing)
        release_in_if_empty(c);
      return;
    }
  }
  sk__conn_process(c);
  if (!c->hard_closing)
    release_in_if_empty(c);
}

static ssize_t tls_pull(sk_conn *c) {
  tls_conn *t = c->tls;
  uv_buf_t b;
  int n, err;
  if (!t->ready || c->closing || t->failed)
    return 0;
  sk__conn_app_buf(c, &b);
  if (b.len == 0) {
    c->lent = 0;
    return 0;
  }
  ERR_clear_error();
  n = SSL_read(t->ssl, b.base, b.len > INT_MAX ? INT_MAX : (int)b.len);
  if (n > 0) {
    sk__conn_app_got(c, (size_t)n);
    if (t->out != NULL && t->out_pos < t->out_len)
      sk__mark_dirty(c); /* OpenSSL answered something (a key update) */
    return n;
  }
  c->lent = 0;
  err = SSL_get_error(t->ssl, n);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
    return 0;
  if (err == SSL_ERROR_ZERO_RETURN) { /* close_notify: the peer's side ended */
    sk__conn_eof(c, UV_EOF);
    return -1;
  }
  tls_failed(c, sk__tls_reason());
  return -1;
}

static int tls_can_read(const sk_conn *c) {
  const tls_conn *t = c->tls;
  return t->in == NULL || t->in_len < BUF_CAP || t->in_pos > 0;
}

/* ---- writing -------------------------------------------------------------- */

static void on_write(uv_write_t *req, int status) {
  sk_conn *c = req->data;
  tls_conn *t = c->tls;
  free(req);
  t->writing = 0;
  if (status < 0) {
    sk__conn_hard_close(c);
  } else {
    t->out_pos += t->wbytes;
    t->wbytes = 0;
    if (!t->ready && !c->closing && !c->hard_closing)
      drive_handshake(c); /* it may have waited for room in out */
    tls_flush(c);
    sk__conn_after_drain(c);
  }
  sk_conn_unref(c);
}

/* Encrypt queued bytes into out until a batch is ready. 0, or -1 when
 * OpenSSL failed (the connection is then closed). */
static int encrypt_queue(sk_conn *c) {
  tls_conn *t = c->tls;
  while (c->queued > 0 && (t->out == NULL || t->out_len - t->out_pos < OUT_BATCH)) {
    size_t n;
    const uint8_t *p = sk__wq_front(c, &n);
    int w, err;
    if (n > RECORD_MAX)
      n = RECORD_MAX;
    ERR_clear_error();
    w = SSL_write(t->ssl, p, (int)n);
    if (w > 0) {
      sk__wq_consume(c, (size_t)w);
      continue;
    }
    err = SSL_get_error(t->ssl, w);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ)
      break;
    tls_failed(c, sk__tls_reason());
    return -1;
  }
  return 0;
}

static void tls_flush(sk_conn *c) {
  tls_conn *t = c->tls;
  uv_write_t *req;
  uv_buf_t b;
  if (t->writing || c->hard_closing)
    return;
  if (!t->ready && c->queued > 0) { /* frames before the handshake cannot be sent */
    size_t dropped = c->queued;
    sk__wq_consume(c, dropped);
    c->bytes_out -= dropped;
  }
  for (;;) {
    if ((t->out == NULL || t->out_pos == t->out_len) &&
        (!t->ready || t->failed || c->queued == 0 || encrypt_queue(c) < 0))
      break;
    if (t->out == NULL || t->out_pos == t->out_len)
      break;
    b = uv_buf_init((char *)t->out + t->out_pos, (unsigned)(t->out_len - t->out_pos));
    int w = uv_try_write(&c->h.stream, &b, 1);
    if (w == UV_EAGAIN || w == UV_ENOSYS)
      break;
    if (w < 0) {
      sk__conn_hard_close(c);
      return;
    }
    t->out_pos += (size_t)w;
    if ((size_t)w < b.len)
      break; /* the socket is full: wait for it below */
  }
  if (c->hard_closing)
    return;
  if (t->out == NULL || t->out_pos == t->out_len) {
    release_out_if_empty(c);
    return;
  }
  b = uv_buf_init((char *)t->out + t->out_pos, (unsigned)(t->out_len - t->out_pos));
  if ((req = malloc(sizeof(*req))) == NULL) {
    sk__conn_hard_close(c);
    return;
  }
  req->data = c;
  if (uv_write(req, &c->h.stream, &b, 1, on_write) < 0) {
    free(req);
    sk__conn_hard_close(c);
    return;
  }
  t->writing = 1;
  t->wbytes = b.len;
  sk_conn_ref(c);
}

static size_t tls_unsent(const sk_conn *c) {
  const tls_conn *t = c->tls;
  return t->out != NULL ? t->out_len - t->out_pos : 0;
}

/* close_notify, best effort: the socket is drained when this runs. */
static void tls_goodbye(sk_conn *c) {
  tls_conn *t = c->tls;
  if (!t->ready || t->failed)
    return;
  ERR_clear_error();
  SSL_shutdown(t->ssl);
  ERR_clear_error();
  tls_flush(c);
}

/* A TLS client sends its ClientHello as soon as it is connected. A peer
 * that has said nothing after SK_TLS_SILENCE_MS is most likely a plain
 * sockit client waiting for the hello that a TLS server never sends first:
 * it gets a TLS alert record (fatal, handshake_failure) and a close, well
 * within its own connect budget, so that it can tell the user to drop
 * --no-tls instead of just timing out. 1: the connection was ended. */
static int tls_deadline(sk_conn *c) {
  static const uint8_t alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28};
  uv_buf_t b = uv_buf_init((char *)alert, sizeof(alert));
  if (c->tls->ready || c->bytes_in > 0)
    return 0;
  sk_conn_log(c, "tls_fail", "reason", 's', "no ClientHello (a plain client?)", NULL);
  uv_try_write(&c->h.stream, &b, 1);
  sk_conn_close(c, 0);
  return 1;
}

static void tls_release(sk_conn *c) {
  tls_conn *t = c->tls;
  if (t == NULL)
    return;
  SSL_free(t->ssl); /* frees the BIO */
  if (t->in != NULL)
    sk__rbuf_put(c->loop, t->in);
  if (t->out != NULL)
    sk__rbuf_put(c->loop, t->out);
  free(t);
  c->tls = NULL;
}

static const sk_transport tls_transport = {
    .name = "tls",
    .alloc = tls_alloc,
    .read = tls_read,
    .pull = tls_pull,
    .can_read = tls_can_read,
    .flush = tls_flush,
    .unsent = tls_unsent,
    .goodbye = tls_goodbye,
    .deadline = tls_deadline,
    .release = tls_release,
};

int sk__tls_conn_start(sk_conn *c) {
  tls_conn *t;
  BIO *bio;
  uv_once(&conn_bio_once, make_bio_method);
  if (conn_bio_method == NULL || c->srv->tls == NULL)
    return SK_EINTERNAL;
  if ((t = calloc(1, sizeof(*t))) == NULL)
    return -ENOMEM;
  t->ssl = sk__tls_ssl(c->srv->tls, &t->seen, NULL);
  bio = t->ssl ? BIO_new(conn_bio_method) : NULL;
  if (bio == NULL) {
    SSL_free(t->ssl);
    free(t);
    ERR_clear_error();
    return -ENOMEM;
  }
  BIO_set_data(bio, c);
  SSL_set_bio(t->ssl, bio, bio);
  c->tls = t;
  c->tp = &tls_transport;
  return 0;
}
