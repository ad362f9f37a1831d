/* bench.c - `sockit bench [ADDR] --mode echo|rtt|conns|chat ...`: options, the
 * progress line and the report. The load itself is bench_run.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "common/visible.h"

static const char bench_help[] =
    "usage: sockit bench [ADDR] [--mode echo|rtt|conns|chat|put|get] [--conns N] [--pipeline P]\n"
    "                    [--size BYTES] [--duration S] [--warmup S] [--rate N] [--senders S]\n"
    "                    [--threads 1|2] [--hold S] [--server-pid PID] [--json]\n"
    "Load a sockit server from one process and report throughput and latency.\n"
    "Every connection authenticates first, as any client does, and speaks what\n"
    "the server speaks: TLS 1.3 keyed by the secret (the default), TLS with a\n"
    "checked certificate (--tls-pin, --tls-ca), or plain (--no-tls); the report\n"
    "says which.\n\n"
    "Modes:\n"
    "  echo   N connections each keep P echo requests of BYTES in flight; every\n"
    "         echoed byte is checked, in order (default)\n"
    "  rtt    ping/pong round trips (default 1 connection, 1 in flight)\n"
    "  conns  open and authenticate N connections, hold them, and check that each\n"
    "         still answers a ping (sent spread over --hold); with --server-pid,\n"
    "         report the server's RSS growth per connection\n"
    "  chat   N members join one room; the first S of them (--senders) say\n"
    "         BYTES-byte messages, each keeping P unseen by itself in flight\n"
    "         (or all together --rate per second); reports deliveries per second\n"
    "         over all members and the say-to-delivery latency (the send time\n"
    "         travels in the message text)\n"
    "  put    upload one file (--file, or --size bytes made in /dev/shm; default\n"
    "         1 GiB) as sockit-bench.bin, timed from the request to put_ok\n"
    "  get    upload it untimed, then download it, timed, and compare the bytes\n\n"
    "Options:\n"
    "  -m, --mode M          echo, rtt, conns, chat, put or get\n"
    "  -c, --conns N         connections (echo 50, rtt 1, conns 1000, chat 100); past 28000 they\n"
    "                        come from several 127.1.0.x source addresses\n"
    "  -p, --pipeline P      requests in flight per connection (default 1; chat 16)\n"
    "  -s, --size BYTES      echo body size, chat message size (24..65536) (default 64)\n"
    "  -d, --duration S      seconds measured (default 10)\n"
    "  -w, --warmup S        seconds of traffic before measuring (default 0)\n"
    "  -r, --rate N          fixed schedule of N requests/s over all connections;\n"
    "                        latency counts from each request's slot in it, so a\n"
    "                        stall is charged to every request it delays\n"
    "                        (default: closed loop, as fast as the server answers)\n"
    "  -t, --threads T       client threads, 1 or 2 (default 1)\n"
    "      --hold S          conns: hold time (default 5)\n"
    "      --senders S       chat: members that say messages (default 1)\n"
    "      --server-pid PID  conns: the server process, for its RSS\n"
    "      --connect-batch N handshakes in flight at once (default 64)\n"
    "      --timeout S       limit for connecting all, and for the last answers (default 60)\n"
    "      --file PATH       put/get: the file to send\n"
    "      --hash NAME       put/get: sha256, xxh128, ... or none (default: the fastest\n"
    "                        both sides have)\n"
    "      --json            one JSON object on stdout instead of the table\n"
    "  -q, --quiet           no progress line\n"
    "  -v, --verbose         the first connection's steps on stderr (resolving,\n"
    "                        connecting, TLS, authentication)\n" CLI_KEY_HELP CLI_HELP_HELP
    "\nLatency is in microseconds, from an HDR-style log-linear histogram\n"
    "(buckets within 1.6 %); MB/s counts echo bodies one way, in 10^6 bytes.\n"
    "Exit status: 0 ok, 1 a check failed, 2 bad usage, 255 connect/auth failed.\n";

enum { OPT_HOLD = 256, OPT_PID, OPT_BATCH, OPT_TIMEOUT, OPT_JSON, OPT_FILE, OPT_HASH, OPT_SENDERS };

static const struct option bench_opts_long[] = {
    {"mode", required_argument, NULL, 'm'},
    {"conns", required_argument, NULL, 'c'},
    {"pipeline", required_argument, NULL, 'p'},
    {"size", required_argument, NULL, 's'},
    {"duration", required_argument, NULL, 'd'},
    {"warmup", required_argument, NULL, 'w'},
    {"rate", required_argument, NULL, 'r'},
    {"threads", required_argument, NULL, 't'},
    {"hold", required_argument, NULL, OPT_HOLD},
    {"server-pid", required_argument, NULL, OPT_PID},
    {"connect-batch", required_argument, NULL, OPT_BATCH},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"json", no_argument, NULL, OPT_JSON},
    {"file", required_argument, NULL, OPT_FILE},
    {"hash", required_argument, NULL, OPT_HASH},
    {"senders", required_argument, NULL, OPT_SENDERS},
    CLI_QUIET_LONGOPT,
    CLI_CLIENT_LONGOPTS,
    {0},
};

/* ---- options ------------------------------------------------------------ */

