/* exec_client.c - the tutorial's remote command runner ("远程执行命令",
 * fixed with struct in "解决TCP黏包"): type a command, the server runs it,
 * its output comes back whole. The tutorial sends the output's length
 * first so that the client knows where it ends; here every piece of output
 * is a frame ({"type":"stdout","size":N} + N bytes) and the end is an
 * {"type":"exit","code":C} frame, so stdout, stderr and the exit status stay
 * apart and nothing runs into the next command's answer.
 *
 *   usage: exec_client [ADDR]      then one command per line; q quits
 *
 * The server must run with --allow-exec (and a key: exec is never served
 * without authentication).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sockit/sockit.h>

/* One command's answer: its output on ours, as it arrives, up to the exit
 * frame. Returns the exit status (128+N when signal N ended the program)
 * or a negative SK_E* code (an error frame: *why is then its message). */
static int collect(sk_client *c, char *why, size_t cap) {
  int status = 0, done = 0;
  while (!done) {
    sk_head *h;
    uint8_t *body;
    size_t n;
    int64_t v = 0;
    int rc = sk_client_recv(c, &h, &body, &n, 1u << 20); /* 1 MiB: more is a bad server */
    if (rc < 0)
      return rc;
    const char *type = sk_head_type(h);
    if (strcmp(type, "stdout") == 0 || strcmp(type, "stderr") == 0) {
      FILE *to = type[3] == 'o' ? stdout : stderr;
      fwrite(body, 1, n, to);
      fflush(to);
    } else if ((done = strcmp(type, "exit") == 0)) {
      status = sk_head_int(h, "signal", &v) == 0 ? 128 + (int)v : 0;
      if (status == 0 && sk_head_int(h, "code", &v) == 0)
        status = (int)v;
    } else if ((done = strcmp(type, "error") == 0)) {
      snprintf(why, cap, "%s", sk_error_message(h) ? sk_error_message(h) : sk_head_str(h, "code"));
      status = sk_err_from_wire(sk_head_str(h, "code"));
    }
    sk_head_free(h);
    free(body);
  }
  return status;
}

/* Send one command line to run with /bin/sh -c on the server. */
static int run(sk_client *c, const char *line) {
  sk_head *req = sk_head_new("exec");
  int rc = req != NULL ? sk_head_set_str(req, "shell", line) : SK_EINTERNAL;
  if (rc == 0)
    rc = sk_client_send(c, req, NULL, 0);
  sk_head_free(req);
  return rc;
}

int main(int argc, char **argv) {
  const char *addr = argc > 1 ? argv[1] : sk_client_default_addr();
  char line[4096], why[512] = "";
  sk_client *c;
  int rc = sk_client_connect(&c, addr, NULL);

  if (rc < 0) {
    fprintf(stderr, "exec_client: %s: %s\n", addr, sk_strerror(rc));
    return 1;
  }
  while (rc >= 0 && fputs("command (q to quit): ", stderr) >= 0 &&
         fgets(line, sizeof(line), stdin)) {
    line[strcspn(line, "\n")] = '\0';
    if (strcmp(line, "q") == 0)
      break;
    if (line[0] == '\0') /* the tutorial's empty-message trap: nothing to run */
      continue;
    if ((rc = run(c, line)) == 0 && (rc = collect(c, why, sizeof(why))) >= 0)
      printf("[exit %d]\n", rc);
  }
  if (rc < 0)
    fprintf(stderr, "exec_client: %s\n", why[0] ? why : sk_strerror(rc));
  sk_client_close(c);
  return rc < 0;
}
