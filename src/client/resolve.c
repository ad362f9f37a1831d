/* resolve.c - the public face of SPEC 2 address parsing (sockit/client.h),
 * for programs that open their own sockets. The parser itself lives in
 * common/addr.c so that the server, the client and these agree. */
#include <errno.h>
#include <string.h>

#include "common/addr.h"
#include "sockit/client.h"
#include "sockit/error.h"

int sk_resolve(const char *addr, int flags, struct sockaddr_storage *ss, socklen_t *len, int max,
               const char **why) {
  sk_addr found[SK_ADDR_MAX];
  int n, inner = ((flags & SK_RESOLVE_BARE_PORT) ? SK_ADDR_BARE_PORT : 0) |
                 ((flags & SK_RESOLVE_PASSIVE) ? SK_ADDR_PASSIVE : 0);
  if (max <= 0)
    return -EINVAL;
  n = sk__addr_resolve(addr, inner, found, max < SK_ADDR_MAX ? (size_t)max : SK_ADDR_MAX, why);
  for (int i = 0; i < n; i++) {
    memcpy(&ss[i], &found[i].ss, sizeof(ss[i]));
    len[i] = found[i].len;
  }
  return n;
}

char *sk_addr_text(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap) {
  return sk__addr_format(sa, len, buf, cap);
}
