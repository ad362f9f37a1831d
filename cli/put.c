/* put.c - `sockit put [ADDR] FILE... [--as NAME] [-r] [--resume] [--hash NAME]`:
 * upload files (and, with -r, folder trees as scp -r does) to the files
 * service. Exit 0 only when the server confirmed every file's hash. */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "jsonl.h"
#include "progress.h"

#define NAME_CAP 4097

static const char put_help[] =
    "usage: sockit put [ADDR] FILE... [--as NAME|DIR/] [-r] [--resume] [--hash NAME]\n"
    "Upload each FILE to the server's file root under its base name (or NAME).\n"
    "The server writes a hidden part file and publishes it only when every\n"
    "byte arrived and the hash matches.\n\n"
    "      --as NAME      the name on the server (one FILE or folder only);\n"
    "                     --as DIR/ puts every FILE into the folder DIR\n"
    "  -r, --recursive    send folders as trees: DIR/... lands as NAME/...\n"
    "                     (empty folders included)\n"
    "      --resume       continue an interrupted upload (asks stat first); a file\n"
    "                     the server has whole with the same hash is not sent\n"
    "      --exclusive    refuse to replace a file that exists on the server\n"
    "      --hash NAME    sha256, xxh128, ... (default: the fastest both sides "
    "have)\n" CLI_QUIET_HELP CLI_CLIENT_HELP;

#define BUSY_WAIT_S 10.0         /* how long a busy name is retried */
#define HINT_STAT_MIN (1u << 20) /* plain puts this large first look for a part file */

typedef struct put_job {
  cli_client *cc;
  sk_client *c;
  sk_put_opts opts;
  int quiet, json, failed_conn;
} put_job;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A plain put truncates the server's part file: say when --resume would
 * have continued one (asked only for files where it matters). */
static void suggest_resume(put_job *j, const char *path, const char *name) {
  struct stat st;
  sk_file_stat remote;
  char have[32];
  if (j->opts.resume || j->quiet || stat(path, &st) < 0 || (uint64_t)st.st_size < HINT_STAT_MIN ||
      sk_client_stat(j->c, name, &remote) < 0 || remote.partial == 0 ||
      remote.partial > (uint64_t)st.st_size)
    return;
  cli_human_bytes((double)remote.partial, have, sizeof(have));
  cli_error("put",
            "%s: the server holds %s of an interrupted upload of it; sending it all again "
            "(add --resume to continue from there)",
            cli_safe(name), have);
}

/* Another upload of the name is still open on the server, typically the
 * one just interrupted, whose connection the server has not seen close
 * yet: wait for it with a fresh connection (the refused put's body may be
 * half sent). */
static int retry_busy(put_job *j, const char *path, const char *name, int rc) {
  double until = now_s() + BUSY_WAIT_S, pause = 0.1;
  int said = 0;
  while (rc == SK_EBUSY && now_s() < until) {
    if (!said && !j->quiet)
      cli_error("put",
                "%s: another upload of it is still open on the server (an interrupted "
                "one?); retrying for up to %.0f s",
                cli_safe(name), BUSY_WAIT_S);
    said = 1;
    struct timespec ts = {0, (long)(pause * 1e9)};
    nanosleep(&ts, NULL);
    pause = pause * 2 < 0.5 ? pause * 2 : 0.5;
    sk_client_close(j->c);
    j->c = NULL;
    if (cli_connect("put", j->cc, &j->c) != EXIT_OK) {
      j->failed_conn = 1;
      return SK_ECLOSED;
    }
    rc = sk_client_put_file(j->c, path, name, &j->opts);
  }
  return rc;
}

/* --json: one object per file, sent or not. */
static void json_result(const char *path, const char *name, int rc, const sk_xfer_result *res) {
  sk_head *h = cli_jsonl_new();
  cli_jsonl_str(h, "name", name);
  cli_jsonl_str(h, "path", path);
  if (rc == 0) {
    sk_head_set_bool(h, "ok", 1);
    sk_head_set_int(h, "total", (int64_t)res->total);
    sk_head_set_int(h, "offset", (int64_t)res->offset);
    sk_head_set_int(h, "sent", (int64_t)(res->unchanged ? 0 : res->total - res->offset));
    if (res->hash[0])
      sk_head_set_str(h, "hash", res->hash);
    sk_head_set_bool(h, "unchanged", res->unchanged);
  } else {
    cli_jsonl_error(h, rc, res->message);
  }
  cli_jsonl_print(h);
}

