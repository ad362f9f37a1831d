/* pipe.c - the byte pipe under `sockit listen` and `sockit connect`.
 *
 * One thread, one ppoll(2) loop, two buffers: stdin -> socket ("in") and
 * socket -> stdout ("out"). Every descriptor we may write to is non-blocking
 * (except a terminal, which we leave alone because the shell shares it), so
 * a slow reader on one side never stalls the other direction. Half-close
 * (SPEC 3.1): stdin's EOF becomes shutdown(SHUT_WR) once "in" is flushed;
 * the peer's EOF, once "out" is flushed, ends the session with success even
 * while stdin is still open, as ncat and socat do (--keep-sending: it closes
 * our stdout and stdin goes on until it ends). `listen -u` ends at stdin's
 * end (after sending what it read) unless -k.
 *
 * SIGINT/SIGTERM are blocked except inside ppoll, so a signal can only land
 * while we wait and is never lost between a check and the wait. */
#include "pipe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "cli.h"
#include "common/sock.h"
#include "tls/tls.h"

#define RELAY_BUF (256u * 1024)  /* per direction: big reads and writes for throughput */
#define UDP_MAX 65507            /* the largest IPv4 UDP payload */
#define UDP_ROOM 65536           /* free room needed to receive any datagram whole */
#define UDP_LINGER_MS 1000       /* connect -u: wait this long for answers after stdin's EOF */
#define CONNECT_TIMEOUT_MS 10000 /* -w: the default, as for every client command */
#define EOF_LINGER_MS 500  /* after the peer's EOF: stdin silent this long ends it (socat's -t) */
#define HANDSHAKE_MS 10000 /* --tls: the handshake's bound, as a server's auth deadline */

typedef struct relay_buf {
  char *data;
  size_t pos, len; /* unsent bytes are data[pos..len) */
} relay_buf;

typedef struct relay {
  const pipe_opts *o;
  int sock;
  int dgram;                    /* a datagram socket: one read = one datagram */
  int server;                   /* listen: replies go to the last sender */
  struct sockaddr_storage peer; /* listen -u: the last sender */
  socklen_t peer_len;           /* 0: nobody has sent yet */
  relay_buf in, out;            /* stdin -> socket, socket -> stdout */
  int stdin_eof;                /* stays set across -k clients */
  int wr_shut, sock_eof;        /* our FIN sent; the peer's FIN seen */
  int out_closed, out_broken;   /* stdout closed by us; its reader went away */
  const char *failed;           /* "stdin", "stdout" or NULL (the socket) on error */
  int64_t last_io;              /* monotonic ms of the last byte moved */
  int64_t last_stdin;           /* ... of the last stdin read, or of the peer's EOF */
  sk__tls *tls;                 /* --tls: the context, keyed by the secret */
  SSL *ssl;                     /* --tls: the session on sock */
} relay;

static volatile sig_atomic_t got_signal;
static sigset_t wait_mask; /* the mask ppoll waits with: our signals open */
static int saved_fl[2] = {-1, -1};

static void on_signal(int sig) {
  got_signal = sig;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- process set-up and its one undo ------------------------------------------ */

static void signals_setup(void) {
  struct sigaction sa;
  sigset_t block;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal; /* no SA_RESTART: the wait must return */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN); /* a closed stdout or socket is an error code, not death */
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigprocmask(SIG_BLOCK, &block, &wait_mask);
  sigdelset(&wait_mask, SIGINT);
  sigdelset(&wait_mask, SIGTERM);
}

/* stdin/stdout go non-blocking unless they are a terminal; the old flags come
 * back in stdio_restore, since the file description may be shared. */
static void stdio_nonblock(void) {
  for (int fd = 0; fd < 2; fd++) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || isatty(fd) || (fl & O_NONBLOCK))
      continue;
    if (fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0)
      saved_fl[fd] = fl;
  }
}

static void stdio_restore(const relay *r) {
  for (int fd = 0; fd < 2; fd++) {
    if (saved_fl[fd] >= 0 && !(fd == STDOUT_FILENO && r->out_closed))
      fcntl(fd, F_SETFL, saved_fl[fd]);
    saved_fl[fd] = -1;
  }
}

