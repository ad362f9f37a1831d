/* http.c - HTTP/1.1 on the server's loops: the adapter of the --http
 * listener (http.h). http-parser does the parsing; this file keeps the
 * limits (request target, head size, header count, no request bodies, a
 * deadline for the head), answers, and switches a /ws upgrade to ws.c.
 *
 * Requests are answered in order as each one completes; keep-alive holds
 * unless the client or an error says otherwise. Errors close after the
 * answer: 400 malformed, 404 unknown path, 405 not GET/HEAD, 408 head too
 * slow, 413 a request body, 414 target too long, 431 head too large.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <http_parser.h>
#include <openssl/crypto.h>

#include "http/http.h"
#include "net/core.h"
#include "sockit/error.h"
#include "sockit/version.h"

/* The headers we look at; every other one is only counted. */
enum hdr { H_OTHER, H_UPGRADE, H_CONNECTION, H_WS_KEY, H_WS_VERSION, H_AUTHORIZATION, H_COUNT };
static const char *const hdr_names[H_COUNT] = {
    "", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "authorization",
};
/* Room for the values we keep: "Bearer " and the longest token (255 bytes)
 * with some spaces; longer is 431. */
#define HDR_VALUE_MAX 320

typedef struct http_conn {
  sk_conn *c;
  http_parser parser;
  sk_ws *ws; /* after the upgrade */
  /* the request being parsed */
  int in_head;   /* between the first byte and the end of the head */
  int status;    /* an error found while parsing (answered at its end) */
  size_t head_n; /* bytes of the head so far */
  int nheaders;
  char url[SK_HTTP_URL_MAX + 1];
  size_t url_n;
  char field[32];
  size_t field_n;
  int in_value; /* the last callback was a value */
  enum hdr cur;
  char value[H_COUNT][HDR_VALUE_MAX];
  size_t value_n[H_COUNT];
  int body; /* the request announced a body */
  int close_after;
  int upgraded;
} http_conn;

static http_conn *conn_state(sk_conn *c) {
  return sk__conn_adapter_state(c);
}

/* ---- answering ---------------------------------------------------------- */

static const char *reason(int status) {
  switch (status) {
  case 101:
    return "Switching Protocols";
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 413:
    return "Content Too Large";
  case 414:
    return "URI Too Long";
  case 426:
    return "Upgrade Required";
  case 431:
    return "Request Header Fields Too Large";
  case 503:
    return "Service Unavailable";
  default:
    return "Error";
  }
}

static void log_request(http_conn *h, const char *method, int status, size_t bytes) {
  sk_conn_log(h->c, "http", "method", 's', method, "path", 's', h->url, "status", 'i',
              (int64_t)status, "bytes", 'i', (int64_t)bytes, NULL);
}

/* Status line, headers (extra: more header lines, each ending in CRLF) and
 * the body by reference (b may be NULL for none). */
static void respond(http_conn *h, int status, const char *type, const char *extra, sk_buf *b,
                    size_t n, int head_only) {
  char head[1024];
  int k = snprintf(head, sizeof(head),
                   "HTTP/1.1 %d %s\r\nServer: sockit/" SK_VERSION "\r\n"
                   "Content-Type: %s\r\nContent-Length: %zu\r\n"
                   "X-Content-Type-Options: nosniff\r\n%s%s\r\n",
                   status, reason(status), type, n, extra ? extra : "",
                   h->close_after ? "Connection: close\r\n" : "");
  if (k < 0 || (size_t)k >= sizeof(head)) {
    sk_conn_close(h->c, 0);
    return;
  }
  sk__conn_metric(h->c, SK_M_HTTP_REQUESTS, 1);
  sk__conn_write_raw(h->c, head, (size_t)k);
  if (b != NULL && !head_only)
    sk__conn_write_buf(h->c, b, 0, n);
}

/* A short text answer (errors, 401). */
static void respond_text(http_conn *h, int status, const char *extra, const char *text) {
  size_t n = strlen(text);
  sk_buf *b = sk_buf_new(n);
  if (b != NULL) {
    memcpy(sk_buf_data(b), text, n);
    sk_buf_set_len(b, n);
  }
  respond(h, status, "text/plain; charset=utf-8", extra, b, b ? n : 0,
          h->parser.method == HTTP_HEAD);
  sk_buf_unref(b);
}

