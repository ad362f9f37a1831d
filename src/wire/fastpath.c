/* fastpath.c - see fastpath.h. Profiled on the echo path (callgrind, 50
 * connections x 16 pipelined): json_loadb's character-at-a-time lexer and
 * json_dumpb's callback writer with snprintf for integers were 60 % of the
 * server's instructions; these loops do the common heads in a fraction. */
#include "wire/fastpath.h"

#include <stdlib.h>
#include <string.h>

#define DUMP_MAX 1024 /* longer heads are rare: leave them to jansson */
#define INT_DIGITS 18 /* any 18-digit integer fits in json_int_t */

/* A key or value string: '"', printable ASCII but '"' and '\\', '"'. */
static int scan_string(const char **p, const char *e, const char **s, size_t *n) {
  const char *q = *p;
  if (q >= e || *q++ != '"')
    return 0;
  *s = q;
  while (q < e && *q != '"') {
    if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e || *q == '\\')
      return 0;
    q++;
  }
  if (q >= e)
    return 0;
  *n = (size_t)(q - *s);
  *p = q + 1;
  return 1;
}

/* -?(0|[1-9][0-9]*), then anything but a fraction or exponent. */
static int scan_int(const char **p, const char *e, json_int_t *out) {
  const char *q = *p;
  int neg = q < e && *q == '-';
  json_int_t v = 0;
  int digits = 0;
  q += neg;
  if (q < e && *q == '0') {
    q++;
    digits = 1;
  } else {
    for (; q < e && *q >= '0' && *q <= '9'; q++, digits++)
      if (digits < INT_DIGITS) /* past it the result is refused: never overflow */
        v = v * 10 + (*q - '0');
  }
  if (digits == 0 || digits > INT_DIGITS || (q < e && (*q == '.' || *q == 'e' || *q == 'E')))
    return 0;
  *p = q;
  *out = neg ? -v : v;
  return 1;
}

static int scan_literal(const char **p, const char *e, json_type *kind) {
  static const struct {
    const char *text;
    size_t n;
    json_type kind;
  } lits[] = {{"true", 4, JSON_TRUE}, {"false", 5, JSON_FALSE}, {"null", 4, JSON_NULL}};
  for (int i = 0; i < 3; i++)
    if ((size_t)(e - *p) >= lits[i].n && memcmp(*p, lits[i].text, lits[i].n) == 0) {
      *p += lits[i].n;
      *kind = lits[i].kind;
      return 1;
    }
  return 0;
}

static int scan_value(const char **p, const char *e, sk_flat_member *m) {
  if (*p >= e)
    return 0;
  if (**p == '"') {
    m->kind = JSON_STRING;
    return scan_string(p, e, &m->str, &m->slen);
  }
  if (**p == '-' || (**p >= '0' && **p <= '9')) {
    m->kind = JSON_INTEGER;
    return scan_int(p, e, &m->num);
  }
  return scan_literal(p, e, &m->kind);
}

/* One "key":value and what follows it: 1 on ',', 2 at the closing '}'. */
static int scan_member(const char **p, const char *e, sk_flat_member *m) {
  if (!scan_string(p, e, &m->key, &m->klen) || *p >= e || *(*p)++ != ':' || !scan_value(p, e, m) ||
      *p >= e)
    return 0;
  if (**p == '}' && *p + 1 == e)
    return 2;
  return *(*p)++ == ',';
}

/* The flat head replaces the jansson object on the hot path: building it
 * (an object, its hash table, a string and an integer per member) and
 * freeing it, plus one hash lookup per member read, were 4,300 of the 5,300
 * instructions left per echo request (callgrind, 50 connections x 16). */
sk_flat *sk__flat_parse(const char *s, size_t n) {
  sk_flat *f;
  const char *p, *e;
  int r = 0;
  if (n < 3 || s[0] != '{' || (f = malloc(sizeof(*f) + n + 1)) == NULL)
    return NULL;
  memcpy(f->text, s, n);
  f->text[n] = '\0';
  f->tag = SK_FLAT_TAG;
  f->j = NULL;
  f->n = 0;
  f->type_i = f->size_i = -1;
  p = f->text + 1;
  e = f->text + n;
  /* Each member is scanned into a local and then stored: written in place
   * in f->m, the analyzer cannot tell the text's NULs below from stores
   * into the members that share the allocation (core.uninitialized). */
  while (f->n < SK_FLAT_MAX) {
    sk_flat_member m;
    if ((r = scan_member(&p, e, &m)) == 0)
      break;
    ((char *)m.key)[m.klen] = '\0'; /* the closing quotes: scanned already */
    if (m.klen == 4 && memcmp(m.key, "type", 4) == 0)
      f->type_i = f->n;
    else if (m.klen == 4 && memcmp(m.key, "size", 4) == 0)
      f->size_i = f->n;
    if (m.kind == JSON_STRING)
      ((char *)m.str)[m.slen] = '\0';
    f->m[f->n++] = m;
    if (r == 2)
      return f;
  }
  free(f);
  return NULL;
}

