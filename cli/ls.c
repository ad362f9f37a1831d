/* ls.c - `sockit ls [ADDR] [DIR]`: a folder of the server's file root as a
 * table: type, size in human units, mtime, name. */
#include <stdio.h>
#include <time.h>

#include "cli.h"
#include "progress.h"

static const char ls_help[] =
    "usage: sockit ls [ADDR] [DIR]\n"
    "List a folder of the server's file root (default: the root):\n"
    "type, size, modification time and name; folders end in '/'.\n\n" CLI_CLIENT_HELP;

static void print_entry(const sk_dir_entry *e) {
  char size[32], when[32];
  time_t t = (time_t)e->mtime;
  struct tm tm;
  if (e->is_dir)
    snprintf(size, sizeof(size), "-");
  else
    cli_human_bytes((double)e->length, size, sizeof(size));
  if (localtime_r(&t, &tm) == NULL || strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm) == 0)
    snprintf(when, sizeof(when), "?");
  printf("%-4s %10s  %s  %s%s\n", e->is_dir ? "dir" : "file", size, when, e->name,
         e->is_dir ? "/" : "");
}

int cmd_ls(int argc, char **argv) {
  static const struct option opts[] = {CLI_CLIENT_LONGOPTS, {0}};
  cli_client cc = {.cmd = "ls"};
  sk_client *c = NULL;
  sk_dir_entry *entries = NULL;
  size_t n = 0;
  int opt, argi, code, rc;

  while ((opt = getopt_long(argc, argv, ":" CLI_CLIENT_SHORTOPTS, opts, NULL)) != -1) {
    if (opt == 'h') {
      fputs(ls_help, stdout);
      return EXIT_OK;
    }
    if (!cli_client_opt(&cc, opt, optarg))
      return cli_option_error("ls", opt, argv);
  }
  argi = optind;
  cli_take_addr(&cc, argc, argv, &argi);
  if (argc - argi > 1)
    return cli_usage_error("ls", "name at most one folder");
  if ((code = cli_connect("ls", &cc, &c)) != EXIT_OK)
    return code;
  rc = sk_client_list(c, argi < argc ? argv[argi] : "", &entries, &n);
  if (rc < 0) {
    code = cli_request_failed("ls", rc, NULL);
  } else {
    for (size_t i = 0; i < n; i++)
      print_entry(&entries[i]);
    code = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
  }
  sk_dir_entries_free(entries, n);
  sk_client_close(c);
  return code;
}
