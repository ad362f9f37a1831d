/* keygen.c - `sockit keygen [-o FILE]`: a new shared secret. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char keygen_help[] =
    "usage: sockit keygen [-o FILE]\n"
    "Write a new key (32 random bytes as 64 hex chars) to FILE with mode 0600,\n"
    "or to the default key file ($SOCKIT_KEY_FILE, else ~/.config/sockit/key).\n"
    "An existing file is never overwritten.\n\n"
    "  -o, --output FILE  where to write the key\n"
    "  -h, --help         this help\n";

int cmd_keygen(int argc, char **argv) {
  static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                       {"help", no_argument, NULL, 'h'},
                                       {"version", no_argument, NULL, CLI_OPT_VERSION},
                                       {0}};
  char path[4096];
  const char *out = NULL;
  int opt, rc;

  while ((opt = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
    if (opt == 'h') {
      fputs(keygen_help, stdout);
      return EXIT_OK;
    }
    if (opt == CLI_OPT_VERSION)
      return cli_print_version();
    if (opt != 'o')
      return cli_option_error("keygen", opt, argv);
    out = optarg;
  }
  if (optind < argc)
    return cli_usage_error("keygen", "unexpected argument '%s'", argv[optind]);
  if (out == NULL) {
    if (sk_key_default_path(path, sizeof(path)) < 0) {
      cli_error("keygen", "no default key path (HOME unset): pass -o FILE");
      return EXIT_FAIL;
    }
    out = path;
  }
  rc = sk_key_generate(out);
  if (rc < 0) {
    cli_error("keygen", "%s: %s%s", out, sk_strerror(rc),
              rc == -EEXIST ? " (remove it first, or pick another -o FILE)" : "");
    return EXIT_FAIL;
  }
  fprintf(stderr, "sockit keygen: wrote %s (mode 0600)\n", out);
  return EXIT_OK;
}
