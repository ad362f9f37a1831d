/* child.h - the child-process runner behind the exec service (SPEC 4.6)
 * and the seed wire's exec (SPEC 6): one program in its own process group
 * (UV_PROCESS_DETACHED: setsid), its stdout and stderr read on the owner's
 * loop, an optional stdin, a timeout that ends the whole group, an output
 * cap, and the user it runs as.
 *
 * Ownership: the runner owns the child's uv handles (process, three pipes,
 * a timer) and its read buffer; it frees itself once every handle is closed
 * and then calls freed, in every case (also after a failed spawn). done runs
 * once, when the program has exited and both output pipes reached EOF (or
 * were given up on), so no output is lost behind it. The owner must stay
 * alive until freed. Everything runs on the owner's loop thread. */
#ifndef SOCKIT_SERVICES_CHILD_H
#define SOCKIT_SERVICES_CHILD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "sockit/server.h"

typedef struct sk__child sk__child;

/* Who a child runs as (--exec-user), resolved once at start. */
typedef struct sk__child_user {
  bool setuser; /* set uid and gid on each child (the server runs as root) */
  uid_t uid;
  gid_t gid;
  char name[64]; /* "" when no user was named */
  char home[1024];
} sk__child_user;

/* Resolve --exec-user NAME into *u: a known user, and another one than the
 * server's own only when the server runs as root. 0, or a negative errno
 * with a line for the operator in why (cap bytes). */
int sk__child_user_resolve(const char *name, sk__child_user *u, char *why, size_t cap);

typedef struct sk__child_result {
  int64_t status;  /* the exit code, when term_signal is 0 */
  int term_signal; /* the signal that ended the program, or 0 */
  bool timed_out;  /* the timeout ended it */
  bool killed;     /* sk__child_kill or the output cap ended it */
  uint64_t bytes_out;
} sk__child_result;

typedef struct sk__child_cfg {
  uv_loop_t *loop;
  const char *const *argv; /* argv[0] is the program's path or name */
  char **env;              /* the environment, or NULL for the server's */
  const char *cwd;
  const sk__child_user *user; /* NULL or !setuser: the server's own */
  bool want_stdin;            /* a pipe to its stdin (else /dev/null) */
  uint64_t timeout_ms;
  /* At the timeout: TERM the group, then KILL this much later; 0: KILL at
   * once and stop reading. */
  uint64_t term_grace_ms;
  /* When the program exits, end what it left running in its group (as a
   * session leader's exit would); else wait for its pipes. */
  bool end_group_on_exit;
  uint64_t output_max; /* stdout and stderr together; past it: KILL; 0: no cap */
  void *owner;
  /* n bytes of fd 1 or 2 in buf. Return 1 if the owner kept buf (took a
   * reference: the runner reads into a new one), 0 if it copied them. */
  int (*output)(void *owner, int fd, sk_buf *buf, size_t n);
  /* A stdin write that was in flight has finished: stdin takes bytes again. */
  void (*stdin_ready)(void *owner);
  void (*done)(void *owner, const sk__child_result *r);
  void (*freed)(void *owner);
} sk__child_cfg;

/* Spawn the program. Returns 0 with *out set; or an error (< 0): the
 * program did not start and done never runs. With *out set (the spawn
 * failed) freed still runs once the handles are closed; with *out NULL
 * (out of memory) nothing was made and freed never runs. */
int sk__child_start(const sk__child_cfg *cfg, sk__child **out);

/* Write to the program's stdin: returns n (taken: written, or copied for a
 * write in the background; dropped when stdin is closed) or 0 (a write is
 * in flight: stdin_ready follows), or -ENOMEM. */
ssize_t sk__child_stdin(sk__child *c, const uint8_t *data, size_t n);
/* Close its stdin (after the write in flight, if any). */
void sk__child_stdin_close(sk__child *c);

/* Stop / restart reading its output (the owner's peer is slow). */
void sk__child_pause(sk__child *c);
void sk__child_resume(sk__child *c);

/* Send sig to its whole process group. */
void sk__child_signal(sk__child *c, int sig);

/* The owner is gone or has enough: KILL the group, close stdin, stop
 * reading. done still runs (once the program is reaped). */
void sk__child_kill(sk__child *c);

#endif
