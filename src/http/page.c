/* page.c - the web page's files, compiled in from web/ by cmake/embed.cmake
 * (the table sk__web_assets is generated at build time). */
#include <string.h>

#include "http/http.h"

extern const sk_http_asset sk__web_assets[];

const sk_http_asset *sk__http_asset(const char *path, size_t n) {
  if (n == 11 && memcmp(path, "/index.html", 11) == 0)
    n = 1; /* the page's other name */
  for (const sk_http_asset *a = sk__web_assets; a->path != NULL; a++)
    if (strlen(a->path) == n && memcmp(a->path, path, n) == 0)
      return a;
  return NULL;
}
