/* test_frame.c - the frame codec: heads, encoding, incremental decoding.
 *
 * Decoder inputs are placed right before a PROT_NONE page where noted
 * (picohttpparser's trick), so any read past the end crashes the test. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sockit/error.h"
#include "sockit/frame.h"

/* Plain check for hot loops: ck_assert records a mark point (a write) on
 * every success, which would dominate the every-split-point tests. */
#define REQUIRE(c)                                                                                 \
  do {                                                                                             \
    if (!(c))                                                                                      \
      ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #c);                                           \
  } while (0)

/* ---- guarded buffers ---------------------------------------------------- */

#define GUARD_SPAN (256u * 1024u)

/* End of a GUARD_SPAN-byte writable area followed by a PROT_NONE page. */
static uint8_t *guard_end(void) {
  static uint8_t *end;
  if (end == NULL) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *m =
        mmap(NULL, GUARD_SPAN + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(m, MAP_FAILED);
    ck_assert_int_eq(mprotect(m + GUARD_SPAN, pg, PROT_NONE), 0);
    end = m + GUARD_SPAN;
  }
  return end;
}

/* Copy n bytes so that the last one sits just before the guard page. */
static uint8_t *guard_put(const void *src, size_t n) {
  REQUIRE(n <= GUARD_SPAN);
  memmove(guard_end() - n, src, n);
  return guard_end() - n;
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* Decode one frame made of a head_len prefix and n bytes of JSON, guarded. */
static ssize_t decode_raw(uint32_t max_head, const char *json, size_t n, sk_head **h) {
  static uint8_t frame[SK_PREFIX_LEN + SK_HEAD_MAX + 16];
  sk_decoder d;
  REQUIRE(n + SK_PREFIX_LEN <= sizeof(frame));
  put_be32(frame, (uint32_t)n);
  memcpy(frame + SK_PREFIX_LEN, json, n);
  sk_decoder_init(&d, max_head);
  *h = NULL;
  return sk_decode_head(&d, guard_put(frame, n + SK_PREFIX_LEN), n + SK_PREFIX_LEN, h);
}

static ssize_t decode_json(const char *json) {
  sk_head *h;
  ssize_t r = decode_raw(0, json, strlen(json), &h);
  sk_head_free(h);
  return r;
}

/* ---- the mixed stream --------------------------------------------------- */

struct frame {
  const char *type;
  uint64_t size;
  const char *str; /* a "text" member, or NULL */
  uint8_t *enc;    /* prefix + head as encoded */
  size_t enc_len;
  const uint8_t *body; /* into stream */
};

static struct frame frames[] = {
    {"hello", 0, NULL, NULL, 0, NULL},
    {"echo", 0, "size zero given explicitly", NULL, 0, NULL},
    {"say", 1, "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xf0\x9d\x84\x9e \xe6\x97\xa5\xe6\x9c\xac",
     NULL, 0, NULL},
    {"put", 1000, "/tmp/\xc3\xbc", NULL, 0, NULL},
    {"ping", 0, NULL, NULL, 0, NULL},
    {"echo", 70000, "big", NULL, 0, NULL},
    {"\xce\xb1\xce\xb2\xce\xb3", 0, "\xe2\x82\xac", NULL, 0, NULL},
    {"data", 1, NULL, NULL, 0, NULL}, /* the stream ends inside a body */
};
#define NFRAMES (sizeof(frames) / sizeof(frames[0]))

static uint8_t *stream;
static size_t stream_len;

static void build_stream(void) {
  size_t cap = 0, off = 0;
  for (size_t i = 0; i < NFRAMES; i++) {
    struct frame *f = &frames[i];
    sk_head *h = sk_head_new(f->type);
    ck_assert_ptr_nonnull(h);
    if (f->str)
      ck_assert_int_eq(sk_head_set_str(h, "text", f->str), 0);
    if (f->size || f->str) /* frame 1 carries an explicit "size":0 */
      ck_assert_int_eq(sk_head_set_int(h, "size", (int64_t)f->size), 0);
    ck_assert_int_gt(sk_head_encode_alloc(h, &f->enc), 0);
    f->enc_len = (size_t)sk_head_encode(h, NULL, 0);
    sk_head_free(h);
    cap += f->enc_len + f->size;
  }
  stream = malloc(cap);
  for (size_t i = 0; i < NFRAMES; i++) {
    memcpy(stream + off, frames[i].enc, frames[i].enc_len);
    off += frames[i].enc_len;
    frames[i].body = stream + off;
    for (uint64_t k = 0; k < frames[i].size; k++)
      stream[off++] = (uint8_t)(k * 31 + i * 7 + 1);
  }
  stream_len = off;
}

static void free_stream(void) {
  for (size_t i = 0; i < NFRAMES; i++)
    free(frames[i].enc);
  free(stream);
}

/* A consumer shaped like a connection: it decodes straight from each chunk
 * and keeps only an unfinished head (or a few bytes more) for next time. */
struct feeder {
  sk_decoder d;
  size_t nheads;     /* heads decoded so far */
  uint64_t body_pos; /* bytes of the current body seen */
  int guard;         /* decode buffered bytes from a guarded copy */
  size_t plen;
  uint8_t pend[SK_PREFIX_LEN + SK_HEAD_MAX];
};

static void on_head(struct feeder *f, sk_head *h) {
  uint8_t enc[512];
  const struct frame *e;
  REQUIRE(f->nheads < NFRAMES);
  REQUIRE(f->nheads == 0 || f->body_pos == frames[f->nheads - 1].size);
  e = &frames[f->nheads++];
  REQUIRE(strcmp(sk_head_type(h), e->type) == 0);
  REQUIRE(sk_head_size(h) == e->size);
  REQUIRE(e->str == NULL || strcmp(sk_head_str(h, "text"), e->str) == 0);
  REQUIRE(sk_head_encode(h, enc, sizeof(enc)) == (ssize_t)e->enc_len);
  REQUIRE(memcmp(enc, e->enc, e->enc_len) == 0);
  REQUIRE(f->d.in_body == (e->size > 0));
  f->body_pos = 0;
}

static void on_body(struct feeder *f, const uint8_t *p, size_t n) {
  const struct frame *e = &frames[f->nheads - 1];
  REQUIRE(f->nheads > 0 && f->body_pos + n <= e->size);
  REQUIRE(memcmp(p, e->body + f->body_pos, n) == 0);
  f->body_pos += n;
}

/* Decode heads and bodies from p; returns the bytes consumed. */
static size_t process(struct feeder *f, const uint8_t *p, size_t n) {
  size_t off = 0;
  for (;;) {
    sk_head *h = NULL;
    ssize_t r;
    if (f->d.in_body) {
      size_t a = sk_decoder_body_avail(&f->d, n - off);
      if (a == 0)
        return off;
      on_body(f, p + off, a);
      sk_decoder_body_consume(&f->d, a);
      off += a;
      continue;
    }
    r = sk_decode_head(&f->d, p + off, n - off, &h);
    REQUIRE(r >= 0);
    if (r == 0) {
      REQUIRE(h == NULL);
      return off;
    }
    on_head(f, h);
    sk_head_free(h);
    off += (size_t)r;
  }
}

static void feed(struct feeder *f, const uint8_t *p, size_t n) {
  while (n > 0) {
    size_t take, used;
    if (f->plen == 0) {
      used = process(f, p, n);
      REQUIRE(n - used < sizeof(f->pend)); /* only an unfinished head is left */
      memcpy(f->pend, p + used, n - used);
      f->plen = n - used;
      return;
    }
    take = n < sizeof(f->pend) - f->plen ? n : sizeof(f->pend) - f->plen;
    memcpy(f->pend + f->plen, p, take);
    f->plen += take;
    p += take;
    n -= take;
    used = process(f, f->guard ? guard_put(f->pend, f->plen) : f->pend, f->plen);
    REQUIRE(used > 0 || n == 0); /* a full pend always holds a whole head */
    memmove(f->pend, f->pend + used, f->plen - used);
    f->plen -= used;
  }
}

static void feeder_init(struct feeder *f, int guard) {
  sk_decoder_init(&f->d, 0);
  f->nheads = 0;
  f->body_pos = 0;
  f->guard = guard;
  f->plen = 0;
}

static void feeder_done(const struct feeder *f) {
  REQUIRE(f->nheads == NFRAMES);
  REQUIRE(f->body_pos == frames[NFRAMES - 1].size);
  REQUIRE(!f->d.in_body && f->d.body_left == 0);
  REQUIRE(f->plen == 0);
}

static struct feeder feeder;

START_TEST(stream_whole_guarded) {
  size_t heads = 0, bodies = 0;
  for (size_t i = 0; i < NFRAMES; i++) {
    heads += frames[i].enc_len;
    bodies += frames[i].size;
  }
  ck_assert_uint_eq(bodies, 71002);
  ck_assert_uint_eq(stream_len, heads + bodies);
  feeder_init(&feeder, 1);
  feed(&feeder, guard_put(stream, stream_len), stream_len);
  feeder_done(&feeder);
}
END_TEST

START_TEST(stream_every_split) {
  /* The second piece ends the stream, so it ends right at the guard page. */
  const uint8_t *s = guard_put(stream, stream_len);
  for (size_t cut = 0; cut <= stream_len; cut++) {
    feeder_init(&feeder, 0);
    feed(&feeder, s, cut);
    feed(&feeder, s + cut, stream_len - cut);
    feeder_done(&feeder);
  }
}
END_TEST

START_TEST(stream_byte_by_byte_guarded) {
  feeder_init(&feeder, 1);
  for (size_t i = 0; i < stream_len; i++) {
    feed(&feeder, guard_put(stream + i, 1), 1);
    REQUIRE(feeder.plen < 512); /* never more than one unfinished head */
  }
  feeder_done(&feeder);
}
END_TEST

/* Every proper prefix of a frame's head is "need more", read from a guarded
 * buffer; the whole one is consumed exactly. */
START_TEST(head_prefixes_guarded) {
  for (size_t i = 0; i < NFRAMES; i++) {
    for (size_t k = 0; k <= frames[i].enc_len; k++) {
      sk_decoder d;
      sk_head *h = NULL;
      ssize_t r;
      sk_decoder_init(&d, 0);
      r = sk_decode_head(&d, guard_put(frames[i].enc, k), k, &h);
      if (k < frames[i].enc_len) {
        REQUIRE(r == 0 && h == NULL && !d.in_body);
      } else {
        REQUIRE(r == (ssize_t)k && h != NULL);
        REQUIRE(d.in_body == (frames[i].size > 0) && d.body_left == frames[i].size);
      }
      sk_head_free(h);
    }
  }
}
END_TEST

/* ---- limits ------------------------------------------------------------- */

/* A prefix alone: rejected as soon as its 4 bytes are there, 0 before. */
static void check_bad_len(uint32_t max_head, uint32_t hlen) {
  uint8_t pre[4];
  sk_decoder d;
  sk_head *h = NULL;
  put_be32(pre, hlen);
  sk_decoder_init(&d, max_head);
  ck_assert_int_eq(sk_decode_head(&d, guard_put(pre, 3), 3, &h), 0);
  ck_assert_int_eq(sk_decode_head(&d, guard_put(pre, 4), 4, &h), SK_EBADFRAME);
  ck_assert_ptr_null(h);
}

START_TEST(head_len_limits) {
  check_bad_len(0, 0);
  check_bad_len(0, 1);
  check_bad_len(0, SK_HEAD_MAX + 1);
  check_bad_len(0, 0x40000000u); /* 1 GiB */
  check_bad_len(0, 0xFFFFFFFFu);
  check_bad_len(100000, SK_HEAD_MAX + 1);            /* a looser max_head is clamped */
  ck_assert_int_eq(decode_json("{}"), SK_EBADFRAME); /* head_len 2 but no type */
}
END_TEST

START_TEST(tighter_max_head) {
  const char *j16 = "{\"type\":\"abcde\"}"; /* 16 bytes */
  sk_head *h;
  ck_assert_uint_eq(strlen(j16), 16);
  check_bad_len(16, 17);
  check_bad_len(15, 16);
  ck_assert_int_eq(decode_raw(16, j16, 16, &h), 20);
  ck_assert_str_eq(sk_head_type(h), "abcde");
  sk_head_free(h);
  ck_assert_int_eq(decode_raw(15, j16, 16, &h), SK_EBADFRAME);
  ck_assert_ptr_null(h);
}
END_TEST

START_TEST(not_objects) {
  ck_assert_int_eq(decode_json("[]"), SK_EBADFRAME);
  ck_assert_int_eq(decode_json("\"x\""), SK_EBADFRAME);
  ck_assert_int_eq(decode_json("1"), SK_EBADFRAME);
  ck_assert_int_eq(decode_json("null"), SK_EBADFRAME);
  ck_assert_int_eq(decode_json("[{\"type\":\"a\"}]"), SK_EBADFRAME);
  ck_assert_int_eq(decode_json("  "), SK_EBADFRAME);
}
END_TEST

START_TEST(type_not_string) {
  ck_assert_int_eq(decode_json("{\"type\":1}"), SK_EBADFRAME);
  ck_assert_int_eq(decode_json("{\"type\":null}"), SK_EBADFRAME);
  ck_assert_int_eq(decode_json("{\"type\":true}"), SK_EBADFRAME);
  ck_assert_int_eq(decode_json("{\"type\":[\"a\"]}"), SK_EBADFRAME);
  ck_assert_int_eq(decode_json("{\"type\":{}}"), SK_EBADFRAME);
  ck_assert_int_eq(decode_json("{\"Type\":\"a\"}"), SK_EBADFRAME);
  ck_assert_int_eq(decode_json("{\"size\":0}"), SK_EBADFRAME);
}
END_TEST

START_TEST(size_rules) {
  const char *max = "{\"type\":\"a\",\"size\":9007199254740991}";
  sk_decoder d;
  sk_head *h = NULL;
  uint8_t frame[64];
  ck_assert_int_eq(decode_json("{\"type\":\"a\",\"size\":-1}"), SK_EBADFRAME);
  ck_assert_int_eq(decode_json("{\"type\":\"a\",\"size\":1.5}"), SK_EBADFRAME);
  ck_assert_int_eq(decode_json("{\"type\":\"a\",\"size\":1.0}"), SK_EBADFRAME);
  ck_assert_int_eq(decode_json("{\"type\":\"a\",\"size\":1e3}"), SK_EBADFRAME);
  ck_assert_int_eq(decode_json("{\"type\":\"a\",\"size\":\"3\"}"), SK_EBADFRAME);
  ck_assert_int_eq(decode_json("{\"type\":\"a\",\"size\":null}"), SK_EBADFRAME);
  ck_assert_int_eq(decode_json("{\"type\":\"a\",\"size\":9007199254740992}"), SK_EBADFRAME);
  ck_assert_int_eq(decode_json("{\"type\":\"a\",\"size\":99999999999999999999}"), SK_EBADFRAME);
  ck_assert_int_eq(decode_json("{\"type\":\"a\",\"size\":0}"), 4 + 21);
  /* 2^53-1 is accepted and puts the decoder in a body of that length. */
  put_be32(frame, (uint32_t)strlen(max));
  memcpy(frame + 4, max, strlen(max));
  sk_decoder_init(&d, 0);
  ck_assert_int_eq(sk_decode_head(&d, guard_put(frame, 4 + strlen(max)), 4 + strlen(max), &h),
                   (ssize_t)(4 + strlen(max)));
  ck_assert_uint_eq(sk_head_size(h), SK_SIZE_MAX);
  ck_assert_int_eq(d.in_body, 1);
  ck_assert_uint_eq(d.body_left, SK_SIZE_MAX);
  sk_head_free(h);
}
END_TEST

START_TEST(invalid_utf8_and_nul) {
  static const struct {
    const char *s;
    size_t n;
  } bad[] = {
      {"{\"type\":\"\xff\"}", 12},
      {"{\"type\":\"\xc0\xaf\"}", 13},         /* overlong "/" */
      {"{\"type\":\"\xed\xa0\x80\"}", 14},     /* UTF-8 encoded surrogate */
      {"{\"type\":\"\xf4\x90\x80\x80\"}", 15}, /* above U+10FFFF */
      {"{\"type\":\"\xe2\x82\"}", 13},         /* truncated sequence */
      {"{\"\xff\":1,\"type\":\"a\"}", 19},     /* in a key */
      {"{\"type\":\"\\ud800\"}", 17},          /* lone surrogate escape */
      {"{\"type\":\"a\\u0000b\"}", 19},        /* escaped NUL */
      {"{\"type\":\"a\",\"x\":\"\0\"}", 19},   /* raw NUL */
  };
  sk_head *h;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ck_assert_int_eq(decode_raw(0, bad[i].s, bad[i].n, &h), SK_EBADFRAME);
    ck_assert_ptr_null(h);
  }
}
END_TEST

