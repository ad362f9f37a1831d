/* pipe.h - the raw byte pipe shared by `sockit listen` and `sockit connect`:
 * socket <-> stdin/stdout, both directions at once, half-close honoured. */
#ifndef SOCKIT_CLI_PIPE_H
#define SOCKIT_CLI_PIPE_H

typedef struct pipe_opts {
  const char *cmd;  /* "listen" or "connect": names the command in messages */
  const char *addr; /* SPEC 2 text; a bare PORT means 127.0.0.1:PORT */
  int udp;          /* -u: datagrams instead of a stream */
  int keep;         /* -k (listen): serve the next client after this one */
  int idle_ms;      /* --idle-timeout: end after this long without a byte; 0: never */
} pipe_opts;

/* Parse the flags both commands share (-u, -k when allow_keep, --idle-timeout,
 * --help, one optional ADDR). Returns -1 to go on, or the exit code to leave
 * with (help printed, or a usage error). */
int pipe_parse(pipe_opts *o, int argc, char **argv, const char *help, int allow_keep);

/* Run the pipe. Both return the process exit code (SPEC 3): 0 once both
 * directions are closed, 1 on a local failure or an idle timeout, 2 for a bad
 * address, 255 when the connection failed or broke. SIGINT/SIGTERM end
 * `listen` with 0 (it is a server) and `connect` with 128+signal. */
int pipe_listen(const pipe_opts *o);
int pipe_connect(const pipe_opts *o);

#endif
