/* sized.h - reading the public structs that carry their own size.
 *
 * sk_client_opts, sk_put_opts, sk_get_opts, sk_service and sk_handler begin
 * with `size_t size`: sizeof the struct as the caller compiled it, or 0 for
 * ABI 1's members (what every caller that zero-fills or uses designated
 * initializers gets). Members are only ever added at the end, so the
 * library copies what the caller has into a zeroed struct of its own
 * size: a caller built against an older, shorter struct reads as zeros in
 * the new members, and one built against a newer library's longer struct
 * is cut to what this library knows.
 *
 * SK__END_OF(T, m) is where ABI 1's T ends: its last member then. It stays
 * that member when members are added after it.
 */
#ifndef SOCKIT_COMMON_SIZED_H
#define SOCKIT_COMMON_SIZED_H

#include <stddef.h>
#include <string.h>

#define SK__END_OF(T, m) (offsetof(T, m) + sizeof(((T *)0)->m))

/* Copy given (NULL allowed) into full (full_size bytes), zero-filling what
 * given does not have. Returns full, or NULL when given is NULL. */
static inline void *sk__sized_copy(void *full, size_t full_size, const void *given, size_t v1) {
  size_t n;
  memset(full, 0, full_size);
  if (given == NULL)
    return NULL;
  memcpy(&n, given, sizeof(n));
  if (n == 0)
    n = v1;
  memcpy(full, given, n < full_size ? n : full_size);
  memcpy(full, &full_size, sizeof(full_size)); /* the copy is a whole one */
  return full;
}

#endif
