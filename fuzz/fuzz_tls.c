/* fuzz_tls.c - the server side of the TLS transport (src/net/tls_conn.c)
 * fed arbitrary bytes, by a real server on 127.0.0.1 (exempt from the
 * failed-auth penalties, so that inputs with a wrong PSK identity do not
 * lock the harness out).
 *
 * The first byte picks the way in:
 *   even: the rest goes raw to a fresh connection, where a ClientHello is
 *         due (the handshake parser, the PSK callback, our BIO, the
 *         failure and deadline paths);
 *   odd:  a real client finishes the PSK handshake first, then the rest
 *         goes raw on its socket, under the established session (records
 *         that do not decrypt, alerts, a close without close_notify).
 * Then the harness reads until the server closes or FZ_WAIT_MS pass, and
 * checks that an honest client is still served. A crash, an over-read or
 * a leak anywhere on the way is a finding. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "fuzz_server.h"
#include "sockit/client.h"
#include "sockit/error.h"
#include "sockit/server.h"

#define FZ_WAIT_MS 20

static char fz_dir[64], fz_addr[160], fz_key[128];
static volatile int fz_port;
static sk_server *fz_srv;

/* The bound port, from the "listening on 127.0.0.1:PORT" notice. */
static void on_notice(void *ctx, sk_notice_level level, const char *text) {
  const char *colon = strrchr(text, ':');
  (void)ctx, (void)level;
  if (strncmp(text, "listening on 127.0.0.1:", 23) == 0 && colon != NULL)
    fz_port = atoi(colon + 1);
}

static sk_client *fz_connect(void) {
  sk_client_opts o = {
      .key_file = fz_key, .timeout_ms = 1000, .connect_timeout_ms = 5000, .tls = SK_TLS_ON};
  sk_client *c = NULL;
  return sk_client_connect(&c, fz_addr, &o) == 0 ? c : NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  sk_client *c = NULL;
  (void)argc, (void)argv;
  fz_workdir(fz_dir, sizeof(fz_dir), "/tmp/sk-fuzz-tls-XXXXXX", fz_key, sizeof(fz_key));
  FUZZ_CHECK(sk_server_new(&fz_srv) == 0);
  sk_server_set_process(fz_srv, SK_PROCESS_SIGNALS);
  sk_server_on_notice(fz_srv, on_notice, NULL);
  fz_set(fz_srv, "listen", "127.0.0.1:0");
  fz_set(fz_srv, "rate-limit-exempt", "127.0.0.1/32");
  fz_set(fz_srv, "key-file", fz_key);
  fz_set(fz_srv, "root", fz_dir);
  fz_set(fz_srv, "services", "echo");
  fz_set(fz_srv, "threads", "1");
  fz_start(fz_srv);
  for (int i = 0; i < 500 && fz_port == 0; i++)
    usleep(10000);
  FUZZ_CHECK(fz_port != 0);
  snprintf(fz_addr, sizeof(fz_addr), "127.0.0.1:%d", fz_port);
  for (int i = 0; i < 500 && (c = fz_connect()) == NULL; i++)
    usleep(10000);
  FUZZ_CHECK(c != NULL);
  sk_client_close(c);
  return 0;
}

static int raw_connect(void) {
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)fz_port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Write what the socket takes, then read until a close or a quiet spell. */
static void feed(int fd, const uint8_t *p, size_t n) {
  char buf[4096];
  struct pollfd pf = {fd, POLLIN, 0};
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (w <= 0)
      break;
    p += w;
    n -= (size_t)w;
  }
  shutdown(fd, SHUT_WR);
  while (poll(&pf, 1, FZ_WAIT_MS) > 0 && recv(fd, buf, sizeof(buf), 0) > 0)
    ;
}

static void honest_echo(void) {
  sk_client *c = fz_connect();
  sk_head *h = sk_head_new("echo"), *resp = NULL;
  if (c != NULL && h != NULL) /* rate limited after identity-bearing inputs: fine */
    sk_client_request(c, h, "ok", 2, &resp, NULL, NULL);
  sk_head_free(resp);
  sk_head_free(h);
  sk_client_close(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  if ((data[0] & 1) == 0) {
    int fd = raw_connect();
    if (fd >= 0) {
      feed(fd, data + 1, size - 1);
      close(fd);
    }
  } else {
    sk_client *c = fz_connect();
    if (c != NULL) {
      feed(sk_client_fd(c), data + 1, size - 1);
      sk_client_close(c);
    }
  }
  if (data[0] == 0xff)
    honest_echo();
  return 0;
}
