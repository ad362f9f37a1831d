/* time.c - `sockit time`: the tutorial's time client, once or --every N s. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char time_help[] =
    "usage: sockit time [ADDR] [--ts N] [--tz TZ] [--format F] [--every S [--count N]]\n"
    "Ask the time service to format a unix time (default: now).\n\n"
    "      --ts N         unix seconds to format\n"
    "      --tz TZ        local (the server's, default), UTC, +HH:MM or -HH:MM\n"
    "      --format F     strftime format (default \"%Y-%m-%d %H:%M:%S\")\n"
    "      --every S      ask again every S seconds with the current time, like the\n"
    "                     tutorial's periodic client; Ctrl-C ends it\n"
    "      --count N      with --every: stop after N answers\n"
    "  -u, --udp          ask `serve --udp ADDR` in one datagram (retried on timeout)\n" CLI_CLIENT_HELP;

static volatile sig_atomic_t interrupted;
static const char *udp_addr; /* --udp: ask over UDP, no connection */
static void on_sigint(int sig) { interrupted = 1; }

typedef struct time_req {
  int has_ts;
  long long ts;
  const char *tz, *format;
} time_req;

static int ask(sk_client *c, const time_req *t, long long ts) {
  sk_head *req = sk_head_new("time"), *resp = NULL;
  int rc = req ? 0 : -ENOMEM;
  if (rc == 0 && (t->has_ts || ts >= 0))
    sk_head_set_int(req, "ts", t->has_ts ? t->ts : ts);
  if (rc == 0 && t->tz)
    sk_head_set_str(req, "tz", t->tz);
  if (rc == 0 && t->format)
    sk_head_set_str(req, "format", t->format);
  if (rc == 0 && udp_addr != NULL) {
    rc = cli_udp_time(udp_addr, req);
    sk_head_free(req);
    return rc;
  }
  if (rc == 0)
    rc = sk_client_request(c, req, NULL, 0, &resp, NULL, NULL);
  if (rc < 0) {
    rc = cli_request_failed("time", rc, resp);
  } else {
    const char *text = sk_head_str(resp, "text");
    printf("%s\n", text ? text : "");
    rc = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
  }
  sk_head_free(req);
  sk_head_free(resp);
  return rc;
}

static int parse_num(const char *s, long long *out) {
  char *end;
  errno = 0;
  *out = strtoll(s, &end, 10);
  return errno == 0 && end != s && *end == '\0' ? 0 : -1;
}

int cmd_time(int argc, char **argv) {
  static const struct option opts[] = {
      {"ts", required_argument, NULL, 't'},     {"tz", required_argument, NULL, 'z'},
      {"format", required_argument, NULL, 'f'}, {"every", required_argument, NULL, 'e'},
      {"count", required_argument, NULL, 'c'},  CLI_CLIENT_LONGOPTS,
      {"udp", no_argument, NULL, 'u'},
      {0}};
  cli_client cc = {0};
  time_req t = {0};
  double every = 0;
  long long count = -1;
  sk_client *c = NULL;
  int opt, argi, code;

  while ((opt = getopt_long(argc, argv, "hqu", opts, NULL)) != -1) {
    char *end;
    switch (opt) {
    case 'h':
      fputs(time_help, stdout);
      return EXIT_OK;
    case 't':
      if (parse_num(optarg, &t.ts) < 0)
        return cli_usage_error("time", "--ts wants integer unix seconds");
      t.has_ts = 1;
      break;
    case 'z':
      t.tz = optarg;
      break;
    case 'f':
      t.format = optarg;
      break;
    case 'e':
      every = strtod(optarg, &end);
      if (*end != '\0' || !(every > 0))
        return cli_usage_error("time", "--every wants a positive number of seconds");
      break;
    case 'u':
      udp_addr = ""; /* the address is known after the options */
      break;
    case 'c':
      if (parse_num(optarg, &count) < 0 || count < 1)
        return cli_usage_error("time", "--count wants a positive integer");
      break;
    default:
      if (!cli_client_opt(&cc, opt, optarg))
        return cli_usage_error("time", "unknown option");
    }
  }
  argi = optind;
  cli_take_addr(&cc, argc, argv, &argi);
  if (argi < argc)
    return cli_usage_error("time", "unexpected argument '%s'", argv[argi]);
  if (udp_addr != NULL)
    udp_addr = cc.addr;
  else if ((code = cli_connect("time", &cc, &c)) != EXIT_OK)
    return code;
  if (every <= 0) {
    code = ask(c, &t, -1);
  } else {
    signal(SIGINT, on_sigint);
    for (long long i = 0; !interrupted && (count < 0 || i < count); i++) {
      if (i > 0) {
        struct timespec d = {(time_t)every, (long)((every - (double)(time_t)every) * 1e9)};
        while (nanosleep(&d, &d) < 0 && errno == EINTR && !interrupted) {
        }
        if (interrupted)
          break;
      }
      if ((code = ask(c, &t, (long long)time(NULL))) != EXIT_OK)
        break;
    }
  }
  sk_client_close(c);
  return code;
}
