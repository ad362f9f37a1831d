/* zone.h - time zone text: "+HH:MM" / "-HH:MM" offsets and tzdata names. */
#ifndef SOCKIT_COMMON_ZONE_H
#define SOCKIT_COMMON_ZONE_H

#include <stddef.h>
#include <stdint.h>

#define SK_ZONE_NAME_MAX 64    /* the longest IANA name is about 30 bytes */
#define SK_TIME_FORMAT_MAX 256 /* bytes in a strftime format */

/* "+HH:MM" / "-HH:MM" -> seconds east of UTC in *off; 0 or SK_EBADREQ. */
int sk__tz_parse_offset(const char *tz, long *off);

/* Is tz shaped as tzdata spells a zone name (letters, digits, / _ - +,
 * starting with a letter, no "..")? Whether the zone exists is ICU's call. */
int sk__zone_name_ok(const char *tz);

/* Format unix time ts in zone tz ("local", "UTC", "+HH:MM", "-HH:MM" or an
 * IANA zone name such as Asia/Tokyo) with a strftime format into out.
 * Returns the length, or SK_EBADREQ for a bad zone, format or time. */
int sk__time_format(int64_t ts, const char *tz, const char *fmt, char *out, size_t cap);
/* The same, with *why (static text) saying what was wrong on failure. */
int sk__time_format_why(int64_t ts, const char *tz, const char *fmt, char *out, size_t cap,
                        const char **why);

#endif
