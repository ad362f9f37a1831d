/* echo_server.c - the tutorial's first server ("server服务端": bind, listen,
 * accept, recv, send). With libsockit the accept loop, the framing that
 * ends sticky packets ("黏包") and the limits are the framework's job: the
 * program only picks an address and a built-in service, then runs.
 *
 *   usage: echo_server [ADDR [KEY_FILE]]
 *
 * Without KEY_FILE it runs without authentication, as the tutorial does.
 * Stop it with Ctrl-C (SIGINT) or SIGTERM.
 */
#include <stdio.h>

#include <sockit/sockit.h>

/* The library prints nothing itself: this prints what the server has to
 * say ("listening on 127.0.0.1:8080", warnings) as `sockit serve` does. */
static void print_notice(void *ctx, sk_notice_level level, const char *text) {
  (void)ctx;
  fprintf(stderr, "sockit: %s%s\n", level == SK_NOTICE_WARNING ? "warning: " : "", text);
}

int main(int argc, char **argv) {
  const char *addr = argc > 1 ? argv[1] : "127.0.0.1:8080", *why = NULL;
  sk_server *srv;
  int rc;

  if ((rc = sk_server_new(&srv)) < 0) {
    fprintf(stderr, "echo_server: %s\n", sk_strerror(rc));
    return 1;
  }
  sk_server_on_notice(srv, print_notice, NULL);
  /* SIGPIPE ignored: a client gone mid-answer is its error, not our end */
  sk_server_set_process(srv, SK_PROCESS_SIGNALS);
  /* The same names and values as `sockit serve --listen ADDR ...`. */
  if ((rc = sk_server_set(srv, "listen", addr, &why)) == 0 &&
      (rc = sk_server_set(srv, "services", "echo", &why)) == 0)
    rc = argc > 2 ? sk_server_set(srv, "key-file", argv[2], &why)
                  : sk_server_set(srv, "no-auth", NULL, &why);
  /* Says "listening on ADDR" (print_notice) once bound, then serves until a signal. */
  if (rc == 0)
    rc = sk_server_run(srv, 1, &why);
  if (rc < 0)
    fprintf(stderr, "echo_server: %s\n", why ? why : sk_strerror(rc));
  sk_server_free(srv);
  return rc < 0 ? 1 : 0;
}
