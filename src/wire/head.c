/* head.c - sk_head: a frame head, which is a jansson object underneath, or
 * a flat head (fastpath.h) when it was parsed from a simple compact text.
 * A flat head answers every reader itself and becomes a jansson object (its
 * j) the first time a writer changes it; const heads are never changed, so
 * heads shared between threads stay read-only as before.
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

/* sk_head is never defined: an sk_head pointer is a json_t pointer or an
 * sk_flat pointer, told apart by the first word (a json_t's type). Heads
 * handed out as const are never modified through these casts. */
#define H(j) ((sk_head *)(j))

static sk_flat *as_flat(const sk_head *h) {
  return h != NULL && *(const unsigned *)h == SK_FLAT_TAG ? (sk_flat *)h : NULL;
}

/* The jansson object of h, or NULL for a flat head that has none yet. */
static json_t *J(const sk_head *h) {
  sk_flat *f = as_flat(h);
  return f == NULL ? (json_t *)h : f->j;
}

/* The flat head whose members still count, or NULL. */
static const sk_flat *flat(const sk_head *h) {
  const sk_flat *f = as_flat(h);
  return f != NULL && f->j == NULL ? f : NULL;
}

/* A writer is about to change h: a flat head becomes its jansson object. */
static json_t *Jw(sk_head *h) {
  sk_flat *f = as_flat(h);
  if (f != NULL && f->j == NULL)
    f->j = sk__flat_json(f);
  return J(h);
}

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

static const sk_flat_member *flat_at(const sk_flat *f, int i) {
  return i >= 0 ? &f->m[i] : NULL;
}

/* A flat head with a string "type" and a valid "size": the checks below,
 * on its members. */
static int flat_ok(const sk_flat *f) {
  const sk_flat_member *t = flat_at(f, f->type_i), *s = flat_at(f, f->size_i);
  if (t == NULL || t->kind != JSON_STRING)
    return 0; /* flat strings hold no NUL */
  return s == NULL || (s->kind == JSON_INTEGER && s->num >= 0 && (uint64_t)s->num <= SK_SIZE_MAX);
}

