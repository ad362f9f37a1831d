/* test_fastpath.c - the flat-head shortcuts (src/wire/fastpath.c) against
 * jansson, the authority: whatever the fast parser accepts, jansson accepts
 * as an equal object; whatever the fast writer writes is byte for byte what
 * json_dumpb(JSON_COMPACT) writes. Random heads from a grammar that mixes
 * the simple forms with everything the fast path must refuse. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sockit/error.h"
#include "sockit/frame.h"
#include "wire/fastpath.h"
#include "wire/text.h"

static uint64_t rng = 88172645463325252ull;
static unsigned rnd(unsigned n) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (unsigned)(rng % n);
}

static const char *const keys[] = {"type", "size", "id", "name", "", "a\\\"b", "\xc3\xa9", "t y"};
static const char *const vals[] = {"\"echo\"",
                                   "64",
                                   "0",
                                   "-0",
                                   "-7",
                                   "123456789012345678",
                                   "1234567890123456789",
                                   "9223372036854775807",
                                   "1.5",
                                   "1e3",
                                   "01",
                                   "true",
                                   "false",
                                   "null",
                                   "\"\"",
                                   "\"a\\nb\"",
                                   "\"\\u0041\"",
                                   "\"\xc3\xa9\"",
                                   "[1]",
                                   "{\"x\":1}",
                                   "-",
                                   "\"unterminated",
                                   "tru",
                                   "\"ping\"",
                                   "\"x/y\"",
                                   "\"\x7f\""};
static const char *const seps[] = {",", ",", ",", ", ", " ,", ",,"};

/* A head: mostly well-formed compact objects, sometimes not. */
static size_t make_head(char *buf, size_t cap) {
  size_t n = 0;
  int members = (int)rnd(5);
  n += (size_t)snprintf(buf + n, cap - n, "%s", rnd(20) ? "{" : " {");
  for (int i = 0; i < members; i++) {
    if (i > 0)
      n += (size_t)snprintf(buf + n, cap - n, "%s", seps[rnd(6) < 4 ? 0 : rnd(6)]);
    n += (size_t)snprintf(buf + n, cap - n, "\"%s\"%s%s", keys[rnd(8)], rnd(15) ? ":" : ": ",
                          vals[rnd(sizeof(vals) / sizeof(vals[0]))]);
  }
  n += (size_t)snprintf(buf + n, cap - n, "%s", rnd(20) ? "}" : rnd(2) ? "} " : "");
  if (rnd(10) == 0 && n > 0)
    n -= rnd((unsigned)n); /* cut short */
  if (rnd(10) == 0 && n > 0)
    buf[rnd((unsigned)n)] = (char)rnd(256); /* one wild byte */
  return n;
}

/* The flat parser, seen as the jansson object it stands for. */
static json_t *parse_fast(const char *text, size_t n) {
  sk_flat *f = sk__flat_parse(text, n);
  json_t *o = f != NULL ? sk__flat_json(f) : NULL;
  ck_assert(f == NULL || o != NULL);
  free(f);
  return o;
}

START_TEST(parse_matches_jansson) {
  char buf[1024];
  int accepted = 0;
  for (int i = 0; i < 200000; i++) {
    size_t n = make_head(buf, sizeof(buf));
    json_t *fast = parse_fast(buf, n);
    if (fast == NULL)
      continue;
    json_error_t e;
    json_t *ref = json_loadb(buf, n, JSON_ALLOW_NUL, &e);
    if (ref == NULL || !json_equal(fast, ref))
      ck_abort_msg("fast path accepted what jansson reads differently: %.*s", (int)n, buf);
    /* the same members in the same order: the dump is identical too */
    char *a = json_dumps(fast, JSON_COMPACT), *b = json_dumps(ref, JSON_COMPACT);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    json_decref(ref);
    json_decref(fast);
    accepted++;
  }
  ck_assert_int_gt(accepted, 1000); /* the fast path is not vacuous */
}
END_TEST

START_TEST(parse_common_heads) {
  static const char *const ok[] = {"{\"type\":\"echo\",\"size\":64}",
                                   "{\"type\":\"echo\",\"size\":64,\"id\":7}",
                                   "{\"type\":\"ping\"}", "{\"type\":\"echo\",\"id\":\"x-1\"}"};
  static const char *const no[] = {
      "{}",          "{\"type\":\"echo\" }", "{\"type\":\"\\u0065cho\"}", "{\"size\":1.0}",
      "{\"a\":[1]}", "{\"type\":\"echo\"}x"};
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    json_t *o = parse_fast(ok[i], strlen(ok[i]));
    ck_assert_msg(o != NULL, "%s", ok[i]);
    json_decref(o);
  }
  for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
    ck_assert_msg(parse_fast(no[i], strlen(no[i])) == NULL, "%s", no[i]);
}
END_TEST

