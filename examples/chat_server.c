/* chat_server.c - the server half of the tutorial's chat pair ("测试1:
 * 假装在聊天"). The tutorial's server can talk to one client, taking turns;
 * sockit's built-in chat service holds rooms for any number of members,
 * and nobody waits for anybody's turn. This program only runs it.
 *
 *   usage: chat_server [ADDR [UDP_ADDR]]   (no authentication, as the tutorial)
 *
 * With UDP_ADDR it also answers datagrams there: the tutorial's UDP chat.
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
  const char *why = NULL;
  sk_server *srv = NULL;
  int rc = sk_server_new(&srv);

  if (rc == 0) {
    sk_server_on_notice(srv, print_notice, NULL);
    /* SIGPIPE ignored: a client gone mid-answer is its error, not our end */
    sk_server_set_process(srv, SK_PROCESS_SIGNALS);
  }
  if (rc == 0 &&
      (rc = sk_server_set(srv, "listen", argc > 1 ? argv[1] : "127.0.0.1:8080", &why)) == 0 &&
      (rc = sk_server_set(srv, "services", "chat,echo,time", &why)) == 0 &&
      (rc = sk_server_set(srv, "no-auth", NULL, &why)) == 0 && argc > 2)
    rc = sk_server_set(srv, "udp", argv[2], &why);
  if (rc == 0)
    rc = sk_server_run(srv, 1, &why); /* until SIGINT/SIGTERM */
  if (rc < 0)
    fprintf(stderr, "chat_server: %s\n", why ? why : sk_strerror(rc));
  sk_server_free(srv);
  return rc < 0 ? 1 : 0;
}
