/* udp.c - datagram listeners (SPEC 5). Not built yet: refused at start. */
#include <errno.h>

#include "net/core.h"

int sk__udp_open(sk_server *srv, sk_listen_spec *ls, const char **why) {
  *why = "--udp is not available yet";
  return -ENOTSUP;
}
