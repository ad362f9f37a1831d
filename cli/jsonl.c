/* jsonl.c - --json result lines (jsonl.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "cli.h"
#include "common/visible.h"
#include "jsonl.h"

sk_head *cli_jsonl_new(void) {
  return sk_head_new(NULL);
}

void cli_jsonl_str(sk_head *h, const char *key, const char *s) {
  if (h != NULL && sk_head_set_str(h, key, s) == -EINVAL)
    sk_head_set_str(h, key, cli_safe(s));
}

/* The encoder leaves DEL, C1 and bidi characters raw inside strings (names
 * and messages from the server): they are spelled \uXXXX, as in the log, so
 * a result line shown on a terminal cannot drive it. */
void cli_jsonl_print(sk_head *h) {
  uint8_t *text = NULL;
  ssize_t n = h != NULL ? sk_head_encode_alloc(h, &text) : -1;
  char *shown = n > 4 ? malloc(6 * (size_t)n + 2) : NULL;
  if (shown != NULL) { /* after the frame's 4-byte length prefix */
    fwrite(shown, 1, sk__json_visible(shown, 6 * (size_t)n + 2, (char *)text + 4, (size_t)n - 4),
           stdout);
    fputc('\n', stdout);
  }
  free(shown);
  free(text);
  sk_head_free(h);
}

void cli_jsonl_error(sk_head *h, int rc, const char *message) {
  const char *kind =
      rc == SK_ECLOSED || rc == -EPIPE || rc == -ECONNRESET || rc == -ETIMEDOUT || rc == SK_ETLS
          ? "connection"
      : rc > -4096 ? "local"
                   : sk_err_wire_name(rc);
  sk_head_set_bool(h, "ok", 0);
  sk_head_set_str(h, "error", kind);
  cli_jsonl_str(h, "message", message != NULL && message[0] ? message : sk_strerror(rc));
}

void cli_jsonl_base64(sk_head *h, const char *key, const uint8_t *data, size_t n) {
  char *b64 = malloc(4 * ((n + 2) / 3) + 1);
  if (h == NULL || b64 == NULL || n > INT32_MAX / 2) {
    free(b64);
    return;
  }
  EVP_EncodeBlock((unsigned char *)b64, data, (int)n);
  sk_head_set_str(h, key, b64);
  free(b64);
}

void cli_print_failure(int rc, const sk_head *resp) {
  sk_head *j = cli_jsonl_new();
  if (j != NULL)
    cli_jsonl_error(j, rc, sk_error_message(resp));
  cli_jsonl_print(j);
}