static int put_one(put_job *j, const char *path, const char *name) {
  sk_xfer_result res;
  cli_progress bar;
  int rc;
  suggest_resume(j, path, name);
  cli_progress_start(&bar, name, j->quiet);
  j->opts.progress = cli_progress_update;
  j->opts.progress_ctx = &bar;
  j->opts.result = &res;
  cli_verbose(j->cc->verbose, j->cc->cmd, "uploading %s as %s", cli_safe(path), cli_safe(name));
  rc = sk_client_put_file(j->c, path, name, &j->opts);
  if (rc == SK_EBUSY)
    rc = retry_busy(j, path, name, rc);
  cli_progress_end(&bar);
  if (j->json)
    json_result(path, name, rc, &res);
  if (rc == 0) {
    if (res.unchanged && !j->quiet)
      cli_error("put",
                "%s: the server has it already, complete and with the same hash: nothing "
                "sent",
                cli_safe(name));
    if (!j->quiet && !j->json)
      printf("%s\t%llu\t%s\n", cli_safe(name), (unsigned long long)res.total,
             res.hash[0] ? res.hash : "-");
    return EXIT_OK;
  }
  if (j->failed_conn)
    return EXIT_FAIL;
  if (rc == SK_EHASHMISMATCH && res.message[0] == '\0')
    cli_error("put", "%s: the server's hash differs from ours: the file was not confirmed",
              cli_safe(name));
  else if (res.message[0] != '\0')
    cli_error("put", "%s: server said %s: %s", cli_safe(name), sk_err_wire_name(rc),
              cli_safe(res.message));
  else if (rc > -4096 && rc < 0 && rc != -EPIPE && rc != -ECONNRESET && rc != -ETIMEDOUT)
    cli_error("put", "%s: %s", cli_safe(path), sk_strerror(rc));
  else
    cli_error("put", "%s: %s", cli_safe(name), sk_strerror(rc));
  if (rc == SK_ECLOSED || rc == -EPIPE || rc == -ECONNRESET || rc == -ETIMEDOUT || rc == SK_ETLS)
    j->failed_conn = 1;
  return EXIT_FAIL;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of a folder, sorted so a tree is sent in a stable order. */
static int read_names(const char *dir, char ***out, size_t *n) {
  DIR *d = opendir(dir);
  struct dirent *de;
  char **v = NULL;
  size_t cap = 0;
  *n = 0;
  if (d == NULL)
    return -errno;
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if (*n == cap) {
      char **bigger = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof(*v));
      if (bigger == NULL)
        break;
      v = bigger;
    }
    if ((v[*n] = strdup(de->d_name)) == NULL)
      break;
    (*n)++;
  }
  closedir(d);
  if (*n > 1) /* an empty folder has no array to sort */
    qsort(v, *n, sizeof(*v), by_name);
  *out = v;
  return de == NULL ? 0 : -ENOMEM;
}

static int put_path(put_job *j, const char *path, const char *name, int recursive);

static int put_tree(put_job *j, const char *dir, const char *name) {
  char **names = NULL, sub[PATH_MAX], subname[NAME_CAP];
  size_t n = 0;
  int code = EXIT_OK, rc = read_names(dir, &names, &n);
  if (rc < 0) {
    cli_error("put", "%s: %s", cli_safe(dir), sk_strerror(rc));
    code = EXIT_FAIL;
  }
  if (rc == 0 && n == 0 && (rc = sk_client_mkdir(j->c, name)) < 0) {
    /* an empty folder is sent as itself, as scp -r does */
    cli_error("put", "%s: cannot make the folder on the server: %s", cli_safe(name),
              sk_strerror(rc));
    code = rc == SK_ECLOSED || rc == -EPIPE || rc == -ECONNRESET || rc == SK_ETLS ? EXIT_CONN
                                                                                  : EXIT_FAIL;
  }
  for (size_t i = 0; i < n && code == EXIT_OK; i++) {
    if (snprintf(sub, sizeof(sub), "%s/%s", dir, names[i]) >= (int)sizeof(sub) ||
        snprintf(subname, sizeof(subname), "%s/%s", name, names[i]) >= (int)sizeof(subname)) {
      cli_error("put", "%s/%s: path too long", cli_safe(dir), cli_safe(names[i]));
      code = EXIT_FAIL;
    } else {
      code = put_path(j, sub, subname, 1);
    }
  }
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
  return code;
}

/* A local FILE that cannot be sent: one line, and its --json result. */
static int path_failed(put_job *j, const char *path, const char *name, int rc, const char *why) {
  sk_xfer_result res = {0};
  cli_error("put", "%s%s", cli_safe(path), why);
  if (j->json) {
    snprintf(res.message, sizeof(res.message), "%s", why[0] == ':' ? why + 2 : why + 1);
    json_result(path, name, rc, &res);
  }
  return EXIT_FAIL;
}

