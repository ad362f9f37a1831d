/* echo.c - echo, and the core's ping and bye (SPEC 4.4). */
#include <errno.h>

#include "net/core.h"
#include "services/services.h"

static int reply(sk_conn *c, const char *type, const void *body, size_t n, int sized) {
  sk_head *h = sk_head_new(type);
  int rc = h == NULL ? -ENOMEM : 0;
  if (rc == 0 && sized)
    rc = sk_head_set_int(h, "size", (int64_t)n);
  if (rc == 0)
    rc = sk_conn_send(c, h, body, n);
  sk_head_free(h);
  return rc;
}

static int handle_echo(sk_conn *c, const sk_request *req) {
  return reply(c, "echo", req->body, (size_t)req->size, 1);
}

static int handle_ping(sk_conn *c, const sk_request *req) {
  return reply(c, "pong", NULL, 0, 0);
}

/* bye: everything owed is flushed, then the connection closes */
static int handle_bye(sk_conn *c, const sk_request *req) {
  sk_conn_close(c, 0);
  return 0;
}

static uint64_t echo_limit(const sk_server *srv) {
  return (uint64_t)sk_server_opt_int(srv, "max-message");
}

static const sk_handler echo_handlers[] = {
    {.type = "echo", .handle = handle_echo, .limit = echo_limit},
    {0},
};

static const sk_handler core_handlers[] = {
    {.type = "ping", .handle = handle_ping},
    {.type = "bye", .handle = handle_bye},
    {0},
};

const sk_service sk__svc_echo = {.name = "echo", .handlers = echo_handlers};
/* The unnamed service: always on, never listed in hello. */
const sk_service sk__svc_core = {.name = "", .handlers = core_handlers};
