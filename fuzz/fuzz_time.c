/* fuzz_time.c - the time service's zone and format handling
 * (sk__time_format, SPEC 4.5).
 *
 * Input: 8 bytes of timestamp (any int64), 1 byte choosing the zone kind
 * ("local", "UTC", a well-formed offset built from the next bytes, or raw
 * bytes as the zone), 1 byte for the output capacity (small ones test the
 * "does not fit" edge), then the format. The result must be a length that
 * fits the buffer with its NUL, or SK_EBADREQ. */
#include <stdint.h>
#include <string.h>

#include "fuzz_common.h"
#include "common/zone.h"
#include "sockit/error.h"

#define TEXT_MAX 4096

static size_t take_str(const uint8_t **p, size_t *n, char *out, size_t cap) {
  size_t len = 0;
  while (*n > 0 && **p != 0 && len + 1 < cap) {
    out[len++] = (char)**p;
    (*p)++;
    (*n)--;
  }
  if (*n > 0) { /* skip the separator */
    (*p)++;
    (*n)--;
  }
  out[len] = '\0';
  return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char tz[16], fmt[400], text[TEXT_MAX];
  int64_t ts;
  size_t cap;
  int rc;

  if (size < 10)
    return 0;
  memcpy(&ts, data, sizeof(ts));
  uint8_t kind = data[8], capb = data[9];
  data += 10;
  size -= 10;
  switch (kind % 4) {
  case 0:
    strcpy(tz, "local");
    break;
  case 1:
    strcpy(tz, "UTC");
    break;
  case 2: /* +HH:MM with digits from the input, possibly out of range */
    snprintf(tz, sizeof(tz), "%c%02u:%02u", (kind & 4) ? '-' : '+', (unsigned)(kind >> 3) % 30,
             (unsigned)capb % 70);
    break;
  default:
    take_str(&data, &size, tz, sizeof(tz));
  }
  take_str(&data, &size, fmt, sizeof(fmt));
  /* capacities 1..64 probe the edge; otherwise the service's own 4 KiB */
  cap = capb < 64 ? (size_t)capb + 1 : sizeof(text);
  memset(text, 'Z', sizeof(text));
  rc = sk__time_format(ts, tz, fmt, text, cap);
  FUZZ_CHECK(rc == SK_EBADREQ || (rc >= 0 && (size_t)rc < cap));
  if (rc >= 0) {
    FUZZ_CHECK(text[rc] == '\0');
    FUZZ_CHECK(strlen(fmt) <= 256);
  }
  if (cap < sizeof(text))
    FUZZ_CHECK(text[cap] == 'Z'); /* nothing written past the capacity */
  return 0;
}
