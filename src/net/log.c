/* log.c - connection log lines (see log.h). */
#include "net/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/sock.h"
#include "common/visible.h"

#define LOG_LINE_MAX 8192
#define LOG_PATH_MAX 4096
#define LOG_SOURCES 1024 /* sources whose pre-auth lines are counted at once */
#define LOG_KEY_MAX 64

/* Lines before authentication, per source and interval (log.h). */
typedef struct log_source {
  char key[LOG_KEY_MAX]; /* "" for a free slot */
  double start;          /* the interval began */
  unsigned lines, suppressed;
} log_source;

struct sk__log {
  int fd;
  int own_fd;
  int json;
  char path[LOG_PATH_MAX];
  unsigned burst;     /* pre-auth lines per source per interval */
  double interval;    /* seconds */
  pthread_mutex_t mu; /* guards sources: taken for pre-auth lines only */
  log_source sources[LOG_SOURCES];
};

static int open_path(const char *path) {
  return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
}

int sk__log_open(sk__log **out, const char *path, int json) {
  sk__log *log = calloc(1, sizeof(*log));
  if (log == NULL)
    return -ENOMEM;
  if (strlen(path) >= sizeof(log->path) || pthread_mutex_init(&log->mu, NULL) != 0) {
    free(log);
    return -ENAMETOOLONG;
  }
  if (strcmp(path, "-") == 0) {
    log->fd = STDERR_FILENO;
  } else {
    log->fd = open_path(path);
    if (log->fd < 0) {
      int err = -errno;
      pthread_mutex_destroy(&log->mu);
      free(log);
      return err;
    }
    log->own_fd = 1;
  }
  memcpy(log->path, path, strlen(path) + 1);
  log->json = json;
  log->burst = SK_LOG_PREAUTH_BURST;
  log->interval = SK_LOG_PREAUTH_INTERVAL;
  *out = log;
  return 0;
}

void sk__log_set_preauth_limit(sk__log *log, unsigned burst, double interval) {
  if (log == NULL)
    return;
  log->burst = burst;
  log->interval = interval;
}

/* open(2), dup2(2) and close(2) only: async-signal-safe. dup2 swaps the
 * file under the same descriptor number in one step, so a line written by
 * another loop at that moment goes to one file or the other, whole. */
int sk__log_reopen(sk__log *log) {
  int fd, rc = 0;
  if (log == NULL || !log->own_fd)
    return 0;
  if ((fd = open_path(log->path)) < 0)
    return -errno;
  if (dup2(fd, log->fd) < 0)
    rc = -errno;
  close(fd);
  return rc;
}

