/* zone.c - the time zone forms of SPEC 4.5 (and IANA names), checked the
 * same way by the time service and by `sockit time` before it sends, and
 * the one time formatter every clock answer goes through (the time
 * service, its datagram form, the seed time wire, RFC 867 daytime). */
#include "common/zone.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unicode/ucal.h>
#include <unicode/ustring.h>

#include "sockit/error.h"

/* "+HH:MM" / "-HH:MM" -> seconds east of UTC. */
int sk__tz_parse_offset(const char *tz, long *off) {
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

/* A name shaped as tzdata spells its zones ("Asia/Tokyo", "America/
 * Argentina/Buenos_Aires", "EST5EDT", "Etc/GMT+9"): checked before ICU sees
 * it, so that no path-like or odd text goes further. */
int sk__zone_name_ok(const char *tz) {
  size_t n = strlen(tz);
  if (n == 0 || n > SK_ZONE_NAME_MAX || strstr(tz, "..") != NULL || strstr(tz, "//") != NULL)
    return 0;
  if (!((tz[0] >= 'A' && tz[0] <= 'Z') || (tz[0] >= 'a' && tz[0] <= 'z')) || tz[n - 1] == '/')
    return 0;
  for (const char *p = tz; *p; p++)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
          *p == '/' || *p == '_' || *p == '-' || *p == '+'))
      return 0;
  return 1;
}

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
  if ((int64_t)t != ts || strlen(fmt) > SK_TIME_FORMAT_MAX)
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
