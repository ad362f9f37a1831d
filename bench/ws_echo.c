/* ws_echo.c - echo over the HTTP front's WebSocket next to echo over TCP
 * (docs/PERFORMANCE.md, bench/http.sh).
 *
 * N connections (default 50) each keep P echo requests (default 16) of
 * B-byte bodies (default 64) in flight for D seconds against a
 * `sockit serve --no-auth` server, either on the native listener ("tcp") or
 * through /ws of its --http listener ("ws": each request is one masked
 * binary message, each answer arrives as one message). One thread, poll(2),
 * plain sockets, no libsockit. Prints requests per second.
 *
 *   cc -O2 bench/ws_echo.c -o build/ws_echo
 *   build/ws_echo tcp|ws HOST:PORT [conns] [pipeline] [seconds] [bytes]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXC 4096
#define RBUF (1 << 20)

typedef struct conn {
  int fd;
  uint8_t *buf;
  size_t len;
  int hello; /* the server's hello was read */
} conn;

static conn cs[MAXC];
static int ws;
static uint8_t req[128 + 65536 + 14];
static size_t req_len, body_len;
static uint8_t *reqs; /* pipeline copies of req */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(const char *host, int port) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
      connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    perror("connect");
    exit(1);
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

static void write_all(int fd, const void *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) {
      perror("write");
      exit(1);
    }
    p = (const uint8_t *)p + w;
    n -= (size_t)w;
  }
}

/* The HTTP upgrade; whatever follows the 101's head stays in c->buf. */
static void upgrade(conn *c, const char *host, int port) {
  char r[512];
  int n = snprintf(r, sizeof(r),
                   "GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n",
                   host, port);
  write_all(c->fd, r, (size_t)n);
  for (;;) {
    ssize_t k = read(c->fd, c->buf + c->len, RBUF - c->len);
    uint8_t *end;
    if (k <= 0) {
      fprintf(stderr, "upgrade failed\n");
      exit(1);
    }
    c->len += (size_t)k;
    if ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) != NULL) {
      if (memcmp(c->buf, "HTTP/1.1 101", 12) != 0) {
        fprintf(stderr, "no upgrade: %.*s\n", (int)c->len, c->buf);
        exit(1);
      }
      size_t head = (size_t)(end + 4 - c->buf);
      memmove(c->buf, c->buf + head, c->len - head);
      c->len -= head;
      return;
    }
  }
}

/* One native echo frame, wrapped in a masked binary message for ws. */
static void build_request(void) {
  char head[64];
  uint8_t frame[sizeof(req)];
  int hl = snprintf(head, sizeof(head), "{\"type\":\"echo\",\"size\":%zu}", body_len);
  size_t n = 4 + (size_t)hl + body_len, k = 0;
  frame[0] = 0, frame[1] = 0, frame[2] = (uint8_t)(hl >> 8), frame[3] = (uint8_t)hl;
  memcpy(frame + 4, head, (size_t)hl);
  memset(frame + 4 + hl, 'x', body_len);
  if (!ws) {
    memcpy(req, frame, n);
    req_len = n;
    return;
  }
  static const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
  req[k++] = 0x82;
  if (n < 126) {
    req[k++] = (uint8_t)(0x80 | n);
  } else {
    req[k++] = 0x80 | 126;
    req[k++] = (uint8_t)(n >> 8);
    req[k++] = (uint8_t)n;
  }
  memcpy(req + k, mask, 4);
  k += 4;
  for (size_t i = 0; i < n; i++)
    req[k + i] = frame[i] ^ mask[i % 4];
  req_len = k + n;
}

/* Whole answers at the front of c->buf: consumed, counted. */
static long answers(conn *c) {
  long got = 0;
  size_t off = 0;
  for (;;) {
    size_t avail = c->len - off, need;
    const uint8_t *p = c->buf + off;
    if (ws) { /* one message per native frame: count messages */
      if (avail < 2)
        break;
      size_t n = p[1] & 0x7f, h = 2;
      if (n == 126) {
        if (avail < 4)
          break;
        n = (size_t)p[2] << 8 | p[3];
        h = 4;
      } else if (n == 127) {
        fprintf(stderr, "unexpected long message\n");
        exit(1);
      }
      need = h + n;
    } else {
      if (avail < 4)
        break;
      size_t hl = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
      need = 4 + hl + (c->hello ? body_len : 0);
    }
    if (avail < need)
      break;
    off += need;
    if (c->hello)
      got++;
    c->hello = 1;
  }
  memmove(c->buf, c->buf + off, c->len - off);
  c->len -= off;
  return got;
}

int main(int argc, char **argv) {
  int nc = 50, pipeline = 16, secs = 5, port;
  char host[64];
  struct pollfd *pf;
  long total = 0;
  double t0, t_end;

  if (argc < 3 || (strcmp(argv[1], "tcp") != 0 && strcmp(argv[1], "ws") != 0)) {
    fprintf(stderr, "usage: %s tcp|ws HOST:PORT [conns] [pipeline] [seconds] [bytes]\n", argv[0]);
    return 2;
  }
  ws = strcmp(argv[1], "ws") == 0;
  if (sscanf(argv[2], "%63[^:]:%d", host, &port) != 2)
    return 2;
  if (argc > 3)
    nc = atoi(argv[3]);
  if (argc > 4)
    pipeline = atoi(argv[4]);
  if (argc > 5)
    secs = atoi(argv[5]);
  body_len = argc > 6 ? (size_t)atoi(argv[6]) : 64;
  if (nc < 1 || nc > MAXC || body_len > 65536 || pipeline < 1)
    return 2;
  build_request();
  reqs = malloc((size_t)pipeline * req_len);
  for (int k = 0; k < pipeline; k++)
    memcpy(reqs + (size_t)k * req_len, req, req_len);
  pf = calloc((size_t)nc, sizeof(*pf));
  for (int i = 0; i < nc; i++) {
    cs[i].fd = dial(host, port);
    cs[i].buf = malloc(RBUF);
    if (ws)
      upgrade(&cs[i], host, port);
    write_all(cs[i].fd, reqs, (size_t)pipeline * req_len);
    pf[i] = (struct pollfd){.fd = cs[i].fd, .events = POLLIN};
  }
  t0 = now();
  t_end = t0 + secs;
  while (now() < t_end) {
    if (poll(pf, (nfds_t)nc, 100) < 0)
      break;
    for (int i = 0; i < nc; i++) {
      if (!(pf[i].revents & POLLIN))
        continue;
      conn *c = &cs[i];
      ssize_t k = read(c->fd, c->buf + c->len, RBUF - c->len);
      if (k <= 0) {
        fprintf(stderr, "connection %d closed\n", i);
        return 1;
      }
      c->len += (size_t)k;
      long got = answers(c);
      total += got;
      if (got > 0) /* keep the pipeline full: one write for the lot */
        write_all(c->fd, reqs, (size_t)got * req_len);
    }
  }
  printf("%s: %d conns x %d pipelined, %zu-byte bodies: %.0f req/s (%ld in %.2f s)\n",
         ws ? "websocket" : "tcp", nc, pipeline, body_len, (double)total / (now() - t0), total,
         now() - t0);
  return 0;
}
