/* log.c - connection log lines (see log.h). */
#include "net/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 8192

struct sk__log {
  int fd;
  int own_fd;
  int json;
};

int sk__log_open(sk__log **out, const char *path, int json) {
  sk__log *log = calloc(1, sizeof(*log));
  if (log == NULL)
    return -ENOMEM;
  if (strcmp(path, "-") == 0) {
    log->fd = STDERR_FILENO;
  } else {
    log->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (log->fd < 0) {
      int err = -errno;
      free(log);
      return err;
    }
    log->own_fd = 1;
  }
  log->json = json;
  *out = log;
  return 0;
}

void sk__log_close(sk__log *log) {
  if (log == NULL)
    return;
  if (log->own_fd)
    close(log->fd);
  free(log);
}

/* "2026-11-26T03:10:00.123Z". strftime for the fields, whose widths printf
 * cannot know (gcc -O3 warns that eight ints may need 85 bytes), and the
 * milliseconds kept below 1000 so that their width is known too. */
static void iso_now(char *buf, size_t cap) {
  struct timeval tv;
  struct tm tm;
  size_t n;
  unsigned ms;
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
  ms = (unsigned)(tv.tv_usec / 1000) % 1000u;
  snprintf(buf + n, cap - n, ".%03uZ", ms);
}

/* Text values with spaces, quotes or control bytes are quoted JSON-style so
 * that a line always splits on spaces. */
static size_t text_value(char *out, size_t cap, const char *v) {
  const char *p;
  int plain = *v != '\0';
  for (p = v; *p && plain; p++)
    plain = (unsigned char)*p > ' ' && *p != '"' && *p != '=' && (unsigned char)*p != 0x7f;
  if (plain)
    return (size_t)snprintf(out, cap, "%s", v);
  json_t *s = json_string(v);
  char *enc = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
  size_t n = (size_t)snprintf(out, cap, "%s", enc ? enc : "\"?\"");
  free(enc);
  json_decref(s);
  return n;
}

static void write_line(sk__log *log, const char *line, size_t n) {
  while (n > 0) {
    ssize_t w = write(log->fd, line, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return; /* the log is best effort: never stop serving over it */
    line += w;
    n -= (size_t)w;
  }
}

static void emit_text(sk__log *log, const char *peer, const char *event, va_list ap) {
  char line[LOG_LINE_MAX];
  size_t n;
  const char *key;
  iso_now(line, sizeof(line));
  n = strlen(line);
  n += (size_t)snprintf(line + n, sizeof(line) - n, " %s %s", peer ? peer : "-", event);
  while ((key = va_arg(ap, const char *)) != NULL && n < sizeof(line) - 2) {
    int kind = va_arg(ap, int);
    n += (size_t)snprintf(line + n, sizeof(line) - n, " %s=", key);
    if (n >= sizeof(line) - 2)
      break;
    if (kind == 's')
      n += text_value(line + n, sizeof(line) - n, va_arg(ap, const char *));
    else if (kind == 'i')
      n += (size_t)snprintf(line + n, sizeof(line) - n, "%" PRId64, va_arg(ap, int64_t));
    else
      n += (size_t)snprintf(line + n, sizeof(line) - n, "%.3f", va_arg(ap, double));
  }
  if (n > sizeof(line) - 2)
    n = sizeof(line) - 2;
  line[n++] = '\n';
  write_line(log, line, n);
}

static void emit_json(sk__log *log, const char *peer, const char *event, va_list ap) {
  char ts[40], *enc;
  const char *key;
  json_t *o = json_object();
  if (o == NULL)
    return;
  iso_now(ts, sizeof(ts));
  json_object_set_new(o, "ts", json_string(ts));
  json_object_set_new(o, "peer", json_string(peer ? peer : "-"));
  json_object_set_new(o, "event", json_string(event));
  while ((key = va_arg(ap, const char *)) != NULL) {
    int kind = va_arg(ap, int);
    if (kind == 's') {
      const char *v = va_arg(ap, const char *);
      json_t *js = json_string(v); /* NULL for invalid UTF-8 */
      json_object_set_new(o, key, js != NULL ? js : json_string("?"));
    } else if (kind == 'i') {
      json_object_set_new(o, key, json_integer(va_arg(ap, int64_t)));
    } else {
      json_object_set_new(o, key, json_real(va_arg(ap, double)));
    }
  }
  enc = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  if (enc == NULL)
    return;
  size_t n = strlen(enc);
  enc[n] = '\n'; /* json_dumps leaves room for the NUL, which we reuse */
  write_line(log, enc, n + 1);
  free(enc);
}

void sk__log_eventv(sk__log *log, const char *peer, const char *event, va_list ap) {
  if (log == NULL)
    return;
  if (log->json)
    emit_json(log, peer, event, ap);
  else
    emit_text(log, peer, event, ap);
}

void sk__log_event(sk__log *log, const char *peer, const char *event, ...) {
  va_list ap;
  va_start(ap, event);
  sk__log_eventv(log, peer, event, ap);
  va_end(ap);
}
