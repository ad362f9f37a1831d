/* time.c - `sockit time`: the tutorial's time client, once or --every N s. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "common/zone.h"
#include "jsonl.h"

static const char time_help[] =
    "usage: sockit time [ADDR] [--ts N] [--tz TZ] [--format F] [--every S [--count N]]\n"
    "Ask the time service to format a unix time (default: now).\n\n"
    "      --ts N         unix seconds to format\n"
    "      --tz TZ        local (the server's, default), UTC, +HH:MM, -HH:MM or a\n"
    "                     zone name such as Asia/Tokyo (from the server's tzdata)\n"
    "      --format F     strftime format (default \"%Y-%m-%d %H:%M:%S\")\n"
    "      --every S      ask again every S seconds with the current time, like the\n"
    "                     tutorial's periodic client; Ctrl-C ends it\n"
    "      --count N      with --every: stop after N answers\n"
    "  -u, --udp          ask `serve --udp ADDR` in one datagram (asked again each\n"
    "                     second for 3 s, or for -w S seconds), authenticated with\n"
    "                     the key but not encrypted; --ts needs --no-auth there\n" CLI_CLIENT_HELP;

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
  interrupted = 1;
}

typedef struct time_req {
  int has_ts;
  long long ts;
  const char *tz, *format;
  cli_client *cc;  /* the client options (--json: one object per answer) */
  int udp;         /* --udp: ask over UDP, no connection */
  double every;    /* --every S, 0: once */
  long long count; /* --count N, -1: until Ctrl-C */
} time_req;

int cli_print_time(int json, const sk_head *resp) {
  const char *text = sk_head_str(resp, "text");
  if (json) {
    sk_head *j = cli_jsonl_new();
    static const char *const keys[] = {"ts", "tz", "text", "now"};
    if (j != NULL)
      sk_head_set_bool(j, "ok", 1);
    for (size_t i = 0; j != NULL && i < sizeof(keys) / sizeof(keys[0]); i++)
      sk_head_copy_member(j, resp, keys[i]);
    cli_jsonl_print(j);
  } else {
    printf("%s\n", text ? cli_safe(text) : "");
  }
  return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}

static int ask(sk_client *c, const time_req *t, long long ts) {
  sk_head *req = sk_head_new("time"), *resp = NULL;
  int rc = req ? 0 : -ENOMEM;
  /* over UDP "now" is the default: an authenticated datagram's "ts" is its
   * send time already */
  if (rc == 0 && (t->has_ts || (ts >= 0 && !t->udp)))
    sk_head_set_int(req, "ts", t->has_ts ? t->ts : ts);
  if (rc == 0 && t->tz)
    sk_head_set_str(req, "tz", t->tz);
  if (rc == 0 && t->format)
    sk_head_set_str(req, "format", t->format);
  if (rc == 0 && t->udp) {
    rc = cli_udp_time(t->cc, req);
    sk_head_free(req);
    return rc;
  }
  if (rc == 0) {
    cli_verbose(t->cc->verbose, t->cc->cmd, "asking the time");
    rc = sk_client_request(c, req, NULL, 0, &resp, NULL, NULL);
  }
  if (rc < 0 && t->cc->json)
    cli_print_failure(rc, resp);
  if (rc < 0)
    rc = cli_request_failed("time", rc, resp);
  else
    rc = cli_print_time(t->cc->json, resp);
  sk_head_free(req);
  sk_head_free(resp);
  return rc;
}

/* --tz before anything is sent: the forms that work, and the bad value,
 * rather than the server's answer after a connection. Whether a well-shaped
 * zone name exists is the server's tzdata's call. */
