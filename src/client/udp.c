/* udp.c - the UDP client (sockit/client.h, SPEC 5): one frame per datagram,
 * a connected socket so that only the server's datagrams (and its ICMP
 * "port unreachable") reach us, and retries for requests.
 *
 * With a key, every datagram is stamped and sealed (auth/dgram.h) and every
 * answer that fails the trailer, ts or replay check is skipped as if it had
 * never come. Without one, the server proves our address before it sends us
 * chat (a join is answered with a cookie that the join must repeat) and never
 * answers an unproven address with more bytes than it got: so plain
 * datagrams are padded to PAD_MIN bytes, and a cookie is taken and the join
 * sent again here, unseen by the caller.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "auth/dgram.h"
#include "client/client_int.h"
#include "common/addr.h"
#include "sockit/client.h"
#include "sockit/error.h"

#define UDP_RBUF 65536u
#define REPLAY_MAX 4096  /* answers remembered per minute (ts, n) */
#define PAD_MIN 256      /* plain datagrams are at least this long */
#define PAD_MEMBER 9     /* what ,"pad":"" adds before its text */
#define COOKIE_MAX 64    /* longest cookie kept (SPEC: 32 hex chars) */
#define COOKIE_RESENDS 3 /* joins sent again for one join, at most */

struct sk_udp {
  int fd;
  sk__dg_guard *guard; /* NULL: plain datagrams */
  sk_head *join;       /* the last join sent (plain): sent again with a cookie */
  int cookie_resends;
  char cookie[COOKIE_MAX + 1]; /* the server's latest, added to every join */
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
 * returned, a shape the static analyzer can follow as well. o (may be NULL)
 * hears the resolve step, and the resolver's reason when it fails. */
static int udp_open(sk_udp **out, const char *addr, const sk_client_opts *o) {
  sk_addr a[SK_ADDR_MAX];
  const char *why = NULL;
  int n, fd;
  sk_udp *u;

  *out = NULL;
  sk__client_step(o, SK_STEP_RESOLVE, 0, addr);
  if ((n = sk__addr_resolve(addr, SK_ADDR_BARE_PORT, a, SK_ADDR_MAX, &why)) < 0) {
    sk__client_step(o, SK_STEP_RESOLVE, n, why != NULL ? why : sk_strerror(n));
    return n;
  }
  if ((fd = connect_first(a, n)) < 0)
    return fd;
  if ((u = calloc(1, sizeof(*u))) == NULL) {
    close(fd);
    return -ENOMEM;
  }
  u->fd = fd;
  *out = u;
  return 0;
}

int sk_udp_open(sk_udp **out, const char *addr) {
  return udp_open(out, addr, NULL);
}

/* The key the options ask for: none with no_auth; an explicit key file
 * must load; the default one is used when it exists. */
static int guard_for(const sk_client_opts *o, sk__dg_guard **out) {
  sk_key key = {0};
  int rc;
  *out = NULL;
  if (o != NULL && o->no_auth)
    return 0;
  if ((rc = sk__client_load_key(o, &key)) < 0) {
    if (rc == -ENOENT && (o == NULL || o->key_file == NULL))
      return 0; /* no default key: plain datagrams, as for a --no-auth server */
    return rc == -ENOENT || rc == -EPERM ? SK_EBADKEY : rc;
  }
  *out = sk__dg_guard_new(&key, REPLAY_MAX);
  sk_key_clear(&key);
  return *out ? 0 : -ENOMEM;
}

int sk_udp_open_opts(sk_udp **out, const char *addr, const sk_client_opts *given) {
  sk_client_opts whole;
  const sk_client_opts *o = sk__sized_copy(&whole, sizeof(whole), given, SK__CLIENT_OPTS_V1);
  sk__dg_guard *guard;
  int rc = guard_for(o, &guard);
  *out = NULL;
  if (rc < 0)
    return rc;
  if ((rc = udp_open(out, addr, o)) < 0) {
    sk__dg_guard_free(guard);
    return rc;
  }
  (*out)->guard = guard;
  return 0;
}

int sk_udp_authenticated(const sk_udp *u) {
  return u->guard != NULL;
}

int sk_udp_fd(const sk_udp *u) {
  return u->fd;
}

void sk_udp_close(sk_udp *u) {
  if (u == NULL)
    return;
  close(u->fd);
  sk__dg_guard_free(u->guard);
  sk_head_free(u->join);
  free(u);
}

/* ---- sending ------------------------------------------------------------ */

static int send_all(int fd, struct iovec *iov, int n) {
  struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
  while (sendmsg(fd, &msg, MSG_NOSIGNAL) < 0)
    if (errno != EINTR)
      return -errno;
  return 0;
}

/* What a plain join carries and keeps: the server's cookie when we have one,
 * and a copy to send again when a (new) cookie comes. */
static int note_join(sk_udp *u, sk_head *head) {
  if (u->guard != NULL || strcmp(sk_head_type(head), "join") != 0)
    return 0;
  if (u->cookie[0] != '\0' && sk_head_set_str(head, "cookie", u->cookie) < 0)
    return -ENOMEM;
  if (head != u->join) {
    sk_head_free(u->join);
    if ((u->join = sk_head_dup(head)) == NULL)
      return -ENOMEM;
    u->cookie_resends = 0;
  }
  return 0;
}

/* A plain datagram shorter than PAD_MIN gets a "pad" member that makes it
 * PAD_MIN long: the server may answer an unproven address with no more
 * bytes than it received (SPEC 5), and a time or cookie answer is longer
 * than a bare request. */
static int pad(sk_udp *u, sk_head *head, size_t body, ssize_t *hn) {
  size_t have = (size_t)*hn + body;
  if (u->guard != NULL || have >= PAD_MIN)
    return 0;
  size_t k = PAD_MIN - have > PAD_MEMBER ? PAD_MIN - have - PAD_MEMBER : 0;
  char text[PAD_MIN];
  memset(text, ' ', k);
  if (sk_head_set_strn(head, "pad", text, k) < 0)
    return -ENOMEM;
  *hn = sk_head_encode(head, NULL, 0);
  return *hn < 0 ? (int)*hn : 0;
}

int sk_udp_send(sk_udp *u, sk_head *head, const void *body, size_t n) {
  size_t seal = u->guard ? SK_UDP_TAG_LEN : 0;
  uint8_t *hb = NULL, tag[SK_UDP_TAG_LEN];
  ssize_t hn;
  int rc;

  if ((n > 0 || sk_head_has(head, "size")) && sk_head_set_int(head, "size", (int64_t)n) < 0)
    return -ENOMEM;
  if ((rc = note_join(u, head)) < 0 ||
      (u->guard && (rc = sk__dg_stamp(head, sk__dg_wall_ms())) < 0))
    return rc;
  if (n > SK_UDP_FRAME_MAX || (hn = sk_head_encode(head, NULL, 0)) < 0 ||
      (size_t)hn + n + seal > SK_UDP_FRAME_MAX)
    return SK_ETOOLARGE; /* before anything is sent: never a cut datagram */
  if ((rc = pad(u, head, n, &hn)) < 0)
    return rc;
  hn = sk_head_encode_alloc(head, &hb);
  sk_head_del(head, "pad"); /* the caller's head stays as it was given */
  if (hn < 0)
    return (int)hn;
  struct iovec iov[3] = {{hb, (size_t)hn}, {(void *)body, n}, {tag, sizeof(tag)}};
  int niov = n > 0 ? 2 : 1;
  if (u->guard != NULL) {
    if ((rc = sk__dg_tag(u->guard, iov, niov, tag)) < 0)
      goto out;
    iov[niov++] = iov[2];
  }
  rc = send_all(u->fd, iov, niov);
out:
  free(hb);
  return rc;
}

/* ---- receiving ---------------------------------------------------------- */

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

/* A datagram as a frame we accept: 1 (and the frame), or 0 to skip it. */
static int accept_datagram(sk_udp *u, size_t len, sk_head **head, uint8_t **body, size_t *n) {
  if (u->guard != NULL) {
    ssize_t flen = sk__dg_verify(u->guard, u->rbuf, len);
    if (flen < 0)
      return 0;
    len = (size_t)flen;
  }
  sk_head *h = NULL;
  uint8_t *b = NULL;
  int rc = take_frame(u->rbuf, len, &h, &b, n);
  if (rc <= 0)
    return rc;
  if (u->guard != NULL && sk__dg_fresh(u->guard, h, sk__dg_wall_ms(), (uint64_t)now_ms()) < 0) {
    sk_head_free(h);
    free(b);
    return 0;
  }
  *head = h;
  body ? (void)(*body = b) : free(b);
  return 1;
}

/* {"type":"cookie"} to a plain socket: keep it and send the last join again
 * with it. 1 when the frame was one (consumed), 0 when it is the caller's. */
static int take_cookie(sk_udp *u, const sk_head *h) {
  const char *c = sk_head_str(h, "cookie");
  size_t len = sk_head_strlen(h, "cookie");
  if (u->guard != NULL || strcmp(sk_head_type(h), "cookie") != 0)
    return 0;
  if (c == NULL || len == 0 || len > COOKIE_MAX || strlen(c) != len || u->join == NULL ||
      u->cookie_resends >= COOKIE_RESENDS)
    return 1; /* not one we can use: dropped */
  memcpy(u->cookie, c, len + 1);
  u->cookie_resends++;
  sk_udp_send(u, u->join, NULL, 0); /* lost: the caller's retry asks again */
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
    sk_head *h = NULL;
    if ((rc = accept_datagram(u, (size_t)r, &h, body, n)) < 0)
      return rc;
    if (rc == 0)
      continue;
    if (take_cookie(u, h)) {
      sk_head_free(h);
      if (body) {
        free(*body);
        *body = NULL;
      }
      continue;
    }
    *head = h;
    return 0;
  }
}

