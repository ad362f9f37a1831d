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
#include "jsonl.h"
#include "progress.h"

static const char get_help[] =
    "usage: sockit get [ADDR] NAME... [-o FILE|DIR|-] [-r] [--resume] [--hash NAME]\n"
    "Download each NAME from the server's file root (default: under its base\n"
    "name in the current folder). A regular file is written to .FILE.sockit-part\n"
    "first and appears only when the hash of the whole file matches the server's;\n"
    "a link is followed; a FIFO or device is written through, in order.\n\n"
    "  -o, --output FILE  where to write it; DIR or DIR/: into that folder;\n"
    "                     -: to standard output (a bad hash is reported after\n"
    "                     the bytes, exit 1)\n"
    "  -r, --recursive    fetch folders as trees (the mirror of put -r): NAME/...\n"
    "                     lands as NAME/... here, or under -o DIR\n"
    "      --resume       continue from the part file an interrupted get left; a\n"
    "                     file here whole with the server's hash is not fetched\n"
    "      --hash NAME    sha256, xxh128, ... (default: the fastest both sides "
    "have)\n" CLI_QUIET_HELP CLI_CLIENT_HELP;

typedef struct get_job {
  const cli_client *cc;
  sk_client *c;
  sk_get_opts opts;
  const char *out; /* -o, or NULL */
  int quiet, json, recursive;
} get_job;

/* Can a rerun with --resume continue this -o? Not standard output, a FIFO
 * or a device: they are written in one go. */
static int resumable(const char *out) {
  struct stat st;
  return out == NULL || (strcmp(out, "-") != 0 &&
                         (stat(out, &st) < 0 || S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)));
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
  return rc == SK_ECLOSED || rc == -EPIPE || rc == -ECONNRESET || rc == -ETIMEDOUT || rc == SK_ETLS;
}

/* One line naming what failed: the local path for a local failure, the
 * server's name for the server's. */
static int report(const char *name, const char *where, int rc, const sk_xfer_result *res) {
  if (res->local && rc == -ESPIPE)
    cli_error("get",
              "%s: not a regular file: --resume needs one (a FIFO or device is written "
              "in one go)",
              cli_safe(where));
  else if (res->local && rc == -EISDIR)
    cli_error("get", "%s: is a folder (the file would go into it only as %s/)", cli_safe(where),
              cli_safe(where));
  else if (res->local)
    cli_error("get", "%s: %s", cli_safe(where), sk_strerror(rc));
  else if (res->message[0] != '\0')
    cli_error("get", "%s: server said %s: %s", cli_safe(name), sk_err_wire_name(rc),
              cli_safe(res->message));
  else if (rc == SK_EHASHMISMATCH && res->through)
    cli_error("get",
              "%s: the bytes written to %s differ from the server's (hash mismatch): "
              "discard them",
              cli_safe(name), strcmp(where, "-") == 0 ? "standard output" : cli_safe(where));
  else if (rc == SK_EHASHMISMATCH)
    cli_error("get",
              "%s: the hash of the bytes received differs from the server's: "
              "nothing was written (try again)",
              cli_safe(name));
  else
    cli_error("get", "%s: %s", cli_safe(name), sk_strerror(rc));
  return is_conn_error(rc) ? EXIT_CONN : EXIT_FAIL;
}

/* A get the server refused as a bad request: is the name a folder (it
 * lists)? Then what to do is get -r, as put says for a folder without -r. */
static int is_remote_folder(sk_client *c, const char *name) {
  sk_dir_entry *e = NULL;
  size_t n = 0;
  int rc = sk_client_list(c, name, &e, &n);
  sk_dir_entries_free(e, n);
  return rc == 0;
}

/* --json: one object per file, fetched or not. */
static void json_result(const char *name, const char *where, int rc, const sk_xfer_result *res) {
  sk_head *h = cli_jsonl_new();
  cli_jsonl_str(h, "name", name);
  cli_jsonl_str(h, "path", rc == 0 && res->path[0] ? res->path : where);
  if (rc == 0) {
    sk_head_set_bool(h, "ok", 1);
    sk_head_set_int(h, "total", (int64_t)res->total);
    sk_head_set_int(h, "offset", (int64_t)res->offset);
    sk_head_set_int(h, "received", (int64_t)(res->total - res->offset));
    sk_head_set_str(h, "hash", res->hash);
    sk_head_set_bool(h, "unchanged", res->unchanged);
  } else {
    cli_jsonl_error(h, rc, res->local ? NULL : res->message);
  }
  cli_jsonl_print(h);
}

