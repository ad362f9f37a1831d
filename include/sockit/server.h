/* sockit/server.h - the server framework: socketserver's idea, done for C.
 *
 * A service is a table of handlers (setup when a connection first uses it,
 * one handle function per request type, finish when the connection closes).
 * The core owns sockets, buffers, timers, authentication and limits; a
 * service sees a connection only through sk_conn_* calls.
 *
 * Threads: a server runs --threads event loops. A connection lives on one
 * loop for its whole life, and every callback for it runs on that loop's
 * thread. sk_conn_* functions must be called from that thread, except
 * sk_conn_ref/unref, which are atomic.
 */
#ifndef SOCKIT_SERVER_H
#define SOCKIT_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "sockit/frame.h"
#include "sockit/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sk_server sk_server;
typedef struct sk_conn sk_conn;
typedef struct sk_buf sk_buf;

/* One decoded request as a handler sees it. Everything is borrowed for the
 * duration of the call; use sk_head_dup to keep the head longer. */
typedef struct sk_request {
  const sk_head *head;
  const char *type;
  uint64_t size;       /* body length from the head */
  const uint8_t *body; /* the whole body, for gathered handlers; else NULL */
  void *state;         /* the service's per-connection state (from setup) */
} sk_request;

/* A handler returns:
 *   0          the request is complete (its responses are queued)
 *   SK_ASYNC   it continues; the service calls sk_conn_done() when its last
 *              frame is queued. Until then only frames of SK_H_FOLLOW types
 *              of the same service are dispatched; any other request waits
 *              in the buffer (responses keep request order).
 *   < 0        an SK_E* code: the core sends the error frame (repeating the
 *              request's id) and, for fatal codes, closes. For a streamed
 *              body, an error before the body makes the core discard it. */
typedef int (*sk_handle_fn)(sk_conn *c, const sk_request *req);

/* Streamed bodies (SK_H_STREAM): called with each piece as it arrives,
 * after handle() returned SK_ASYNC. Returns the bytes taken (0..n): taking
 * fewer pauses the connection until sk_conn_resume(); the rest is offered
 * again then. Called once more with data NULL, n 0 when the body is
 * complete. A negative return is an error as for handle(); the rest of the
 * body is then discarded. */
typedef ssize_t (*sk_body_fn)(sk_conn *c, void *state, const uint8_t *data, size_t n);

/* Optional zero-copy receive for a streamed body: while the connection is
 * inside such a body and none of its bytes wait in the core's read buffer,
 * the core asks the sink where the next bytes go and the socket is read
 * straight into that memory. body_buf returns:
 *   > 0  the room at *buf; the core reads at most that many bytes (and never
 *        past the body's end) there, then calls body_got with how many came
 *        (possibly none: then body_got is not called and the room is asked
 *        for again later). The memory stays the sink's throughout.
 *   0    no room now: the connection pauses as when .body takes fewer bytes;
 *        the sink calls sk_conn_resume() when it has room again.
 *   < 0  no lending now: the next bytes go through the read buffer to .body.
 * Bytes that arrived in the read buffer with the head still go to .body, and
 * the end of the body is still announced by .body(NULL, 0). */
typedef ssize_t (*sk_body_buf_fn)(sk_conn *c, void *state, uint8_t **buf);
typedef void (*sk_body_got_fn)(sk_conn *c, void *state, size_t n);

enum {
  SK_H_STREAM = 1 << 0, /* body delivered piecewise to .body, not gathered */
  SK_H_FOLLOW = 1 << 1, /* may run while a request of this service is active */
  SK_H_NOAUTH = 1 << 2, /* (reserved for the core's auth frame) */
};

/* sk_handler and sk_service begin with `size`: sizeof the struct, or 0 for
 * ABI 1's members (all those below). Use designated initializers, as the
 * examples do; set .size = sizeof(...) to use a member added later. New
 * members only ever come at the end, and sk_server_add_service copies the
 * tables, so a service built against an older libsockit keeps working with
 * a newer one. Every entry of one handler table has the same size. */
