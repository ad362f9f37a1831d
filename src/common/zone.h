/* zone.h - time zone text: "+HH:MM" / "-HH:MM" offsets and tzdata names. */
#ifndef SOCKIT_COMMON_ZONE_H
#define SOCKIT_COMMON_ZONE_H

#define SK_ZONE_NAME_MAX 64 /* the longest IANA name is about 30 bytes */

/* "+HH:MM" / "-HH:MM" -> seconds east of UTC in *off; 0 or SK_EBADREQ. */
int sk__tz_parse_offset(const char *tz, long *off);

/* Is tz shaped as tzdata spells a zone name (letters, digits, / _ - +,
 * starting with a letter, no "..")? Whether the zone exists is ICU's call. */
int sk__zone_name_ok(const char *tz);

#endif
