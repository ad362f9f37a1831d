/* get.c - `sockit get [ADDR] NAME... [-o FILE|DIR|-] [--resume] [--hash NAME]`:
 * download files as cp and curl write them: a regular file (or a new name)
 * through a part file renamed over it only when the whole file's hash
 * matches the server's; links followed; FIFOs and devices written through;
 * `-o -` to standard output; a folder (or a path ending in '/') means into
 * it. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"

static const char get_help[] =
    "usage: sockit get [ADDR] NAME... [-o FILE|DIR|-] [--resume] [--hash NAME]\n"
    "Download each NAME from the server's file root (default: under its base\n"
    "name in the current folder). A regular file is written to .FILE.sockit-part\n"
    "first and appears only when the hash of the whole file matches the server's;\n"
    "a link is followed; a FIFO or device is written through, in order.\n\n"
    "  -o, --output FILE  where to write it; DIR or DIR/: into that folder;\n"
    "                     -: to standard output (a bad hash is reported after\n"
    "                     the bytes, exit 1)\n"
    "      --resume       continue from the part file an interrupted get left\n"
    "      --hash NAME    sha256, xxh128, ... (default: the fastest both sides "
    "have)\n" CLI_QUIET_HELP CLI_CLIENT_HELP;

typedef struct get_job {
  const cli_client *cc;
  sk_client *c;
  sk_get_opts opts;
  const char *out; /* -o, or NULL */
  int quiet;
} get_job;

/* What Ctrl-C prints: the command that continues this download (none for
 * standard output, a FIFO or a device, which cannot be continued). */
static void set_resume_hint(const get_job *j, const char *name, const char *out) {
  const char *argv[16];
  struct stat st;
  int n = 0;
  if (strcmp(out, "-") == 0 ||
      (stat(out, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)))
    return;
  argv[n++] = "sockit";
  argv[n++] = "get";
  argv[n++] = j->cc->addr;
  if (j->cc->opts.key_file != NULL) {
    argv[n++] = "--key-file";
    argv[n++] = j->cc->opts.key_file;
  }
  if (j->cc->opts.no_auth)
    argv[n++] = "--no-auth";
  argv[n++] = name;
  argv[n++] = "-o";
  argv[n++] = out;
  argv[n++] = "--resume";
  if (j->opts.hash != NULL) {
    argv[n++] = "--hash";
    argv[n++] = j->opts.hash;
  }
  cli_resume_hint(argv, n);
}

static int is_folder(const char *path) {
  struct stat st;
  size_t n = strlen(path);
  return (n > 0 && path[n - 1] == '/') || (stat(path, &st) == 0 && S_ISDIR(st.st_mode));
}