START_TEST(trailing_garbage) {
  sk_head *h;
  ck_assert_int_eq(decode_json("{\"type\":\"a\"}x"), SK_EBADFRAME);
  ck_assert_int_eq(decode_json("{\"type\":\"a\"}{}"), SK_EBADFRAME);
  ck_assert_int_eq(decode_json("{\"type\":\"a\"},"), SK_EBADFRAME);
  ck_assert_int_eq(decode_raw(0, "{\"type\":\"a\"}\0", 13, &h), SK_EBADFRAME);
  ck_assert_int_eq(decode_json("{\"type\":\"a\""), SK_EBADFRAME); /* truncated */
  /* Whitespace around the value is still one JSON value. */
  ck_assert_int_eq(decode_json(" {\"type\":\"a\"} \n"), 4 + 15);
}
END_TEST

START_TEST(duplicates_tolerated) {
  sk_head *h;
  const char *j = "{\"type\":\"a\",\"type\":\"b\"}";
  ck_assert_int_eq(decode_raw(0, j, strlen(j), &h), (ssize_t)(4 + strlen(j)));
  ck_assert_str_eq(sk_head_type(h), "b");
  sk_head_free(h);
}
END_TEST

START_TEST(parse_direct) {
  int err = 0;
  const char *j = "{\"type\":\"t\",\"s\":\"\\u00e9\\ud834\\udd1e\"}";
  sk_head *h = sk_head_parse(j, strlen(j), &err);
  ck_assert_ptr_nonnull(h);
  ck_assert_str_eq(sk_head_str(h, "s"), "\xc3\xa9\xf0\x9d\x84\x9e");
  ck_assert_uint_eq(sk_head_strlen(h, "s"), 6);
  sk_head_free(h);
  ck_assert_ptr_null(sk_head_parse("{\"type\":1}", 10, &err));
  ck_assert_int_eq(err, SK_EBADFRAME);
  err = 0;
  ck_assert_ptr_null(sk_head_parse("", 0, &err));
  ck_assert_int_eq(err, SK_EBADFRAME);
}
END_TEST

