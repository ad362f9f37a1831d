/* chat_fanout.c - chat fan-out measurement (docs/chat.md).
 *
 * 1 room, M members (default 100) on one `sockit serve --no-auth`, or
 * spread round-robin over several servers sharing their rooms through Redis
 * (--chat-redis; give their addresses separated by commas), one of them
 * (on the first server) saying 64-byte messages as fast as it can for D
 * seconds (a window of W unanswered messages, so the sender is never
 * dropped as a slow consumer), or at most R messages per second. Prints
 * deliveries per second (all members) and the p50/p99 time from say to
 * delivery at the member that joined last (on the last server given).
 * With IDLE_ROOMS=N in the environment, N more connections to the last
 * server first join a room each and then stay quiet: rooms that server
 * holds but nobody speaks in (past 64 rooms from one address the servers
 * need --rate-limit-exempt for it). Plain sockets, no libsockit.
 *
 *   cc -O2 -pthread bench/chat_fanout.c -o build-chat/chat_fanout
 *   build-chat/chat_fanout 127.0.0.1:PORT[,127.0.0.1:PORT2...] [members] [seconds] [window]
 *                          [rate]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXM 1024
#define RBUF (1 << 20)

typedef struct mem {
  int fd;
  uint8_t *buf;
  size_t len;
} mem;

static mem m[MAXM];
static int nm = 100, secs = 10, window = 256, rate = 0;
static atomic_long delivered, own_back;
static atomic_int stop;
static int64_t *lat;
static long nlat, caplat;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void send_frame(int fd, const char *head, const char *body, size_t n) {
  uint8_t out[512];
  size_t hl = strlen(head);
  uint32_t be = htonl((uint32_t)hl);
  memcpy(out, &be, 4);
  memcpy(out + 4, head, hl);
  memcpy(out + 4 + hl, body, n);
  for (size_t off = 0, all = 4 + hl + n; off < all;) {
    ssize_t w = write(fd, out + off, all - off);
    if (w <= 0)
      exit(1);
    off += (size_t)w;
  }
}

/* Parse whole frames in m[i]; returns msgs seen. */
static long parse(int i) {
  mem *x = &m[i];
  size_t pos = 0;
  long msgs = 0;
  while (x->len - pos >= 4) {
    uint32_t hl;
    memcpy(&hl, x->buf + pos, 4);
    hl = ntohl(hl);
    if (x->len - pos < 4 + hl)
      break;
    char head[1024];
    size_t k = hl < sizeof(head) - 1 ? hl : sizeof(head) - 1;
    memcpy(head, x->buf + pos + 4, k);
    head[k] = '\0';
    char *s = strstr(head, "\"size\":");
    size_t size = s ? strtoul(s + 7, NULL, 10) : 0;
    if (x->len - pos < 4 + hl + size)
      break;
    if (strstr(head, "\"type\":\"msg\"")) {
      msgs++;
      if (i == nm - 1 && nlat < caplat) {
        char t[32] = {0};
        memcpy(t, x->buf + pos + 4 + hl, size < 20 ? size : 20);
        lat[nlat++] = now_ns() - strtoll(t, NULL, 10);
      }
    }
    pos += 4 + hl + size;
  }
  memmove(x->buf, x->buf + pos, x->len - pos);
  x->len -= pos;
  return msgs;
}

static void *reader(void *arg) {
  int first = (int)(intptr_t)arg, step = 4;
  struct pollfd p[MAXM];
  int idx[MAXM], n = 0;
  for (int i = first; i < nm; i += step) {
    p[n] = (struct pollfd){m[i].fd, POLLIN, 0};
    idx[n++] = i;
  }
  while (!atomic_load(&stop)) {
    if (poll(p, (nfds_t)n, 100) <= 0)
      continue;
    for (int j = 0; j < n; j++) {
      if (!p[j].revents)
        continue;
      mem *x = &m[idx[j]];
      ssize_t r = read(x->fd, x->buf + x->len, RBUF - x->len);
      if (r <= 0) {
        fprintf(stderr, "member %d closed\n", idx[j]);
        exit(1);
      }
      x->len += (size_t)r;
      long got = parse(idx[j]);
      atomic_fetch_add(&delivered, got);
      if (idx[j] == 0)
        atomic_fetch_add(&own_back, got);
    }
  }
  return NULL;
}

static int dial(const char *host, int port) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  inet_pton(AF_INET, host, &sa.sin_addr);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
    exit(1);
  return fd;
}

