/* builtin.c - a server with every built-in service registered, and the
 * seed wire's adapters for them. Which services answer is decided at start
 * by --services and --allow-exec. */
#include "service/service.h"
#include "services/services.h"

static const struct {
  const sk_service *svc;
  const sk__option *options; /* NULL: none */
} builtins[] = {
    {&sk__svc_core, NULL},
    {&sk__svc_echo, sk__echo_options},
    {&sk__svc_time, NULL},
    {&sk__svc_chat, sk__chat_options},
    {&sk__svc_dgram, NULL},
    {&sk__svc_exec, sk__exec_options},
    {&sk__svc_files, sk__files_options},
};

/* --wire seed --service NAME */
static const struct {
  const char *service;
  const sk_wire *wire;
} seed_wires[] = {
    {"time", &sk__wire_seed_time}, {"exec", &sk__wire_seed_exec}, {"put", &sk__wire_seed_put},
    {"auth", &sk__wire_seed_auth}, {"chat", &sk__wire_seed_chat},
};

int sk_server_new(sk_server **out) {
  sk_server *srv;
  int rc = sk__server_create(&srv);
  for (size_t i = 0; rc == 0 && i < sizeof(builtins) / sizeof(builtins[0]); i++) {
    rc = sk__server_add(srv, builtins[i].svc, 1);
    if (rc == 0 && builtins[i].options != NULL)
      rc = sk__server_add_options(srv, builtins[i].svc, builtins[i].options);
  }
  for (size_t i = 0; rc == 0 && i < sizeof(seed_wires) / sizeof(seed_wires[0]); i++)
    rc = sk__server_add_wire(srv, "seed", seed_wires[i].service, seed_wires[i].wire);
  if (rc < 0) {
    sk_server_free(srv);
    return rc;
  }
  *out = srv;
  return 0;
}