START_TEST(decoder_body_state) {
  const char *j = "{\"type\":\"a\",\"size\":10}";
  uint8_t buf[64];
  sk_decoder d;
  sk_head *h = NULL;
  size_t n = 4 + strlen(j);
  put_be32(buf, (uint32_t)strlen(j));
  memcpy(buf + 4, j, strlen(j));
  sk_decoder_init(&d, 0);
  ck_assert_int_eq(sk_decode_head(&d, buf, n, &h), (ssize_t)n);
  ck_assert_int_eq(d.in_body, 1);
  ck_assert_uint_eq(d.body_left, 10);
  ck_assert_int_eq(sk_decode_head(&d, buf, n, &h), -EINVAL); /* body first */
  ck_assert_uint_eq(sk_decoder_body_avail(&d, 3), 3);
  ck_assert_uint_eq(sk_decoder_body_avail(&d, 30), 10);
  sk_decoder_body_consume(&d, 4);
  ck_assert_uint_eq(d.body_left, 6);
  ck_assert_int_eq(d.in_body, 1);
  sk_decoder_body_consume(&d, 6);
  ck_assert_uint_eq(d.body_left, 0);
  ck_assert_int_eq(d.in_body, 0);
  ck_assert_uint_eq(sk_decoder_body_avail(&d, 5), 0);
  sk_head_free(h);
}
END_TEST