/* Wait for fds; returns the ready count, 0 on timeout, -EINTR once a
 * SIGINT/SIGTERM has arrived, or another negative errno. */
static int wait_fds(struct pollfd *p, int n, int timeout_ms) {
  struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000};
  int rc;
  if (got_signal)
    return -EINTR;
  rc = ppoll(p, (nfds_t)n, timeout_ms < 0 ? NULL : &ts, &wait_mask);
  if (rc >= 0)
    return rc;
  if (errno != EINTR)
    return -errno;
  return got_signal ? -EINTR : 0;
}

/* ---- moving bytes -------------------------------------------------------------- */

static int again(int err) {
  return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

static void moved(relay *r) {
  r->last_io = now_ms();
}

/* Compact once the buffer is empty: the cursor resets, no memmove needed. */
static size_t room(relay_buf *b) {
  if (b->pos == b->len)
    b->pos = b->len = 0;
  return RELAY_BUF - b->len;
}

/* stdin -> in. A datagram pipe reads only into an empty buffer, so that one
 * read is one datagram. Returns 0 or a negative errno. */
static int read_stdin(relay *r) {
  size_t cap = room(&r->in);
  if (r->dgram)
    cap = r->in.len == 0 ? UDP_MAX : 0;
  ssize_t n;
  if (cap == 0)
    return 0;
  n = read(STDIN_FILENO, r->in.data + r->in.len, cap);
  if (n < 0 && again(errno))
    return 0;
  if (n < 0 && errno != EBADF) {
    r->failed = "stdin";
    return -errno;
  }
  if (n <= 0)
    r->stdin_eof = 1; /* EOF, or no stdin at all */
  else
    r->in.len += (size_t)n;
  moved(r);
  r->last_stdin = r->last_io;
  return 0;
}

/* ---- --tls: the same pipe through an SSL session ------------------------------------ */

/* What an SSL call's failure means here: 0 to wait and retry, 1 for the
 * peer's end (close_notify, or a close without it), or an -errno. */
static int tls_status(relay *r, int ret) {
  int err = SSL_get_error(r->ssl, ret);
  unsigned long e = ERR_peek_last_error();
  ERR_clear_error();
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE)
    return 0;
  if (err == SSL_ERROR_ZERO_RETURN || ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING ||
      (err == SSL_ERROR_SYSCALL && e == 0 && errno == 0))
    return 1;
  if (err == SSL_ERROR_SYSCALL && errno != 0)
    return -errno;
  return -EPROTO; /* a record that does not decrypt: altered on the way */
}

static int tls_send_in(relay *r) {
  int n, rc;
  size_t len = r->in.len - r->in.pos;
  ERR_clear_error();
  errno = 0;
  n = SSL_write(r->ssl, r->in.data + r->in.pos, len > INT32_MAX ? INT32_MAX : (int)len);
  if (n > 0) {
    r->in.pos += (size_t)n;
    moved(r);
    return 0;
  }
  rc = tls_status(r, n);
  return rc > 0 ? -EPIPE : rc;
}

static int tls_recv_out(relay *r, size_t cap) {
  int n, rc;
  ERR_clear_error();
  errno = 0;
  n = SSL_read(r->ssl, r->out.data + r->out.len, cap > INT32_MAX ? INT32_MAX : (int)cap);
  if (n > 0) {
    r->out.len += (size_t)n;
    moved(r);
    return 0;
  }
  if ((rc = tls_status(r, n)) > 0) {
    r->sock_eof = 1;
    r->last_stdin = now_ms(); /* the linger after the peer's EOF starts now */
    return 0;
  }
  return rc;
}

/* The handshake on a connected socket, bounded by HANDSHAKE_MS. 0, or
 * EXIT_CONN with the line said. */
