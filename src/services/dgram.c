/* dgram.c - echo, time and ping over UDP (SPEC 5).
 *
 * An unnamed service (always on, never listed in hello) whose only job is to
 * register, at start, the datagram answers of the services that are on:
 * src/net/udp.c never calls into services/. Chat registers its own table. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "service/dgram.h"
#include "service/service.h"
#include "services/services.h"
#include "sockit/error.h"

static int answer(sk_dgram *d, const char *type, const void *body, size_t n, int sized) {
  sk_head *h = sk_head_new(type);
  int rc = h ? 0 : -ENOMEM;
  if (rc == 0 && sized)
    rc = sk_head_set_int(h, "size", (int64_t)n);
  if (rc == 0)
    rc = sk__dgram_reply(d, h, body, n);
  sk_head_free(h);
  return rc;
}

static int dgram_echo(sk_dgram *d, const sk_head *h, const uint8_t *body, size_t n) {
  /* the echo head is the request's head: it always fits the budget */
  return answer(d, "echo", body, n, 1);
}

static int dgram_time(sk_dgram *d, const sk_head *h, const uint8_t *body, size_t n) {
  const char *why = NULL;
  sk_head *resp = NULL;
  /* in an authenticated datagram "ts" is the sender's clock in ms (SPEC
   * 5), not a time to format: there the time formatted is now */
  int rc = sk__time_answer(h, d->authed, &resp, &why);
  if (rc == SK_EBADREQ)
    return sk__dgram_error(d, rc, why);
  if (rc == 0)
    rc = sk__dgram_reply(d, resp, NULL, 0);
  sk_head_free(resp);
  /* an answer may not outgrow its request by more than SK_UDP_AMP bytes
   * (reflection): a format that expands that much is refused */
  if (rc == SK_ETOOLARGE)
    return sk__dgram_error(d, rc,
                           "the formatted time would be over 512 bytes larger than the "
                           "request; UDP answers are capped: use a shorter format or TCP");
  return rc;
}

static int dgram_handle(sk_dgram *d, const sk_head *h, const uint8_t *body, size_t n, void *ctx) {
  const char *type = sk_head_type(h);
  if (strcmp(type, "echo") == 0)
    return dgram_echo(d, h, body, n);
  if (strcmp(type, "time") == 0)
    return dgram_time(d, h, body, n);
  return answer(d, "pong", NULL, 0, 0);
}

static int dgram_start(sk_server *srv) {
  static const char *const types[4][4] = {{"ping", NULL},
                                          {"echo", "ping", NULL},
                                          {"time", "ping", NULL},
                                          {"echo", "time", "ping", NULL}};
  int which = sk__service_enabled(srv, "echo") | sk__service_enabled(srv, "time") << 1;
  sk_dgram_table t = {.types = types[which], .handle = dgram_handle};
  return sk__dgram_register(srv, &t);
}

const sk_service sk__svc_dgram = {.name = "", .start = dgram_start};
