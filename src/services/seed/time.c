/* time.c - seed time: the tutorial's "test 2". Each read holds an ASCII
 * unix timestamp; the answer is the server's local time as
 * %Y-%m-%d %H:%M:%S, the bytes time.strftime would give. */
#include <stdio.h>

#include "common/zone.h"
#include "service/seed.h"
#include "wire/seed.h"

static const char bad_input[] = "error: send a unix timestamp in ASCII digits, e.g. 1700000000\n";

static void on_read(sk_seed_conn *sc, const char *p, size_t n) {
  char out[64];
  int64_t ts;
  int len;

  if (sk__seed_parse_ts(p, n, &ts) < 0 ||
      (len = sk__time_format(ts, "local", "%Y-%m-%d %H:%M:%S", out, sizeof(out))) < 0) {
    sk__seed_write(sc, bad_input, sizeof(bad_input) - 1);
    return;
  }
  sk__seed_write(sc, out, (size_t)len);
}

static const sk_seed_ops ops = {.name = "seed/time", .read = on_read, .size = sizeof(sk_seed_conn)};

static void accept_time(sk_listener *l, int fd) {
  sk__seed_accept(l, fd, &ops);
}

const sk_wire sk__wire_seed_time = {
    .name = "seed/time", .accept = accept_time, .check = sk__seed_check};
