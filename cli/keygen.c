/* keygen.c - `sockit keygen`: a new shared secret (-o FILE), the TLS
 * pre-shared key other TLS stacks need for it (--show-tls-psk), or a
 * self-signed certificate for serve --tls-cert (--cert [-o DIR]). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char keygen_help[] =
    "usage: sockit keygen [-o FILE]\n"
    "       sockit keygen --show-tls-psk [--key-file F]\n"
    "       sockit keygen --cert [-o DIR]\n"
    "Write a new key (32 random bytes as 64 hex chars) to FILE with mode 0600,\n"
    "or to the default key file ($SOCKIT_KEY_FILE, else ~/.config/sockit/key).\n"
    "An existing file is never overwritten.\n\n"
    "  -o, --output FILE  where to write the key (with --cert: the folder, default .)\n"
    "      --show-tls-psk print the TLS 1.3 identity and pre-shared key of a key file,\n"
    "                     for other TLS stacks, e.g.\n"
    "                     openssl s_client -tls1_3 -psk_identity ID -psk HEX\n"
    "      --key-file F   the key file for --show-tls-psk (default: the default key)\n"
    "      --cert         make a self-signed certificate (cert.pem, key.pem) for\n"
    "                     sockit serve --tls-cert/--tls-key, and print its pin\n"
    "  -h, --help         this help\n"
    "      --version      print the version\n";

enum { OPT_SHOW_PSK = 0x2000, OPT_CERT, OPT_KEY_FILE };

static int show_tls_psk(const char *key_file) {
  char path[4096];
  const char *why = NULL;
  sk_key key = {0};
  sk_tls_psk psk;
  int rc;
  if (key_file == NULL) {
    if (sk_key_default_path(path, sizeof(path)) < 0) {
      cli_error("keygen", "no default key path (HOME unset): pass --key-file F");
      return EXIT_FAIL;
    }
    key_file = path;
  }
  if ((rc = sk_key_load(key_file, &key, &why)) < 0) {
    cli_error("keygen", "%s: %s", key_file, why ? why : sk_strerror(rc));
    return EXIT_FAIL;
  }
  rc = sk_auth_tls_psk(&key, &psk);
  sk_key_clear(&key);
  if (rc < 0) {
    cli_error("keygen", "cannot derive the TLS key: %s", sk_strerror(rc));
    return EXIT_FAIL;
  }
  printf("identity %s\npsk ", psk.identity);
  for (size_t i = 0; i < sizeof(psk.psk); i++)
    printf("%02x", psk.psk[i]);
  printf("\n");
  sk_auth_tls_psk_clear(&psk);
  return fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
}

static int make_cert(const char *dir) {
  char pin[SK_TLS_PIN_TEXT + 1];
  const char *why = NULL;
  int rc = sk_tls_cert_generate(dir ? dir : ".", pin, &why);
  if (rc < 0) {
    cli_error("keygen", "%s: %s%s", why ? why : (dir ? dir : "."), sk_strerror(rc),
              rc == -EEXIST ? " (remove it first, or pick another -o DIR)" : "");
    return EXIT_FAIL;
  }
  printf("%s\n", pin);
  fprintf(stderr,
          "sockit keygen: wrote %s/cert.pem and %s/key.pem (key mode 0600); serve with "
          "--tls-cert %s/cert.pem --tls-key %s/key.pem, clients check --tls-pin %s\n",
          dir ? dir : ".", dir ? dir : ".", dir ? dir : ".", dir ? dir : ".", pin);
  return EXIT_OK;
}

int cmd_keygen(int argc, char **argv) {
  static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                       {"show-tls-psk", no_argument, NULL, OPT_SHOW_PSK},
                                       {"cert", no_argument, NULL, OPT_CERT},
                                       {"key-file", required_argument, NULL, OPT_KEY_FILE},
                                       {"help", no_argument, NULL, 'h'},
                                       {"version", no_argument, NULL, CLI_OPT_VERSION},
                                       {0}};
  char path[4096];
  const char *out = NULL, *key_file = NULL;
  int opt, rc, show_psk = 0, cert = 0;

  while ((opt = cli_getopt(argc, argv, ":o:h", opts, NULL)) != -1) {
    switch (opt) {
    case 'h':
      fputs(keygen_help, stdout);
      return EXIT_OK;
    case CLI_OPT_VERSION:
      return cli_print_version();
    case 'o':
      out = optarg;
      break;
    case OPT_SHOW_PSK:
      show_psk = 1;
      break;
    case OPT_CERT:
      cert = 1;
      break;
    case OPT_KEY_FILE:
      key_file = optarg;
      break;
    default:
      return cli_option_error("keygen", opt, argv);
    }
  }
  if (optind < argc)
    return cli_usage_error("keygen", "unexpected argument '%s'", argv[optind]);
  if (show_psk + cert > 1 || (show_psk && out != NULL) || (key_file != NULL && !show_psk))
    return cli_usage_error("keygen", "--show-tls-psk takes --key-file F; --cert takes -o DIR");
  if (show_psk)
    return show_tls_psk(key_file);
  if (cert)
    return make_cert(out);
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
