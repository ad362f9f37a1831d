/* wires.c - which wire a stream listener speaks (--wire NAME --service S).
 * The core knows only the native wire; the others are registered by the
 * services whose tutorial formats they speak (src/services/builtin.c). */
#include <errno.h>
#include <string.h>

#include "net/core.h"

int sk__server_add_wire(sk_server *srv, const char *wire, const char *service,
                        const sk_wire *impl) {
  if (srv->nwires >= SK_MAX_WIRES)
    return -ENOMEM;
  srv->wires[srv->nwires++] = (struct sk_wire_ref){wire, service, impl};
  return 0;
}

const sk_wire *sk__wire_find(const sk_server *srv, const char *wire, const char *service) {
  if (strcmp(wire, "native") == 0)
    return &sk__wire_native;
  for (int i = 0; i < srv->nwires; i++)
    if (strcmp(srv->wires[i].wire, wire) == 0 && strcmp(srv->wires[i].service, service) == 0)
      return srv->wires[i].impl;
  return NULL;
}
