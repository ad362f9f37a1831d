/* auth_client.c - the tutorial's "验证客户端链接的合法性" (checking that a
 * client is legitimate with hmac). The tutorial's server sends a random
 * number and compares HMAC-MD5(secret, number); sockit does the same idea
 * in both directions with HMAC-SHA256 and 32-byte nonces from each side
 * (SPEC 4.3), so the client also learns that the server knows the key.
 * sk_client_connect runs the whole exchange; this program shows what it
 * did and how each failure is reported.
 *
 *   usage: auth_client ADDR KEY_FILE
 */
#include <stdio.h>

#include <sockit/sockit.h>

int main(int argc, char **argv) {
  sk_client_opts opts = {0};
  sk_client *c;
  int rc;

  if (argc != 3) {
    fprintf(stderr, "usage: auth_client ADDR KEY_FILE\n");
    return 2;
  }
  opts.key_file = argv[2];
  opts.timeout_ms = 5000;
  rc = sk_client_connect(&c, argv[1], &opts);
  if (rc == SK_EAUTHFAIL || rc == SK_EBADMAC || rc == SK_ERATELIMIT || rc == SK_EBADKEY) {
    /* the server refused our mac, or could not prove its own, or the file is unusable */
    printf("验证失败 (authentication failed): %s\n", sk_strerror(rc));
    return 1;
  }
  if (rc < 0) {
    fprintf(stderr, "auth_client: %s: %s\n", argv[1], sk_strerror(rc));
    return 1;
  }
  /* The hello is borrowed from the client: it lives until sk_client_close. */
  printf("验证成功 (authenticated): %s, auth %s\n", sk_head_str(sk_client_hello(c), "server"),
         sk_head_str(sk_client_hello(c), "auth"));
  sk_client_close(c);
  return 0;
}
