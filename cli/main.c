/* main.c - `sockit COMMAND ...`: one table, one file per command. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct command {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary;
} commands[] = {
    {"serve", cmd_serve, "run the server (echo, time, chat, files, exec, ...)"},
    {"keygen", cmd_keygen, "make a new key file (64 hex chars, mode 0600)"},
    {"echo", cmd_echo, "send text (or stdin) and print the echo"},
    {"time", cmd_time, "ask the time service, once or --every N seconds"},
    {"chat", cmd_chat, "chat rooms: a line editor on a terminal, scriptable when piped"},
    {"listen", cmd_listen, "raw bytes: wait for a client, pipe it to stdin/stdout"},
    {"connect", cmd_connect, "raw bytes: connect, pipe the socket to stdin/stdout"},
    {"exec", cmd_exec, "run a program on the server (needs serve --allow-exec)"},
    {"put", cmd_put, "upload files (-r: folder trees), verified and resumable"},
    {"get", cmd_get, "download files (-r: folder trees), verified, through part files"},
    {"ls", cmd_ls, "list a folder of the server's file root"},
    {"rm", cmd_rm, "remove a file (-r: a folder) from the server's file root"},
    {"bench", cmd_bench, "load generator: echo/rtt throughput and latency, held connections"},
    {"completion", cmd_completion, "print a bash or zsh completion script"},
};

const char *cli_command_name(int i) {
  return i >= 0 && (size_t)i < sizeof(commands) / sizeof(commands[0]) ? commands[i].name : NULL;
}

static int usage(FILE *out) {
  fprintf(out, "usage: sockit COMMAND [ARGS...]   (sockit COMMAND --help for more)\n\n");
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    fprintf(out, "  %-10s  %s\n", commands[i].name, commands[i].summary);
  fprintf(out, "\nAddresses: HOST:PORT, [IPv6]:PORT, :PORT, unix:/path "
               "(default 127.0.0.1:8080, or $SOCKIT_ADDR)\n");
  return out == stdout ? EXIT_OK : EXIT_USAGE;
}

static const struct command *find(const char *name) {
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    if (strcmp(name, commands[i].name) == 0)
      return &commands[i];
  return NULL;
}

/* `sockit help CMD` is `sockit CMD --help`; `sockit help` and `sockit help
 * help` the list of commands. */
static int help(int argc, char **argv) {
  const struct command *c;
  char *args[] = {argv[1], "--help", NULL};
  if (argc < 2 || strcmp(argv[1], "help") == 0)
    return usage(stdout);
  if ((c = find(argv[1])) == NULL) {
    fprintf(stderr, "sockit: unknown command '%s' (see: sockit --help)\n", argv[1]);
    return EXIT_USAGE;
  }
  return c->run(2, args);
}

int main(int argc, char **argv) {
  const struct command *c;
  opterr = 0; /* cli_option_error says it in one line */
  if (argc < 2)
    return usage(stderr);
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
    return usage(stdout);
  if (strcmp(argv[1], "help") == 0)
    return help(argc - 1, argv + 1);
  if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0 ||
      strcmp(argv[1], "version") == 0)
    return cli_print_version();
  if ((c = find(argv[1])) != NULL)
    return c->run(argc - 1, argv + 1);
  fprintf(stderr, "sockit: unknown command '%s' (see: sockit --help)\n", argv[1]);
  return EXIT_USAGE;
}
