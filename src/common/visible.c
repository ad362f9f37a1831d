/* visible.c - log values as JSON strings with what does not draw as itself
 * escaped (see visible.h). Which code points those are is escape.c's
 * sk__cp_is_unsafe, the same list the client commands use for terminals;
 * only the spelling differs (\uXXXX here, so that JSON log lines parse). */
#include "common/visible.h"

#include <stdio.h>
#include <string.h>
#include <unicode/utf8.h>

#include "common/escape.h"

/* Append the k bytes at p if they fit with room for the closing quote and
 * the NUL; 0 when they do not (the caller stops there). */
static int put(char *out, size_t cap, size_t *w, const char *p, size_t k) {
  if (cap < 2 || *w + k > cap - 2)
    return 0;
  memcpy(out + *w, p, k);
  *w += k;
  return 1;
}

static int put_u(char *out, size_t cap, size_t *w, unsigned u) {
  char e[8];
  snprintf(e, sizeof e, "\\u%04x", u & 0xffffu);
  return put(out, cap, w, e, 6);
}

static int put_escaped(char *out, size_t cap, size_t *w, UChar32 c) {
  if (c == '"' || c == '\\') {
    char e[2] = {'\\', (char)c};
    return put(out, cap, w, e, 2);
  }
  if (c == '\n')
    return put(out, cap, w, "\\n", 2);
  if (c == '\t')
    return put(out, cap, w, "\\t", 2);
  if (c > 0xffff) { /* JSON spells it as a surrogate pair: both or neither */
    if (cap < 2 || *w + 12 > cap - 2)
      return 0;
    return put_u(out, cap, w, 0xd800u + (((unsigned)c - 0x10000u) >> 10)) &&
           put_u(out, cap, w, 0xdc00u + (((unsigned)c - 0x10000u) & 0x3ffu));
  }
  return put_u(out, cap, w, (unsigned)c);
}

/* Which code points a walk spells as \uXXXX: in a log value every unsafe
 * one and JSON's own quote and backslash; in JSON text already written only
 * the unsafe ones past ASCII (its ASCII controls are escaped already). */
static int must_escape_value(UChar32 c) {
  return c == '"' || c == '\\' || sk__cp_is_unsafe((uint32_t)c);
}

static int must_escape_json(UChar32 c) {
  return c >= 0x7f && sk__cp_is_unsafe((uint32_t)c);
}

/* Copy the n bytes at s into out from *w, escaping what must_escape says,
 * a bad UTF-8 sequence as U+FFFD; stops where out is full. */
static void walk(char *out, size_t cap, size_t *w, const char *s, size_t n,
                 int (*must_escape)(UChar32)) {
  int32_t i = 0, len = n > INT32_MAX ? INT32_MAX : (int32_t)n;
  while (i < len) {
    int32_t start = i;
    UChar32 c;
    int ok;
    U8_NEXT((const uint8_t *)s, i, len, c);
    if (c < 0)
      ok = put_u(out, cap, w, 0xfffd);
    else if (must_escape(c))
      ok = put_escaped(out, cap, w, c);
    else
      ok = put(out, cap, w, s + start, (size_t)(i - start));
    if (!ok)
      return;
  }
}

size_t sk__quote_visible(char *out, size_t cap, const char *s, size_t n) {
  size_t w = 0;
  if (cap == 0)
    return 0;
  if (!put(out, cap, &w, "\"", 1)) {
    out[0] = '\0';
    return 0;
  }
  walk(out, cap, &w, s, n, must_escape_value);
  out[w++] = '"'; /* put() kept room for it and the NUL */
  out[w] = '\0';
  return w;
}

/* Outside its strings JSON text is printable ASCII, so whatever is escaped
 * here is inside a string, where \uXXXX means the same. */
size_t sk__json_visible(char *out, size_t cap, const char *json, size_t n) {
  size_t w = 0;
  if (cap == 0)
    return 0;
  walk(out, cap, &w, json, n, must_escape_json);
  out[w] = '\0';
  return w;
}