typedef struct sk_handler {
  size_t size; /* sizeof(sk_handler), or 0: ABI 1's members */
  const char *type;
  sk_handle_fn handle;
  sk_body_fn body; /* for SK_H_STREAM */
  unsigned flags;
  uint64_t max_body; /* body limit; 0 means 64 KiB (SPEC 4.2) */
  /* Optional: a limit that depends on the server's options (echo's
   * --max-message, put's --max-file); overrides max_body. */
  uint64_t (*limit)(const sk_server *srv);
  /* Optional, both or neither, beside .body: zero-copy receive (see
   * sk_body_buf_fn). */
  sk_body_buf_fn body_buf;
  sk_body_got_fn body_got;
} sk_handler;

typedef struct sk_service {
  size_t size;                /* sizeof(sk_service), or 0: ABI 1's members */
  const char *name;           /* as listed in hello "services" */
  const sk_handler *handlers; /* terminated by an entry with type NULL */
  /* Runs on the connection's first request for this service; *state is
   * handed to every later call. Returns 0 or an SK_E* code. Optional. */
  int (*setup)(sk_conn *c, void **state);
  /* Runs once when the connection closes (also when a request is still
   * active: the service must then cancel its work). Optional. */
  void (*finish)(sk_conn *c, void *state);
  /* Runs when the connection's unsent output falls below the low-water mark
   * after having passed the high-water mark (see sk_conn_queued). */
  void (*drained)(sk_conn *c, void *state);
  /* Add members to the hello frame (e.g. "hashes"). Optional. */
  void (*hello)(const sk_server *srv, sk_head *hello);
  /* Runs once per server when it starts and stops (shared state). */
  int (*start)(sk_server *srv);
  void (*stop)(sk_server *srv);
  /* When the service is off on this server, its request types are answered
   * `forbidden` with this text (say how to turn it on) instead of
   * `unknown_type`. Optional; exec uses it (SPEC 4.6). */
  const char *off_message;
} sk_service;

/* ---- the server --------------------------------------------------------- */

/* A server with every option at its SPEC 3 default, the built-in services
 * registered and no listener yet; *out is the caller's (sk_server_free).
 * Returns 0 or -ENOMEM (then *out is not set). Configure it from one thread
 * before sk_server_run; sk_server_set and sk_server_add_service are not for
 * a running server. With no "listen" option, run() binds 127.0.0.1:8080. */
SK_API int sk_server_new(sk_server **out);

/* Set an option by its command-line name and a string value, exactly as
 * `sockit serve --NAME VALUE` would ("max-conns", "100"). Flags without a
 * value ("no-auth", "allow-exec") take NULL or "1". Repeated options
 * (listen, udp, allow, deny, daytime, rfc868) add. Returns 0, -EINVAL
 * (bad value: *why says why) or -ENOENT (no such option). */
SK_API int sk_server_set(sk_server *srv, const char *name, const char *value, const char **why);

/* Register a service. The server keeps a copy of the table and its
 * handlers; the strings and functions they point to must outlive the
 * server. Built-in services are registered by sk_server_new; user services
 * are added here. The "services" option governs both: left at its
 * default, every user service is served beside echo,time,chat,files; set
 * ("echo,kv"), exactly the services it names are (a registered service it
 * leaves out answers unknown_type, or forbidden with its off_message; a
 * name nobody registered fails sk_server_run). Returns 0, -EEXIST (a type
 * is taken) or -ENOMEM. */
SK_API int sk_server_add_service(sk_server *srv, const sk_service *svc);

/* What the server tells its operator. The library never writes to stdout
 * or stderr: what a command-line server prints at start-up (each address
 * it listens on, a key file it created, the open file limit, warnings
 * about risky options, why a service could not start) goes to this
 * callback, and nowhere without one (the default). text is one line with
 * no newline, borrowed for the call. Called on the thread that runs
 * sk_server_run, from inside it. `sockit serve` prints each as
 * "sockit: TEXT", warnings as "sockit: warning: TEXT". */
typedef enum sk_notice_level {
  SK_NOTICE_INFO,    /* a fact: "listening on 127.0.0.1:8080" */
  SK_NOTICE_WARNING, /* works, but the operator should know or change it */
  SK_NOTICE_ERROR,   /* why start-up is about to fail (run() returns < 0) */
} sk_notice_level;
typedef void (*sk_notice_fn)(void *ctx, sk_notice_level level, const char *text);
SK_API void sk_server_on_notice(sk_server *srv, sk_notice_fn fn, void *ctx);