static int tls_start(relay *r, int fd) {
  int64_t deadline = now_ms() + HANDSHAKE_MS;
  r->ssl = sk__tls_ssl(r->tls, NULL, NULL);
  BIO *bio = r->ssl != NULL ? sk__tls_socket_bio(fd) : NULL;
  if (bio == NULL) {
    cli_error(r->o->cmd, "out of memory");
    return EXIT_CONN;
  }
  SSL_set_bio(r->ssl, bio, bio);
  for (;;) {
    int n, rc, left = (int)(deadline - now_ms());
    ERR_clear_error();
    errno = 0;
    n = SSL_do_handshake(r->ssl);
    if (n == 1)
      return 0;
    int want = SSL_get_error(r->ssl, n);
    const char *why = sk__tls_reason();
    if (want == SSL_ERROR_WANT_READ || want == SSL_ERROR_WANT_WRITE) {
      struct pollfd p = {fd, want == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, 0};
      if (left <= 0 || (rc = wait_fds(&p, 1, left)) == 0) {
        cli_error(r->o->cmd, "the TLS handshake with %s did not finish within %d s", r->o->addr,
                  HANDSHAKE_MS / 1000);
        return EXIT_CONN;
      }
      if (rc < 0)
        return rc == -EINTR ? (r->server ? EXIT_OK : 128 + got_signal) : EXIT_CONN;
      continue;
    }
    cli_error(r->o->cmd,
              "TLS with %s failed (%s): both sides need --tls and the same key file (--key-file F)",
              r->o->addr, why);
    return EXIT_CONN;
  }
}

/* The context for --tls: a PSK from the key file, client or server side. */
static int tls_setup(relay *r, int server) {
  char path[4096];
  const char *file = r->o->key_file, *why = NULL;
  sk_key key = {0};
  sk__tls_opts to = {.server = server};
  int rc;
  if (file == NULL) {
    if (sk_key_default_path(path, sizeof(path)) < 0) {
      cli_error(r->o->cmd, "--tls needs a key: give --key-file F");
      return -1;
    }
    file = path;
  }
  if ((rc = sk_key_load(file, &key, &why)) < 0) {
    cli_error(r->o->cmd, "--tls needs a key: %s: %s (make one with: sockit keygen)", file,
              why ? why : sk_strerror(rc));
    return -1;
  }
  to.key = &key;
  r->tls = sk__tls_new(&to, &why);
  sk_key_clear(&key);
  if (r->tls == NULL) {
    cli_error(r->o->cmd, "cannot set up TLS: %s", why ? why : "OpenSSL failed");
    return -1;
  }
  return 0;
}

static void tls_end(relay *r) {
  SSL_free(r->ssl);
  r->ssl = NULL;
  ERR_clear_error();
}

/* in -> socket: as much as the socket takes, or one whole datagram. A
 * datagram that cannot reach a listener's last sender is dropped. */
static int send_in(relay *r) {
  const struct sockaddr *to = r->server && r->dgram ? (const struct sockaddr *)&r->peer : NULL;
  ssize_t n;
  if (r->in.pos == r->in.len || (r->server && r->dgram && r->peer_len == 0))
    return 0;
  if (r->ssl != NULL)
    return tls_send_in(r);
  n = sendto(r->sock, r->in.data + r->in.pos, r->in.len - r->in.pos, MSG_NOSIGNAL, to,
             to ? r->peer_len : 0);
  if (n < 0 && again(errno))
    return 0;
  if (n < 0 && !(r->server && r->dgram))
    return -errno;
  if (n < 0)
    cli_error(r->o->cmd, "cannot answer the last sender: %s", strerror(errno));
  r->in.pos = n < 0 || r->dgram ? r->in.len : r->in.pos + (size_t)n;
  moved(r);
  return 0;
}

/* A listener remembers who sent last: replies go there. Unbound Unix
 * senders have no address to answer and are not remembered. */
static void note_sender(relay *r, const struct sockaddr_storage *from, socklen_t len) {
  if (!r->server || len <= sizeof(sa_family_t))
    return;
  memcpy(&r->peer, from, len);
  r->peer_len = len;
}

/* socket -> out. Returns 0 or a negative errno. */
static int recv_out(relay *r) {
  struct sockaddr_storage from;
  socklen_t flen = sizeof(from);
  size_t cap = room(&r->out);
  ssize_t n;
  if (r->out_broken) { /* nobody reads our stdout: drop, but keep the peer flowing */
    r->out.pos = r->out.len = 0;
    cap = RELAY_BUF;
  }
  if (cap < (r->dgram ? UDP_ROOM : 1))
    return 0;
  if (r->ssl != NULL)
    return tls_recv_out(r, cap);
  n = recvfrom(r->sock, r->out.data + r->out.len, cap, 0, (struct sockaddr *)&from, &flen);
  if (n < 0)
    return again(errno) ? 0 : -errno;
  if (n == 0 && !r->dgram) {
    r->sock_eof = 1;
    r->last_stdin = now_ms(); /* the linger after the peer's EOF starts now */
  }
  if (r->dgram)
    note_sender(r, &from, flen);
  r->out.len += (size_t)n;
  moved(r);
  return 0;
}

