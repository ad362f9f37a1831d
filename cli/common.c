/* common.c - helpers every command shares (cli.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "auth/keyfile.h"
#include "common/escape.h"
#include "sockit/auth.h"

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

void cli_verbose(int on, const char *cmd, const char *fmt, ...) {
  va_list ap;
  if (!on)
    return;
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

static const struct option *getopt_table; /* the last cli_getopt's */

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
               int *longindex) {
  getopt_table = longopts;
  return getopt_long(argc, argv, shortopts, longopts, longindex);
}

/* The long options of the last cli_getopt table that word (n bytes)
 * abbreviates, "--a, --b" into buf: how many (a name listed twice counts
 * once), or -1 when it is one of them exactly. */
static int long_matches(const char *word, size_t n, char *buf, size_t cap) {
  int count = 0;
  size_t used = 0;
  buf[0] = '\0';
  for (const struct option *o = getopt_table; o != NULL && o->name != NULL; o++) {
    const struct option *first = getopt_table;
    while (first < o && strcmp(first->name, o->name) != 0)
      first++;
    if (first < o || strncmp(o->name, word, n) != 0)
      continue;
    if (o->name[n] == '\0') {
      snprintf(buf, cap, "--%s", o->name);
      return -1;
    }
    if (used < cap)
      used += (size_t)snprintf(buf + used, cap - used, "%s--%s", count ? ", " : "", o->name);
    count++;
  }
  return count;
}

int cli_option_error(const char *cmd, int opt, char **argv) {
  char name[64], which[256] = "", line[512];
  const char *prev = optind > 0 ? argv[optind - 1] : "", *cur = argv[optind];
  /* A long option is the word getopt just passed; a short one is optopt.
   * getopt stays on a cluster it has not finished (-zv): the word before
   * it may be a long option that was right. */
  int in_cluster = opt == '?' && optopt > 32 && optopt < 127 && cur != NULL && cur[0] == '-' &&
                   cur[1] != '-' && strchr(cur + 1, optopt) != NULL;
  int is_long = !in_cluster && strncmp(prev, "--", 2) == 0 && prev[2] != '\0', found = 0;
  size_t n = strcspn(prev, "=");
  if (is_long) {
    snprintf(name, sizeof(name), "%.*s", (int)n, prev);
    found = long_matches(prev + 2, n - 2, which, sizeof(which));
  } else {
    snprintf(name, sizeof(name), "-%c", optopt > 32 && optopt < 127 ? optopt : '?');
  }
  if (opt == ':')
    snprintf(line, sizeof(line), "missing value for option %s", cli_safe(name));
  else if (found < 0 && prev[n] == '=') /* --json=1 */
    snprintf(line, sizeof(line), "no value goes with option %s", cli_safe(name));
  else if (found == 1) /* getopt saw one name in two entries (bench's own --timeout) */
    snprintf(line, sizeof(line), "option %s: write it out, %s", cli_safe(name), which);
  else if (found > 1)
    snprintf(line, sizeof(line), "ambiguous option %s: %s?", cli_safe(name), which);
  else
    snprintf(line, sizeof(line), "unknown option %s", cli_safe(name));
  fprintf(stderr, "sockit %s: %s (see: sockit %s --help)\n", cmd, line, cmd);
  return EXIT_USAGE;
}

int cli_print_version(void) {
  printf("sockit %s\n", sk_version());
  return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}

#define SAFE_BUFS 4
#define SAFE_CAP 1024

const char *cli_safe(const char *s) {
  static char bufs[SAFE_BUFS][SAFE_CAP];
  static unsigned next;
  char *b = bufs[next++ % SAFE_BUFS];
  size_t n = strlen(s);
  if (sk__escape_text(b, SAFE_CAP, s, n) >= SAFE_CAP)
    snprintf(b + SAFE_CAP - 4, 4, "...");
  return b;
}

void cli_write_safe(FILE *f, const char *s, size_t n) {
  char small[512], *buf = small;
  size_t need = sk__escape_text(NULL, 0, s, n);
  if (need >= sizeof(small) && (buf = malloc(need + 1)) == NULL)
    return;
  sk__escape_text(buf, need + 1, s, n);
  fwrite(buf, 1, need, f);
  if (buf != small)
    free(buf);
}