static int put_path(put_job *j, const char *path, const char *name, int recursive) {
  struct stat st;
  char why[256];
  if (stat(path, &st) < 0) {
    int rc = -errno;
    snprintf(why, sizeof(why), ": %s", strerror(errno));
    return path_failed(j, path, name, rc, why);
  }
  if (S_ISDIR(st.st_mode)) {
    if (recursive)
      return put_tree(j, path, name);
    return path_failed(j, path, name, -EISDIR,
                       " is a folder: add -r to send it with everything in it");
  }
  if (!S_ISREG(st.st_mode))
    return path_failed(j, path, name, -EINVAL, " is not a regular file");
  return put_one(j, path, name);
}

/* The name on the server for FILE: --as NAME, --as DIR/ + its base name,
 * else its base name. */
static int server_name(const char *as, const char *path, char *out, size_t cap) {
  char tmp[PATH_MAX];
  size_t n, alen = as != NULL ? strlen(as) : 0;
  if (as != NULL && (alen == 0 || as[alen - 1] != '/'))
    return snprintf(out, cap, "%s", as) >= (int)cap ? -ENAMETOOLONG : 0;
  snprintf(tmp, sizeof(tmp), "%s", path);
  n = strlen(tmp);
  while (n > 1 && tmp[n - 1] == '/')
    tmp[--n] = '\0';
  return snprintf(out, cap, "%s%s", as != NULL ? as : "", basename(tmp)) >= (int)cap ? -ENAMETOOLONG
                                                                                     : 0;
}

int cmd_put(int argc, char **argv) {
  static const struct option opts[] = {CLI_CLIENT_LONGOPTS,
                                       CLI_QUIET_LONGOPT,
                                       {"as", required_argument, NULL, 'A'},
                                       {"recursive", no_argument, NULL, 'r'},
                                       {"resume", no_argument, NULL, 'R'},
                                       {"exclusive", no_argument, NULL, 'X'},
                                       {"hash", required_argument, NULL, 'H'},
                                       {0}};
  cli_client cc = {.cmd = "put"};
  put_job j = {0};
  const char *as = NULL;
  char name[NAME_CAP];
  int opt, argi, code, recursive = 0, rc;

  while ((opt = cli_getopt(argc, argv, ":qr" CLI_CLIENT_SHORTOPTS, opts, NULL)) != -1) {
    if (opt == 'h') {
      fputs(put_help, stdout);
      return EXIT_OK;
    }
    if (opt == 'A')
      as = optarg;
    else if (opt == 'r')
      recursive = 1;
    else if (opt == 'R')
      j.opts.resume = 1;
    else if (opt == 'X')
      j.opts.exclusive = 1;
    else if (opt == 'H')
      j.opts.hash = optarg;
    else if (!cli_client_opt(&cc, opt, optarg))
      return cli_option_error("put", opt, argv);
  }
  argi = optind;
  cli_take_addr(&cc, argc, argv, &argi);
  if (argi >= argc)
    return cli_usage_error("put", "name at least one FILE to send");
  if (as != NULL && argc - argi > 1 && (as[0] == '\0' || as[strlen(as) - 1] != '/'))
    return cli_usage_error("put", "--as NAME names one file: give a single FILE, or a folder "
                                  "as --as DIR/");
  j.quiet = cc.quiet || cc.json;
  j.json = cc.json;
  j.cc = &cc;
  if ((code = cli_connect("put", &cc, &j.c)) != EXIT_OK)
    return code;
  sk_client_pick_hash(j.c, j.opts.hash, &rc);
  if (rc < 0 || (j.opts.hash != NULL && strcmp(j.opts.hash, "none") == 0)) {
    cli_error("put", "hash '%s' is not offered by both sides; drop --hash for the default",
              j.opts.hash);
    code = EXIT_FAIL;
  }
  cli_resume_hint(argc, argv); /* a rerun with --resume skips what arrived whole */
  for (int i = argi; i < argc && code == EXIT_OK; i++) {
    if (server_name(as, argv[i], name, sizeof(name)) < 0) {
      cli_error("put", "%s: the name on the server would be too long", cli_safe(argv[i]));
      code = EXIT_FAIL;
    } else {
      code = put_path(&j, argv[i], name, recursive);
    }
  }
  cli_resume_hint_clear();
  sk_client_close(j.c);
  return code != EXIT_OK && j.failed_conn ? EXIT_CONN : code;
}