/* Wait for one frame containing want (the hello, then joined). */
static void await_on(mem *x, const char *want) {
  for (;;) {
    ssize_t r = read(x->fd, x->buf + x->len, RBUF - x->len);
    if (r <= 0)
      exit(1);
    x->len += (size_t)r;
    if (memmem(x->buf, x->len, want, strlen(want))) {
      x->len = 0; /* a joiner's buffer holds nothing else yet */
      return;
    }
  }
}

static void await(int i, const char *want) {
  await_on(&m[i], want);
}

/* A member alone in room "idleK", on a connection kept open and never read
 * again. */
static void join_idle(const char *host, int port, int k, uint8_t *buf) {
  char head[128];
  mem x = {dial(host, port), buf, 0};
  await_on(&x, "\"hello\"");
  snprintf(head, sizeof(head), "{\"type\":\"join\",\"room\":\"idle%d\",\"nick\":\"i%d\"}", k, k);
  send_frame(x.fd, head, "", 0);
  await_on(&x, "\"joined\"");
}

static int cmp(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  char host[8][64];
  int port[8], naddr = 0;
  for (const char *a = argc > 1 ? argv[1] : ""; naddr < 8 && *a; naddr++) {
    if (sscanf(a, "%63[^:]:%d", host[naddr], &port[naddr]) != 2)
      break;
    a = strchr(a, ',') ? strchr(a, ',') + 1 : "";
  }
  if (naddr == 0)
    return fprintf(stderr, "usage: chat_fanout HOST:PORT[,HOST:PORT...] [members] [seconds] "
                           "[window] [rate]\n"),
           2;
  if (argc > 2)
    nm = atoi(argv[2]);
  if (argc > 3)
    secs = atoi(argv[3]);
  if (argc > 4)
    window = atoi(argv[4]);
  if (argc > 5)
    rate = atoi(argv[5]);
  if (nm < 2 || nm > MAXM)
    return fprintf(stderr, "chat_fanout: members must be 2..%d\n", MAXM), 2;
  caplat = 50000000;
  lat = malloc((size_t)caplat * sizeof(*lat));
  for (int i = 0; i < nm; i++) {
    char head[128];
    m[i].buf = malloc(RBUF);
    /* the sender on the first server, the measured member on the last */
    int s = i == nm - 1 ? naddr - 1 : i % naddr;
    m[i].fd = dial(host[s], port[s]);
    await(i, "\"hello\"");
    snprintf(head, sizeof(head), "{\"type\":\"join\",\"room\":\"fan\",\"nick\":\"m%d\"}", i);
    send_frame(m[i].fd, head, "", 0);
    await(i, "\"joined\"");
  }
  if (getenv("IDLE_ROOMS") != NULL) {
    uint8_t *buf = malloc(RBUF);
    for (int k = 0, n = atoi(getenv("IDLE_ROOMS")); k < n; k++)
      join_idle(host[naddr - 1], port[naddr - 1], k, buf);
    free(buf);
  }
  usleep(200000); /* presence frames settle; readers skip them anyway */
  pthread_t th[4];
  for (int t = 0; t < 4; t++)
    pthread_create(&th[t], NULL, reader, (void *)(intptr_t)t);
  const char *say = "{\"type\":\"say\",\"room\":\"fan\",\"size\":64}";
  long sent = 0;
  int64_t t0 = now_ns(), end = t0 + (int64_t)secs * 1000000000;
  while (now_ns() < end) {
    if (sent - atomic_load(&own_back) >= window ||
        (rate > 0 && sent >= (long)((double)(now_ns() - t0) / 1e9 * rate))) {
      struct timespec d = {0, 20000};
      nanosleep(&d, NULL);
      continue;
    }
    char body[65];
    snprintf(body, sizeof(body), "%020lld%044d", (long long)now_ns(), 0);
    send_frame(m[0].fd, say, body, 64);
    sent++;
  }
  int64_t t1 = now_ns();
  usleep(500000);
  atomic_store(&stop, 1);
  for (int t = 0; t < 4; t++)
    pthread_join(th[t], NULL);
  qsort(lat, (size_t)nlat, sizeof(*lat), cmp);
  double el = (double)(t1 - t0) / 1e9;
  printf("members %d, seconds %.1f, said %ld (%.0f/s), delivered %ld (%.0f/s)\n", nm, el, sent,
         sent / el, atomic_load(&delivered), atomic_load(&delivered) / el);
  if (nlat > 0)
    printf("say->delivery at the last member: p50 %.3f ms, p99 %.3f ms, max %.3f ms (%ld)\n",
           lat[nlat / 2] / 1e6, lat[nlat * 99 / 100] / 1e6, lat[nlat - 1] / 1e6, nlat);
  return 0;
}