/* A number of seconds > 0 (fractions allowed), for -w/--timeout. */
static int parse_seconds(const char *s, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || !(v > 0) || v > 86400 * 365)
    return -1;
  *out = v;
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
  case 'v':
    cc->verbose = 1;
    return 1;
  case CLI_OPT_JSON:
    cc->json = 1;
    return 1;
  case 'w':
    if (parse_seconds(arg, &cc->timeout_s) < 0) {
      cli_usage_error(cc->cmd ? cc->cmd : "client",
                      "--timeout wants a positive number of seconds, not '%s'", cli_safe(arg));
      exit(EXIT_USAGE);
    }
    cc->opts.connect_timeout_ms = (int)(cc->timeout_s * 1000 + 0.5);
    if (cc->opts.connect_timeout_ms < 1)
      cc->opts.connect_timeout_ms = 1;
    return 1;
  case CLI_OPT_VERSION:
    exit(cli_print_version());
  case CLI_OPT_NO_TLS:
    cc->opts.tls = SK_TLS_OFF;
    return 1;
  case CLI_OPT_TLS:
    cc->opts.tls = SK_TLS_ON;
    return 1;
  case CLI_OPT_TLS_CA:
    cc->opts.tls_ca = arg;
    return 1;
  case CLI_OPT_TLS_PIN:
    cc->opts.tls_pin = arg;
    return 1;
  }
  return 0;
}

/* ---- the config file: $XDG_CONFIG_HOME/sockit/config --------------------
 * `key = value` lines (# comments, blank lines): address, key-file,
 * timeout. They stand in for what a flag or $SOCKIT_ADDR/$SOCKIT_KEY_FILE
 * did not say; the command line always wins. */

static struct {
  int loaded;
  char address[320], key_file[4096];
  double timeout;
} config;

static void config_path(char *buf, size_t cap) {
  const char *x = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
  if (x != NULL && x[0] != '\0')
    snprintf(buf, cap, "%s/sockit/config", x);
  else if (home != NULL && home[0] != '\0')
    snprintf(buf, cap, "%s/.config/sockit/config", home);
  else
    buf[0] = '\0';
}

static char *trim(char *s) {
  char *e = s + strlen(s);
  while (*s == ' ' || *s == '\t')
    s++;
  while (e > s && strchr(" \t\r\n", e[-1]) != NULL)
    *--e = '\0';
  return s;
}

/* One line; a problem is said (file and line) and the line ignored. */
static void config_line(const char *path, int n, char *line) {
  char *eq = strchr(line, '='), *key, *val;
  line = trim(line);
  if (line[0] == '\0' || line[0] == '#')
    return;
  if (eq == NULL) {
    fprintf(stderr, "sockit: %s line %d: expected key = value\n", path, n);
    return;
  }
  *eq = '\0';
  key = trim(line);
  val = trim(eq + 1);
  if (strcmp(key, "address") == 0) {
    snprintf(config.address, sizeof(config.address), "%s", val);
  } else if (strcmp(key, "key-file") == 0) {
    snprintf(config.key_file, sizeof(config.key_file), "%s", val);
  } else if (strcmp(key, "timeout") == 0) {
    if (parse_seconds(val, &config.timeout) < 0)
      fprintf(stderr, "sockit: %s line %d: timeout wants a positive number of seconds\n", path, n);
  } else {
    fprintf(stderr, "sockit: %s line %d: unknown key '%s' (address, key-file, timeout)\n", path, n,
            cli_safe(key));
  }
}

static void config_load(void) {
  char path[4096], line[4608];
  FILE *f;
  int n = 0;
  if (config.loaded++)
    return;
  config_path(path, sizeof(path));
  if (path[0] == '\0' || (f = fopen(path, "re")) == NULL)
    return;
  while (fgets(line, sizeof(line), f) != NULL)
    config_line(path, ++n, line);
  fclose(f);
}

static int env_set(const char *name) {
  const char *v = getenv(name);
  return v != NULL && v[0] != '\0';
}

const char *cli_default_addr(void) {
  config_load();
  if (!env_set("SOCKIT_ADDR") && config.address[0] != '\0')
    return config.address;
  return sk_client_default_addr();
}

void cli_apply_config(cli_client *cc) {
  config_load();
  if (cc->opts.key_file == NULL && !env_set("SOCKIT_KEY_FILE") && config.key_file[0] != '\0')
    cc->opts.key_file = config.key_file;
  if (cc->timeout_s == 0 && config.timeout > 0) {
    cc->timeout_s = config.timeout;
    cc->opts.connect_timeout_ms = (int)(config.timeout * 1000 + 0.5);
  }
}

