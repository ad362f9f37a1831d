/* exec.c - seed exec: the tutorial's struct-based command runner. Each read
 * is a command line, run with /bin/sh -c in the file root, in its own
 * process group, for at most --exec-timeout seconds. The answer is
 * struct.pack('i', L) then L bytes: all of stdout, then all of stderr (the
 * tutorial reads both pipes to the end before it answers; so do we). `q`
 * alone closes. While a command runs nothing more is read: the tutorial's
 * server does not read either, and TCP pushes back on the client. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/seed.h"
#include "services/services.h"
#include "wire/seed.h"

#define EXEC_READ_MIN (64u * 1024) /* spare room offered to each pipe read */

typedef struct exec_out {
  char *p;
  size_t len, cap;
} exec_out;

typedef struct exec_conn {
  sk_seed_conn sc;
  uv_process_t proc;
  uv_pipe_t pipes[2]; /* the child's stdout and stderr */
  uv_timer_t timer;   /* --exec-timeout */
  exec_out out[2];
  int handles; /* this command's handles not yet closed */
  int pending; /* exit and the two EOFs still to come */
  int running, spawned, killed;
} exec_conn;

static void finish(exec_conn *ec);

static void on_handle_closed(uv_handle_t *h) {
  exec_conn *ec = h->data;
  if (--ec->handles == 0)
    finish(ec);
  sk__seed_drop(&ec->sc); /* last: may free ec */
}

static void close_one(exec_conn *ec, uv_handle_t *h) {
  if (!uv_is_closing(h))
    uv_close(h, on_handle_closed);
}

/* exit and both EOFs seen, or given up on: the timer can go too */
static void event_done(exec_conn *ec) {
  if (--ec->pending == 0)
    close_one(ec, (uv_handle_t *)&ec->timer);
}

/* SIGKILL the whole group and stop waiting for the pipes: a daemon that
 * left the group may hold them open for ever. */
static void kill_command(exec_conn *ec) {
  if (ec->spawned && !ec->killed && ec->proc.pid > 0)
    kill(-ec->proc.pid, SIGKILL);
  ec->killed = 1;
  for (int i = 0; i < 2; i++)
    if (!uv_is_closing((uv_handle_t *)&ec->pipes[i])) {
      close_one(ec, (uv_handle_t *)&ec->pipes[i]);
      event_done(ec);
    }
}

static size_t out_total(const exec_conn *ec) {
  return ec->out[0].len + ec->out[1].len;
}

/* Offer spare room in the pipe's buffer; 0 bytes once the cap is reached
 * (libuv then reports UV_ENOBUFS). */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  exec_conn *ec = h->data;
  exec_out *o = &ec->out[(uv_pipe_t *)h == &ec->pipes[1]];
  size_t room = SK_SEED_EXEC_MAX - out_total(ec);
  size_t want = o->len + (room < EXEC_READ_MIN ? room : EXEC_READ_MIN);

  *buf = uv_buf_init(NULL, 0);
  if (room == 0)
    return;
  if (want > o->cap) {
    size_t cap = o->cap ? o->cap * 2 : EXEC_READ_MIN;
    char *p;
    cap = cap < want ? want : cap;
    cap = cap > o->len + room ? o->len + room : cap;
    if ((p = realloc(o->p, cap)) == NULL)
      return;
    o->p = p;
    o->cap = cap;
  }
  *buf = uv_buf_init(o->p + o->len, (unsigned)(o->cap - o->len));
}

static void on_pipe_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  exec_conn *ec = s->data;
  if (n > 0) {
    ec->out[(uv_pipe_t *)s == &ec->pipes[1]].len += (size_t)n;
    return;
  }
  if (n == UV_ENOBUFS) { /* over the cap: what we have is the answer */
    kill_command(ec);
    return;
  }
  if (n < 0 && !uv_is_closing((uv_handle_t *)s)) {
    close_one(ec, (uv_handle_t *)s);
    event_done(ec);
  }
}

static void on_child_exit(uv_process_t *p, int64_t status, int signal) {
  exec_conn *ec = p->data;
  close_one(ec, (uv_handle_t *)p);
  event_done(ec);
}

static void on_timeout(uv_timer_t *t) {
  exec_conn *ec = t->data;
  sk__seed_log(&ec->sc, "exec_timeout", "wire", 's', "seed/exec", NULL);
  kill_command(ec);
}

/* Every handle of the command is closed: answer, then read the next one. */
static void finish(exec_conn *ec) {
  sk_seed_conn *sc = &ec->sc;
  uint8_t len[4];
  uv_buf_t bufs[3];

  sk__seed_put_u32le(len, (uint32_t)out_total(ec));
  bufs[0] = uv_buf_init((char *)len, 4);
  bufs[1] = uv_buf_init(ec->out[0].p, (unsigned)ec->out[0].len);
  bufs[2] = uv_buf_init(ec->out[1].p, (unsigned)ec->out[1].len);
  if (!sc->closing)
    sk__seed_writev(sc, bufs, 3);
  for (int i = 0; i < 2; i++) {
    free(ec->out[i].p);
    ec->out[i] = (exec_out){0};
  }
  ec->running = ec->spawned = ec->killed = 0;
  sk__seed_resume(sc);
  sk__seed_done(sc);
}

/* Init one of the command's handles: it holds the connection until closed. */
static void own_handle(exec_conn *ec, uv_handle_t *h) {
  h->data = ec;
  ec->handles++;
  sk__seed_hold(&ec->sc);
}