/* out -> stdout. A reader that went away (EPIPE) is not fatal: the rest is
 * dropped so that the other direction can still finish; the exit code says 1. */
static int write_out(relay *r) {
  ssize_t n;
  if (r->out.pos == r->out.len)
    return 0;
  n = write(STDOUT_FILENO, r->out.data + r->out.pos, r->out.len - r->out.pos);
  if (n < 0 && again(errno))
    return 0;
  if (n < 0 && (errno == EPIPE || errno == EBADF)) {
    r->out_broken = 1;
    r->out.pos = r->out.len = 0;
    return 0;
  }
  if (n < 0) {
    r->failed = "stdout";
    return -errno;
  }
  r->out.pos += (size_t)n;
  moved(r);
  return 0;
}

/* ---- the loop --------------------------------------------------------------------- */

/* listen -u reads stdin before anyone has sent (a datagram waits in "in"
 * for the first sender), so that the end of stdin is seen at once. */
static int want_stdin(const relay *r) {
  if (r->stdin_eof)
    return 0;
  return r->in.pos == r->in.len || (!r->dgram && r->in.len < RELAY_BUF);
}

static int want_sock_read(const relay *r) {
  size_t free_room = r->out.pos == r->out.len ? RELAY_BUF : RELAY_BUF - r->out.len;
  return !r->sock_eof && (r->out_broken || free_room >= (r->dgram ? UDP_ROOM : 1));
}

/* How long the next wait may last: up to the idle deadline, or for connect -u
 * after stdin's EOF, the linger deadline. -1: forever. */