/* ---- encoding ----------------------------------------------------------- */

START_TEST(encode_exact_bytes) {
  static const char want[] = "\0\0\0\x0f{\"type\":\"ping\"}";
  static const char want2[] =
      "\0\0\0\x2c{\"type\":\"x\",\"a\":1,\"b\":true,\"c\":2.5,\"d\":\"\xc3\xa9\"}";
  uint8_t buf[128];
  sk_head *h = sk_head_new("ping");
  ck_assert_int_eq(sk_head_encode(h, buf, sizeof(buf)), 19);
  ck_assert_mem_eq(buf, want, 19);
  sk_head_free(h);
  h = sk_head_new("x");
  ck_assert_int_eq(sk_head_set_int(h, "a", 1), 0);
  ck_assert_int_eq(sk_head_set_bool(h, "b", 1), 0);
  ck_assert_int_eq(sk_head_set_double(h, "c", 2.5), 0);
  ck_assert_int_eq(sk_head_set_str(h, "d", "\xc3\xa9"), 0);
  ck_assert_int_eq(sk_head_encode(h, buf, sizeof(buf)), (ssize_t)sizeof(want2) - 1);
  ck_assert_mem_eq(buf, want2, sizeof(want2) - 1);
  sk_head_free(h);
  h = sk_head_new(NULL);
  ck_assert_ptr_null(sk_head_type(h));
  ck_assert_int_eq(sk_head_encode(h, buf, sizeof(buf)), 6);
  ck_assert_mem_eq(buf, "\0\0\0\2{}", 6);
  sk_head_free(h);
}
END_TEST

