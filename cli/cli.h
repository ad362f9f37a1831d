/* cli.h - what the command files share: exit codes, errors, connecting. */
#ifndef SOCKIT_CLI_H
#define SOCKIT_CLI_H

#include <getopt.h>

#include "sockit/sockit.h"

/* SPEC 3 exit codes (255 as ssh does for connection/auth failures). */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_CONN = 255 };

/* One line on stderr: "sockit CMD: ..." */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Usage mistake: prints the line and a pointer to --help; returns EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The client options every client command takes. */
typedef struct cli_client {
  const char *addr;
  sk_client_opts opts;
  int quiet;
} cli_client;

#define CLI_CLIENT_LONGOPTS                                                                        \
  {"key-file", required_argument, NULL, 'K'}, {"no-auth", no_argument, NULL, 'N'},                 \
      {"help", no_argument, NULL, 'h'}, {                                                          \
    "quiet", no_argument, NULL, 'q'                                                                \
  }

#define CLI_CLIENT_HELP                                                                            \
  "      --key-file F   key file (default: $SOCKIT_KEY_FILE, else ~/.config/sockit/key)\n"         \
  "      --no-auth      do not authenticate (the server must run with --no-auth)\n"                \
  "  -q, --quiet        no progress output\n"                                                      \
  "  -h, --help         this help\n"

/* Write all n bytes to a blocking fd (EINTR and short writes handled);
 * 0 or -errno. */
int cli_write_all(int fd, const void *data, size_t n);

/* Handle a common client option; returns 1 if it was one. */
int cli_client_opt(cli_client *cc, int opt, const char *arg);

/* SPEC 2: the first positional argument is the address when it has a ':'.
 * Moves past it (*argi) when taken; sets cc->addr to it or the default. */
void cli_take_addr(cli_client *cc, int argc, char **argv, int *argi);

/* Connect and authenticate; on failure prints one line and returns
 * EXIT_CONN (or EXIT_FAIL for a key file problem). */
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

/* UDP forms of echo and time (udp.c): print the answer, return the exit code. */
int cli_udp_echo(const cli_client *cc, const char *text, size_t n, int newline);
int cli_udp_time(const cli_client *cc, sk_head *req);
/* A UDP socket to cc->addr authenticated as cc's options say; on failure
 * one line on stderr and the exit code, else EXIT_OK. */
int cli_udp_open(const char *cmd, const cli_client *cc, sk_udp **out);
int cmd_listen(int argc, char **argv);
int cmd_connect(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_put(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
