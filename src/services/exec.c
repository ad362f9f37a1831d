/* exec.c - remote command execution (SPEC 4.6): the tutorial's command
 * runner done the way `ssh host cmd` does it. Separate stdout and stderr
 * streams, the real exit status, stdin forwarding, signals, a timeout, and
 * never without authentication.
 *
 * One exec per connection at a time (the core keeps requests in order). A
 * job owns the child's uv handles: the process, three pipes and a timer. It
 * holds a reference on the connection while any handle is open, and is freed
 * when the last handle's close callback has run. The request ends (exit
 * frame, sk_conn_done) only when the process has exited AND both output
 * pipes reached EOF, so that no output is lost behind the exit frame. If the
 * connection closes first, finish() detaches the job and kills the child's
 * whole process group; the job then lives on only until libuv reaps the
 * child (closing an unreaped process handle would leave a zombie).
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
#include "services/services.h"
#include "sockit/error.h"

extern char **environ;

#define EXEC_RBUF (64u * 1024)      /* one read from a child's pipe */
#define EXEC_BYREF_MIN (16u * 1024) /* reads at least this big are sent without a copy */
#define EXEC_TERM_GRACE_MS 2000     /* timeout: TERM, then KILL this much later */
#define EXEC_REAP_GRACE_MS 1000     /* after KILL: stop waiting for pipes held by escapees */
#define EXEC_GROUP_POLL_MS 10       /* after TERM: first look whether the group is gone */
#define EXEC_WHAT_MAX 1024          /* argv / shell line kept for the log */
#define EXEC_ENV_MAX 4096           /* entries in a child's environment */

static const char exec_off[] = "exec is off on this server: start it with --allow-exec";
static const char exec_noauth[] =
    "exec needs authentication: this server runs with --no-auth; restart it with a key "
    "(--key-file F, without --no-auth)";

/* Server-wide: the running count (--max-execs) and who children run as. */
typedef struct exec_shared {
  atomic_int running;
  int setuser;
  uid_t uid;
  gid_t gid;
  char user[64];
  char home[1024];
} exec_shared;

typedef struct exec_job exec_job;

/* Per connection. */
typedef struct exec_state {
  exec_job *job;  /* the running exec, or NULL */
  int stdin_tail; /* the last exec ended before its stdin eof: drop its late stdin frames */
} exec_state;

struct exec_job {
  uv_process_t proc;
  uv_pipe_t in, out, err;
  uv_timer_t timer;
  uv_write_t wreq;
  sk_conn *c;
  exec_state *st; /* NULL once the request ended or the connection closed */
  exec_shared *sh;
  int handles; /* open uv handles; the job is freed when the last one closes */
  pid_t pid;   /* also the process group id (UV_PROCESS_DETACHED: setsid) */
  unsigned spawned : 1, exited : 1, out_eof : 1, err_eof : 1, in_open : 1, writing : 1;
  unsigned eof_pending : 1, eof_after_frame : 1, eof_seen : 1, paused : 1, reported : 1;
  unsigned timed_out : 1, detached : 1, want_stdin : 1, shell : 1;
  int stage;        /* 0 running, 1 group sent TERM (KILL due), 2 group ended */
  uint64_t kill_at; /* stage 1: uv_now when the KILL is due */
  uint64_t poll_ms; /* stage 1: the next look at the group, doubling */
  int64_t status;
  int term_signal;
  uint64_t t_start, bytes_out;
  sk_buf *rb;    /* the read buffer lent to libuv */
  uint8_t *wbuf; /* stdin bytes in the write in flight */
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

static void maybe_finish(exec_job *j);

/* ---- the server-wide part ----------------------------------------------- */

static exec_shared *shared_of(const sk_server *srv) {
  return sk__service_state(srv, &sk__svc_exec);
}

int sk__exec_user(const sk_server *srv, uid_t *uid, gid_t *gid) {
  const exec_shared *sh = shared_of(srv);
  if (sh == NULL || !sh->setuser)
    return 0;
  *uid = sh->uid;
  *gid = sh->gid;
  return 1;
}

/* Resolve --exec-user. Returns 0 or -EINVAL after telling the operator why. */
static int resolve_user(const sk_server *srv, exec_shared *sh, const char *name) {
  struct passwd pw, *res = NULL;
  char buf[4096];
  if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || res == NULL) {
    sk__notice(srv, SK_NOTICE_ERROR, "--exec-user %s: no such user", name);
    return -EINVAL;
  }
  if (geteuid() != 0 && pw.pw_uid != geteuid()) {
    sk__notice(srv, SK_NOTICE_ERROR, "--exec-user %s needs the server to run as root", name);
    return -EPERM;
  }
  sh->setuser = geteuid() == 0;
  sh->uid = pw.pw_uid;
  sh->gid = pw.pw_gid;
  snprintf(sh->user, sizeof(sh->user), "%s", name);
  snprintf(sh->home, sizeof(sh->home), "%s", pw.pw_dir ? pw.pw_dir : "/");
  return 0;
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
  const char *user = sk__server_opt_str(srv, "exec-user");
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

/* ---- the job's life ----------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h) {
  exec_job *j = h->data;
  if (--j->handles > 0)
    return;
  atomic_fetch_sub(&j->sh->running, 1);
  sk_buf_unref(j->rb);
  free(j->wbuf);
  sk_conn_unref(j->c);
  free(j);
}

static void close_handle(exec_job *j, void *h) {
  if (!uv_is_closing(h))
    uv_close(h, on_handle_closed);
}

static void close_stdin(exec_job *j) {
  if (j->writing) {
    j->eof_pending = 1; /* after the write in flight */
    return;
  }
  if (j->in_open) {
    j->in_open = 0;
    close_handle(j, &j->in);
  }
}

