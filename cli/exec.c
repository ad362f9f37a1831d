/* exec.c - `sockit exec`: run a program on the server, the way `ssh host
 * cmd` does. Its stdout and stderr arrive on ours as they are produced; we
 * exit with its code (or 128+signal); Ctrl-C sends it INT, a second Ctrl-C
 * KILL; --stdin streams our stdin to it.
 *
 * One poll() loop over the socket and stdin. Writes to the socket never
 * block: while output arrives we must keep reading it, or the server stops
 * reading the program's output, the program stops reading its stdin, and the
 * stdin we are blocked on sending would never drain. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "common/sock.h"
#include "jsonl.h"

static const char exec_help[] =
    "usage: sockit exec [ADDR] [OPTIONS] [--] PROGRAM [ARG...]\n"
    "       sockit exec [ADDR] [OPTIONS] --shell 'COMMAND LINE'\n"
    "Run a program on the server (started with --allow-exec) in its file root.\n"
    "Its stdout and stderr come out on ours; the exit status is the program's, or\n"
    "128+N when signal N ended it, and 255 when sockit itself failed (no\n"
    "connection, a wrong key, a server that does not allow exec), as ssh does.\n"
    "Ctrl-C sends it INT, a second Ctrl-C KILL. Options end at PROGRAM, so\n"
    "`sockit exec HOST:PORT ls -la` runs `ls -la`.\n\n"
    "      --shell LINE   run LINE with /bin/sh -c\n"
    "      --stdin        send our stdin to the program (tar c d | sockit exec --stdin -- tar x)\n"
    "      --timeout S    kill the program after S seconds (the server's --exec-timeout\n"
    "                     is the default and the ceiling)\n"
    "      --env NAME=VALUE  add a variable to the program's environment "
    "(repeatable)\n"
    "  -w, --connect-timeout S  give up when connecting and the server's hello take\n"
    "                     more than S seconds (default 10)\n" CLI_CLIENT_COMMON_HELP;

#define STDIN_CHUNK (64u * 1024)           /* SPEC: stdin in 64 KiB frames */
#define OUT_CAP (STDIN_CHUNK + 16u * 1024) /* one stdin frame plus a few heads */
#define BODY_CHUNK (64u * 1024)
#define JSON_KEEP (16u << 20) /* --json: per stream; beyond, counted and "truncated" */

static volatile sig_atomic_t interrupts;
static void on_sigint(int sig) {
  interrupts++;
}

typedef struct xc {
  sk_client *c;
  int fd;
  int forward_stdin; /* our stdin is still being sent */
  uint8_t out[OUT_CAP];
  size_t olen, opos; /* bytes queued for the socket, and how many went */
  int sigs_sent;
  uint64_t left; /* body bytes of the current frame still to read */
  int to_fd;     /* where they go: 1, 2, or -1 to drop */
  /* --json: the program's output is kept (up to JSON_KEEP per stream) and
   * counted, and one object says how the run ended */
  int json;
  char *kept[3];
  size_t kept_len[3];
  uint64_t bytes[3];
  sk_head *ended; /* the exit frame, or the error that refused the run */
  int done, code;
} xc;

#define EXEC_ENV_MAX 64

typedef struct exec_opts {
  const char *shell;
  int want_stdin;
  double timeout;
  const char *env[EXEC_ENV_MAX]; /* "NAME=VALUE", from argv */
  int nenv;
} exec_opts;

/* ---- the socket's outgoing side ----------------------------------------- */

/* Queue a frame (head + body) for the socket. 0, or -ENOBUFS when the
 * buffer has no room (callers only add when it does). */
static int queue_frame(xc *x, sk_head *h, const void *body, size_t n) {
  ssize_t need;
  if (x->opos == x->olen)
    x->opos = x->olen = 0;
  need = sk_head_encode(h, x->out + x->olen, OUT_CAP - x->olen);
  if (need < 0)
    return (int)need;
  if ((size_t)need + n > OUT_CAP - x->olen)
    return -ENOBUFS;
  x->olen += (size_t)need;
  if (n > 0)
    memcpy(x->out + x->olen, body, n);
  x->olen += n;
  return 0;
}

static int flush_out(xc *x) {
  while (x->opos < x->olen) {
    ssize_t w = sk_client_write_some(x->c, x->out + x->opos, x->olen - x->opos);
    if (w <= 0)
      return (int)w;
    x->opos += (size_t)w;
  }
  return 0;
}

static void queue_signal(xc *x) {
  sk_head *h = sk_head_new("signal");
  if (h == NULL)
    return;
  sk_head_set_str(h, "signal", x->sigs_sent == 0 ? "INT" : "KILL");
  if (queue_frame(x, h, NULL, 0) == 0)
    x->sigs_sent++;
  sk_head_free(h);
}

