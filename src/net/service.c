/* service.c - the core's side of the service API (src/service/service.h):
 * what a service may ask of the server, answered without letting it see
 * the server's structures. */
#include <stdarg.h>
#include <string.h>

#include "net/core.h"

static int index_of(const sk_server *srv, const sk_service *svc) {
  for (int i = 0; i < srv->nservices; i++)
    if (srv->services[i] == svc)
      return i;
  return -1;
}

void *sk__service_state(const sk_server *srv, const sk_service *svc) {
  int i = index_of(srv, svc);
  return i < 0 ? NULL : srv->svc_shared[i];
}

void sk__service_set_state(sk_server *srv, const sk_service *svc, void *state) {
  int i = index_of(srv, svc);
  if (i >= 0)
    srv->svc_shared[i] = state;
}

void sk__service_failed(sk_server *srv, const char *why) {
  srv->start_why = why;
}

int sk__service_enabled(const sk_server *srv, const char *name) {
  for (int i = 0; i < srv->nservices; i++)
    if (strcmp(srv->services[i]->name, name) == 0)
      return srv->enabled[i] == 1;
  return 0;
}

int sk__server_loops(const sk_server *srv) {
  return srv->nloops;
}

int sk__conn_loop_index(const sk_conn *c) {
  return sk__conn_loop(c)->index;
}

uv_loop_t *sk__server_uv(sk_server *srv, int loop) {
  return &srv->loops[loop].uv;
}

int sk__server_post(sk_server *srv, int loop, void (*fn)(void *arg), void *arg) {
  return sk__loop_post(&srv->loops[loop], fn, arg);
}

int sk_conn_post(sk_conn *c, void (*fn)(void *arg), void *arg) {
  return sk__loop_post(sk__conn_loop(c), fn, arg);
}

void sk__server_track(sk_server *srv, int loop, sk_wire_conn *wc) {
  sk__loop_track(&srv->loops[loop], wc);
}

void sk__server_untrack(sk_server *srv, int loop, sk_wire_conn *wc) {
  sk__loop_untrack(&srv->loops[loop], wc);
}

int sk__server_loop_stopping(const sk_server *srv, int loop) {
  return srv->loops[loop].stopping;
}

int sk__server_loop_has_conns(const sk_server *srv, int loop) {
  return srv->loops[loop].conns != NULL;
}

void sk__server_metric(sk_server *srv, int loop, enum sk_metric which, int64_t n) {
  sk__loop_metric(&srv->loops[loop], which, n);
}

void sk__server_log(const sk_server *srv, const char *peer, const char *event, ...) {
  va_list ap;
  va_start(ap, event);
  sk__log_eventv(srv->log, peer, event, ap);
  va_end(ap);
}

const sk_key *sk__server_key(const sk_server *srv) {
  return &srv->key;
}

sk__ratelimit *sk__server_ratelimit(sk_server *srv) {
  return srv->rl;
}