/* ---- requests ----------------------------------------------------------- */

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

int sk_udp_call(sk_udp *u, sk_head *req, const void *body, size_t n, int timeout_ms, int retries,
                sk_head **resp, uint8_t **resp_body, size_t *resp_n) {
  int64_t id;
  *resp = NULL;
  if (resp_body)
    *resp_body = NULL;
  if (sk_head_int(req, "id", &id) < 0) {
    id = (int64_t)(((uint64_t)now_ms() << 16) ^ (uint64_t)getpid()) & 0xffffffffffff;
    if (sk_head_set_int(req, "id", id) < 0)
      return -ENOMEM;
  }
  return request_on(u, req, body, n, timeout_ms, retries, id, resp, resp_body, resp_n);
}

int sk_udp_request(const char *addr, sk_head *req, const void *body, size_t n, int timeout_ms,
                   int retries, sk_head **resp, uint8_t **resp_body, size_t *resp_n) {
  sk_udp *u = NULL;
  int rc;

  *resp = NULL;
  if (resp_body)
    *resp_body = NULL;
  if ((rc = sk_udp_open(&u, addr)) < 0)
    return rc;
  rc = sk_udp_call(u, req, body, n, timeout_ms, retries, resp, resp_body, resp_n);
  sk_udp_close(u);
  return rc;
}