void sk__log_close(sk__log *log) {
  if (log == NULL)
    return;
  if (log->own_fd)
    close(log->fd);
  pthread_mutex_destroy(&log->mu);
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

/* Text values that are not plain printable ASCII (spaces, quotes, '=',
 * controls, any non-ASCII) are quoted JSON-style, with every code point
 * that does not draw as itself escaped: a line always splits on spaces and
 * a peer cannot forge lines or move the terminal's cursor through it. */
static size_t text_value(char *out, size_t cap, const char *v) {
  const char *p;
  int plain = *v != '\0';
  for (p = v; *p && plain; p++)
    plain = (unsigned char)*p > ' ' && (unsigned char)*p < 0x7f && *p != '"' && *p != '=';
  if (plain)
    return (size_t)snprintf(out, cap, "%s", v);
  return sk__quote_visible(out, cap, v, strlen(v));
}

static void write_line(sk__log *log, const char *line, size_t n) {
  /* the log is best effort: a failed write never stops serving */
  (void)sk__write_all(log->fd, line, n);
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

/* One JSON object per line, built here rather than with jansson so that
 * strings get the same escaping as text lines (jansson leaves U+009B and
 * U+202E raw) and invalid UTF-8 becomes U+FFFD instead of a lost value. */
static void emit_json(sk__log *log, const char *peer, const char *event, va_list ap) {
  char line[LOG_LINE_MAX], ts[40];
  const char *key;
  size_t n = 0, cap = sizeof(line) - 2; /* room for "}\n" */
  iso_now(ts, sizeof(ts));
  n += (size_t)snprintf(line, cap, "{\"ts\":\"%s\",\"peer\":", ts);
  n += sk__quote_visible(line + n, cap - n, peer ? peer : "-", strlen(peer ? peer : "-"));
  n += (size_t)snprintf(line + n, cap - n, ",\"event\":");
  n += sk__quote_visible(line + n, cap - n, event, strlen(event));
  while ((key = va_arg(ap, const char *)) != NULL) {
    int kind = va_arg(ap, int);
    const char *v = kind == 's' ? va_arg(ap, const char *) : NULL;
    int64_t i = kind == 'i' ? va_arg(ap, int64_t) : 0;
    double f = kind != 's' && kind != 'i' ? va_arg(ap, double) : 0;
    size_t mark = n;
    if (cap - n < 64)
      break; /* full: the fields that fit, and a well-formed object */
    line[n++] = ',';
    n += sk__quote_visible(line + n, cap - n, key, strlen(key));
    line[n++] = ':';
    if (kind == 's')
      n += sk__quote_visible(line + n, cap - n, v ? v : "", v ? strlen(v) : 0);
    else if (kind == 'i')
      n += (size_t)snprintf(line + n, cap - n, "%" PRId64, i);
    else if (isfinite(f))
      n += (size_t)snprintf(line + n, cap - n, "%.6f", f);
    else
      n += (size_t)snprintf(line + n, cap - n, "null");
    if (n >= cap) { /* cut: drop the field rather than the object's end */
      n = mark;
      break;
    }
  }
  line[n++] = '}';
  line[n++] = '\n';
  write_line(log, line, n);
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

/* ---- lines before authentication -------------------------------------- */

static uint32_t key_hash(const char *k) {
  uint32_t h = 2166136261u;
  for (; *k; k++)
    h = (h ^ (uint8_t)*k) * 16777619u;
  return h;
}

static void summary(sk__log *log, const char *key, unsigned suppressed, double interval) {
  sk__log_event(log, key, "log_suppressed", "lines", 'i', (int64_t)suppressed, "interval", 'f',
                interval, NULL);
}

/* Under log->mu. The slot's interval ended: say what it held back. The
 * summary is copied out and written after the lock is dropped. */
static unsigned end_interval(log_source *s, char key[LOG_KEY_MAX]) {
  unsigned n = s->suppressed;
  memcpy(key, s->key, LOG_KEY_MAX);
  s->lines = s->suppressed = 0;
  return n;
}

void sk__log_preauthv(sk__log *log, const char *source, double now, const char *peer,
                      const char *event, va_list ap) {
  char key[LOG_KEY_MAX], old[LOG_KEY_MAX];
  unsigned owed = 0;
  int write_it;
  log_source *s;

  if (log == NULL)
    return;
  if (source == NULL || source[0] == '\0' || log->burst == 0) {
    sk__log_eventv(log, peer, event, ap);
    return;
  }
  snprintf(key, sizeof(key), "%s", source);
  pthread_mutex_lock(&log->mu);
  s = &log->sources[key_hash(key) % LOG_SOURCES];
  if (strcmp(s->key, key) != 0 || now - s->start >= log->interval) {
    owed = s->key[0] ? end_interval(s, old) : 0; /* its interval, or its slot, ends */
    memcpy(s->key, key, sizeof(key));
    s->start = now;
  }
  write_it = ++s->lines <= log->burst;
  if (!write_it)
    s->suppressed++;
  pthread_mutex_unlock(&log->mu);
  if (owed > 0)
    summary(log, old, owed, log->interval);
  if (write_it)
    sk__log_eventv(log, peer, event, ap);
}

void sk__log_tick(sk__log *log, double now) {
  if (log == NULL)
    return;
  for (size_t i = 0; i < LOG_SOURCES; i++) {
    char old[LOG_KEY_MAX];
    unsigned owed = 0;
    log_source *s = &log->sources[i];
    pthread_mutex_lock(&log->mu);
    if (s->key[0] && s->suppressed > 0 && now - s->start >= log->interval) {
      owed = end_interval(s, old);
      s->start = now;
    }
    pthread_mutex_unlock(&log->mu);
    if (owed > 0)
      summary(log, old, owed, log->interval);
  }
}
