/* fuzz_client.c - a hostile server against the client library.
 *
 * The input is everything a fake server says, as one byte stream: usually a
 * hello, then an auth_ok or error, then responses. A thread plays the server
 * on a Unix socket: it accepts, writes the input, half-closes and reads
 * whatever the client sends until the client closes. The client connects
 * (both with a key and with --no-auth), then makes the requests `sockit
 * echo`, `sockit get` and `sockit time` would make and reads the answers
 * whole, by head and body, and frame by frame. Whatever the server says,
 * the client must return codes and never crash, over-read or leak. */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "sockit/client.h"
#include "sockit/error.h"

static char dir[64], sock_path[128], addr[160], key_path[128];
static int lfd = -1;

typedef struct feed {
  const uint8_t *data;
  size_t size;
} feed;

static void *serve_one(void *arg) {
  const feed *f = arg;
  char sink[4096];
  int fd = accept(lfd, NULL, NULL);
  if (fd < 0)
    return NULL;
  for (size_t off = 0; off < f->size;) {
    ssize_t w = send(fd, f->data + off, f->size - off, MSG_NOSIGNAL);
    if (w <= 0)
      break;
    off += (size_t)w;
  }
  shutdown(fd, SHUT_WR);
  while (recv(fd, sink, sizeof(sink), 0) > 0) {
  }
  close(fd);
  return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  FILE *k;
  snprintf(dir, sizeof(dir), "/tmp/sk-fuzz-client-XXXXXX");
  FUZZ_CHECK(mkdtemp(dir) != NULL);
  snprintf(sock_path, sizeof(sock_path), "%s/s", dir);
  snprintf(addr, sizeof(addr), "unix:%s", sock_path);
  snprintf(key_path, sizeof(key_path), "%s/key", dir);
  k = fopen(key_path, "w");
  FUZZ_CHECK(k != NULL);
  fputs("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", k);
  fclose(k);
  chmod(key_path, 0600);
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
  lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  FUZZ_CHECK(lfd >= 0);
  FUZZ_CHECK(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
  FUZZ_CHECK(listen(lfd, 4) == 0);
  return 0;
}

/* A request and its one answer, as `sockit echo` / `sockit time` do it. */
static int request(sk_client *c, const char *type, const void *body, size_t n) {
  sk_head *req = sk_head_new(type), *resp = NULL;
  uint8_t *rbody = NULL;
  size_t rn = 0;
  int rc;
  FUZZ_CHECK(req != NULL);
  sk_head_set_int(req, "id", 1);
  rc = sk_client_request(c, req, body, n, &resp, &rbody, &rn);
  if (rc == 0 || resp != NULL) {
    FUZZ_CHECK(resp != NULL && sk_head_type(resp) != NULL);
    (void)sk_error_message(resp);
    FUZZ_CHECK(rn == sk_head_size(resp));
    FUZZ_CHECK(rbody == NULL || rbody[rn] == '\0');
  }
  sk_head_free(req);
  sk_head_free(resp);
  free(rbody);
  return rc;
}

/* A download's shape: head, then the body in small pieces, then the next head. */
static int stream(sk_client *c) {
  uint8_t buf[512];
  sk_head *h = NULL;
  int rc = sk_client_recv_head(c, &h);
  if (rc < 0)
    return rc;
  uint64_t want = sk_head_size(h), got = 0;
  sk_head_free(h);
  for (;;) {
    ssize_t r = sk_client_read_body(c, buf, sizeof(buf));
    if (r < 0)
      return (int)r;
    if (r == 0)
      break;
    got += (uint64_t)r;
  }
  FUZZ_CHECK(got == want);
  return 0;
}

static void session(const uint8_t *data, size_t size, int no_auth) {
  sk_client_opts o = {.key_file = key_path, .no_auth = no_auth, .timeout_ms = 2000};
  feed f = {data, size};
  sk_client *c = NULL;
  pthread_t t;
  int rc;

  FUZZ_CHECK(pthread_create(&t, NULL, serve_one, &f) == 0);
  rc = sk_client_connect(&c, addr, &o);
  FUZZ_CHECK((rc == 0) == (c != NULL));
  FUZZ_CHECK(rc <= 0);
  if (c != NULL) {
    FUZZ_CHECK(sk_client_hello(c) != NULL);
    (void)sk_client_has_service(c, "echo");
    (void)sk_client_has_hash(c, "xxh128");
    if (request(c, "echo", "hello", 5) == 0 && request(c, "time", NULL, 0) == 0) {
      sk_head *g = sk_head_new("get");
      sk_head_set_str(g, "name", "a");
      if (sk_client_send(c, g, NULL, 0) == 0)
        while (stream(c) == 0) {
        }
      sk_head_free(g);
    }
    sk_client_close(c);
  }
  pthread_join(t, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  session(data, size, 0);
  session(data, size, 1);
  return 0;
}