static json_t *random_value(void) {
  static const char *const strs[] = {"echo", "", "a\"b", "x/y", "\xc3\xa9", "tab\there", "~"};
  static const json_int_t ints[] = {
      0, 1, -1, 64, 9223372036854775807LL, -9223372036854775807LL - 1};
  switch (rnd(7)) {
  case 0:
    return json_string(strs[rnd(7)]);
  case 1:
    return json_integer(ints[rnd(6)]);
  case 2:
    return json_integer((json_int_t)rng);
  case 3:
    return rnd(2) ? json_true() : json_false();
  case 4:
    return json_null();
  case 5:
    return json_real(1.5);
  default:
    return rnd(4) ? json_string("ping") : json_array();
  }
}

START_TEST(dump_matches_jansson) {
  static const char *const names[] = {"type", "size", "id", "", "k\"", "\xc3\xa9", "name"};
  char fast[2048], ref[2048];
  int written = 0;
  for (int i = 0; i < 100000; i++) {
    json_t *o = json_object();
    int members = (int)rnd(5);
    for (int m = 0; m < members; m++)
      json_object_set_new(o, names[rnd(7)], random_value());
    ssize_t n = sk__head_dump_fast(o, fast, sizeof(fast));
    size_t r = json_dumpb(o, ref, sizeof(ref), JSON_COMPACT);
    if (n >= 0) {
      ck_assert_uint_eq((size_t)n, r);
      ck_assert_msg(memcmp(fast, ref, r) == 0, "%.*s vs %.*s", (int)n, fast, (int)r, ref);
      written++;
    }
    json_decref(o);
  }
  ck_assert_int_gt(written, 1000);
}
END_TEST

/* Every reader of the head API on the same key of two heads. */
static void same_readers(const sk_head *a, const sk_head *b, const char *key) {
  int64_t ia = 0, ib = 0;
  int ba = 0, bb = 0;
  double da = 0, db = 0;
  const char *sa = sk_head_str(a, key), *sb = sk_head_str(b, key);
  char ta[256], tb[256];
  ck_assert_int_eq(sk_head_has(a, key), sk_head_has(b, key));
  ck_assert(sa == sb || (sa && sb && strcmp(sa, sb) == 0));
  ck_assert_uint_eq(sk_head_strlen(a, key), sk_head_strlen(b, key));
  ck_assert_int_eq(sk_head_int(a, key, &ia), sk_head_int(b, key, &ib));
  ck_assert_int_eq(ia, ib);
  ck_assert_int_eq(sk_head_bool(a, key, &ba), sk_head_bool(b, key, &bb));
  ck_assert_int_eq(ba, bb);
  ck_assert_int_eq(sk_head_double(a, key, &da), sk_head_double(b, key, &db));
  ck_assert(da == db);
  ck_assert_ptr_null(sk_head_obj(a, key));
  ck_assert_uint_eq(sk_head_arr_len(a, key), sk_head_arr_len(b, key));
  ssize_t na = sk__head_member_text(a, key, ta, sizeof(ta));
  ssize_t nb = sk__head_member_text(b, key, tb, sizeof(tb));
  ck_assert_int_eq(na, nb);
  ck_assert(na <= 0 || memcmp(ta, tb, (size_t)na) == 0);
}

/* A head from the grammar that starts with a string "type" when it starts
 * with '{' (valid heads need one). */
static size_t typed_head(char *buf, size_t cap) {
  static const char type[] = "{\"type\":\"t\"";
  const size_t k = sizeof(type) - 1;
  size_t n = make_head(buf + k, cap - k);
  if (n < 2 || buf[k] != '{') {
    memmove(buf, buf + k, n);
    return n;
  }
  memcpy(buf, type, k);
  if (buf[k + 1] == '}') { /* "{}": the type is the only member */
    memmove(buf + k, buf + k + 1, n - 1);
    return n - 1 + k;
  }
  buf[k] = ',';
  return n + k;
}

/* sk_head_parse hands out flat heads for simple text: every reader must
 * answer as it does on the jansson object of the same text, and a writer
 * must turn it into that object first. */