/* A short buffer gets the needed size back and is never written past. */
START_TEST(encode_small_cap) {
  sk_head *h = sk_head_new("ping");
  for (size_t cap = 0; cap < 19; cap++) {
    uint8_t *end = guard_end();
    memset(end - 64, 0xAA, 64);
    ck_assert_int_eq(sk_head_encode(h, end - cap, cap), 19);
  }
  ck_assert_int_eq(sk_head_encode(h, guard_end() - 19, 19), 19);
  ck_assert_mem_eq(guard_end() - 19, "\0\0\0\x0f{\"type\":\"ping\"}", 19);
  sk_head_free(h);
}
END_TEST

/* A head whose JSON is exactly n bytes: {"type":"x","p":"aaa..."}. */
static sk_head *head_of_len(size_t n) {
  static char pad[SK_HEAD_MAX + 2];
  sk_head *h = sk_head_new("x");
  size_t base = 19; /* {"type":"x","p":""} */
  memset(pad, 'a', n - base);
  pad[n - base] = '\0';
  ck_assert_int_eq(sk_head_set_str(h, "p", pad), 0);
  return h;
}

START_TEST(encode_at_limit) {
  sk_head *h = head_of_len(SK_HEAD_MAX), *back = NULL;
  uint8_t *enc = NULL;
  sk_decoder d;
  ssize_t n = sk_head_encode_alloc(h, &enc);
  ck_assert_int_eq(n, SK_HEAD_MAX + 4);
  ck_assert_mem_eq(enc, "\0\1\0\0{\"type\":\"x\",\"p\":\"aaa", 24);
  /* One byte short: the size comes back and the guard page is not touched. */
  ck_assert_int_eq(sk_head_encode(h, guard_end() - (n - 1), (size_t)n - 1), n);
  sk_decoder_init(&d, 0);
  ck_assert_int_eq(sk_decode_head(&d, guard_put(enc, (size_t)n), (size_t)n, &back), n);
  ck_assert_str_eq(sk_head_type(back), "x");
  ck_assert_uint_eq(sk_head_strlen(back, "p"), SK_HEAD_MAX - 19);
  ck_assert_int_eq(d.in_body, 0);
  ck_assert_int_eq(sk_decode_head(&d, enc, (size_t)n - 1, &back), 0);
  free(enc);
  sk_head_free(back);
  sk_head_free(h);
  h = head_of_len(SK_HEAD_MAX + 1);
  enc = NULL;
  ck_assert_int_eq(sk_head_encode(h, NULL, 0), SK_ETOOLARGE);
  ck_assert_int_eq(sk_head_encode_alloc(h, &enc), SK_ETOOLARGE);
  ck_assert_ptr_null(enc);
  sk_head_free(h);
}
END_TEST

