/* exec.c - remote command execution (SPEC 4.6): the tutorial's command
 * runner done the way `ssh host cmd` does it. Separate stdout and stderr
 * streams, the real exit status, stdin forwarding, signals, a timeout, and
 * never without authentication.
 *
 * The native adapter of the child-process runner (child.h), which the seed
 * wire's exec uses too: this file reads the request, builds the
 * environment, turns output into stdout/stderr frames (with flow control),
 * stdin frames into the child's stdin, and the end into an exit frame. One
 * exec per connection at a time (the core keeps requests in order). A job
 * holds a reference on the connection until the runner has closed its last
 * handle. If the connection closes first, finish() detaches the job and the
 * runner kills the child's whole process group.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/service.h"
#include "services/child.h"
#include "services/services.h"
#include "sockit/error.h"

extern char **environ;

#define EXEC_BYREF_MIN (16u * 1024) /* reads at least this big are sent without a copy */
#define EXEC_TERM_GRACE_MS 2000     /* timeout: TERM, then KILL this much later */
#define EXEC_WHAT_MAX 1024          /* argv / shell line kept for the log */
#define EXEC_ENV_MAX 4096           /* entries in a child's environment */

static const char exec_off[] = "exec is off on this server: start it with --allow-exec";
static const char exec_noauth[] =
    "exec needs authentication: this server runs with --no-auth; restart it with a key "
    "(--key-file F, without --no-auth)";

/* Server-wide: the running count (--max-execs) and who children run as. */
typedef struct exec_shared {
  atomic_int running;
  sk__child_user user;
} exec_shared;

typedef struct exec_job exec_job;

/* Per connection. */
typedef struct exec_state {
  exec_job *job;  /* the running exec, or NULL */
  int stdin_tail; /* the last exec ended before its stdin eof: drop its late stdin frames */
} exec_state;

struct exec_job {
  sk__child *child;
  sk_conn *c;
  exec_state *st; /* NULL once the request ended or the connection closed */
  exec_shared *sh;
  unsigned eof_after_frame : 1, eof_seen : 1, paused : 1, detached : 1, want_stdin : 1;
  unsigned shell : 1;
  uint64_t t_start;
  char what[EXEC_WHAT_MAX];
};

/* What a request asks for, borrowed from its head. */
typedef struct exec_args {
  const char **argv; /* NULL-terminated, owned */
  const sk_head *env;
  const char *shell;
  int want_stdin;
  double timeout;
} exec_args;

/* ---- the server-wide part ----------------------------------------------- */

static exec_shared *shared_of(const sk_server *srv) {
  return sk__service_state(srv, &sk__svc_exec);
}

int sk__exec_user(const sk_server *srv, uid_t *uid, gid_t *gid) {
  const exec_shared *sh = shared_of(srv);
  if (sh == NULL || !sh->user.setuser)
    return 0;
  *uid = sh->user.uid;
  *gid = sh->user.gid;
  return 1;
}

/* Resolve --exec-user. Returns 0 or -EINVAL after telling the operator why. */
static int resolve_user(const sk_server *srv, exec_shared *sh, const char *name) {
  char why[160];
  int rc = sk__child_user_resolve(name, &sh->user, why, sizeof(why));
  if (rc < 0)
    sk__notice(srv, SK_NOTICE_ERROR, "%s", why);
  return rc;
}

/* Descriptors the server inherited from whoever started it (a shell's
 * extra pipes, say) are not close-on-exec; make them so, or every program
 * would get them. The server's own are opened close-on-exec already. */
static void cloexec_inherited(void) {
  DIR *d;
  struct dirent *e;
  if (close_range(3, ~0u, CLOSE_RANGE_CLOEXEC) == 0)
    return;
  if ((d = opendir("/proc/self/fd")) == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    char *end;
    long fd = strtol(e->d_name, &end, 10); /* "." and ".." are not numbers */
    if (*end == '\0' && fd > 2 && fd <= INT_MAX && fd != dirfd(d))
      fcntl((int)fd, F_SETFD, fcntl((int)fd, F_GETFD) | FD_CLOEXEC);
  }
  closedir(d);
}

