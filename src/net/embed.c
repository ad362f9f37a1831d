/* embed.c - sockit/uv.h: a connection's libuv loop, for services that run
 * their own libuv work next to the core's. */
#include "net/core.h"
#include "sockit/uv.h"

uv_loop_t *sk_conn_uv_loop(sk_conn *c) {
  return &sk__conn_loop(c)->uv;
}
