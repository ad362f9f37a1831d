/* fuzz_svc_time.c - the time service's handler with random well-formed
 * heads: see fuzz_service.h (fuzz_time covers its formatter alone). */
static const char *const fz_types[] = {"time"};
static const char *const fz_members[] = {"ts", "tz", "format", "id"};
static const char *const fz_strings[] = {"UTC",    "local",
                                         "+08:00", "-23:59",
                                         "+24:00", "+8",
                                         "",       "%Y-%m-%d %H:%M:%S",
                                         "%",      "%c%c%c%c%c%c%c%c",
                                         "%s%n",   "Europe/Paris"};
#define FZ_SERVICE "echo,time"
#include "fuzz_service.h"
