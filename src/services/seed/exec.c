/* exec.c - seed exec: the tutorial's struct-based command runner. Each read
 * is a command line, run with /bin/sh -c in the file root, in its own
 * process group, for at most --exec-timeout seconds. The answer is
 * struct.pack('i', L) then L bytes: all of stdout, then all of stderr (the
 * tutorial reads both pipes to the end before it answers; so do we). `q`
 * alone closes. While a command runs nothing more is read: the tutorial's
 * server does not read either, and TCP pushes back on the client.
 *
 * The seed adapter of the child-process runner (services/child.h), which
 * the exec service uses too: this file parses the tutorial's bytes and
 * frames the collected output as the tutorial's client wants it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/seed.h"
#include "services/child.h"
#include "services/services.h"
#include "wire/seed.h"

#define EXEC_READ_MIN (64u * 1024) /* the first room for a pipe's output */

typedef struct exec_out {
  char *p;
  size_t len, cap;
} exec_out;

typedef struct exec_conn {
  sk_seed_conn sc;
  sk__child *child; /* the command running (NULL once it has ended) */
  exec_out out[2];  /* its stdout and stderr, all of them (the runner caps the sum) */
  int running;
} exec_conn;

/* ---- the runner's callbacks ---------------------------------------------- */

static int on_output(void *owner, int fd, sk_buf *buf, size_t n) {
  exec_conn *ec = owner;
  exec_out *o = &ec->out[fd == 2];
  if (o->len + n > o->cap) {
    size_t cap = o->cap ? o->cap * 2 : EXEC_READ_MIN;
    size_t most = SK_SEED_EXEC_MAX - ec->out[fd != 2].len; /* the other pipe's share is taken */
    char *p;
    cap = cap > most ? most : cap;
    cap = cap < o->len + n ? o->len + n : cap;
    if ((p = realloc(o->p, cap)) == NULL) { /* what we have is the answer */
      sk__child_kill(ec->child);
      return 0;
    }
    o->p = p;
    o->cap = cap;
  }
  memcpy(o->p + o->len, sk_buf_data(buf), n);
  o->len += n;
  return 0;
}

/* The command ended (exit and both EOFs, or given up on): answer, then
 * read the next one. */
static void on_done(void *owner, const sk__child_result *r) {
  exec_conn *ec = owner;
  sk_seed_conn *sc = &ec->sc;
  uint8_t len[4];
  uv_buf_t bufs[3];

  if (r->timed_out)
    sk__seed_log(sc, "exec_timeout", "wire", 's', "seed/exec", NULL);
  sk__seed_put_u32le(len, (uint32_t)(ec->out[0].len + ec->out[1].len));
  bufs[0] = uv_buf_init((char *)len, 4);
  bufs[1] = uv_buf_init(ec->out[0].p, (unsigned)ec->out[0].len);
  bufs[2] = uv_buf_init(ec->out[1].p, (unsigned)ec->out[1].len);
  if (!sc->closing)
    sk__seed_writev(sc, bufs, 3);
  for (int i = 0; i < 2; i++) {
    free(ec->out[i].p);
    ec->out[i] = (exec_out){0};
  }
  ec->child = NULL;
  ec->running = 0;
  sk__seed_resume(sc);
  sk__seed_done(sc);
}

static void on_freed(void *owner) {
  exec_conn *ec = owner;
  sk__seed_drop(&ec->sc); /* last: may free ec */
}

/* An answer that never ran a command, as if the shell wrote text to stderr. */
static void reply_text(sk_seed_conn *sc, const char *text) {
  uint8_t len[4];
  uv_buf_t bufs[2] = {uv_buf_init((char *)len, 4), uv_buf_init((char *)text, strlen(text))};
  sk__seed_put_u32le(len, (uint32_t)bufs[1].len);
  sk__seed_writev(sc, bufs, 2);
}

static void run(exec_conn *ec, const char *cmd) {
  sk_seed_conn *sc = &ec->sc;
  const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  sk__child_user user = {0};
  sk__child_cfg cfg = {.loop = sc->uv,
                       .argv = argv,
                       .cwd = sk_server_root(sc->srv),
                       .user = &user,
                       .timeout_ms = (uint64_t)sk_server_opt_int(sc->srv, "exec-timeout") * 1000,
                       .term_grace_ms = 0,         /* KILL at the timeout, answer what was read */
                       .end_group_on_exit = false, /* as the tutorial: wait for the pipes */
                       .output_max = SK_SEED_EXEC_MAX,
                       .owner = ec,
                       .output = on_output,
                       .done = on_done,
                       .freed = on_freed};
  char msg[160];
  int rc;

  /* --exec-user, resolved by the exec service (on: --allow-exec is given) */
  user.setuser = sk__exec_user(sc->srv, &user.uid, &user.gid) != 0;
  rc = sk__child_start(&cfg, &ec->child);
  if (ec->child != NULL)
    sk__seed_hold(sc); /* until on_freed */
  if (rc == 0) {
    ec->running = 1;
    sk__seed_pause(sc);
    return;
  }
  /* the answer says why, on "stderr", as a shell that cannot start would */
  ec->child = NULL;
  snprintf(msg, sizeof(msg), "sockit: cannot run /bin/sh: %s\n", uv_strerror(rc));
  reply_text(sc, msg);
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
    sk__child_kill(ec->child);
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
