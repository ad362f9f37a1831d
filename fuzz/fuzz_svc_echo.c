/* fuzz_svc_echo.c - the echo service's handlers (echo, ping, bye) with
 * random well-formed heads: see fuzz_service.h. */
static const char *const fz_types[] = {"echo", "ping", "bye"};
static const char *const fz_members[] = {"id", "text", "eof", "ts"};
static const char *const fz_strings[] = {"", "x", "fz-end", "0", "\\u0000"};
#define FZ_SERVICE "echo"
#include "fuzz_service.h"
