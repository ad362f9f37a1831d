/* child.c - the child-process runner (child.h), shared by the exec service
 * and the seed wire's exec.
 *
 * The runner holds the process, three pipes and a timer; it is freed when
 * the last handle's close callback has run. done comes only when the
 * process has exited AND both output pipes reached EOF. The process group
 * is ended in stages: TERM, then KILL term_grace_ms later (stage 1), then
 * waiting at most CHILD_REAP_GRACE_MS for pipes held by a child that left
 * the group (stage 2); an unreaped process handle is never closed (that
 * would leave a zombie). */
#include "services/child.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHILD_RBUF (64u * 1024)  /* one read from a child's pipe */
#define CHILD_REAP_GRACE_MS 1000 /* after KILL: stop waiting for pipes held by escapees */
#define CHILD_GROUP_POLL_MS 10   /* after TERM: first look whether the group is gone */

struct sk__child {
  sk__child_cfg cfg; /* argv, env and cwd are not kept past the spawn */
  uv_process_t proc;
  uv_pipe_t in, out, err;
  uv_timer_t timer;
  uv_write_t wreq;
  int handles; /* open uv handles; freed when the last one closes */
  pid_t pid;   /* also the process group id (setsid) */
  unsigned spawned : 1, exited : 1, out_eof : 1, err_eof : 1, in_open : 1, writing : 1;
  unsigned eof_pending : 1, paused : 1, reported : 1, timed_out : 1, killed : 1;
  int stage;        /* 0 running, 1 group sent TERM (KILL due), 2 group ended */
  uint64_t kill_at; /* stage 1: uv_now when the KILL is due */
  uint64_t poll_ms; /* stage 1: the next look at the group, doubling */
  int64_t status;
  int term_signal;
  uint64_t bytes_out;
  sk_buf *rb;    /* the read buffer lent to libuv */
  uint8_t *wbuf; /* stdin bytes in the write in flight */
};

static void maybe_finish(sk__child *c);
static void on_timer(uv_timer_t *t);

/* ---- who runs it -------------------------------------------------------- */

int sk__child_user_resolve(const char *name, sk__child_user *u, char *why, size_t cap) {
  struct passwd pw, *res = NULL;
  char buf[4096];
  memset(u, 0, sizeof(*u));
  if (name == NULL || name[0] == '\0')
    return 0;
  if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || res == NULL) {
    snprintf(why, cap, "--exec-user %s: no such user", name);
    return -EINVAL;
  }
  if (geteuid() != 0 && pw.pw_uid != geteuid()) {
    snprintf(why, cap, "--exec-user %s needs the server to run as root", name);
    return -EPERM;
  }
  u->setuser = geteuid() == 0;
  u->uid = pw.pw_uid;
  u->gid = pw.pw_gid;
  snprintf(u->name, sizeof(u->name), "%s", name);
  snprintf(u->home, sizeof(u->home), "%s", pw.pw_dir ? pw.pw_dir : "/");
  return 0;
}

/* ---- the handles' life --------------------------------------------------- */

static void on_handle_closed(uv_handle_t *h) {
  sk__child *c = h->data;
  if (--c->handles > 0)
    return;
  sk_buf_unref(c->rb);
  free(c->wbuf);
  c->cfg.freed(c->cfg.owner);
  free(c);
}

static void close_handle(sk__child *c, void *h) {
  if (!uv_is_closing(h))
    uv_close(h, on_handle_closed);
}

void sk__child_stdin_close(sk__child *c) {
  if (c->writing) {
    c->eof_pending = 1; /* after the write in flight */
    return;
  }
  if (c->in_open) {
    c->in_open = 0;
    close_handle(c, &c->in);
  }
}

static void pipe_eof(sk__child *c, uv_pipe_t *p) {
  if (p == &c->out)
    c->out_eof = 1;
  else
    c->err_eof = 1;
  close_handle(c, p);
  maybe_finish(c);
}

/* Signal the program's whole process group. Until the group has been
 * ended (stage 2) its id cannot have been reused: either the leader is not
 * yet reaped, or the group still had members when the leader was (a
 * process group id stays taken while the group has members), and the KILL
 * follows the TERM by term_grace_ms only. */
void sk__child_signal(sk__child *c, int sig) {
  if (c->spawned && (c->stage < 2 || !c->exited))
    kill(-c->pid, sig);
}

/* Is any process left in the program's group? */
static int group_alive(const sk__child *c) {
  return c->spawned && kill(-c->pid, 0) == 0;
}

/* done once the process exited and both pipes hit EOF. */
static void maybe_finish(sk__child *c) {
  sk__child_result r;
  if (c->reported || !c->exited || !c->out_eof || !c->err_eof)
    return;
  c->reported = 1;
  if (c->stage == 1 && !group_alive(c))
    c->stage = 2;    /* the TERM was enough: no KILL to wait for */
  if (c->stage != 1) /* else the timer still owes the group its KILL */
    close_handle(c, &c->timer);
  sk__child_stdin_close(c);
  c->eof_pending = 0;
  if (c->in_open) { /* a write in flight: closing cancels it */
    c->in_open = 0;
    close_handle(c, &c->in);
  }
  r = (sk__child_result){.status = c->status,
                         .term_signal = c->term_signal,
                         .timed_out = c->timed_out,
                         .killed = c->killed,
                         .bytes_out = c->bytes_out};
  c->cfg.done(c->cfg.owner, &r);
}

