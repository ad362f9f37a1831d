/* services.h - the built-in services, each one table (src/services). */
#ifndef SOCKIT_SERVICES_H
#define SOCKIT_SERVICES_H

#include "sockit/server.h"

extern const sk_service sk__svc_core; /* ping, bye */
extern const sk_service sk__svc_echo;
extern const sk_service sk__svc_time;
extern const sk_service sk__svc_chat;  /* join, say, leave (SPEC 4.8), TCP and UDP */
extern const sk_service sk__svc_dgram; /* unnamed: echo, time, ping over UDP (SPEC 5) */
extern const sk_service sk__svc_exec;  /* exec, stdin, signal (SPEC 4.6) */
extern const sk_service sk__svc_files; /* put, put_end, get, stat, list (SPEC 4.7) */

/* The seed wire's adapters (SPEC 6, src/services/seed/): the tutorial's
 * unframed formats, registered with the server as --wire seed --service
 * NAME by builtin.c. */
struct sk_wire;
extern const struct sk_wire sk__wire_seed_time;
extern const struct sk_wire sk__wire_seed_exec;
extern const struct sk_wire sk__wire_seed_put;
extern const struct sk_wire sk__wire_seed_auth;
extern const struct sk_wire sk__wire_seed_chat;

/* Format unix time ts in zone tz ("local", "UTC", "+HH:MM", "-HH:MM") with a
 * strftime format into out. Returns the length, or SK_EBADREQ for a bad
 * zone, format or time. */
int sk__time_format(int64_t ts, const char *tz, const char *fmt, char *out, size_t cap);
/* The same, with *why (static text) saying what was wrong on failure. tz
 * is local, UTC, +HH:MM, -HH:MM or an IANA zone name (Asia/Tokyo). */
int sk__time_format_why(int64_t ts, const char *tz, const char *fmt, char *out, size_t cap,
                        const char **why);

#endif
