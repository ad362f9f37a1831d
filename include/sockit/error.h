/* sockit/error.h - one error table for the whole library.
 *
 * Every sockit function that can fail returns 0 (or a count) on success and
 * a negative code on failure. Codes in (-4096, 0) are negated errno values
 * (-ENOENT, -ECONNREFUSED, ...); codes at or below SK_ERR_BASE are sockit's
 * own, listed below. sk_strerror() names either kind.
 *
 * The SK_E* codes that have a wire name (SPEC 4.2) travel in error frames as
 * {"type":"error","code":NAME}; sk_err_wire_name() and sk_err_from_wire()
 * convert in both directions.
 */
#ifndef SOCKIT_ERROR_H
#define SOCKIT_ERROR_H

#include "sockit/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SK_ERR_BASE (-10000)

/* X(NAME, wire code or NULL, human message). Order is the ABI: append only. */
#define SK_ERRNO_MAP(X)                                                                            \
  X(BADFRAME, "bad_frame", "malformed frame")                                                      \
  X(BADREQ, "bad_request", "bad request")                                                          \
  X(UNKNOWNTYPE, "unknown_type", "unknown request type")                                           \
  X(AUTHREQ, "auth_required", "authentication required")                                           \
  X(AUTHFAIL, "auth_failed", "authentication failed (wrong key?)")                                 \
  X(RATELIMIT, "rate_limited", "too many failed authentications from this address; wait a minute") \
  X(FORBIDDEN, "forbidden", "forbidden")                                                           \
  X(NOTFOUND, "not_found", "not found")                                                            \
  X(EXISTS, "exists", "already exists")                                                            \
  X(TOOLARGE, "too_large", "too large")                                                            \
  X(HASHMISMATCH, "hash_mismatch", "hash mismatch")                                                \
  X(IO, "io_error", "input/output error")                                                          \
  X(BUSY, "busy", "busy")                                                                          \
  X(NICKTAKEN, "nick_taken", "nick already taken in this room")                                    \
  X(SLOWCONSUMER, "slow_consumer", "dropped: output not read fast enough")                         \
  X(TIMEOUT, "timeout", "timed out")                                                               \
  X(INTERNAL, "internal", "internal error")                                                        \
  X(PROTO, NULL, "protocol error: unexpected frame from peer")                                     \
  X(BADMAC, NULL, "server failed mutual authentication (wrong key?)")                              \
  X(BADKEY, NULL, "unusable key file")                                                             \
  X(BADADDR, NULL, "bad address")                                                                  \
  X(CLOSED, NULL, "connection closed by peer")                                                     \
  X(USAGE, NULL, "bad usage")                                                                      \
  X(REMOTE, NULL, "the server answered with an error")                                             \
  X(RESOLVE, NULL, "cannot resolve the host name")                                                 \
  X(NOHELLO, NULL, "connected, but no sockit hello came (not a sockit server?)")                   \
  X(UNAVAILABLE, "unavailable", "unavailable: the server cannot reach its Redis; try again")       \
  X(TLS, NULL, "TLS handshake or record failed (data altered on the way?)")                        \
  X(TLSCERT, NULL, "the server's TLS certificate is not trusted")                                  \
  X(TLSPLAIN, NULL, "the server speaks plain sockit/1, not TLS")                                   \
  X(TLSWANTED, NULL, "the server speaks TLS, not plain sockit/1")

enum {
  SK_EFIRST_ = SK_ERR_BASE + 1,
#define SK_ERR_ENUM_(name, wire, msg) SK_E##name,
  SK_ERRNO_MAP(SK_ERR_ENUM_)
#undef SK_ERR_ENUM_
      SK_ELAST_
};

/* SK_ASYNC: returned by a request handler that will finish later with
 * sk_conn_done(). It is positive so that it can never be mistaken for an
 * error. */
#define SK_ASYNC 1

/* Human-readable text for any code: SK_E*, negated errno, or 0 ("ok").
 * The string is static; never NULL. */
SK_API const char *sk_strerror(int err);

/* The SPEC 4.2 wire code for err ("too_large", ...). Codes with no wire name
 * (and negated errno values) map to "io_error" for -EIO/-ENOSPC/... style
 * file errors and "internal" otherwise. Never NULL. */
SK_API const char *sk_err_wire_name(int err);

/* The SK_E* code for a wire code, or SK_EREMOTE if the name is unknown. */
SK_API int sk_err_from_wire(const char *code);

/* Does this error end the connection after it is sent (SPEC 4.2)? */
SK_API int sk_err_is_fatal(int err);

#ifdef __cplusplus
}
#endif
#endif
