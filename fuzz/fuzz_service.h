/* fuzz_service.h - the driver shared by the service harnesses
 * (fuzz_svc_*.c, one per service): random well-formed requests against a
 * real server (header only, like fuzz_common.h).
 *
 * A server runs in a thread of the harness, on a Unix socket, with the one
 * service under test, a key and a scratch root. Each input is a connection:
 * the client authenticates, then the input's bytes are read as choices,
 * never as text: up to FZ_FRAMES frames, each a request type of the
 * service, FZ_MEMBERS members picked from the names its handlers read (and
 * "id" and a few others), each given a value of a JSON kind the input picks
 * (null, booleans, integers at the edges, fractions, strings from the
 * service's dictionary or from the input, arrays and objects), and a small
 * body. A ping closes the exchange; its pong (or a close, or FZ_WAIT_MS of
 * silence) ends the input. Whatever a request holds, the server answers or
 * closes: a crash, an over-read or a leak in a handler is a finding.
 *
 * A harness defines FZ_SERVICE (its --services value), the arrays fz_types,
 * fz_members and fz_strings, optionally FZ_ALLOW_EXEC, then includes this
 * file. */
#ifndef SOCKIT_FUZZ_SERVICE_H
#define SOCKIT_FUZZ_SERVICE_H

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "fuzz_server.h"
#include "sockit/client.h"
#include "sockit/error.h"
#include "sockit/server.h"

#define FZ_FRAMES 4
#define FZ_MEMBERS 6
#define FZ_BODY_MAX 64
#define FZ_HEAD_MAX 4096
#define FZ_WAIT_MS 100

#define FZ_COUNT(a) (sizeof(a) / sizeof((a)[0]))

static char fz_dir[64], fz_root[96], fz_addr[160], fz_key[128];
static sk_server *fz_srv;

static uint64_t fz_u64(fz_in *in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | fz_byte(in);
  return v;
}

/* A growing JSON text; overflow just truncates (the parse then fails and
 * the frame is skipped). */
typedef struct fz_text {
  char s[FZ_HEAD_MAX];
  size_t n;
} fz_text;