static int parse_int(const char *s, long long lo, long long hi, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end != '\0' || v < lo || v > hi)
    return -1;
  *out = v;
  return 0;
}

static int parse_secs(const char *s, double lo, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || !(v >= lo) || v > 1e7)
    return -1;
  *out = v;
  return 0;
}

static const char *const mode_names[] = {"echo", "rtt", "conns", "chat", "put", "get"};

static int parse_mode(const char *s, enum bench_mode *m) {
  for (int i = 0; i < (int)(sizeof(mode_names) / sizeof(mode_names[0])); i++)
    if (strcmp(s, mode_names[i]) == 0) {
      *m = (enum bench_mode)i;
      return 0;
    }
  return -1;
}

/* One option into o; returns 0, or -1 after printing the usage error. */
static int take_opt(bench_opts *o, int opt, const char *arg, int *set) {
  long long v = 0;
  int bad = 0;
  switch (opt) {
  case 'm':
    return parse_mode(arg, &o->mode) < 0
               ? -cli_usage_error("bench", "--mode: echo, rtt, conns, chat, put or get")
               : 0;
  case 'c':
    bad = parse_int(arg, 1, 1000000, &v);
    o->conns = (int)v;
    *set |= 1;
    break;
  case 'p':
    bad = parse_int(arg, 1, 65536, &v);
    o->pipeline = (int)v;
    *set |= 4;
    break;
  case OPT_SENDERS:
    bad = parse_int(arg, 1, 1000000, &v);
    o->senders = (int)v;
    break;
  case 's':
    bad = parse_int(arg, 0, 1ll << 40, &v);
    o->size = (size_t)v;
    *set |= 2;
    break;
  case 't':
    bad = parse_int(arg, 1, 2, &v);
    o->threads = (int)v;
    break;
  case OPT_PID:
    bad = parse_int(arg, 1, 1 << 30, &v);
    o->server_pid = (long)v;
    break;
  case OPT_BATCH:
    bad = parse_int(arg, 1, 100000, &v);
    o->connect_batch = (int)v;
    break;
  case 'd':
    bad = parse_secs(arg, 0.001, &o->duration);
    break;
  case 'w':
    bad = parse_secs(arg, 0, &o->warmup);
    break;
  case 'r':
    bad = parse_secs(arg, 0.001, &o->rate);
    break;
  case OPT_HOLD:
    bad = parse_secs(arg, 0, &o->hold);
    break;
  case OPT_TIMEOUT:
    bad = parse_secs(arg, 0.1, &o->timeout);
    break;
  case OPT_JSON:
    o->json = 1;
    break;
  case OPT_FILE:
    o->file = arg;
    break;
  case OPT_HASH:
    o->hash = arg;
    break;
  default:
    return -cli_usage_error("bench", "unknown option");
  }
  return bad ? -cli_usage_error("bench", "bad value '%s' for an option", arg) : 0;
}

/* chat: the text carries a 24-byte stamp, and a say is at most 64 KiB. */
static int check_chat(const bench_opts *o) {
  if (o->mode != BENCH_CHAT)
    return 0;
  if (o->size < 24 || o->size > 65536) {
    cli_usage_error("bench", "--size: chat messages are 24 to 65536 bytes");
    return -1;
  }
  if (o->senders > o->conns) {
    cli_usage_error("bench", "--senders: at most --conns (%d)", o->conns);
    return -1;
  }
  return 0;
}

