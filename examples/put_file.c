/* put_file.c - the tutorial's large-file upload ("利用报头和struct模块发送
 * 大文件"): a JSON header with the file's name and size, then the bytes in
 * chunks. sk_client_put_file sends exactly that - a {"type":"put","name":..,
 * "total":..,"size":..} head, the body in pieces, a put_end - and adds what
 * the tutorial's version lacks: the file is published on the server only
 * when every byte arrived and the SHA-256 of both sides agrees, an
 * interrupted upload can be resumed, and names cannot leave the server's
 * file root.
 *
 *   usage: put_file ADDR FILE [NAME]     (NAME defaults to FILE's base name)
 */
#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include <sockit/sockit.h>

int main(int argc, char **argv) {
  sk_xfer_result res = {0};
  sk_put_opts opts = {.hash = "sha256", .resume = 1, .result = &res};
  char base[4096];
  sk_client *c = NULL;
  int rc;

  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: put_file ADDR FILE [NAME]\n");
    return 2;
  }
  snprintf(base, sizeof(base), "%s", argv[2]);
  rc = sk_client_connect(&c, argv[1], NULL);
  if (rc == 0)
    rc = sk_client_put_file(c, argv[2], argc > 3 ? argv[3] : basename(base), &opts);
  if (rc == 0)
    printf("uploaded %s: %llu bytes (%llu resumed), %s\n", argc > 3 ? argv[3] : basename(base),
           (unsigned long long)res.total, (unsigned long long)res.offset, res.hash);
  else /* the server's own words when it refused, e.g. a name outside the root */
    fprintf(stderr, "put_file: %s\n", res.message[0] ? res.message : sk_strerror(rc));
  sk_client_close(c);
  return rc == 0 ? 0 : 1;
}
