/* escape.c - show untrusted text safely (escape.h). */
#include "common/escape.h"

#include <stdio.h>
#include <string.h>

/* Format (Cf), bidi, separator and default-ignorable ranges (Unicode 15),
 * sorted. C0, DEL and C1 are tested apart. */
static const struct {
  uint32_t lo, hi;
} unsafe_ranges[] = {
    {0x00AD, 0x00AD},   {0x034F, 0x034F},   {0x0600, 0x0605},   {0x061C, 0x061C},
    {0x06DD, 0x06DD},   {0x070F, 0x070F},   {0x0890, 0x0891},   {0x08E2, 0x08E2},
    {0x115F, 0x1160},   {0x17B4, 0x17B5},   {0x180B, 0x180F},   {0x200B, 0x200C},
    {0x200E, 0x200F},   {0x2028, 0x202E},   {0x2060, 0x206F},   {0x3164, 0x3164},
    {0xFEFF, 0xFEFF},   {0xFFA0, 0xFFA0},   {0xFFF0, 0xFFFB},   {0x110BD, 0x110BD},
    {0x110CD, 0x110CD}, {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A},
    {0xE0000, 0xE0FFF},
};

int sk__cp_is_unsafe(uint32_t cp) {
  size_t lo = 0, hi = sizeof(unsafe_ranges) / sizeof(unsafe_ranges[0]);
  if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
    return 1;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cp < unsafe_ranges[mid].lo)
      hi = mid;
    else if (cp > unsafe_ranges[mid].hi)
      lo = mid + 1;
    else
      return 1;
  }
  return 0;
}

/* Decode one UTF-8 sequence at s (n > 0 bytes left): its length, with the
 * code point in *cp, or 0 when the first byte does not start a valid,
 * shortest-form sequence of a scalar value. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
  size_t len;
  uint32_t v, min;
  if (s[0] < 0x80) {
    *cp = s[0];
    return 1;
  }
  /* the lead byte's 1s give the length; 2..4 bytes, each with its own
   * smallest value (anything below it is an overlong form) */
  static const uint32_t smallest[5] = {0, 0, 0x80, 0x800, 0x10000};
  len = s[0] >= 0xF8 ? 0 : s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 0;
  if (len == 0)
    return 0;
  v = s[0] & (0x7Fu >> len);
  min = smallest[len];
  if (len > n)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    v = (v << 6) | (s[i] & 0x3Fu);
  }
  if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
    return 0;
  *cp = v;
  return len;
}

int sk__text_needs_escape(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    uint32_t cp;
    size_t len = utf8_decode(p + i, n - i, &cp);
    if (len == 0 || sk__cp_is_unsafe(cp))
      return 1;
    i += len;
  }
  return 0;
}

/* The escape for one unsafe code point (or, with len 0, one bad byte). */
static int escape_one(char *buf, size_t cap, uint32_t cp, size_t len) {
  if (len == 0 || cp < 0x80) {
    switch (cp) {
    case '\n':
      return snprintf(buf, cap, "\\n");
    case '\r':
      return snprintf(buf, cap, "\\r");
    case '\t':
      return snprintf(buf, cap, "\\t");
    }
    return snprintf(buf, cap, "\\x%02x", (unsigned)cp);
  }
  if (cp > 0xFFFF)
    return snprintf(buf, cap, "\\U%08x", (unsigned)cp);
  return snprintf(buf, cap, "\\u%04x", (unsigned)cp);
}

size_t sk__escape_text(char *out, size_t cap, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, need = 0, written = 0;
  int full = cap == 0;
  while (i < n) {
    char esc[16];
    const char *piece = (const char *)p + i;
    uint32_t cp;
    size_t len = utf8_decode(p + i, n - i, &cp), plen = len;
    if (len == 0) {
      plen = (size_t)escape_one(esc, sizeof(esc), p[i], 0);
      piece = esc;
      len = 1;
    } else if (sk__cp_is_unsafe(cp)) {
      plen = (size_t)escape_one(esc, sizeof(esc), cp, len);
      piece = esc;
    }
    /* only whole pieces go out, so a cut never leaves half an escape */
    if (!full && written + plen < cap) {
      memcpy(out + written, piece, plen);
      written += plen;
    } else {
      full = 1;
    }
    need += plen;
    i += len;
  }
  if (cap > 0)
    out[written] = '\0';
  return need;
}
