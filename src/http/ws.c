/* ws.c - the WebSocket phase of an HTTP connection (RFC 6455).
 *
 * In: wslay's frame parser (I/O-free: it pulls bytes through recv_cb)
 * checks and unmasks the client's frames; the payload of binary messages is
 * written back into the read buffer where the frames were, so the engine
 * reads one native byte stream, whatever the message boundaries. Text
 * frames, unmasked frames, frames over SK_WS_FRAME_MAX and broken framing
 * close the connection with the matching close code (1003, 1002, 1009,
 * 1002); nothing else on the server notices.
 *
 * Out: every native frame the engine queues becomes one binary message
 * (one header before it); a frame longer than SK_WS_MSG_MAX goes as its
 * head's message and then one message per body piece. Server frames are
 * not masked, so the header is all there is to write.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <wslay/wslay.h>

#include "http/http.h"
#include "net/core.h"
#include "sockit/error.h"

enum {
  WS_CLOSE_NORMAL = 1000,
  WS_CLOSE_PROTOCOL = 1002,
  WS_CLOSE_UNSUPPORTED = 1003,
  WS_CLOSE_POLICY = 1008,
  WS_CLOSE_TOO_BIG = 1009,
};

struct sk_ws {
  sk_conn *c;
  wslay_frame_context_ptr fr;
  const uint8_t *in; /* what recv_cb hands wslay next */
  size_t in_n;
  /* the client frame being received */
  int in_frame;
  uint8_t opcode;
  uint64_t frame_got;
  uint8_t ctrl[125]; /* a control frame's payload */
  size_t ctrl_n;
  int msg_open; /* a fragmented binary message goes on */
  /* what we send */
  uint64_t owed;       /* body bytes the last header covers, not queued yet */
  uint64_t split_left; /* body bytes of a split frame, each piece its own message */
  int close_sent;
};

static ssize_t recv_cb(uint8_t *buf, size_t len, int flags, void *user) {
  sk_ws *ws = user;
  size_t n = len < ws->in_n ? len : ws->in_n;
  (void)flags;
  memcpy(buf, ws->in, n);
  ws->in += n;
  ws->in_n -= n;
  return (ssize_t)n; /* 0: wslay says WANT_READ */
}

static ssize_t send_cb(const uint8_t *data, size_t len, int flags, void *user) {
  (void)data, (void)len, (void)flags, (void)user;
  return -1; /* we write our own headers: see put_header */
}

static int genmask_cb(uint8_t *buf, size_t len, void *user) {
  (void)buf, (void)len, (void)user;
  return -1; /* a server never masks */
}

sk_ws *sk__ws_new(sk_conn *c) {
  static const struct wslay_frame_callbacks cbs = {send_cb, recv_cb, genmask_cb};
  sk_ws *ws = calloc(1, sizeof(*ws));
  if (ws == NULL)
    return NULL;
  ws->c = c;
  if (wslay_frame_context_init(&ws->fr, &cbs, ws) != 0) {
    free(ws);
    return NULL;
  }
  return ws;
}

void sk__ws_free(sk_ws *ws) {
  if (ws == NULL)
    return;
  wslay_frame_context_free(ws->fr);
  free(ws);
}