static int wait_budget(const relay *r) {
  int64_t deadline = -1, left;
  if (r->o->idle_ms > 0)
    deadline = r->last_io + r->o->idle_ms;
  if (r->dgram && !r->server && r->stdin_eof && r->in.pos == r->in.len &&
      (deadline < 0 || r->last_io + UDP_LINGER_MS < deadline))
    deadline = r->last_io + UDP_LINGER_MS;
  if (r->sock_eof && !r->o->keep_sending && !r->o->keep &&
      (deadline < 0 || r->last_stdin + EOF_LINGER_MS < deadline))
    deadline = r->last_stdin + EOF_LINGER_MS;
  if (deadline < 0)
    return -1;
  left = deadline - now_ms();
  return left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

/* One wait and whatever it made possible. Writes are tried whenever there is
 * something to write: the wait said so, or a read just filled the buffer. */
static int step(relay *r) {
  struct pollfd p[3];
  int n = 0, ii = -1, si = -1, rc;
  if (r->ssl != NULL && want_sock_read(r) && SSL_pending(r->ssl) > 0) {
    /* decrypted bytes poll cannot see: take them before waiting */
    if ((rc = recv_out(r)) < 0)
      return rc;
    return write_out(r);
  }
  short sev = (short)((r->in.pos < r->in.len ? POLLOUT : 0) | (want_sock_read(r) ? POLLIN : 0));
  if (want_stdin(r))
    ii = n, p[n++] = (struct pollfd){STDIN_FILENO, POLLIN, 0};
  if (sev != 0)
    si = n, p[n++] = (struct pollfd){r->sock, sev, 0};
  if (r->out.pos < r->out.len)
    p[n++] = (struct pollfd){STDOUT_FILENO, POLLOUT, 0};
  if ((rc = wait_fds(p, n, wait_budget(r))) <= 0)
    return rc;
  if (ii >= 0 && p[ii].revents != 0 && (rc = read_stdin(r)) < 0)
    return rc;
  if ((rc = send_in(r)) < 0)
    return rc;
  if (si >= 0 && (p[si].revents & ~POLLOUT) != 0 && want_sock_read(r) && (rc = recv_out(r)) < 0)
    return rc;
  return write_out(r);
}

/* Apply what EOFs imply. Returns 1 when the session is over, 0 to go on, or
 * -ETIMEDOUT when it sat idle too long. */
static int settle(relay *r) {
  int in_empty = r->in.pos == r->in.len, out_empty = r->out.pos == r->out.len;
  if (r->o->idle_ms > 0 && now_ms() - r->last_io >= r->o->idle_ms)
    return -ETIMEDOUT;
  if (r->dgram && r->server) /* listen -u: stdin's end is the end, unless -k */
    return !r->o->keep && r->stdin_eof && in_empty && out_empty;
  if (r->dgram)
    return r->stdin_eof && in_empty && now_ms() - r->last_io >= UDP_LINGER_MS;
  if (r->stdin_eof && in_empty && !r->wr_shut) {
    if (r->ssl != NULL) { /* close_notify first: TLS 1.3 half-closes too */
      SSL_shutdown(r->ssl);
      ERR_clear_error();
    }
    shutdown(r->sock, SHUT_WR);
    r->wr_shut = 1;
  }
  if (r->sock_eof && out_empty && r->o->keep)
    return 1; /* -k: a client's EOF ends its turn; stdin stays for the next */
  if (r->sock_eof && out_empty && !r->out_closed) {
    close(STDOUT_FILENO); /* our reader sees EOF as the peer's EOF */
    r->out_closed = 1;
  }
  /* SPEC 3.1: the peer is done and everything it sent is out. Finish
   * sending what stdin is still giving (both sides may close at once), but
   * a stdin that stays open and silent, a terminal or an idle pipe, ends it
   * after EOF_LINGER_MS. */
  if (r->out_closed && !r->o->keep_sending && in_empty &&
      (r->stdin_eof || now_ms() - r->last_stdin >= EOF_LINGER_MS))
    return 1;
  return r->wr_shut && r->out_closed;
}

/* Relay until both directions are closed. Returns 0, -ETIMEDOUT (idle),
 * -EINTR (signal) or the first error (r->failed names a local side). */
static int relay_run(relay *r, int sock, int dgram) {
  int rc;
  r->sock = sock;
  r->dgram = dgram;
  r->wr_shut = r->sock_eof = 0;
  r->peer_len = 0;
  r->failed = NULL;
  r->out.pos = r->out.len = 0; /* "in" keeps unsent stdin for the next -k client */
  moved(r);
  while ((rc = settle(r)) == 0) {
    rc = step(r);
    if (r->sock_eof && !r->o->keep_sending && r->failed == NULL &&
        (rc == -EPIPE || rc == -ECONNRESET)) {
      /* the peer said it was done and then went away: what stdin still had
       * cannot go anywhere; that is the end, not a failure */
      r->in.pos = r->in.len = 0;
      r->stdin_eof = 1;
      rc = 0;
    }
    if (rc < 0)
      break;
  }
  return rc > 0 ? 0 : rc;
}

/* The exit code for how a session ended, with its one line on stderr. */
static int outcome(const relay *r, int rc) {
  if (rc == 0)
    return r->out_broken ? EXIT_FAIL : EXIT_OK;
  if (rc == -EINTR)
    return r->server ? EXIT_OK : 128 + got_signal;
  if (rc == -ETIMEDOUT) {
    cli_error(r->o->cmd, "nothing moved for %d ms (--idle-timeout): closing", r->o->idle_ms);
    return EXIT_FAIL;
  }
  if (r->failed != NULL) {
    cli_error(r->o->cmd, "%s: %s", r->failed, strerror(-rc));
    return EXIT_FAIL;
  }
  if (rc == -ECONNRESET || rc == -EPIPE) { /* SPEC 3.1: the peer's reset is 1 */
    cli_error(r->o->cmd, "the peer at %s reset the connection", r->o->addr);
    return EXIT_FAIL;
  }
  cli_error(r->o->cmd, "connection to %s broke: %s", r->o->addr, strerror(-rc));
  return EXIT_CONN;
}

static int relay_init(relay *r, const pipe_opts *o, int server) {
  memset(r, 0, sizeof(*r));
  r->o = o;
  r->server = server;
  r->sock = -1;
  r->in.data = malloc(RELAY_BUF);
  r->out.data = malloc(RELAY_BUF);
  if (r->in.data == NULL || r->out.data == NULL) {
    cli_error(o->cmd, "out of memory");
    return -ENOMEM;
  }
  signals_setup();
  stdio_nonblock();
  return 0;
}

static void relay_free(relay *r) {
  tls_end(r);
  sk__tls_free(r->tls);
  stdio_restore(r);
  free(r->in.data);
  free(r->out.data);
}

/* ---- addresses and sockets ------------------------------------------------------- */

static int resolve(const pipe_opts *o, int flags, struct sockaddr_storage *ss, socklen_t *len) {
  const char *why = NULL;
  char host[300];
  int n;
  cli_verbose(o->verbose, o->cmd, "resolving %s", cli_safe(o->addr));
  n = sk_resolve(o->addr, flags | SK_RESOLVE_BARE_PORT, ss, len, 8, &why);
  if (n == SK_ERESOLVE) {
    cli_host_of(o->addr, host, sizeof(host));
    cli_error(o->cmd, "cannot resolve %s: %s", cli_safe(host), why ? why : sk_strerror(n));
    return -EXIT_CONN;
  }
  if (n < 0) {
    cli_usage_error(o->cmd, "bad address '%s': %s", cli_safe(o->addr), why ? why : sk_strerror(n));
    return -EXIT_USAGE;
  }
  return n;
}

static const char *sun_path(const struct sockaddr_storage *ss) {
  return ((const struct sockaddr_un *)ss)->sun_path;
}

static int bind_one(const struct sockaddr_storage *ss, socklen_t len, int type) {
  int fd, rc;
  if ((rc = sk__sock_clear_stale(ss, len, type)) < 0)
    return rc;
  if ((fd = sk__sock_bind(ss, len, type, 0)) < 0)
    return fd;
  if (type == SOCK_STREAM && listen(fd, SOMAXCONN) < 0) {
    rc = -errno;
    close(fd);
    return rc;
  }
  return fd;
}

/* Bind the first address that works and say where, with the real port.
 * Returns the socket or an exit code as a negative number. */
static int open_listener(const pipe_opts *o, struct sockaddr_storage *bound, socklen_t *blen) {
  struct sockaddr_storage ss[8];
  socklen_t len[8];
  char text[320];
  int n = resolve(o, SK_RESOLVE_PASSIVE, ss, len), fd = -EINVAL;
  if (n < 0)
    return n;
  for (int i = 0; i < n && fd < 0; i++)
    fd = bind_one(&ss[i], len[i], o->udp ? SOCK_DGRAM : SOCK_STREAM);
  if (fd < 0) {
    cli_error(o->cmd, "cannot listen on %s: %s", o->addr, strerror(-fd));
    return -EXIT_FAIL;
  }
  *blen = sizeof(*bound);
  getsockname(fd, (struct sockaddr *)bound, blen);
  fprintf(stderr, "sockit: listening on %s\n",
          sk_addr_text((struct sockaddr *)bound, *blen, text, sizeof(text)));
  return fd;
}

/* Wait for the next client. Returns its socket, -EINTR on a signal, or
 * another negative errno. */
static int accept_next(int lfd) {
  struct pollfd p = {lfd, POLLIN, 0};
  for (;;) {
    int rc = wait_fds(&p, 1, -1), fd;
    if (rc < 0)
      return rc;
    if (rc == 0)
      continue;
    fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0)
      return fd;
    if (!again(errno) && errno != ECONNABORTED)
      return -errno;
  }
}

