/* udp.c - `sockit echo --udp` and `sockit time --udp` (SPEC 5): one
 * datagram each way, asked again when no answer comes in time. With a key
 * (--key-file, or the default one when it exists) the datagrams are
 * authenticated; --no-auth sends them plain. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "auth/keyfile.h"
#include "cli.h"

#define UDP_TIMEOUT_MS 1000
#define UDP_RETRIES 2 /* three tries in all, unless -w says how long to wait */

/* How long each try waits and how many more follow: by default three tries
 * of a second; with -w S, S seconds in tries of about a second each (one
 * try for S under a second and a half), as nc -u -w bounds its wait. */
typedef struct udp_plan {
  int try_ms, retries;
} udp_plan;

static udp_plan udp_plan_of(const cli_client *cc) {
  udp_plan p = {UDP_TIMEOUT_MS, UDP_RETRIES};
  if (cc->timeout_s > 0) {
    double ms = cc->timeout_s * 1000;
    int tries = (int)(ms / UDP_TIMEOUT_MS + 0.5);
    if (tries < 1)
      tries = 1;
    p.try_ms = ms < tries ? 1 : (int)(ms / tries + 0.5); /* 0 ms would not wait at all */
    p.retries = tries - 1;
  }
  return p;
}

int cli_udp_open(const char *cmd, cli_client *cc, sk_udp **out) {
  char path[4096], why[1024];
  int rc;
  cli_watch_steps(cmd, cc);
  rc = sk_udp_open_opts(out, cc->addr, &cc->opts);
  switch (rc) {
  case 0:
    return EXIT_OK;
  case SK_EBADKEY:
    if (cc->opts.key_file != NULL)
      snprintf(path, sizeof(path), "%s", cc->opts.key_file);
    else if (sk_key_default_path(path, sizeof(path)) < 0)
      snprintf(path, sizeof(path), "(no default key file: HOME is not set)");
    sk__key_describe(path, 0, why, sizeof(why));
    cli_error(cmd, "%s", why);
    return EXIT_CONN;
  case SK_ERESOLVE:
    return cli_resolve_failed(cmd, cc);
  case SK_EBADADDR:
    cli_error(cmd, "bad address '%s': use HOST:PORT or [IPv6]:PORT", cli_safe(cc->addr));
    return EXIT_USAGE;
  }
  cli_error(cmd, "cannot use %s for UDP: %s", cli_safe(cc->addr), sk_strerror(rc));
  return EXIT_CONN;
}

/* A failed UDP request as one clear line; returns the exit code. */
static int udp_failed(const char *cmd, const sk_udp *u, const char *addr, udp_plan p, int rc,
                      const sk_head *resp, size_t n) {
  switch (resp != NULL ? 0 : rc) {
  case SK_ETOOLARGE:
    cli_error(cmd,
              "refused: %zu bytes do not fit in one UDP datagram (at most %u bytes for "
              "the whole frame%s); nothing was sent: send it over TCP (drop --udp)",
              n, SK_UDP_FRAME_MAX, sk_udp_authenticated(u) ? " and its 32-byte trailer" : "");
    return EXIT_FAIL;
  case -ETIMEDOUT:
    /* a server with a key says nothing to a datagram it cannot verify */
    cli_error(cmd,
              "no answer from %s over UDP within %g s (%d tries); is `sockit serve --udp %s` "
              "running there%s?",
              addr, (double)p.try_ms * (p.retries + 1) / 1000, p.retries + 1, addr,
              sk_udp_authenticated(u) ? " with this key (for a --no-auth server add --no-auth)"
                                      : " with --no-auth (else give its --key-file)");
    return EXIT_CONN;
  case -ECONNREFUSED:
    cli_error(cmd, "nothing listens for UDP on %s (start `sockit serve --udp %s`)", addr, addr);
    return EXIT_CONN;
  }
  return cli_request_failed(cmd, rc, resp);
}

int cli_udp_echo(cli_client *cc, const char *text, size_t n, int newline) {
  sk_head *req = sk_head_new("echo"), *resp = NULL;
  uint8_t *body = NULL;
  size_t got = 0;
  sk_udp *u = NULL;
  udp_plan plan;
  int code = req ? cli_udp_open("echo", cc, &u) : EXIT_FAIL, rc;
  if (code != EXIT_OK)
    goto out;
  cli_verbose(cc->verbose, cc->cmd, "sending the echo request in one datagram (%zu bytes)", n);
  plan = udp_plan_of(cc);
  rc = sk_udp_call(u, req, text, n, plan.try_ms, plan.retries, &resp, &body, &got);
  if (rc < 0) {
    code = udp_failed("echo", u, cc->addr, plan, rc, resp, n);
  } else {
    code = cli_print_echo(cc->json, body, got, newline, -1);
  }
out:
  sk_udp_close(u);
  sk_head_free(req);
  sk_head_free(resp);
  free(body);
  return code;
}

int cli_udp_time(cli_client *cc, sk_head *req) {
  sk_head *resp = NULL;
  sk_udp *u = NULL;
  udp_plan plan;
  int code = cli_udp_open("time", cc, &u), rc;
  if (code != EXIT_OK)
    return code;
  if (sk_udp_authenticated(u) && sk_head_has(req, "ts")) {
    sk_udp_close(u);
    return cli_usage_error("time", "--ts cannot go in an authenticated datagram (its \"ts\" is "
                                   "the send time): drop --udp, or use --no-auth with a "
                                   "--no-auth server");
  }
  cli_verbose(cc->verbose, cc->cmd, "asking the time in one datagram");
  plan = udp_plan_of(cc);
  rc = sk_udp_call(u, req, NULL, 0, plan.try_ms, plan.retries, &resp, NULL, NULL);
  if (rc < 0) {
    code = udp_failed("time", u, cc->addr, plan, rc, resp, 0);
  } else {
    code = cli_print_time(cc->json, resp);
  }
  sk_udp_close(u);
  sk_head_free(resp);
  return code;
}
