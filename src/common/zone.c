/* zone.c - the time zone forms of SPEC 4.5 (and IANA names), checked the
 * same way by the time service and by `sockit time` before it sends. */
#include "common/zone.h"

#include <string.h>

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