/* What the server may change in the process, which is the application's:
 * nothing unless asked (0, the default). `sockit serve` asks for both.
 * A server not given SK_PROCESS_SIGNALS needs its application to ignore
 * (or handle) SIGPIPE itself, as every libuv program does: a peer that
 * closes while an answer is being written would otherwise end the process;
 * likewise SIGXFSZ when an upload passes RLIMIT_FSIZE. */
enum {
  SK_PROCESS_SIGNALS = 1 << 0, /* run() sets SIGPIPE and SIGXFSZ to SIG_IGN */
  SK_PROCESS_NOFILE = 1 << 1,  /* run() raises RLIMIT_NOFILE's soft limit to the
                                  hard one (many peers need many descriptors) */
};
SK_API void sk_server_set_process(sk_server *srv, unsigned flags);

/* The wall clock the classic time protocols answer with (the "daytime"
 * and "rfc868" listeners): fn returns Unix seconds, and is called at each
 * answer on loop 0's thread. NULL, the default, is the system clock. For
 * an application that keeps its own time (a simulation, a replay), and
 * for tests that need a date other than today's (RFC 868's 2036 wrap).
 * Set before sk_server_run; ctx is handed to fn and stays the caller's. */
typedef int64_t (*sk_clock_fn)(void *ctx);
SK_API void sk_server_set_clock(sk_server *srv, sk_clock_fn fn, void *ctx);

/* Bind every listener, start the loops and run until sk_server_stop (or
 * SIGINT/SIGTERM when handle_signals is set: a libuv signal watcher, gone
 * when run() returns). Returns 0 after a clean stop or an error code if
 * start-up failed (*why then says what to do). */
SK_API int sk_server_run(sk_server *srv, int handle_signals, const char **why);

/* Ask a running server to stop gracefully (any thread, signal-safe). */
SK_API void sk_server_stop(sk_server *srv);

/* Free a server that is not running: never started, or after sk_server_run
 * has returned (in the thread that ran it). Removes the Unix socket files it
 * created. NULL is fine. */
SK_API void sk_server_free(sk_server *srv);

/* Open the --log file again by its name, after logrotate (or anyone) moved
 * it away: new lines go to the new file. Async-signal-safe (open, dup2 and
 * close only), so a program may call it from its own SIGHUP handler; the
 * library installs no handler for it. Returns 0 (also without a log file)
 * or a negative errno, and then the old file stays in use. */
SK_API int sk_server_reopen_log(sk_server *srv);

/* The options the server's services declared for themselves (exec's
 * "exec-timeout", ...), which sk_server_set takes beside the core's: the
 * i-th one's name, or NULL past the last. *arg (if not NULL) is its value's
 * placeholder for --help ("S"), NULL for a flag; *help its help text (lines
 * separated by '\n'), NULL for one that is no command-line flag. */
SK_API const char *sk_server_option(const sk_server *srv, int i, const char **arg,
                                    const char **help);

/* Read-only views of options, for services. */
SK_API const char *sk_server_root(const sk_server *srv);
SK_API int sk_server_root_fd(const sk_server *srv); /* O_PATH/dir fd of --root */
SK_API int sk_server_auth_enabled(const sk_server *srv);
/* A number, size or flag option by name; options given in seconds with
 * fractions ("udp-lease") answer in milliseconds. -1: no such option. */
SK_API int64_t sk_server_opt_int(const sk_server *srv, const char *name);

/* ---- connections, as services see them ---------------------------------- */

/* Queue a response frame for the current request: the core adds the
 * request's "id" and sets "size" to n. body is copied (n may be 0).
 * head stays the caller's. Returns 0 or -ENOMEM / -EPIPE (closing). */
SK_API int sk_conn_send(sk_conn *c, sk_head *head, const void *body, size_t n);

/* Same, but the body is sent by reference: the core holds a reference on b
 * until the bytes are written. Use for large bodies and shared frames. */
SK_API int sk_conn_send_buf(sk_conn *c, sk_head *head, sk_buf *b, size_t off, size_t n);

/* A response whose body is too large to hold (a file download): the head
 * announces size bytes, which the service then queues in pieces with
 * sk_conn_send_more (by reference, as sk_conn_send_buf), exactly size bytes
 * in all. Nothing else may be sent or pushed on the connection until the
 * last piece is queued. */
