/* error.c - names and texts for the one error table in sockit/error.h.
 *
 * Every SK_E* lookup is generated from SK_ERRNO_MAP, so adding a code there
 * is the only edit ever needed here. */
#include "sockit/error.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#define SK_NCODES (SK_ELAST_ - SK_EFIRST_ - 1)

#define MSG_(name, wire, msg) msg,
static const char *const messages[] = {SK_ERRNO_MAP(MSG_)};
#undef MSG_

#define WIRE_(name, wire, msg) wire,
static const char *const wire_names[] = {SK_ERRNO_MAP(WIRE_)};
#undef WIRE_

/* SPEC 4.2: these errors are followed by the server closing the connection. */
static const int fatal_codes[] = {SK_EBADFRAME, SK_EAUTHREQ, SK_EAUTHFAIL, SK_ERATELIMIT,
                                  SK_ESLOWCONSUMER};

/* File-system errno values a peer should see as something better than
 * "internal"; every other errno is an internal error as far as the wire goes. */
static const struct {
  int err;
  const char *wire;
} errno_wire[] = {
    {-EIO, "io_error"},   {-ENOSPC, "io_error"},  {-EDQUOT, "io_error"},
    {-EFBIG, "io_error"}, {-EROFS, "io_error"},   {-ENOENT, "not_found"},
    {-EEXIST, "exists"},  {-EACCES, "forbidden"}, {-EPERM, "forbidden"},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Index of an SK_E* code in the tables, or -1 when err is not one. */
static int sk_index(int err) {
  if (err <= SK_EFIRST_ || err >= SK_ELAST_)
    return -1;
  return err - SK_EFIRST_ - 1;
}

/* Text for a negated errno. strerrordesc_np is thread-safe and returns a
 * static string, unlike strerror; other libcs get a thread-local buffer. */
static const char *errno_text(int errnum) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char *s = strerrordesc_np(errnum);
  return s ? s : "unknown error";
#else
  static _Thread_local char buf[128];
  if (strerror_r(errnum, buf, sizeof(buf)) != 0)
    return "unknown error";
  return buf;
#endif
}

const char *sk_strerror(int err) {
  int i = sk_index(err);
  if (err == 0)
    return "ok";
  if (i >= 0)
    return messages[i];
  if (err < 0 && err > -4096)
    return errno_text(-err);
  return "unknown error";
}

const char *sk_err_wire_name(int err) {
  int i = sk_index(err);
  if (i >= 0)
    return wire_names[i] ? wire_names[i] : "internal";
  for (size_t k = 0; k < COUNT(errno_wire); k++)
    if (errno_wire[k].err == err)
      return errno_wire[k].wire;
  return "internal";
}

int sk_err_from_wire(const char *code) {
  if (code == NULL)
    return SK_EREMOTE;
  for (int i = 0; i < SK_NCODES; i++)
    if (wire_names[i] && strcmp(wire_names[i], code) == 0)
      return SK_EFIRST_ + 1 + i;
  return SK_EREMOTE;
}

int sk_err_is_fatal(int err) {
  for (size_t k = 0; k < COUNT(fatal_codes); k++)
    if (fatal_codes[k] == err)
      return 1;
  return 0;
}

/* The tables above are indexed by code; a mismatch would shift every name. */
_Static_assert(COUNT(messages) == SK_NCODES, "messages out of step with SK_ERRNO_MAP");
_Static_assert(COUNT(wire_names) == SK_NCODES, "wire names out of step with SK_ERRNO_MAP");
