/* put.c - seed put: the tutorial's large-file upload.
 *
 *   struct.pack('i', len(head)) + json.dumps(head) + filesize bytes
 *
 * The file is saved under --root by the base name of "filename" only,
 * through a hidden part file that is fsynced and published only when all
 * filesize bytes arrived; an upload cut short leaves nothing. Publishing
 * never replaces a file (SPEC 6 v2: anyone who reaches a seed listener may
 * upload): the part file is hard-linked to the name, which fails on a
 * taken name, and then to "a (1).txt", "a (2).txt", ... for "a.txt".
 * Then the connection closes, as the tutorial's server does after one file.
 *
 * Disk work never blocks the loop: it goes through uv_fs_* requests, one at
 * a time (req), each holding the connection. Body bytes are copied into two
 * chunks: one fills from the socket while the other is being written, and
 * reading pauses when the filling one could not take another read. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/seed.h"
#include "services/services.h"
#include "sockit/error.h"
#include "wire/seed.h"

#define PUT_CHUNK (1u << 20)
#define PUT_PATH (sizeof(((sk_config *)0)->root) + SK_SEED_NAME_MAX + 32)
#define PUT_COPIES_MAX 9999 /* "a (9999).txt" is the last name tried */

enum put_phase { PH_LEN, PH_HEAD, PH_BODY, PH_DONE };

typedef struct put_conn {
  sk_seed_conn sc;
  enum put_phase phase;
  uint8_t len[4];
  size_t nlen;
  char *head; /* head_len bytes, allocated once the length is checked */
  uint32_t head_len, nhead;
  sk_seed_put_head ph;
  char path[PUT_PATH], part[PUT_PATH];
  uv_fs_t req;
  int fs_busy; /* req in flight */
  uv_file fd;  /* the part file, -1 until created */
  char *chunk[2];
  size_t cap; /* of each chunk: PUT_CHUNK, or less for a smaller file */
  size_t fill[2];
  int cur, wi; /* the chunk filling, the chunk being written */
  uint64_t received, written;
  int synced, failed, linked;
  unsigned copy;                     /* 0: the name itself; n: "NAME (n).EXT" */
  char saved[SK_SEED_NAME_MAX + 16]; /* the name published (or tried last) */
} put_conn;

static void step(put_conn *pc);

/* ---- disk requests ------------------------------------------------------ */

/* Start the next disk request; cb runs once (it ends with fs_end). */
static void fs_begin(put_conn *pc) {
  pc->fs_busy = 1;
  pc->req.data = pc;
  sk__seed_hold(&pc->sc);
}

static ssize_t fs_end(uv_fs_t *req) {
  put_conn *pc = req->data;
  ssize_t rc = req->result;
  uv_fs_req_cleanup(req);
  pc->fs_busy = 0;
  return rc;
}

static void fail(put_conn *pc, const char *why, int err) {
  if (!pc->failed)
    sk__seed_log(&pc->sc, "put", "wire", 's', "seed/put", "name", 's', pc->ph.name, "bytes", 'i',
                 (int64_t)pc->received, "result", 's', why, "error", 's', sk_strerror(err), NULL);
  pc->failed = 1;
  sk__seed_close(&pc->sc, 0);
  step(pc); /* clean up, unless a request in flight will */
}

/* Each callback records its outcome, then step() decides what is next;
 * sk__seed_drop comes last because it may free pc. */
static void on_fs(uv_fs_t *req) {
  put_conn *pc = req->data;
  uv_fs_type type = req->fs_type;
  ssize_t rc;

  if (type == UV_FS_MKSTEMP && req->result >= 0)
    snprintf(pc->part, sizeof(pc->part), "%s", req->path);
  rc = fs_end(req);
  if (type == UV_FS_MKSTEMP && rc >= 0)
    pc->fd = (uv_file)rc;
  else if (type == UV_FS_CLOSE)
    pc->fd = -1;
  else if (type == UV_FS_FSYNC && rc == 0)
    pc->synced = 1;
  else if (type == UV_FS_WRITE && rc == (ssize_t)pc->fill[pc->wi]) {
    pc->written += pc->fill[pc->wi];
    pc->fill[pc->wi] = 0;
  } else if (type == UV_FS_LINK && rc == 0) {
    pc->linked = 1;
  } else if (type == UV_FS_LINK && rc == UV_EEXIST && pc->copy < PUT_COPIES_MAX) {
    pc->copy++; /* taken: publish() tries the next name */
    rc = 0;
  } else if (type == UV_FS_UNLINK)
    pc->part[0] = '\0';
  if (rc < 0 || (type == UV_FS_WRITE && rc >= 0 && pc->fill[pc->wi] != 0))
    fail(pc, "io_error", rc < 0 ? (int)rc : -ENOSPC); /* a short write: the disk is full */
  step(pc);
  sk__seed_drop(&pc->sc);
}

