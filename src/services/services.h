/* services.h - the built-in services, each one table (src/services). */
#ifndef SOCKIT_SERVICES_H
#define SOCKIT_SERVICES_H

#include <sys/types.h>

#include "sockit/server.h"

extern const sk_service sk__svc_core; /* ping, bye */
extern const sk_service sk__svc_echo;
extern const sk_service sk__svc_time;
extern const sk_service sk__svc_chat;  /* join, say, leave (SPEC 4.8), TCP and UDP */
extern const sk_service sk__svc_dgram; /* unnamed: echo, time, ping over UDP (SPEC 5) */
extern const sk_service sk__svc_exec;  /* exec, stdin, signal (SPEC 4.6) */
extern const sk_service sk__svc_files; /* put, put_end, get, stat, list (SPEC 4.7) */

/* Each service's own options (service.h), paired with it in builtin.c. */
struct sk__option;
extern const struct sk__option sk__echo_options[];
extern const struct sk__option sk__chat_options[];
extern const struct sk__option sk__exec_options[];
extern const struct sk__option sk__files_options[];

/* The seed wire's adapters (SPEC 6, src/services/seed/): the tutorial's
 * unframed formats, registered with the server as --wire seed --service
 * NAME by builtin.c. */
struct sk_wire;
extern const struct sk_wire sk__wire_seed_time;
extern const struct sk_wire sk__wire_seed_exec;
extern const struct sk_wire sk__wire_seed_put;
extern const struct sk_wire sk__wire_seed_auth;
extern const struct sk_wire sk__wire_seed_chat;

/* time.c: the answer to a time request (TCP, or a datagram, where
 * ts_is_now says "ts" is the sender's clock and now is formatted). 0 and a
 * new "time" head in *out (the caller frees it), -ENOMEM, or SK_EBADREQ
 * with *why (static text) saying what was wrong. */
int sk__time_answer(const sk_head *req, int ts_is_now, sk_head **out, const char **why);

/* --exec-user as the exec service resolved it at start: 1 and *uid, *gid
 * set when programs run as that user (the server runs as root), else 0.
 * The seed wire's exec (which needs --allow-exec, so the exec service is
 * on) runs its commands as the same user. */
int sk__exec_user(const sk_server *srv, uid_t *uid, gid_t *gid);

#endif