void cli_take_addr(cli_client *cc, int argc, char **argv, int *argi) {
  if (*argi < argc && strchr(argv[*argi], ':') != NULL)
    cc->addr = argv[(*argi)++];
  else
    cc->addr = cli_default_addr();
  cli_apply_config(cc);
}

static const char *const step_names[] = {"resolve", "connect", "hello", "auth", "ready", "tls"};

static void on_step(void *ctx, sk_client_step step, int err, const char *detail) {
  cli_client *cc = ctx;
  const char *name =
      (unsigned)step < sizeof(step_names) / sizeof(step_names[0]) ? step_names[step] : "step";
  if (err < 0) {
    cc->failed_step = (int)step;
    cc->failed_err = err;
    snprintf(cc->failed_why, sizeof(cc->failed_why), "%s", detail ? detail : "");
  }
  if (!cc->verbose)
    return;
  switch (err < 0 ? -1 : (int)step) {
  case -1:
    fprintf(stderr, "sockit %s: %s failed: %s\n", cc->cmd, name, cli_safe(detail ? detail : ""));
    break;
  case SK_STEP_RESOLVE:
    fprintf(stderr, "sockit %s: resolving %s\n", cc->cmd, cli_safe(detail));
    break;
  case SK_STEP_CONNECT:
    fprintf(stderr, "sockit %s: connecting to %s\n", cc->cmd, detail);
    break;
  case SK_STEP_HELLO:
    fprintf(stderr, "sockit %s: connected to %s\n", cc->cmd, detail);
    break;
  case SK_STEP_AUTH:
    fprintf(stderr, "sockit %s: authenticating with the key in %s\n", cc->cmd, cli_safe(detail));
    break;
  case SK_STEP_TLS:
    fprintf(stderr, "sockit %s: TLS 1.3 handshake, %s\n", cc->cmd, detail);
    break;
  case SK_STEP_READY:
    fprintf(stderr, "sockit %s: ready (%s)\n", cc->cmd, cli_safe(detail));
    break;
  }
}

void cli_host_of(const char *addr, char *buf, size_t cap) {
  const char *colon = strrchr(addr, ':');
  size_t n = colon ? (size_t)(colon - addr) : strlen(addr);
  if (addr[0] == '[' && n >= 2 && addr[n - 1] == ']') {
    addr++;
    n -= 2;
  }
  snprintf(buf, cap, "%.*s", (int)n, addr);
}

int cli_resolve_failed(const char *cmd, const cli_client *cc) {
  char host[300];
  cli_host_of(cc->addr, host, sizeof(host));
  cli_error(cmd, "cannot resolve %s: %s", cli_safe(host),
            cc->failed_why[0] ? cc->failed_why : sk_strerror(SK_ERESOLVE));
  return EXIT_CONN;
}

