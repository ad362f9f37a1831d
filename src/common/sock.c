/* sock.c - socket and descriptor helpers shared by the server, the client
 * and the commands (see sock.h). */
#include "common/sock.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* write(2) when off < 0, else pwrite(2) at off; EINTR and short writes go on. */
static int write_loop(int fd, const uint8_t *b, size_t n, int64_t off) {
  while (n > 0) {
    ssize_t w = off < 0 ? write(fd, b, n) : pwrite(fd, b, n, (off_t)off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -errno;
    if (w == 0)
      return -EIO; /* no progress on n > 0 bytes: never spin */
    b += w;
    n -= (size_t)w;
    off = off < 0 ? off : off + w;
  }
  return 0;
}

int sk__write_all(int fd, const void *p, size_t n) {
  return write_loop(fd, p, n, -1);
}

int sk__pwrite_all(int fd, const void *p, size_t n, uint64_t off) {
  return write_loop(fd, p, n, (int64_t)off);
}

int sk__sock_clear_stale(const struct sockaddr_storage *ss, socklen_t len, int type) {
  const char *path = ((const struct sockaddr_un *)ss)->sun_path;
  struct stat st;
  int fd, live;
  if (ss->ss_family != AF_UNIX || path[0] == '\0' || lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
    return 0;
  if ((fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0)) < 0)
    return -errno;
  /* only a refusal says nobody listens: a full backlog (EAGAIN) is a live
   * server */
  live = connect(fd, (const struct sockaddr *)ss, len) == 0 || errno != ECONNREFUSED;
  close(fd);
  if (live)
    return -EADDRINUSE;
  unlink(path);
  return 0;
}

int sk__sock_bind(const struct sockaddr_storage *ss, socklen_t len, int type, unsigned flags) {
  int fd = socket(ss->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1, rc;
  if (fd < 0)
    return -errno;
  if (ss->ss_family != AF_UNIX) {
    if (type == SOCK_STREAM)
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (flags & SK_SOCK_REUSEPORT)
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    if ((flags & SK_SOCK_V6ONLY) && ss->ss_family == AF_INET6)
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  if (bind(fd, (const struct sockaddr *)ss, len) < 0) {
    rc = -errno;
    close(fd);
    return rc;
  }
  return fd;
}

int sk__sock_connect(const struct sockaddr_storage *ss, socklen_t len, int type, int timeout_ms,
                     sk__sock_wait_fn wait) {
  int fd = socket(ss->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), rc = 0, err = 0;
  socklen_t elen = sizeof(err);
  if (fd < 0)
    return -errno;
  if (type == SOCK_DGRAM && ss->ss_family == AF_UNIX) { /* autobind: replies need a name */
    sa_family_t fam = AF_UNIX;
    if (bind(fd, (struct sockaddr *)&fam, sizeof(fam)) < 0)
      rc = -errno;
  }
  if (rc == 0 && connect(fd, (const struct sockaddr *)ss, len) < 0) {
    if (errno != EINPROGRESS && errno != EAGAIN)
      rc = -errno;
    else if ((rc = wait(fd, POLLOUT, timeout_ms)) == 0)
      rc = getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 ? -errno : -err;
  }
  if (rc < 0) {
    close(fd);
    return rc;
  }
  return fd;
}