static int exec_start(sk_server *srv) {
  exec_shared *sh = calloc(1, sizeof(*sh));
  const char *user = sk__server_opt_str(srv, "exec-user"), *why = NULL;
  int rc = 0;
  if (sh == NULL)
    return -ENOMEM;
  atomic_init(&sh->running, 0);
  cloexec_inherited();
  if (user[0] != '\0')
    rc = resolve_user(srv, sh, user);
  else if (geteuid() == 0)
    sk__notice(srv, SK_NOTICE_WARNING,
               "--allow-exec on a server running as root: exec programs run as root; "
               "pass --exec-user NAME to run them as another user");
  if (rc == 0 && !sk_server_auth_enabled(srv))
    sk__notice(srv, SK_NOTICE_WARNING,
               "--allow-exec on a --no-auth server: exec requests are refused until "
               "the server runs with a key");
  if (rc == 0 && (rc = sk__server_root_open(srv, &why)) < 0) /* programs run there */
    sk__service_failed(srv, why);
  if (rc < 0) {
    free(sh);
    return rc;
  }
  sk__service_set_state(srv, &sk__svc_exec, sh);
  return 0;
}

static void exec_stop(sk_server *srv) {
  free(shared_of(srv));
  sk__service_set_state(srv, &sk__svc_exec, NULL);
}

/* ---- the job's life: the runner's callbacks ------------------------------ */

static void log_job(exec_job *j, const sk__child_result *r, const char *result) {
  enum sk_metric class = r->timed_out     ? SK_M_EXEC_TIMEOUT
                         : r->term_signal ? SK_M_EXEC_SIGNAL
                         : r->status == 0 ? SK_M_EXEC_OK
                                          : SK_M_EXEC_ERROR;
  sk__conn_metric(j->c, class, 1);
  sk_conn_log(j->c, "exec", j->shell ? "shell" : "argv", 's', j->what, "code", 'i',
              r->term_signal ? (int64_t)-1 : r->status, "signal", 'i', (int64_t)r->term_signal,
              "result", 's', result, "duration", 'f', (double)(uv_hrtime() - j->t_start) / 1e9,
              "bytes_out", 'i', (int64_t)r->bytes_out, NULL);
}

static int send_exit(exec_job *j, const sk__child_result *r) {
  sk_head *h = sk_head_new("exit");
  int rc = h ? 0 : -ENOMEM;
  if (rc == 0 && r->term_signal)
    rc = sk_head_set_int(h, "signal", r->term_signal);
  else if (rc == 0)
    rc = sk_head_set_int(h, "code", r->status);
  if (rc == 0 && r->timed_out)
    rc = sk_head_set_bool(h, "timed_out", 1);
  if (rc == 0)
    rc = sk_conn_send(j->c, h, NULL, 0);
  sk_head_free(h);
  return rc;
}

/* The process exited and both pipes hit EOF: the request ends. */
static void job_done(void *owner, const sk__child_result *r) {
  exec_job *j = owner;
  exec_state *st = j->st;
  log_job(j, r, j->detached ? "disconnected" : r->timed_out ? "timed_out" : "ok");
  if (st == NULL)
    return;
  j->st = NULL;
  st->job = NULL;
  st->stdin_tail = j->want_stdin && !j->eof_seen;
  if (send_exit(j, r) < 0)
    sk_conn_close(j->c, 0);
  sk_conn_done(j->c);
}

/* Every handle is closed: the --max-execs slot and the connection go. */
static void job_freed(void *owner) {
  exec_job *j = owner;
  atomic_fetch_sub(&j->sh->running, 1);
  sk_conn_unref(j->c);
  free(j);
}

/* Send n bytes of the read buffer as a stdout/stderr frame: big reads by
 * reference (the buffer goes with them), small ones copied so that a chatty
 * child cannot pin a 64 KiB buffer per byte. Returns 1 if buf was kept. */
static int forward(exec_job *j, const char *type, sk_buf *buf, size_t n, int *rc) {
  sk_head *h = sk_head_new(type);
  int kept = 0;
  if (h == NULL) {
    *rc = -ENOMEM;
    return 0;
  }
  if (n >= EXEC_BYREF_MIN) {
    sk_buf_set_len(buf, n);
    *rc = sk_conn_send_buf(j->c, h, buf, 0, n);
    kept = 1;
  } else {
    *rc = sk_conn_send(j->c, h, sk_buf_data(buf), n);
  }
  sk_head_free(h);
  return kept;
}