/* Read one chunk of stdin into a stdin frame; EOF sends the eof frame. */
static int pump_stdin(xc *x) {
  uint8_t buf[STDIN_CHUNK];
  ssize_t r = read(STDIN_FILENO, buf, sizeof(buf));
  sk_head *h;
  int rc;
  if (r < 0 && (errno == EINTR || errno == EAGAIN))
    return 0;
  if ((h = sk_head_new("stdin")) == NULL)
    return -ENOMEM;
  if (r <= 0) { /* EOF (or an unreadable stdin): the program sees EOF too */
    sk_head_set_bool(h, "eof", 1);
    x->forward_stdin = 0;
    r = 0;
  }
  rc = sk_head_set_int(h, "size", (int64_t)r);
  if (rc == 0)
    rc = queue_frame(x, h, buf, (size_t)r);
  sk_head_free(h);
  return rc;
}

/* ---- the incoming side -------------------------------------------------- */

static void on_exit_frame(xc *x, const sk_head *h, const exec_opts *o) {
  int64_t code = 0, sig = 0;
  int timed_out = 0;
  sk_head_bool(h, "timed_out", &timed_out);
  if (sk_head_int(h, "signal", &sig) == 0 && sig > 0 && sig < 128)
    x->code = 128 + (int)sig;
  else if (sk_head_int(h, "code", &code) == 0)
    x->code = (int)(code & 0xff);
  else
    x->code = EXIT_FAIL;
  if (timed_out && !x->json)
    cli_error("exec", "the program ran out of time (%g s) and was killed", o->timeout);
  x->done = 1;
}

/* Handle one head from the server. */
static void on_head(xc *x, sk_head *h, const exec_opts *o) {
  const char *type = sk_head_type(h);
  x->left = sk_head_size(h);
  x->to_fd = -1;
  if (strcmp(type, "stdout") == 0) {
    x->to_fd = STDOUT_FILENO;
  } else if (strcmp(type, "stderr") == 0) {
    x->to_fd = STDERR_FILENO;
  } else if (strcmp(type, "exit") == 0) {
    on_exit_frame(x, h, o);
    x->ended = sk_head_dup(h);
  } else if (strcmp(type, "error") == 0) {
    int err = sk_err_from_wire(sk_head_str(h, "code") ? sk_head_str(h, "code") : "");
    /* refused (forbidden, busy, ...): sockit's failure, never the program's
     * exit 1, as ssh keeps 255 for its own */
    cli_request_failed("exec", err, h);
    x->ended = sk_head_dup(h);
    x->code = EXIT_CONN;
    x->done = 1;
  }
}

/* --json: keep a piece of the program's output for the result object. */
static void keep(xc *x, int fd, const uint8_t *data, size_t n) {
  size_t room = JSON_KEEP - x->kept_len[fd], take = n < room ? n : room;
  x->bytes[fd] += n;
  if (take == 0)
    return;
  char *more = realloc(x->kept[fd], x->kept_len[fd] + take + 1);
  if (more == NULL)
    return;
  memcpy(more + x->kept_len[fd], data, take);
  x->kept_len[fd] += take;
  more[x->kept_len[fd]] = '\0';
  x->kept[fd] = more;
}

/* The --json result: how the run ended, the output and its byte counts. */
static void print_json(const xc *x, int rc) {
  sk_head *j = cli_jsonl_new();
  int64_t v;
  int b;
  if (j == NULL)
    return;
  if (rc < 0 || x->ended == NULL || strcmp(sk_head_type(x->ended), "error") == 0) {
    const sk_head *e = x->ended;
    int err = rc < 0 || e == NULL
                  ? (rc < 0 ? rc : SK_ECLOSED)
                  : sk_err_from_wire(sk_head_str(e, "code") ? sk_head_str(e, "code") : "");
    cli_jsonl_error(j, err, e != NULL ? sk_error_message(e) : NULL);
  } else {
    sk_head_set_bool(j, "ok", 1);
    if (sk_head_int(x->ended, "code", &v) == 0)
      sk_head_set_int(j, "exit", v);
    if (sk_head_int(x->ended, "signal", &v) == 0)
      sk_head_set_int(j, "signal", v);
    if (sk_head_bool(x->ended, "timed_out", &b) == 0)
      sk_head_set_bool(j, "timed_out", b);
  }
  sk_head_set_int(j, "status", x->code);
  for (int fd = 1; fd <= 2; fd++) {
    const char *name = fd == 1 ? "stdout" : "stderr";
    char key[32];
    snprintf(key, sizeof(key), "%s_bytes", name);
    sk_head_set_int(j, key, (int64_t)x->bytes[fd]);
    /* JSON strings hold UTF-8: other bytes go as "stdout_base64" */
    if (sk_head_set_strn(j, name, x->kept[fd] ? x->kept[fd] : "", x->kept_len[fd]) < 0)
      cli_jsonl_base64(j, fd == 1 ? "stdout_base64" : "stderr_base64", (const uint8_t *)x->kept[fd],
                       x->kept_len[fd]);
  }
  if (x->bytes[1] > x->kept_len[1] || x->bytes[2] > x->kept_len[2])
    sk_head_set_bool(j, "truncated", 1);
  cli_jsonl_print(j);
}

