/* sockit/client.h - a blocking client for scripts, tools and the commands.
 *
 * One sk_client is one connection, used from one thread at a time. Every
 * call blocks for at most the client's timeout (default 30 s; 0 = forever)
 * and returns 0 / a count, or a negative code from sockit/error.h.
 *
 * Errors every I/O call below may return, besides those it lists:
 * -ETIMEDOUT (the timeout passed), SK_ECLOSED (the server closed),
 * SK_EBADFRAME (the server sent something that is not a frame), -ENOMEM and
 * negated errno values from the socket (-ECONNRESET, -EPIPE). After any of
 * them the connection is unusable: close it.
 * Ownership: strings and heads passed in are borrowed for the call only;
 * heads and bodies handed out are the caller's (sk_head_free, free) unless
 * a comment says "borrowed". No call keeps a pointer the caller gave it.
 * Different sk_client objects may be used from different threads at once.
 *
 * Option structs (sk_client_opts, sk_put_opts, sk_get_opts) begin with
 * `size`: sizeof the struct, or 0 for the members of ABI 1 (all the members
 * below). Zero-fill or use designated initializers, as the examples do;
 * set size = sizeof(...) to use a member added later. New members only
 * ever come at the end, so programs built against an older libsockit keep
 * working with a newer one. Structs the library fills (sk_xfer_result,
 * sk_file_stat, sk_dir_entry) keep ABI 1's layout for as long as the SONAME
 * does.
 */
#ifndef SOCKIT_CLIENT_H
#define SOCKIT_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "sockit/frame.h"
#include "sockit/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sk_client sk_client;

/* Encryption (SPEC 8). SK_TLS_AUTO: TLS on TCP, plain on Unix sockets. */
enum { SK_TLS_AUTO = 0, SK_TLS_OFF = 1, SK_TLS_ON = 2 };

/* The steps of sk_client_connect, reported to an sk_client_step_fn. */
typedef enum sk_client_step {
  SK_STEP_RESOLVE, /* detail: the address as given */
  SK_STEP_CONNECT, /* detail: one resolved address, as it is tried */
  SK_STEP_HELLO,   /* connected to detail; waiting for the server's hello */
  SK_STEP_AUTH,    /* detail: the key file; proving we hold the key */
  SK_STEP_READY,   /* detail: the server's name; requests may go */
  SK_STEP_TLS,     /* connected; the TLS 1.3 handshake (detail: keyed how) */
} sk_client_step;

/* Called as each step starts (err 0), and once more for the step that
 * failed (err < 0, detail the reason in words, e.g. the resolver's
 * "Name or service not known", or the key file's path). detail is borrowed
 * for the call. The library itself never prints: a program that wants
 * `-v` output prints from here. */
typedef void (*sk_client_step_fn)(void *ctx, sk_client_step step, int err, const char *detail);

typedef struct sk_client_opts {
  size_t size;               /* sizeof(sk_client_opts), or 0: ABI 1's members */
  const char *key_file;      /* NULL: the default key file (see sk_key_default_path) */
  int no_auth;               /* do not authenticate (the server must allow it) */
  int timeout_ms;            /* per call; 0: the 30 s default; -1: forever */
  int connect_timeout_ms;    /* connecting, the hello and the auth together;
                                0: the 10 s default; -1: forever */
  sk_client_step_fn on_step; /* optional */
  void *step_ctx;
  /* TLS is keyed by the key file's secret (a pre-shared key) unless a
   * certificate check is asked for: tls_ca (PEM trust anchors) or tls_pin
   * ("sha256:HEX" of the server's SubjectPublicKeyInfo); then the server's
   * certificate is checked and the key authenticates inside TLS as in
   * plain mode. With no_auth and neither, or with no key file of our own
   * and none named, there is nothing to key TLS with and SK_TLS_AUTO is
   * plain. */
  int tls;
  const char *tls_ca;
  const char *tls_pin;
} sk_client_opts;

/* The default address: $SOCKIT_ADDR, else "127.0.0.1:8080". */
SK_API const char *sk_client_default_addr(void);

/* Connect to addr (SPEC 2 syntax), read the hello and authenticate,
 * verifying the server's own mac, all within opts->connect_timeout_ms. On
 * failure *out is NULL and the return is e.g. SK_EBADADDR (syntax),
 * SK_ERESOLVE (the name does not resolve), -ECONNREFUSED, -ETIMEDOUT (no
 * answer while connecting), SK_ENOHELLO (connected, but no hello came in
 * time), SK_EPROTO or SK_EBADFRAME (the peer does not speak sockit),
 * SK_EAUTHFAIL, SK_ERATELIMIT, SK_EBADMAC, SK_EBADKEY; opts->on_step hears
 * which step failed and why. TLS: SK_EAUTHFAIL is also a TLS server that
 * does not know our key; SK_ETLSPLAIN a TLS client that reached a plain
 * server, SK_ETLSWANTED the reverse; SK_ETLSCERT, SK_ETLS.
 * opts may be NULL. */
