/* sockit/sockit.h - everything in libsockit, in one include.
 *
 *   sockit/error.h   one error table, sk_strerror
 *   sockit/frame.h   the frame codec and heads (usable alone)
 *   sockit/auth.h    keys and the HMAC challenge-response
 *   sockit/server.h  the server framework (services, connections)
 *   sockit/client.h  a blocking client
 *   sockit/uv.h      (opt-in, not included here) a connection's libuv loop
 *   sockit/export.h  SK_API, the mark on every exported function
 *
 * Rules for the whole API, so that each header need not repeat them:
 *   - Every function that can fail returns 0 (or a count) or a negative
 *     code: a negated errno value or an SK_E* code; sk_strerror() names both.
 *   - Types are opaque (sk_client, sk_server, sk_conn, sk_head, sk_buf) and
 *     made and freed by their own functions; every *_free / *_close accepts
 *     NULL. No libuv, jansson or OpenSSL type appears outside sockit/uv.h.
 *   - "Borrowed" means the library keeps ownership and the pointer is valid
 *     for the lifetime stated; anything else handed out is the caller's.
 *   - Thread rules are at the top of client.h and server.h; frame.h and
 *     auth.h keep no global state and are safe from any thread on distinct
 *     objects.
 *   - SK_VERSION is the version compiled against, sk_version() the one run.
 */
#ifndef SOCKIT_SOCKIT_H
#define SOCKIT_SOCKIT_H

#include "sockit/version.h"
#include "sockit/error.h"
#include "sockit/frame.h"
#include "sockit/auth.h"
#include "sockit/server.h"
#include "sockit/client.h"

#endif
