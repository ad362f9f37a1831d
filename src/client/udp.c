/* udp.c - the UDP client (sockit/client.h, SPEC 5): one frame per datagram,
 * a connected socket so that only the server's datagrams (and its ICMP
 * "port unreachable") reach us, and retries for requests. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/addr.h"
#include "sockit/client.h"
#include "sockit/error.h"

#define UDP_RBUF 65536u

struct sk_udp {
  int fd;
  uint8_t rbuf[UDP_RBUF];
};

/* A datagram socket connected to the first address that takes one: the fd,
 * or the last error (SK_EBADADDR when no address was an IP one). */
static int connect_first(const sk_addr *a, int n) {
  int rc = SK_EBADADDR;
  for (int i = 0; i < n; i++) {
    int fd;
    if (a[i].family == AF_UNIX)
      continue;
    if ((fd = socket(a[i].family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) {
      rc = -errno;
      continue;
    }
    if (connect(fd, (struct sockaddr *)&a[i].ss, a[i].len) == 0)
      return fd;
    rc = -errno;
    close(fd);
  }
  return rc;
}

/* The socket first, then the object: *out is set exactly when 0 is
 * returned, a shape the static analyzer can follow as well. */
int sk_udp_open(sk_udp **out, const char *addr) {
  sk_addr a[SK_ADDR_MAX];
  int n = sk__addr_resolve(addr, SK_ADDR_BARE_PORT, a, SK_ADDR_MAX, NULL), fd;
  sk_udp *u;

  *out = NULL;
  if (n < 0)
    return n;
  if ((fd = connect_first(a, n)) < 0)
    return fd;
  if ((u = malloc(sizeof(*u))) == NULL) {
    close(fd);
    return -ENOMEM;
  }
  u->fd = fd;
  *out = u;
  return 0;
}

int sk_udp_fd(const sk_udp *u) {
  return u->fd;
}

void sk_udp_close(sk_udp *u) {
  if (u == NULL)
    return;
  close(u->fd);
  free(u);
}

int sk_udp_send(sk_udp *u, sk_head *head, const void *body, size_t n) {
  uint8_t *hb = NULL;
  ssize_t hn;
  int rc = 0;

  if ((n > 0 || sk_head_has(head, "size")) && sk_head_set_int(head, "size", (int64_t)n) < 0)
    return -ENOMEM;
  if (n > SK_UDP_FRAME_MAX || (hn = sk_head_encode(head, NULL, 0)) < 0 ||
      (size_t)hn + n > SK_UDP_FRAME_MAX)
    return SK_ETOOLARGE; /* before anything is sent: never a cut datagram */
  if ((hn = sk_head_encode_alloc(head, &hb)) < 0)
    return (int)hn;
  struct iovec iov[2] = {{hb, (size_t)hn}, {(void *)body, n}};
  struct msghdr msg = {.msg_iov = iov, .msg_iovlen = n > 0 ? 2 : 1};
  while (sendmsg(u->fd, &msg, MSG_NOSIGNAL) < 0) {
    if (errno != EINTR) {
      rc = -errno;
      break;
    }
  }
  free(hb);
  return rc;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Exactly one frame in the datagram; 0 when it is not one (skipped). */
static int take_frame(const uint8_t *p, size_t len, sk_head **head, uint8_t **body, size_t *n) {
  sk_decoder dec;
  sk_head *h = NULL;
  sk_decoder_init(&dec, 0);
  ssize_t used = sk_decode_head(&dec, p, len, &h);
  if (used <= 0)
    return used == -ENOMEM ? -ENOMEM : 0;
  size_t size = len - (size_t)used;
  if (sk_head_size(h) != size) {
    sk_head_free(h);
    return 0;
  }
  uint8_t *b = NULL;
  if (size > 0 && (b = malloc(size + 1)) == NULL) {
    sk_head_free(h);
    return -ENOMEM;
  }
  if (b != NULL) {
    memcpy(b, p + used, size);
    b[size] = '\0';
  }
  *head = h;
  if (body)
    *body = b;
  else
    free(b);
  if (n)
    *n = size;
  return 1;
}

int sk_udp_recv(sk_udp *u, sk_head **head, uint8_t **body, size_t *n, int timeout_ms) {
  int64_t deadline = now_ms() + timeout_ms;
  for (;;) {
    int left = timeout_ms < 0 ? -1 : (int)(deadline - now_ms());
    struct pollfd p = {u->fd, POLLIN, 0};
    if (timeout_ms >= 0 && left < 0)
      left = 0;
    int rc = poll(&p, 1, left);
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc < 0)
      return -errno;
    if (rc == 0)
      return -ETIMEDOUT;
    ssize_t r = recv(u->fd, u->rbuf, sizeof(u->rbuf), MSG_TRUNC);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return -errno;
    if ((size_t)r > sizeof(u->rbuf))
      continue; /* cut: not a frame */
    if ((rc = take_frame(u->rbuf, (size_t)r, head, body, n)) != 0)
      return rc < 0 ? rc : 0;
  }
}

/* Does the answer repeat our id? */
static int same_id(const sk_head *resp, int64_t id) {
  int64_t got;
  return sk_head_int(resp, "id", &got) == 0 && got == id;
}

static int request_on(sk_udp *u, sk_head *req, const void *body, size_t n, int timeout_ms,
                      int retries, int64_t id, sk_head **resp, uint8_t **rb, size_t *rn) {
  int rc = SK_ETIMEOUT;
  for (int attempt = 0; attempt <= retries; attempt++) {
    int64_t deadline = now_ms() + timeout_ms;
    if ((rc = sk_udp_send(u, req, body, n)) < 0)
      return rc;
    for (;;) {
      int left = (int)(deadline - now_ms());
      sk_head *h = NULL;
      uint8_t *b = NULL;
      size_t bn = 0;
      rc = left > 0 ? sk_udp_recv(u, &h, &b, &bn, left) : -ETIMEDOUT;
      if (rc < 0)
        break;
      if (!same_id(h, id)) { /* a late answer to an earlier try */
        sk_head_free(h);
        free(b);
        continue;
      }
      *resp = h;
      rb ? (void)(*rb = b) : free(b);
      if (rn)
        *rn = bn;
      return strcmp(sk_head_type(h), "error") == 0
                 ? sk_err_from_wire(sk_head_str(h, "code") ? sk_head_str(h, "code") : "")
                 : 0;
    }
    if (rc != -ETIMEDOUT)
      return rc;
  }
  return -ETIMEDOUT;
}

int sk_udp_request(const char *addr, sk_head *req, const void *body, size_t n, int timeout_ms,
                   int retries, sk_head **resp, uint8_t **resp_body, size_t *resp_n) {
  sk_udp *u = NULL;
  int64_t id;
  int rc;

  *resp = NULL;
  if (resp_body)
    *resp_body = NULL;
  if (sk_head_int(req, "id", &id) < 0) {
    id = (int64_t)(((uint64_t)now_ms() << 16) ^ (uint64_t)getpid()) & 0xffffffffffff;
    if (sk_head_set_int(req, "id", id) < 0)
      return -ENOMEM;
  }
  if ((rc = sk_udp_open(&u, addr)) < 0)
    return rc;
  rc = request_on(u, req, body, n, timeout_ms, retries, id, resp, resp_body, resp_n);
  sk_udp_close(u);
  return rc;
}
