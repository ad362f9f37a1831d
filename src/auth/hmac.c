/* hmac.c - nonces, the HMAC-SHA256 challenge-response of SPEC 4.3 and the
 * key of authenticated datagrams (SPEC 5). */
#include "auth/dgram.h"
#include "auth/hmac_md5.h"

#include <sockit/auth.h>
#include <sockit/error.h>

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#define NONCE_BYTES (SK_NONCE_HEX / 2)
#define SHA256_BYTES (SK_MAC_HEX / 2)

static void to_hex(const uint8_t *in, size_t n, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = '\0';
}

/* getrandom(2) rather than RAND_bytes: SPEC 4.3 asks for the kernel CSPRNG
 * itself, not a user-space DRBG seeded from it. Without GRND_NONBLOCK it
 * waits only until the pool is first initialised, and requests of at most
 * 256 bytes are never short once it returns. The loop covers EINTR. */
int sk_auth_nonce(char out[SK_NONCE_HEX + 1]) {
  uint8_t raw[NONCE_BYTES];
  size_t got = 0;
  int rc = 0;

  if (!out)
    return -EINVAL;
  while (got < sizeof raw) {
    ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = -errno;
      goto out;
    }
    got += (size_t)n;
  }
  to_hex(raw, sizeof raw, out);
out:
  OPENSSL_cleanse(raw, sizeof raw);
  return rc;
}

/* HMAC-SHA256(key, a || b || ":" || c) as hex. The message is built in one
 * buffer because HMAC() is one-shot; its length is unbounded in principle
 * (nonces come from the peer), so it is heap-allocated. */
static int mac3(const sk_key *key, const char *prefix, const char *b, const char *c,
                char out[SK_MAC_HEX + 1]) {
  uint8_t md[SHA256_BYTES];
  unsigned int mdlen = 0;
  char *msg = NULL;
  size_t lp, lb, lc, len;
  int rc = 0;

  if (!key || !key->bytes || !b || !c || !out || key->len > INT_MAX)
    return -EINVAL;
  lp = strlen(prefix), lb = strlen(b), lc = strlen(c);
  len = lp + lb + 1 + lc;
  msg = malloc(len + 1);
  if (!msg)
    return -ENOMEM;
  memcpy(msg, prefix, lp);
  memcpy(msg + lp, b, lb);
  msg[lp + lb] = ':';
  memcpy(msg + lp + lb + 1, c, lc);
  msg[len] = '\0';
  if (!HMAC(EVP_sha256(), key->bytes, (int)key->len, (const unsigned char *)msg, len, md, &mdlen) ||
      mdlen != sizeof md) {
    rc = SK_EINTERNAL;
    goto out;
  }
  to_hex(md, sizeof md, out);
out:
  OPENSSL_cleanse(md, sizeof md);
  free(msg);
  return rc;
}

int sk_auth_client_mac(const sk_key *key, const char *sn, const char *cn,
                       char out[SK_MAC_HEX + 1]) {
  return mac3(key, "sockit/1 client:", sn, cn, out);
}

int sk_auth_server_mac(const sk_key *key, const char *sn, const char *cn,
                       char out[SK_MAC_HEX + 1]) {
  return mac3(key, "sockit/1 server:", cn, sn, out);
}

/* Both strings are copied into fixed 64-byte slots with a bounded strnlen,
 * so the work done is the same whatever the content; a length mismatch is
 * folded in after the comparison instead of returning early. */
int sk_auth_mac_equal(const char *a, const char *b) {
  char xa[SK_MAC_HEX] = {0}, xb[SK_MAC_HEX] = {0};
  size_t la, lb;
  int same;

  if (!a || !b)
    return 0;
  la = strnlen(a, SK_MAC_HEX + 1);
  lb = strnlen(b, SK_MAC_HEX + 1);
  memcpy(xa, a, la < SK_MAC_HEX ? la : SK_MAC_HEX);
  memcpy(xb, b, lb < SK_MAC_HEX ? lb : SK_MAC_HEX);
  same = CRYPTO_memcmp(xa, xb, SK_MAC_HEX) == 0;
  return same & (la == SK_MAC_HEX) & (lb == SK_MAC_HEX);
}

