/* serve.c - `sockit serve`: every flag goes to sk_server_set by its name. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* The core's options; each service's own follow, from its table
 * (sk_server_option), then serve_help_tail. */
static const char serve_help[] =
    "usage: sockit serve [OPTIONS]\n"
    "Serve echo, time, chat and files (and exec with --allow-exec) on framed,\n"
    "authenticated connections.\n\n"
    "  -l, --listen ADDR      listen on ADDR (repeatable; default 127.0.0.1:8080):\n"
    "                         HOST:PORT, [IPv6]:PORT, :PORT, PORT or unix:/path\n"
    "      --udp ADDR         also answer datagrams on ADDR (echo, time, chat);\n"
    "                         with a key each datagram is authenticated (HMAC) but\n"
    "                         not encrypted: anyone on the path reads UDP chat\n"
    "      --services LIST    services to offer (default echo,time,chat,files)\n"
    "      --root DIR         file root (default $XDG_DATA_HOME/sockit/files)\n"
    "      --key-file F       key file (default ~/.config/sockit/key, created if missing)\n"
    "      --no-auth          accept clients without a key (exec stays refused); with no\n"
    "                         --tls-cert its connections are not encrypted\n"
    "      --no-tls           plain, unencrypted sockit/1 (TCP speaks TLS 1.3 keyed by\n"
    "                         the key file by default; Unix sockets are plain)\n"
    "      --tls              Unix socket listeners speak TLS too\n"
    "      --tls-cert F       authenticate the server with this certificate (PEM), for\n"
    "      --tls-key F        standard TLS clients; clients then check it (--tls-pin)\n"
    "      --wire native|seed with --service NAME: the next -l speaks the classic\n"
    "      --service NAME     tutorial format NAME (time, exec, put, auth, chat)\n"
    "      --wire-seed-public allow seed listeners on non-loopback addresses\n"
    "      --max-conns N      connections at once (default 100000)\n"
    "      --idle-timeout S   close idle connections after S seconds (default 300)\n"
    "      --max-buffered B   output queued for all clients together (default a\n"
    "                         quarter of RAM, at most 1G); past it the slowest\n"
    "                         readers are dropped\n"
    "      --log FILE         connection log (- for stderr)\n"
    "      --log-format F     text (default) or json\n"
    "      --threads N        event loops (default: number of CPUs)\n"
    "      --allow CIDR       serve only these peers (repeatable)\n"
    "      --deny CIDR        never serve these peers (repeatable)\n"
    "      --rate-limit-exempt CIDR  never lock these peers out after failed\n"
    "                         authentications (repeatable; default: 5 wrong keys\n"
    "                         in 60 s lock a source out for 5 s, then longer)\n"
    "      --daytime ADDR     RFC 867 daytime on TCP and UDP ADDR\n"
    "      --rfc868 ADDR      RFC 868 time on TCP and UDP ADDR\n"
    "      --http ADDR        also serve HTTP on ADDR: /metrics (Prometheus), the web\n"
    "                         page at / and its WebSocket at /ws (repeatable;\n"
    "                         HTTPS with --tls-cert)\n"
    "      --http-metrics-token-file F\n"
    "                         bearer token for /metrics from non-loopback peers\n"
    "                         (without it /metrics answers loopback peers only)\n";

static const char serve_help_tail[] =
    "  -h, --help             this help\n"
    "      --version          print the version\n\n"
    "UDP, the seed wire and the RFC 867/868 time protocols stay plain by design.\n"
    "SIGINT/SIGTERM stop accepting, let transfers finish for up to 10 s, exit 0.\n"
    "SIGHUP opens the --log file again (for logrotate).\n";

/* Long options map 1:1 to sk_server_set names; -l is "listen". The
 * services' options are added to these at run time (serve_options). */
static const struct option serve_opts[] = {
    {"listen", required_argument, NULL, 'l'},
    {"udp", required_argument, NULL, 0},
    {"services", required_argument, NULL, 0},
    {"root", required_argument, NULL, 0},
    {"key-file", required_argument, NULL, 0},
    {"no-auth", no_argument, NULL, 0},
    {"no-tls", no_argument, NULL, 0},
    {"tls", no_argument, NULL, 0},
    {"tls-cert", required_argument, NULL, 0},
    {"tls-key", required_argument, NULL, 0},
    {"wire", required_argument, NULL, 0},
    {"service", required_argument, NULL, 0},
    {"wire-seed-public", no_argument, NULL, 0},
    {"max-conns", required_argument, NULL, 0},
    {"idle-timeout", required_argument, NULL, 0},
    {"max-buffered", required_argument, NULL, 0},
    {"log", required_argument, NULL, 0},
    {"log-format", required_argument, NULL, 0},
    {"threads", required_argument, NULL, 0},
    {"allow", required_argument, NULL, 0},
    {"deny", required_argument, NULL, 0},
    {"rate-limit-exempt", required_argument, NULL, 0},
    {"daytime", required_argument, NULL, 0},
    {"rfc868", required_argument, NULL, 0},
    {"http", required_argument, NULL, 0},
    {"http-metrics-token-file", required_argument, NULL, 0},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {0},
};