/* Returns -1 to stop with EXIT_USAGE, 1 after --help, 0 to run. */
static int parse_args(int argc, char **argv, bench_opts *o, cli_client *ccp) {
  cli_client cc = {.cmd = "bench"};
  int opt, argi, set = 0;
  *o = (bench_opts){.mode = BENCH_ECHO,
                    .pipeline = 1,
                    .threads = 1,
                    .size = 64,
                    .duration = 10,
                    .hold = 5,
                    .timeout = 60,
                    .connect_batch = 64,
                    .senders = 1};
  while ((opt = cli_getopt(argc, argv, ":hqvm:c:p:s:d:w:r:t:", bench_opts_long, NULL)) != -1) {
    if (opt == 'h') {
      fputs(bench_help, stdout);
      return 1;
    }
    if (opt == '?' || opt == ':') {
      cli_option_error("bench", opt, argv);
      return -1;
    }
    /* -w is bench's warmup; --timeout and --json are bench's own too */
    if (opt == 'w' || !cli_client_opt(&cc, opt, optarg))
      if (take_opt(o, opt, optarg, &set) < 0)
        return -1;
  }
  argi = optind;
  cli_take_addr(&cc, argc, argv, &argi);
  if (argi < argc) {
    cli_usage_error("bench", "unexpected argument '%s'", argv[argi]);
    return -1;
  }
  o->addr = cc.addr;
  o->client = cc.opts;
  o->quiet = cc.quiet;
  *ccp = cc;
  if (!(set & 1))
    o->conns = o->mode == BENCH_ECHO    ? 50
               : o->mode == BENCH_CONNS ? 1000
               : o->mode == BENCH_CHAT  ? 100
                                        : 1;
  if (!(set & 4) && o->mode == BENCH_CHAT)
    o->pipeline = 16;
  if (!(set & 2) && o->mode >= BENCH_PUT)
    o->size = 1u << 30;
  if (o->mode == BENCH_ECHO && o->size > (1u << 30)) {
    cli_usage_error("bench", "--size: echo bodies are at most 1 GiB");
    return -1;
  }
  return check_chat(o);
}

/* ---- progress and report ------------------------------------------------ */

typedef struct progress_state {
  uint64_t last_done;
  double last_elapsed;
  int drawn;
} progress_state;

static void show_progress(void *ctx, const bench_status *st) {
  static const char *const phases[] = {"connecting", "warming up", "measuring", "holding"};
  progress_state *ps = ctx;
  double dt = st->elapsed - ps->last_elapsed;
  double rate = dt > 0 ? (double)(st->done - ps->last_done) / dt : 0;
  if (st->phase == 0)
    fprintf(stderr, "\r\033[K%s: %d/%d ready", phases[0], st->ready, st->total);
  else
    fprintf(stderr, "\r\033[K%s: %.1f s, %" PRIu64 " answers, %.0f/s, %d/%d connections",
            phases[st->phase], st->elapsed, st->done, rate, st->ready - st->lost, st->total);
  ps->last_done = st->done;
  ps->last_elapsed = st->elapsed;
  ps->drawn = 1;
}

static double us(const bench_result *r, double p) {
  return (double)sk__hist_percentile(&r->hist, p) / 1000.0;
}

/* A JSON string literal of s: the address, the hash and the error, which
 * may quote a server's words, escaped as the log escapes peers' text (no
 * C1 CSI or bidi override reaches a terminal showing the JSON). */
static void json_string(const char *s) {
  size_t n = strlen(s), cap = 6 * n + 3; /* every byte may become \ufffd */
  char *q = malloc(cap);
  if (q == NULL) {
    fputs("\"\"", stdout);
    return;
  }
  fwrite(q, 1, sk__quote_visible(q, cap, s, n), stdout);
  free(q);
}

static const char *mode_name(enum bench_mode m) {
  return mode_names[m];
}