static void create_part(put_conn *pc) {
  char tmpl[PUT_PATH];
  snprintf(tmpl, sizeof(tmpl), "%s/.%s.sockit-seed-XXXXXX", pc->sc.srv->cfg.root, pc->ph.name);
  fs_begin(pc);
  if (uv_fs_mkstemp(&pc->sc.loop->uv, &pc->req, tmpl, on_fs) < 0) {
    fs_end(&pc->req);
    sk__seed_drop(&pc->sc);
    fail(pc, "io_error", -EIO);
  }
}

/* Issue the disk request the state calls for, if any. Returns 1 if one was
 * started (a failure to start one counts as the request failing). */
static int start_fs(put_conn *pc, int rc) {
  if (rc >= 0)
    return 1;
  fs_end(&pc->req);
  sk__seed_drop(&pc->sc);
  fail(pc, "io_error", rc);
  return 0;
}

static void write_chunk(put_conn *pc) {
  uv_buf_t b = uv_buf_init(pc->chunk[pc->cur], (unsigned)pc->fill[pc->cur]);
  pc->wi = pc->cur;
  pc->cur ^= 1; /* the other chunk is empty: it fills now */
  fs_begin(pc);
  if (start_fs(pc, uv_fs_write(&pc->sc.loop->uv, &pc->req, pc->fd, &b, 1, (int64_t)pc->written,
                               on_fs)) &&
      pc->received < pc->ph.size)
    sk__seed_resume(&pc->sc);
}

/* After a failure: close and unlink the part file, one request at a time. */
static void clean_up(put_conn *pc) {
  uv_loop_t *loop = &pc->sc.loop->uv;
  if (pc->fd >= 0) {
    fs_begin(pc);
    start_fs(pc, uv_fs_close(loop, &pc->req, pc->fd, on_fs));
  } else if (pc->part[0] != '\0') {
    fs_begin(pc);
    start_fs(pc, uv_fs_unlink(loop, &pc->req, pc->part, on_fs));
  }
}

/* The name to publish under for copy n: "a.txt", then "a (n).txt" (the
 * number goes before the last dot, unless the name starts with its only
 * dot: ".profile (1)"). */
static void copy_name(put_conn *pc) {
  const char *name = pc->ph.name, *dot = strrchr(name, '.');
  int stem = dot != NULL && dot != name ? (int)(dot - name) : (int)strlen(name);
  if (pc->copy == 0)
    snprintf(pc->saved, sizeof(pc->saved), "%s", name);
  else
    snprintf(pc->saved, sizeof(pc->saved), "%.*s (%u)%s", stem, name, pc->copy, name + stem);
  snprintf(pc->path, sizeof(pc->path), "%s/%s", pc->sc.srv->cfg.root, pc->saved);
}

/* All bytes are on disk: fsync, close, link under a free name, drop the
 * part name, then say so in the log and close the connection. */
static void publish(put_conn *pc) {
  uv_loop_t *loop = &pc->sc.loop->uv;
  if (pc->linked && pc->part[0] == '\0') {
    sk__seed_log(&pc->sc, "put", "wire", 's', "seed/put", "name", 's', pc->saved, "bytes", 'i',
                 (int64_t)pc->written, "result", 's', "ok", NULL);
    pc->phase = PH_DONE;
    sk__seed_close(&pc->sc, 1);
    return;
  }
  fs_begin(pc);
  if (!pc->synced) {
    start_fs(pc, uv_fs_fsync(loop, &pc->req, pc->fd, on_fs));
  } else if (pc->fd >= 0) {
    start_fs(pc, uv_fs_close(loop, &pc->req, pc->fd, on_fs));
  } else if (!pc->linked) {
    copy_name(pc);
    start_fs(pc, uv_fs_link(loop, &pc->req, pc->part, pc->path, on_fs));
  } else {
    start_fs(pc, uv_fs_unlink(loop, &pc->req, pc->part, on_fs));
  }
}

/* The next disk request the state calls for, if none is in flight. */
static void step(put_conn *pc) {
  if (pc->fs_busy || pc->phase == PH_DONE)
    return;
  if (pc->failed)
    clean_up(pc);
  else if (pc->phase != PH_BODY || (pc->fd < 0 && !pc->synced))
    return; /* the part file is still being created */
  else if (pc->fill[pc->cur] > 0)
    write_chunk(pc);
  else if (pc->received == pc->ph.size)
    publish(pc);
}

/* ---- the socket side ------------------------------------------------------ */

/* Take up to want - *have bytes into dst; returns how many were taken. */
static size_t gather(void *dst, size_t *have, size_t want, const char *p, size_t n) {
  size_t k = want - *have < n ? want - *have : n;
  memcpy((char *)dst + *have, p, k);
  *have += k;
  return k;
}