SK_API int sk_client_connect(sk_client **out, const char *addr, const sk_client_opts *opts);

/* The server's hello (borrowed; lives as long as the client). */
SK_API const sk_head *sk_client_hello(const sk_client *c);

/* How the connection is protected: "tls-psk" (TLS keyed by the secret),
 * "tls-cert" (TLS with a checked server certificate) or "plain". */
SK_API const char *sk_client_security(const sk_client *c);

/* The TLS version and cipher suite ("TLSv1.3", "TLS_AES_128_GCM_SHA256"),
 * or NULL for a plain connection. Static text. */
SK_API const char *sk_client_tls_version(const sk_client *c);
SK_API const char *sk_client_tls_cipher(const sk_client *c);

/* Does the server offer this service / this hash algorithm? */
SK_API int sk_client_has_service(const sk_client *c, const char *name);
SK_API int sk_client_has_hash(const sk_client *c, const char *name);

/* Send one frame: head (borrowed; "size" is set to n) then n body bytes.
 * Blocks until every byte is written (or the timeout). Returns 0 or an I/O
 * error; SK_ETOOLARGE for a head over SK_HEAD_MAX. */
SK_API int sk_client_send(sk_client *c, sk_head *head, const void *body, size_t n);

/* Send a head announcing size bytes, then the body in pieces with
 * sk_client_write (the caller writes exactly size bytes). */
SK_API int sk_client_send_head(sk_client *c, sk_head *head, uint64_t size);
SK_API int sk_client_write(sk_client *c, const void *data, size_t n);

/* Write what the socket takes now, without waiting: the byte count, 0
 * when it is full (poll sk_client_fd for POLLOUT, then call again with the
 * same bytes first: TLS may have taken part of them already), or an I/O
 * error. For event loops that must keep reading while they send. */
SK_API ssize_t sk_client_write_some(sk_client *c, const void *data, size_t n);

/* Receive one frame whole: *head owned by the caller, *body malloc'd (NULL
 * when empty; NUL-terminated for convenience), body larger than max_body
 * gives SK_ETOOLARGE. An error frame is returned as a frame like any other. */
SK_API int sk_client_recv(sk_client *c, sk_head **head, uint8_t **body, size_t *n, size_t max_body);

/* Receive a head only; the body (sk_head_size bytes) is then read with
 * sk_client_read_body, until it returns 0. */
SK_API int sk_client_recv_head(sk_client *c, sk_head **head);
SK_API ssize_t sk_client_read_body(sk_client *c, void *buf, size_t cap);

/* Send a request and receive its one response. An error response becomes
 * its SK_E* code (the frame is still returned in *resp when resp is not
 * NULL, so the caller can show its "message"). */
SK_API int sk_client_request(sk_client *c, sk_head *req, const void *body, size_t n, sk_head **resp,
                             uint8_t **resp_body, size_t *resp_n);

/* The descriptor, for poll(); and whether buffered input is waiting (poll
 * will not see it). */
SK_API int sk_client_fd(const sk_client *c);
SK_API int sk_client_pending(const sk_client *c);

/* Change the per-call timeout (ms; -1 forever). */
SK_API void sk_client_set_timeout(sk_client *c, int timeout_ms);

/* Shut down the write side (after the last request). */
SK_API int sk_client_shutdown_write(sk_client *c);

/* Close the connection and free everything the client owns, the hello
 * included. NULL is fine. */
SK_API void sk_client_close(sk_client *c);

/* The "message" of an error frame, or NULL. Borrowed from head. */
SK_API const char *sk_error_message(const sk_head *head);

/* ---- files (SPEC 4.7) ---------------------------------------------------- */

/* Called as bytes move: done of total (the whole file's length, resumed
 * prefix included in done). */
typedef void (*sk_progress_fn)(void *ctx, uint64_t done, uint64_t total);

/* What a transfer did, filled when the options point to one. */
typedef struct sk_xfer_result {
  uint64_t total;    /* the file's length */
  uint64_t offset;   /* bytes already there before this transfer (resume) */
  char hash[160];    /* "ALG:HEX" both sides agreed on; "" when unhashed */
  char message[256]; /* the server's error message, when it sent one */
  int local;         /* get: the failure was the local file's (path says which) */
  int through;       /* get: written straight to path, no part file (FIFO, device, fd) */
  int unchanged;     /* --resume: both sides had this file whole already (same length and
                        hash): nothing was sent (put) or fetched (get) */
  char path[4096];   /* get: where the file went (a folder joined, links followed) */
} sk_xfer_result;