void sk__child_kill(sk__child *c) {
  c->killed = 1;
  sk__child_signal(c, SIGKILL);
  sk__child_stdin_close(c);
  if (c->in_open) {
    c->in_open = 0;
    close_handle(c, &c->in);
  }
  if (!c->out_eof)
    pipe_eof(c, &c->out);
  if (!c->err_eof)
    pipe_eof(c, &c->err);
}

/* End the program's group: TERM now, KILL term_grace_ms later (stage 1). A
 * group that is already empty needs neither: straight to stage 2, where
 * pipes still held by a child that left the group (setsid) are waited for
 * CHILD_REAP_GRACE_MS at most. */
static void end_group(sk__child *c) {
  if (c->exited && !group_alive(c)) {
    c->stage = 2;
    uv_timer_start(&c->timer, on_timer, CHILD_REAP_GRACE_MS, 0);
    return;
  }
  sk__child_signal(c, SIGTERM);
  c->stage = 1;
  c->kill_at = uv_now(c->timer.loop) + c->cfg.term_grace_ms;
  c->poll_ms = CHILD_GROUP_POLL_MS;
  uv_timer_start(&c->timer, on_timer, c->poll_ms, 0);
}

/* Stage 1: the group has gone after the TERM (the usual case), or wait on,
 * or KILL when due. */
static void group_check(sk__child *c) {
  uint64_t now = uv_now(c->timer.loop);
  if (c->exited && !group_alive(c)) {
    c->stage = 2;
    if (c->reported)
      close_handle(c, &c->timer);
    else
      uv_timer_start(&c->timer, on_timer, CHILD_REAP_GRACE_MS, 0);
  } else if (now < c->kill_at) {
    c->poll_ms *= 2;
    uv_timer_start(&c->timer, on_timer,
                   c->poll_ms < c->kill_at - now ? c->poll_ms : c->kill_at - now, 0);
  } else {
    sk__child_signal(c, SIGKILL);
    c->stage = 2;
    if (c->reported)
      close_handle(c, &c->timer); /* reported, and now the group is gone too */
    else
      uv_timer_start(&c->timer, on_timer, CHILD_REAP_GRACE_MS, 0);
  }
}

static void on_child_exit(uv_process_t *p, int64_t status, int sig) {
  sk__child *c = p->data;
  c->exited = 1;
  c->status = status;
  c->term_signal = sig;
  close_handle(c, p);
  if (c->stage == 0 && c->cfg.end_group_on_exit)
    end_group(c);
  maybe_finish(c);
}

static void on_timer(uv_timer_t *t) {
  sk__child *c = t->data;
  if (c->stage == 0 && c->cfg.term_grace_ms == 0) {
    c->timed_out = 1; /* KILL at once, and answer with what was read */
    sk__child_kill(c);
    c->killed = 0;
    c->stage = 2;
    if (!c->reported)
      uv_timer_start(t, on_timer, CHILD_REAP_GRACE_MS, 0);
  } else if (c->stage == 0) {
    c->timed_out = 1;
    end_group(c);
  } else if (c->stage == 1) {
    group_check(c);
  } else if (!c->exited) { /* KILLed, not reaped yet */
    sk__child_signal(c, SIGKILL);
    uv_timer_start(t, on_timer, CHILD_REAP_GRACE_MS, 0);
  } else {
    /* The group is dead but a pipe is still open: a child that left the
     * group (setsid) holds it. Stop waiting for it. */
    if (!c->out_eof)
      pipe_eof(c, &c->out);
    if (!c->err_eof)
      pipe_eof(c, &c->err);
  }
}

/* ---- output ------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  sk__child *c = h->data;
  if (c->rb == NULL)
    c->rb = sk_buf_new(CHILD_RBUF);
  buf->base = c->rb ? (char *)sk_buf_data(c->rb) : NULL;
  buf->len = c->rb ? CHILD_RBUF : 0;
}

void sk__child_pause(sk__child *c) {
  c->paused = 1;
  if (!c->out_eof)
    uv_read_stop((uv_stream_t *)&c->out);
  if (!c->err_eof)
    uv_read_stop((uv_stream_t *)&c->err);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

void sk__child_resume(sk__child *c) {
  c->paused = 0;
  if (!c->out_eof && uv_read_start((uv_stream_t *)&c->out, on_alloc, on_read) < 0)
    pipe_eof(c, &c->out);
  if (!c->err_eof && uv_read_start((uv_stream_t *)&c->err, on_alloc, on_read) < 0)
    pipe_eof(c, &c->err);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  sk__child *c = s->data;
  uint64_t cap = c->cfg.output_max;
  int over;
  if (n == 0)
    return;
  if (n < 0) { /* EOF, or an error (ENOBUFS when out of memory): same end */
    pipe_eof(c, (uv_pipe_t *)s);
    return;
  }
  over = cap > 0 && c->bytes_out + (uint64_t)n >= cap;
  if (over)
    n = (ssize_t)(cap - c->bytes_out); /* what fits is the output */
  c->bytes_out += (uint64_t)n;
  if (n > 0 &&
      c->cfg.output(c->cfg.owner, s == (uv_stream_t *)&c->out ? 1 : 2, c->rb, (size_t)n) == 1) {
    sk_buf_unref(c->rb); /* the owner has its own reference */
    c->rb = NULL;
  }
  if (over && !c->killed)
    sk__child_kill(c);
}