/* The answer says why, on "stderr", as a shell that cannot start would. */
static void spawn_failed(exec_conn *ec, int rc) {
  exec_out *o = &ec->out[1];
  char msg[160];
  int n = snprintf(msg, sizeof(msg), "sockit: cannot run /bin/sh: %s\n", uv_strerror(rc));
  if (n > 0 && (o->p = malloc((size_t)n)) != NULL) {
    memcpy(o->p, msg, (size_t)n);
    o->len = o->cap = (size_t)n;
  }
}

static void run(exec_conn *ec, char *cmd) {
  sk_seed_conn *sc = &ec->sc;
  char *args[] = {"/bin/sh", "-c", cmd, NULL};
  uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE}};
  uv_process_options_t o = {.exit_cb = on_child_exit,
                            .file = args[0],
                            .args = args,
                            .cwd = sk_server_root(sc->srv),
                            .flags = UV_PROCESS_DETACHED,
                            .stdio_count = 3,
                            .stdio = stdio};
  int rc;

  ec->running = 1;
  ec->pending = 3;
  sk__seed_pause(sc);
  for (int i = 0; i < 2; i++) {
    uv_pipe_init(sc->uv, &ec->pipes[i], 0);
    own_handle(ec, (uv_handle_t *)&ec->pipes[i]);
    stdio[i + 1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[i + 1].data.stream = (uv_stream_t *)&ec->pipes[i];
  }
  uv_timer_init(sc->uv, &ec->timer);
  own_handle(ec, (uv_handle_t *)&ec->timer);
  if (sk__exec_user(sc->srv, &o.uid, &o.gid)) /* --exec-user, resolved by the exec service */
    o.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
  rc = uv_spawn(sc->uv, &ec->proc, &o);
  if (rc < 0) { /* the handle still has to be closed */
    spawn_failed(ec, rc);
    own_handle(ec, (uv_handle_t *)&ec->proc);
    close_one(ec, (uv_handle_t *)&ec->proc);
    event_done(ec);
    kill_command(ec);
    return;
  }
  own_handle(ec, (uv_handle_t *)&ec->proc);
  ec->spawned = 1;
  uv_timer_start(&ec->timer, on_timeout,
                 (uint64_t)sk_server_opt_int(sc->srv, "exec-timeout") * 1000, 0);
  for (int i = 0; i < 2; i++)
    uv_read_start((uv_stream_t *)&ec->pipes[i], on_alloc, on_pipe_read);
}

/* An answer that never ran a command, as if the shell wrote text to stderr. */
static void reply_text(sk_seed_conn *sc, const char *text) {
  uint8_t len[4];
  uv_buf_t bufs[2] = {uv_buf_init((char *)len, 4), uv_buf_init((char *)text, strlen(text))};
  sk__seed_put_u32le(len, (uint32_t)bufs[1].len);
  sk__seed_writev(sc, bufs, 2);
}

static void on_read(sk_seed_conn *sc, const char *p, size_t n) {
  exec_conn *ec = (exec_conn *)sc;
  char *cmd;

  if (n == 1 && p[0] == 'q') { /* the tutorial's way to leave */
    sk__seed_close(sc, 1);
    return;
  }
  if (memchr(p, '\0', n) != NULL) {
    reply_text(sc, "sockit: a command line cannot contain a NUL byte\n");
    return;
  }
  if ((cmd = malloc(n + 1)) == NULL) {
    reply_text(sc, "sockit: out of memory\n");
    return;
  }
  memcpy(cmd, p, n);
  cmd[n] = '\0';
  sk__seed_log(sc, "exec", "wire", 's', "seed/exec", "shell", 's', cmd, NULL);
  run(ec, cmd);
  free(cmd); /* uv_spawn has copied what it needs by the time it returns */
}

static void on_closing(sk_seed_conn *sc) {
  exec_conn *ec = (exec_conn *)sc;
  if (ec->running)
    kill_command(ec);
}

static void on_free(sk_seed_conn *sc) {
  exec_conn *ec = (exec_conn *)sc;
  for (int i = 0; i < 2; i++)
    free(ec->out[i].p);
}

static int busy(sk_seed_conn *sc) {
  return ((exec_conn *)sc)->running;
}

static const sk_seed_ops ops = {.name = "seed/exec",
                                .read = on_read,
                                .closing = on_closing,
                                .free = on_free,
                                .busy = busy,
                                .size = sizeof(exec_conn)};

static void accept_exec(sk_listener *l, int fd) {
  sk__seed_accept(l, fd, &ops);
}

static int check_exec(sk_server *srv, const sk_listen_spec *ls, const char **why) {
  if (!sk_server_opt_int(srv, "allow-exec")) {
    *why = "--wire seed --service exec runs shell commands for anyone who connects: "
           "start the server with --allow-exec to allow it";
    return -EPERM;
  }
  /* SPEC 6 v2: an unauthenticated shell must not be a root shell by
   * default; `--exec-user root` is still a choice one can make. */
  if (geteuid() == 0 && sk__server_opt_str(srv, "exec-user")[0] == '\0') {
    *why = "--wire seed --service exec runs shell commands for anyone who connects, and this "
           "server runs as root: name who runs them with --exec-user USER";
    return -EPERM;
  }
  return sk__seed_check(srv, ls, why);
}

const sk_wire sk__wire_seed_exec = {
    .name = "seed/exec", .accept = accept_exec, .check = check_exec};
