/* fuzz_svc_files.c - the files service's handlers (put, put_end, get,
 * stat, list, rm) with random well-formed heads: see fuzz_service.h. The
 * first finding was get's unset message for a non-integer offset (issue 15
 * item 1). */
static const char *const fz_types[] = {"put", "put_end", "get", "stat", "list", "rm"};
static const char *const fz_members[] = {"name",  "offset", "total",     "mode",
                                         "mtime", "hash",   "exclusive", "recursive",
                                         "id",    "length", "partial"};
static const char *const fz_strings[] = {
    "a",      "a/b",    "",    ".",         "..",        "../x", "/etc",  "dir/",
    "sha256", "xxh128", "md5", "sha256:00", "a\\u0000b", "a//b", "b/./c", ".a.sockit-part"};
#define FZ_SERVICE "echo,files"
#include "fuzz_service.h"