static int job_output(void *owner, int fd, sk_buf *buf, size_t n) {
  exec_job *j = owner;
  int rc = 0, kept;
  if (j->st == NULL)
    return 0;
  kept = forward(j, fd == 1 ? "stdout" : "stderr", buf, n, &rc);
  if (rc < 0) {
    sk_conn_close(j->c, 0); /* out of memory or closing: finish() kills the group */
    j->paused = 1;
    sk__child_pause(j->child);
  } else if (sk_conn_congested(j->c)) {
    j->paused = 1;
    sk__child_pause(j->child); /* the child blocks on its pipe until .drained */
  }
  return kept;
}

static void job_stdin_ready(void *owner) {
  exec_job *j = owner;
  if (!j->detached)
    sk_conn_resume(j->c); /* the sink paused the connection while we wrote */
}

static void exec_drained(sk_conn *c, void *state) {
  exec_state *st = state;
  if (st->job != NULL && st->job->paused) {
    st->job->paused = 0;
    sk__child_resume(st->job->child);
  }
}

/* ---- starting ----------------------------------------------------------- */

static void free_strv(char **v) {
  for (char **p = v; p && *p; p++)
    free(*p);
  free(v);
}

typedef struct env_build {
  char **v;
  size_t n, cap;
  int err;
} env_build;

static void env_add(env_build *b, const char *name, size_t nlen, const char *val) {
  size_t vlen = strlen(val);
  char *s;
  if (b->err)
    return;
  if (b->n + 1 >= b->cap) {
    b->err = -E2BIG;
    return;
  }
  s = malloc(nlen + vlen + 2);
  if (s == NULL) {
    b->err = -ENOMEM;
    return;
  }
  memcpy(s, name, nlen);
  s[nlen] = '=';
  memcpy(s + nlen + 1, val, vlen + 1);
  b->v[b->n++] = s;
}

static int env_add_cb(void *ctx, const char *key, const char *val) {
  env_build *b = ctx;
  env_add(b, key, strlen(key), val);
  return b->err;
}

/* Is NAME (nlen bytes) set by the request or by --exec-user? */
static int env_overridden(const exec_args *a, const exec_shared *sh, const char *name,
                          size_t nlen) {
  char key[256];
  static const char *const user_vars[] = {"HOME", "USER", "LOGNAME"};
  if (nlen >= sizeof(key))
    return 0;
  memcpy(key, name, nlen);
  key[nlen] = '\0';
  if (a->env != NULL && sk_head_has(a->env, key))
    return 1;
  for (size_t i = 0; sh->user.name[0] && i < 3; i++)
    if (strcmp(key, user_vars[i]) == 0)
      return 1;
  return 0;
}

/* The child's environment: the server's minus SOCKIT_* (the key file's
 * location is nobody's business) and anything overridden, then the
 * request's "env". Returns a NULL-terminated, owned vector or NULL. */
static char **build_env(const exec_args *a, const exec_shared *sh, int *err) {
  env_build b = {calloc(EXEC_ENV_MAX, sizeof(char *)), 0, EXEC_ENV_MAX, 0};
  if (b.v == NULL) {
    *err = -ENOMEM;
    return NULL;
  }
  for (char **e = environ; e && *e; e++) {
    const char *eq = strchr(*e, '=');
    if (eq == NULL || strncmp(*e, "SOCKIT_", 7) == 0 ||
        env_overridden(a, sh, *e, (size_t)(eq - *e)))
      continue;
    env_add(&b, *e, (size_t)(eq - *e), eq + 1);
  }
  if (sh->user.name[0]) {
    env_add(&b, "HOME", 4, sh->user.home);
    env_add(&b, "USER", 4, sh->user.name);
    env_add(&b, "LOGNAME", 7, sh->user.name);
  }
  if (a->env != NULL && b.err == 0)
    sk_head_each_str(a->env, env_add_cb, &b);
  if (b.err < 0) {
    free_strv(b.v);
    *err = b.err;
    return NULL;
  }
  return b.v;
}

