/* head.c - sk_head: a frame head, which is a jansson object underneath.
 *
 * This file and encode.c are the only ones that include <jansson.h>; the
 * rest of sockit sees sk_head as an opaque type. */
#include "sockit/error.h"
#include "sockit/frame.h"
#include "wire/fastpath.h"
#include "wire/text.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <string.h>

/* sk_head is never defined: an sk_head pointer is a json_t pointer. Heads
 * handed out as const are never modified through these casts. */
#define J(h) ((json_t *)(h))
#define H(j) ((sk_head *)(j))

/* ---- lifetime ----------------------------------------------------------- */

sk_head *sk_head_new(const char *type) {
  json_t *o = json_object();
  if (o && type && json_object_set_new(o, "type", json_string(type)) != 0) {
    json_decref(o);
    return NULL;
  }
  return H(o);
}

/* Is "size" absent, or an integer 0..SK_SIZE_MAX? A real such as 3.0 is not:
 * peers must agree on the body length without any rounding. */
static int size_ok(const json_t *o) {
  const json_t *s = json_object_get(o, "size");
  if (s == NULL)
    return 1;
  if (!json_is_integer(s) || json_integer_value(s) < 0)
    return 0;
  return (uint64_t)json_integer_value(s) <= SK_SIZE_MAX;
}

sk_head *sk_head_parse(const void *json, size_t len, int *err) {
  json_error_t e;
  /* The whole buffer must be one value (EOF check on); duplicate keys are
   * tolerated (last one wins) for sloppy peers. "\u0000" is parsed so that
   * services can refuse it with their own code (SPEC 4.7: a name with NUL is
   * forbidden; sk_head_strlen shows it), but never inside "type". */
  json_t *o = sk__head_parse_fast(json, len); /* NULL: not a simple head, ask jansson */
  int code = SK_EBADFRAME;
  if (o == NULL)
    o = json_loadb(json, len, JSON_ALLOW_NUL, &e);
  if (o == NULL) {
    /* Running out of memory is not the peer's fault: don't call it bad_frame.
     * (e is set: only jansson's own failure gets here.) */
    if (json_error_code(&e) == json_error_out_of_memory)
      code = -ENOMEM;
  } else if (json_is_object(o) && json_is_string(json_object_get(o, "type")) &&
             strlen(json_string_value(json_object_get(o, "type"))) ==
                 json_string_length(json_object_get(o, "type")) &&
             size_ok(o)) {
    return H(o);
  }
  json_decref(o);
  if (err)
    *err = code;
  return NULL;
}

void sk_head_free(sk_head *h) {
  json_decref(J(h));
}

sk_head *sk_head_dup(const sk_head *h) {
  return H(json_deep_copy(J(h)));
}

/* ---- readers ------------------------------------------------------------ */

static const json_t *member(const sk_head *h, const char *key) {
  return json_object_get(J(h), key);
}

const char *sk_head_type(const sk_head *h) {
  return json_string_value(member(h, "type"));
}

uint64_t sk_head_size(const sk_head *h) {
  const json_t *s = member(h, "size");
  if (!json_is_integer(s) || json_integer_value(s) < 0)
    return 0;
  return (uint64_t)json_integer_value(s);
}

int sk_head_has(const sk_head *h, const char *key) {
  return member(h, key) != NULL;
}

const char *sk_head_str(const sk_head *h, const char *key) {
  return json_string_value(member(h, key));
}

size_t sk_head_strlen(const sk_head *h, const char *key) {
  return json_string_length(member(h, key));
}

/* Returns 0, -ENOENT (absent) or SK_EBADREQ (not an integer: 1.0 is not). */
int sk_head_int(const sk_head *h, const char *key, int64_t *out) {
  const json_t *v = member(h, key);
  if (v == NULL)
    return -ENOENT;
  if (!json_is_integer(v))
    return SK_EBADREQ;
  *out = json_integer_value(v);
  return 0;
}

int sk_head_bool(const sk_head *h, const char *key, int *out) {
  const json_t *v = member(h, key);
  if (v == NULL)
    return -ENOENT;
  if (!json_is_boolean(v))
    return SK_EBADREQ;
  *out = json_is_true(v);
  return 0;
}

int sk_head_double(const sk_head *h, const char *key, double *out) {
  const json_t *v = member(h, key);
  if (v == NULL)
    return -ENOENT;
  if (!json_is_number(v))
    return SK_EBADREQ;
  *out = json_number_value(v);
  return 0;
}

const sk_head *sk_head_obj(const sk_head *h, const char *key) {
  const json_t *v = member(h, key);
  return json_is_object(v) ? H(v) : NULL;
}

size_t sk_head_arr_len(const sk_head *h, const char *key) {
  return json_array_size(member(h, key)); /* 0 for a non-array */
}

const char *sk_head_arr_str(const sk_head *h, const char *key, size_t i) {
  return json_string_value(json_array_get(member(h, key), i));
}

