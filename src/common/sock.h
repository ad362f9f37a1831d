/* sock.h - the socket and descriptor helpers every layer shares: the
 * server's listeners, the blocking client, and the commands (pipe, keygen,
 * get). One copy of each loop, so that EINTR, short writes and stale Unix
 * socket files are handled the same way everywhere. */
#ifndef SOCKIT_COMMON_SOCK_H
#define SOCKIT_COMMON_SOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Write all n bytes to a blocking fd, retrying after EINTR and short
 * writes. 0 or a negative errno. */
int sk__write_all(int fd, const void *p, size_t n);

/* The same with pwrite(2) at offset off. */
int sk__pwrite_all(int fd, const void *p, size_t n, uint64_t off);

/* A Unix socket file nobody answers on (connect is refused) was left by a
 * crashed process: remove it. A live one is in use. type is SOCK_STREAM or
 * SOCK_DGRAM. 0 (nothing there, or removed) or -EADDRINUSE. */
int sk__sock_clear_stale(const struct sockaddr_storage *ss, socklen_t len, int type);

#define SK_SOCK_REUSEPORT 1u /* SO_REUSEPORT: one socket per loop on one port */
#define SK_SOCK_V6ONLY 2u    /* an IPv6 address takes IPv6 only */

/* A non-blocking, close-on-exec socket of type bound to ss (SO_REUSEADDR
 * for TCP, so a restarted server finds its port). Not listening yet: the
 * caller may change the socket file first. The fd or a negative errno. */
int sk__sock_bind(const struct sockaddr_storage *ss, socklen_t len, int type, unsigned flags);

/* Wait until fd is ready for events (POLLIN/POLLOUT): 0, -ETIMEDOUT when
 * timeout_ms ran out, or another negative errno (-EINTR to give up). */
typedef int (*sk__sock_wait_fn)(int fd, short events, int timeout_ms);

/* A non-blocking, close-on-exec socket of type connected to ss, waiting
 * with wait for at most timeout_ms. A Unix datagram socket is autobound
 * first (replies need an address). The fd or a negative errno. */
int sk__sock_connect(const struct sockaddr_storage *ss, socklen_t len, int type, int timeout_ms,
                     sk__sock_wait_fn wait);

#endif
