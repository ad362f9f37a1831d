/* addr.c - parse and print SPEC 2 addresses. */
#include "common/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "sockit/error.h"

static int resolve_unix(const char *path, sk_addr *out, const char **why) {
  struct sockaddr_un *sun = (struct sockaddr_un *)&out->ss;
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof(sun->sun_path)) {
    *why = "unix socket path is empty or longer than 107 bytes";
    return SK_EBADADDR;
  }
  memset(out, 0, sizeof(*out));
  sun->sun_family = AF_UNIX;
  memcpy(sun->sun_path, path, n + 1);
  out->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  out->family = AF_UNIX;
  return 1;
}

/* Split "host:port", "[v6]:port", ":port" or (with bare) "port". */
static int split_host_port(const char *text, int flags, char *host, size_t hcap, const char **port,
                           const char **why) {
  const char *colon;
  if (text[0] == '[') {
    const char *end = strchr(text, ']');
    if (end == NULL || end[1] != ':') {
      *why = "expected [IPv6]:PORT";
      return SK_EBADADDR;
    }
    if ((size_t)(end - text - 1) >= hcap)
      return SK_EBADADDR;
    memcpy(host, text + 1, (size_t)(end - text - 1));
    host[end - text - 1] = '\0';
    *port = end + 2;
    return 0;
  }
  colon = strrchr(text, ':');
  if (colon == NULL) {
    if (!(flags & SK_ADDR_BARE_PORT)) {
      *why = "expected HOST:PORT, [IPv6]:PORT, :PORT or unix:/path";
      return SK_EBADADDR;
    }
    snprintf(host, hcap, "127.0.0.1");
    *port = text;
    return 0;
  }
  if (strchr(text, ':') != colon) {
    *why = "an IPv6 address needs brackets: [::1]:PORT";
    return SK_EBADADDR;
  }
  if ((size_t)(colon - text) >= hcap)
    return SK_EBADADDR;
  memcpy(host, text, (size_t)(colon - text));
  host[colon - text] = '\0';
  if (host[0] == '\0')
    snprintf(host, hcap, "127.0.0.1");
  *port = colon + 1;
  return 0;
}

static int valid_port(const char *port) {
  char *end;
  long v;
  if (*port == '\0')
    return 0;
  v = strtol(port, &end, 10);
  return *end == '\0' && v >= 0 && v <= 65535;
}

int sk__addr_resolve(const char *text, int flags, sk_addr *out, size_t max, const char **why) {
  char host[256];
  const char *port, *dummy;
  struct addrinfo hints, *res = NULL, *ai;
  int rc, n = 0;

  if (why == NULL)
    why = &dummy;
  *why = NULL;
  if (max == 0)
    return -EINVAL;
  if (strncmp(text, "unix:", 5) == 0)
    return resolve_unix(text + 5, out, why);
  rc = split_host_port(text, flags, host, sizeof(host), &port, why);
  if (rc < 0)
    return rc;
  if (!valid_port(port)) {
    *why = "the port must be a number 0..65535";
    return SK_EBADADDR;
  }
  memset(&hints, 0, sizeof(hints));
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | ((flags & SK_ADDR_PASSIVE) ? AI_PASSIVE : 0);
  rc = getaddrinfo(host, port, &hints, &res);
  if (rc != 0) {
    *why = gai_strerror(rc);
    return rc == EAI_SYSTEM && errno != 0 ? -errno : SK_ERESOLVE;
  }
  for (ai = res; ai != NULL && (size_t)n < max; ai = ai->ai_next) {
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
      continue;
    memset(&out[n], 0, sizeof(out[n]));
    memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
    out[n].len = ai->ai_addrlen;
    out[n].family = ai->ai_family;
    n++;
  }
  freeaddrinfo(res);
  if (n == 0) {
    *why = "no IPv4 or IPv6 address for that host";
    return SK_ERESOLVE;
  }
  return n;
}

char *sk__addr_ip(const struct sockaddr *sa, char *buf, size_t cap) {
  buf[0] = '\0';
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)cap);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)cap);
  return buf;
}

char *sk__addr_format(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap) {
  char ip[INET6_ADDRSTRLEN];
  if (sa->sa_family == AF_UNIX) {
    const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
    size_t n = len > offsetof(struct sockaddr_un, sun_path)
                   ? len - offsetof(struct sockaddr_un, sun_path)
                   : 0;
    if (n == 0 || sun->sun_path[0] == '\0')
      snprintf(buf, cap, "unix");
    else
      snprintf(buf, cap, "unix:%.*s", (int)strnlen(sun->sun_path, n), sun->sun_path);
  } else if (sa->sa_family == AF_INET) {
    snprintf(buf, cap, "%s:%u", sk__addr_ip(sa, ip, sizeof(ip)),
             ntohs(((const struct sockaddr_in *)sa)->sin_port));
  } else if (sa->sa_family == AF_INET6) {
    snprintf(buf, cap, "[%s]:%u", sk__addr_ip(sa, ip, sizeof(ip)),
             ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
  } else {
    snprintf(buf, cap, "?");
  }
  return buf;
}

int sk__addr_looks_like(const char *text) {
  return strchr(text, ':') != NULL;
}
