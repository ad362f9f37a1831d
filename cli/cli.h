/* cli.h - what the command files share: exit codes, errors, connecting. */
#ifndef SOCKIT_CLI_H
#define SOCKIT_CLI_H

#include <getopt.h>
#include <stdio.h>

#include "sockit/sockit.h"

/* SPEC 3 exit codes (255 as ssh does for connection/auth failures). */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_CONN = 255 };

/* One line on stderr: "sockit CMD: ..." */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Usage mistake: prints the line and a pointer to --help; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* getopt_long, with the table kept for cli_option_error's words. */
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts,
               int *longindex);

/* Option errors (getopt's ':' and '?'): one line naming the option and the
 * command's --help: unknown, ambiguous (the options it could be), missing
 * its value, or given one it does not take; returns EXIT_USAGE. Commands
 * pass the optstring with a leading ':' so that a missing value is told
 * apart from an unknown option. */
int cli_option_error(const char *cmd, int opt, char **argv);

/* `CMD --version`, `sockit -V`, `sockit version`. */
int cli_print_version(void);

/* Untrusted text (from a server or another chat member) made safe for a
 * terminal: controls, DEL, bidi and other format characters escaped
 * (\x1b, \u202e, ...; see src/common/escape.h). cli_safe returns one of a
 * few rotating static buffers (cut at 1 KiB), for messages: at most four
 * calls per printf. cli_write_safe writes any length to f. */
const char *cli_safe(const char *s);
void cli_write_safe(FILE *f, const char *s, size_t n);

/* The client options every client command takes. */
typedef struct cli_client {
  const char *cmd; /* for messages; set by cli_connect */
  const char *addr;
  sk_client_opts opts;
  int quiet;        /* -q (only the commands with a progress bar take it) */
  int json;         /* --json: one JSON object per result on stdout */
  int verbose;      /* -v: the connection's steps on stderr */
  double timeout_s; /* --timeout/-w: connect plus hello (default 10) */
  /* the step that failed, as the library told it (sk_client_step_fn) */
  int failed_step, failed_err;
  char failed_why[512];
} cli_client;

enum {
  CLI_OPT_JSON = 0x1000,
  CLI_OPT_VERSION,
  CLI_OPT_NO_TLS,
  CLI_OPT_TLS,
  CLI_OPT_TLS_CA,
  CLI_OPT_TLS_PIN
};

/* Short options every client command takes (after its own, and after the
 * leading ':' of cli_option_error). */
#define CLI_CLIENT_SHORTOPTS "hvw:"

#define CLI_CLIENT_LONGOPTS                                                                        \
  {"key-file", required_argument, NULL, 'K'}, {"no-auth", no_argument, NULL, 'N'},                 \
      {"timeout", required_argument, NULL, 'w'},                                                   \
      {"connect-timeout", required_argument, NULL, 'w'},                                           \
      {"json", no_argument, NULL, CLI_OPT_JSON}, {"verbose", no_argument, NULL, 'v'},              \
      {"no-tls", no_argument, NULL, CLI_OPT_NO_TLS}, {"tls", no_argument, NULL, CLI_OPT_TLS},      \
      {"tls-ca", required_argument, NULL, CLI_OPT_TLS_CA},                                         \
      {"tls-pin", required_argument, NULL, CLI_OPT_TLS_PIN},                                       \
      {"version", no_argument, NULL, CLI_OPT_VERSION}, {                                           \
    "help", no_argument, NULL, 'h'                                                                 \
  }

/* Only for commands with something to silence (a progress bar). */
#define CLI_QUIET_LONGOPT                                                                          \
  { "quiet", no_argument, NULL, 'q' }
#define CLI_QUIET_HELP "  -q, --quiet        no progress bar\n"

#define CLI_TIMEOUT_HELP                                                                           \
  "  -w, --timeout S    give up when connecting and the server's hello take more\n"                \
  "                     than S seconds (default 10)\n"