const sk_head *sk_head_arr_obj(const sk_head *h, const char *key, size_t i) {
  const json_t *v = json_array_get(member(h, key), i);
  return json_is_object(v) ? H(v) : NULL;
}

/* All values are checked before the first callback, so that a bad "env"
 * is refused without half of it having been applied. A NULL h (an absent
 * nested object) has nothing to visit and returns 0. */
int sk_head_each_str(const sk_head *h, int (*cb)(void *ctx, const char *key, const char *val),
                     void *ctx) {
  const char *key;
  json_t *v;
  if (h == NULL)
    return 0;
  if (!json_is_object(J(h)))
    return -EINVAL;
  json_object_foreach(J(h), key, v) {
    if (!json_is_string(v))
      return -EINVAL;
  }
  json_object_foreach(J(h), key, v) {
    int r = cb(ctx, key, json_string_value(v));
    if (r != 0)
      return r;
  }
  return 0;
}

/* ---- writers ------------------------------------------------------------ */

/* Set key to v, taking ownership of v even on failure. v NULL means the
 * caller's constructor ran out of memory. */
static int set_new(sk_head *h, const char *key, json_t *v) {
  if (!json_is_object(J(h)) || key == NULL) {
    json_decref(v);
    return -EINVAL;
  }
  if (v == NULL)
    return -ENOMEM;
  return json_object_set_new(J(h), key, v) == 0 ? 0 : -ENOMEM;
}

/* A string value, or NULL with *err set: jansson refuses invalid UTF-8 and
 * out-of-memory alike, so retry unchecked to tell the two apart. */
static json_t *string_value(const char *val, size_t n, int *err) {
  json_t *s = val ? json_stringn(val, n) : NULL;
  json_t *raw;
  if (s != NULL)
    return s;
  raw = val ? json_stringn_nocheck(val, n) : NULL;
  *err = (val == NULL || raw != NULL) ? -EINVAL : -ENOMEM;
  json_decref(raw);
  return NULL;
}

int sk_head_set_strn(sk_head *h, const char *key, const char *val, size_t n) {
  int err = 0;
  json_t *s = string_value(val, n, &err);
  return s ? set_new(h, key, s) : err;
}

int sk_head_set_str(sk_head *h, const char *key, const char *val) {
  return val ? sk_head_set_strn(h, key, val, strlen(val)) : -EINVAL;
}

int sk_head_set_int(sk_head *h, const char *key, int64_t val) {
  return set_new(h, key, json_integer(val));
}

int sk_head_set_bool(sk_head *h, const char *key, int val) {
  return set_new(h, key, json_boolean(val));
}

/* JSON has no NaN or infinity; refuse them here rather than at encode time. */
int sk_head_set_double(sk_head *h, const char *key, double val) {
  return isfinite(val) ? set_new(h, key, json_real(val)) : -EINVAL;
}

int sk_head_set_strv(sk_head *h, const char *key, const char *const *v, size_t n) {
  json_t *arr = json_array();
  int err = 0;
  for (size_t i = 0; arr && i < n; i++) {
    json_t *s = v[i] ? string_value(v[i], strlen(v[i]), &err) : NULL;
    if (s == NULL || json_array_append_new(arr, s) != 0) {
      json_decref(arr);
      return err ? err : (v[i] ? -ENOMEM : -EINVAL);
    }
  }
  return set_new(h, key, arr);
}

int sk_head_append(sk_head *h, const char *key, sk_head *obj) {
  json_t *arr = json_object_get(J(h), key);
  if (arr == NULL) {
    int r = set_new(h, key, json_array());
    if (r != 0) {
      json_decref(J(obj));
      return r;
    }
    arr = json_object_get(J(h), key);
  } else if (!json_is_array(arr)) {
    json_decref(J(obj));
    return -EINVAL;
  }
  if (obj == NULL)
    return -ENOMEM; /* most likely a failed sk_head_new() */
  return json_array_append_new(arr, J(obj)) == 0 ? 0 : -ENOMEM;
}

/* A deep copy, so that the two heads never share a mutable value. */
int sk_head_copy_member(sk_head *h, const sk_head *src, const char *key) {
  const json_t *v = member(src, key);
  if (v == NULL)
    return 0;
  return set_new(h, key, json_deep_copy(v));
}

ssize_t sk__head_member_text(const sk_head *h, const char *key, char *buf, size_t cap) {
  const json_t *v = member(h, key);
  ssize_t n;
  if (v == NULL)
    return 0;
  n = sk__value_dump_fast(v, buf, cap);
  if (n >= 0)
    return n;
  n = (ssize_t)json_dumpb(v, buf, cap, JSON_COMPACT | JSON_ENCODE_ANY);
  return n > 0 ? n : -EINVAL;
}

/* Deleting an absent member is not an error: the result is the same. */
int sk_head_del(sk_head *h, const char *key) {
  json_object_del(J(h), key);
  return 0;
}
