/* time.c - the time service (SPEC 4.5): a timestamp in, formatted time out.
 * The tutorial's time server, with zones and formats made explicit. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unicode/ucal.h>
#include <unicode/ustring.h>

#include "common/zone.h"
#include "net/core.h"
#include "services/services.h"
#include "sockit/error.h"

#define TIME_FORMAT_MAX 256
#define TIME_TEXT_MAX 4096

static const char WHY_TZ[] =
    "unknown tz: use local, UTC, +HH:MM, -HH:MM or a zone name such as Asia/Tokyo";
static const char WHY_TS[] = "ts is not a representable time";
static const char WHY_TEXT[] = "the formatted text would not fit in 4 KiB";

/* The offset of zone tz at t (seconds east of UTC) and its short name, from
 * ICU's copy of tzdata. One calendar per call: the process's TZ and
 * localtime state (setenv/tzset, shared by every loop thread) are never
 * touched, so concurrent requests for different zones cannot mix. */
static int zone_offset(const char *tz, time_t t, long *off, char *abbr, size_t cap) {
  UChar id[SK_ZONE_NAME_MAX + 1], canon[SK_ZONE_NAME_MAX * 2], name[64];
  UErrorCode st = U_ZERO_ERROR;
  UBool known = 0;
  UCalendar *cal;
  int32_t zone, dst, len;
  u_uastrncpy(id, tz, SK_ZONE_NAME_MAX + 1);
  ucal_getCanonicalTimeZoneID(id, -1, canon, (int32_t)(sizeof(canon) / sizeof(canon[0])), &known,
                              &st);
  if (U_FAILURE(st) || !known)
    return SK_EBADREQ;
  cal = ucal_open(id, -1, "en_US", UCAL_GREGORIAN, &st);
  if (U_FAILURE(st))
    return SK_EBADREQ;
  ucal_setMillis(cal, (UDate)t * 1000.0, &st);
  zone = ucal_get(cal, UCAL_ZONE_OFFSET, &st);
  dst = ucal_get(cal, UCAL_DST_OFFSET, &st);
  len = ucal_getTimeZoneDisplayName(cal, dst ? UCAL_SHORT_DST : UCAL_SHORT_STANDARD, "en_US", name,
                                    (int32_t)(sizeof(name) / sizeof(name[0])), &st);
  ucal_close(cal);
  if (U_FAILURE(st))
    return SK_EBADREQ;
  *off = (long)(zone + dst) / 1000;
  if (len > 0 && len < (int32_t)cap)
    u_austrncpy(abbr, name, (int32_t)cap);
  else
    snprintf(abbr, cap, "%s", tz);
  abbr[cap - 1] = '\0';
  return 0;
}

int sk__time_format_why(int64_t ts, const char *tz, const char *fmt, char *out, size_t cap,
                        const char **why) {
  struct tm tm;
  time_t t = (time_t)ts;
  long off = 0;
  char abbr[64];
  size_t n;
  const char *dummy;

  if (why == NULL)
    why = &dummy;
  *why = WHY_TS;
  if ((int64_t)t != ts || strlen(fmt) > TIME_FORMAT_MAX)
    return SK_EBADREQ;
  if (strcmp(tz, "local") == 0) {
    if (localtime_r(&t, &tm) == NULL)
      return SK_EBADREQ;
  } else if (strcmp(tz, "UTC") == 0) {
    if (gmtime_r(&t, &tm) == NULL)
      return SK_EBADREQ;
  } else {
    const char *zone = tz;
    if (sk__tz_parse_offset(tz, &off) < 0) {
      *why = WHY_TZ;
      if (!sk__zone_name_ok(tz) || zone_offset(tz, t, &off, abbr, sizeof(abbr)) < 0)
        return SK_EBADREQ;
      zone = abbr;
      *why = WHY_TS;
    }
    if (__builtin_add_overflow(t, off, &t) || gmtime_r(&t, &tm) == NULL)
      return SK_EBADREQ;
    tm.tm_gmtoff = off; /* so that %z and %Z name the zone asked for */
    tm.tm_zone = zone;
  }
  *why = WHY_TEXT;
  if (cap == 0)
    return SK_EBADREQ;
  n = strftime(out, cap, fmt, &tm);
  if (n == 0 && fmt[0] != '\0')
    return SK_EBADREQ; /* the text would not fit */
  out[n] = '\0';
  *why = NULL;
  return (int)n;
}

int sk__time_format(int64_t ts, const char *tz, const char *fmt, char *out, size_t cap) {
  return sk__time_format_why(ts, tz, fmt, out, cap, NULL);
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
  const char *why = NULL;
  rc = sk__time_format_why(ts, tz, fmt, text, sizeof(text), &why);
  if (rc < 0)
    return sk_conn_error(c, SK_EBADREQ, why ? why : "bad time request"), 0;
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
