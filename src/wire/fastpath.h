/* fastpath.h - jansson-free shortcuts for the common flat heads, such as
 * {"type":"echo","size":64,"id":7} (src/wire only).
 *
 * Both are strict subsets of what jansson does: they handle only input they
 * can check completely and otherwise say "not mine", and jansson decides.
 * tests/unit/test_fastpath.c checks them against jansson on random input. */
#ifndef SOCKIT_WIRE_FASTPATH_H
#define SOCKIT_WIRE_FASTPATH_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "sockit/frame.h"

#define SK_FLAT_TAG 0x54414c46u /* "FLAT": never a json_type (0..7) */
#define SK_FLAT_MAX 16          /* members; heads with more go to jansson */

/* One member of a flat head. Keys and strings are NUL-terminated in place
 * in the head's copy of its text. */
typedef struct sk_flat_member {
  const char *key;
  const char *str; /* JSON_STRING: the value */
  size_t klen, slen;
  json_int_t num; /* JSON_INTEGER: the value */
  json_type kind; /* JSON_STRING, JSON_INTEGER, JSON_TRUE, JSON_FALSE or JSON_NULL */
} sk_flat_member;

/* A parsed head that is not (yet) a jansson object: one allocation, its
 * members in text order (a repeated key: the last one counts, as in
 * jansson). tag comes first, where a json_t has its type, so that a head
 * pointer tells which of the two it is. */
typedef struct sk_flat {
  unsigned tag;
  json_t *j; /* set once a writer needed the jansson object: it counts then */
  int n;
  int type_i, size_i; /* the members "type" and "size" (the last of each), or -1 */
  sk_flat_member m[SK_FLAT_MAX];
  char text[]; /* a copy of the head's text */
} sk_flat;

/* Parse a compact flat object: no whitespace, keys and string values of
 * printable ASCII without escapes, integers of at most 18 digits, true,
 * false, null. Returns the flat head (free it with free), or NULL for
 * anything else, including out of memory: call jansson then. */
sk_flat *sk__flat_parse(const char *s, size_t n);

/* The jansson object json_loadb builds from the same text, or NULL when out
 * of memory. */
json_t *sk__flat_json(const sk_flat *f);

/* The member a jansson object would hold under key, or NULL. */
const sk_flat_member *sk__flat_get(const sk_flat *f, const char *key);

/* A member's value as json_dumpb(JSON_COMPACT) writes it, into buf when it
 * fits in cap; returns its length. */
size_t sk__flat_member_text(const sk_flat_member *m, char *buf, size_t cap);

/* A new jansson value equal to the member's, or NULL when out of memory. */
json_t *sk__flat_value(const sk_flat_member *m);

/* The jansson object of a head (head.c): its own, or for a flat head a
 * temporary one in *tmp that the caller decrefs. NULL when out of memory. */
const json_t *sk__head_json(const sk_head *h, json_t **tmp);

/* Compact JSON of a flat object (the values above) into buf, exactly as
 * json_dumpb(JSON_COMPACT) writes it. Returns the length (written only if
 * it fits in cap), or -1 when the object is not flat or its text would pass
 * 1 KiB: call jansson then. */
ssize_t sk__head_dump_fast(const json_t *o, char *buf, size_t cap);

/* The same for one value of such an object (a string, integer, true, false
 * or null): its length, or -1 for any other value (call jansson then). */
ssize_t sk__value_dump_fast(const json_t *v, char *buf, size_t cap);

#endif
