/* seed.c - the seed wire's formats (SPEC 6), without I/O. */
#include "wire/seed.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "sockit/error.h"

/* Python's str.isspace() for ASCII: also the separators 0x1c..0x1f. */
static bool py_space(unsigned char c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

int sk__seed_parse_ts(const char *p, size_t n, int64_t *out) {
  size_t i = 0, end = n;
  bool neg = false;
  uint64_t v = 0, limit;

  while (i < end && py_space((unsigned char)p[i]))
    i++;
  while (end > i && py_space((unsigned char)p[end - 1]))
    end--;
  if (i < end && (p[i] == '+' || p[i] == '-'))
    neg = p[i++] == '-';
  if (i == end)
    return SK_EBADREQ;
  limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  for (; i < end; i++) {
    unsigned d = (unsigned char)p[i] - '0';
    if (d > 9 || v > (limit - d) / 10)
      return SK_EBADREQ;
    v = v * 10 + d;
  }
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return 0;
}

int sk__seed_head_len(const uint8_t p[4], uint32_t *out) {
  uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
  if (v < SK_SEED_HEAD_MIN)
    return SK_EBADREQ;
  if (v > SK_SEED_HEAD_MAX) /* also every negative 'i' */
    return SK_ETOOLARGE;
  *out = v;
  return 0;
}

void sk__seed_put_u32le(uint8_t out[4], uint32_t v) {
  for (int i = 0; i < 4; i++)
    out[i] = (uint8_t)(v >> (8 * i));
}

int sk__seed_base_name(const char *p, size_t n, char *out, size_t cap) {
  size_t start = n, len;
  while (start > 0 && p[start - 1] != '/' && p[start - 1] != '\\')
    start--;
  len = n - start;
  /* "" and ".." are covered by the hidden-name rule, "." too */
  if (len == 0 || len > SK_SEED_NAME_MAX || len >= cap || p[start] == '.')
    return SK_EFORBIDDEN;
  for (size_t i = start; i < n; i++)
    if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
      return SK_EFORBIDDEN;
  memcpy(out, p + start, len);
  out[len] = '\0';
  return (int)len;
}

int sk__seed_put_head_parse(const char *json, size_t n, uint64_t max_file, sk_seed_put_head *out) {
  json_t *root = json_loadb(json, n, JSON_REJECT_DUPLICATES, NULL);
  json_t *name = json_object_get(root, "filename"), *size = json_object_get(root, "filesize");
  int rc = SK_EBADREQ;

  if (!json_is_object(root) || !json_is_string(name) || !json_is_integer(size) ||
      json_integer_value(size) < 0)
    goto out;
  rc = SK_ETOOLARGE;
  if ((uint64_t)json_integer_value(size) > max_file)
    goto out;
  rc = sk__seed_base_name(json_string_value(name), json_string_length(name), out->name,
                          sizeof(out->name));
  if (rc < 0)
    goto out;
  out->size = (uint64_t)json_integer_value(size);
  rc = 0;
out:
  json_decref(root);
  return rc;
}

int sk__seed_equal(const uint8_t *a, const uint8_t *b, size_t n) {
  volatile uint8_t acc = 0;
  for (size_t i = 0; i < n; i++)
    acc |= a[i] ^ b[i];
  return acc == 0;
}

int sk__seed_digits(const uint8_t *rnd, size_t n, char *out, size_t cap, size_t digits) {
  size_t got = 0;
  if (digits == 0 || cap <= digits)
    return -EINVAL;
  for (size_t i = 0; i < n && got < digits; i++) {
    /* 250 is the largest multiple of 10 in a byte: above it, bias */
    if (rnd[i] >= 250 || (got == 0 && rnd[i] % 10 == 0))
      continue;
    out[got++] = (char)('0' + rnd[i] % 10);
  }
  if (got < digits)
    return -EAGAIN;
  out[got] = '\0';
  return (int)got;
}

static const uint8_t replacement[3] = {0xef, 0xbf, 0xbd}; /* U+FFFD */

/* The length of the UTF-8 sequence that lead byte b starts, 1 for any
 * other byte (passed on alone). */
static size_t utf8_len(uint8_t b) {
  return b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xc2 && b <= 0xdf ? 2 : 1;
}

/* Do in[i..n) start a sequence of len bytes that the end of in cut short? */
static int cut_short(const uint8_t *in, size_t i, size_t n, size_t len) {
  if (len == 1 || i + len <= n)
    return 0;
  for (size_t k = i + 1; k < n; k++)
    if ((in[k] & 0xc0) != 0x80)
      return 0; /* not a sequence at all: its bytes pass alone */
  return 1;
}

size_t sk__seed_chat_clean(const uint8_t *in, size_t n, uint8_t *out, size_t *keep) {
  size_t i = 0, w = 0;
  *keep = 0;
  while (i < n) {
    uint8_t b = in[i];
    size_t len = utf8_len(b);
    if ((b < 0x20 && b != '\n' && b != '\t') || b == 0x7f) {
      memcpy(out + w, replacement, 3);
      w += 3;
      i++;
    } else if (cut_short(in, i, n, len)) {
      *keep = n - i;
      break;
    } else if (b == 0xc2 && i + 1 < n && in[i + 1] >= 0x80 && in[i + 1] <= 0x9f) {
      memcpy(out + w, replacement, 3); /* a C1 control */
      w += 3;
      i += 2;
    } else {
      out[w++] = b;
      i++;
    }
  }
  return w;
}
