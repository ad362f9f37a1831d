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

#endif
