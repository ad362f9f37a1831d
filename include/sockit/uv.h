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

/* Run srv on the application's libuv loop, instead of in sk_server_run.
 * Binds every listener and starts the services as sk_server_run does, then
 * returns: the server works while the application runs `loop` (uv_run) on
 * its thread, and every callback of the server's first loop (with
 * "threads" 1: of every connection, so a service may then touch the
 * application's state without a lock) runs on that thread, inside uv_run.
 * With "threads" above 1, the other loops run on threads of their own, as
 * under sk_server_run. The server keeps two handles on `loop` (so uv_run
 * does not return while it runs) and never stops or closes `loop`.
 *
 * Stop it with sk_server_stop (any thread, e.g. from a uv_signal_t on
 * `loop`: signals are the application's here, none is watched). Once it
 * has stopped and released everything, done(srv, ctx) runs on loop's
 * thread; from then on `loop` holds nothing of the server, and done may
 * free srv. The last step waits for the other loops' threads to end, so a
 * server with several loops may block `loop` briefly while they drain.
 *
 * Returns 0 (running; done will be called, once), or an error as from
 * sk_server_run with *why saying what to do (then nothing is left on
 * `loop` and done is never called). Call once per server, from loop's
 * thread, and keep srv until done. done may be NULL. */
typedef void (*sk_server_done_fn)(sk_server *srv, void *ctx);
SK_API int sk_server_run_on(sk_server *srv, uv_loop_t *loop, sk_server_done_fn done, void *ctx,
                            const char **why);

#ifdef __cplusplus
}
#endif
#endif
