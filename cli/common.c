/* common.c - helpers every command shares (cli.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void vline(const char *cmd, const char *fmt, va_list ap) {
  char line[1024];
  vsnprintf(line, sizeof(line), fmt, ap);
  fprintf(stderr, "sockit %s: %s\n", cmd, line);
}

void cli_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vline(cmd, fmt, ap);
  va_end(ap);
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  fprintf(stderr, "sockit %s: %s (see: sockit %s --help)\n", cmd, line, cmd);
  return EXIT_USAGE;
}

int cli_write_all(int fd, const void *data, size_t n) {
  const uint8_t *p = data;
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -errno;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int cli_client_opt(cli_client *cc, int opt, const char *arg) {
  switch (opt) {
  case 'K':
    cc->opts.key_file = arg;
    return 1;
  case 'N':
    cc->opts.no_auth = 1;
    return 1;
  case 'q':
    cc->quiet = 1;
    return 1;
  }
  return 0;
}

void cli_take_addr(cli_client *cc, int argc, char **argv, int *argi) {
  if (*argi < argc && strchr(argv[*argi], ':') != NULL)
    cc->addr = argv[(*argi)++];
  else
    cc->addr = sk_client_default_addr();
}

int cli_connect(const char *cmd, cli_client *cc, sk_client **out) {
  int rc = sk_client_connect(out, cc->addr, &cc->opts);
  if (rc == 0)
    return EXIT_OK;
  switch (rc) {
  case SK_EBADKEY:
    cli_error(cmd, "cannot use the key file: it must exist, hold at least 16 bytes and be "
                   "mode 0600 (chmod 600 FILE); make one with: sockit keygen");
    break;
  case SK_EAUTHFAIL:
    cli_error(cmd, "%s refused our key: use the server's key file (--key-file F)", cc->addr);
    break;
  case SK_EAUTHREQ:
    cli_error(cmd, "%s requires authentication: drop --no-auth and give --key-file F", cc->addr);
    break;
  case SK_EBADADDR:
    cli_error(cmd, "bad address '%s': use HOST:PORT, [IPv6]:PORT, :PORT or unix:/path", cc->addr);
    break;
  case -ECONNREFUSED:
  case -ENOENT:
    cli_error(cmd, "cannot connect to %s: %s; is `sockit serve` running there?", cc->addr,
              sk_strerror(rc));
    break;
  default:
    cli_error(cmd, "cannot connect to %s: %s", cc->addr, sk_strerror(rc));
  }
  return EXIT_CONN;
}

int cli_request_failed(const char *cmd, int rc, const sk_head *resp) {
  const char *msg = resp ? sk_error_message(resp) : NULL;
  const char *code = resp ? sk_head_str(resp, "code") : NULL;
  if (code != NULL)
    cli_error(cmd, "server said %s: %s", code, msg ? msg : sk_strerror(rc));
  else
    cli_error(cmd, "%s", sk_strerror(rc));
  if (rc == SK_ECLOSED || rc == -ETIMEDOUT || rc == -ECONNRESET || rc == -EPIPE ||
      rc == SK_EAUTHREQ || rc == SK_EAUTHFAIL || rc == SK_ERATELIMIT)
    return EXIT_CONN;
  return EXIT_FAIL;
}
