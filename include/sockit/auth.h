/* sockit/auth.h - keys and the HMAC-SHA256 challenge-response (SPEC 4.3).
 *
 *   server -> hello  {"nonce":SN}
 *   client -> auth   {"nonce":CN, "mac":hex(HMAC(secret, "sockit/1 client:" SN ":" CN))}
 *   server -> auth_ok{"mac":hex(HMAC(secret, "sockit/1 server:" CN ":" SN))}
 *
 * Nonces are 32 bytes from the kernel CSPRNG, as 64 lowercase hex chars.
 */
#ifndef SOCKIT_AUTH_H
#define SOCKIT_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "sockit/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SK_NONCE_HEX 64 /* chars, without the NUL */
#define SK_MAC_HEX 64
#define SK_KEY_MIN 16   /* shortest secret accepted */
#define SK_KEY_MAX 4096 /* longest key file read */

typedef struct sk_key {
  uint8_t *bytes; /* the secret, owned; wiped by sk_key_clear */
  size_t len;
} sk_key;

/* Load a key file: refuses a file readable by group or others (-EPERM with a
 * message naming chmod 600 in *why), a secret shorter than SK_KEY_MIN after
 * trailing spaces, tabs, CR and LF are cut (SK_EBADKEY), or a file larger
 * than SK_KEY_MAX. *why (optional) points at a static explanation. */
SK_API int sk_key_load(const char *path, sk_key *key, const char **why);

/* Wipe and free a key's bytes. Safe on a zeroed key. */
SK_API void sk_key_clear(sk_key *key);

/* Where the default key lives: $SOCKIT_KEY_FILE, else
 * $XDG_CONFIG_HOME/sockit/key, else ~/.config/sockit/key. Returns 0 or
 * -ENAMETOOLONG / -ENOENT (no HOME). */
SK_API int sk_key_default_path(char *buf, size_t cap);

/* Create a new key file (32 random bytes as 64 hex chars and a newline, mode
 * 0600, parent folders created 0700). Fails with -EEXIST if it exists. */
SK_API int sk_key_generate(const char *path);

/* 32 random bytes from the kernel CSPRNG as 64 lowercase hex + NUL. */
SK_API int sk_auth_nonce(char out[SK_NONCE_HEX + 1]);

/* The client's proof: hex HMAC-SHA256(secret, "sockit/1 client:" SN ":" CN). */
SK_API int sk_auth_client_mac(const sk_key *key, const char *sn, const char *cn,
                              char out[SK_MAC_HEX + 1]);

/* The server's proof: hex HMAC-SHA256(secret, "sockit/1 server:" CN ":" SN). */
SK_API int sk_auth_server_mac(const sk_key *key, const char *sn, const char *cn,
                              char out[SK_MAC_HEX + 1]);

/* Constant-time comparison of two NUL-terminated hex strings; 1 if equal.
 * Takes the same time for any two strings of the expected length. */
SK_API int sk_auth_mac_equal(const char *a, const char *b);

/* Is s exactly 64 lowercase hex chars? */
SK_API int sk_auth_is_hex64(const char *s);

/* ---- authenticated datagrams (SPEC 5) -----------------------------------
 * Every datagram to or from a server with a key ends with a 32-byte trailer
 * HMAC-SHA256(K_udp, frame), where K_udp is derived from the secret by HKDF
 * (RFC 5869) with SHA-256, one output block:
 *   PRK_udp = HMAC-SHA256(key = "sockit/2 udp", msg = secret)
 *   K_udp   = HMAC-SHA256(key = PRK_udp, msg = "udp" || 0x01)
 * The library applies it for you (sk_udp_open_opts); this is for other
 * implementations and tests. */
#define SK_UDP_KEY_LEN 32
#define SK_UDP_TAG_LEN 32

/* K_udp for the key's secret. Returns 0, -EINVAL or SK_EINTERNAL. */
SK_API int sk_auth_udp_key(const sk_key *key, uint8_t out[SK_UDP_KEY_LEN]);

/* The TLS 1.3 external pre-shared key both sides derive from the secret
 * (SPEC 8): psk = HKDF-SHA256(salt "sockit/2 tls", secret, info "psk", 32),
 * identity = "sockit/2:" + the first 16 hex chars of
 * SHA-256("sockit/2 key id:" || secret). */
#define SK_TLS_PSK_LEN 32
#define SK_TLS_ID_LEN 25 /* chars, without the NUL */

typedef struct sk_tls_psk {
  uint8_t psk[SK_TLS_PSK_LEN];
  char identity[SK_TLS_ID_LEN + 1];
} sk_tls_psk;

/* Derive the PSK and identity of key. 0, -EINVAL or SK_EINTERNAL. */
SK_API int sk_auth_tls_psk(const sk_key *key, sk_tls_psk *out);

/* Wipe a derived PSK. NULL is fine. */
SK_API void sk_auth_tls_psk_clear(sk_tls_psk *p);

/* A certificate's pin: "sha256:" + hex SHA-256 of its SubjectPublicKeyInfo. */
#define SK_TLS_PIN_TEXT (7 + 64)

/* A self-signed ECDSA P-256 certificate for `sockit serve --tls-cert`:
 * DIR/cert.pem (0644) and DIR/key.pem (0600), DIR created 0700 if needed,
 * existing files never replaced (-EEXIST). Fills pin. 0 or an error, with
 * *why (optional) naming the file or the step that failed. */
SK_API int sk_tls_cert_generate(const char *dir, char pin[SK_TLS_PIN_TEXT + 1], const char **why);

#ifdef __cplusplus
}
#endif
#endif
