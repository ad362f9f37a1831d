/* addr.h - SPEC 2 addresses: HOST:PORT, [IPv6]:PORT, :PORT, unix:/path. */
#ifndef SOCKIT_COMMON_ADDR_H
#define SOCKIT_COMMON_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

#define SK_ADDR_TEXT 300 /* fits "unix:" + a sun_path, or "[v6]:port" */
#define SK_ADDR_MAX 8    /* at most this many resolutions are tried */

typedef struct sk_addr {
  struct sockaddr_storage ss;
  socklen_t len;
  int family; /* AF_INET, AF_INET6 or AF_UNIX */
} sk_addr;

enum {
  SK_ADDR_BARE_PORT = 1 << 0, /* "8080" means 127.0.0.1:8080 (flag values) */
  SK_ADDR_PASSIVE = 1 << 1,   /* for bind(): "" host is 0.0.0.0 */
};

/* Resolve text into up to max addresses (getaddrinfo, IPv4 and IPv6).
 * Returns the count (>= 1), SK_EBADADDR for text that is no address,
 * SK_ERESOLVE for a name that does not resolve, or a negated errno. *why,
 * if given, explains a failure in words (the resolver's, for SK_ERESOLVE). */
int sk__addr_resolve(const char *text, int flags, sk_addr *out, size_t max, const char **why);

/* "127.0.0.1:8080", "[::1]:8080" or "unix:/path". Returns buf. */
char *sk__addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap);

/* The IP alone ("127.0.0.1", "::1"), or "" for Unix peers. Returns buf. */
char *sk__addr_ip(const struct sockaddr *sa, char *buf, size_t cap);

/* Does text look like an address (contains ':')? SPEC 2's rule for the
 * first positional argument of a client command. */
int sk__addr_looks_like(const char *text);

#endif
