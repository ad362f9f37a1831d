/* client.c - the blocking client (sockit/client.h): connect with a timeout,
 * TLS 1.3 over the socket (SPEC 8: keyed by the secret, or a checked
 * certificate), the SPEC 4.3 handshake with the server's mac verified,
 * frames in and out. Reads go through one buffer and the same decoder the
 * server uses. The socket is non-blocking throughout, OpenSSL's included:
 * every wait is a poll() bounded by the client's timeout. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "client/client_int.h"
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/addr.h"
#include "common/sock.h"
#include "sockit/auth.h"
#include "sockit/client.h"
#include "sockit/error.h"
#include "tls/tls.h"

#define CLIENT_RBUF (256u * 1024)
#define CLIENT_TIMEOUT_MS 30000
#define CLIENT_CONNECT_TIMEOUT_MS 10000

struct sk_client {
  int fd;
  int timeout_ms;
  int64_t deadline_ms; /* while connecting: when the connect budget ends (0: none) */
  sk__tls *tls;        /* NULL: plain */
  SSL *ssl;
  int psk;   /* TLS keyed by the secret */
  int nokey; /* plain because no key file exists where we looked */
  uint8_t *rbuf;
  size_t rpos, rlen;
  sk_decoder dec;
  sk_head *hello;
};

const char *sk_client_default_addr(void) {
  const char *a = getenv("SOCKIT_ADDR");
  return a != NULL && a[0] != '\0' ? a : "127.0.0.1:8080";
}

/* Wait for fd to be ready for events; -ETIMEDOUT when the time runs out. */
static int wait_fd(int fd, short events, int timeout_ms) {
  struct pollfd p = {fd, events, 0};
  for (;;) {
    int rc = poll(&p, 1, timeout_ms);
    if (rc > 0)
      return 0;
    if (rc == 0)
      return -ETIMEDOUT;
    if (errno != EINTR)
      return -errno;
  }
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* How long one wait may take: the per-call timeout, cut to what is left of
 * the connect budget while connecting (connect, hello and auth share it). */
static int wait_budget(const sk_client *c) {
  int64_t left;
  if (c->deadline_ms == 0)
    return c->timeout_ms;
  left = c->deadline_ms - now_ms();
  if (left < 0)
    left = 0;
  return c->timeout_ms < 0 || left < c->timeout_ms ? (int)left : c->timeout_ms;
}

static int connect_one(const sk_addr *a, int timeout_ms) {
  int fd = sk__sock_connect(&a->ss, a->len, SOCK_STREAM, timeout_ms, wait_fd), one = 1;
  if (fd >= 0 && a->family != AF_UNIX)
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

/* Wait for what OpenSSL needs after a call returned ret; 0 to call it
 * again, or the error that ends the connection (SK_ETLS leaves OpenSSL's
 * error queue for the caller to read and clear). */
static int tls_wait(sk_client *c, int ret, int closed) {
  int err = SSL_get_error(c->ssl, ret);
  if (err == SSL_ERROR_WANT_READ)
    return wait_fd(c->fd, POLLIN, wait_budget(c));
  if (err == SSL_ERROR_WANT_WRITE)
    return wait_fd(c->fd, POLLOUT, wait_budget(c));
  if (err == SSL_ERROR_ZERO_RETURN)
    return closed;
  if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) /* EOF or a reset */
    return errno == 0 || errno == ECONNRESET ? closed : -errno;
  if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
    ERR_clear_error(); /* a close without close_notify: a close like any other */
    return closed;
  }
  return SK_ETLS;
}

static int tls_write(sk_client *c, const uint8_t *p, size_t n) {
  while (n > 0) {
    int w, rc;
    ERR_clear_error();
    errno = 0;
    w = SSL_write(c->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
      continue;
    }
    if ((rc = tls_wait(c, w, -EPIPE)) < 0) {
      ERR_clear_error();
      return rc;
    }
  }
  return 0;
}

