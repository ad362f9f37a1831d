/* time_client.c - the tutorial's "测试2": every N seconds the client sends a
 * unix timestamp and the server answers it as formatted time. The server is
 * `sockit serve` (the built-in time service); the timestamp travels as the
 * "ts" member of a {"type":"time"} head instead of bare digits, so the
 * answer cannot run into the next one.
 *
 *   usage: time_client [ADDR] [EVERY_SECONDS] [COUNT]     (default: 10 s, forever)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <sockit/sockit.h>

/* One request: {"type":"time","ts":now} -> {"type":"time","text":...}. */
static int ask(sk_client *c, long long now) {
  sk_head *req = sk_head_new("time"), *resp = NULL;
  int rc = req != NULL ? sk_head_set_int(req, "ts", now) : SK_EINTERNAL;
  if (rc == 0)
    rc = sk_client_request(c, req, NULL, 0, &resp, NULL, NULL);
  if (rc == 0)
    printf("%lld -> %s\n", now, sk_head_str(resp, "text"));
  else /* an error frame's own words, when the server sent one */
    fprintf(stderr, "time_client: %s\n",
            sk_error_message(resp) ? sk_error_message(resp) : sk_strerror(rc));
  fflush(stdout);
  sk_head_free(resp);
  sk_head_free(req);
  return rc;
}

int main(int argc, char **argv) {
  const char *addr = argc > 1 ? argv[1] : sk_client_default_addr();
  unsigned every = argc > 2 ? (unsigned)atoi(argv[2]) : 10;
  long count = argc > 3 ? atol(argv[3]) : -1;
  sk_client *c;
  int rc = sk_client_connect(&c, addr, NULL);

  if (rc < 0) {
    fprintf(stderr, "time_client: %s: %s\n", addr, sk_strerror(rc));
    return 1;
  }
  for (long i = 0; rc == 0 && (count < 0 || i < count); i++) {
    if (i > 0)
      sleep(every);
    rc = ask(c, (long long)time(NULL));
  }
  sk_client_close(c);
  return rc == 0 ? 0 : 1;
}