json_t *sk__flat_value(const sk_flat_member *m) {
  switch (m->kind) {
  case JSON_STRING:
    return json_stringn_nocheck(m->str, m->slen);
  case JSON_INTEGER:
    return json_integer(m->num);
  case JSON_TRUE:
    return json_true();
  case JSON_FALSE:
    return json_false();
  default:
    return json_null();
  }
}

json_t *sk__flat_json(const sk_flat *f) {
  json_t *o = json_object(), *v;
  for (int i = 0; o != NULL && i < f->n; i++)
    if ((v = sk__flat_value(&f->m[i])) == NULL ||
        json_object_setn_new_nocheck(o, f->m[i].key, f->m[i].klen, v) != 0) {
      json_decref(o);
      return NULL;
    }
  return o;
}

/* Member lookups by strcmp were 30 % of the server's instructions per echo
 * request after flat heads came in: the first byte rules most keys out, and
 * "type" and "size", read several times per frame, are found at parse time
 * (type_i, size_i). */
const sk_flat_member *sk__flat_get(const sk_flat *f, const char *key) {
  for (int i = f->n - 1; i >= 0; i--)
    if (f->m[i].key[0] == key[0] && strcmp(f->m[i].key, key) == 0)
      return &f->m[i];
  return NULL;
}

/* ---- dumping ------------------------------------------------------------ */

static int printable(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e || s[i] == '"' || s[i] == '\\')
      return 0;
  return 1;
}

/* Decimal digits of v at *p (room checked by the caller: at most 20). */
static char *put_int(char *p, json_int_t v) {
  char tmp[24];
  int n = 0;
  unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (v < 0)
    *p++ = '-';
  while (n > 0)
    *p++ = tmp[--n];
  return p;
}

static char *put_str(char *p, const char *s, size_t n) {
  *p++ = '"';
  memcpy(p, s, n);
  p += n;
  *p++ = '"';
  return p;
}

/* One value at p, or NULL when it is not one this path writes. room is
 * what is left of the scratch: 24 bytes beyond it are kept free for
 * integers. */
static char *put_value(char *p, size_t room, const json_t *v) {
  switch (json_typeof(v)) {
  case JSON_STRING: {
    size_t n = json_string_length(v);
    if (n > room || !printable(json_string_value(v), n))
      return NULL;
    return put_str(p, json_string_value(v), n);
  }
  case JSON_INTEGER:
    return put_int(p, json_integer_value(v));
  case JSON_TRUE:
    return memcpy(p, "true", 4), p + 4;
  case JSON_FALSE:
    return memcpy(p, "false", 5), p + 5;
  case JSON_NULL:
    return memcpy(p, "null", 4), p + 4;
  default:
    return NULL;
  }
}

ssize_t sk__head_dump_fast(const json_t *o, char *buf, size_t cap) {
  char tmp[DUMP_MAX + 64], *p = tmp, *end = tmp + DUMP_MAX;
  const char *key;
  size_t kn;
  json_t *v;
  if (!json_is_object(o))
    return -1;
  *p++ = '{';
  json_object_keylen_foreach((json_t *)o, key, kn, v) {
    if (kn > (size_t)(end - p) || !printable(key, kn))
      return -1;
    if (p > tmp + 1)
      *p++ = ',';
    p = put_str(p, key, kn);
    *p++ = ':';
    if ((p = put_value(p, (size_t)(end - p), v)) == NULL || p > end)
      return -1;
  }
  *p++ = '}';
  if ((size_t)(p - tmp) <= cap)
    memcpy(buf, tmp, (size_t)(p - tmp));
  return p - tmp;
}

ssize_t sk__value_dump_fast(const json_t *v, char *buf, size_t cap) {
  char tmp[DUMP_MAX + 64], *p = put_value(tmp, DUMP_MAX, v);
  if (p == NULL)
    return -1;
  if ((size_t)(p - tmp) <= cap)
    memcpy(buf, tmp, (size_t)(p - tmp));
  return p - tmp;
}

size_t sk__flat_member_text(const sk_flat_member *m, char *buf, size_t cap) {
  static const char *const lits[] = {"true", "false", "null"};
  char tmp[24], *p;
  const char *text = tmp;
  size_t n;
  if (m->kind == JSON_STRING) {
    n = m->slen + 2; /* printable ASCII without '"' or '\\': written as it is */
    if (n <= cap) {
      buf[0] = '"';
      memcpy(buf + 1, m->str, m->slen);
      buf[n - 1] = '"';
    }
    return n;
  }
  if (m->kind == JSON_INTEGER)
    p = put_int(tmp, m->num);
  else
    p = tmp + strlen(text = lits[m->kind == JSON_TRUE ? 0 : m->kind == JSON_FALSE ? 1 : 2]);
  n = (size_t)(p - tmp);
  if (n <= cap)
    memcpy(buf, text, n);
  return n;
}
