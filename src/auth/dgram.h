/* dgram.h - authenticated datagrams (SPEC 5), shared by the server
 * (net/udp.c) and the client (client/udp.c): the HMAC trailer, the "ts"/"n"
 * stamp and the cache that refuses a (ts, n) seen before.
 *
 *   datagram = frame || HMAC-SHA256(K_udp, frame)        (32-byte trailer)
 *   head     = {..., "ts": sender's unix ms, "n": 16 lowercase hex chars}
 *
 * A receiver checks, in this order and cheapest first: the trailer (nothing
 * else is looked at before it verifies), the head, "ts" within 30 s of its
 * own clock, and (ts, n) not accepted in the last 60 s. Whatever fails is
 * dropped without an answer: an answer would tell a forger something, or
 * reflect a replayed datagram at its victim.
 */
#ifndef SOCKIT_AUTH_DGRAM_H
#define SOCKIT_AUTH_DGRAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <sockit/auth.h>
#include <sockit/frame.h>

#define SK__DG_SKEW_MS 30000     /* "ts" may be this far from our clock */
#define SK__DG_REMEMBER_MS 60000 /* an accepted (ts, n) is refused this long */
#define SK__DG_N_HEX 16          /* "n": 8 random bytes as hex */

typedef struct sk__dg_guard sk__dg_guard;

/* HMAC-SHA256 over the pieces as one message. 0 or SK_EINTERNAL. */
int sk__hmac_sha256v(const void *key, size_t klen, const struct iovec *iov, int n, uint8_t out[32]);

/* A guard for the secret (K_udp derived here; the secret is not kept) that
 * remembers at most max_seen accepted (ts, n) per 60 s. NULL when out of
 * memory or the key is unusable. */
sk__dg_guard *sk__dg_guard_new(const sk_key *secret, size_t max_seen);
void sk__dg_guard_free(sk__dg_guard *g);

/* Set "ts" (wall_ms) and a fresh random "n" in h. 0 or -ENOMEM. */
int sk__dg_stamp(sk_head *h, int64_t wall_ms);

/* The trailer of the frame made of the pieces, into tag. 0 or SK_EINTERNAL. */
int sk__dg_tag(const sk__dg_guard *g, const struct iovec *iov, int n, uint8_t tag[SK_UDP_TAG_LEN]);

/* The frame's length when the datagram's trailer verifies (compared in
 * constant time), else -1. */
ssize_t sk__dg_verify(const sk__dg_guard *g, const uint8_t *dgram, size_t len);

/* Is the verified head fresh? 0 (and (ts, n) is now remembered), or a
 * reason to drop: SK_EBADREQ (no integer "ts" or no well-formed "n"),
 * -ERANGE ("ts" more than 30 s off wall_ms), -EALREADY (seen before),
 * SK_EBUSY (the cache is full of the last minute's entries: refusing is
 * safe, forgetting would let a replay through). mono_ms is any monotonic
 * clock in ms; it ages the cache. */
int sk__dg_fresh(sk__dg_guard *g, const sk_head *h, int64_t wall_ms, uint64_t mono_ms);

/* How many (ts, n) are remembered now, for tests. */
size_t sk__dg_remembered(const sk__dg_guard *g);

/* The wall clock in unix ms, as "ts" wants it. */
int64_t sk__dg_wall_ms(void);

#endif