/* One file: name to out (NULL: -o, else its base name here). */
static int get_one(get_job *j, const char *name, const char *out) {
  sk_xfer_result res = {0};
  cli_progress bar;
  int rc, to_stdout;
  char tmp[PATH_MAX], def[PATH_MAX];
  if (out == NULL)
    out = j->out;
  to_stdout = out != NULL && strcmp(out, "-") == 0;
  if (out == NULL) {
    snprintf(tmp, sizeof(tmp), "%s", name);
    snprintf(def, sizeof(def), "%s", basename(tmp));
    out = def;
  }
  cli_progress_start(&bar, name, j->quiet);
  j->opts.progress = cli_progress_update;
  j->opts.progress_ctx = &bar;
  j->opts.result = &res;
  cli_verbose(j->cc->verbose, j->cc->cmd, "asking for %s", cli_safe(name));
  if (to_stdout) {
    fflush(stdout);
    rc = sk_client_get_fd(j->c, name, STDOUT_FILENO, &j->opts);
  } else {
    rc = sk_client_get_file(j->c, name, out, &j->opts);
  }
  cli_progress_end(&bar);
  if (j->json && !to_stdout)
    json_result(name, res.local && res.path[0] ? res.path : out, rc, &res);
  if (rc == SK_EBADREQ && !res.local && is_remote_folder(j->c, name)) {
    cli_error("get", "%s is a folder: add -r to fetch it with everything in it", cli_safe(name));
    return EXIT_FAIL;
  }
  if (rc < 0)
    return report(name, res.local && res.path[0] ? res.path : out, rc, &res);
  if (res.unchanged && !j->quiet)
    cli_error("get", "%s: %s has it already, complete and with the same hash: nothing fetched",
              cli_safe(name), cli_safe(res.path));
  if (!j->quiet && !j->json && !to_stdout && !is_stdout(res.path))
    printf("%s\t%llu\t%s\n", cli_safe(res.path), (unsigned long long)res.total, res.hash);
  return EXIT_OK;
}

#define TREE_DEPTH_MAX 128

/* A name a listing may hold: one component, nothing that climbs out of
 * the local folder (a hostile server could send "../x" or "a/b"). */
static int safe_entry(const char *name) {
  return name[0] != '\0' && strchr(name, '/') == NULL && strcmp(name, ".") != 0 &&
         strcmp(name, "..") != 0;
}

/* get -r: the folder remote into the local folder local, as put -r sends
 * one: files fetched as get does, folders (empty ones too) made. Links,
 * special files and unfinished uploads are left out, each said once. */
static int get_tree(get_job *j, const char *remote, const char *local, int depth) {
  sk_dir_entry *e = NULL;
  size_t n = 0;
  char rsub[4097], lsub[PATH_MAX];
  struct stat st;
  int code = EXIT_OK, rc;
  if (depth > TREE_DEPTH_MAX) {
    cli_error("get", "%s: folders nested too deep", cli_safe(remote));
    return EXIT_FAIL;
  }
  if (mkdir(local, 0755) < 0 &&
      !(errno == EEXIST && stat(local, &st) == 0 && S_ISDIR(st.st_mode))) {
    cli_error("get", "%s: %s", cli_safe(local), strerror(errno == EEXIST ? ENOTDIR : errno));
    return EXIT_FAIL;
  }
  if ((rc = sk_client_list(j->c, remote, &e, &n)) < 0) {
    cli_error("get", "%s: %s", cli_safe(remote),
              rc == SK_ENOTFOUND ? "not found" : sk_strerror(rc));
    return is_conn_error(rc) ? EXIT_CONN : EXIT_FAIL;
  }
  for (size_t i = 0; i < n && code != EXIT_CONN; i++) {
    int one = EXIT_OK;
    if (!safe_entry(e[i].name) ||
        snprintf(rsub, sizeof(rsub), "%s/%s", remote, e[i].name) >= (int)sizeof(rsub) ||
        snprintf(lsub, sizeof(lsub), "%s/%s", local, e[i].name) >= (int)sizeof(lsub)) {
      cli_error("get", "%s/%s: not a name this side can use: skipped", cli_safe(remote),
                cli_safe(e[i].name));
      one = EXIT_FAIL;
    } else if (e[i].is_dir) {
      one = get_tree(j, rsub, lsub, depth + 1);
    } else if (strcmp(e[i].type, "file") == 0) {
      one = get_one(j, rsub, lsub);
    } else if (!j->quiet) {
      cli_error("get", "%s: a %s, not a file: skipped", cli_safe(rsub),
                strcmp(e[i].type, "partial") == 0 ? "part of an upload in progress" : e[i].type);
    }
    if (one != EXIT_OK && code == EXIT_OK)
      code = one;
    if (one == EXIT_CONN)
      code = EXIT_CONN;
  }
  sk_dir_entries_free(e, n);
  return code;
}