/* Take one step of input: a head, or a piece of the current body. */
static int step_in(xc *x, const exec_opts *o) {
  uint8_t buf[BODY_CHUNK];
  if (x->left == 0) {
    sk_head *h = NULL;
    int rc = sk_client_recv_head(x->c, &h);
    if (rc < 0)
      return rc;
    on_head(x, h, o);
    sk_head_free(h);
    return 0;
  }
  ssize_t r = sk_client_read_body(x->c, buf, x->left < sizeof(buf) ? (size_t)x->left : sizeof(buf));
  if (r <= 0)
    return r < 0 ? (int)r : SK_ECLOSED;
  x->left -= (uint64_t)r;
  if (x->to_fd >= 0 && x->json) {
    keep(x, x->to_fd, buf, (size_t)r);
    return 0;
  }
  if (x->to_fd >= 0 && sk__write_all(x->to_fd, buf, (size_t)r) < 0)
    x->to_fd = -1; /* our own output is gone: keep draining, the exit still matters */
  return 0;
}

/* ---- the loop ----------------------------------------------------------- */

static int run(xc *x, const exec_opts *o) {
  struct pollfd p[2];
  while (!x->done) {
    int rc;
    if (interrupts > x->sigs_sent && OUT_CAP - x->olen > 256)
      queue_signal(x);
    p[0] = (struct pollfd){x->fd, POLLIN | (x->opos < x->olen ? POLLOUT : 0), 0};
    /* read stdin only when its last frame has gone: the buffer bounds us */
    p[1] = (struct pollfd){x->forward_stdin && x->opos == x->olen ? STDIN_FILENO : -1, POLLIN, 0};
    rc = poll(p, 2, sk_client_pending(x->c) ? 0 : -1);
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc < 0)
      return -errno;
    if ((p[0].revents & POLLOUT) && (rc = flush_out(x)) < 0)
      return rc;
    if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) || sk_client_pending(x->c)) {
      if ((rc = step_in(x, o)) < 0)
        return rc;
      continue;
    }
    if ((p[1].revents & (POLLIN | POLLHUP | POLLERR)) && (rc = pump_stdin(x)) < 0)
      return rc;
    if ((rc = flush_out(x)) < 0)
      return rc;
  }
  return 0;
}

/* "env": {"NAME":"VALUE",...} from the --env words (checked at parse time). */
static int set_env(sk_head *h, const exec_opts *o) {
  sk_head *env = sk_head_new(NULL);
  int rc = env ? 0 : -ENOMEM;
  for (int i = 0; rc == 0 && i < o->nenv; i++) {
    const char *eq = strchr(o->env[i], '=');
    char name[256];
    snprintf(name, sizeof(name), "%.*s", (int)(eq - o->env[i]), o->env[i]);
    rc = sk_head_set_str(env, name, eq + 1);
  }
  if (rc < 0) {
    sk_head_free(env);
    return rc;
  }
  return sk_head_set_obj(h, "env", env);
}

static sk_head *build_request(char **argv, int argc, const exec_opts *o) {
  sk_head *h = sk_head_new("exec");
  int rc = h ? 0 : -ENOMEM;
  if (rc == 0 && o->shell)
    rc = sk_head_set_str(h, "shell", o->shell);
  else if (rc == 0)
    rc = sk_head_set_strv(h, "argv", (const char *const *)argv, (size_t)argc);
  if (rc == 0 && o->want_stdin)
    rc = sk_head_set_bool(h, "stdin", 1);
  if (rc == 0 && o->timeout > 0)
    rc = sk_head_set_double(h, "timeout", o->timeout);
  if (rc == 0 && o->nenv > 0)
    rc = set_env(h, o);
  if (rc < 0) {
    sk_head_free(h);
    return NULL;
  }
  return h;
}

/* Ctrl-C must interrupt poll() (no SA_RESTART) and reach us, not kill us. */
static void catch_sigint(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
}