static int check_env_cb(void *ctx, const char *key, const char *val) {
  const sk_head *env = ctx;
  if (key[0] == '\0' || strchr(key, '=') != NULL || strlen(key) >= 256 ||
      sk_head_strlen(env, key) != strlen(val))
    return SK_EBADREQ;
  return 0;
}

/* A bad request: say what is wrong; returns 1 for parse_args. */
static int bad(sk_conn *c, const char *msg) {
  sk_conn_error(c, msg ? SK_EBADREQ : -ENOMEM, msg);
  return 1;
}

static int parse_command(sk_conn *c, const sk_head *h, exec_args *a) {
  size_t n = sk_head_arr_len(h, "argv");
  if (sk_head_has(h, "argv") == sk_head_has(h, "shell"))
    return bad(c, "exec wants either \"argv\":[PROGRAM,ARG...] or \"shell\":\"LINE\"");
  if (sk_head_has(h, "shell")) {
    a->shell = sk_head_str(h, "shell");
    if (a->shell == NULL || a->shell[0] == '\0' || sk_head_strlen(h, "shell") != strlen(a->shell))
      return bad(c, "\"shell\" must be a non-empty string");
    return 0;
  }
  if (n == 0)
    return bad(c, "\"argv\" must be a non-empty array of strings");
  if ((a->argv = calloc(n + 1, sizeof(char *))) == NULL)
    return bad(c, NULL);
  for (size_t i = 0; i < n; i++) {
    if ((a->argv[i] = sk_head_arr_str(h, "argv", i)) == NULL || a->argv[0][0] == '\0')
      return bad(c, "\"argv\" must be a non-empty array of strings");
    if (sk_head_arr_strlen(h, "argv", i) != strlen(a->argv[i])) /* exec would cut it there */
      return bad(c, "\"argv\" strings cannot hold a NUL byte");
  }
  return 0;
}

/* Read and check the request. Returns 0, or 1 after sending bad_request. */
static int parse_args(sk_conn *c, const sk_head *h, exec_args *a) {
  int rc;
  if (parse_command(c, h, a) != 0)
    return 1;
  if ((rc = sk_head_bool(h, "stdin", &a->want_stdin)) < 0 && rc != -ENOENT)
    return bad(c, "\"stdin\" must be true or false");
  rc = sk_head_double(h, "timeout", &a->timeout);
  if ((rc < 0 && rc != -ENOENT) || (rc == 0 && !(a->timeout > 0 && isfinite(a->timeout))))
    return bad(c, "\"timeout\" must be a positive number of seconds");
  if (sk_head_has(h, "env")) {
    a->env = sk_head_obj(h, "env");
    if (a->env == NULL || sk_head_each_str(a->env, check_env_cb, (void *)a->env) != 0)
      return bad(c, "\"env\" must be an object of NAME: \"VALUE\" strings (no '=' in NAME)");
  }
  return 0;
}

static void describe(exec_job *j, const exec_args *a) {
  size_t n = 0;
  if (a->shell != NULL) {
    snprintf(j->what, sizeof(j->what), "%s", a->shell);
    return;
  }
  j->what[0] = '\0';
  for (size_t i = 0; a->argv[i] && n + 1 < sizeof(j->what); i++)
    n += (size_t)snprintf(j->what + n, sizeof(j->what) - n, "%s%s", i ? " " : "", a->argv[i]);
}

static exec_job *job_new(sk_conn *c, exec_shared *sh, const exec_args *a) {
  exec_job *j = calloc(1, sizeof(*j));
  if (j == NULL)
    return NULL;
  j->c = c;
  j->sh = sh;
  j->t_start = uv_hrtime();
  j->want_stdin = a->want_stdin != 0;
  j->shell = a->shell != NULL;
  describe(j, a);
  return j;
}

/* Start the program. 0, or the spawn's error: the program's reason on
 * stderr and exit code 127 went out, as a shell reports a missing command;
 * or -ENOMEM (j is the caller's to free). The runner owns j from a start
 * on (job_freed). */
