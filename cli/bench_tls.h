/* bench_tls.h - TLS for the connections of `sockit bench`'s load engine.
 *
 * I/O-free: the engine hands in the ciphertext it read and writes out the
 * ciphertext this gives it; OpenSSL runs over a BIO of our own between the
 * two, so a read is not copied into a memory BIO first and a write is not
 * copied out of one. The policy (TLS 1.3, the PSK of the key, certificate
 * checks) is the library's context (tls/tls.h). */
#ifndef SOCKIT_CLI_BENCH_TLS_H
#define SOCKIT_CLI_BENCH_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tls/tls.h"

typedef struct bench_tls bench_tls;

/* A client connection's TLS in the role of ctx; host (may be NULL) is
 * checked against a server certificate. NULL when out of memory. */
bench_tls *bench_tls_new(sk__tls *ctx, const char *host);
void bench_tls_free(bench_tls *t);

/* Ciphertext read from the socket, for the calls that follow: it is
 * borrowed, not copied, and must be used up (handshake and reads until
 * they want more) before the caller's buffer is reused. */
void bench_tls_input(bench_tls *t, const uint8_t *p, size_t n);

/* Drive the handshake: 1 done, 0 wants more input, or a negative sockit
 * error (SK_EAUTHFAIL: the server does not take our key; SK_ETLSCERT;
 * SK_ETLSPLAIN: the server answered in plain sockit/1; SK_ETLS). */
int bench_tls_handshake(bench_tls *t);

/* Plaintext into buf: > 0 bytes, 0 when the input is used up, or
 * SK_ECLOSED (close_notify) / SK_ETLS. */
ssize_t bench_tls_read(bench_tls *t, uint8_t *buf, size_t cap);

/* Encrypt n bytes; the ciphertext waits for bench_tls_out. 0 or SK_ETLS. */
int bench_tls_write(bench_tls *t, const void *p, size_t n);

/* The ciphertext to write next, moved aside so that it stays put while the
 * socket takes it and later writes go elsewhere: 1 and *p, *n set, or 0
 * when there is none or the previous one is not done (bench_tls_sent). */
int bench_tls_out(bench_tls *t, const uint8_t **p, size_t *n);
void bench_tls_sent(bench_tls *t);

#endif