SK_API int sk_conn_send_head(sk_conn *c, sk_head *head, uint64_t size);
SK_API int sk_conn_send_more(sk_conn *c, sk_buf *b, size_t off, size_t n);

/* A push outside request order (chat msg/presence): no "id" is added. */
SK_API int sk_conn_push(sk_conn *c, sk_head *head, const void *body, size_t n);

/* Push a whole pre-encoded frame (prefix+head+body) shared between
 * connections; the core takes its own reference. */
SK_API int sk_conn_push_frame(sk_conn *c, sk_buf *frame);

/* Send an error frame {"type":"error","code":..,"message":msg} for the
 * current request (msg may be NULL for the table's text). Fatal codes
 * (SPEC 4.2) also close the connection after the frame is written. */
SK_API int sk_conn_error(sk_conn *c, int err, const char *msg);

/* The active SK_ASYNC request is finished: decoding of the next request
 * resumes. Safe to call from any callback on the connection's loop. */
SK_API void sk_conn_done(sk_conn *c);

/* Resume a body sink that took fewer bytes than offered. */
SK_API void sk_conn_resume(sk_conn *c);

/* Close after the queued output is written (err 0) or after an error frame
 * (err < 0). finish() runs later, from the core, never inside this call. */
SK_API void sk_conn_close(sk_conn *c, int err);

/* Unsent output in bytes, and whether it is above the high-water mark
 * (1 MiB). A service producing output stops when congested and waits: its
 * .drained callback runs once the queue falls below 256 KiB. */
SK_API size_t sk_conn_queued(const sk_conn *c);
SK_API int sk_conn_congested(sk_conn *c);

/* Run fn(arg) on c's loop thread, soon and never inside this call: work
 * done elsewhere (a worker thread, another loop) hands its result back
 * this way, or a handler continues later on its own loop. Any thread.
 * Hold sk_conn_ref(c) until fn has run, and check sk_conn_is_closing(c)
 * there. Tasks posted from one thread run in order. 0, or -ENOMEM (fn
 * will not run). */
SK_API int sk_conn_post(sk_conn *c, void (*fn)(void *arg), void *arg);

/* Keep a connection's memory alive across asynchronous work. Atomic. */
SK_API void sk_conn_ref(sk_conn *c);
SK_API void sk_conn_unref(sk_conn *c);
SK_API int sk_conn_is_closing(const sk_conn *c);

/* Who is on the other end: "127.0.0.1:5555", "[::1]:5555" or "unix". */
SK_API const char *sk_conn_peer(const sk_conn *c);
SK_API int sk_conn_authenticated(const sk_conn *c); /* 1 only after a real auth_ok */
SK_API sk_server *sk_conn_server(const sk_conn *c);

/* One line in the connection log: event name plus key=value fields. The
 * field list is `const char *key, int kind, value` triples closed by NULL,
 * kind being 's' (const char *), 'i' (int64_t) or 'f' (double). */
SK_API void sk_conn_log(sk_conn *c, const char *event, ...);

/* ---- shared, reference-counted buffers ---------------------------------- */

/* A buffer of cap bytes (len 0); NULL when out of memory. refcount 1. */
SK_API sk_buf *sk_buf_new(size_t cap);
/* Wrap memory the caller allocated; free_fn(ctx, data) runs at the last unref. */
SK_API sk_buf *sk_buf_wrap(void *data, size_t len, void (*free_fn)(void *ctx, void *data),
                           void *ctx);
SK_API uint8_t *sk_buf_data(sk_buf *b);
SK_API size_t sk_buf_len(const sk_buf *b);
SK_API size_t sk_buf_cap(const sk_buf *b);
SK_API void sk_buf_set_len(sk_buf *b, size_t len);
SK_API sk_buf *sk_buf_ref(sk_buf *b);
SK_API void sk_buf_unref(sk_buf *b);

/* Encode a whole frame (prefix, head with "size" = n, body) into a new
 * shared buffer, for fan-out with sk_conn_push_frame. */
SK_API sk_buf *sk_frame_encode(sk_head *head, const void *body, size_t n);

#ifdef __cplusplus
}
#endif
#endif