static void pipe_eof(exec_job *j, uv_pipe_t *p) {
  if (p == &j->out)
    j->out_eof = 1;
  else
    j->err_eof = 1;
  close_handle(j, p);
  maybe_finish(j);
}

/* Signal the program's whole process group. Until the group has been
 * ended (stage 2) its id cannot have been reused: either the leader is not
 * yet reaped, or the group still had members when the leader was (a
 * process group id stays taken while the group has members), and the KILL
 * follows the TERM by EXEC_TERM_GRACE_MS only. */
static void signal_group(exec_job *j, int sig) {
  if (j->spawned && (j->stage < 2 || !j->exited))
    kill(-j->pid, sig);
}

/* Is any process left in the program's group? */
static int group_alive(const exec_job *j) {
  return j->spawned && kill(-j->pid, 0) == 0;
}

static void log_job(exec_job *j, const char *result) {
  enum sk_metric class = j->timed_out     ? SK_M_EXEC_TIMEOUT
                         : j->term_signal ? SK_M_EXEC_SIGNAL
                         : j->status == 0 ? SK_M_EXEC_OK
                                          : SK_M_EXEC_ERROR;
  sk__conn_metric(j->c, class, 1);
  sk_conn_log(j->c, "exec", j->shell ? "shell" : "argv", 's', j->what, "code", 'i',
              j->term_signal ? (int64_t)-1 : j->status, "signal", 'i', (int64_t)j->term_signal,
              "result", 's', result, "duration", 'f', (double)(uv_hrtime() - j->t_start) / 1e9,
              "bytes_out", 'i', (int64_t)j->bytes_out, NULL);
}

static int send_exit(exec_job *j) {
  sk_head *h = sk_head_new("exit");
  int rc = h ? 0 : -ENOMEM;
  if (rc == 0 && j->term_signal)
    rc = sk_head_set_int(h, "signal", j->term_signal);
  else if (rc == 0)
    rc = sk_head_set_int(h, "code", j->status);
  if (rc == 0 && j->timed_out)
    rc = sk_head_set_bool(h, "timed_out", 1);
  if (rc == 0)
    rc = sk_conn_send(j->c, h, NULL, 0);
  sk_head_free(h);
  return rc;
}

/* The request ends once the process exited and both pipes hit EOF. */
static void maybe_finish(exec_job *j) {
  exec_state *st = j->st;
  if (j->reported || !j->exited || !j->out_eof || !j->err_eof)
    return;
  j->reported = 1;
  if (j->stage == 1 && !group_alive(j))
    j->stage = 2;    /* the TERM was enough: no KILL to wait for */
  if (j->stage != 1) /* else the timer still owes the group its KILL */
    close_handle(j, &j->timer);
  close_stdin(j);
  j->eof_pending = 0;
  if (j->in_open) { /* a write in flight: closing cancels it */
    j->in_open = 0;
    close_handle(j, &j->in);
  }
  log_job(j, j->detached ? "disconnected" : j->timed_out ? "timed_out" : "ok");
  if (st == NULL)
    return;
  j->st = NULL;
  st->job = NULL;
  st->stdin_tail = j->want_stdin && !j->eof_seen;
  if (send_exit(j) < 0)
    sk_conn_close(j->c, 0);
  sk_conn_done(j->c);
}