#define SERVE_OPTS_MAX 96
#define HELP_COLUMN 25 /* where the help texts begin */

/* The core's options and, after them, the services' own flags. Each gets
 * a value of its own (OPT_BASE + its index): getopt takes an abbreviation
 * that several options share for the first of them when they look alike
 * (same argument, same value), so `--max 5` would have been --max-conns. */
#define OPT_BASE 256
static void serve_options(const sk_server *srv, struct option *out, size_t cap) {
  const char *name, *arg, *help;
  size_t n = 0;
  for (; serve_opts[n].name != NULL && n + 1 < cap; n++) {
    out[n] = serve_opts[n];
    if (out[n].val == 0)
      out[n].val = OPT_BASE + (int)n;
  }
  for (int i = 0; (name = sk_server_option(srv, i, &arg, &help)) != NULL; i++)
    if (help != NULL && n + 1 < cap) { /* no help: not a command-line flag */
      out[n] =
          (struct option){name, arg ? required_argument : no_argument, NULL, OPT_BASE + (int)n};
      n++;
    }
  out[n] = (struct option){0};
}

/* --help: the core's text, each service option as the core's are laid
 * out (help at HELP_COLUMN, or two spaces after a long flag), the tail. */
static void print_help(const sk_server *srv) {
  const char *name, *arg, *help;
  fputs(serve_help, stdout);
  for (int i = 0; (name = sk_server_option(srv, i, &arg, &help)) != NULL; i++) {
    int n;
    if (help == NULL)
      continue;
    n = printf("      --%s%s%s", name, arg ? " " : "", arg ? arg : "");
    printf("%*s", n < HELP_COLUMN ? HELP_COLUMN - n : 2, "");
    for (const char *p = help; *p; p++)
      if (*p == '\n')
        printf("\n%*s", HELP_COLUMN, "");
      else
        putchar(*p);
    putchar('\n');
  }
  fputs(serve_help_tail, stdout);
}

static sk_server *hup_server; /* the running server, for on_hup */

/* logrotate moved the log: sk_server_reopen_log is async-signal-safe. */
static void on_hup(int sig) {
  (void)sig;
  sk_server_reopen_log(hup_server);
}

static void handle_hup(sk_server *srv) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_hup;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  hup_server = srv;
  sigaction(SIGHUP, &sa, NULL);
}

/* The library prints nothing; what the server has to say at start-up
 * (listening on ..., warnings) is printed here, on stderr as always. */
static void print_notice(void *ctx, sk_notice_level level, const char *text) {
  fprintf(stderr, "sockit: %s%s\n", level == SK_NOTICE_WARNING ? "warning: " : "", text);
}

int cmd_serve(int argc, char **argv) {
  struct option opts[SERVE_OPTS_MAX];
  sk_server *srv;
  const char *why = NULL;
  int opt, idx, rc;

  if (sk_server_new(&srv) < 0) {
    cli_error("serve", "out of memory");
    return EXIT_FAIL;
  }
  serve_options(srv, opts, SERVE_OPTS_MAX);
  while ((opt = cli_getopt(argc, argv, ":l:h", opts, &idx)) != -1) {
    const char *name;
    if (opt == 'h') {
      print_help(srv);
      sk_server_free(srv);
      return EXIT_OK;
    }
    if (opt == 'V') {
      sk_server_free(srv);
      return cli_print_version();
    }
    if (opt == '?' || opt == ':') {
      sk_server_free(srv);
      return cli_option_error("serve", opt, argv);
    }
    name = opt == 'l' ? "listen" : opts[idx].name;
    if (sk_server_set(srv, name, optarg, &why) < 0) {
      sk_server_free(srv);
      return cli_usage_error("serve", "--%s %s: %s", name, optarg ? optarg : "",
                             why ? why : "bad value");
    }
  }
  if (optind < argc) {
    sk_server_free(srv);
    return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
  }
  handle_hup(srv);
  sk_server_on_notice(srv, print_notice, NULL);
  /* a server process of its own: ignore SIGPIPE/SIGXFSZ, raise the fd limit */
  sk_server_set_process(srv, SK_PROCESS_SIGNALS | SK_PROCESS_NOFILE);
  rc = sk_server_run(srv, 1, &why);
  signal(SIGHUP, SIG_DFL);
  if (rc < 0)
    cli_error("serve", "%s", why ? why : sk_strerror(rc));
  sk_server_free(srv);
  return rc < 0 ? EXIT_FAIL : EXIT_OK;
}