/* One option; -1 to go on, else the exit code. */
static int take_opt(int opt, char **argv, exec_opts *o, cli_client *cc) {
  char *end;
  switch (opt) {
  case 'h':
    fputs(exec_help, stdout);
    return EXIT_OK;
  case 's':
    o->shell = optarg;
    break;
  case 'i':
    o->want_stdin = 1;
    break;
  case 'e': {
    const char *eq = strchr(optarg, '=');
    if (eq == NULL || eq == optarg || eq - optarg >= 256)
      return cli_usage_error("exec", "--env wants NAME=VALUE");
    if (o->nenv == EXEC_ENV_MAX)
      return cli_usage_error("exec", "at most %d --env variables", EXEC_ENV_MAX);
    o->env[o->nenv++] = optarg;
    break;
  }
  case 't':
    o->timeout = strtod(optarg, &end);
    if (*end != '\0' || !(o->timeout > 0))
      return cli_usage_error("exec", "--timeout wants a positive number of seconds");
    break;
  default:
    if (!cli_client_opt(cc, opt, optarg))
      return cli_option_error("exec", opt, argv);
  }
  return -1;
}

/* As ssh does: sockit's options (before and after ADDR) end at the first
 * word that is not one of them, which is PROGRAM (`sockit exec HOST:PORT ls
 * -la` runs `ls -la`); a `--` ends them too. Returns -1 to go on, or an exit
 * code; *cmd_at is where PROGRAM starts. */
static int parse_opts(int argc, char **argv, exec_opts *o, cli_client *cc, int *cmd_at) {
  static const struct option opts[] = {{"shell", required_argument, NULL, 's'},
                                       {"stdin", no_argument, NULL, 'i'},
                                       {"timeout", required_argument, NULL, 't'},
                                       {"env", required_argument, NULL, 'e'},
                                       CLI_CLIENT_LONGOPTS,
                                       {0}};
  int opt;
  for (;;) {
    while ((opt = cli_getopt(argc, argv, "+:" CLI_CLIENT_SHORTOPTS, opts, NULL)) != -1) {
      int rc = take_opt(opt, argv, o, cc);
      if (rc >= 0)
        return rc;
    }
    if (optind > 1 && strcmp(argv[optind - 1], "--") == 0)
      break;
    /* SPEC 2: the first word is the address when it has a ':' */
    if (cc->addr == NULL && optind < argc && strchr(argv[optind], ':') != NULL) {
      cc->addr = argv[optind++];
      continue;
    }
    break;
  }
  if (cc->addr == NULL)
    cc->addr = cli_default_addr();
  cli_apply_config(cc);
  *cmd_at = optind;
  return -1;
}

int cmd_exec(int argc, char **argv) {
  exec_opts o = {0};
  cli_client cc = {.cmd = "exec"};
  sk_head *req = NULL;
  xc *x = NULL;
  int code, cmd_at = argc, rc;

  if ((code = parse_opts(argc, argv, &o, &cc, &cmd_at)) >= 0)
    return code;
  if (o.shell != NULL && cmd_at < argc)
    return cli_usage_error("exec", "give either --shell 'LINE' or -- PROGRAM ARGS, not both");
  if (o.shell == NULL && cmd_at >= argc)
    return cli_usage_error("exec", "no program: sockit exec [ADDR] -- PROGRAM [ARG...]");
  if ((x = calloc(1, sizeof(*x))) == NULL ||
      (req = build_request(argv + cmd_at, argc - cmd_at, &o)) == NULL) {
    cli_error("exec", "out of memory");
    free(x);
    return EXIT_FAIL;
  }
  if ((code = cli_connect("exec", &cc, &x->c)) != EXIT_OK)
    goto out;
  x->fd = sk_client_fd(x->c);
  x->forward_stdin = o.want_stdin;
  x->json = cc.json;
  catch_sigint();
  if (o.shell != NULL)
    cli_verbose(cc.verbose, cc.cmd, "asking to run /bin/sh -c %s", cli_safe(o.shell));
  else
    cli_verbose(cc.verbose, cc.cmd, "asking to run %s", cli_safe(argv[cmd_at]));
  rc = queue_frame(x, req, NULL, 0);
  if (rc == 0)
    rc = run(x, &o);
  if (rc < 0) {
    cli_error("exec", "connection lost before the program ended: %s", sk_strerror(rc));
    code = x->code = EXIT_CONN;
  } else {
    code = x->code;
  }
  if (x->json)
    print_json(x, rc);
out:
  sk_head_free(req);
  if (x != NULL) {
    sk_head_free(x->ended);
    free(x->kept[1]);
    free(x->kept[2]);
  }
  sk_client_close(x->c);
  free(x);
  return code;
}
