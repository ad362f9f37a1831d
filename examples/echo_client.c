/* echo_client.c - the tutorial's first client ("client用户端": connect,
 * send '很高兴认识你', recv, print). sk_client_request sends one framed
 * request and waits for its one framed answer, so the reply is never cut
 * short or glued to the next one the way a bare recv(1024) can be.
 *
 *   usage: echo_client [ADDR] [TEXT]
 *
 * The key comes from $SOCKIT_KEY_FILE (or ~/.config/sockit/key) when the
 * server asks for one; a server started with --no-auth needs none.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sockit/sockit.h>

int main(int argc, char **argv) {
  const char *addr = argc > 1 ? argv[1] : sk_client_default_addr();
  const char *text = argc > 2 ? argv[2] : "很高兴认识你";
  sk_client *c = NULL;
  sk_head *req = sk_head_new("echo");
  uint8_t *body = NULL;
  size_t n = 0;
  int rc = req != NULL ? sk_client_connect(&c, addr, NULL) : SK_EINTERNAL;

  /* The reply body is malloc'd and NUL-terminated for us: print it as is. */
  if (rc == 0)
    rc = sk_client_request(c, req, text, strlen(text), NULL, &body, &n);
  if (rc == 0)
    printf("%.*s\n", (int)n, (const char *)body);
  else
    fprintf(stderr, "echo_client: %s: %s\n", addr, sk_strerror(rc));
  free(body);
  sk_head_free(req);
  sk_client_close(c);
  return rc == 0 ? 0 : 1;
}