/* One line for a connect that failed at cc->failed_step; the exit code. */
static int connect_failed(const char *cmd, cli_client *cc, int rc) {
  char why[1024];
  double s = cc->timeout_s > 0 ? cc->timeout_s : 10;
  const char *detail = cc->failed_why;
  switch (rc) {
  case SK_EBADADDR:
    return cli_usage_error(cmd, "bad address '%s': %s", cli_safe(cc->addr),
                           detail[0] ? detail : "use HOST:PORT, [IPv6]:PORT, :PORT or unix:/path");
  case SK_ERESOLVE:
    return cli_resolve_failed(cmd, cc);
  case SK_ENOHELLO:
    cli_error(cmd,
              "connected, but the server sent no sockit hello within %g s: is it a sockit server "
              "(or a TLS one)?",
              s);
    return EXIT_CONN;
  case SK_EBADKEY:
    sk__key_describe(detail, 0, why, sizeof(why));
    cli_error(cmd, "%s", why);
    return EXIT_CONN;
  case SK_EAUTHFAIL:
    cli_error(cmd, "%s does not accept our key: use the server's key file (--key-file F)",
              cc->addr);
    return EXIT_CONN;
  case SK_ETLSPLAIN:
    cli_error(cmd,
              "%s speaks plain sockit/1, not TLS: add --no-tls (or restart the server "
              "without --no-tls)",
              cc->addr);
    return EXIT_CONN;
  case SK_ETLSWANTED:
    if (strncmp(cc->addr, "unix:", 5) == 0)
      cli_error(cmd, "%s speaks TLS: add --tls", cc->addr);
    else if (cc->opts.tls == SK_TLS_OFF)
      cli_error(cmd, "%s speaks TLS: drop --no-tls", cc->addr);
    else
      cli_error(cmd, "%s speaks TLS keyed by its key file: give it with --key-file F", cc->addr);
    return EXIT_CONN;
  case SK_ETLSCERT:
    cli_error(cmd,
              "%s: the server's TLS certificate did not check out: give its pin "
              "(--tls-pin sha256:HEX, printed by sockit serve) or its CA (--tls-ca F)",
              cc->addr);
    return EXIT_CONN;
  case SK_ETLS:
    cli_error(cmd,
              "%s: the TLS handshake failed (a server of another version, or not "
              "sockit?)",
              cc->addr);
    return EXIT_CONN;
  case SK_EUSAGE:
    cli_error(cmd, "--no-tls cannot be combined with --tls-ca or --tls-pin");
    return EXIT_USAGE;
  case SK_EAUTHREQ:
    cli_error(cmd, "%s requires authentication: drop --no-auth and give --key-file F", cc->addr);
    return EXIT_CONN;
  case -ECONNREFUSED:
  case -ENOENT:
    cli_error(cmd, "cannot connect to %s: %s; is `sockit serve` running there?", cc->addr,
              sk_strerror(rc));
    return EXIT_CONN;
  }
  if (rc == -ETIMEDOUT && cc->failed_step == SK_STEP_CONNECT)
    cli_error(cmd, "no answer from %s within %g s while connecting", cc->addr, s);
  else if (rc == -ETIMEDOUT && cc->failed_step == SK_STEP_AUTH)
    cli_error(cmd, "connected, but %s did not answer our authentication within %g s", cc->addr, s);
  else if (cc->failed_step == SK_STEP_HELLO &&
           (rc == SK_ECLOSED || rc == SK_EBADFRAME || rc == SK_EPROTO))
    cli_error(cmd, "connected, but %s %s: is it a sockit server (or a TLS one)?", cc->addr,
              rc == SK_ECLOSED ? "closed the connection without a sockit hello"
                               : "does not speak sockit (no hello)");
  else if (cc->failed_step == SK_STEP_HELLO && rc == SK_ERATELIMIT)
    cli_error(cmd, "%s: %s", cc->addr, sk_strerror(rc));
  else if (cc->failed_step == SK_STEP_HELLO && rc <= SK_ERR_BASE && detail[0])
    /* an error frame in place of the hello (busy, forbidden): its words */
    cli_error(cmd, "%s refused the connection (%s): %s", cc->addr, sk_err_wire_name(rc),
              cli_safe(detail));
  else
    cli_error(cmd, "cannot connect to %s: %s", cc->addr, sk_strerror(rc));
  return EXIT_CONN;
}

void cli_watch_steps(const char *cmd, cli_client *cc) {
  cc->cmd = cmd;
  cc->opts.on_step = on_step;
  cc->opts.step_ctx = cc;
  cc->failed_step = 0;
  cc->failed_why[0] = '\0';
}

int cli_connect(const char *cmd, cli_client *cc, sk_client **out) {
  int rc;
  cli_watch_steps(cmd, cc);
  rc = sk_client_connect(out, cc->addr, &cc->opts);
  return rc == 0 ? EXIT_OK : connect_failed(cmd, cc, rc);
}

int cli_request_failed(const char *cmd, int rc, const sk_head *resp) {
  const char *msg = resp ? sk_error_message(resp) : NULL;
  const char *code = resp ? sk_head_str(resp, "code") : NULL;
  if (code != NULL)
    cli_error(cmd, "server said %s: %s", cli_safe(code), msg ? cli_safe(msg) : sk_strerror(rc));
  else
    cli_error(cmd, "%s", sk_strerror(rc));
  if (rc == SK_ECLOSED || rc == -ETIMEDOUT || rc == -ECONNRESET || rc == -EPIPE || rc == SK_ETLS ||
      rc == SK_EAUTHREQ || rc == SK_EAUTHFAIL || rc == SK_ERATELIMIT)
    return EXIT_CONN;
  return EXIT_FAIL;
}
