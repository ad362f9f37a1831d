/* rm.c - `sockit rm [ADDR] NAME... [-r]`: remove files (with -r, folders
 * and everything in them) from the server's file root, and the part file
 * of an interrupted upload of them. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "jsonl.h"

static const char rm_help[] =
    "usage: sockit rm [ADDR] NAME... [-r]\n"
    "Remove each NAME from the server's file root: a file, a link (never what it\n"
    "points to), and the part file of an interrupted upload of it. A folder only\n"
    "with -r, and then everything in it.\n\n"
    "  -r, --recursive    remove folders and everything in them\n" CLI_CLIENT_HELP;

/* --json: one object per name, removed or not (as put and get). */
static void json_result(const char *name, int rc) {
  sk_head *h = cli_jsonl_new();
  cli_jsonl_str(h, "name", name);
  if (rc == 0) {
    sk_head_set_bool(h, "ok", 1);
    sk_head_set_bool(h, "removed", 1);
  } else {
    cli_jsonl_error(h, rc, NULL);
  }
  cli_jsonl_print(h);
}

static int rm_one(const cli_client *cc, sk_client *c, const char *name, int recursive) {
  int rc;
  cli_verbose(cc->verbose, cc->cmd, "removing %s", cli_safe(name));
  rc = sk_client_rm(c, name, recursive);
  if (cc->json)
    json_result(name, rc);
  if (rc == 0)
    return EXIT_OK;
  if (rc == SK_ENOTFOUND)
    cli_error("rm", "%s: not found", cli_safe(name));
  else if (rc == SK_EBADREQ && !recursive)
    cli_error("rm", "%s is a folder: add -r to remove it and everything in it", cli_safe(name));
  else if (rc == SK_EBUSY)
    cli_error("rm", "%s: being uploaded right now; try again when the upload is over",
              cli_safe(name));
  else if (rc == SK_EFORBIDDEN)
    cli_error("rm", "%s: forbidden (a name must stay inside the server's file root)",
              cli_safe(name));
  else
    return cli_request_failed("rm", rc, NULL);
  return EXIT_FAIL;
}

int cmd_rm(int argc, char **argv) {
  static const struct option opts[] = {
      CLI_CLIENT_LONGOPTS, {"recursive", no_argument, NULL, 'r'}, {0}};
  cli_client cc = {.cmd = "rm"};
  sk_client *c = NULL;
  int opt, argi, code, recursive = 0;

  while ((opt = cli_getopt(argc, argv, ":r" CLI_CLIENT_SHORTOPTS, opts, NULL)) != -1) {
    if (opt == 'h') {
      fputs(rm_help, stdout);
      return EXIT_OK;
    }
    if (opt == 'r')
      recursive = 1;
    else if (!cli_client_opt(&cc, opt, optarg))
      return cli_option_error("rm", opt, argv);
  }
  argi = optind;
  cli_take_addr(&cc, argc, argv, &argi);
  if (argi >= argc)
    return cli_usage_error("rm", "name at least one file or folder to remove");
  if ((code = cli_connect("rm", &cc, &c)) != EXIT_OK)
    return code;
  for (int i = argi; i < argc; i++) {
    int one = rm_one(&cc, c, argv[i], recursive);
    if (one != EXIT_OK && code == EXIT_OK)
      code = one;
    if (one == EXIT_CONN)
      break;
  }
  sk_client_close(c);
  return code;
}
