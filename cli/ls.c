/* ls.c - `sockit ls [ADDR] [DIR] [-l] [--bytes] [--json]`: a folder of the
 * server's file root as a table: type, size, mtime, name. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "common/zone.h"
#include "jsonl.h"
#include "progress.h"

static const char ls_help[] =
    "usage: sockit ls [ADDR] [DIR] [-l] [--bytes] [--json]\n"
    "List a folder of the server's file root (default: the root): type, size,\n"
    "modification time and name; folders end in '/'. Types: file, dir, link\n"
    "(never followed), other (FIFO, device, socket: never served) and partial\n"
    "(an upload not finished yet: its size so far); a file being replaced shows\n"
    "the new upload's size so far after its name.\n\n"
    "  -l, --long         exact sizes in bytes and times to the second\n"
    "      --bytes        exact sizes in bytes\n" CLI_CLIENT_HELP;

typedef struct ls_opts {
  int bytes, seconds, json;
} ls_opts;

static void size_text(const ls_opts *o, uint64_t n, char *out, size_t cap) {
  if (o->bytes)
    snprintf(out, cap, "%" PRIu64, n);
  else
    cli_human_bytes((double)n, out, cap);
}

static void print_entry(const ls_opts *o, const sk_dir_entry *e) {
  char size[32], when[32], part[64] = "";
  if (e->is_dir)
    snprintf(size, sizeof(size), "-");
  else
    size_text(o, e->length, size, sizeof(size));
  if (sk__time_format(e->mtime, "local", o->seconds ? "%Y-%m-%d %H:%M:%S" : "%Y-%m-%d %H:%M", when,
                      sizeof(when)) <= 0)
    snprintf(when, sizeof(when), "?");
  if (e->partial > 0) {
    char so_far[32];
    size_text(o, e->partial, so_far, sizeof(so_far));
    snprintf(part, sizeof(part), "  (uploading: %s so far)", so_far);
  }
  printf("%-7s %10s  %s  %s%s%s\n", e->type, size, when, cli_safe(e->name), e->is_dir ? "/" : "",
         part);
}

static void print_json(const sk_dir_entry *e) {
  sk_head *h = cli_jsonl_new();
  cli_jsonl_str(h, "name", e->name);
  sk_head_set_str(h, "type", e->type);
  sk_head_set_int(h, "length", (int64_t)e->length);
  sk_head_set_int(h, "mtime", e->mtime);
  if (e->partial > 0)
    sk_head_set_int(h, "partial", (int64_t)e->partial);
  cli_jsonl_print(h);
}

/* A refused listing, named: "nope: not found", "old.txt is a file". */
static int list_failed(sk_client *c, const char *dir, int rc) {
  sk_file_stat st;
  if (rc == SK_ENOTFOUND && dir[0] != '\0' && sk_client_stat(c, dir, &st) == 0 && st.exists) {
    cli_error("ls", "%s is a file (sockit get %s fetches it)", cli_safe(dir), cli_safe(dir));
    return EXIT_FAIL;
  }
  if (rc == SK_ENOTFOUND) {
    cli_error("ls", "%s: not found", cli_safe(dir));
    return EXIT_FAIL;
  }
  if (rc == SK_EFORBIDDEN) {
    cli_error("ls", "%s: forbidden (a name must stay inside the server's file root)",
              cli_safe(dir));
    return EXIT_FAIL;
  }
  return cli_request_failed("ls", rc, NULL);
}

int cmd_ls(int argc, char **argv) {
  static const struct option opts[] = {CLI_CLIENT_LONGOPTS,
                                       {"long", no_argument, NULL, 'l'},
                                       {"bytes", no_argument, NULL, 'B'},
                                       {0}};
  cli_client cc = {.cmd = "ls"};
  ls_opts o = {0};
  sk_client *c = NULL;
  sk_dir_entry *entries = NULL;
  size_t n = 0;
  char dir[4097];
  int opt, argi, code, rc;

  while ((opt = cli_getopt(argc, argv, ":l" CLI_CLIENT_SHORTOPTS, opts, NULL)) != -1) {
    if (opt == 'h') {
      fputs(ls_help, stdout);
      return EXIT_OK;
    }
    if (opt == 'l')
      o.bytes = o.seconds = 1;
    else if (opt == 'B')
      o.bytes = 1;
    else if (!cli_client_opt(&cc, opt, optarg))
      return cli_option_error("ls", opt, argv);
  }
  argi = optind;
  cli_take_addr(&cc, argc, argv, &argi);
  if (argc - argi > 1)
    return cli_usage_error("ls", "name at most one folder");
  o.json = cc.json;
  snprintf(dir, sizeof(dir), "%s", argi < argc ? argv[argi] : "");
  for (size_t len = strlen(dir); len > 0 && dir[len - 1] == '/'; len--)
    dir[len - 1] = '\0'; /* "photos/" is the folder photos; "/" the root */
  if ((code = cli_connect("ls", &cc, &c)) != EXIT_OK)
    return code;
  cli_verbose(cc.verbose, cc.cmd, "listing %s", dir[0] ? cli_safe(dir) : "the root");
  rc = sk_client_list(c, dir, &entries, &n);
  if (rc < 0) {
    code = list_failed(c, dir, rc);
  } else {
    for (size_t i = 0; i < n; i++) {
      if (o.json)
        print_json(&entries[i]);
      else
        print_entry(&o, &entries[i]);
    }
    code = fflush(stdout) == 0 ? EXIT_OK : EXIT_FAIL;
  }
  sk_dir_entries_free(entries, n);
  sk_client_close(c);
  return code;
}