START_TEST(flat_heads_read_like_jansson) {
  static const char *const probe[] = {"type", "size", "id", "name", "", "nope"};
  char buf[1024];
  int flat = 0;
  for (int i = 0; i < 200000; i++) {
    size_t n = rnd(2) ? make_head(buf, sizeof(buf)) : typed_head(buf, sizeof(buf));
    int err = 0;
    sk_head *h = sk_head_parse(buf, n, &err);
    json_error_t e;
    json_t *ref = json_loadb(buf, n, JSON_ALLOW_NUL, &e);
    if (h == NULL || *(const unsigned *)h != SK_FLAT_TAG) {
      sk_head_free(h);
      json_decref(ref);
      continue;
    }
    flat++;
    ck_assert_ptr_nonnull(ref);
    for (size_t k = 0; k < sizeof(probe) / sizeof(probe[0]); k++)
      same_readers(h, (sk_head *)ref, probe[k]);
    ck_assert_str_eq(sk_head_type(h), sk_head_type((sk_head *)ref));
    ck_assert_uint_eq(sk_head_size(h), sk_head_size((sk_head *)ref));
    uint8_t ea[2048], eb[2048];
    ssize_t la = sk_head_encode(h, ea, sizeof(ea)),
            lb = sk_head_encode((sk_head *)ref, eb, sizeof(eb));
    ck_assert_int_eq(la, lb);
    ck_assert(memcmp(ea, eb, (size_t)la) == 0);
    sk_head *d = sk_head_dup(h);
    ck_assert(json_equal((json_t *)d, ref));
    sk_head_free(d);
    ck_assert_int_eq(sk_head_set_int(h, "n", 1), 0); /* a writer: now a jansson object */
    json_object_set_new(ref, "n", json_integer(1));
    for (size_t k = 0; k < sizeof(probe) / sizeof(probe[0]); k++)
      same_readers(h, (sk_head *)ref, probe[k]);
    la = sk_head_encode(h, ea, sizeof(ea));
    lb = sk_head_encode((sk_head *)ref, eb, sizeof(eb));
    ck_assert_int_eq(la, lb);
    ck_assert(memcmp(ea, eb, (size_t)la) == 0);
    sk_head_free(h);
    json_decref(ref);
  }
  ck_assert_int_gt(flat, 1000);
}
END_TEST

/* A random "id": the values above, a nested object, or a long string. */
static json_t *random_id(void) {
  char longer[3000];
  switch (rnd(10)) {
  case 0:
    return json_pack("{s:i,s:[s,n]}", "a", 1, "b", "c");
  case 1:
    memset(longer, 'x', sizeof(longer) - 1);
    longer[rnd(sizeof(longer) - 1)] = '\0';
    return json_string(longer);
  default:
    return random_value();
  }
}

/* The core writes fixed response heads as text and splices the request's id
 * in (net/conn.c, sk__conn_send_text): the result must be byte for byte
 * what sk_head_encode writes for the same head with the id copied in. */
START_TEST(member_text_splices_like_encode) {
  static const char text[] = "{\"type\":\"echo\",\"size\":64";
  char id[4096], spliced[8192];
  uint8_t ref[8192];
  for (int i = 0; i < 100000; i++) {
    json_t *req = json_object(), *resp = json_pack("{s:s,s:i}", "type", "echo", "size", 64);
    if (rnd(8) != 0)
      json_object_set_new(req, "id", random_id());
    ssize_t n = sk__head_member_text((sk_head *)req, "id", id, sizeof(id));
    ck_assert_int_ge(n, 0);
    ck_assert_int_le(n, (ssize_t)sizeof(id));
    int len = n == 0 ? snprintf(spliced, sizeof(spliced), "%s}", text)
                     : snprintf(spliced, sizeof(spliced), "%s,\"id\":%.*s}", text, (int)n, id);
    ck_assert_int_eq(sk_head_copy_member((sk_head *)resp, (sk_head *)req, "id"), 0);
    ssize_t r = sk_head_encode((sk_head *)resp, ref, sizeof(ref));
    ck_assert_int_eq(r, len + (ssize_t)SK_PREFIX_LEN);
    ck_assert_msg(memcmp(ref + SK_PREFIX_LEN, spliced, (size_t)len) == 0, "%s", spliced);
    ck_assert_int_eq(sk__head_member_text((sk_head *)req, "id", id, 2), n); /* short: length */
    json_decref(req);
    json_decref(resp);
  }
}
END_TEST

/* Through the public codec: the fast path changes nothing a caller sees. */
START_TEST(codec_round_trip) {
  uint8_t buf[128];
  int err = 0;
  const char *text = "{\"type\":\"echo\",\"size\":64,\"id\":7}";
  sk_head *h = sk_head_parse(text, strlen(text), &err);
  ck_assert_ptr_nonnull(h);
  ck_assert_str_eq(sk_head_type(h), "echo");
  ck_assert_uint_eq(sk_head_size(h), 64);
  ssize_t n = sk_head_encode(h, buf, sizeof(buf));
  ck_assert_int_eq(n, (ssize_t)(strlen(text) + SK_PREFIX_LEN));
  ck_assert(memcmp(buf + SK_PREFIX_LEN, text, strlen(text)) == 0);
  ck_assert_int_eq(sk_head_encode(h, buf, 10), n); /* short buffer: the length still */
  sk_head_free(h);
  text = "{\"type\":\"echo\",\"size\":-1}";
  ck_assert_ptr_null(sk_head_parse(text, strlen(text), &err));
  ck_assert_int_eq(err, SK_EBADFRAME);
}
END_TEST

int main(void) {
  Suite *s = suite_create("fastpath");
  TCase *tc = tcase_create("core");
  int failed;
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, parse_matches_jansson);
  tcase_add_test(tc, parse_common_heads);
  tcase_add_test(tc, dump_matches_jansson);
  tcase_add_test(tc, codec_round_trip);
  tcase_add_test(tc, member_text_splices_like_encode);
  tcase_add_test(tc, flat_heads_read_like_jansson);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
