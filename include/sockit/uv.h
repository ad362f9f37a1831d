/* sockit/uv.h - opt-in: the libuv side of the server framework.
 *
 * The only public header that names a libuv type. Include it (after
 * <uv.h> is reachable: `pkg-config --cflags sockit` lists libuv's flags)
 * when a service wants to do its own libuv work on a connection's loop:
 * uv_queue_work for blocking calls, timers, child processes. Everything
 * else in libsockit hides libuv.
 *
 * Link libuv yourself: libsockit keeps libuv a private dependency, so
 * `pkg-config --libs sockit` does not name it, and a program that calls
 * uv_* functions links with `$(pkg-config --cflags --libs sockit libuv)`.
 * Use the libuv that libsockit was built against (one copy per process).
 */
#ifndef SOCKIT_UV_H
#define SOCKIT_UV_H

#include <uv.h>

#include "sockit/server.h"
#include "sockit/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The libuv loop that c lives on; every callback for c runs on its thread.
 * Borrowed: it belongs to the server and lives until sk_server_run
 * returns. Call only from that loop's thread (from a handler, a body sink
 * or a libuv callback on the same loop). Handles started on it must be
 * closed before the connection's service finish() returns or, if they
 * outlive the connection, hold sk_conn_ref(c) until their close callback.
 * Never NULL for a live connection. */
SK_API uv_loop_t *sk_conn_uv_loop(sk_conn *c);

#ifdef __cplusplus
}
#endif
#endif