static void report_json(const bench_opts *o, const bench_result *r) {
  double s = r->seconds > 0 ? r->seconds : 1;
  printf("{\"mode\":\"%s\",\"addr\":", mode_name(o->mode));
  json_string(o->addr);
  printf(",\"security\":");
  json_string(o->security_text);
  printf(",\"conns\":%d,\"pipeline\":%d,\"size\":%zu,\"threads\":%d,\"rate\":%.0f", o->conns,
         o->pipeline, o->mode == BENCH_ECHO || o->mode >= BENCH_CHAT ? o->size : 0, o->threads,
         o->rate);
  if (o->mode == BENCH_CHAT) {
    printf(",\"senders\":%d,\"members\":%d,\"seconds\":%.3f,\"messages\":%" PRIu64
           ",\"messages_s\":%.1f,\"deliveries\":%" PRIu64 ",\"deliveries_s\":%.1f",
           o->senders, r->established, r->seconds, r->says, (double)r->says / s, r->requests,
           (double)r->requests / s);
  } else if (o->mode >= BENCH_PUT) {
    printf(",\"bytes\":%" PRIu64 ",\"seconds\":%.4f,\"mb_s\":%.1f,\"hash\":", r->body_bytes,
           r->seconds, (double)r->body_bytes / 1e6 / s);
    json_string(r->hash);
  } else if (o->mode == BENCH_CONNS) {
    long growth =
        r->rss_before_kb >= 0 && r->rss_after_kb >= 0 ? r->rss_after_kb - r->rss_before_kb : -1;
    printf(",\"established\":%d,\"answered_ping\":%d,\"setup_s\":%.3f,\"hold_s\":%.1f,"
           "\"server_rss_before_kb\":%ld,\"server_rss_after_kb\":%ld,\"server_rss_growth_kb\":%ld,"
           "\"rss_per_conn_kb\":%.2f",
           r->established, r->answered, r->setup_s, o->hold, r->rss_before_kb, r->rss_after_kb,
           growth, growth >= 0 && r->answered > 0 ? (double)growth / r->answered : -1.0);
  } else {
    printf(",\"seconds\":%.3f,\"requests\":%" PRIu64 ",\"req_s\":%.1f,\"mb_s\":%.3f", r->seconds,
           r->requests, (double)r->requests / s, (double)r->body_bytes / 1e6 / s);
  }
  if (o->mode < BENCH_PUT)
    printf(",\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
           "\"mean_us\":%.1f",
           us(r, 50), us(r, 90), us(r, 99), us(r, 99.9), us(r, 100),
           sk__hist_mean(&r->hist) / 1000);
  printf(",\"ok\":%s", r->code == EXIT_OK ? "true" : "false");
  if (r->code != EXIT_OK) {
    printf(",\"error\":");
    json_string(r->error);
  }
  printf("}\n");
}

static void report_latency(const bench_result *r) {
  printf("  %-14s %10s %10s %10s %10s %10s\n", "latency (us)", "p50", "p90", "p99", "p99.9", "max");
  printf("  %-14s %10.1f %10.1f %10.1f %10.1f %10.1f\n", "", us(r, 50), us(r, 90), us(r, 99),
         us(r, 99.9), us(r, 100));
}

static void report_file(const bench_opts *o, const bench_result *r) {
  double s = r->seconds > 0 ? r->seconds : 1;
  printf("sockit bench: %s %s, %" PRIu64 " bytes\n", mode_name(o->mode), o->addr, r->body_bytes);
  printf("  %-14s %.4f s, %.1f MB/s\n", "transfer", r->seconds, (double)r->body_bytes / 1e6 / s);
  printf("  %-14s %s\n", "verified by", r->hash);
}

static void report_chat(const bench_opts *o, const bench_result *r) {
  double s = r->seconds > 0 ? r->seconds : 1;
  printf("sockit bench: chat %s, %d members, %d saying %zu-byte messages", o->addr, r->established,
         o->senders, o->size);
  if (o->rate > 0)
    printf(" at %.0f/s\n", o->rate);
  else
    printf(", %d in flight each\n", o->pipeline);
  printf("  %-14s %" PRIu64 " in %.3f s, %.0f/s\n", "messages", r->says, r->seconds,
         (double)r->says / s);
  printf("  %-14s %" PRIu64 ", %.0f/s, every byte verified\n", "deliveries", r->requests,
         (double)r->requests / s);
  report_latency(r);
}

