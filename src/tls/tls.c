/* tls.c - TLS 1.3 contexts (tls.h): the one place that decides versions,
 * suites, key exchange and how a peer is authenticated. */
#include "tls/tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "sockit/error.h"

/* Both SHA-256 suites of SPEC 8; the PSK's hash must match the suite's. */
#define SUITES "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256"
#define GROUPS "X25519:P-256"

struct sk__tls {
  SSL_CTX *ctx;
  int server;
  int has_psk;
  sk_tls_psk psk;
  int has_pin;
  unsigned char pin[32]; /* client: the expected SPKI hash */
  char pin_text[SK__TLS_PIN_TEXT + 1];
};

static const unsigned char aes128gcm_sha256[] = {0x13, 0x01};

/* ---- the PSK as an OpenSSL session ---------------------------------------- */

static SSL_SESSION *psk_session(SSL *ssl, const sk__tls *t) {
  const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, aes128gcm_sha256);
  SSL_SESSION *s = cipher ? SSL_SESSION_new() : NULL;
  if (s == NULL)
    return NULL;
  if (!SSL_SESSION_set1_master_key(s, t->psk.psk, sizeof(t->psk.psk)) ||
      !SSL_SESSION_set_cipher(s, cipher) || !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
    SSL_SESSION_free(s);
    return NULL;
  }
  return s;
}

static const sk__tls *tls_of(SSL *ssl) {
  return SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
}

/* Client: offer our identity. md is the hash of a suite already chosen (a
 * HelloRetryRequest); ours are all SHA-256, so it always fits. */
static int use_session_cb(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
                          SSL_SESSION **sess) {
  const sk__tls *t = tls_of(ssl);
  SSL_SESSION *s = psk_session(ssl, t);
  if (s == NULL)
    return 0;
  if (md != NULL && md != SSL_CIPHER_get_handshake_digest(SSL_SESSION_get0_cipher(s))) {
    SSL_SESSION_free(s);
    *sess = NULL;
    *id = NULL;
    *idlen = 0;
    return 1;
  }
  *sess = s;
  *id = (const unsigned char *)t->psk.identity;
  *idlen = SK_TLS_ID_LEN;
  return 1;
}

/* Server: only our identity has a key. Another one means another secret:
 * no session, and with no certificate the handshake then fails. */
static int find_session_cb(SSL *ssl, const unsigned char *id, size_t idlen, SSL_SESSION **sess) {
  const sk__tls *t = tls_of(ssl);
  sk__tls_seen *seen = SSL_get_app_data(ssl);
  int ours = idlen == SK_TLS_ID_LEN && CRYPTO_memcmp(id, t->psk.identity, idlen) == 0;
  if (seen != NULL) {
    seen->psk_offered = 1;
    seen->psk_matched = ours;
  }
  *sess = ours ? psk_session(ssl, t) : NULL;
  return !ours || *sess != NULL;
}

/* ---- certificates ------------------------------------------------------- */

static int spki_sha256(X509 *cert, unsigned char out[32]) {
  unsigned char *der = NULL;
  unsigned int n = 0;
  int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  int ok = len > 0 && EVP_Digest(der, (size_t)len, out, &n, EVP_sha256(), NULL) == 1 && n == 32;
  OPENSSL_free(der);
  return ok ? 0 : -1;
}

static void pin_format(const unsigned char md[32], char out[SK__TLS_PIN_TEXT + 1]) {
  static const char digits[] = "0123456789abcdef";
  memcpy(out, "sha256:", 7);
  for (int i = 0; i < 32; i++) {
    out[7 + 2 * i] = digits[md[i] >> 4];
    out[7 + 2 * i + 1] = digits[md[i] & 15];
  }
  out[SK__TLS_PIN_TEXT] = '\0';
}

int sk__tls_cert_pin(X509 *cert, char out[SK__TLS_PIN_TEXT + 1]) {
  unsigned char md[32];
  if (spki_sha256(cert, md) < 0)
    return -1;
  pin_format(md, out);
  return 0;
}

static int pin_parse(const char *text, unsigned char out[32]) {
  if (strncmp(text, "sha256:", 7) != 0 || strlen(text) != SK__TLS_PIN_TEXT)
    return -1;
  for (int i = 0; i < 32; i++) {
    int v = OPENSSL_hexchar2int((unsigned char)text[7 + 2 * i]) * 16 +
            OPENSSL_hexchar2int((unsigned char)text[7 + 2 * i + 1]);
    if (OPENSSL_hexchar2int((unsigned char)text[7 + 2 * i]) < 0 ||
        OPENSSL_hexchar2int((unsigned char)text[7 + 2 * i + 1]) < 0)
      return -1;
    out[i] = (unsigned char)v;
  }
  return 0;
}