static void fz_put(fz_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fz_put(fz_text *t, const char *fmt, ...) {
  va_list ap;
  int k;
  if (t->n >= sizeof(t->s))
    return;
  va_start(ap, fmt);
  k = vsnprintf(t->s + t->n, sizeof(t->s) - t->n, fmt, ap);
  va_end(ap);
  t->n = k < 0 ? sizeof(t->s) : t->n + (size_t)k;
}

/* Raw input bytes as a JSON string: printable ASCII as is, every other
 * byte as the code point of the same number (so U+0000..U+00FF, the C0 and
 * C1 controls included). */
static void fz_raw_string(fz_text *t, fz_in *in) {
  size_t len = fz_byte(in) % 24;
  fz_put(t, "\"");
  for (size_t i = 0; i < len; i++) {
    uint8_t b = fz_byte(in);
    if (b >= 0x20 && b < 0x7f && b != '"' && b != '\\')
      fz_put(t, "%c", b);
    else
      fz_put(t, "\\u%04x", b);
  }
  fz_put(t, "\"");
}

static void fz_value(fz_text *t, fz_in *in, int depth);

static void fz_string(fz_text *t, fz_in *in) {
  uint8_t pick = fz_byte(in);
  if (pick % 4 == 3)
    fz_raw_string(t, in);
  else
    fz_put(t, "\"%s\"", fz_strings[pick % FZ_COUNT(fz_strings)]);
}

/* Integers where parsers break: 0, +-1, sizes, 2^31, 2^53, INT64 edges. */
static void fz_int(fz_text *t, fz_in *in) {
  static const long long edges[] = {0,         1,         -1,           2,
                                    3,         255,       420,          4096,
                                    65536,     1LL << 31, -(1LL << 31), (1LL << 53) - 1,
                                    1LL << 53, INT64_MAX, INT64_MIN,    -4096};
  uint8_t pick = fz_byte(in);
  if (pick % 3 == 2)
    fz_put(t, "%lld", (long long)fz_u64(in));
  else
    fz_put(t, "%lld", edges[pick % FZ_COUNT(edges)]);
}

static void fz_real(fz_text *t, fz_in *in) {
  static const char *const reals[] = {"1.5",    "-0.0",   "0.5",   "1e300",
                                      "-1e300", "1e-300", "2.5e9", "9007199254740993.0",
                                      "0.0",    "-1.5"};
  fz_put(t, "%s", reals[fz_byte(in) % FZ_COUNT(reals)]);
}

static void fz_array(fz_text *t, fz_in *in, int depth) {
  size_t len = fz_byte(in) % 4;
  fz_put(t, "[");
  for (size_t i = 0; i < len; i++) {
    fz_put(t, i ? "," : "");
    fz_value(t, in, depth + 1);
  }
  fz_put(t, "]");
}

static void fz_object(fz_text *t, fz_in *in, int depth) {
  size_t len = fz_byte(in) % 3;
  fz_put(t, "{");
  for (size_t i = 0; i < len; i++) {
    fz_put(t, i ? "," : "");
    fz_string(t, in);
    fz_put(t, ":");
    fz_value(t, in, depth + 1);
  }
  fz_put(t, "}");
}

/* A value of a kind the input picks; nesting stops at depth 2. */
static void fz_value(fz_text *t, fz_in *in, int depth) {
  switch (fz_byte(in) % (depth >= 2 ? 6 : 8)) {
  case 0:
    fz_put(t, "null");
    break;
  case 1:
    fz_put(t, "true");
    break;
  case 2:
    fz_put(t, "false");
    break;
  case 3:
    fz_int(t, in);
    break;
  case 4:
    fz_real(t, in);
    break;
  case 5:
    fz_string(t, in);
    break;
  case 6:
    fz_array(t, in, depth);
    break;
  default:
    fz_object(t, in, depth);
    break;
  }
}

/* One request: {"type":T, member: value, ...}; members may repeat (the
 * parser keeps one) and "size" is left to the client, which sets it to the
 * body's length. */
static sk_head *fz_head(fz_in *in) {
  fz_text t = {.n = 0};
  sk_head *h;
  int err;
  size_t members = fz_byte(in) % (FZ_MEMBERS + 1);
  fz_put(&t, "{\"type\":\"%s\"", fz_types[fz_byte(in) % FZ_COUNT(fz_types)]);
  for (size_t i = 0; i < members; i++) {
    fz_put(&t, ",\"%s\":", fz_members[fz_byte(in) % FZ_COUNT(fz_members)]);
    fz_value(&t, in, 0);
  }
  fz_put(&t, "}");
  if (t.n >= sizeof(t.s))
    return NULL;
  h = sk_head_parse(t.s, t.n, &err);
  if (h != NULL)
    sk_head_del(h, "size");
  return h;
}

static sk_client *fz_connect(void) {
  sk_client_opts o = {.key_file = fz_key, .timeout_ms = FZ_WAIT_MS, .connect_timeout_ms = 5000};
  sk_client *c = NULL;
  return sk_client_connect(&c, fz_addr, &o) == 0 ? c : NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  sk_client *c = NULL;
  fz_workdir(fz_dir, sizeof(fz_dir), "/tmp/sk-fuzz-svc-XXXXXX", fz_key, sizeof(fz_key));
  snprintf(fz_root, sizeof(fz_root), "%s/root", fz_dir);
  snprintf(fz_addr, sizeof(fz_addr), "unix:%s/s", fz_dir);
  FUZZ_CHECK(sk_server_new(&fz_srv) == 0);
  sk_server_set_process(fz_srv, SK_PROCESS_SIGNALS); /* a client gone mid-answer: no SIGPIPE */
  fz_set(fz_srv, "listen", fz_addr);
  fz_set(fz_srv, "key-file", fz_key);
  fz_set(fz_srv, "root", fz_root);
  fz_set(fz_srv, "services", FZ_SERVICE);
  fz_set(fz_srv, "threads", "1");
  fz_set(fz_srv, "idle-timeout", "5");
#ifdef FZ_ALLOW_EXEC
  fz_set(fz_srv, "allow-exec", NULL);
  fz_set(fz_srv, "exec-timeout", "1");
#endif
  fz_start(fz_srv);
  for (int i = 0; i < 500 && (c = fz_connect()) == NULL; i++)
    usleep(10000);
  FUZZ_CHECK(c != NULL);
  sk_client_close(c);
#ifdef FZ_ALLOW_EXEC
  /* No program ever runs: the working folder is gone, so every spawn
   * fails in the child's chdir before its exec (`not_started`). */
  FUZZ_CHECK(rmdir(fz_root) == 0);
#endif
  return 0;
}

/* Read until the ping's pong, a close or FZ_WAIT_MS of silence. */
static void fz_drain(sk_client *c) {
  for (int i = 0; i < 256; i++) {
    sk_head *h = NULL;
    uint8_t *body = NULL;
    size_t n = 0;
    int rc = sk_client_recv(c, &h, &body, &n, 1u << 20);
    const char *type = rc == 0 ? sk_head_type(h) : NULL;
    const char *id = rc == 0 ? sk_head_str(h, "id") : NULL;
    int done = rc < 0 || (type && strcmp(type, "pong") == 0 && id && !strcmp(id, "fz-end"));
    sk_head_free(h);
    free(body);
    if (done)
      return;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_in in = {data, size};
  uint8_t body[FZ_BODY_MAX];
  sk_client *c = fz_connect();
  sk_head *ping;
  if (c == NULL)
    return 0; /* e.g. a close from an earlier input still settling */
  for (int f = 0; f < FZ_FRAMES && in.n > 0; f++) {
    sk_head *h = fz_head(&in);
    size_t n = fz_byte(&in) % (FZ_BODY_MAX + 1);
    for (size_t i = 0; i < n; i++)
      body[i] = fz_byte(&in);
    if (h != NULL && sk_client_send(c, h, body, n) < 0) {
      sk_head_free(h);
      break;
    }
    sk_head_free(h);
  }
  if ((ping = sk_head_new("ping")) != NULL && sk_head_set_str(ping, "id", "fz-end") == 0 &&
      sk_client_send(c, ping, NULL, 0) == 0)
    fz_drain(c);
  sk_head_free(ping);
  sk_client_close(c);
  return 0;
}

#endif