static void on_timer(uv_timer_t *t);

/* End the program's group: TERM now, KILL EXEC_TERM_GRACE_MS later (stage
 * 1). A group that is already empty needs neither: straight to stage 2,
 * where pipes still held by a child that left the group (setsid) are waited
 * for EXEC_REAP_GRACE_MS at most. */
static void end_group(exec_job *j) {
  if (j->exited && !group_alive(j)) {
    j->stage = 2;
    uv_timer_start(&j->timer, on_timer, EXEC_REAP_GRACE_MS, 0);
    return;
  }
  signal_group(j, SIGTERM);
  j->stage = 1;
  j->kill_at = uv_now(j->timer.loop) + EXEC_TERM_GRACE_MS;
  j->poll_ms = EXEC_GROUP_POLL_MS;
  uv_timer_start(&j->timer, on_timer, j->poll_ms, 0);
}

/* Stage 1: the group has gone after the TERM (the usual case, and then the
 * --max-execs slot is free at once), or wait on, or KILL when due. */
static void group_check(exec_job *j) {
  uint64_t now = uv_now(j->timer.loop);
  if (j->exited && !group_alive(j)) {
    j->stage = 2;
    if (j->reported)
      close_handle(j, &j->timer);
    else
      uv_timer_start(&j->timer, on_timer, EXEC_REAP_GRACE_MS, 0);
  } else if (now < j->kill_at) {
    j->poll_ms *= 2;
    uv_timer_start(&j->timer, on_timer,
                   j->poll_ms < j->kill_at - now ? j->poll_ms : j->kill_at - now, 0);
  } else {
    signal_group(j, SIGKILL);
    j->stage = 2;
    if (j->reported)
      close_handle(j, &j->timer); /* answered, and now the group is gone too */
    else
      uv_timer_start(&j->timer, on_timer, EXEC_REAP_GRACE_MS, 0);
  }
}

/* The leader exited: whatever it left running in its group (`sleep 600 &`)
 * is ended too, and the exec keeps its --max-execs slot until then. */
static void on_child_exit(uv_process_t *p, int64_t status, int sig) {
  exec_job *j = p->data;
  j->exited = 1;
  j->status = status;
  j->term_signal = sig;
  close_handle(j, p);
  if (j->stage == 0)
    end_group(j);
  maybe_finish(j);
}

static void on_timer(uv_timer_t *t) {
  exec_job *j = t->data;
  if (j->stage == 0) {
    j->timed_out = 1;
    end_group(j);
  } else if (j->stage == 1) {
    group_check(j);
  } else if (!j->exited) { /* KILLed, not reaped yet */
    signal_group(j, SIGKILL);
    uv_timer_start(t, on_timer, EXEC_REAP_GRACE_MS, 0);
  } else {
    /* The group is dead but a pipe is still open: a child that left the
     * group (setsid) holds it. Stop waiting for it. */
    if (!j->out_eof)
      pipe_eof(j, &j->out);
    if (!j->err_eof)
      pipe_eof(j, &j->err);
  }
}

/* ---- output ------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  exec_job *j = h->data;
  if (j->rb == NULL)
    j->rb = sk_buf_new(EXEC_RBUF);
  buf->base = j->rb ? (char *)sk_buf_data(j->rb) : NULL;
  buf->len = j->rb ? EXEC_RBUF : 0;
}

static void pause_output(exec_job *j) {
  j->paused = 1;
  if (!j->out_eof)
    uv_read_stop((uv_stream_t *)&j->out);
  if (!j->err_eof)
    uv_read_stop((uv_stream_t *)&j->err);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void resume_output(exec_job *j) {
  j->paused = 0;
  if (!j->out_eof && uv_read_start((uv_stream_t *)&j->out, on_alloc, on_read) < 0)
    pipe_eof(j, &j->out);
  if (!j->err_eof && uv_read_start((uv_stream_t *)&j->err, on_alloc, on_read) < 0)
    pipe_eof(j, &j->err);
}

/* Send n bytes of the read buffer as a stdout/stderr frame: big reads by
 * reference (the buffer goes with them), small ones copied so that a chatty
 * child cannot pin a 64 KiB buffer per byte. */
