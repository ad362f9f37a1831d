/* http.h - the HTTP front (SPEC 10): `sockit serve --http ADDR`.
 *
 * An HTTP listener's connections are native connections with an adapter
 * (net/adapter.h) in front of the engine: http.c parses requests with
 * http-parser and answers GET /metrics (prom.c), the page (page.c) and the
 * WebSocket upgrade at /ws; after the upgrade ws.c turns binary WebSocket
 * messages into the native byte stream and wraps each native frame the
 * engine sends in a message, so every service and every rule is the TCP
 * one. The core knows none of this beyond the adapter and sk__wire_http.
 */
#ifndef SOCKIT_HTTP_HTTP_H
#define SOCKIT_HTTP_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "net/adapter.h"
#include "sockit/server.h"

#define SK_HTTP_URL_MAX 2048            /* request target; longer: 414 */
#define SK_HTTP_HEADERS_MAX (8u * 1024) /* request line and headers; more: 431 */
#define SK_HTTP_NHEADERS_MAX 64         /* header lines; more: 431 */
#define SK_HTTP_HEADER_MS 5000          /* a request's head must arrive within this */
#define SK_HTTP_KEEPALIVE_MS 60000      /* idle keep-alive connections close after this */
/* A client's WebSocket frame may carry at most this much (1009 beyond): a
 * whole native frame of the largest echo fits, and a larger body can always
 * be sent as several messages, since their bytes form one stream. */
#define SK_WS_FRAME_MAX ((16u << 20) + 65540u)
/* Native frames up to this size go out as one WebSocket message, as the
 * client's may come in; a longer one (by default only a file's body) goes as its
 * head's message and then one message per piece of its body, so that a
 * browser never holds a whole large download in one message. */
#define SK_WS_MSG_MAX SK_WS_FRAME_MAX

/* The metrics text (prom.c): malloc'd, *len set; NULL without memory. */
char *sk__prom_render(const sk_server *srv, size_t *len);

/* A file of the page compiled into the binary (page.c). */
typedef struct sk_http_asset {
  const char *path; /* "/", "/app.js", ... */
  const char *type; /* Content-Type */
  const unsigned char *data;
  size_t len;
} sk_http_asset;
const sk_http_asset *sk__http_asset(const char *path, size_t n);

/* ---- ws.c: the WebSocket phase of a connection ---- */
typedef struct sk_ws sk_ws;
/* Sec-WebSocket-Accept for a client key (RFC 6455 4.2.2); 0 or an error. */
int sk__ws_accept_key(const char *key, size_t n, char out[29]);
sk_ws *sk__ws_new(sk_conn *c);
void sk__ws_free(sk_ws *ws);
/* The adapter's input, frame, body and closing for the WebSocket phase. */
int sk__ws_input(sk_ws *ws, size_t at);
int sk__ws_frame(sk_ws *ws, size_t head_n, uint64_t body_n);
int sk__ws_body(sk_ws *ws, size_t n);
void sk__ws_closing(sk_ws *ws, int err);

#endif
