/* log.h - the connection log: one line per event, text or JSON (SPEC 4.3).
 *
 * Lines are formatted on the caller's stack and written with one write(2) to
 * an O_APPEND descriptor, so lines from several loops never interleave and
 * no lock is taken. */
#ifndef SOCKIT_NET_LOG_H
#define SOCKIT_NET_LOG_H

#include <stdarg.h>

typedef struct sk__log sk__log;

/* path "-" is stderr. json: 1 for --log-format json. Returns 0 or -errno. */
int sk__log_open(sk__log **out, const char *path, int json);
void sk__log_close(sk__log *log);

/* Fields: (const char *key, int kind, value) triples closed by NULL; kind
 * 's' const char *, 'i' int64_t, 'f' double. */
void sk__log_event(sk__log *log, const char *peer, const char *event, ...);
void sk__log_eventv(sk__log *log, const char *peer, const char *event, va_list ap);

/* Lines before authentication are limited per source, so that a flood of
 * connections cannot fill the disk: at most SK_LOG_PREAUTH_BURST lines per
 * source per SK_LOG_PREAUTH_INTERVAL seconds; past that they are counted,
 * and one `log_suppressed lines=N` line per source and interval says how
 * many were held back (when the source logs again, or at sk__log_tick).
 * source: the failed-auth source (ratelimit.h); "" or NULL is not limited.
 * now: seconds on a monotonic clock. */
#define SK_LOG_PREAUTH_BURST 20
#define SK_LOG_PREAUTH_INTERVAL 10.0
void sk__log_preauthv(sk__log *log, const char *source, double now, const char *peer,
                      const char *event, va_list ap);
/* Write the summaries of intervals that have ended (call about once a second). */
void sk__log_tick(sk__log *log, double now);
/* For tests: burst 0 turns the limit off. */
void sk__log_set_preauth_limit(sk__log *log, unsigned burst, double interval);

/* Open the file again by its name, for logrotate (stderr: nothing to do).
 * Async-signal-safe. Returns 0 or -errno (the old file stays in use). */
int sk__log_reopen(sk__log *log);

#endif