static int check_tz(const char *tz) {
  char hint[64] = "";
  long off;
  if (strcmp(tz, "local") == 0 || strcmp(tz, "UTC") == 0 || sk__tz_parse_offset(tz, &off) == 0)
    return 0;
  if (strcasecmp(tz, "utc") == 0 || strcasecmp(tz, "z") == 0)
    snprintf(hint, sizeof(hint), " (did you mean UTC?)");
  else if (strcasecmp(tz, "local") == 0)
    snprintf(hint, sizeof(hint), " (did you mean local?)");
  else if ((tz[0] == '+' || tz[0] == '-') && strlen(tz) <= 5 &&
           strspn(tz + 1, "0123456789") == strlen(tz + 1))
    snprintf(hint, sizeof(hint), " (offsets are written %c%02d:%02d)", tz[0],
             strlen(tz) <= 3 ? atoi(tz + 1) : atoi(tz + 1) / 100,
             strlen(tz) <= 3 ? 0 : atoi(tz + 1) % 100);
  else if (sk__zone_name_ok(tz))
    return 0;
  return cli_usage_error("time",
                         "--tz '%s' is not a time zone: use local, UTC, +HH:MM, -HH:MM or a zone "
                         "name such as Asia/Tokyo%s",
                         cli_safe(tz), hint);
}

static int parse_num(const char *s, long long *out) {
  char *end;
  errno = 0;
  *out = strtoll(s, &end, 10);
  return errno == 0 && end != s && *end == '\0' ? 0 : -1;
}

/* Options into t and cc; -1 to go on, else the exit code. */
static int parse_opts(int argc, char **argv, time_req *t, cli_client *cc) {
  static const struct option opts[] = {{"ts", required_argument, NULL, 't'},
                                       {"tz", required_argument, NULL, 'z'},
                                       {"format", required_argument, NULL, 'f'},
                                       {"every", required_argument, NULL, 'e'},
                                       {"count", required_argument, NULL, 'c'},
                                       {"udp", no_argument, NULL, 'u'},
                                       CLI_CLIENT_LONGOPTS,
                                       {0}};
  int opt, udp = 0, argi;
  char *end;
  while ((opt = cli_getopt(argc, argv, ":u" CLI_CLIENT_SHORTOPTS, opts, NULL)) != -1) {
    if (opt == 'h') {
      fputs(time_help, stdout);
      return EXIT_OK;
    } else if (opt == 't') {
      if (parse_num(optarg, &t->ts) < 0)
        return cli_usage_error("time", "--ts wants integer unix seconds");
      t->has_ts = 1;
    } else if (opt == 'z') {
      if (check_tz(optarg) != 0)
        return EXIT_USAGE;
      t->tz = optarg;
    } else if (opt == 'f') {
      t->format = optarg;
    } else if (opt == 'e') {
      t->every = strtod(optarg, &end);
      if (*end != '\0' || !(t->every > 0))
        return cli_usage_error("time", "--every wants a positive number of seconds");
    } else if (opt == 'c') {
      if (parse_num(optarg, &t->count) < 0 || t->count < 1)
        return cli_usage_error("time", "--count wants a positive integer");
    } else if (opt == 'u') {
      udp = 1;
    } else if (!cli_client_opt(cc, opt, optarg)) {
      return cli_option_error("time", opt, argv);
    }
  }
  argi = optind;
  cli_take_addr(cc, argc, argv, &argi);
  if (argi < argc)
    return cli_usage_error("time", "unexpected argument '%s'", argv[argi]);
  t->cc = cc;
  t->udp = udp;
  return -1;
}

/* The tutorial's periodic client: the current time, every t->every seconds. */
static int ask_every(sk_client *c, const time_req *t) {
  struct timespec d = {(time_t)t->every, (long)((t->every - (double)(time_t)t->every) * 1e9)};
  int code = EXIT_OK;
  signal(SIGINT, on_sigint);
  for (long long i = 0; !interrupted && (t->count < 0 || i < t->count); i++) {
    struct timespec left = d;
    while (i > 0 && nanosleep(&left, &left) < 0 && errno == EINTR && !interrupted) {
    }
    if (interrupted || (code = ask(c, t, (long long)time(NULL))) != EXIT_OK)
      break;
  }
  return code;
}

int cmd_time(int argc, char **argv) {
  cli_client cc = {.cmd = "time"};
  time_req t = {.count = -1};
  sk_client *c = NULL;
  int code = parse_opts(argc, argv, &t, &cc);

  if (code >= 0)
    return code;
  if (!t.udp && (code = cli_connect("time", &cc, &c)) != EXIT_OK)
    return code;
  code = t.every > 0 ? ask_every(c, &t) : ask(c, &t, -1);
  sk_client_close(c);
  return code;
}