int sk_auth_is_hex64(const char *s) {
  if (!s || strnlen(s, SK_NONCE_HEX + 1) != SK_NONCE_HEX)
    return 0;
  for (size_t i = 0; i < SK_NONCE_HEX; i++) {
    char ch = s[i];
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
      return 0;
  }
  return 1;
}

int sk__hmac_md5(const void *key, size_t klen, const void *msg, size_t mlen, uint8_t out[16]) {
  unsigned int mdlen = 0;

  if ((!key && klen) || (!msg && mlen) || !out || klen > INT_MAX)
    return -EINVAL;
  /* HMAC() rejects a NULL key even when klen is 0. */
  if (!HMAC(EVP_md5(), key ? key : "", (int)klen, msg ? msg : (const void *)"", mlen, out,
            &mdlen) ||
      mdlen != 16)
    return SK_EINTERNAL;
  return 0;
}

/* HMAC-SHA256 over the pieces in order, as if they were one message: the
 * server signs a head and a body that sit in two buffers. */
int sk__hmac_sha256v(const void *key, size_t klen, const struct iovec *iov, int n,
                     uint8_t out[SHA256_BYTES]) {
  EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
  EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                         OSSL_PARAM_construct_end()};
  size_t len = 0;
  int rc = SK_EINTERNAL;

  if (ctx == NULL || !EVP_MAC_init(ctx, key, klen, params))
    goto out;
  for (int i = 0; i < n; i++)
    if (iov[i].iov_len > 0 && !EVP_MAC_update(ctx, iov[i].iov_base, iov[i].iov_len))
      goto out;
  if (EVP_MAC_final(ctx, out, &len, SHA256_BYTES) && len == SHA256_BYTES)
    rc = 0;
out:
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  return rc;
}

/* HKDF-SHA256 (RFC 5869) of the secret, written out because the two steps
 * are the contract (SPEC 5 and 8) and one output block is all we take:
 * extract with the salt as key, expand with info and counter 1. */
static int hkdf_block(const sk_key *key, const char *salt, const char *info, uint8_t out[32]) {
  static const uint8_t one = 0x01;
  uint8_t prk[SHA256_BYTES];
  int rc;

  if (!key || !key->bytes || !out)
    return -EINVAL;
  struct iovec secret = {key->bytes, key->len};
  struct iovec expand[2] = {{(void *)info, strlen(info)}, {(void *)&one, 1}};
  rc = sk__hmac_sha256v(salt, strlen(salt), &secret, 1, prk);
  if (rc == 0)
    rc = sk__hmac_sha256v(prk, sizeof prk, expand, 2, out);
  OPENSSL_cleanse(prk, sizeof prk);
  return rc;
}

int sk_auth_udp_key(const sk_key *key, uint8_t out[SK_UDP_KEY_LEN]) {
  return hkdf_block(key, "sockit/2 udp", "udp", out);
}

/* The identity is a hash of the secret, never the secret: a peer that
 * sends another identity holds another key. */
static int tls_identity(const sk_key *key, char out[SK_TLS_ID_LEN + 1]) {
  static const char prefix[] = "sockit/2:", hashed[] = "sockit/2 key id:";
  uint8_t md[SHA256_BYTES];
  unsigned int mdlen = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
           EVP_DigestUpdate(ctx, hashed, sizeof hashed - 1) == 1 &&
           EVP_DigestUpdate(ctx, key->bytes, key->len) == 1 &&
           EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == sizeof md;

  EVP_MD_CTX_free(ctx);
  if (!ok)
    return SK_EINTERNAL;
  memcpy(out, prefix, sizeof prefix - 1);
  to_hex(md, 8, out + sizeof prefix - 1); /* 8 bytes: the first 16 hex chars */
  return 0;
}

int sk_auth_tls_psk(const sk_key *key, sk_tls_psk *out) {
  int rc;
  if (!key || !key->bytes || key->len == 0 || !out)
    return -EINVAL;
  rc = hkdf_block(key, "sockit/2 tls", "psk", out->psk);
  if (rc == 0)
    rc = tls_identity(key, out->identity);
  if (rc < 0)
    OPENSSL_cleanse(out, sizeof *out);
  return rc;
}

void sk_auth_tls_psk_clear(sk_tls_psk *p) {
  if (p)
    OPENSSL_cleanse(p, sizeof *p);
}
