/* fixed_clock_server.c - a server whose clock stands still, for the
 * end-to-end tests of the classic time protocols (RFC 868's 2036 wrap, the
 * day padding of daytime). Built with the tests only, never installed: the
 * shipped library and `sockit` read no test variable; a test injects its
 * clock through the public API (sk_server_set_clock), as this does.
 *
 * usage: fixed_clock_server UNIX_SECONDS [NAME[=VALUE]]...
 * Each NAME[=VALUE] is handed to sk_server_set ("listen=127.0.0.1:0",
 * "no-auth"). It prints what the server says as `sockit serve` does
 * ("sockit: listening on ADDR") and runs until SIGINT or SIGTERM. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sockit/sockit.h>

static int64_t fixed_clock(void *ctx) {
  return *(const int64_t *)ctx;
}

static void print_notice(void *ctx, sk_notice_level level, const char *text) {
  (void)ctx;
  fprintf(stderr, "sockit: %s%s\n", level == SK_NOTICE_WARNING ? "warning: " : "", text);
}

/* "name=value" or "name" (a flag) to sk_server_set. */
static int set_option(sk_server *srv, char *arg, const char **why) {
  char *eq = strchr(arg, '=');
  if (eq != NULL)
    *eq = '\0';
  return sk_server_set(srv, arg, eq != NULL ? eq + 1 : NULL, why);
}

int main(int argc, char **argv) {
  const char *why = NULL;
  sk_server *srv = NULL;
  char *end;
  int64_t now;
  int rc;
  if (argc < 2) {
    fprintf(stderr, "usage: fixed_clock_server UNIX_SECONDS [NAME[=VALUE]]...\n");
    return 2;
  }
  errno = 0;
  now = (int64_t)strtoll(argv[1], &end, 10);
  if (errno != 0 || *end != '\0' || end == argv[1]) {
    fprintf(stderr, "fixed_clock_server: %s is not a number of seconds\n", argv[1]);
    return 2;
  }
  if ((rc = sk_server_new(&srv)) < 0) {
    fprintf(stderr, "fixed_clock_server: %s\n", sk_strerror(rc));
    return 1;
  }
  sk_server_on_notice(srv, print_notice, NULL);
  sk_server_set_process(srv, SK_PROCESS_SIGNALS);
  sk_server_set_clock(srv, fixed_clock, &now);
  for (int i = 2; i < argc && rc == 0; i++)
    if ((rc = set_option(srv, argv[i], &why)) < 0)
      fprintf(stderr, "fixed_clock_server: %s: %s\n", argv[i], why ? why : sk_strerror(rc));
  if (rc == 0 && (rc = sk_server_run(srv, 1, &why)) < 0)
    fprintf(stderr, "fixed_clock_server: %s\n", why ? why : sk_strerror(rc));
  sk_server_free(srv);
  return rc < 0;
}