static sk_head *parse_jansson(const void *json, size_t len, int *err) {
  /* The whole buffer must be one value (EOF check on); duplicate keys are
   * tolerated (last one wins) for sloppy peers. "\u0000" is parsed so that
   * services can refuse it with their own code (SPEC 4.7: a name with NUL is
   * forbidden; sk_head_strlen shows it), but never inside "type". */
  json_error_t e;
  int code = SK_EBADFRAME;
  json_t *o = json_loadb(json, len, JSON_ALLOW_NUL, &e);
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

sk_head *sk_head_parse(const void *json, size_t len, int *err) {
  sk_flat *f = sk__flat_parse(json, len); /* NULL: not a simple head, ask jansson */
  if (f == NULL)
    return parse_jansson(json, len, err);
  if (flat_ok(f))
    return H(f);
  free(f);
  if (err)
    *err = SK_EBADFRAME;
  return NULL;
}

void sk_head_free(sk_head *h) {
  sk_flat *f = as_flat(h);
  if (f != NULL) {
    json_decref(f->j);
    free(f);
    return;
  }
  json_decref(J(h));
}

sk_head *sk_head_dup(const sk_head *h) {
  const sk_flat *f = flat(h);
  return H(f != NULL ? sk__flat_json(f) : json_deep_copy(J(h)));
}

const json_t *sk__head_json(const sk_head *h, json_t **tmp) {
  const sk_flat *f = flat(h);
  *tmp = f != NULL ? sk__flat_json(f) : NULL;
  return f != NULL ? *tmp : J(h);
}

/* ---- readers ------------------------------------------------------------ */

static const json_t *member(const sk_head *h, const char *key) {
  return json_object_get(J(h), key); /* NULL for a flat head: no nested values */
}

/* 1 with *m set (NULL: absent) when h is a flat head, 0 otherwise. */
static int fmember(const sk_head *h, const char *key, const sk_flat_member **m) {
  const sk_flat *f = flat(h);
  if (f == NULL)
    return 0;
  *m = sk__flat_get(f, key);
  return 1;
}

const char *sk_head_type(const sk_head *h) {
  const sk_flat *f = flat(h);
  const sk_flat_member *m = f != NULL ? flat_at(f, f->type_i) : NULL;
  if (f == NULL)
    return json_string_value(member(h, "type"));
  return m != NULL && m->kind == JSON_STRING ? m->str : NULL;
}

uint64_t sk_head_size(const sk_head *h) {
  const sk_flat *f = flat(h);
  const sk_flat_member *m = f != NULL ? flat_at(f, f->size_i) : NULL;
  const json_t *s;
  if (f != NULL)
    return m != NULL && m->kind == JSON_INTEGER && m->num >= 0 ? (uint64_t)m->num : 0;
  s = member(h, "size");
  if (!json_is_integer(s) || json_integer_value(s) < 0)
    return 0;
  return (uint64_t)json_integer_value(s);
}

int sk_head_has(const sk_head *h, const char *key) {
  const sk_flat_member *m;
  return fmember(h, key, &m) ? m != NULL : member(h, key) != NULL;
}

const char *sk_head_str(const sk_head *h, const char *key) {
  const sk_flat_member *m;
  if (fmember(h, key, &m))
    return m != NULL && m->kind == JSON_STRING ? m->str : NULL;
  return json_string_value(member(h, key));
}

size_t sk_head_strlen(const sk_head *h, const char *key) {
  const sk_flat_member *m;
  if (fmember(h, key, &m))
    return m != NULL && m->kind == JSON_STRING ? m->slen : 0;
  return json_string_length(member(h, key));
}

/* Returns 0, -ENOENT (absent) or SK_EBADREQ (not an integer: 1.0 is not). */
int sk_head_int(const sk_head *h, const char *key, int64_t *out) {
  const sk_flat_member *m;
  const json_t *v;
  if (fmember(h, key, &m)) {
    if (m == NULL)
      return -ENOENT;
    if (m->kind != JSON_INTEGER)
      return SK_EBADREQ;
    *out = m->num;
    return 0;
  }
  if ((v = member(h, key)) == NULL)
    return -ENOENT;
  if (!json_is_integer(v))
    return SK_EBADREQ;
  *out = json_integer_value(v);
  return 0;
}

int sk_head_bool(const sk_head *h, const char *key, int *out) {
  const sk_flat_member *m;
  const json_t *v;
  if (fmember(h, key, &m)) {
    if (m == NULL)
      return -ENOENT;
    if (m->kind != JSON_TRUE && m->kind != JSON_FALSE)
      return SK_EBADREQ;
    *out = m->kind == JSON_TRUE;
    return 0;
  }
  if ((v = member(h, key)) == NULL)
    return -ENOENT;
  if (!json_is_boolean(v))
    return SK_EBADREQ;
  *out = json_is_true(v);
  return 0;
}

int sk_head_double(const sk_head *h, const char *key, double *out) {
  const sk_flat_member *m;
  const json_t *v;
  int64_t i;
  if (fmember(h, key, &m)) { /* a flat head has integers, never reals */
    int rc = sk_head_int(h, key, &i);
    if (rc == 0)
      *out = (double)i;
    return rc;
  }
  if ((v = member(h, key)) == NULL)
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

size_t sk_head_arr_strlen(const sk_head *h, const char *key, size_t i) {
  return json_string_length(json_array_get(member(h, key), i));
}

const sk_head *sk_head_arr_obj(const sk_head *h, const char *key, size_t i) {
  const json_t *v = json_array_get(member(h, key), i);
  return json_is_object(v) ? H(v) : NULL;
}

static int each_str(const json_t *o, int (*cb)(void *ctx, const char *key, const char *val),
                    void *ctx) {
  const char *key;
  json_t *v;
  if (!json_is_object(o))
    return -EINVAL;
  json_object_foreach((json_t *)o, key, v) {
    if (!json_is_string(v))
      return -EINVAL;
  }
  json_object_foreach((json_t *)o, key, v) {
    int r = cb(ctx, key, json_string_value(v));
    if (r != 0)
      return r;
  }
  return 0;
}

/* All values are checked before the first callback, so that a bad "env"
 * is refused without half of it having been applied. A NULL h (an absent
 * nested object) has nothing to visit and returns 0. A flat head is visited
 * through a temporary jansson object (rare: "env" is a nested object). */
int sk_head_each_str(const sk_head *h, int (*cb)(void *ctx, const char *key, const char *val),
                     void *ctx) {
  json_t *tmp;
  int r;
  if (h == NULL)
    return 0;
  if (flat(h) == NULL)
    return each_str(J(h), cb, ctx);
  if ((tmp = sk__flat_json(flat(h))) == NULL)
    return -ENOMEM;
  r = each_str(tmp, cb, ctx);
  json_decref(tmp);
  return r;
}

/* ---- writers ------------------------------------------------------------ */

/* Set key to v, taking ownership of v even on failure. v NULL means the
 * caller's constructor ran out of memory. */
static int set_new(sk_head *h, const char *key, json_t *v) {
  json_t *o = h != NULL ? Jw(h) : NULL;
  if (!json_is_object(o) || key == NULL) {
    json_decref(v);
    return o == NULL && as_flat(h) != NULL ? -ENOMEM : -EINVAL;
  }
  if (v == NULL)
    return -ENOMEM;
  return json_object_set_new(o, key, v) == 0 ? 0 : -ENOMEM;
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

/* obj as a jansson object carrying obj's one reference, for a container to
 * take over: a flat head hands over the object it became and its shell goes.
 * NULL (obj released) when out of memory. */
static json_t *take_json(sk_head *obj) {
  sk_flat *f = as_flat(obj);
  json_t *v;
  if (f == NULL)
    return (json_t *)obj;
  v = Jw(obj);
  f->j = NULL; /* so that freeing the shell leaves v alone */
  free(f);
  return v;
}

int sk_head_append(sk_head *h, const char *key, sk_head *obj) {
  json_t *arr = json_object_get(h != NULL ? Jw(h) : NULL, key), *v;
  if (arr == NULL) {
    int r = set_new(h, key, json_array());
    if (r != 0) {
      sk_head_free(obj);
      return r;
    }
    arr = json_object_get(J(h), key);
  } else if (!json_is_array(arr)) {
    sk_head_free(obj);
    return -EINVAL;
  }
  if (obj == NULL || (v = take_json(obj)) == NULL)
    return -ENOMEM; /* most likely a failed sk_head_new() */
  return json_array_append_new(arr, v) == 0 ? 0 : -ENOMEM;
}

int sk_head_set_obj(sk_head *h, const char *key, sk_head *obj) {
  json_t *v = obj != NULL ? take_json(obj) : NULL;
  return v == NULL ? -ENOMEM : set_new(h, key, v); /* set_new takes v, also on failure */
}

/* A deep copy, so that the two heads never share a mutable value. */
int sk_head_copy_member(sk_head *h, const sk_head *src, const char *key) {
  const sk_flat_member *m;
  const json_t *v;
  if (fmember(src, key, &m))
    return m == NULL ? 0 : set_new(h, key, sk__flat_value(m));
  if ((v = member(src, key)) == NULL)
    return 0;
  return set_new(h, key, json_deep_copy(v));
}

ssize_t sk__head_member_text(const sk_head *h, const char *key, char *buf, size_t cap) {
  const sk_flat_member *m;
  const json_t *v;
  ssize_t n;
  if (fmember(h, key, &m))
    return m == NULL ? 0 : (ssize_t)sk__flat_member_text(m, buf, cap);
  if ((v = member(h, key)) == NULL)
    return 0;
  n = sk__value_dump_fast(v, buf, cap);
  if (n >= 0)
    return n;
  n = (ssize_t)json_dumpb(v, buf, cap, JSON_COMPACT | JSON_ENCODE_ANY);
  return n > 0 ? n : -EINVAL;
}

/* Deleting an absent member is not an error: the result is the same. */
int sk_head_del(sk_head *h, const char *key) {
  if (h != NULL && sk_head_has(h, key))
    json_object_del(Jw(h), key);
  return 0;
}