START_TEST(encode_round_trip) {
  sk_head *h = sk_head_new("say"), *back;
  uint8_t *enc;
  int err = 0;
  ssize_t n;
  ck_assert_int_eq(sk_head_set_str(h, "text", "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80"), 0);
  ck_assert_int_eq(sk_head_set_int(h, "size", 1234567), 0);
  ck_assert_int_eq(sk_head_set_int(h, "id", -42), 0);
  n = sk_head_encode_alloc(h, &enc);
  ck_assert_int_gt(n, 4);
  ck_assert_uint_eq((uint32_t)enc[0] << 24 | enc[1] << 16 | enc[2] << 8 | enc[3], (size_t)n - 4);
  back = sk_head_parse(enc + 4, (size_t)n - 4, &err);
  ck_assert_ptr_nonnull(back);
  ck_assert_str_eq(sk_head_type(back), "say");
  ck_assert_str_eq(sk_head_str(back, "text"), "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80");
  ck_assert_uint_eq(sk_head_size(back), 1234567);
  free(enc);
  sk_head_free(back);
  sk_head_free(h);
}
END_TEST

/* ---- accessors and writers ---------------------------------------------- */

static const char *sample =
    "{\"type\":\"t\",\"s\":\"str\",\"n\":42,\"neg\":-7,\"r\":1.5,\"whole\":2.0,"
    "\"b\":true,\"f\":false,\"nul\":null,\"o\":{\"k\":\"v\"},"
    "\"a\":[\"x\",{\"y\":1},3],\"e\":{\"A\":\"1\",\"B\":\"2\"},"
    "\"be\":{\"A\":\"1\",\"B\":2}}";

static sk_head *parse_sample(void) {
  int err = 0;
  sk_head *h = sk_head_parse(sample, strlen(sample), &err);
  ck_assert_ptr_nonnull(h);
  return h;
}

START_TEST(readers_scalars) {
  sk_head *h = parse_sample();
  int64_t i = 99;
  int b = 99;
  double x = 99;
  ck_assert_str_eq(sk_head_type(h), "t");
  ck_assert_uint_eq(sk_head_size(h), 0);
  ck_assert_int_eq(sk_head_has(h, "s"), 1);
  ck_assert_int_eq(sk_head_has(h, "nul"), 1);
  ck_assert_int_eq(sk_head_has(h, "zz"), 0);
  ck_assert_str_eq(sk_head_str(h, "s"), "str");
  ck_assert_ptr_null(sk_head_str(h, "n"));
  ck_assert_ptr_null(sk_head_str(h, "zz"));
  ck_assert_uint_eq(sk_head_strlen(h, "s"), 3);
  ck_assert_uint_eq(sk_head_strlen(h, "n"), 0);
  ck_assert_uint_eq(sk_head_strlen(h, "zz"), 0);

  ck_assert_int_eq(sk_head_int(h, "n", &i), 0);
  ck_assert_int_eq(i, 42);
  ck_assert_int_eq(sk_head_int(h, "neg", &i), 0);
  ck_assert_int_eq(i, -7);
  ck_assert_int_eq(sk_head_int(h, "r", &i), SK_EBADREQ);
  ck_assert_int_eq(sk_head_int(h, "whole", &i), SK_EBADREQ);
  ck_assert_int_eq(sk_head_int(h, "s", &i), SK_EBADREQ);
  ck_assert_int_eq(sk_head_int(h, "b", &i), SK_EBADREQ);
  ck_assert_int_eq(sk_head_int(h, "zz", &i), -ENOENT);
  ck_assert_int_eq(i, -7); /* untouched on failure */

  ck_assert_int_eq(sk_head_bool(h, "b", &b), 0);
  ck_assert_int_eq(b, 1);
  ck_assert_int_eq(sk_head_bool(h, "f", &b), 0);
  ck_assert_int_eq(b, 0);
  ck_assert_int_eq(sk_head_bool(h, "n", &b), SK_EBADREQ);
  ck_assert_int_eq(sk_head_bool(h, "nul", &b), SK_EBADREQ);
  ck_assert_int_eq(sk_head_bool(h, "zz", &b), -ENOENT);

  ck_assert_int_eq(sk_head_double(h, "r", &x), 0);
  ck_assert_double_eq(x, 1.5);
  ck_assert_int_eq(sk_head_double(h, "n", &x), 0);
  ck_assert_double_eq(x, 42.0);
  ck_assert_int_eq(sk_head_double(h, "s", &x), SK_EBADREQ);
  ck_assert_int_eq(sk_head_double(h, "zz", &x), -ENOENT);
  ck_assert_double_eq(x, 42.0);
  sk_head_free(h);
}
END_TEST

