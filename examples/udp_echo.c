/* udp_echo.c - the tutorial's first UDP pair ("基于UDP协议的socket": sendto
 * b'hello', recvfrom, print). No connection, no handshake: one datagram
 * holds one frame, and sk_udp_request matches the answer to the request by
 * its "id" and sends again when a datagram is lost (UDP may drop any).
 *
 *   usage: udp_echo ADDR [TEXT]        (a server started with --udp ADDR)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sockit/sockit.h>

int main(int argc, char **argv) {
  const char *text = argc > 2 ? argv[2] : "hello";
  sk_head *req = sk_head_new("echo"), *resp = NULL;
  uint8_t *body = NULL;
  size_t n = 0;
  int rc;

  if (argc < 2 || req == NULL) {
    fprintf(stderr, "usage: udp_echo ADDR [TEXT]\n");
    return 2;
  }
  /* 500 ms per try, 3 more tries; a frame over 65507 bytes is refused here. */
  rc = sk_udp_request(argv[1], req, text, strlen(text), 500, 3, &resp, &body, &n);
  if (rc == 0)
    printf("%.*s from %s\n", (int)n, (const char *)body, argv[1]);
  else
    fprintf(stderr, "udp_echo: %s: %s\n", argv[1], sk_strerror(rc));
  free(body);
  sk_head_free(resp);
  sk_head_free(req);
  return rc == 0 ? 0 : 1;
}
