/* accept.c - stream listeners accept by themselves, so that the fd limit is
 * handled once for the whole server instead of once per loop.
 *
 * libuv's own answer to EMFILE (close a spare descriptor, accept and close,
 * reopen it) keeps one spare per loop and races between loops: another
 * loop's accept takes the number the first one freed, which then can neither
 * shed nor stop being woken. Here every listening socket is watched with a
 * uv_poll_t; accept4() runs under srv->accept_lock held shared, and shedding
 * holds it exclusively around the server's one reserve descriptor, so the
 * number it frees goes to its own accept. When the reserve cannot be had
 * back (a file or a pipe took the number), the listener stops polling and
 * tries again from a timer instead of spinning on a readable socket. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/core.h"
#include "sockit/error.h"

#define ACCEPT_BATCH 32 /* accepts per wakeup: the other handles get their turn */
#define SHED_MAX 4096   /* closes per shedding: the backlog's size */
#define LISTEN_BACKLOG 4096
#define RETRY_MS 100 /* a paused listener polls again after this */

static int open_reserve(void) {
  return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Descriptors a server needs beside one per connection: listeners, the
 * log, the reserve, files being sent, exec pipes. */
#define NOFILE_SPARE 64

/* Many descriptors for many peers: the soft limit is often 1024 while the
 * hard one is far higher; raised only when the application allows it
 * (SK_PROCESS_NOFILE). Said at start only when it matters: when the limit
 * cannot hold --max-conns connections. */
static void raise_nofile(const sk_server *srv) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
    return;
  if ((srv->process & SK_PROCESS_NOFILE) && rl.rlim_cur < rl.rlim_max) {
    rlim_t was = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
      rl.rlim_cur = was;
  }
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)srv->cfg.max_conns + NOFILE_SPARE)
    sk__notice(srv, SK_NOTICE_INFO,
               "the open file limit (%llu) is below --max-conns %lld: about %llu connections at "
               "most (raise the hard limit, ulimit -Hn, or lower --max-conns)",
               (unsigned long long)rl.rlim_cur, (long long)srv->cfg.max_conns,
               (unsigned long long)(rl.rlim_cur > NOFILE_SPARE ? rl.rlim_cur - NOFILE_SPARE : 0));
}

int sk__stream_adopt(uv_stream_t *s, int fd, struct sockaddr_storage *ss, char *peer, size_t cap) {
  int len = sizeof(*ss);
  int rc = s->type == UV_TCP ? uv_tcp_open((uv_tcp_t *)s, fd) : uv_pipe_open((uv_pipe_t *)s, fd);
  if (rc < 0) {
    close(fd); /* the handle did not take it */
    return rc;
  }
  memset(ss, 0, sizeof(*ss));
  if (s->type == UV_TCP) {
    uv_tcp_nodelay((uv_tcp_t *)s, 1);
    uv_tcp_getpeername((uv_tcp_t *)s, (struct sockaddr *)ss, &len);
    sk__addr_format((struct sockaddr *)ss, (socklen_t)len, peer, cap);
  } else {
    ss->ss_family = AF_UNIX;
    snprintf(peer, cap, "unix");
  }
  return 0;
}

int sk__admit(sk_server *srv, const struct sockaddr *sa) {
  if (!sk__peer_allowed(srv, sa))
    return -EACCES;
  if (atomic_fetch_add(&srv->nconns, 1) >= srv->cfg.max_conns) {
    atomic_fetch_sub(&srv->nconns, 1);
    return SK_EBUSY;
  }
  return 0;
}

int sk__accept_prepare(sk_server *srv) {
  raise_nofile(srv);
  if (srv->reserve_fd < 0)
    srv->reserve_fd = open_reserve();
  return srv->reserve_fd < 0 ? -errno : 0;
}

static void on_retry(uv_timer_t *t);

/* Stop being woken by a socket we cannot accept from now; on_retry starts
 * polling again. */
static void pause_listener(sk_listener *l) {
  uv_poll_stop(&l->h.poll);
  l->paused = 1;
  if (!uv_is_active((uv_handle_t *)&l->loop->accept_retry))
    uv_timer_start(&l->loop->accept_retry, on_retry, RETRY_MS, 0);
}

static void on_readable(uv_poll_t *p, int status, int events);

static void on_retry(uv_timer_t *t) {
  sk_loop *loop = t->data;
  for (int i = 0; i < loop->nlisteners; i++) {
    sk_listener *l = loop->listeners[i];
    if (l->paused && uv_poll_start(&l->h.poll, UV_READABLE, on_readable) == 0)
      l->paused = 0;
  }
}

/* Out of descriptors: close every connection waiting on l, so that its peer
 * sees a close instead of hanging, by lending the reserve's number to
 * accept. A lost reserve is reopened first when the number is free again.
 * Returns 0, or -EMFILE when the server is left without a reserve. */
static int shed(sk_listener *l) {
  sk_server *srv = l->loop->srv;
  int fd, rc;
  uv_rwlock_wrlock(&srv->accept_lock);
  if (srv->reserve_fd < 0)
    srv->reserve_fd = open_reserve();
  if (srv->reserve_fd >= 0) {
    close(srv->reserve_fd);
    for (int i = 0; i < SHED_MAX; i++) {
      if ((fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
        close(fd);
      else if (errno != EINTR && errno != ECONNABORTED)
        break;
    }
    srv->reserve_fd = open_reserve();
  }
  rc = srv->reserve_fd < 0 ? -EMFILE : 0;
  uv_rwlock_wrunlock(&srv->accept_lock);
  return rc;
}

/* Accept up to max connections into fds under the shared lock. Returns how
 * many; *err is 0 (the batch is full) or the errno that ended it. */
static int accept_batch(sk_listener *l, int *fds, int max, int *err) {
  int n = 0;
  *err = 0;
  uv_rwlock_rdlock(&l->loop->srv->accept_lock);
  for (int tries = 0; tries < max; tries++) {
    int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      fds[n++] = fd;
    } else if (errno != EINTR && errno != ECONNABORTED && errno != EPROTO) {
      *err = errno; /* a peer that gave up before we got to it is no error */
      break;
    }
  }
  uv_rwlock_rdunlock(&l->loop->srv->accept_lock);
  return n;
}

static void on_readable(uv_poll_t *p, int status, int events) {
  sk_listener *l = p->data;
  int fds[ACCEPT_BATCH], err, n;
  if (status < 0) {
    pause_listener(l);
    return;
  }
  n = accept_batch(l, fds, ACCEPT_BATCH, &err);
  for (int i = 0; i < n; i++)
    l->wire->accept(l, fds[i]);
  if (err == EMFILE || err == ENFILE) {
    if (shed(l) < 0)
      pause_listener(l);
  } else if (err != 0 && err != EAGAIN && err != EWOULDBLOCK) {
    pause_listener(l); /* ENOBUFS, ENOMEM: the kernel is short, do not spin */
  }
}

int sk__listener_start(sk_loop *loop, sk_listener *l, int fd) {
  int rc = -ENOMEM;
  l->loop = loop;
  l->fd = fd;
  if (loop->nlisteners < (int)(sizeof(loop->listeners) / sizeof(loop->listeners[0])))
    rc = uv_poll_init(&loop->uv, &l->h.poll, fd);
  if (rc < 0) {
    close(fd);
    free(l);
    return rc;
  }
  l->h.handle.data = l;
  loop->listeners[loop->nlisteners++] = l; /* the loop's from here on */
  if (listen(fd, LISTEN_BACKLOG) < 0)
    return -errno;
  return uv_poll_start(&l->h.poll, UV_READABLE, on_readable);
}