static void report_load(const bench_opts *o, const bench_result *r) {
  double s = r->seconds > 0 ? r->seconds : 1;
  printf("sockit bench: %s %s, %d connection%s", mode_name(o->mode), o->addr, o->conns,
         o->conns == 1 ? "" : "s");
  if (o->mode == BENCH_CONNS) {
    long growth =
        r->rss_before_kb >= 0 && r->rss_after_kb >= 0 ? r->rss_after_kb - r->rss_before_kb : -1;
    printf(", held %.1f s\n", o->hold);
    printf("  %-14s %d of %d in %.3f s\n", "authenticated", r->established, o->conns, r->setup_s);
    printf("  %-14s %d of %d\n", "answered ping", r->answered, o->conns);
    if (growth >= 0)
      printf("  %-14s %ld KiB (%.2f KiB per connection)\n", "server RSS", growth,
             r->answered > 0 ? (double)growth / r->answered : 0.0);
    else
      printf("  %-14s not measured (give --server-pid PID)\n", "server RSS");
  } else {
    printf(" x %d in flight%s", o->pipeline, o->rate > 0 ? "" : "\n");
    if (o->rate > 0)
      printf(", fixed rate %.0f/s\n", o->rate);
    printf("  %-14s %" PRIu64 " in %.3f s%s\n", "requests", r->requests, r->seconds,
           o->mode == BENCH_ECHO ? ", every byte verified" : "");
    printf("  %-14s %.0f req/s", "throughput", (double)r->requests / s);
    if (o->mode == BENCH_ECHO)
      printf(", %.1f MB/s of %zu-byte bodies", (double)r->body_bytes / 1e6 / s, o->size);
    printf("\n");
  }
  report_latency(r);
}

static void report_table(const bench_opts *o, const bench_result *r) {
  if (o->mode >= BENCH_PUT)
    report_file(o, r);
  else if (o->mode == BENCH_CHAT)
    report_chat(o, r);
  else
    report_load(o, r);
  printf("  %-14s %s\n", "security", o->security_text);
}

/* One connection through the library first, as any client command makes
 * it: a server that cannot be reached, refuses the key or speaks another
 * mode (TLS or plain) is told in the same words, and the engine's
 * connections then speak what this one found. The put/get modes go on
 * over it (*out); the others close it. */
static int probe(bench_opts *o, cli_client *cc, sk_client **out) {
  sk_client *c = NULL;
  const char *sec, *cipher;
  int rc = cli_connect("bench", cc, &c);
  if (rc != EXIT_OK)
    return rc;
  sec = sk_client_security(c);
  cipher = sk_client_tls_cipher(c);
  o->security = strcmp(sec, "tls-psk") == 0    ? BENCH_TLS_PSK
                : strcmp(sec, "tls-cert") == 0 ? BENCH_TLS_CERT
                                               : BENCH_PLAIN;
  if (o->security == BENCH_PLAIN)
    snprintf(o->security_text, sizeof(o->security_text), "plain");
  else
    snprintf(o->security_text, sizeof(o->security_text), "%s (%s), %s", sk_client_tls_version(c),
             o->security == BENCH_TLS_PSK ? "psk" : "certificate", cipher ? cipher : "?");
  if (o->mode >= BENCH_PUT)
    *out = c;
  else
    sk_client_close(c);
  return EXIT_OK;
}

int cmd_bench(int argc, char **argv) {
  bench_opts o;
  cli_client cc;
  sk_client *files = NULL;
  bench_result *r;
  progress_state ps = {0};
  int rc = parse_args(argc, argv, &o, &cc);
  if (rc != 0)
    return rc > 0 ? EXIT_OK : EXIT_USAGE;
  if ((rc = probe(&o, &cc, &files)) != EXIT_OK)
    return rc;
  if ((r = malloc(sizeof(*r))) == NULL) {
    sk_client_close(files);
    cli_error("bench", "out of memory");
    return EXIT_FAIL;
  }
  int live = !o.quiet && isatty(STDERR_FILENO);
  if (o.mode >= BENCH_PUT) {
    memset(r, 0, sizeof(*r));
    rc = bench_files(&o, r, files);
  } else {
    rc = bench_run(&o, r, live ? show_progress : NULL, &ps);
  }
  if (ps.drawn)
    fputs("\r\033[K", stderr);
  if (rc == EXIT_USAGE) {
    cli_usage_error("bench", "%s", cli_safe(r->error));
  } else {
    if (o.json)
      report_json(&o, r);
    else if (rc == EXIT_OK || o.mode == BENCH_CONNS || (r->interrupted && r->seconds > 0))
      report_table(&o, r);
    if (rc != EXIT_OK)
      cli_error("bench", "%s", cli_safe(r->error)); /* may quote the server */
  }
  fflush(stdout);
  free(r);
  return rc;
}