/* wait_fds for one fd, as sk__sock_connect wants it: a signal interrupts. */
static int wait_one(int fd, short events, int timeout_ms) {
  struct pollfd p = {fd, events, 0};
  int rc = wait_fds(&p, 1, timeout_ms);
  return rc > 0 ? 0 : rc == 0 ? -ETIMEDOUT : rc;
}

/* ---- the two commands ------------------------------------------------------------- */

/* -v: who came in, as nc -lv says it. */
static void say_peer(const pipe_opts *o, int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  char text[320];
  if (o->verbose && getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
    cli_verbose(1, o->cmd, "connection from %s",
                sk_addr_text((struct sockaddr *)&ss, len, text, sizeof(text)));
}

/* One client at a time; with -k the next one after each. Session trouble
 * under -k is reported and the listener goes on. Without -k the listening
 * socket is closed (*lfd = -1) once the client is in, so nobody else queues. */
static int listen_stream(relay *r, int *lfd) {
  int code = EXIT_OK;
  for (;;) {
    int fd = accept_next(*lfd), rc;
    if (fd == -EINTR)
      return EXIT_OK;
    if (fd < 0) {
      cli_error(r->o->cmd, "accept: %s", strerror(-fd));
      return EXIT_FAIL;
    }
    say_peer(r->o, fd);
    if (!r->o->keep) {
      close(*lfd);
      *lfd = -1;
    }
    if (r->tls != NULL && (code = tls_start(r, fd)) != 0) {
      tls_end(r);
      close(fd);
      if (!r->o->keep || code != EXIT_CONN)
        return code;
      continue; /* -k: a client with another key does not end the service */
    }
    rc = relay_run(r, fd, 0);
    tls_end(r);
    close(fd);
    code = outcome(r, rc);
    if (!r->o->keep || rc == -EINTR || r->failed != NULL)
      return code;
  }
}

int pipe_listen(const pipe_opts *o) {
  struct sockaddr_storage bound = {0}; /* getsockname may fail: then nothing to unlink */
  socklen_t blen;
  relay r;
  int lfd, code;
  if (relay_init(&r, o, 1) < 0) {
    relay_free(&r);
    return EXIT_FAIL;
  }
  if (o->tls && tls_setup(&r, 1) < 0) {
    relay_free(&r);
    return EXIT_FAIL;
  }
  lfd = open_listener(o, &bound, &blen);
  if (lfd < 0) {
    relay_free(&r);
    return -lfd;
  }
  code = o->udp ? outcome(&r, relay_run(&r, lfd, 1)) : listen_stream(&r, &lfd);
  if (lfd >= 0)
    close(lfd);
  if (bound.ss_family == AF_UNIX)
    unlink(sun_path(&bound));
  relay_free(&r);
  return code;
}

/* connect: the socket is in; TLS when asked, then the relay. The exit code. */
static int relay_connected(relay *r, int fd, const char *text) {
  int code;
  cli_verbose(r->o->verbose, r->o->cmd, "connected to %s%s", text,
              r->tls != NULL ? ", TLS 1.3 handshake" : "");
  if (r->tls != NULL && (code = tls_start(r, fd)) != 0) {
    close(fd);
    return code;
  }
  code = outcome(r, relay_run(r, fd, r->o->udp));
  close(fd);
  return code;
}

int pipe_connect(const pipe_opts *o) {
  struct sockaddr_storage ss[8];
  socklen_t len[8];
  char text[320] = "";
  relay r;
  int n, fd = -EINVAL, code = EXIT_FAIL;
  if (relay_init(&r, o, 0) < 0 || (o->tls && tls_setup(&r, 0) < 0))
    goto out;
  if ((n = resolve(o, 0, ss, len)) < 0) {
    code = -n;
    goto out;
  }
  for (int i = 0; i < n && fd < 0 && fd != -EINTR; i++) {
    cli_verbose(o->verbose, o->cmd, "connecting to %s",
                sk_addr_text((struct sockaddr *)&ss[i], len[i], text, sizeof(text)));
    fd = sk__sock_connect(&ss[i], len[i], o->udp ? SOCK_DGRAM : SOCK_STREAM,
                          o->connect_ms > 0 ? o->connect_ms : CONNECT_TIMEOUT_MS, wait_one);
    if (fd < 0 && fd != -EINTR)
      cli_verbose(o->verbose, o->cmd, "connect failed: %s", strerror(-fd));
  }
  if (fd == -EINTR) {
    code = 128 + got_signal;
  } else if (fd == -ETIMEDOUT) {
    cli_error(o->cmd, "no answer from %s within %g s while connecting", o->addr,
              (o->connect_ms > 0 ? o->connect_ms : CONNECT_TIMEOUT_MS) / 1000.0);
    code = EXIT_CONN;
  } else if (fd < 0) {
    cli_error(o->cmd, "cannot connect to %s: %s", o->addr, strerror(-fd));
    code = EXIT_CONN;
  } else {
    code = relay_connected(&r, fd, text);
  }
out:
  relay_free(&r);
  return code;
}

/* ---- flags --------------------------------------------------------------------------- */

/* nc's habit, `sockit connect HOST PORT`: the two words as HOST:PORT
 * (brackets for an IPv6 literal). Returns 0, or -1 when they are not that. */
static int host_and_port(pipe_opts *o, const char *host, const char *port) {
  struct in6_addr v6;
  char *end;
  long v = strtol(port, &end, 10);
  if (*port == '\0' || *end != '\0' || v < 0 || v > 65535 || host[0] == '[' ||
      strncmp(host, "unix:", 5) == 0)
    return -1;
  if (strchr(host, ':') == NULL)
    snprintf(o->addr_buf, sizeof(o->addr_buf), "%s:%ld", host, v);
  else if (inet_pton(AF_INET6, host, &v6) == 1)
    snprintf(o->addr_buf, sizeof(o->addr_buf), "[%s]:%ld", host, v);
  else
    return -1;
  o->addr = o->addr_buf;
  return 0;
}

int pipe_parse(pipe_opts *o, int argc, char **argv, const char *help, int allow_keep) {
  static const struct option opts[] = {{"udp", no_argument, NULL, 'u'},
                                       {"keep-open", no_argument, NULL, 'k'},
                                       {"keep-sending", no_argument, NULL, 'S'},
                                       {"idle-timeout", required_argument, NULL, 'i'},
                                       {"timeout", required_argument, NULL, 'w'},
                                       {"tls", no_argument, NULL, 'T'},
                                       {"key-file", required_argument, NULL, 'K'},
                                       {"verbose", no_argument, NULL, 'v'},
                                       {"help", no_argument, NULL, 'h'},
                                       {"version", no_argument, NULL, CLI_OPT_VERSION},
                                       {0}};
  int opt;
  while ((opt = cli_getopt(argc, argv, allow_keep ? ":ukhv" : ":uhvw:", opts, NULL)) != -1) {
    char *end;
    double s;
    if (opt == 'h') {
      fputs(help, stdout);
      return EXIT_OK;
    } else if (opt == 'u') {
      o->udp = 1;
    } else if (opt == 'k' && allow_keep) {
      o->keep = 1;
    } else if (opt == 'S') {
      o->keep_sending = 1;
    } else if (opt == 'T') {
      o->tls = 1;
    } else if (opt == 'v') {
      o->verbose = 1;
    } else if (opt == 'K') {
      o->key_file = optarg;
    } else if (opt == 'i' || (opt == 'w' && !allow_keep)) {
      s = strtod(optarg, &end);
      if (*end != '\0' || !(s > 0) || s > 2e6) /* 2e6 s in ms still fits an int */
        return cli_usage_error(o->cmd, "--%s wants a positive number of seconds",
                               opt == 'i' ? "idle-timeout" : "timeout");
      *(opt == 'i' ? &o->idle_ms : &o->connect_ms) = s * 1000 < 1 ? 1 : (int)(s * 1000);
    } else if (opt == CLI_OPT_VERSION) {
      return cli_print_version();
    } else if (opt == 'w') { /* --timeout given to listen */
      return cli_usage_error(o->cmd, "--timeout is how long connect tries to connect; listen "
                                     "waits for a client as long as it takes (--idle-timeout S "
                                     "closes a silent one)");
    } else {
      return cli_option_error(o->cmd, opt, argv);
    }
  }
  if (optind < argc)
    o->addr = argv[optind++];
  if (optind + 1 == argc && host_and_port(o, argv[optind - 1], argv[optind]) == 0)
    optind++;
  if (optind < argc)
    return cli_usage_error(o->cmd, "unexpected argument '%s'%s", argv[optind],
                           optind == argc - 1 ? ": did you mean HOST:PORT?" : "");
  if (o->keep && o->keep_sending)
    return cli_usage_error(o->cmd, "-k and --keep-sending: pick one");
  if (o->tls && o->udp)
    return cli_usage_error(o->cmd, "--tls is for streams: UDP pipes stay plain");
  if (o->key_file != NULL && !o->tls)
    return cli_usage_error(o->cmd, "--key-file is for --tls");
  return -1;
}
