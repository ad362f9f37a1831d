/* echo.c - `sockit echo [ADDR] [TEXT...]`: the tutorial's first client. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "jsonl.h"

static const char echo_help[] =
    "usage: sockit echo [ADDR] [TEXT...]\n"
    "Send TEXT (words joined by spaces, then a newline is printed) or, without\n"
    "TEXT, all of stdin; print what the server echoes back.\n\n"
    "  -u, --udp          one datagram to `serve --udp ADDR` (at most 65507\n"
    "                     bytes), authenticated with the key but not encrypted;\n"
    "                     asked again each second for 3 s, or for -w S seconds\n" CLI_CLIENT_HELP;

#define ECHO_STDIN_MAX (16u << 20) /* the server's default --max-message */

static int join_args(int argc, char **argv, char **out, size_t *n) {
  size_t len = 0;
  for (int i = 0; i < argc; i++)
    len += strlen(argv[i]) + 1;
  char *s = malloc(len + 1), *p = s;
  if (s == NULL)
    return -ENOMEM;
  for (int i = 0; i < argc; i++)
    p += sprintf(p, "%s%s", i ? " " : "", argv[i]);
  *out = s;
  *n = (size_t)(p - s);
  return 0;
}

static int read_stdin(char **out, size_t *n) {
  size_t cap = 65536, len = 0;
  char *buf = malloc(cap);
  ssize_t r;
  while (buf != NULL && (r = read(STDIN_FILENO, buf + len, cap - len)) != 0) {
    if (r < 0) {
      if (errno == EINTR)
        continue;
      free(buf);
      return -errno;
    }
    len += (size_t)r;
    if (len == cap) {
      if (cap >= ECHO_STDIN_MAX) {
        free(buf);
        return SK_ETOOLARGE;
      }
      char *bigger = realloc(buf, cap * 2);
      if (bigger == NULL)
        free(buf);
      buf = bigger;
      cap *= 2;
    }
  }
  if (buf == NULL)
    return -ENOMEM;
  *out = buf;
  *n = len;
  return 0;
}

int cli_print_echo(int json, const uint8_t *body, size_t n, int newline, double rtt_ms) {
  sk_head *j;
  if (!json) {
    fwrite(body, 1, n, stdout);
    if (newline)
      fputc('\n', stdout);
    return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
  }
  if ((j = cli_jsonl_new()) != NULL) {
    sk_head_set_bool(j, "ok", 1);
    sk_head_set_int(j, "size", (int64_t)n);
    /* JSON strings hold UTF-8: other bytes go as "base64" */
    if (sk_head_set_strn(j, "text", n ? (const char *)body : "", n) < 0)
      cli_jsonl_base64(j, "base64", body, n);
    if (rtt_ms >= 0)
      sk_head_set_int(j, "rtt_us", (int64_t)(rtt_ms * 1000 + 0.5));
  }
  cli_jsonl_print(j);
  return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}

int cmd_echo(int argc, char **argv) {
  static const struct option opts[] = {CLI_CLIENT_LONGOPTS, {"udp", no_argument, NULL, 'u'}, {0}};
  cli_client cc = {.cmd = "echo"};
  int udp = 0;
  sk_client *c = NULL;
  sk_head *req = NULL, *resp = NULL;
  uint8_t *body = NULL;
  char *text = NULL;
  size_t n = 0, got = 0;
  int opt, argi, rc, code;

  while ((opt = cli_getopt(argc, argv, ":u" CLI_CLIENT_SHORTOPTS, opts, NULL)) != -1) {
    if (opt == 'h') {
      fputs(echo_help, stdout);
      return EXIT_OK;
    }
    if (opt == 'u') {
      udp = 1;
      continue;
    }
    if (!cli_client_opt(&cc, opt, optarg))
      return cli_option_error("echo", opt, argv);
  }
  argi = optind;
  cli_take_addr(&cc, argc, argv, &argi);
  int from_args = argi < argc;
  rc = from_args ? join_args(argc - argi, argv + argi, &text, &n) : read_stdin(&text, &n);
  if (rc < 0) {
    cli_error("echo", "cannot read the text to send: %s", sk_strerror(rc));
    return EXIT_FAIL;
  }
  if (udp) {
    code = cli_udp_echo(&cc, text, n, from_args);
    goto out;
  }
  if ((code = cli_connect("echo", &cc, &c)) != EXIT_OK)
    goto out;
  req = sk_head_new("echo");
  sk_head_set_int(req, "size", (int64_t)n);
  cli_verbose(cc.verbose, cc.cmd, "sending the echo request (%zu bytes)", n);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  rc = req ? sk_client_request(c, req, text, n, &resp, &body, &got) : -ENOMEM;
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (rc < 0) {
    if (cc.json)
      cli_print_failure(rc, resp);
    code = cli_request_failed("echo", rc, resp);
    goto out;
  }
  code = cli_print_echo(cc.json, body, got, from_args,
                        (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                            (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
out:
  sk_head_free(req);
  sk_head_free(resp);
  free(body);
  free(text);
  sk_client_close(c);
  return code;
}
