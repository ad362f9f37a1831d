/* fuzz_head.c - head validation and the accessors every handler calls.
 *
 * The input is a head's JSON text. It is parsed as the server parses a
 * frame head; when that succeeds, every accessor a request handler of any
 * type uses is called on it (strings, integers, booleans, reals, arrays,
 * nested objects, "env" iteration, "id" copied into a reply), and the reply
 * is encoded as the server would send it. Parsing must agree with the
 * SPEC 4.1 rules: an object, a string "type", "size" an integer in
 * 0..2^53-1. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "sockit/auth.h"
#include "sockit/error.h"
#include "sockit/frame.h"

static const char *const str_keys[] = {
    "type", "name",  "room", "nick", "nonce",   "mac",    "tz",    "format", "shell",  "code",
    "hash", "event", "from", "text", "message", "signal", "proto", "auth",   "server", "id"};
static const char *const int_keys[] = {"ts",      "total",   "offset", "mode",   "mtime",
                                       "history", "timeout", "code",   "signal", "length",
                                       "partial", "size",    "id"};
static const char *const bool_keys[] = {"stdin", "eof", "exclusive", "exists", "timed_out"};
static const char *const arr_keys[] = {"argv", "entries", "members", "services", "hashes"};

static int count_env(void *ctx, const char *key, const char *val) {
  size_t *n = ctx;
  FUZZ_CHECK(key != NULL && val != NULL);
  (*n)++;
  return 0;
}

static void read_everything(const sk_head *h, int depth) {
  int64_t i64;
  int b;
  double d;
  size_t n = 0;
  for (size_t k = 0; k < sizeof(str_keys) / sizeof(*str_keys); k++) {
    const char *s = sk_head_str(h, str_keys[k]);
    size_t len = sk_head_strlen(h, str_keys[k]);
    if (s != NULL) {
      FUZZ_CHECK(strlen(s) <= len); /* "\u0000" is refused, but stay honest */
      (void)sk_auth_is_hex64(s);
      (void)sk_err_from_wire(s);
    }
  }
  for (size_t k = 0; k < sizeof(int_keys) / sizeof(*int_keys); k++) {
    int rc = sk_head_int(h, int_keys[k], &i64);
    FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == SK_EBADREQ);
    FUZZ_CHECK((rc == -ENOENT) == !sk_head_has(h, int_keys[k]));
    rc = sk_head_double(h, int_keys[k], &d);
    FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == SK_EBADREQ);
  }
  for (size_t k = 0; k < sizeof(bool_keys) / sizeof(*bool_keys); k++) {
    int rc = sk_head_bool(h, bool_keys[k], &b);
    FUZZ_CHECK(rc == 0 || rc == -ENOENT || rc == SK_EBADREQ);
    FUZZ_CHECK(rc != 0 || b == 0 || b == 1);
  }
  for (size_t k = 0; k < sizeof(arr_keys) / sizeof(*arr_keys); k++) {
    size_t len = sk_head_arr_len(h, arr_keys[k]);
    for (size_t i = 0; i <= len; i++) { /* one past the end on purpose */
      const char *s = sk_head_arr_str(h, arr_keys[k], i);
      const sk_head *o = sk_head_arr_obj(h, arr_keys[k], i);
      FUZZ_CHECK(i < len || (s == NULL && o == NULL));
      if (o != NULL && depth < 2)
        read_everything(o, depth + 1);
    }
  }
  int rc = sk_head_each_str(sk_head_obj(h, "env"), count_env, &n);
  FUZZ_CHECK(rc == 0 || rc == -EINVAL);
}

/* What every handler does last: a reply that repeats the request's id. */
static void reply(const sk_head *req) {
  sk_head *r = sk_head_new(sk_head_type(req));
  uint8_t *out = NULL;
  ssize_t n;
  FUZZ_CHECK(r != NULL);
  FUZZ_CHECK(sk_head_copy_member(r, req, "id") == 0);
  FUZZ_CHECK(sk_head_set_int(r, "size", (int64_t)sk_head_size(req)) == 0);
  n = sk_head_encode_alloc(r, &out);
  FUZZ_CHECK(n > 0 || n == SK_ETOOLARGE || n == -EINVAL);
  if (n > 0) {
    int err = 0;
    sk_head *back = sk_head_parse(out + SK_PREFIX_LEN, (size_t)n - SK_PREFIX_LEN, &err);
    FUZZ_CHECK(back != NULL && sk_head_size(back) == sk_head_size(req));
    sk_head_free(back);
  }
  free(out);
  sk_head_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int err = 0;
  sk_head *h;
  if (size > SK_HEAD_MAX)
    return 0;
  h = sk_head_parse(data, size, &err);
  if (h == NULL) {
    FUZZ_CHECK(err == SK_EBADFRAME || err == -ENOMEM);
    return 0;
  }
  FUZZ_CHECK(sk_head_type(h) != NULL);
  FUZZ_CHECK(sk_head_size(h) <= SK_SIZE_MAX);
  read_everything(h, 0);
  reply(h);
  sk_head *copy = sk_head_dup(h);
  FUZZ_CHECK(copy != NULL && strcmp(sk_head_type(copy), sk_head_type(h)) == 0);
  sk_head_free(copy);
  sk_head_free(h);
  return 0;
}