static void head_done(put_conn *pc) {
  sk_server *srv = pc->sc.srv;
  int rc = sk__seed_put_head_parse(pc->head, pc->head_len, (uint64_t)srv->cfg.max_file, &pc->ph);
  free(pc->head);
  pc->head = NULL;
  if (rc < 0) {
    fail(pc, "bad_head", rc);
    return;
  }
  pc->cap = pc->ph.size < PUT_CHUNK ? (size_t)pc->ph.size + (pc->ph.size == 0) : PUT_CHUNK;
  pc->chunk[0] = malloc(pc->cap);
  pc->chunk[1] = malloc(pc->cap);
  if (pc->chunk[0] == NULL || pc->chunk[1] == NULL) {
    fail(pc, "internal", -ENOMEM);
    return;
  }
  pc->phase = PH_BODY;
  create_part(pc);
}

/* The length prefix and the head; returns the bytes taken. */
static size_t take_head(put_conn *pc, const char *p, size_t n) {
  size_t k;
  if (pc->phase == PH_LEN) {
    k = gather(pc->len, &pc->nlen, 4, p, n);
    if (pc->nlen < 4)
      return k;
    int rc = sk__seed_head_len(pc->len, &pc->head_len);
    if (rc < 0 || (pc->head = malloc(pc->head_len)) == NULL)
      fail(pc, "bad_head", rc < 0 ? rc : -ENOMEM);
    else
      pc->phase = PH_HEAD;
    return k;
  }
  size_t have = pc->nhead;
  k = gather(pc->head, &have, pc->head_len, p, n);
  pc->nhead = (uint32_t)have;
  if (pc->nhead == pc->head_len)
    head_done(pc);
  return k;
}

/* Body bytes into the filling chunk. Reading pauses while that chunk could
 * not take a whole read; a write finishing resumes it. */
static void take_body(put_conn *pc, const char *p, size_t n) {
  uint64_t left = pc->ph.size - pc->received;
  size_t want = n < left ? n : (size_t)left, room = pc->cap - pc->fill[pc->cur];
  if (want > room) { /* cannot happen while the pause rule holds */
    fail(pc, "internal", SK_EINTERNAL);
    return;
  }
  memcpy(pc->chunk[pc->cur] + pc->fill[pc->cur], p, want);
  pc->fill[pc->cur] += want;
  pc->received += want;
  left = pc->ph.size - pc->received; /* the next read takes at most this much */
  if (left == 0 || pc->cap - pc->fill[pc->cur] < (left < SK_SEED_RBUF ? left : SK_SEED_RBUF))
    sk__seed_pause(&pc->sc); /* done reading, or no room for another read */
  step(pc);
}

static void on_read(sk_seed_conn *sc, const char *p, size_t n) {
  put_conn *pc = (put_conn *)sc;
  while (n > 0 && !pc->failed && (pc->phase == PH_LEN || pc->phase == PH_HEAD)) {
    size_t k = take_head(pc, p, n);
    p += k;
    n -= k;
  }
  /* bytes after the file's end are ignored: one file per connection */
  if (n > 0 && !pc->failed && pc->phase == PH_BODY && pc->received < pc->ph.size)
    take_body(pc, p, n);
  else if (pc->phase == PH_BODY && pc->ph.size == 0)
    sk__seed_pause(sc);
}

static void on_eof(sk_seed_conn *sc) {
  put_conn *pc = (put_conn *)sc;
  if (pc->phase == PH_BODY && pc->received == pc->ph.size)
    return; /* all there: the disk work closes the connection */
  if (pc->phase != PH_LEN || pc->nlen > 0)
    fail(pc, "incomplete", SK_ECLOSED);
  sk__seed_close(sc, 0);
}

static void on_closing(sk_seed_conn *sc) {
  put_conn *pc = (put_conn *)sc;
  if (pc->phase != PH_DONE && !pc->failed && pc->phase != PH_LEN)
    fail(pc, "incomplete", SK_ECLOSED);
}

static void on_free(sk_seed_conn *sc) {
  put_conn *pc = (put_conn *)sc;
  free(pc->head);
  free(pc->chunk[0]);
  free(pc->chunk[1]);
}

/* A graceful stop lets a running upload finish (up to the stop deadline). */
static int busy(sk_seed_conn *sc) {
  put_conn *pc = (put_conn *)sc;
  return pc->phase == PH_BODY && !pc->failed;
}

static void on_start(sk_seed_conn *sc) {
  ((put_conn *)sc)->fd = -1;
}

static const sk_seed_ops ops = {.name = "seed/put",
                                .start = on_start,
                                .read = on_read,
                                .eof = on_eof,
                                .closing = on_closing,
                                .free = on_free,
                                .busy = busy,
                                .size = sizeof(put_conn)};

static void accept_put(sk_listener *l, int fd) {
  sk__seed_accept(l, fd, &ops);
}

const sk_wire sk__wire_seed_put = {
    .name = "seed/put", .accept = accept_put, .check = sk__seed_check};