static int spawn(exec_job *j, const exec_args *a, char **envp, double timeout) {
  const char *shv[4] = {"/bin/sh", "-c", a->shell, NULL};
  sk__child_cfg cfg = {.loop = sk_conn_uv_loop(j->c),
                       .argv = a->shell ? shv : a->argv,
                       .env = envp,
                       .cwd = sk_server_root(sk_conn_server(j->c)),
                       .user = &j->sh->user,
                       .want_stdin = j->want_stdin,
                       .timeout_ms = (uint64_t)(timeout * 1000.0),
                       .term_grace_ms = EXEC_TERM_GRACE_MS,
                       .end_group_on_exit = true, /* `sleep 600 &` ends with the program */
                       .owner = j,
                       .output = job_output,
                       .stdin_ready = job_stdin_ready,
                       .done = job_done,
                       .freed = job_freed};
  char msg[EXEC_WHAT_MAX + 128];
  sk__child_result r = {.status = 127};
  sk_head *h;
  int rc = sk__child_start(&cfg, &j->child), n;
  if (j->child != NULL)
    sk_conn_ref(j->c); /* job_freed lets it go */
  if (rc == 0 || j->child == NULL)
    return rc;
  n = snprintf(msg, sizeof(msg), "sockit: cannot run '%s': %s\n", j->what, uv_strerror(rc));
  if ((h = sk_head_new("stderr")) != NULL)
    sk_conn_send(j->c, h, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
  sk_head_free(h);
  send_exit(j, &r);
  log_job(j, &r, "not_started");
  return rc;
}

static int handle_exec(sk_conn *c, const sk_request *req) {
  exec_state *st = req->state;
  const sk_server *srv = sk_conn_server(c);
  exec_shared *sh = shared_of(srv);
  exec_args a = {0};
  exec_job *j = NULL;
  char **envp = NULL;
  int rc = 0, max_timeout = (int)sk_server_opt_int(srv, "exec-timeout");

  if (!sk_conn_authenticated(c))
    return sk_conn_error(c, SK_EFORBIDDEN, exec_noauth), 0;
  if (sh == NULL)
    return SK_EINTERNAL;
  if (parse_args(c, req->head, &a) != 0)
    goto out;
  if (a.timeout <= 0 || a.timeout > max_timeout)
    a.timeout = max_timeout; /* --exec-timeout is the default and the ceiling */
  if (atomic_fetch_add(&sh->running, 1) >= sk_server_opt_int(srv, "max-execs")) {
    atomic_fetch_sub(&sh->running, 1);
    sk_conn_error(c, SK_EBUSY, "too many programs running (--max-execs); try again later");
    goto out;
  }
  if ((envp = build_env(&a, sh, &rc)) == NULL || (j = job_new(c, sh, &a)) == NULL) {
    atomic_fetch_sub(&sh->running, 1);
    sk_conn_error(c, rc == -E2BIG ? SK_EBADREQ : -ENOMEM,
                  rc == -E2BIG ? "too many environment variables" : NULL);
    goto out;
  }
  st->stdin_tail = 0;
  if ((rc = spawn(j, &a, envp, a.timeout)) < 0 && j->child == NULL) {
    free(j); /* nothing was made */
    atomic_fetch_sub(&sh->running, 1);
    sk_conn_error(c, -ENOMEM, NULL);
    rc = 0;
    goto out;
  }
  if (rc < 0) { /* not started: answered already; the runner frees j */
    rc = 0;
    goto out;
  }
  j->st = st;
  st->job = j;
  rc = SK_ASYNC;
out:
  free(a.argv);
  free_strv(envp);
  return rc;
}

/* ---- stdin and signals -------------------------------------------------- */

/* Take the bytes into the child's stdin: while a write is in flight the
 * sink takes nothing, which pauses the connection (job_stdin_ready resumes
 * it). */
static ssize_t stdin_body(sk_conn *c, void *state, const uint8_t *data, size_t n) {
  exec_state *st = state;
  exec_job *j = st->job;
  if (j == NULL || data == NULL)
    return (ssize_t)n; /* ended, or end of frame: drop */
  return sk__child_stdin(j->child, data, n);
}

static int handle_stdin(sk_conn *c, const sk_request *req) {
  exec_state *st = req->state;
  exec_job *j = st->job;
  int eof = 0, rc = sk_head_bool(req->head, "eof", &eof);

  if (rc < 0 && rc != -ENOENT)
    return sk_conn_error(c, SK_EBADREQ, "\"eof\" must be true or false"), 0;
  if (j == NULL && st->stdin_tail) {
    st->stdin_tail = !eof; /* the program already ended: its stdin goes nowhere */
    return 0;
  }
  if (j == NULL)
    return sk_conn_error(c, SK_EBADREQ, "stdin without a running exec"), 0;
  if (!j->want_stdin)
    return sk_conn_error(c, SK_EBADREQ, "this exec was started without \"stdin\":true"), 0;
  j->eof_seen |= eof != 0;
  if (eof && req->size == 0)
    sk__child_stdin_close(j->child);
  else if (eof)
    j->eof_after_frame = 1; /* close once this frame's bytes are taken */
  return req->size > 0 ? SK_ASYNC : 0;
}

static ssize_t stdin_sink(sk_conn *c, void *state, const uint8_t *data, size_t n) {
  exec_state *st = state;
  exec_job *j = st->job;
  if (data == NULL && j != NULL && j->eof_after_frame) {
    j->eof_after_frame = 0;
    sk__child_stdin_close(j->child); /* after the write in flight, if any */
    return 0;
  }
  return stdin_body(c, state, data, n);
}

static int handle_signal(sk_conn *c, const sk_request *req) {
  static const struct {
    const char *name;
    int sig;
  } sigs[] = {{"INT", SIGINT}, {"TERM", SIGTERM}, {"KILL", SIGKILL}};
  exec_state *st = req->state;
  const char *name = sk_head_str(req->head, "signal");

  if (st->job == NULL)
    return sk_conn_error(c, SK_EBADREQ, "signal without a running exec"), 0;
  for (size_t i = 0; name != NULL && i < sizeof(sigs) / sizeof(sigs[0]); i++)
    if (strcmp(name, sigs[i].name) == 0) {
      sk__child_signal(st->job->child, sigs[i].sig);
      return 0;
    }
  return sk_conn_error(c, SK_EBADREQ, "\"signal\" must be \"INT\", \"TERM\" or \"KILL\""), 0;
}

/* ---- per connection ----------------------------------------------------- */

static int exec_setup(sk_conn *c, void **state) {
  exec_state *st = calloc(1, sizeof(*st));
  if (st == NULL)
    return -ENOMEM;
  *state = st;
  return 0;
}

/* The connection is gone: the program dies with it (its whole group). */
static void exec_finish(sk_conn *c, void *state) {
  exec_state *st = state;
  exec_job *j = st->job;
  if (j != NULL) {
    j->st = NULL;
    j->detached = 1;
    sk__child_kill(j->child);
  }
  free(st);
}

static uint64_t stdin_limit(const sk_server *srv) {
  return SK_SIZE_MAX; /* streamed into the pipe, never gathered */
}

static const sk_handler exec_handlers[] = {
    {.type = "exec", .handle = handle_exec},
    {.type = "stdin",
     .handle = handle_stdin,
     .body = stdin_sink,
     .flags = SK_H_STREAM | SK_H_FOLLOW,
     .limit = stdin_limit},
    {.type = "signal", .handle = handle_signal, .flags = SK_H_FOLLOW},
    {0},
};

/* --allow-exec turns the service on, whatever --services says. */
const sk__option sk__exec_options[] = {
    {.name = "allow-exec",
     .kind = SK__OPT_SWITCH,
     .help = "offer remote command execution (needs authentication)"},
    {.name = "exec-timeout",
     .kind = SK__OPT_INT,
     .def = 300,
     .min = 1,
     .max = 86400 * 365,
     .arg = "S",
     .help = "kill programs after S seconds (default 300)"},
    {.name = "exec-user",
     .kind = SK__OPT_STR,
     .max = 63,
     .arg = "NAME",
     .help = "run programs as NAME (when started as root)"},
    {.name = "max-execs",
     .kind = SK__OPT_INT,
     .def = 64,
     .min = 1,
     .max = 100000,
     .arg = "N",
     .help = "programs running at once (default 64)"},
    {0},
};

const sk_service sk__svc_exec = {.name = "exec",
                                 .handlers = exec_handlers,
                                 .setup = exec_setup,
                                 .finish = exec_finish,
                                 .drained = exec_drained,
                                 .start = exec_start,
                                 .stop = exec_stop,
                                 .off_message = exec_off};
