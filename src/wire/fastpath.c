/* fastpath.c - see fastpath.h. Profiled on the echo path (callgrind, 50
 * connections x 16 pipelined): json_loadb's character-at-a-time lexer and
 * json_dumpb's callback writer with snprintf for integers were 60 % of the
 * server's instructions; these loops do the common heads in a fraction. */
#include "wire/fastpath.h"

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
static json_t *scan_int(const char **p, const char *e) {
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
    return NULL;
  *p = q;
  return json_integer(neg ? -v : v);
}

static json_t *scan_literal(const char **p, const char *e) {
  static const struct {
    const char *text;
    size_t n;
  } lits[] = {{"true", 4}, {"false", 5}, {"null", 4}};
  for (int i = 0; i < 3; i++)
    if ((size_t)(e - *p) >= lits[i].n && memcmp(*p, lits[i].text, lits[i].n) == 0) {
      *p += lits[i].n;
      return i == 0 ? json_true() : i == 1 ? json_false() : json_null();
    }
  return NULL;
}

static json_t *scan_value(const char **p, const char *e) {
  const char *s;
  size_t n;
  if (*p >= e)
    return NULL;
  if (**p == '"')
    return scan_string(p, e, &s, &n) ? json_stringn_nocheck(s, n) : NULL;
  if (**p == '-' || (**p >= '0' && **p <= '9'))
    return scan_int(p, e);
  return scan_literal(p, e);
}

json_t *sk__head_parse_fast(const char *s, size_t n) {
  const char *p = s + 1, *e = s + n, *k;
  size_t kn;
  json_t *o, *v;
  if (n < 3 || s[0] != '{' || (o = json_object()) == NULL)
    return NULL;
  for (;;) {
    if (!scan_string(&p, e, &k, &kn) || p >= e || *p++ != ':' || (v = scan_value(&p, e)) == NULL)
      break;
    if (json_object_setn_new_nocheck(o, k, kn, v) != 0 || p >= e)
      break;
    if (*p == '}' && p + 1 == e)
      return o;
    if (*p++ != ',')
      break;
  }
  json_decref(o);
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
