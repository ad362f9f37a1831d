/* time.c - the time service (SPEC 4.5): a timestamp in, formatted time out.
 * The tutorial's time server, with zones and formats made explicit. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "net/core.h"
#include "services/services.h"
#include "sockit/error.h"

#define TIME_FORMAT_MAX 256
#define TIME_TEXT_MAX 4096

/* "+HH:MM" / "-HH:MM" -> seconds east of UTC. */
static int parse_offset(const char *tz, long *off) {
  int hh, mm;
  if (strlen(tz) != 6 || (tz[0] != '+' && tz[0] != '-') || tz[3] != ':')
    return SK_EBADREQ;
  for (int i = 1; i < 6; i++)
    if (i != 3 && (tz[i] < '0' || tz[i] > '9'))
      return SK_EBADREQ;
  hh = (tz[1] - '0') * 10 + (tz[2] - '0');
  mm = (tz[4] - '0') * 10 + (tz[5] - '0');
  if (hh > 23 || mm > 59)
    return SK_EBADREQ;
  *off = (tz[0] == '-' ? -1 : 1) * (long)(hh * 3600 + mm * 60);
  return 0;
}

int sk__time_format(int64_t ts, const char *tz, const char *fmt, char *out, size_t cap) {
  struct tm tm;
  time_t t = (time_t)ts;
  long off = 0;
  size_t n;

  if ((int64_t)t != ts || strlen(fmt) > TIME_FORMAT_MAX)
    return SK_EBADREQ;
  if (strcmp(tz, "local") == 0) {
    if (localtime_r(&t, &tm) == NULL)
      return SK_EBADREQ;
  } else if (strcmp(tz, "UTC") == 0) {
    if (gmtime_r(&t, &tm) == NULL)
      return SK_EBADREQ;
  } else {
    if (parse_offset(tz, &off) < 0 || __builtin_add_overflow(t, off, &t) ||
        gmtime_r(&t, &tm) == NULL)
      return SK_EBADREQ;
    tm.tm_gmtoff = off; /* so that %z and %Z name the zone asked for */
    tm.tm_zone = tz;
  }
  if (cap == 0)
    return SK_EBADREQ;
  n = strftime(out, cap, fmt, &tm);
  if (n == 0 && fmt[0] != '\0')
    return SK_EBADREQ; /* the text would not fit */
  out[n] = '\0';
  return (int)n;
}

static int handle_time(sk_conn *c, const sk_request *req) {
  const char *tz = "local", *fmt = "%Y-%m-%d %H:%M:%S";
  char text[TIME_TEXT_MAX];
  int64_t ts = (int64_t)time(NULL);
  int rc = sk_head_int(req->head, "ts", &ts);
  sk_head *h;

  if (rc < 0 && rc != -ENOENT)
    return sk_conn_error(c, SK_EBADREQ, "ts must be an integer (unix seconds)"), 0;
  if (sk_head_has(req->head, "tz") && (tz = sk_head_str(req->head, "tz")) == NULL)
    return sk_conn_error(c, SK_EBADREQ, "tz must be a string"), 0;
  if (sk_head_has(req->head, "format")) {
    fmt = sk_head_str(req->head, "format");
    if (fmt == NULL || sk_head_strlen(req->head, "format") != strlen(fmt) ||
        strlen(fmt) > TIME_FORMAT_MAX)
      return sk_conn_error(c, SK_EBADREQ, "format must be a string of at most 256 bytes"), 0;
  }
  rc = sk__time_format(ts, tz, fmt, text, sizeof(text));
  if (rc < 0)
    return sk_conn_error(c, SK_EBADREQ,
                         "bad time request: tz is local, UTC, +HH:MM or -HH:MM; ts must be "
                         "a representable time; the text must stay under 4 KiB"),
           0;
  if ((h = sk_head_new("time")) == NULL)
    return -ENOMEM;
  sk_head_set_int(h, "ts", ts);
  sk_head_set_str(h, "tz", tz);
  sk_head_set_strn(h, "text", text, (size_t)rc);
  sk_head_set_double(h, "now", sk__now_wall());
  rc = sk_conn_send(c, h, NULL, 0);
  sk_head_free(h);
  return rc;
}

static const sk_handler time_handlers[] = {
    {.type = "time", .handle = handle_time},
    {0},
};

const sk_service sk__svc_time = {.name = "time", .handlers = time_handlers};