static int forward(exec_job *j, const char *type, size_t n) {
  sk_head *h = sk_head_new(type);
  int rc;
  if (h == NULL)
    return -ENOMEM;
  if (n >= EXEC_BYREF_MIN) {
    sk_buf_set_len(j->rb, n);
    rc = sk_conn_send_buf(j->c, h, j->rb, 0, n);
    sk_buf_unref(j->rb);
    j->rb = NULL;
  } else {
    rc = sk_conn_send(j->c, h, sk_buf_data(j->rb), n);
  }
  sk_head_free(h);
  return rc;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  exec_job *j = s->data;
  if (n == 0)
    return;
  if (n < 0) { /* EOF, or an error (ENOBUFS when out of memory): same end */
    pipe_eof(j, (uv_pipe_t *)s);
    return;
  }
  j->bytes_out += (uint64_t)n;
  if (j->st == NULL)
    return;
  if (forward(j, s == (uv_stream_t *)&j->out ? "stdout" : "stderr", (size_t)n) < 0) {
    sk_conn_close(j->c, 0); /* out of memory or closing: finish() kills the group */
    pause_output(j);
    return;
  }
  if (sk_conn_congested(j->c))
    pause_output(j); /* the child blocks on its pipe until .drained */
}

static void exec_drained(sk_conn *c, void *state) {
  exec_state *st = state;
  if (st->job != NULL && st->job->paused)
    resume_output(st->job);
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
  for (size_t i = 0; sh->user[0] && i < 3; i++)
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
  if (sh->user[0]) {
    env_add(&b, "HOME", 4, sh->home);
    env_add(&b, "USER", 4, sh->user);
    env_add(&b, "LOGNAME", 7, sh->user);
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
  uv_loop_t *loop = sk_conn_uv_loop(c);
  exec_job *j = calloc(1, sizeof(*j));
  if (j == NULL)
    return NULL;
  j->c = c;
  j->sh = sh;
  j->t_start = uv_hrtime();
  j->want_stdin = a->want_stdin != 0;
  j->shell = a->shell != NULL;
  describe(j, a);
  uv_pipe_init(loop, &j->in, 0);
  uv_pipe_init(loop, &j->out, 0);
  uv_pipe_init(loop, &j->err, 0);
  uv_timer_init(loop, &j->timer);
  j->proc.data = j->in.data = j->out.data = j->err.data = j->timer.data = j;
  j->handles = 5; /* the process handle counts once uv_spawn has run */
  sk_conn_ref(c);
  return j;
}

static int spawn(exec_job *j, const exec_args *a, char **envp) {
  const char *shv[4] = {"/bin/sh", "-c", a->shell, NULL};
  const char **argv = a->shell ? shv : a->argv;
  uv_stdio_container_t stdio[3] = {
      {.flags = j->want_stdin ? UV_CREATE_PIPE | UV_READABLE_PIPE : UV_IGNORE,
       .data.stream = (uv_stream_t *)&j->in},
      {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&j->out},
      {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&j->err},
  };
  uv_process_options_t o = {
      .exit_cb = on_child_exit,
      .file = argv[0],
      .args = (char **)argv,
      .env = envp,
      .cwd = sk_server_root(sk_conn_server(j->c)),
      .flags = UV_PROCESS_DETACHED, /* setsid: its own group, killed as one */
      .stdio_count = 3,
      .stdio = stdio,
  };
  if (j->sh->setuser) {
    o.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
    o.uid = j->sh->uid;
    o.gid = j->sh->gid;
  }
  return uv_spawn(sk_conn_uv_loop(j->c), &j->proc, &o);
}

/* The program could not start: its reason on stderr and exit code 127, as a
 * shell reports a missing command. */
static void not_started(exec_job *j, int err) {
  char msg[EXEC_WHAT_MAX + 128];
  sk_head *h = sk_head_new("stderr");
  int n = snprintf(msg, sizeof(msg), "sockit: cannot run '%s': %s\n", j->what, uv_strerror(err));
  if (h != NULL)
    sk_conn_send(j->c, h, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
  sk_head_free(h);
  j->status = 127;
  send_exit(j);
  j->reported = 1;
  log_job(j, "not_started");
  close_handle(j, &j->proc);
  close_handle(j, &j->in);
  close_handle(j, &j->out);
  close_handle(j, &j->err);
  close_handle(j, &j->timer);
}

static void start_io(exec_job *j, double timeout) {
  j->spawned = 1;
  j->pid = j->proc.pid;
  if (j->want_stdin)
    j->in_open = 1;
  else
    close_handle(j, &j->in);
  resume_output(j);
  uv_timer_start(&j->timer, on_timer, (uint64_t)(timeout * 1000.0), 0);
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
  if ((rc = spawn(j, &a, envp)) < 0) {
    not_started(j, rc);
    rc = 0;
    goto out;
  }
  start_io(j, a.timeout);
  j->st = st;
  st->job = j;
  rc = SK_ASYNC;
out:
  free(a.argv);
  free_strv(envp);
  return rc;
}

/* ---- stdin and signals -------------------------------------------------- */

static void on_stdin_written(uv_write_t *w, int status) {
  exec_job *j = w->data;
  j->writing = 0;
  free(j->wbuf);
  j->wbuf = NULL;
  if (status < 0 || j->eof_pending) {
    j->eof_pending = 0;
    close_stdin(j);
  }
  if (!j->detached)
    sk_conn_resume(j->c); /* the sink paused the connection while we wrote */
}

/* Take the bytes into the child's stdin: what the pipe does not take at
 * once is copied and written in the background; while that write is in
 * flight the sink takes nothing, which pauses the connection. */
static ssize_t stdin_body(sk_conn *c, void *state, const uint8_t *data, size_t n) {
  exec_state *st = state;
  exec_job *j = st->job;
  uv_buf_t b = {(char *)data, n};
  int w;

  if (j == NULL || data == NULL || !j->in_open)
    return (ssize_t)n; /* ended, end of frame, or stdin closed: drop */
  if (j->writing)
    return 0;
  w = uv_try_write((uv_stream_t *)&j->in, &b, 1);
  if (w == UV_EAGAIN)
    w = 0;
  if (w < 0) { /* EPIPE: the child closed its stdin; drop the rest as ssh does */
    close_stdin(j);
    return (ssize_t)n;
  }
  if ((size_t)w == n)
    return (ssize_t)n;
  if ((j->wbuf = malloc(n - (size_t)w)) == NULL)
    return -ENOMEM;
  memcpy(j->wbuf, data + w, n - (size_t)w);
  b = uv_buf_init((char *)j->wbuf, (unsigned)(n - (size_t)w));
  j->wreq.data = j;
  if (uv_write(&j->wreq, (uv_stream_t *)&j->in, &b, 1, on_stdin_written) < 0) {
    free(j->wbuf);
    j->wbuf = NULL;
    close_stdin(j);
  } else {
    j->writing = 1;
  }
  return (ssize_t)n;
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
    close_stdin(j);
  else if (eof)
    j->eof_after_frame = 1; /* close once this frame's bytes are taken */
  return req->size > 0 ? SK_ASYNC : 0;
}

static ssize_t stdin_sink(sk_conn *c, void *state, const uint8_t *data, size_t n) {
  exec_state *st = state;
  exec_job *j = st->job;
  if (data == NULL && j != NULL && j->eof_after_frame) {
    j->eof_after_frame = 0;
    close_stdin(j); /* after the write in flight, if any */
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
      signal_group(st->job, sigs[i].sig);
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
    signal_group(j, SIGKILL);
    close_stdin(j);
    if (j->in_open) {
      j->in_open = 0;
      close_handle(j, &j->in);
    }
    if (!j->out_eof)
      pipe_eof(j, &j->out);
    if (!j->err_eof)
      pipe_eof(j, &j->err);
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

const sk_service sk__svc_exec = {.name = "exec",
                                 .handlers = exec_handlers,
                                 .setup = exec_setup,
                                 .finish = exec_finish,
                                 .drained = exec_drained,
                                 .start = exec_start,
                                 .stop = exec_stop,
                                 .off_message = exec_off};