/* Pin mode: the chain proves nothing, the leaf's key is everything. */
static int verify_pin_cb(int preverify, X509_STORE_CTX *store) {
  SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
  const sk__tls *t = tls_of(ssl);
  unsigned char md[32];
  X509 *cert = X509_STORE_CTX_get_current_cert(store);
  (void)preverify;
  if (X509_STORE_CTX_get_error_depth(store) > 0)
    return 1;
  if (cert == NULL || spki_sha256(cert, md) < 0 || CRYPTO_memcmp(md, t->pin, 32) != 0) {
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
    return 0;
  }
  X509_STORE_CTX_set_error(store, X509_V_OK);
  return 1;
}

static int load_server_cert(sk__tls *t, const char *cert_file, const char *key_file,
                            const char **why) {
  X509 *cert;
  if (SSL_CTX_use_certificate_chain_file(t->ctx, cert_file) != 1) {
    *why = "cannot load the --tls-cert file (PEM certificate)";
    return -1;
  }
  if (SSL_CTX_use_PrivateKey_file(t->ctx, key_file, SSL_FILETYPE_PEM) != 1) {
    *why = "cannot load the --tls-key file (PEM private key)";
    return -1;
  }
  if (SSL_CTX_check_private_key(t->ctx) != 1) {
    *why = "--tls-key does not belong to --tls-cert";
    return -1;
  }
  cert = SSL_CTX_get0_certificate(t->ctx);
  if (cert == NULL || sk__tls_cert_pin(cert, t->pin_text) < 0) {
    *why = "cannot read the certificate's public key";
    return -1;
  }
  return 0;
}

static int setup_client_verify(sk__tls *t, const sk__tls_opts *o, const char **why) {
  if (o->pin != NULL) {
    if (pin_parse(o->pin, t->pin) < 0) {
      *why = "--tls-pin must be sha256: and 64 hex digits (printed by sockit serve)";
      return -1;
    }
    t->has_pin = 1;
    SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, verify_pin_cb);
    return 0;
  }
  if (o->ca_file != NULL ? SSL_CTX_load_verify_locations(t->ctx, o->ca_file, NULL) != 1
                         : SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
    *why = o->ca_file ? "cannot load the --tls-ca file (PEM certificates)"
                      : "cannot load the system certificate store";
    return -1;
  }
  SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
  return 0;
}

/* ---- a socket BIO without SIGPIPE ------------------------------------------ */

static BIO_METHOD *nosig_method;
static pthread_once_t nosig_once = PTHREAD_ONCE_INIT;

static int nosig_write(BIO *b, const char *buf, int len) {
  ssize_t n;
  BIO_clear_retry_flags(b);
  do
    n = send(BIO_get_fd(b, NULL), buf, (size_t)len, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    BIO_set_retry_write(b);
  return (int)n;
}

static int nosig_read(BIO *b, char *buf, int len) {
  ssize_t n;
  BIO_clear_retry_flags(b);
  do
    n = recv(BIO_get_fd(b, NULL), buf, (size_t)len, 0);
  while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
    BIO_set_retry_read(b);
  return (int)n;
}

/* The fd lives in an int the BIO owns (its data), made and freed with it:
 * no integer cast to a pointer. */
static int nosig_create(BIO *b) {
  int *fd = malloc(sizeof(*fd));
  if (fd == NULL)
    return 0;
  *fd = -1;
  BIO_set_data(b, fd);
  return 1;
}

static int nosig_destroy(BIO *b) {
  free(BIO_get_data(b));
  BIO_set_data(b, NULL);
  BIO_set_init(b, 0);
  return 1;
}

static long nosig_ctrl(BIO *b, int cmd, long num, void *ptr) {
  int *fd = BIO_get_data(b);
  switch (cmd) {
  case BIO_C_SET_FD:
    *fd = *(int *)ptr;
    BIO_set_init(b, 1);
    return 1;
  case BIO_C_GET_FD:
    if (ptr != NULL)
      *(int *)ptr = *fd;
    return *fd;
  case BIO_CTRL_FLUSH:
    return 1;
  default:
    (void)num;
    return 0;
  }
}

static void make_nosig_method(void) {
  BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                               "sockit socket");
  if (m != NULL && (!BIO_meth_set_write(m, nosig_write) || !BIO_meth_set_read(m, nosig_read) ||
                    !BIO_meth_set_ctrl(m, nosig_ctrl) || !BIO_meth_set_create(m, nosig_create) ||
                    !BIO_meth_set_destroy(m, nosig_destroy))) {
    BIO_meth_free(m);
    m = NULL;
  }
  nosig_method = m; /* lives as long as the process */
}

BIO *sk__tls_socket_bio(int fd) {
  BIO *b;
  pthread_once(&nosig_once, make_nosig_method);
  if (nosig_method == NULL || (b = BIO_new(nosig_method)) == NULL)
    return NULL;
  BIO_set_fd(b, fd, BIO_NOCLOSE);
  return b;
}

/* ---- contexts ------------------------------------------------------------- */

static int base_policy(SSL_CTX *ctx) {
  /* Release the 16 KiB record buffers of idle connections; write records
   * as soon as they are ready (the caller keeps the rest of its data). */
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx, 0); /* external PSKs only: no resumption */
  SSL_CTX_set_max_early_data(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  return SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) == 1 &&
         SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) == 1 &&
         SSL_CTX_set_ciphersuites(ctx, SUITES) == 1 && SSL_CTX_set1_groups_list(ctx, GROUPS) == 1;
}

