/* pipe.h - the raw byte pipe shared by `sockit listen` and `sockit connect`:
 * socket <-> stdin/stdout, both directions at once, half-close honoured. */
#ifndef SOCKIT_CLI_PIPE_H
#define SOCKIT_CLI_PIPE_H

typedef struct pipe_opts {
  const char *cmd;      /* "listen" or "connect": names the command in messages */
  const char *addr;     /* SPEC 2 text; a bare PORT means 127.0.0.1:PORT */
  int udp;              /* -u: datagrams instead of a stream */
  int keep;             /* -k (listen): serve the next client after this one */
  int keep_sending;     /* --keep-sending: the peer's EOF does not end the session */
  int idle_ms;          /* --idle-timeout: end after this long without a byte; 0: never */
  int connect_ms;       /* connect -w/--timeout: for the connect itself; 0: 10 s */
  int tls;              /* --tls: TLS 1.3 keyed by the key file's secret (stream only) */
  int verbose;          /* -v: say each step (resolve, connect, a client's address) */
  const char *key_file; /* --key-file: NULL for the default key */
  char addr_buf[320];   /* `HOST PORT` joined as HOST:PORT */
} pipe_opts;

/* Parse the flags both commands share (-u, -k when allow_keep, --keep-sending,
 * --idle-timeout, -w for connect, -v, --help, one optional ADDR or HOST PORT). Returns -1 to go on,
 * or the exit code to leave with (help printed, or a usage error). */
int pipe_parse(pipe_opts *o, int argc, char **argv, const char *help, int allow_keep);

/* Run the pipe. Both return the process exit code (SPEC 3, 3.1): 0 once
 * the peer closed and everything received is written out (with
 * --keep-sending: once both directions are closed), 1 on a local failure,
 * an idle timeout or a reset by the peer, 2 for a bad address, 255 when the
 * connection could not be made. SIGINT/SIGTERM end
 * `listen` with 0 (it is a server) and `connect` with 128+signal. */
int pipe_listen(const pipe_opts *o);
int pipe_connect(const pipe_opts *o);

#endif
