/* sockit/frame.h - the native frame codec (SPEC 4.1), usable on its own.
 *
 *   +--------------------+---------------------------+-----------------+
 *   | head_len: u32 BE   | head: UTF-8 JSON object   | body: head.size |
 *   | 2..65536           | with a string "type"      | bytes (or 0)    |
 *   +--------------------+---------------------------+-----------------+
 *
 * Heads are opaque sk_head objects (a JSON object underneath). The decoder is
 * pure: bytes in, events out. It never reads a socket, never allocates for a
 * body and checks every length before anything is allocated.
 */
#ifndef SOCKIT_FRAME_H
#define SOCKIT_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sockit/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SK_HEAD_MIN 2u
#define SK_HEAD_MAX 65536u
#define SK_SIZE_MAX ((UINT64_C(1) << 53) - 1) /* largest "size" a head may carry */
#define SK_PREFIX_LEN 4u                      /* the u32 head_len */

/* ---- heads ------------------------------------------------------------ */

typedef struct sk_head sk_head;

/* A new head {"type":type}; type may be NULL for a plain object (a list
 * entry, say). Returns NULL only when out of memory. Free with sk_head_free. */
SK_API sk_head *sk_head_new(const char *type);

/* Parse and validate a head: strict UTF-8 JSON, an object, a string "type",
 * and "size", if present, an integer in 0..SK_SIZE_MAX. Returns the head
 * (owned by the caller) or NULL with *err = SK_EBADFRAME (-ENOMEM when out
 * of memory). */
SK_API sk_head *sk_head_parse(const void *json, size_t len, int *err);

/* Drop a head from sk_head_new/parse/dup. NULL is fine. */
SK_API void sk_head_free(sk_head *h);

/* A deep copy; NULL when out of memory. */
SK_API sk_head *sk_head_dup(const sk_head *h);

/* The "type" string (never NULL for a parsed head). Borrowed from h. */
SK_API const char *sk_head_type(const sk_head *h);

/* The body length ("size", 0 when absent). Parsed heads are already checked. */
SK_API uint64_t sk_head_size(const sk_head *h);

/* Member readers. Strings are borrowed from h and live as long as h.
 * The int/bool/double readers return 0, -ENOENT when the member is absent,
 * or SK_EBADREQ when it has another type (or, for ints, is not integral). */
SK_API int sk_head_has(const sk_head *h, const char *key);
SK_API const char *sk_head_str(const sk_head *h, const char *key); /* NULL: absent/not a string */
SK_API size_t sk_head_strlen(const sk_head *h, const char *key);   /* byte length (may hold NUL) */
SK_API int sk_head_int(const sk_head *h, const char *key, int64_t *out);
SK_API int sk_head_bool(const sk_head *h, const char *key, int *out);
SK_API int sk_head_double(const sk_head *h, const char *key, double *out); /* int or real */

/* Nested values, borrowed from h. */
SK_API const sk_head *sk_head_obj(const sk_head *h, const char *key); /* NULL: not an object */
SK_API size_t sk_head_arr_len(const sk_head *h, const char *key);     /* 0: absent/not an array */
SK_API const char *sk_head_arr_str(const sk_head *h, const char *key, size_t i);
SK_API size_t sk_head_arr_strlen(const sk_head *h, const char *key, size_t i); /* may hold NUL */
SK_API const sk_head *sk_head_arr_obj(const sk_head *h, const char *key, size_t i);

/* Visit every member of an object whose value is a string; stops early and
 * returns cb's value when cb returns non-zero. -EINVAL if a value is not a
 * string (used for "env"). */
SK_API int sk_head_each_str(const sk_head *h,
                            int (*cb)(void *ctx, const char *key, const char *val), void *ctx);

/* Member writers: 0 or -ENOMEM; -EINVAL for a string that is not UTF-8, a
 * NaN or infinity, or append to a member that is not an array. Setting
 * "size" sets the body length. */
SK_API int sk_head_set_str(sk_head *h, const char *key, const char *val);
SK_API int sk_head_set_strn(sk_head *h, const char *key, const char *val, size_t n);
SK_API int sk_head_set_int(sk_head *h, const char *key, int64_t val);
SK_API int sk_head_set_bool(sk_head *h, const char *key, int val);
SK_API int sk_head_set_double(sk_head *h, const char *key, double val);
SK_API int sk_head_set_strv(sk_head *h, const char *key, const char *const *v, size_t n);
/* Append obj (ownership passes to h, even on failure) to array key. */
SK_API int sk_head_append(sk_head *h, const char *key, sk_head *obj);
/* Set member key to obj (ownership passes to h, even on failure): nested
 * objects such as exec's "env". */
SK_API int sk_head_set_obj(sk_head *h, const char *key, sk_head *obj);
/* Set key to a copy of src's member key, if src has one (for "id"). */
SK_API int sk_head_copy_member(sk_head *h, const sk_head *src, const char *key);
SK_API int sk_head_del(sk_head *h, const char *key);

/* ---- encoding ----------------------------------------------------------- */

/* Write the 4-byte prefix and compact JSON of h into buf. Returns the number
 * of bytes the frame prefix+head needs; if that is > cap nothing useful was
 * written and the caller retries with a larger buffer. Returns SK_ETOOLARGE
 * for a head over SK_HEAD_MAX. The body is not written: send it after. */
SK_API ssize_t sk_head_encode(const sk_head *h, void *buf, size_t cap);

/* Same, into a new malloc'd buffer (*out, owned by the caller). */
SK_API ssize_t sk_head_encode_alloc(const sk_head *h, uint8_t **out);

/* ---- incremental decoding ----------------------------------------------- */

typedef struct sk_decoder {
  uint64_t body_left; /* bytes of the current body not yet consumed */
  uint32_t max_head;  /* head_len limit; 0 means SK_HEAD_MAX */
  int in_body;        /* 1 between a head with size > 0 and its last byte */
} sk_decoder;

/* Start a decoder (also resets one). max_head 0 means SK_HEAD_MAX; a smaller
 * value gives tighter limits, e.g. before authentication. */
SK_API void sk_decoder_init(sk_decoder *d, uint32_t max_head);

/* Try to decode one head from buf (which must start at a frame boundary,
 * i.e. the decoder is not in a body). Returns:
 *   0               need more bytes (nothing consumed; *head untouched)
 *   > 0             bytes consumed (prefix + head); *head is the new head,
 *                   owned by the caller; the decoder is now in its body if
 *                   sk_head_size(*head) > 0
 *   SK_EBADFRAME    head_len out of range, or the head is not valid
 *   -ENOMEM         out of memory while parsing the head
 *   -EINVAL         called while in a body (a caller bug)
 * The head must arrive contiguously: callers keep unconsumed bytes and call
 * again with more appended. At most SK_PREFIX_LEN + max_head bytes are ever
 * needed. */
SK_API ssize_t sk_decode_head(sk_decoder *d, const void *buf, size_t len, sk_head **head);

/* While in a body: how many of the len buffered bytes belong to it. */
static inline size_t sk_decoder_body_avail(const sk_decoder *d, size_t len) {
  return d->body_left < len ? (size_t)d->body_left : len;
}

/* Mark n body bytes as consumed (n <= body_left). Leaves the body when the
 * last byte is consumed. */
SK_API void sk_decoder_body_consume(sk_decoder *d, size_t n);

#ifdef __cplusplus
}
#endif
#endif
