/* get.c - `sockit get [ADDR] NAME [-o FILE] [--resume] [--hash NAME]`:
 * download a file through a part file beside the output, renamed over it
 * only when the whole file's hash matches the server's. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "progress.h"

static const char get_help[] =
    "usage: sockit get [ADDR] NAME [-o FILE] [--resume] [--hash NAME]\n"
    "Download NAME from the server's file root to FILE (default: its base name\n"
    "in the current folder). Bytes go to .FILE.sockit-part first; FILE appears\n"
    "only when the hash of the whole file matches the server's.\n\n"
    "  -o, --output FILE  where to write it\n"
    "      --resume       continue from the part file an interrupted get left\n"
    "      --hash NAME    sha256, xxh128, ... (default: the fastest both sides "
    "have)\n" CLI_CLIENT_HELP;

static int report(const char *name, int rc, const sk_xfer_result *res) {
  if (res->message[0] != '\0')
    cli_error("get", "%s: server said %s: %s", name, sk_err_wire_name(rc), res->message);
  else if (rc == SK_EHASHMISMATCH)
    cli_error("get",
              "%s: the hash of the bytes received differs from the server's: "
              "nothing was written (try again)",
              name);
  else
    cli_error("get", "%s: %s", name, sk_strerror(rc));
  if (rc == SK_ECLOSED || rc == -EPIPE || rc == -ECONNRESET || rc == -ETIMEDOUT)
    return EXIT_CONN;
  return EXIT_FAIL;
}

int cmd_get(int argc, char **argv) {
  static const struct option opts[] = {CLI_CLIENT_LONGOPTS,
                                       {"output", required_argument, NULL, 'o'},
                                       {"resume", no_argument, NULL, 'R'},
                                       {"hash", required_argument, NULL, 'H'},
                                       {0}};
  cli_client cc = {0};
  sk_get_opts go = {0};
  sk_xfer_result res = {0};
  sk_client *c = NULL;
  cli_progress bar;
  const char *out = NULL, *name;
  char tmp[PATH_MAX], def[PATH_MAX];
  int opt, argi, code, rc;

  while ((opt = getopt_long(argc, argv, "hqo:", opts, NULL)) != -1) {
    if (opt == 'h') {
      fputs(get_help, stdout);
      return EXIT_OK;
    }
    if (opt == 'o')
      out = optarg;
    else if (opt == 'R')
      go.resume = 1;
    else if (opt == 'H')
      go.hash = optarg;
    else if (!cli_client_opt(&cc, opt, optarg))
      return cli_usage_error("get", "unknown option");
  }
  argi = optind;
  cli_take_addr(&cc, argc, argv, &argi);
  if (argc - argi != 1)
    return cli_usage_error("get", "name exactly one file to fetch");
  name = argv[argi];
  if (go.hash != NULL && strcmp(go.hash, "none") == 0)
    return cli_usage_error("get", "a download is always verified: name a hash or drop --hash");
  if (out == NULL) {
    snprintf(tmp, sizeof(tmp), "%s", name);
    snprintf(def, sizeof(def), "%s", basename(tmp));
    out = def;
  }
  if ((code = cli_connect("get", &cc, &c)) != EXIT_OK)
    return code;
  sk_client_pick_hash(c, go.hash, &rc);
  if (rc < 0) {
    cli_error("get", "hash '%s' is not offered by both sides; drop --hash for the default",
              go.hash);
    sk_client_close(c);
    return EXIT_FAIL;
  }
  cli_progress_start(&bar, name, cc.quiet);
  go.progress = cli_progress_update;
  go.progress_ctx = &bar;
  go.result = &res;
  rc = sk_client_get_file(c, name, out, &go);
  cli_progress_end(&bar);
  sk_client_close(c);
  if (rc < 0)
    return report(name, rc, &res);
  if (!cc.quiet)
    printf("%s\t%llu\t%s\n", out, (unsigned long long)res.total, res.hash);
  return EXIT_OK;
}