typedef struct sk_put_opts {
  size_t size;      /* sizeof(sk_put_opts), or 0: ABI 1's members */
  const char *hash; /* NULL: the fastest both sides offer; "none": no hash */
  int resume;       /* ask stat and continue the server's part file; a file the
                       server has complete with the same hash is not sent again */
  int exclusive;    /* refuse to replace an existing file (SK_EEXISTS) */
  sk_progress_fn progress;
  void *progress_ctx;
  sk_xfer_result *result; /* optional */
} sk_put_opts;

typedef struct sk_get_opts {
  size_t size;      /* sizeof(sk_get_opts), or 0: ABI 1's members */
  const char *hash; /* as for put */
  int resume;       /* continue the local part file beside out_path; a complete
                       local copy with the server's hash is not fetched again */
  sk_progress_fn progress;
  void *progress_ctx;
  sk_xfer_result *result; /* optional */
} sk_get_opts;

/* Upload the regular file at path as name, with its mode and mtime. Returns
 * 0 only when the server published it and confirmed the hash the client
 * computed (when hashing); SK_EHASHMISMATCH, SK_EEXISTS, SK_EBUSY, ... from
 * the server; a negative errno for the local file. opts may be NULL. */
SK_API int sk_client_put_file(sk_client *c, const char *path, const char *name,
                              const sk_put_opts *opts);

/* Download name to out_path as cp and curl would write it:
 * - a regular file or a new name: through a part file beside it
 *   (".BASE.sockit-part"), renamed over it only when the whole file's hash
 *   matches the server's (--resume continues the part file);
 * - a symbolic link: the same, at the file the link names (links followed);
 * - a folder, or a path ending in '/': into it, under name's last component;
 * - a FIFO, a device, /dev/stdout or /dev/fd/N: written through in order,
 *   no part file and no resume (-ESPIPE); a wrong hash is found after the
 *   bytes were written (SK_EHASHMISMATCH).
 * result->path says where the file went; result->local is set when the
 * failure was the local file's. opts may be NULL. */
SK_API int sk_client_get_file(sk_client *c, const char *name, const char *out_path,
                              const sk_get_opts *opts);

/* Download name into fd (e.g. standard output), in order, hash checked at
 * the end; fd is neither closed nor seeked. */
SK_API int sk_client_get_fd(sk_client *c, const char *name, int fd, const sk_get_opts *opts);

typedef struct sk_file_stat {
  int exists;
  uint64_t length;  /* of the file, when it exists */
  uint64_t partial; /* of the server's part file (0: none) */
  unsigned mode;
  int64_t mtime;
} sk_file_stat;

/* Ask about name (SPEC 4.7 stat): *out is filled when 0 is returned,
 * also for a file that does not exist (out->exists 0). SK_EFORBIDDEN for a
 * name outside the root; SK_EUNKNOWNTYPE when the server offers no files. */
SK_API int sk_client_stat(sk_client *c, const char *name, sk_file_stat *out);

typedef struct sk_dir_entry {
  char *name;
  int is_dir;
  uint64_t length;
  int64_t mtime;
  char type[8];     /* "file", "dir", "link", "other" or "partial" (an upload not
                       yet published; length is the bytes so far) */
  uint64_t partial; /* a file being replaced: the upload's bytes so far */
} sk_dir_entry;

/* List a folder (NULL or "" for the root): *entries is an array of *n
 * (free with sk_dir_entries_free), sorted by name. */
SK_API int sk_client_list(sk_client *c, const char *dir, sk_dir_entry **entries, size_t *n);
SK_API void sk_dir_entries_free(sk_dir_entry *entries, size_t n);

/* Remove name (a file, a link, or with recursive a folder and everything
 * in it) and the part file of an upload of it. SK_ENOTFOUND when neither
 * exists, SK_EBADREQ for a folder without recursive, SK_EBUSY while it is
 * being uploaded. */
SK_API int sk_client_rm(sk_client *c, const char *name, int recursive);

/* Make the folder name and its missing parents; 0 if it exists already. */
SK_API int sk_client_mkdir(sk_client *c, const char *name);

/* The hash a transfer will use: want if both sides have it ("none" gives
 * NULL), else, for want NULL, the fastest both sides have. *err is
 * SK_EBADREQ when want is offered by one side only. */
SK_API const char *sk_client_pick_hash(const sk_client *c, const char *want, int *err);