static void respond_error(http_conn *h, int status, const char *text) {
  const char *method = http_method_str(h->parser.method);
  h->close_after = 1;
  respond_text(h, status, status == 405 ? "Allow: GET, HEAD\r\n" : NULL, text);
  log_request(h, method, status, 0);
  sk_conn_close(h->c, 0);
}

static void free_text(void *ctx, void *data) {
  (void)ctx;
  free(data);
}

/* ---- /metrics ----------------------------------------------------------- */

/* peer: sk_conn_peer's text, "IP:PORT", "[IPv6]:PORT" or "unix". */
static int is_loopback(const char *peer) {
  struct in6_addr a6;
  struct in_addr a4;
  char ip[64];
  const char *end = strrchr(peer, ':');
  size_t n;
  if (strcmp(peer, "unix") == 0)
    return 1; /* a Unix-socket peer is on this machine */
  if (end == NULL)
    return 0;
  if (peer[0] == '[') {
    peer++;
    end--;
  }
  n = (size_t)(end - peer);
  if (n >= sizeof(ip))
    return 0;
  memcpy(ip, peer, n);
  ip[n] = '\0';
  if (inet_pton(AF_INET, ip, &a4) == 1)
    return (ntohl(a4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, ip, &a6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
  return 0;
}

/* Open to loopback peers; anyone else shows the token (constant time). */
static int metrics_allowed(http_conn *h) {
  const sk_server *srv = sk_conn_server(h->c);
  const char *v = h->value[H_AUTHORIZATION];
  size_t n = h->value_n[H_AUTHORIZATION];
  if (is_loopback(sk_conn_peer(h->c)))
    return 1;
  if (srv->http_token_len == 0 || n < 7 || strncasecmp(v, "Bearer ", 7) != 0)
    return 0;
  v += 7;
  n -= 7;
  while (n > 0 && v[0] == ' ')
    v++, n--;
  return n == srv->http_token_len && CRYPTO_memcmp(v, srv->http_token, n) == 0;
}

static void serve_metrics(http_conn *h, int head_only) {
  size_t n = 0;
  char *text;
  sk_buf *b;
  if (!metrics_allowed(h)) {
    respond_text(h, 401, "WWW-Authenticate: Bearer realm=\"sockit metrics\"\r\n",
                 "metrics need a bearer token from this address\n");
    log_request(h, "GET", 401, 0);
    return;
  }
  if ((text = sk__prom_render(sk_conn_server(h->c), &n)) == NULL ||
      (b = sk_buf_wrap(text, n, free_text, NULL)) == NULL) {
    free(text);
    respond_error(h, 503, "out of memory\n");
    return;
  }
  respond(h, 200, "text/plain; version=0.0.4; charset=utf-8", "Cache-Control: no-store\r\n", b, n,
          head_only);
  sk_buf_unref(b);
  log_request(h, head_only ? "HEAD" : "GET", 200, head_only ? 0 : n);
}

/* ---- the page ----------------------------------------------------------- */

static void serve_asset(http_conn *h, const sk_http_asset *a, int head_only) {
  static const char csp[] = "Content-Security-Policy: default-src 'self'; connect-src 'self'; "
                            "img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'\r\n"
                            "Referrer-Policy: no-referrer\r\nCache-Control: no-cache\r\n";
  sk_buf *b = sk_buf_wrap((void *)a->data, a->len, NULL, NULL);
  if (b == NULL) {
    respond_error(h, 503, "out of memory\n");
    return;
  }
  respond(h, 200, a->type, csp, b, a->len, head_only);
  sk_buf_unref(b);
  log_request(h, head_only ? "HEAD" : "GET", 200, head_only ? 0 : a->len);
}

/* ---- the WebSocket upgrade ---------------------------------------------- */

/* Does a comma-separated header value hold token (case-insensitive)? */
static int has_token(const char *v, const char *token) {
  size_t n = strlen(token);
  while (*v) {
    while (*v == ' ' || *v == '\t' || *v == ',')
      v++;
    const char *end = v;
    while (*end && *end != ',')
      end++;
    const char *e = end;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
      e--;
    if ((size_t)(e - v) == n && strncasecmp(v, token, n) == 0)
      return 1;
    v = end;
  }
  return 0;
}

static int upgrade(http_conn *h) {
  char accept[29], head[256];
  int k;
  if (!h->parser.upgrade || !has_token(h->value[H_UPGRADE], "websocket") ||
      !has_token(h->value[H_CONNECTION], "upgrade")) {
    respond_error(h, 426, "/ws speaks WebSocket only\n");
    return -1;
  }
  if (strcmp(h->value[H_WS_VERSION], "13") != 0 || h->value_n[H_WS_KEY] != 24 ||
      sk__ws_accept_key(h->value[H_WS_KEY], h->value_n[H_WS_KEY], accept) < 0) {
    respond_error(h, 400, "bad WebSocket handshake (version 13 and a key are needed)\n");
    return -1;
  }
  if ((h->ws = sk__ws_new(h->c)) == NULL) {
    respond_error(h, 503, "out of memory\n");
    return -1;
  }
  k = snprintf(head, sizeof(head),
               "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
               accept);
  sk__conn_write_raw(h->c, head, (size_t)k);
  sk__conn_metric(h->c, SK_M_HTTP_REQUESTS, 1);
  sk__conn_metric(h->c, SK_M_WS_UPGRADES, 1);
  log_request(h, "GET", 101, 0);
  h->upgraded = 1;
  if (sk__conn_start_native(h->c) < 0) {
    sk_conn_close(h->c, 0);
    return -1;
  }
  return 0;
}

/* ---- routing ------------------------------------------------------------ */

/* The path of the request target, without a query. */
static size_t url_path(const http_conn *h) {
  const char *q = memchr(h->url, '?', h->url_n);
  return q ? (size_t)(q - h->url) : h->url_n;
}

static int route(http_conn *h) {
  int head_only = h->parser.method == HTTP_HEAD;
  size_t n = url_path(h);
  const sk_http_asset *a;

  if (h->status != 0) {
    respond_error(h, h->status, "bad request\n");
    return -1;
  }
  if (h->parser.method != HTTP_GET && !head_only) {
    respond_error(h, 405, "only GET and HEAD are served here\n");
    return -1;
  }
  if (h->body) {
    respond_error(h, 413, "requests here carry no body\n");
    return -1;
  }
  if (n == 3 && memcmp(h->url, "/ws", 3) == 0)
    return upgrade(h);
  if (h->parser.upgrade) {
    respond_error(h, 400, "only /ws can be upgraded\n");
    return -1;
  }
  if (!http_should_keep_alive(&h->parser))
    h->close_after = 1;
  if (n == 8 && memcmp(h->url, "/metrics", 8) == 0)
    serve_metrics(h, head_only);
  else if ((a = sk__http_asset(h->url, n)) != NULL)
    serve_asset(h, a, head_only);
  else {
    respond_text(h, 404, NULL, "not found\n");
    log_request(h, head_only ? "HEAD" : "GET", 404, 0);
  }
  if (h->close_after) {
    sk_conn_close(h->c, 0);
    return -1;
  }
  return 0;
}

/* ---- parser callbacks --------------------------------------------------- */

static http_conn *of(http_parser *p) {
  return p->data;
}

/* Count n more bytes of the head against its limit. */
static int head_bytes(http_conn *h, size_t n) {
  h->head_n += n;
  if (h->head_n > SK_HTTP_HEADERS_MAX) {
    h->status = 431;
    return -1;
  }
  return 0;
}

static int on_message_begin(http_parser *p) {
  http_conn *h = of(p);
  h->in_head = 1;
  h->status = 0;
  h->head_n = 0;
  h->nheaders = 0;
  h->url_n = 0;
  h->url[0] = '\0';
  h->field_n = 0;
  h->in_value = 0;
  h->body = 0;
  memset(h->value_n, 0, sizeof(h->value_n));
  for (int i = 0; i < H_COUNT; i++)
    h->value[i][0] = '\0';
  sk__conn_timer(h->c, SK_HTTP_HEADER_MS); /* the whole head, not each byte */
  return 0;
}

static int on_url(http_parser *p, const char *at, size_t n) {
  http_conn *h = of(p);
  if (head_bytes(h, n) < 0)
    return -1;
  if (h->url_n + n > SK_HTTP_URL_MAX) {
    h->status = 414;
    return -1;
  }
  memcpy(h->url + h->url_n, at, n);
  h->url_n += n;
  h->url[h->url_n] = '\0';
  return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
  http_conn *h = of(p);
  if (head_bytes(h, n + 4) < 0) /* ": " and CRLF count too */
    return -1;
  if (h->in_value || h->nheaders == 0) { /* a new header line */
    if (++h->nheaders > SK_HTTP_NHEADERS_MAX) {
      h->status = 431;
      return -1;
    }
    h->in_value = 0;
    h->field_n = 0;
  }
  /* names longer than the buffer are none we look at */
  size_t k = n < sizeof(h->field) - 1 - h->field_n ? n : sizeof(h->field) - 1 - h->field_n;
  memcpy(h->field + h->field_n, at, k);
  h->field_n += k;
  h->field[h->field_n] = '\0';
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
  http_conn *h = of(p);
  if (head_bytes(h, n) < 0)
    return -1;
  if (!h->in_value) {
    h->in_value = 1;
    h->cur = H_OTHER;
    for (int i = 1; i < H_COUNT; i++)
      if (strcasecmp(h->field, hdr_names[i]) == 0)
        h->cur = (enum hdr)i;
  }
  if (h->cur != H_OTHER) {
    size_t *vn = &h->value_n[h->cur];
    if (*vn + n >= HDR_VALUE_MAX) {
      h->status = 431;
      return -1;
    }
    memcpy(h->value[h->cur] + *vn, at, n);
    *vn += n;
    h->value[h->cur][*vn] = '\0';
  }
  return 0;
}

static int on_headers_complete(http_parser *p) {
  http_conn *h = of(p);
  h->in_head = 0;
  sk__conn_timer(h->c, SK_HTTP_KEEPALIVE_MS);
  /* a body is refused before any of it is read: answer now, read no more */
  if ((p->flags & F_CHUNKED) || (p->content_length > 0 && p->content_length != ULLONG_MAX)) {
    h->body = 1;
    route(h); /* 405 or 413, and the connection closes */
    return -1;
  }
  return 0;
}

/* The parser stops by itself after an upgrade request's head. */
static int on_message_complete(http_parser *p) {
  http_conn *h = of(p);
  if (route(h) < 0)
    return -1;
  /* a client that pipelines requests and reads no answers: stop parsing
   * until the queue drains (the core calls input again from process) */
  if (!h->upgraded && sk_conn_queued(h->c) > SK_WQ_PAUSE)
    http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

/* ---- the adapter -------------------------------------------------------- */

static int http_start(sk_conn *c) {
  http_conn *h = calloc(1, sizeof(*h));
  if (h == NULL)
    return -ENOMEM;
  h->c = c;
  http_parser_init(&h->parser, HTTP_REQUEST);
  h->parser.data = h;
  sk__conn_set_adapter_state(c, h);
  sk__conn_timer(c, SK_HTTP_HEADER_MS); /* a first request, soon */
  return 0;
}

static int http_input(sk_conn *c, size_t at) {
  http_conn *h = conn_state(c);
  size_t rpos, rlen, used;
  uint8_t *rb;

  if (h->ws != NULL)
    return sk__ws_input(h->ws, at);
  /* [rpos, rlen) is unparsed: the new bytes, after any left by a pause */
  rb = sk__conn_rbuf(c, &rpos, &rlen);
  http_parser_pause(&h->parser, 0);
  used = http_parser_execute(&h->parser, &settings, (const char *)rb + rpos, rlen - rpos);
  if (h->upgraded) { /* what follows the head is the WebSocket's */
    sk__conn_set_rbuf(c, rpos + used, rlen);
    return sk_conn_is_closing(c) ? -1 : sk__ws_input(h->ws, rpos + used);
  }
  if (HTTP_PARSER_ERRNO(&h->parser) == HPE_PAUSED && !sk_conn_is_closing(c)) {
    sk__conn_set_rbuf(c, rpos + used, rlen);
    return 0;
  }
  sk__conn_set_rbuf(c, rlen, rlen); /* every byte is the parser's now */
  if (sk_conn_is_closing(c))
    return -1;
  if (HTTP_PARSER_ERRNO(&h->parser) != HPE_OK) {
    enum http_errno e = HTTP_PARSER_ERRNO(&h->parser);
    int status = h->status ? h->status : e == HPE_HEADER_OVERFLOW ? 431 : 400;
    respond_error(h, status,
                  status == 431   ? "request head too large\n"
                  : status == 414 ? "request target too long\n"
                                  : "malformed request\n");
    return -1;
  }
  return 0;
}

static int http_frame(sk_conn *c, size_t head_n, uint64_t body_n) {
  http_conn *h = conn_state(c);
  return h->ws ? sk__ws_frame(h->ws, head_n, body_n) : 0;
}

static int http_body(sk_conn *c, size_t n) {
  http_conn *h = conn_state(c);
  return h->ws ? sk__ws_body(h->ws, n) : 0;
}

static void http_closing(sk_conn *c, int err) {
  http_conn *h = conn_state(c);
  if (h->ws != NULL) {
    sk__ws_closing(h->ws, err);
  } else if (err < 0) { /* refused at accept: --max-conns */
    h->close_after = 1;
    respond_text(h, 503, NULL, "the server is busy\n");
  }
}

static void http_timeout(sk_conn *c) {
  http_conn *h = conn_state(c);
  if (h->in_head) {
    sk_conn_log(c, "http_timeout", NULL);
    respond_error(h, 408, "the request head took too long\n");
  } else {
    sk_conn_close(c, 0); /* an idle keep-alive connection */
  }
}

static void http_finish(sk_conn *c) {
  http_conn *h = conn_state(c);
  if (h != NULL) {
    sk__ws_free(h->ws);
    free(h);
  }
}

static const sk_adapter http_adapter = {
    .name = "http",
    .start = http_start,
    .input = http_input,
    .frame = http_frame,
    .body = http_body,
    .closing = http_closing,
    .timeout = http_timeout,
    .finish = http_finish,
};

/* ---- the listener ------------------------------------------------------- */

static void http_accept(sk_listener *l, int fd) {
  sk__conn_accept_with(l, fd, &http_adapter);
}

/* The token file: like the key file, private to its owner. */
static int load_token(sk_server *srv, const char **why) {
  static char msg[4300];
  const char *path = srv->cfg.http_token_file;
  struct stat st;
  ssize_t n;
  int fd;
  if (path[0] == '\0' || srv->http_token_len > 0)
    return 0;
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) < 0) {
    snprintf(msg, sizeof(msg), "--http-metrics-token-file %s: %s", path, strerror(errno));
    if (fd >= 0)
      close(fd);
    *why = msg;
    return -EINVAL;
  }
  if (st.st_mode & 077) {
    snprintf(msg, sizeof(msg), "--http-metrics-token-file %s is readable by others: chmod 600 it",
             path);
    close(fd);
    *why = msg;
    return -EPERM;
  }
  n = read(fd, srv->http_token, sizeof(srv->http_token) - 1);
  close(fd);
  while (n > 0 && strchr(" \t\r\n", srv->http_token[n - 1]) != NULL)
    n--;
  if (n < 16) {
    snprintf(msg, sizeof(msg), "--http-metrics-token-file %s: the token must be 16 to 255 bytes",
             path);
    *why = msg;
    return -EINVAL;
  }
  srv->http_token[n] = '\0';
  srv->http_token_len = (size_t)n;
  return 0;
}

static int http_check(sk_server *srv, const sk_listen_spec *ls, const char **why) {
  (void)ls;
  return load_token(srv, why);
}

const sk_wire sk__wire_http = {
    .name = "http", .accept = http_accept, .check = http_check, .per_loop = 1};
