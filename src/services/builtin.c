/* builtin.c - a server with every built-in service registered. Which of
 * them answer is decided at start by --services and --allow-exec. */
#include "net/core.h"
#include "services/services.h"

static const sk_service *const builtins[] = {
    &sk__svc_core,  &sk__svc_echo, &sk__svc_time,  &sk__svc_chat,
    &sk__svc_dgram, &sk__svc_exec, &sk__svc_files,
};

int sk_server_new(sk_server **out) {
  sk_server *srv;
  int rc = sk__server_create(&srv);
  for (size_t i = 0; rc == 0 && i < sizeof(builtins) / sizeof(builtins[0]); i++)
    rc = sk__server_add(srv, builtins[i], 1);
  if (rc < 0) {
    sk_server_free(srv);
    return rc;
  }
  *out = srv;
  return 0;
}
