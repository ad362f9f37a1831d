/* udp.c - `sockit echo --udp` and `sockit time --udp` (SPEC 5): one
 * datagram each way, asked again when no answer comes in time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

#define UDP_TIMEOUT_MS 1000
#define UDP_RETRIES 2 /* three tries in all */

/* A failed UDP request as one clear line; returns the exit code. */
static int udp_failed(const char *cmd, const char *addr, int rc, const sk_head *resp, size_t n) {
  switch (resp != NULL ? 0 : rc) {
  case SK_ETOOLARGE:
    cli_error(cmd,
              "refused: %zu bytes do not fit in one UDP datagram (at most %u bytes for "
              "the whole frame); nothing was sent: send it over TCP (drop --udp)",
              n, SK_UDP_FRAME_MAX);
    return EXIT_FAIL;
  case -ETIMEDOUT:
    cli_error(cmd,
              "no answer from %s over UDP after %d tries; is `sockit serve --udp %s` "
              "running there?",
              addr, UDP_RETRIES + 1, addr);
    return EXIT_CONN;
  case -ECONNREFUSED:
    cli_error(cmd, "nothing listens for UDP on %s (start `sockit serve --udp %s`)", addr, addr);
    return EXIT_CONN;
  case SK_EBADADDR:
    cli_error(cmd, "bad address '%s': use HOST:PORT or [IPv6]:PORT", addr);
    return EXIT_USAGE;
  }
  return cli_request_failed(cmd, rc, resp);
}

int cli_udp_echo(const char *addr, const char *text, size_t n, int newline) {
  sk_head *req = sk_head_new("echo"), *resp = NULL;
  uint8_t *body = NULL;
  size_t got = 0;
  int rc = req ? sk_udp_request(addr, req, text, n, UDP_TIMEOUT_MS, UDP_RETRIES, &resp, &body, &got)
               : -ENOMEM;
  int code = EXIT_OK;
  if (rc < 0) {
    code = udp_failed("echo", addr, rc, resp, n);
  } else {
    fwrite(body, 1, got, stdout);
    if (newline)
      fputc('\n', stdout);
    code = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
  }
  sk_head_free(req);
  sk_head_free(resp);
  free(body);
  return code;
}

int cli_udp_time(const char *addr, sk_head *req) {
  sk_head *resp = NULL;
  int rc = sk_udp_request(addr, req, NULL, 0, UDP_TIMEOUT_MS, UDP_RETRIES, &resp, NULL, NULL);
  int code;
  if (rc < 0) {
    code = udp_failed("time", addr, rc, resp, 0);
  } else {
    const char *text = sk_head_str(resp, "text");
    printf("%s\n", text ? text : "");
    code = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
  }
  sk_head_free(resp);
  return code;
}
