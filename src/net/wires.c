/* wires.c - which wire a stream listener speaks (--wire NAME --service S). */
#include <string.h>

#include "net/core.h"
#include "net/seed/seed.h"

static const struct {
  const char *wire, *service; /* service NULL: any */
  const sk_wire *impl;
} wires[] = {
    {"native", NULL, &sk__wire_native},    {"seed", "time", &sk__wire_seed_time},
    {"seed", "exec", &sk__wire_seed_exec}, {"seed", "put", &sk__wire_seed_put},
    {"seed", "auth", &sk__wire_seed_auth}, {"seed", "chat", &sk__wire_seed_chat},
};

const sk_wire *sk__wire_find(const char *wire, const char *service) {
  for (size_t i = 0; i < sizeof(wires) / sizeof(wires[0]); i++)
    if (strcmp(wires[i].wire, wire) == 0 &&
        (wires[i].service == NULL || strcmp(wires[i].service, service) == 0))
      return wires[i].impl;
  return NULL;
}
