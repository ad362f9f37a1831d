/* tls/tls.h - TLS 1.3 contexts for both ends of a native connection
 * (SPEC 8), on OpenSSL's libssl. The server transport (net/tls_conn.c)
 * and the blocking client (client/client.c) build their SSL objects here,
 * so that the policy lives in one place: TLS 1.3 only, SHA-256 suites,
 * psk_dhe_ke, no tickets, no 0-RTT.
 *
 * Modes: an external PSK derived from the shared secret (the default), or a
 * server certificate (--tls-cert), checked by the client against the
 * system store, a CA file or a SubjectPublicKeyInfo pin. */
#ifndef SOCKIT_TLS_TLS_H
#define SOCKIT_TLS_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "sockit/auth.h"

#define SK__TLS_PIN_TEXT SK_TLS_PIN_TEXT

typedef struct sk__tls sk__tls;

typedef struct sk__tls_opts {
  int server;
  const sk_key *key;     /* derive the PSK from this key (NULL: no PSK) */
  const char *cert_file; /* server: PEM certificate (chain) ... */
  const char *key_file;  /* ... and its private key */
  const char *ca_file;   /* client: trust anchors instead of the system store */
  const char *pin;       /* client: "sha256:HEX" of the server's SPKI */
} sk__tls_opts;

/* What the server-side callbacks saw of one handshake (SSL app data). */
typedef struct sk__tls_seen {
  unsigned psk_offered : 1; /* the ClientHello named a PSK identity */
  unsigned psk_matched : 1; /* ... and it was ours */
} sk__tls_seen;

/* A context for o. On failure NULL and *why says what to fix. */
sk__tls *sk__tls_new(const sk__tls_opts *o, const char **why);
void sk__tls_free(sk__tls *t);
int sk__tls_has_psk(const sk__tls *t);

/* A new SSL for one connection, in the role of the context. seen (server,
 * may be NULL) receives what the PSK callback saw; host (client, may be
 * NULL) is checked against the certificate when one is verified. */
SSL *sk__tls_ssl(sk__tls *t, sk__tls_seen *seen, const char *host);

/* The pin text of the server certificate (server contexts with one). */
const char *sk__tls_pin(const sk__tls *t);

/* A BIO on a connected socket that writes with MSG_NOSIGNAL: OpenSSL's
 * own socket BIO uses write(2), whose SIGPIPE would kill a program that
 * did not ignore it (the library never touches signals). NULL on failure;
 * the fd stays the caller's. */
BIO *sk__tls_socket_bio(int fd);

/* A BIO method for a transport that moves the bytes itself (memory it
 * owns, read and written by the event loop): read and write are the
 * caller's, a flush always succeeds. NULL when out of memory; make it once
 * and keep it for the life of the process. */
BIO_METHOD *sk__tls_bio_method(const char *name, int (*read)(BIO *, char *, int),
                               int (*write)(BIO *, const char *, int));

/* The pin text of any certificate. 0 or -1. */
int sk__tls_cert_pin(X509 *cert, char out[SK__TLS_PIN_TEXT + 1]);

/* "TLSv1.3 TLS_AES_128_GCM_SHA256"-style facts of an established SSL. */
const char *sk__tls_version(const SSL *ssl);
const char *sk__tls_cipher(const SSL *ssl);

/* OpenSSL's reason for the last failure on this thread, as static text
 * (never NULL); clears the error queue. */
const char *sk__tls_reason(void);

/* Classify a failed client handshake: SK_EAUTHFAIL when the server refused
 * our PSK, SK_ETLSCERT when its certificate did not verify, else SK_ETLS. */
int sk__tls_client_error(SSL *ssl, int psk_offered);

/* Does this first byte from a peer start a TLS record (handshake or
 * alert)? The sockit/1 length prefix of any head starts with 0x00. */
static inline int sk__tls_record_byte(unsigned char b) {
  return b == 0x16 || b == 0x15;
}

#endif