START_TEST(readers_nested) {
  sk_head *h = parse_sample();
  const sk_head *o, *y;
  int64_t i = 0;
  o = sk_head_obj(h, "o");
  ck_assert_ptr_nonnull(o);
  ck_assert_str_eq(sk_head_str(o, "k"), "v");
  ck_assert_ptr_null(sk_head_type(o));
  ck_assert_ptr_null(sk_head_obj(h, "s"));
  ck_assert_ptr_null(sk_head_obj(h, "a"));
  ck_assert_ptr_null(sk_head_obj(h, "zz"));
  ck_assert_uint_eq(sk_head_arr_len(h, "a"), 3);
  ck_assert_uint_eq(sk_head_arr_len(h, "s"), 0);
  ck_assert_uint_eq(sk_head_arr_len(h, "o"), 0);
  ck_assert_uint_eq(sk_head_arr_len(h, "zz"), 0);
  ck_assert_str_eq(sk_head_arr_str(h, "a", 0), "x");
  ck_assert_ptr_null(sk_head_arr_str(h, "a", 1));
  ck_assert_ptr_null(sk_head_arr_str(h, "a", 2));
  ck_assert_ptr_null(sk_head_arr_str(h, "a", 3));
  ck_assert_ptr_null(sk_head_arr_str(h, "s", 0));
  y = sk_head_arr_obj(h, "a", 1);
  ck_assert_ptr_nonnull(y);
  ck_assert_int_eq(sk_head_int(y, "y", &i), 0);
  ck_assert_int_eq(i, 1);
  ck_assert_ptr_null(sk_head_arr_obj(h, "a", 0));
  ck_assert_ptr_null(sk_head_arr_obj(h, "a", 9));
  ck_assert_ptr_null(sk_head_arr_obj(h, "o", 0));
  sk_head_free(h);
}
END_TEST

struct visit {
  char seen[64];
  int stop_at; /* return 7 on this visit (1-based), 0: never */
  int n;
};

static int visit_cb(void *ctx, const char *key, const char *val) {
  struct visit *v = ctx;
  size_t len = strlen(v->seen);
  snprintf(v->seen + len, sizeof(v->seen) - len, "%s=%s;", key, val);
  return ++v->n == v->stop_at ? 7 : 0;
}

START_TEST(each_str) {
  sk_head *h = parse_sample();
  struct visit v = {"", 0, 0};
  ck_assert_int_eq(sk_head_each_str(sk_head_obj(h, "e"), visit_cb, &v), 0);
  ck_assert_str_eq(v.seen, "A=1;B=2;");
  v = (struct visit){"", 1, 0};
  ck_assert_int_eq(sk_head_each_str(sk_head_obj(h, "e"), visit_cb, &v), 7);
  ck_assert_str_eq(v.seen, "A=1;");
  v = (struct visit){"", 0, 0};
  ck_assert_int_eq(sk_head_each_str(sk_head_obj(h, "be"), visit_cb, &v), -EINVAL);
  ck_assert_int_eq(v.n, 0); /* checked before the first visit */
  ck_assert_int_eq(sk_head_each_str(sk_head_obj(h, "zz"), visit_cb, &v), 0);
  ck_assert_int_eq(v.n, 0);
  sk_head_free(h);
}
END_TEST

START_TEST(writers) {
  sk_head *h = sk_head_new("x");
  const char *strv[] = {"a", "b\xc3\xa9"};
  const char *badv[] = {"a", "\xff"};
  int64_t i = 0;
  int b = 0;
  double x = 0;
  ck_assert_int_eq(sk_head_set_str(h, "s", "hello"), 0);
  ck_assert_str_eq(sk_head_str(h, "s"), "hello");
  ck_assert_int_eq(sk_head_set_strn(h, "z", "a\0b", 3), 0);
  ck_assert_uint_eq(sk_head_strlen(h, "z"), 3);
  ck_assert_mem_eq(sk_head_str(h, "z"), "a\0b", 3);
  ck_assert_int_eq(sk_head_set_str(h, "bad", "\xff"), -EINVAL);
  ck_assert_int_eq(sk_head_set_str(h, "bad", NULL), -EINVAL);
  ck_assert_int_eq(sk_head_has(h, "bad"), 0);
  ck_assert_int_eq(sk_head_set_int(h, "size", 5), 0);
  ck_assert_uint_eq(sk_head_size(h), 5);
  ck_assert_int_eq(sk_head_set_int(h, "i", INT64_MIN), 0);
  ck_assert_int_eq(sk_head_int(h, "i", &i), 0);
  ck_assert_int_eq(i, INT64_MIN);
  ck_assert_int_eq(sk_head_set_bool(h, "b", 2), 0);
  ck_assert_int_eq(sk_head_bool(h, "b", &b), 0);
  ck_assert_int_eq(b, 1);
  ck_assert_int_eq(sk_head_set_double(h, "d", 0.25), 0);
  ck_assert_int_eq(sk_head_double(h, "d", &x), 0);
  ck_assert_double_eq(x, 0.25);
  ck_assert_int_eq(sk_head_set_double(h, "nan", NAN), -EINVAL);
  ck_assert_int_eq(sk_head_set_double(h, "inf", INFINITY), -EINVAL);
  ck_assert_int_eq(sk_head_has(h, "nan"), 0);
  ck_assert_int_eq(sk_head_set_strv(h, "v", strv, 2), 0);
  ck_assert_uint_eq(sk_head_arr_len(h, "v"), 2);
  ck_assert_str_eq(sk_head_arr_str(h, "v", 1), "b\xc3\xa9");
  ck_assert_int_eq(sk_head_set_strv(h, "w", badv, 2), -EINVAL);
  ck_assert_int_eq(sk_head_has(h, "w"), 0);
  ck_assert_int_eq(sk_head_set_strv(h, "empty", NULL, 0), 0);
  ck_assert_int_eq(sk_head_has(h, "empty"), 1);
  ck_assert_uint_eq(sk_head_arr_len(h, "empty"), 0);
  ck_assert_int_eq(sk_head_del(h, "s"), 0);
  ck_assert_int_eq(sk_head_has(h, "s"), 0);
  ck_assert_int_eq(sk_head_del(h, "s"), 0);
  sk_head_free(h);
}
END_TEST