#define CLI_KEY_HELP                                                                               \
  "      --key-file F   key file (default: $SOCKIT_KEY_FILE, else ~/.config/sockit/key)\n"         \
  "      --no-auth      do not authenticate (the server must run with --no-auth)\n"                \
  "      --no-tls       speak plain, unencrypted sockit/1 (a server started with --no-tls)\n"      \
  "      --tls          use TLS on a Unix socket too (a server started with --tls)\n"              \
  "      --tls-ca F     check the server's certificate against the CAs in F (PEM)\n"               \
  "      --tls-pin PIN  check the server's certificate by its pin sha256:HEX\n"

#define CLI_HELP_HELP                                                                              \
  "  -h, --help         this help\n"                                                               \
  "      --version      print the version\n"

/* The common options but -w, for a command whose --timeout means more. */
#define CLI_CLIENT_COMMON_HELP                                                                     \
  "      --json         results as JSON objects on stdout, one per line\n"                         \
  "  -v, --verbose      print the connection's steps on stderr\n" CLI_KEY_HELP CLI_HELP_HELP

#define CLI_CLIENT_HELP CLI_TIMEOUT_HELP CLI_CLIENT_COMMON_HELP

/* -v: one step on stderr as "sockit CMD: ..." when on (a command's request
 * after the connection's steps; a pipe's connection). */
void cli_verbose(int on, const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Handle a common client option; returns 1 if it was one. */
int cli_client_opt(cli_client *cc, int opt, const char *arg);

/* The default address: $SOCKIT_ADDR, else the config file's "address",
 * else 127.0.0.1:8080. */
const char *cli_default_addr(void);

/* The config file's key-file and timeout, where no flag or variable set
 * them (cli_take_addr calls it). */
void cli_apply_config(cli_client *cc);

/* SPEC 2: the first positional argument is the address when it has a ':'.
 * Moves past it (*argi) when taken; sets cc->addr to it or the default. */
void cli_take_addr(cli_client *cc, int argc, char **argv, int *argi);

/* "HOST" of "HOST:PORT" or "[HOST]:PORT", for "cannot resolve HOST". */
void cli_host_of(const char *addr, char *buf, size_t cap);

/* Route the library's connection steps (sk_client_opts.on_step) to cc:
 * -v prints them, and a failure's step and reason are kept for its line. */
void cli_watch_steps(const char *cmd, cli_client *cc);

/* "cannot resolve HOST: the resolver's reason" (cc->failed_why); EXIT_CONN. */
int cli_resolve_failed(const char *cmd, const cli_client *cc);

/* Connect and authenticate; on failure prints one line naming the step
 * that failed and returns EXIT_CONN (EXIT_USAGE for an address that is not
 * one). */
int cli_connect(const char *cmd, cli_client *cc, sk_client **out);

/* Turn a failed request's code (and the error frame, if any) into a line on
 * stderr and an exit code. */
int cli_request_failed(const char *cmd, int rc, const sk_head *resp);

/* The commands. */
int cmd_serve(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_echo(int argc, char **argv);
int cmd_time(int argc, char **argv);
int cmd_chat(int argc, char **argv);

/* A time answer (its text, or with json its object) and an echo (the
 * bytes, or the object) on stdout, for TCP and UDP alike; the exit code.
 * rtt_ms < 0: not measured. */
int cli_print_time(int json, const sk_head *resp);
int cli_print_echo(int json, const uint8_t *body, size_t n, int newline, double rtt_ms);

/* UDP forms of echo and time (udp.c): print the answer, return the exit code. */
int cli_udp_echo(cli_client *cc, const char *text, size_t n, int newline);
int cli_udp_time(cli_client *cc, sk_head *req);
/* A UDP socket to cc->addr authenticated as cc's options say; on failure
 * one line on stderr and the exit code, else EXIT_OK. */
int cli_udp_open(const char *cmd, cli_client *cc, sk_udp **out);
int cmd_listen(int argc, char **argv);
int cmd_connect(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_put(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_completion(int argc, char **argv);

/* The i-th command's name in main.c's table, NULL past the end. */
#define CLI_COMMANDS_MAX 32
const char *cli_command_name(int i);

#endif
