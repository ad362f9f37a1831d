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
  if (c > 0xffff) { /* JSON spells it as a surrogate pair */
    return put_u(out, cap, w, 0xd800u + (((unsigned)c - 0x10000u) >> 10)) &&
           put_u(out, cap, w, 0xdc00u + (((unsigned)c - 0x10000u) & 0x3ffu));
  }
  return put_u(out, cap, w, (unsigned)c);
}

size_t sk__quote_visible(char *out, size_t cap, const char *s, size_t n) {
  int32_t i = 0, len = n > INT32_MAX ? INT32_MAX : (int32_t)n;
  size_t w = 0;
  if (cap == 0)
    return 0;
  if (!put(out, cap, &w, "\"", 1)) {
    out[0] = '\0';
    return 0;
  }
  while (i < len) {
    int32_t start = i;
    UChar32 c;
    int ok;
    U8_NEXT((const uint8_t *)s, i, len, c);
    if (c < 0)
      ok = put_u(out, cap, &w, 0xfffd);
    else if (c == '"' || c == '\\' || sk__cp_is_unsafe((uint32_t)c))
      ok = put_escaped(out, cap, &w, c);
    else
      ok = put(out, cap, &w, s + start, (size_t)(i - start));
    if (!ok)
      break;
  }
  out[w++] = '"'; /* put() kept room for it and the NUL */
  out[w] = '\0';
  return w;
}

size_t sk__json_visible(char *out, size_t cap, const char *json, size_t n) {
  int32_t i = 0, len = n > INT32_MAX ? INT32_MAX : (int32_t)n;
  size_t w = 0;
  if (cap == 0)
    return 0;
  while (i < len) {
    int32_t start = i;
    UChar32 c;
    int ok;
    U8_NEXT((const uint8_t *)json, i, len, c);
    /* outside its strings JSON text is printable ASCII, so whatever is
     * escaped here is inside a string, where \uXXXX means the same */
    if (c < 0)
      ok = put_u(out, cap, &w, 0xfffd);
    else if (c >= 0x7f && sk__cp_is_unsafe((uint32_t)c))
      ok = put_escaped(out, cap, &w, c);
    else
      ok = put(out, cap, &w, json + start, (size_t)(i - start));
    if (!ok)
      break;
  }
  out[w] = '\0';
  return w;
}