/* ---- addresses, for programs that open their own sockets ----------------
 * (sockit listen / connect, or any plain byte pipe built on libsockit) */
#define SK_RESOLVE_BARE_PORT 1 /* "8080" alone means 127.0.0.1:8080 */
#define SK_RESOLVE_PASSIVE 2   /* for bind(): an empty host is the wildcard */

/* Resolve addr (SPEC 2: HOST:PORT, [IPv6]:PORT, :PORT, unix:/path) into up
 * to max socket addresses, in getaddrinfo's order (one for unix:). Returns
 * the count (>= 1), or SK_EBADADDR (not an address) or SK_ERESOLVE (the
 * name does not resolve) with *why (when why is not NULL) saying what is
 * wrong; *why is static text. */
SK_API int sk_resolve(const char *addr, int flags, struct sockaddr_storage *ss, socklen_t *len,
                      int max, const char **why);

/* The SPEC 2 text of a socket address ("127.0.0.1:8080", "[::1]:8080",
 * "unix:/path"), NUL-terminated in buf. Returns buf. */
SK_API char *sk_addr_text(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap);

/* ---- UDP (SPEC 5) ---------------------------------------------------------
 * One frame per datagram: echo, time, ping and chat.
 * A frame over SK_UDP_FRAME_MAX bytes (trailer included) is refused with
 * SK_ETOOLARGE before anything is sent (a cut datagram would be garbage to
 * the server).
 *
 * A server with a key takes only authenticated datagrams: each carries "ts"
 * and "n" in its head and an HMAC trailer (sockit/auth.h), and anything else
 * gets no answer at all. A socket opened with a key (sk_udp_open_opts) adds
 * them to what it sends (so a head's own "ts" is replaced) and drops every
 * datagram that fails the trailer, ts or replay check. UDP is authenticated,
 * never encrypted: anyone on the path can read the datagrams.
 * Without a key (a --no-auth server) datagrams are plain; the library pads
 * them so the server may answer (it never sends an unproven address more
 * bytes than it got), and answers a chat join's cookie by sending the join
 * again: callers see neither. */
#define SK_UDP_FRAME_MAX 65507u

typedef struct sk_udp sk_udp;

/* A UDP socket connected to addr (HOST:PORT or [IPv6]:PORT; the first
 * resolution that works), sending plain datagrams. Returns 0 or SK_EBADADDR
 * / SK_ERESOLVE / a negated errno. */
SK_API int sk_udp_open(sk_udp **out, const char *addr);

/* The same, authenticated as opts say (NULL: as a zeroed sk_client_opts):
 * no_auth: plain datagrams; key_file: that key (SK_EBADKEY when it cannot be
 * used); else the default key file when there is one, plain datagrams when
 * there is none. timeout_ms is not used; on_step hears SK_STEP_RESOLVE (and
 * the resolver's reason when the name does not resolve). */
SK_API int sk_udp_open_opts(sk_udp **out, const char *addr, const sk_client_opts *opts);

/* 1 when the socket authenticates its datagrams with a key. */
SK_API int sk_udp_authenticated(const sk_udp *u);

/* Send head ("size" set to n) and n body bytes as one datagram. */
SK_API int sk_udp_send(sk_udp *u, sk_head *head, const void *body, size_t n);

/* Wait up to timeout_ms (-1: forever) for one well-formed frame; datagrams
 * that are not exactly one frame, or fail authentication, are skipped.
 * *head is the caller's, *body malloc'd (NULL when empty). -ETIMEDOUT when
 * nothing came; -ECONNREFUSED when the host said nobody listens there. */
SK_API int sk_udp_recv(sk_udp *u, sk_head **head, uint8_t **body, size_t *n, int timeout_ms);

SK_API int sk_udp_fd(const sk_udp *u); /* for poll() */
SK_API void sk_udp_close(sk_udp *u);

/* One request, one answer on an open socket: sends req (an "id" is added
 * when it has none, to match the answer), waits timeout_ms, and sends again
 * up to retries times. An error answer becomes its SK_E* code, with the
 * frame still in *resp. resp_body / resp_n may be NULL. */
SK_API int sk_udp_call(sk_udp *u, sk_head *req, const void *body, size_t n, int timeout_ms,
                       int retries, sk_head **resp, uint8_t **resp_body, size_t *resp_n);

/* sk_udp_call on a plain socket opened (and closed) for this request. */
SK_API int sk_udp_request(const char *addr, sk_head *req, const void *body, size_t n,
                          int timeout_ms, int retries, sk_head **resp, uint8_t **resp_body,
                          size_t *resp_n);

#ifdef __cplusplus
}
#endif
#endif
