/* seed.h - the seed wire's formats (SPEC 6): parsers for the tutorial's
 * unframed programs. Pure functions: no I/O, no allocation that outlives a
 * call, so that they can be unit-tested and fuzzed alone. The connection
 * handling is in src/net/seed_conn.c and src/services/seed/. */
#ifndef SOCKIT_WIRE_SEED_H
#define SOCKIT_WIRE_SEED_H

#include <stddef.h>
#include <stdint.h>

#define SK_SEED_HEAD_MIN 2u          /* "{}" */
#define SK_SEED_HEAD_MAX 65536u      /* the native head limit (SPEC 4.1) */
#define SK_SEED_NAME_MAX 255         /* one path component */
#define SK_SEED_EXEC_MAX (64u << 20) /* exec reply: fits struct.pack('i') */
#define SK_SEED_AUTH_DIGITS 20       /* challenge length: ~66 bits */
#define SK_SEED_MAC_LEN 16           /* HMAC-MD5 digest */

/* The put head as the tutorial's upload client sends it. */
typedef struct sk_seed_put_head {
  char name[SK_SEED_NAME_MAX + 1]; /* base name of "filename", safe under a root */
  uint64_t size;                   /* "filesize" */
} sk_seed_put_head;

/* Python's int() on the ASCII bytes p[0..n): optional surrounding
 * whitespace, an optional sign, then decimal digits only. Returns 0 with
 * *out set, or SK_EBADREQ (empty, other bytes, or out of int64 range). */
int sk__seed_parse_ts(const char *p, size_t n, int64_t *out);

/* struct.unpack('i', p) on a little-endian host, as the put head length:
 * returns 0 with *out in SK_SEED_HEAD_MIN..SK_SEED_HEAD_MAX, or SK_ETOOLARGE
 * (also for negative values) / SK_EBADREQ (too short). Checked before the
 * caller allocates the head. */
int sk__seed_head_len(const uint8_t p[4], uint32_t *out);

/* struct.pack('i', v) for 0 <= v <= INT32_MAX: four little-endian bytes. */
void sk__seed_put_u32le(uint8_t out[4], uint32_t v);

/* The name a file from path p[0..n) is saved as: the part after the last
 * '/' or '\\' (the tutorial's client runs on Windows too). Refused with
 * SK_EFORBIDDEN: an empty name, ".", "..", a hidden name (leading '.'), a
 * control byte or NUL, or more than SK_SEED_NAME_MAX bytes. Returns the
 * length written to out (NUL-terminated; cap > SK_SEED_NAME_MAX). */
int sk__seed_base_name(const char *p, size_t n, char *out, size_t cap);

/* Parse the JSON head json[0..n): an object with a string "filename" and an
 * integer "filesize" in 0..max_file ("filepath" and other members are
 * ignored: the client's own folders mean nothing here). Returns 0,
 * SK_EBADREQ (not such an object), SK_ETOOLARGE (filesize over max_file) or
 * SK_EFORBIDDEN (no usable base name). */
int sk__seed_put_head_parse(const char *json, size_t n, uint64_t max_file, sk_seed_put_head *out);

/* 1 when a and b (n bytes each) are equal; the time taken does not depend on
 * where they differ. */
int sk__seed_equal(const uint8_t *a, const uint8_t *b, size_t n);

/* The auth challenge: `digits` decimal digits (the first not 0) drawn from
 * the random bytes rnd[0..n) by rejection sampling, so that every digit is
 * uniform. Writes digits + NUL to out (cap > digits). Returns digits, or
 * -EAGAIN when rnd ran out before enough digits (draw more and retry). */
int sk__seed_digits(const uint8_t *rnd, size_t n, char *out, size_t cap, size_t digits);

/* Seed chat text as it is relayed (SPEC 6 v2): every control character but
 * newline and tab (C0, DEL, and C1 written as UTF-8, C2 80..C2 9F) becomes
 * U+FFFD; every other byte passes as it is (the broker relays bytes, not
 * text). A UTF-8 sequence cut by the end of in[0..n) is not written: *keep
 * is how many bytes at the end (at most 3) the caller carries over to the
 * front of the next read, so a C1 control split across two reads is caught
 * too. out has room for 3 * n bytes. Returns the bytes written. */
#define SK_SEED_CHAT_KEEP_MAX 3
size_t sk__seed_chat_clean(const uint8_t *in, size_t n, uint8_t *out, size_t *keep);

#endif