/* -o /dev/stdout and its kin: the summary line would land in the data. */
static int is_stdout(const char *path) {
  struct stat a, b;
  return fstat(STDOUT_FILENO, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
         a.st_ino == b.st_ino;
}

static int is_conn_error(int rc) {
  return rc == SK_ECLOSED || rc == -EPIPE || rc == -ECONNRESET || rc == -ETIMEDOUT;
}

/* One line naming what failed: the local path for a local failure, the
 * server's name for the server's. */
static int report(const char *name, const char *where, int rc, const sk_xfer_result *res) {
  if (res->local && rc == -ESPIPE)
    cli_error("get",
              "%s: not a regular file: --resume needs one (a FIFO or device is written "
              "in one go)",
              where);
  else if (res->local && rc == -EISDIR)
    cli_error("get", "%s: is a folder (the file would go into it only as %s/)", where, where);
  else if (res->local)
    cli_error("get", "%s: %s", where, sk_strerror(rc));
  else if (res->message[0] != '\0')
    cli_error("get", "%s: server said %s: %s", name, sk_err_wire_name(rc), res->message);
  else if (rc == SK_EHASHMISMATCH && res->through)
    cli_error("get",
              "%s: the bytes written to %s differ from the server's (hash mismatch): "
              "discard them",
              name, strcmp(where, "-") == 0 ? "standard output" : where);
  else if (rc == SK_EHASHMISMATCH)
    cli_error("get",
              "%s: the hash of the bytes received differs from the server's: "
              "nothing was written (try again)",
              name);
  else
    cli_error("get", "%s: %s", name, sk_strerror(rc));
  return is_conn_error(rc) ? EXIT_CONN : EXIT_FAIL;
}

static int get_one(get_job *j, const char *name) {
  sk_xfer_result res = {0};
  cli_progress bar;
  int rc, to_stdout = j->out != NULL && strcmp(j->out, "-") == 0;
  char tmp[PATH_MAX], def[PATH_MAX];
  const char *out = j->out;
  if (out == NULL) {
    snprintf(tmp, sizeof(tmp), "%s", name);
    snprintf(def, sizeof(def), "%s", basename(tmp));
    out = def;
  }
  set_resume_hint(j, name, out);
  cli_progress_start(&bar, name, j->quiet);
  j->opts.progress = cli_progress_update;
  j->opts.progress_ctx = &bar;
  j->opts.result = &res;
  if (to_stdout) {
    fflush(stdout);
    rc = sk_client_get_fd(j->c, name, STDOUT_FILENO, &j->opts);
  } else {
    rc = sk_client_get_file(j->c, name, out, &j->opts);
  }
  cli_progress_end(&bar);
  cli_resume_hint_clear();
  if (rc < 0)
    return report(name, res.local && res.path[0] ? res.path : out, rc, &res);
  if (!j->quiet && !to_stdout && !is_stdout(res.path))
    printf("%s\t%llu\t%s\n", res.path, (unsigned long long)res.total, res.hash);
  return EXIT_OK;
}

int cmd_get(int argc, char **argv) {
  static const struct option opts[] = {CLI_CLIENT_LONGOPTS,
                                       CLI_QUIET_LONGOPT,
                                       {"output", required_argument, NULL, 'o'},
                                       {"resume", no_argument, NULL, 'R'},
                                       {"hash", required_argument, NULL, 'H'},
                                       {0}};
  cli_client cc = {.cmd = "get"};
  get_job j = {0};
  int opt, argi, code, rc;

  while ((opt = getopt_long(argc, argv, ":qo:" CLI_CLIENT_SHORTOPTS, opts, NULL)) != -1) {
    if (opt == 'h') {
      fputs(get_help, stdout);
      return EXIT_OK;
    }
    if (opt == 'o')
      j.out = optarg;
    else if (opt == 'R')
      j.opts.resume = 1;
    else if (opt == 'H')
      j.opts.hash = optarg;
    else if (!cli_client_opt(&cc, opt, optarg))
      return cli_option_error("get", opt, argv);
  }
  argi = optind;
  cli_take_addr(&cc, argc, argv, &argi);
  if (argi >= argc)
    return cli_usage_error("get", "name at least one file to fetch");
  if (j.opts.hash != NULL && strcmp(j.opts.hash, "none") == 0)
    return cli_usage_error("get", "a download is always verified: name a hash or drop --hash");
  if (j.out != NULL && strcmp(j.out, "-") == 0 && j.opts.resume)
    return cli_usage_error("get", "--resume needs a file: standard output cannot be continued");
  if (argc - argi > 1 && j.out != NULL && strcmp(j.out, "-") != 0 && !is_folder(j.out))
    return cli_usage_error("get", "several names go into a folder: give -o DIR/");
  j.quiet = cc.quiet;
  j.cc = &cc;
  if ((code = cli_connect("get", &cc, &j.c)) != EXIT_OK)
    return code;
  sk_client_pick_hash(j.c, j.opts.hash, &rc);
  if (rc < 0) {
    cli_error("get", "hash '%s' is not offered by both sides; drop --hash for the default",
              j.opts.hash);
    sk_client_close(j.c);
    return EXIT_FAIL;
  }
  for (int i = argi; i < argc; i++) {
    int one = get_one(&j, argv[i]);
    if (one != EXIT_OK && code == EXIT_OK)
      code = one;
    if (one == EXIT_CONN)
      break;
  }
  sk_client_close(j.c);
  return code;
}