/* ---- stdin --------------------------------------------------------------- */

static void on_stdin_written(uv_write_t *w, int status) {
  sk__child *c = w->data;
  c->writing = 0;
  free(c->wbuf);
  c->wbuf = NULL;
  if (status < 0 || c->eof_pending) {
    c->eof_pending = 0;
    sk__child_stdin_close(c);
  }
  if (c->cfg.stdin_ready != NULL)
    c->cfg.stdin_ready(c->cfg.owner);
}

/* What the pipe does not take at once is copied and written in the
 * background; while that write is in flight nothing more is taken. */
ssize_t sk__child_stdin(sk__child *c, const uint8_t *data, size_t n) {
  uv_buf_t b = {(char *)data, n};
  int w;
  if (!c->in_open)
    return (ssize_t)n; /* closed: drop */
  if (c->writing)
    return 0;
  w = uv_try_write((uv_stream_t *)&c->in, &b, 1);
  if (w == UV_EAGAIN)
    w = 0;
  if (w < 0) { /* EPIPE: the child closed its stdin; drop the rest as ssh does */
    sk__child_stdin_close(c);
    return (ssize_t)n;
  }
  if ((size_t)w == n)
    return (ssize_t)n;
  if ((c->wbuf = malloc(n - (size_t)w)) == NULL)
    return -ENOMEM;
  memcpy(c->wbuf, data + w, n - (size_t)w);
  b = uv_buf_init((char *)c->wbuf, (unsigned)(n - (size_t)w));
  c->wreq.data = c;
  if (uv_write(&c->wreq, (uv_stream_t *)&c->in, &b, 1, on_stdin_written) < 0) {
    free(c->wbuf);
    c->wbuf = NULL;
    sk__child_stdin_close(c);
  } else {
    c->writing = 1;
  }
  return (ssize_t)n;
}

/* ---- starting ----------------------------------------------------------- */

int sk__child_start(const sk__child_cfg *cfg, sk__child **out) {
  sk__child *c = calloc(1, sizeof(*c));
  uv_stdio_container_t stdio[3];
  uv_process_options_t o = {0};
  int rc;
  *out = NULL;
  if (c == NULL)
    return -ENOMEM;
  c->cfg = *cfg;
  c->cfg.argv = NULL;
  c->cfg.env = NULL;
  c->cfg.cwd = NULL;
  uv_pipe_init(cfg->loop, &c->in, 0);
  uv_pipe_init(cfg->loop, &c->out, 0);
  uv_pipe_init(cfg->loop, &c->err, 0);
  uv_timer_init(cfg->loop, &c->timer);
  c->proc.data = c->in.data = c->out.data = c->err.data = c->timer.data = c;
  c->handles = 5; /* the process handle counts once uv_spawn has run */
  stdio[0] = (uv_stdio_container_t){.flags = cfg->want_stdin ? UV_CREATE_PIPE | UV_READABLE_PIPE
                                                             : UV_IGNORE,
                                    .data.stream = (uv_stream_t *)&c->in};
  stdio[1] = (uv_stdio_container_t){.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
                                    .data.stream = (uv_stream_t *)&c->out};
  stdio[2] = (uv_stdio_container_t){.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
                                    .data.stream = (uv_stream_t *)&c->err};
  o.exit_cb = on_child_exit;
  o.file = cfg->argv[0];
  o.args = (char **)cfg->argv;
  o.env = cfg->env;
  o.cwd = cfg->cwd;
  o.flags = UV_PROCESS_DETACHED; /* setsid: its own group, killed as one */
  o.stdio_count = 3;
  o.stdio = stdio;
  if (cfg->user != NULL && cfg->user->setuser) {
    o.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
    o.uid = cfg->user->uid;
    o.gid = cfg->user->gid;
  }
  if ((rc = uv_spawn(cfg->loop, &c->proc, &o)) < 0) {
    c->reported = 1; /* never done: the owner answers for the failure */
    close_handle(c, &c->proc);
    close_handle(c, &c->in);
    close_handle(c, &c->out);
    close_handle(c, &c->err);
    close_handle(c, &c->timer);
    *out = c;
    return rc;
  }
  c->spawned = 1;
  c->pid = c->proc.pid;
  if (cfg->want_stdin)
    c->in_open = 1;
  else
    close_handle(c, &c->in);
  sk__child_resume(c);
  uv_timer_start(&c->timer, on_timer, cfg->timeout_ms, 0);
  *out = c;
  return 0;
}