sk__tls *sk__tls_new(const sk__tls_opts *o, const char **why) {
  sk__tls *t = calloc(1, sizeof(*t));
  const char *dummy;
  if (why == NULL)
    why = &dummy;
  *why = "out of memory";
  if (t == NULL)
    return NULL;
  t->server = o->server;
  t->ctx = SSL_CTX_new(o->server ? TLS_server_method() : TLS_client_method());
  if (t->ctx == NULL || !base_policy(t->ctx)) {
    *why = "cannot set up TLS 1.3 (OpenSSL)";
    goto fail;
  }
  SSL_CTX_set_app_data(t->ctx, t);
  if (o->key != NULL) {
    if (sk_auth_tls_psk(o->key, &t->psk) < 0) {
      *why = "cannot derive the TLS key";
      goto fail;
    }
    t->has_psk = 1;
    if (o->server)
      SSL_CTX_set_psk_find_session_callback(t->ctx, find_session_cb);
    else
      SSL_CTX_set_psk_use_session_callback(t->ctx, use_session_cb);
  }
  if (o->server && o->cert_file != NULL &&
      load_server_cert(t, o->cert_file, o->key_file ? o->key_file : o->cert_file, why) < 0)
    goto fail;
  /* A client that offers the PSK checks a certificate all the same: a
   * server may answer with one instead (--tls-cert), and the HMAC exchange
   * that follows is not bound to the channel, so an unchecked certificate
   * would let a relay read everything. */
  if (!o->server && setup_client_verify(t, o, why) < 0)
    goto fail;
  ERR_clear_error();
  return t;
fail:
  ERR_clear_error();
  sk__tls_free(t);
  return NULL;
}

void sk__tls_free(sk__tls *t) {
  if (t == NULL)
    return;
  SSL_CTX_free(t->ctx);
  sk_auth_tls_psk_clear(&t->psk);
  free(t);
}

int sk__tls_has_psk(const sk__tls *t) {
  return t->has_psk;
}

const char *sk__tls_pin(const sk__tls *t) {
  return t->pin_text[0] ? t->pin_text : NULL;
}

SSL *sk__tls_ssl(sk__tls *t, sk__tls_seen *seen, const char *host) {
  SSL *ssl = SSL_new(t->ctx);
  if (ssl == NULL)
    return NULL;
  if (t->server) {
    SSL_set_app_data(ssl, seen);
    SSL_set_accept_state(ssl);
    return ssl;
  }
  SSL_set_connect_state(ssl);
  if (!t->has_pin && host != NULL && host[0] != '\0') {
    /* a CA-verified certificate must also name the host we asked for */
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    int is_ip = X509_VERIFY_PARAM_set1_ip_asc(vp, host) == 1;
    if (!is_ip && (SSL_set1_host(ssl, host) != 1 || SSL_set_tlsext_host_name(ssl, host) != 1)) {
      SSL_free(ssl);
      return NULL;
    }
  }
  ERR_clear_error();
  return ssl;
}

const char *sk__tls_version(const SSL *ssl) {
  return SSL_get_version(ssl);
}

const char *sk__tls_cipher(const SSL *ssl) {
  const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
  return c ? SSL_CIPHER_standard_name(c) : "none";
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)b, (void)num, (void)ptr;
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

BIO_METHOD *sk__tls_bio_method(const char *name, int (*read)(BIO *, char *, int),
                               int (*write)(BIO *, const char *, int)) {
  BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, name);
  if (m != NULL && (!BIO_meth_set_read(m, read) || !BIO_meth_set_write(m, write) ||
                    !BIO_meth_set_ctrl(m, bio_ctrl) || !BIO_meth_set_create(m, bio_create))) {
    BIO_meth_free(m);
    m = NULL;
  }
  return m;
}

const char *sk__tls_reason(void) {
  unsigned long e = ERR_peek_last_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  ERR_clear_error();
  return r ? r : "TLS failure";
}

int sk__tls_client_error(SSL *ssl, int psk_offered) {
  unsigned long e = ERR_peek_last_error();
  int reason = ERR_GET_REASON(e);
  long verify = SSL_get_verify_result(ssl);
  if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED || (verify != X509_V_OK && !psk_offered))
    return SK_ETLSCERT;
  /* A server that does not know our identity has no way into the handshake
   * but to fail it: handshake_failure (no certificate to fall back to), or
   * decrypt_error / illegal_parameter when the binder does not check. */
  if (psk_offered &&
      (reason == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE || reason == SSL_R_TLSV1_ALERT_DECRYPT_ERROR ||
       reason == SSL_R_SSLV3_ALERT_ILLEGAL_PARAMETER ||
       reason == SSL_R_TLSV1_ALERT_UNKNOWN_PSK_IDENTITY))
    return SK_EAUTHFAIL;
  return SK_ETLS;
}