ssize_t sk_client_write_some(sk_client *c, const void *data, size_t n) {
  if (n == 0)
    return 0;
  if (c->ssl != NULL) {
    int w, err;
    ERR_clear_error();
    errno = 0;
    w = SSL_write(c->ssl, data, n > INT_MAX ? INT_MAX : (int)n);
    if (w > 0)
      return w;
    err = SSL_get_error(c->ssl, w);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ)
      return 0;
    ERR_clear_error();
    return err == SSL_ERROR_SYSCALL && errno != 0 ? -errno : SK_ETLS;
  }
  for (;;) {
    ssize_t w = send(c->fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w >= 0)
      return w;
    if (errno != EINTR)
      return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
  }
}

int sk_client_write(sk_client *c, const void *data, size_t n) {
  const uint8_t *p = data;
  if (c->ssl != NULL)
    return tls_write(c, p, n);
  while (n > 0) {
    ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK)
        return -errno;
      int rc = wait_fd(c->fd, POLLOUT, wait_budget(c));
      if (rc < 0)
        return rc;
      continue;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* One recv into buf, waiting up to the timeout: the byte count, or
 * SK_ECLOSED for EOF and a reset, -ETIMEDOUT, or another -errno. */
static ssize_t recv_some(sk_client *c, void *buf, size_t n) {
  while (c->ssl != NULL) {
    int r, rc;
    ERR_clear_error();
    errno = 0;
    r = SSL_read(c->ssl, buf, n > INT_MAX ? INT_MAX : (int)n);
    if (r > 0)
      return r;
    if ((rc = tls_wait(c, r, SK_ECLOSED)) < 0) {
      ERR_clear_error();
      return rc;
    }
  }
  for (;;) {
    ssize_t r = recv(c->fd, buf, n, 0);
    if (r > 0)
      return r;
    if (r == 0)
      return SK_ECLOSED;
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return errno == ECONNRESET ? SK_ECLOSED : -errno;
    int rc = wait_fd(c->fd, POLLIN, wait_budget(c));
    if (rc < 0)
      return rc;
  }
}

/* Read more bytes into the buffer; 0 on EOF is SK_ECLOSED. */
static int fill(sk_client *c) {
  if (c->rpos == c->rlen)
    c->rpos = c->rlen = 0;
  else if (c->rlen == CLIENT_RBUF) {
    memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
    c->rlen -= c->rpos;
    c->rpos = 0;
  }
  ssize_t r = recv_some(c, c->rbuf + c->rlen, CLIENT_RBUF - c->rlen);
  if (r < 0)
    return (int)r;
  c->rlen += (size_t)r;
  return 0;
}

int sk_client_recv_head(sk_client *c, sk_head **head) {
  if (c->dec.in_body)
    return -EINVAL; /* the caller has not read the last body */
  for (;;) {
    ssize_t used = sk_decode_head(&c->dec, c->rbuf + c->rpos, c->rlen - c->rpos, head);
    if (used < 0)
      return (int)used;
    if (used > 0) {
      c->rpos += (size_t)used;
      return 0;
    }
    int rc = fill(c);
    if (rc < 0)
      return rc;
  }
}

/* A large read with nothing buffered goes straight into the caller's
 * memory (bulk downloads: one copy less), never past the body's end. */
static ssize_t read_body_direct(sk_client *c, void *buf, size_t cap) {
  ssize_t r = recv_some(c, buf, sk_decoder_body_avail(&c->dec, cap));
  if (r > 0)
    sk_decoder_body_consume(&c->dec, (size_t)r);
  return r;
}

ssize_t sk_client_read_body(sk_client *c, void *buf, size_t cap) {
  size_t n;
  if (!c->dec.in_body)
    return 0;
  if (c->rpos == c->rlen && cap >= CLIENT_RBUF)
    return read_body_direct(c, buf, cap);
  if (c->rpos == c->rlen) {
    int rc = fill(c);
    if (rc < 0)
      return rc;
  }
  n = sk_decoder_body_avail(&c->dec, c->rlen - c->rpos);
  if (n > cap)
    n = cap;
  memcpy(buf, c->rbuf + c->rpos, n);
  c->rpos += n;
  sk_decoder_body_consume(&c->dec, n);
  return (ssize_t)n;
}

int sk_client_recv(sk_client *c, sk_head **head, uint8_t **body, size_t *n, size_t max_body) {
  uint64_t size;
  uint8_t *b;
  size_t got = 0, cap;
  int rc = sk_client_recv_head(c, head);
  if (rc < 0)
    return rc;
  size = sk_head_size(*head);
  if (size > max_body) {
    sk_head_free(*head);
    *head = NULL;
    return SK_ETOOLARGE;
  }
  /* The buffer grows as the bytes arrive: a size the peer merely claims
   * costs nothing until it really sends that much. */
  cap = size < CLIENT_RBUF ? (size_t)size : CLIENT_RBUF;
  b = malloc(cap + 1);
  rc = b == NULL ? -ENOMEM : 0;
  while (rc == 0 && got < size) {
    if (got == cap) {
      size_t ncap = size - got > cap ? cap * 2 : (size_t)size;
      uint8_t *nb = realloc(b, ncap + 1);
      if (nb == NULL) {
        rc = -ENOMEM;
        break;
      }
      b = nb;
      cap = ncap;
    }
    ssize_t r = sk_client_read_body(c, b + got, cap - got);
    if (r <= 0)
      rc = r < 0 ? (int)r : SK_ECLOSED;
    else
      got += (size_t)r;
  }
  if (rc < 0) {
    free(b);
    sk_head_free(*head);
    *head = NULL;
    return rc;
  }
  b[size] = '\0';
  if (body != NULL)
    *body = size > 0 ? b : (free(b), NULL);
  else
    free(b);
  if (n != NULL)
    *n = (size_t)size;
  return 0;
}

int sk_client_send_head(sk_client *c, sk_head *head, uint64_t size) {
  uint8_t stack[4096], *buf = stack;
  ssize_t need;
  int rc;
  if ((size > 0 || sk_head_has(head, "size")) && sk_head_set_int(head, "size", (int64_t)size) < 0)
    return -ENOMEM;
  need = sk_head_encode(head, stack, sizeof(stack));
  if (need < 0)
    return (int)need;
  if ((size_t)need > sizeof(stack) && (need = sk_head_encode_alloc(head, &buf)) < 0)
    return (int)need;
  rc = sk_client_write(c, buf, (size_t)need);
  if (buf != stack)
    free(buf);
  return rc;
}

int sk_client_send(sk_client *c, sk_head *head, const void *body, size_t n) {
  int rc = sk_client_send_head(c, head, n);
  return rc < 0 || n == 0 ? rc : sk_client_write(c, body, n);
}

const char *sk_error_message(const sk_head *head) {
  return head != NULL ? sk_head_str(head, "message") : NULL;
}

/* An error frame as a code; 0 for any other frame. */
static int frame_error(const sk_head *h) {
  const char *code;
  if (strcmp(sk_head_type(h), "error") != 0)
    return 0;
  code = sk_head_str(h, "code");
  return code != NULL ? sk_err_from_wire(code) : SK_EREMOTE;
}

int sk_client_request(sk_client *c, sk_head *req, const void *body, size_t n, sk_head **resp,
                      uint8_t **resp_body, size_t *resp_n) {
  sk_head *h = NULL;
  int rc = sk_client_send(c, req, body, n);
  if (rc == 0)
    rc = sk_client_recv(c, &h, resp_body, resp_n, SIZE_MAX);
  if (rc < 0)
    return rc;
  rc = frame_error(h);
  if (resp != NULL)
    *resp = h;
  else
    sk_head_free(h);
  return rc;
}

/* ---- the handshake ------------------------------------------------------ */

/* Where the options say the key is: o->key_file, else the default. */
static int key_path(const sk_client_opts *o, char *path, size_t cap) {
  if (o != NULL && o->key_file != NULL)
    return snprintf(path, cap, "%s", o->key_file) < (int)cap ? 0 : -ENAMETOOLONG;
  return sk_key_default_path(path, cap);
}

int sk__client_load_key(const sk_client_opts *o, sk_key *key) {
  char path[4096];
  const char *why;
  int rc = key_path(o, path, sizeof(path));
  return rc < 0 ? rc : sk_key_load(path, key, &why);
}

void sk__client_step(const sk_client_opts *o, sk_client_step s, int err, const char *detail) {
  if (o != NULL && o->on_step != NULL)
    o->on_step(o->step_ctx, s, err, detail);
}

/* Tell on_step which key file authenticates us. */
static void announce_key(const sk_client_opts *o) {
  char path[4096];
  if (key_path(o, path, sizeof(path)) == 0)
    sk__client_step(o, SK_STEP_AUTH, 0, path);
}

/* The key, with its path told to on_step (when the step starts, unless
 * quiet: TLS reads the key before connecting and tells it after, in the
 * order the user thinks of; and for a key that cannot be used, when it
 * fails: the program names the file in its message). */
static int load_key_as(const sk_client_opts *o, sk_key *key, int quiet) {
  char path[4096];
  const char *why;
  int rc = key_path(o, path, sizeof(path));
  if (rc < 0) {
    sk__client_step(o, SK_STEP_AUTH, rc, "no key file path ($HOME is not set)");
    return rc;
  }
  if (!quiet)
    sk__client_step(o, SK_STEP_AUTH, 0, path);
  rc = sk_key_load(path, key, &why);
  if (rc == -ENOENT || rc == -EPERM)
    rc = SK_EBADKEY;
  if (rc < 0)
    sk__client_step(o, SK_STEP_AUTH, rc, path);
  return rc;
}

static int load_key(const sk_client_opts *o, sk_key *key) {
  return load_key_as(o, key, 0);
}

static int authenticate(sk_client *c, const sk_client_opts *o) {
  const char *sn = sk_head_str(c->hello, "nonce");
  char cn[SK_NONCE_HEX + 1], mac[SK_MAC_HEX + 1], expect[SK_MAC_HEX + 1];
  sk_key key = {0};
  sk_head *req = NULL, *resp = NULL;
  const char *smac;
  int rc;

  if (sn == NULL || !sk_auth_is_hex64(sn))
    return SK_EPROTO;
  if ((rc = load_key(o, &key)) < 0)
    return rc;
  rc = -ENOMEM;
  if (sk_auth_nonce(cn) < 0 || sk_auth_client_mac(&key, sn, cn, mac) < 0 ||
      sk_auth_server_mac(&key, sn, cn, expect) < 0 || (req = sk_head_new("auth")) == NULL)
    goto out;
  sk_head_set_str(req, "nonce", cn);
  sk_head_set_str(req, "mac", mac);
  rc = sk_client_request(c, req, NULL, 0, &resp, NULL, NULL);
  if (rc == 0 && strcmp(sk_head_type(resp), "auth_ok") != 0)
    rc = SK_EPROTO;
  /* mutual authentication: a server that cannot prove the key is not ours */
  if (rc == 0 && ((smac = sk_head_str(resp, "mac")) == NULL || !sk_auth_mac_equal(smac, expect)))
    rc = SK_EBADMAC;
out:
  sk_head_free(req);
  sk_head_free(resp);
  sk_key_clear(&key);
  rc = rc == SK_ECLOSED ? SK_EAUTHFAIL : rc;
  if (rc < 0 && rc != SK_EBADKEY)
    sk__client_step(o, SK_STEP_AUTH, rc, sk_strerror(rc));
  return rc;
}

/* Read the hello; a peer that says nothing in time is SK_ENOHELLO, so that
 * the caller can tell "no answer" from "answered, but not sockit". */
static int read_hello(sk_client *c, const sk_client_opts *o) {
  int rc = sk_client_recv(c, &c->hello, NULL, NULL, 0);
  if (rc == -ETIMEDOUT)
    rc = SK_ENOHELLO;
  if (rc == 0 && (rc = frame_error(c->hello)) < 0) {
    /* e.g. rate_limited or busy in place of the hello: the server's words */
    const char *msg = sk_error_message(c->hello);
    sk__client_step(o, SK_STEP_HELLO, rc, msg != NULL ? msg : sk_strerror(rc));
    return rc;
  }
  if (rc == 0 && strcmp(sk_head_type(c->hello), "hello") != 0)
    rc = SK_EPROTO;
  if (rc < 0)
    sk__client_step(o, SK_STEP_HELLO, rc, sk_strerror(rc));
  return rc;
}

/* The first bytes of a plain server: its hello, or an error frame in its
 * place (rate_limited, busy: a TLS server sends those before any TLS). */
static int plain_server_reply(sk_client *c) {
  sk_head *h = NULL;
  int rc;
  SSL_free(c->ssl);
  c->ssl = NULL;
  rc = sk_client_recv(c, &h, NULL, NULL, 0);
  if (rc == 0)
    rc = frame_error(h);
  sk_head_free(h);
  return rc < 0 && rc != SK_ECLOSED && rc != SK_ETOOLARGE ? rc : SK_ETLSPLAIN;
}

/* While the handshake runs, every byte OpenSSL reads from the socket is
 * also kept in the read buffer: if the server turns out to speak plain
 * sockit/1 (its hello may arrive before our ClientHello is even sent),
 * those bytes are the start of its first frame. */
static long keep_handshake_bytes(BIO *b, int oper, const char *argp, size_t len, int argi,
                                 long argl, int ret, size_t *processed) {
  sk_client *c = (sk_client *)BIO_get_callback_arg(b);
  (void)len, (void)argi, (void)argl;
  if (oper == (BIO_CB_READ | BIO_CB_RETURN) && ret > 0 && processed != NULL) {
    size_t n = *processed < CLIENT_RBUF - c->rlen ? *processed : CLIENT_RBUF - c->rlen;
    memcpy(c->rbuf + c->rlen, argp, n);
    c->rlen += n;
  }
  return ret;
}

/* The TLS handshake over the non-blocking socket. A server that answers
 * our ClientHello with anything but a TLS record speaks plain sockit/1. */
static int tls_handshake(sk_client *c) {
  BIO *rbio = SSL_get_rbio(c->ssl);
  int rc;
  BIO_set_callback_arg(rbio, (char *)c);
  BIO_set_callback_ex(rbio, keep_handshake_bytes);
  for (;;) {
    int r;
    ERR_clear_error();
    errno = 0;
    r = SSL_connect(c->ssl);
    if (r == 1) {
      rc = 0;
      break;
    }
    if ((rc = tls_wait(c, r, SK_ECLOSED)) != 0)
      break;
  }
  BIO_set_callback_ex(rbio, NULL);
  if (rc < 0 && c->rlen > 0 && !sk__tls_record_byte(c->rbuf[0])) {
    ERR_clear_error();
    return plain_server_reply(c);
  }
  c->rpos = c->rlen = 0; /* records, not frames */
  if (rc == 0 && SSL_get0_peer_certificate(c->ssl) != NULL)
    c->psk = 0; /* the server answered with a (checked) certificate */
  if (rc == SK_ETLS)
    rc = sk__tls_client_error(c->ssl, c->psk);
  ERR_clear_error();
  return rc;
}

/* Where TLS comes from for this connection (SPEC 8): the secret, a
 * certificate check, or nothing. On 0, c->tls is set or left NULL. */
static int tls_setup(sk_client *c, const sk_client_opts *o, int family) {
  sk__tls_opts to = {.server = 0};
  sk_key key = {0};
  int want = o == NULL || o->tls == SK_TLS_AUTO ? family != AF_UNIX : o->tls == SK_TLS_ON;
  int cert = o != NULL && (o->tls_ca != NULL || o->tls_pin != NULL);
  int rc;
  if (o != NULL && o->tls == SK_TLS_OFF)
    return cert ? SK_EUSAGE : 0;
  if (!want && !cert)
    return 0;
  if (!cert && o != NULL && o->no_auth) {
    if (o->tls != SK_TLS_ON)
      return 0; /* no key, no certificate check asked: nothing to key TLS with */
  } else if (!cert) {
    char path[4096];
    /* No key file of our own and none named: only a --no-auth server
     * (plain, having nothing to key TLS with either) can take us. */
    if ((o == NULL || (o->key_file == NULL && o->tls == SK_TLS_AUTO)) &&
        (key_path(o, path, sizeof(path)) < 0 || access(path, F_OK) < 0)) {
      c->nokey = 1;
      return 0;
    }
    if ((rc = load_key_as(o, &key, 1)) < 0)
      return rc;
    to.key = &key;
  }
  to.ca_file = o ? o->tls_ca : NULL;
  to.pin = o ? o->tls_pin : NULL;
  c->tls = sk__tls_new(&to, NULL);
  sk_key_clear(&key);
  if (c->tls == NULL)
    return cert ? SK_ETLSCERT : SK_ETLS;
  c->psk = sk__tls_has_psk(c->tls);
  return 0;
}

/* The host text of addr, for checking a certificate's name. */
static void addr_host(const char *addr, char *out, size_t cap) {
  const char *end = addr[0] == '[' ? strchr(addr, ']') : strrchr(addr, ':');
  size_t n;
  if (addr[0] == '[')
    addr++;
  n = end != NULL && end >= addr ? (size_t)(end - addr) : strlen(addr);
  if (strncmp(addr, "unix:", 5) == 0 || n >= cap)
    n = 0;
  memcpy(out, addr, n);
  out[n] = '\0';
}

static int start_tls(sk_client *c, const char *addr, const sk_client_opts *o) {
  char host[256];
  int rc;
  if (c->tls == NULL)
    return 0;
  addr_host(addr, host, sizeof(host));
  /* the handshake first, then the key it proves (the order -v shows) */
  sk__client_step(o, SK_STEP_TLS, 0,
                  c->psk ? "keyed by the shared secret" : "checking the server's certificate");
  if (c->psk)
    announce_key(o);
  c->ssl = sk__tls_ssl(c->tls, NULL, host);
  BIO *bio = c->ssl != NULL ? sk__tls_socket_bio(c->fd) : NULL;
  if (bio == NULL)
    return -ENOMEM;
  SSL_set_bio(c->ssl, bio, bio); /* no SIGPIPE: the library leaves signals alone */
  /* Read what the socket has, not a record header and then its body: half
   * the recv calls of a download. Bytes read ahead are invisible to poll,
   * which sk_client_pending accounts for. */
  SSL_set_read_ahead(c->ssl, 1);
  rc = tls_handshake(c);
  if (rc == -ETIMEDOUT)
    rc = SK_ENOHELLO;
  if (rc < 0)
    sk__client_step(o, SK_STEP_HELLO, rc, sk_strerror(rc));
  return rc;
}

static int handshake(sk_client *c, const sk_client_opts *o) {
  const char *auth;
  int rc = read_hello(c, o);
  if (rc < 0 && c->ssl == NULL && c->rlen > 0 && sk__tls_record_byte(c->rbuf[0])) {
    sk_key key = {0};
    /* a TLS server's alert, sent to a peer that said nothing; when we had
     * no key to key TLS with, the missing key is what to tell */
    rc = c->nokey ? load_key(o, &key) : SK_ETLSWANTED;
    sk_key_clear(&key);
    if (rc == 0)
      rc = SK_ETLSWANTED;
  }
  if (rc < 0)
    return rc;
  auth = sk_head_str(c->hello, "auth");
  if (auth != NULL && strcmp(auth, "none") == 0)
    return 0;
  if (auth != NULL && strcmp(auth, "tls-psk") == 0)
    return c->psk ? 0 : SK_EPROTO; /* the handshake proved the key both ways */
  if (o != NULL && o->no_auth)
    rc = SK_EAUTHREQ; /* the server wants a key and we were told not to use one */
  else if (auth == NULL || strcmp(auth, "hmac-sha256") != 0)
    rc = SK_EPROTO;
  else
    return authenticate(c, o);
  sk__client_step(o, SK_STEP_AUTH, rc, sk_strerror(rc));
  return rc;
}

/* Try each address in turn, each with what is left of the budget. */
static int connect_any(sk_client *c, const sk_addr *addrs, int n, const sk_client_opts *o) {
  char text[SK_ADDR_TEXT];
  int rc = -ECONNREFUSED;
  for (int i = 0; i < n; i++) {
    sk__addr_format((const struct sockaddr *)&addrs[i].ss, addrs[i].len, text, sizeof(text));
    sk__client_step(o, SK_STEP_CONNECT, 0, text);
    int fd = connect_one(&addrs[i], wait_budget(c));
    if (fd >= 0) {
      c->fd = fd;
      sk__client_step(o, SK_STEP_HELLO, 0, text);
      return 0;
    }
    rc = fd;
    sk__client_step(o, SK_STEP_CONNECT, rc, sk_strerror(rc));
  }
  return rc;
}

int sk_client_connect(sk_client **out, const char *addr, const sk_client_opts *given) {
  sk_addr addrs[SK_ADDR_MAX];
  sk_client *c;
  sk_client_opts whole;
  const sk_client_opts *opts = sk__sized_copy(&whole, sizeof(whole), given, SK__CLIENT_OPTS_V1);
  const char *why = NULL, *server;
  int n, rc,
      budget =
          opts && opts->connect_timeout_ms ? opts->connect_timeout_ms : CLIENT_CONNECT_TIMEOUT_MS;

  *out = NULL;
  sk__client_step(opts, SK_STEP_RESOLVE, 0, addr);
  n = sk__addr_resolve(addr, 0, addrs, SK_ADDR_MAX, &why);
  if (n < 0) {
    sk__client_step(opts, SK_STEP_RESOLVE, n, why != NULL ? why : sk_strerror(n));
    return n;
  }
  c = calloc(1, sizeof(*c));
  if (c == NULL || (c->rbuf = malloc(CLIENT_RBUF)) == NULL) {
    free(c);
    return -ENOMEM;
  }
  c->timeout_ms = opts && opts->timeout_ms ? opts->timeout_ms : CLIENT_TIMEOUT_MS;
  c->deadline_ms = budget > 0 ? now_ms() + budget : 0;
  sk_decoder_init(&c->dec, 0);
  c->fd = -1;
  /* TLS is set up (key read, context made) before connecting: a TLS
   * server takes a peer silent for 2 s for a plain client, and a slow
   * setup between connect and ClientHello (a loaded machine, a sanitizer
   * build) read as "the server does not accept our key". */
  if ((rc = tls_setup(c, opts, addrs[0].family)) == 0 &&
      (rc = connect_any(c, addrs, n, opts)) == 0 && (rc = start_tls(c, addr, opts)) == 0 &&
      (rc = handshake(c, opts)) == 0) {
    c->deadline_ms = 0;
    server = sk_head_str(c->hello, "server");
    sk__client_step(opts, SK_STEP_READY, 0, server != NULL ? server : "");
    *out = c;
    return 0;
  }
  sk_client_close(c);
  return rc;
}

const sk_head *sk_client_hello(const sk_client *c) {
  return c->hello;
}

static int hello_lists(const sk_client *c, const char *key, const char *name) {
  size_t n = sk_head_arr_len(c->hello, key);
  for (size_t i = 0; i < n; i++) {
    const char *s = sk_head_arr_str(c->hello, key, i);
    if (s != NULL && strcmp(s, name) == 0)
      return 1;
  }
  return 0;
}

int sk_client_has_service(const sk_client *c, const char *name) {
  return hello_lists(c, "services", name);
}

int sk_client_has_hash(const sk_client *c, const char *name) {
  return strcmp(name, "sha256") == 0 || hello_lists(c, "hashes", name);
}

int sk_client_fd(const sk_client *c) {
  return c->fd;
}
int sk_client_pending(const sk_client *c) {
  return c->rpos < c->rlen || (c->ssl != NULL && SSL_has_pending(c->ssl));
}

const char *sk_client_security(const sk_client *c) {
  return c->ssl == NULL ? "plain" : c->psk ? "tls-psk" : "tls-cert";
}

const char *sk_client_tls_version(const sk_client *c) {
  return c->ssl != NULL ? sk__tls_version(c->ssl) : NULL;
}

const char *sk_client_tls_cipher(const sk_client *c) {
  return c->ssl != NULL ? sk__tls_cipher(c->ssl) : NULL;
}
void sk_client_set_timeout(sk_client *c, int timeout_ms) {
  c->timeout_ms = timeout_ms;
}

int sk_client_shutdown_write(sk_client *c) {
  if (c->ssl != NULL) { /* close_notify first: TLS 1.3 half-closes too */
    ERR_clear_error();
    SSL_shutdown(c->ssl);
    ERR_clear_error();
  }
  return shutdown(c->fd, SHUT_WR) < 0 ? -errno : 0;
}

void sk_client_close(sk_client *c) {
  if (c == NULL)
    return;
  SSL_free(c->ssl);
  sk__tls_free(c->tls);
  ERR_clear_error();
  if (c->fd >= 0)
    close(c->fd);
  sk_head_free(c->hello);
  free(c->rbuf);
  free(c);
}
