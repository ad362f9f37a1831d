/* time.c - the time service (SPEC 4.5): a timestamp in, formatted time out.
 * The tutorial's time server, with zones and formats made explicit. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/zone.h"
#include "service/service.h"
#include "services/services.h"
#include "sockit/error.h"

#define TIME_FORMAT_MAX 256
#define TIME_TEXT_MAX 4096

int sk__time_answer(const sk_head *req, int ts_is_now, sk_head **out, const char **why) {
  const char *tz = "local", *fmt = "%Y-%m-%d %H:%M:%S";
  char text[TIME_TEXT_MAX];
  int64_t ts = (int64_t)time(NULL);
  int rc = ts_is_now ? -ENOENT : sk_head_int(req, "ts", &ts);

  *why = "ts must be an integer (unix seconds)";
  if (rc < 0 && rc != -ENOENT)
    return SK_EBADREQ;
  *why = "tz must be a string";
  if (sk_head_has(req, "tz") && (tz = sk_head_str(req, "tz")) == NULL)
    return SK_EBADREQ;
  *why = "format must be a string of at most 256 bytes";
  if (sk_head_has(req, "format")) {
    fmt = sk_head_str(req, "format");
    if (fmt == NULL || sk_head_strlen(req, "format") != strlen(fmt) ||
        strlen(fmt) > TIME_FORMAT_MAX)
      return SK_EBADREQ;
  }
  if ((rc = sk__time_format_why(ts, tz, fmt, text, sizeof(text), why)) < 0)
    return SK_EBADREQ;
  *why = NULL;
  if ((*out = sk_head_new("time")) == NULL)
    return -ENOMEM;
  sk_head_set_int(*out, "ts", ts);
  sk_head_set_str(*out, "tz", tz);
  sk_head_set_strn(*out, "text", text, (size_t)rc);
  sk_head_set_double(*out, "now", sk__now_wall());
  return 0;
}

static int handle_time(sk_conn *c, const sk_request *req) {
  const char *why = NULL;
  sk_head *h = NULL;
  int rc = sk__time_answer(req->head, 0, &h, &why);

  if (rc == SK_EBADREQ)
    return sk_conn_error(c, SK_EBADREQ, why), 0;
  if (rc < 0)
    return rc;
  rc = sk_conn_send(c, h, NULL, 0);
  sk_head_free(h);
  return rc;
}

static const sk_handler time_handlers[] = {
    {.type = "time", .handle = handle_time},
    {0},
};

const sk_service sk__svc_time = {.name = "time", .handlers = time_handlers};