int sk__ws_accept_key(const char *key, size_t n, char out[29]) {
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char cat[64 + sizeof(guid)], md[20];
  unsigned int mdlen = 0;
  if (n == 0 || n > 64)
    return -EINVAL;
  memcpy(cat, key, n);
  memcpy(cat + n, guid, sizeof(guid) - 1);
  if (EVP_Digest(cat, n + sizeof(guid) - 1, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
    return -EINVAL;
  EVP_EncodeBlock((unsigned char *)out, md, 20); /* 28 chars and a NUL */
  return 0;
}

/* ---- sending ------------------------------------------------------------ */

static int put_header(sk_ws *ws, uint8_t opcode, uint64_t n) {
  uint8_t h[10];
  size_t k;
  h[0] = (uint8_t)(0x80 | opcode); /* FIN: we never fragment a message */
  if (n < 126) {
    h[1] = (uint8_t)n;
    k = 2;
  } else if (n < 65536) {
    h[1] = 126;
    h[2] = (uint8_t)(n >> 8);
    h[3] = (uint8_t)n;
    k = 4;
  } else {
    h[1] = 127;
    for (int i = 0; i < 8; i++)
      h[2 + i] = (uint8_t)(n >> (56 - 8 * i));
    k = 10;
  }
  return sk__conn_write_raw(ws->c, h, k);
}

/* A control frame (close, pong): only between messages. */
static int put_control(sk_ws *ws, uint8_t opcode, const uint8_t *p, size_t n) {
  int rc;
  if (ws->owed > 0 || ws->split_left > 0)
    return -EAGAIN;
  if ((rc = put_header(ws, opcode, n)) < 0)
    return rc;
  return sk__conn_write_raw(ws->c, p, n);
}

static void send_close(sk_ws *ws, int code, const char *reason) {
  uint8_t p[125];
  size_t n = strlen(reason);
  if (ws->close_sent)
    return;
  ws->close_sent = 1;
  if (n > sizeof(p) - 2)
    n = sizeof(p) - 2;
  p[0] = (uint8_t)(code >> 8);
  p[1] = (uint8_t)code;
  memcpy(p + 2, reason, n);
  put_control(ws, WSLAY_CONNECTION_CLOSE, p, n + 2);
}

int sk__ws_frame(sk_ws *ws, size_t head_n, uint64_t body_n) {
  int rc;
  if (ws->close_sent)
    return -EPIPE;
  if (head_n + body_n <= SK_WS_MSG_MAX) {
    rc = put_header(ws, WSLAY_BINARY_FRAME, head_n + body_n);
    ws->owed = body_n;
  } else {
    rc = put_header(ws, WSLAY_BINARY_FRAME, head_n);
    ws->split_left = body_n;
  }
  return rc;
}

int sk__ws_body(sk_ws *ws, size_t n) {
  if (ws->split_left > 0) {
    ws->split_left -= n <= ws->split_left ? n : ws->split_left;
    return put_header(ws, WSLAY_BINARY_FRAME, n);
  }
  ws->owed -= n <= ws->owed ? n : ws->owed;
  return 0;
}

void sk__ws_closing(sk_ws *ws, int err) {
  if (err < 0)
    sk__conn_send_error(ws->c, err);
  send_close(ws, err < 0 ? WS_CLOSE_POLICY : WS_CLOSE_NORMAL, err < 0 ? sk_err_wire_name(err) : "");
}

/* ---- receiving ---------------------------------------------------------- */

/* The client broke the WebSocket rules: say why and close. */
static int fail(sk_ws *ws, int code, const char *reason) {
  sk_conn_log(ws->c, "ws_error", "code", 'i', (int64_t)code, "reason", 's', reason, NULL);
  send_close(ws, code, reason);
  sk_conn_close(ws->c, 0);
  return -1;
}

/* The first bytes of a frame's payload are here: is the frame acceptable? */
static int check_frame(sk_ws *ws, const struct wslay_frame_iocb *io) {
  if (io->rsv != 0)
    return fail(ws, WS_CLOSE_PROTOCOL, "reserved bits set");
  if (!io->mask)
    return fail(ws, WS_CLOSE_PROTOCOL, "client frames must be masked");
  switch (io->opcode) {
  case WSLAY_TEXT_FRAME:
    return fail(ws, WS_CLOSE_UNSUPPORTED, "sockit/1 frames travel in binary messages");
  case WSLAY_BINARY_FRAME:
  case WSLAY_CONTINUATION_FRAME:
    if ((io->opcode == WSLAY_CONTINUATION_FRAME) != ws->msg_open)
      return fail(ws, WS_CLOSE_PROTOCOL, "bad fragmentation");
    if (io->payload_length > SK_WS_FRAME_MAX)
      return fail(ws, WS_CLOSE_TOO_BIG, "frame over the limit");
    ws->msg_open = !io->fin;
    return 0;
  case WSLAY_CONNECTION_CLOSE:
  case WSLAY_PING:
  case WSLAY_PONG:
    return 0; /* wslay checked: at most 125 bytes, not fragmented */
  default:
    return fail(ws, WS_CLOSE_PROTOCOL, "unknown opcode");
  }
}

/* A whole control frame arrived. Returns -1 when the connection closes. */
static int control(sk_ws *ws) {
  if (ws->opcode == WSLAY_PING) {
    put_control(ws, WSLAY_PONG, ws->ctrl, ws->ctrl_n); /* skipped mid-message */
  } else if (ws->opcode == WSLAY_CONNECTION_CLOSE) {
    if (!ws->close_sent) { /* echo the code, as RFC 6455 5.5.1 asks */
      ws->close_sent = 1;
      put_control(ws, WSLAY_CONNECTION_CLOSE, ws->ctrl, ws->ctrl_n >= 2 ? 2 : 0);
    }
    sk_conn_close(ws->c, 0);
    return -1;
  }
  return 0;
}

int sk__ws_input(sk_ws *ws, size_t at) {
  size_t rpos, rlen, w = at;
  uint8_t *rb = sk__conn_rbuf(ws->c, &rpos, &rlen);
  int rc = 0;

  ws->in = rb + at;
  ws->in_n = rlen - at;
  while (rc == 0) {
    struct wslay_frame_iocb io;
    ssize_t r;
    memset(&io, 0, sizeof(io));
    r = wslay_frame_recv(ws->fr, &io);
    if (r == WSLAY_ERR_WANT_READ)
      break;
    if (r < 0) {
      rc = fail(ws, WS_CLOSE_PROTOCOL, "malformed frame");
      break;
    }
    if (!ws->in_frame) {
      if ((rc = check_frame(ws, &io)) < 0)
        break;
      ws->in_frame = 1;
      ws->opcode = io.opcode;
      ws->frame_got = 0;
      ws->ctrl_n = 0;
    }
    if (ws->opcode == WSLAY_BINARY_FRAME || ws->opcode == WSLAY_CONTINUATION_FRAME) {
      /* never past the input: every byte written was read first */
      memmove(rb + w, io.data, io.data_length);
      w += io.data_length;
    } else if (ws->ctrl_n + io.data_length <= sizeof(ws->ctrl)) {
      memcpy(ws->ctrl + ws->ctrl_n, io.data, io.data_length);
      ws->ctrl_n += io.data_length;
    }
    ws->frame_got += io.data_length;
    if (ws->frame_got == io.payload_length) {
      ws->in_frame = 0;
      if (ws->opcode != WSLAY_BINARY_FRAME && ws->opcode != WSLAY_CONTINUATION_FRAME)
        rc = control(ws);
    }
  }
  sk__conn_set_rbuf(ws->c, rpos, w);
  return rc;
}