START_TEST(append_copy_dup) {
  sk_head *h = sk_head_new("list"), *src = sk_head_new("req"), *d;
  sk_head *e = sk_head_new(NULL);
  int64_t i = 0;
  ck_assert_int_eq(sk_head_set_str(e, "name", "f1"), 0);
  ck_assert_int_eq(sk_head_append(h, "entries", e), 0);
  ck_assert_int_eq(sk_head_append(h, "entries", sk_head_new(NULL)), 0);
  ck_assert_uint_eq(sk_head_arr_len(h, "entries"), 2);
  ck_assert_str_eq(sk_head_str(sk_head_arr_obj(h, "entries", 0), "name"), "f1");
  ck_assert_int_eq(sk_head_append(h, "type", sk_head_new(NULL)), -EINVAL); /* not an array */
  ck_assert_int_eq(sk_head_append(h, "entries", NULL), -ENOMEM);

  ck_assert_int_eq(sk_head_set_int(src, "id", 17), 0);
  ck_assert_int_eq(sk_head_copy_member(h, src, "id"), 0);
  ck_assert_int_eq(sk_head_int(h, "id", &i), 0);
  ck_assert_int_eq(i, 17);
  ck_assert_int_eq(sk_head_copy_member(h, src, "nope"), 0);
  ck_assert_int_eq(sk_head_has(h, "nope"), 0);

  d = sk_head_dup(h);
  ck_assert_ptr_nonnull(d);
  ck_assert_int_eq(sk_head_set_str(d, "type", "other"), 0);
  ck_assert_str_eq(sk_head_type(h), "list");
  ck_assert_str_eq(sk_head_type(d), "other");
  ck_assert_uint_eq(sk_head_arr_len(d, "entries"), 2);
  sk_head_free(d);
  sk_head_free(src);
  sk_head_free(h);
  sk_head_free(NULL);
}
END_TEST

int main(void) {
  Suite *s = suite_create("frame");
  TCase *st = tcase_create("stream");
  TCase *lim = tcase_create("limits");
  TCase *enc = tcase_create("encode");
  TCase *acc = tcase_create("head");
  SRunner *sr;
  int failed;

  tcase_add_checked_fixture(st, build_stream, free_stream);
  tcase_set_timeout(st, 600); /* every split point of ~71 KB, also under ASan */
  tcase_add_test(st, stream_whole_guarded);
  tcase_add_test(st, stream_every_split);
  tcase_add_test(st, stream_byte_by_byte_guarded);
  tcase_add_test(st, head_prefixes_guarded);
  suite_add_tcase(s, st);

  tcase_add_test(lim, head_len_limits);
  tcase_add_test(lim, tighter_max_head);
  tcase_add_test(lim, not_objects);
  tcase_add_test(lim, type_not_string);
  tcase_add_test(lim, size_rules);
  tcase_add_test(lim, invalid_utf8_and_nul);
  tcase_add_test(lim, trailing_garbage);
  tcase_add_test(lim, duplicates_tolerated);
  tcase_add_test(lim, parse_direct);
  tcase_add_test(lim, decoder_body_state);
  suite_add_tcase(s, lim);

  tcase_add_test(enc, encode_exact_bytes);
  tcase_add_test(enc, encode_small_cap);
  tcase_add_test(enc, encode_at_limit);
  tcase_add_test(enc, encode_round_trip);
  suite_add_tcase(s, enc);

  tcase_add_test(acc, readers_scalars);
  tcase_add_test(acc, readers_nested);
  tcase_add_test(acc, each_str);
  tcase_add_test(acc, writers);
  tcase_add_test(acc, append_copy_dup);
  suite_add_tcase(s, acc);

  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
