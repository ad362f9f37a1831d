/* timeproto.c - RFC 867 daytime and RFC 868 time (SPEC 7). Not built yet. */
#include <errno.h>

#include "net/core.h"

int sk__daytime_open(sk_server *srv, sk_listen_spec *ls, const char **why) {
  *why = "--daytime is not available yet";
  return -ENOTSUP;
}

int sk__rfc868_open(sk_server *srv, sk_listen_spec *ls, const char **why) {
  *why = "--rfc868 is not available yet";
  return -ENOTSUP;
}
