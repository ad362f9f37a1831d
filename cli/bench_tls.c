/* bench_tls.c - TLS for the load engine's connections (bench_tls.h).
 *
 *   socket read --> input (borrowed) --bio_read--> OpenSSL --SSL_read--> caller
 *   caller --SSL_write--> OpenSSL --bio_write--> acc --bench_tls_out--> fly --> socket
 *
 * Two ciphertext buffers: OpenSSL appends to acc while fly, the one the
 * socket is taking, stays where it is; bench_tls_out swaps them. */
#include "bench_tls.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "sockit/error.h"

#define OUT_MAX (64u << 20) /* ciphertext waiting for the socket: a bug past this */

typedef struct ctbuf {
  uint8_t *p;
  size_t len, cap;
} ctbuf;

struct bench_tls {
  SSL *ssl;
  const uint8_t *in; /* the caller's ciphertext, borrowed */
  size_t in_len;
  ctbuf acc, fly;
  unsigned flying : 1, heard : 1, plain : 1, psk : 1;
};

static BIO_METHOD *method;
static pthread_once_t method_once = PTHREAD_ONCE_INIT;

static int bio_read(BIO *b, char *buf, int len) {
  bench_tls *t = BIO_get_data(b);
  size_t n = t->in_len < (size_t)len ? t->in_len : (size_t)len;
  BIO_clear_retry_flags(b);
  if (n == 0) {
    BIO_set_retry_read(b);
    return -1;
  }
  memcpy(buf, t->in, n);
  t->in += n;
  t->in_len -= n;
  return (int)n;
}

static int bio_write(BIO *b, const char *buf, int len) {
  bench_tls *t = BIO_get_data(b);
  ctbuf *a = &t->acc;
  BIO_clear_retry_flags(b);
  if (a->cap - a->len < (size_t)len) {
    size_t cap = a->cap ? a->cap : 16384;
    uint8_t *p;
    while (cap - a->len < (size_t)len && cap <= OUT_MAX)
      cap *= 2;
    if (cap > OUT_MAX || (p = realloc(a->p, cap)) == NULL)
      return -1;
    a->p = p;
    a->cap = cap;
  }
  memcpy(a->p + a->len, buf, (size_t)len);
  a->len += (size_t)len;
  return len;
}

static void make_method(void) {
  method = sk__tls_bio_method("sockit bench", bio_read, bio_write); /* for the process's life */
}

bench_tls *bench_tls_new(sk__tls *ctx, const char *host) {
  bench_tls *t = calloc(1, sizeof(*t));
  BIO *bio = NULL;
  pthread_once(&method_once, make_method);
  if (t == NULL || method == NULL || (t->ssl = sk__tls_ssl(ctx, NULL, host)) == NULL ||
      (bio = BIO_new(method)) == NULL) {
    bench_tls_free(t);
    return NULL;
  }
  BIO_set_data(bio, t);
  SSL_set_bio(t->ssl, bio, bio); /* the SSL owns the one BIO now */
  SSL_set_read_ahead(t->ssl, 1); /* take all there is in one bio_read */
  t->psk = sk__tls_has_psk(ctx) != 0;
  return t;
}

void bench_tls_free(bench_tls *t) {
  if (t == NULL)
    return;
  SSL_free(t->ssl);
  free(t->acc.p);
  free(t->fly.p);
  free(t);
}

void bench_tls_input(bench_tls *t, const uint8_t *p, size_t n) {
  /* A server that answers a ClientHello with anything but a record
   * speaks plain sockit/1 (whose frames start with a 0x00 length byte). */
  if (!t->heard && n > 0) {
    t->heard = 1;
    t->plain = !sk__tls_record_byte(p[0]);
  }
  t->in = p;
  t->in_len = n;
}

int bench_tls_handshake(bench_tls *t) {
  int r;
  if (t->plain)
    return SK_ETLSPLAIN;
  ERR_clear_error();
  if ((r = SSL_connect(t->ssl)) == 1)
    return 1;
  if (SSL_get_error(t->ssl, r) == SSL_ERROR_WANT_READ)
    return 0;
  return sk__tls_client_error(t->ssl, t->psk);
}

ssize_t bench_tls_read(bench_tls *t, uint8_t *buf, size_t cap) {
  int r, e;
  ERR_clear_error();
  r = SSL_read(t->ssl, buf, cap < INT_MAX ? (int)cap : INT_MAX);
  if (r > 0)
    return r;
  e = SSL_get_error(t->ssl, r);
  if (e == SSL_ERROR_WANT_READ)
    return 0;
  return e == SSL_ERROR_ZERO_RETURN ? SK_ECLOSED : SK_ETLS;
}

int bench_tls_write(bench_tls *t, const void *p, size_t n) {
  while (n > 0) { /* the BIO never refuses, so every call takes all it is given */
    int chunk = n < INT_MAX ? (int)n : INT_MAX, r;
    ERR_clear_error();
    if ((r = SSL_write(t->ssl, p, chunk)) <= 0)
      return SK_ETLS;
    p = (const uint8_t *)p + r;
    n -= (size_t)r;
  }
  return 0;
}

int bench_tls_out(bench_tls *t, const uint8_t **p, size_t *n) {
  ctbuf spare;
  if (t->flying || t->acc.len == 0)
    return 0;
  spare = t->fly;
  t->fly = t->acc;
  t->acc = (ctbuf){.p = spare.p, .cap = spare.cap};
  t->flying = 1;
  *p = t->fly.p;
  *n = t->fly.len;
  return 1;
}

void bench_tls_sent(bench_tls *t) {
  t->flying = 0;
  t->fly.len = 0;
}