/* get -r NAME: where the tree goes (scp -r's rule): -o DIR that exists (or
 * ends in '/') holds it under NAME's base name; another -o is the tree's
 * new name; no -o: its base name here. */
static int get_recursive(get_job *j, const char *name) {
  char remote[4097], tmp[4097], local[PATH_MAX];
  size_t n;
  int len;
  snprintf(remote, sizeof(remote), "%s", name);
  for (n = strlen(remote); n > 0 && remote[n - 1] == '/'; n--)
    remote[n - 1] = '\0';
  memcpy(tmp, remote, sizeof(tmp));
  if (j->out == NULL)
    len = snprintf(local, sizeof(local), "%s", basename(tmp));
  else if (is_folder(j->out))
    len = snprintf(local, sizeof(local), "%s%s%s", j->out,
                   j->out[strlen(j->out) - 1] == '/' ? "" : "/", basename(tmp));
  else
    len = snprintf(local, sizeof(local), "%s", j->out);
  if (len < 0 || (size_t)len >= sizeof(local)) {
    cli_error("get", "%s: the local path would be too long", cli_safe(name));
    return EXIT_FAIL;
  }
  return get_tree(j, remote, local, 0);
}

int cmd_get(int argc, char **argv) {
  static const struct option opts[] = {CLI_CLIENT_LONGOPTS,
                                       CLI_QUIET_LONGOPT,
                                       {"output", required_argument, NULL, 'o'},
                                       {"resume", no_argument, NULL, 'R'},
                                       {"recursive", no_argument, NULL, 'r'},
                                       {"hash", required_argument, NULL, 'H'},
                                       {0}};
  cli_client cc = {.cmd = "get"};
  get_job j = {0};
  int opt, argi, code, rc;

  while ((opt = cli_getopt(argc, argv, ":qro:" CLI_CLIENT_SHORTOPTS, opts, NULL)) != -1) {
    if (opt == 'h') {
      fputs(get_help, stdout);
      return EXIT_OK;
    }
    if (opt == 'o')
      j.out = optarg;
    else if (opt == 'R')
      j.opts.resume = 1;
    else if (opt == 'r')
      j.recursive = 1;
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
  if (j.recursive && j.out != NULL && strcmp(j.out, "-") == 0)
    return cli_usage_error("get", "-r writes a folder tree: give -o DIR, not -o -");
  if (j.recursive && argc - argi > 1 && j.out != NULL && !is_folder(j.out))
    return cli_usage_error("get", "several folders go into a folder: give -o DIR/");
  j.quiet = cc.quiet || cc.json;
  j.json = cc.json;
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
  if (resumable(j.out))
    cli_resume_hint(argc, argv); /* a rerun with --resume skips what arrived whole */
  for (int i = argi; i < argc; i++) {
    int one = j.recursive ? get_recursive(&j, argv[i]) : get_one(&j, argv[i], NULL);
    if (one != EXIT_OK && code == EXIT_OK)
      code = one;
    if (one == EXIT_CONN)
      break;
  }
  cli_resume_hint_clear();
  sk_client_close(j.c);
  return code;
}
