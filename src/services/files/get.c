/* get.c - downloads (SPEC 4.7): get -> file + body + file_end.
 *
 * A worker reads the file in large blocks and hashes each block in the same
 * pass, while it is hot in the cache; the loop queues finished blocks by
 * reference (sk_conn_send_more) and stops while the connection is
 * congested, continuing from the service's .drained callback. One read is
 * in flight at a time (the hash is sequential); up to GET_NBUF blocks are
 * read ahead, and each returns to the pool when the core has written it.
 *
 * Why read+send and not sendfile(): the hash needs every byte in user
 * space anyway, so sendfile would add a second pass over the data (read
 * for the hash, then the kernel's copy to the socket) and would have to
 * bypass the connection's write queue; on this machine's loopback the
 * baseline measured sendfile at 0.95-1.0 GB/s against 1.1-2.0 GB/s for
 * read+send (shared/bench/BASELINE.md). sendfile for get itself has not
 * been measured yet (docs/files.md). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/core.h"
#include "services/files/files.h"
#include "services/files/hash.h"
#include "services/files/names.h"
#include "sockit/error.h"

#define GET_BUF (1u << 20)
#define GET_NBUF 4

typedef struct block {
  uint8_t *data;
  size_t len;
} block;

struct sk__get {
  sk_conn *c;     /* referenced while the request runs (see release_conn) */
  files_conn *fc; /* NULL once finished or once the connection is gone */
  int root_fd, fd;
  char *name;
  sk__hash *hash;
  uint64_t total, offset, read_off, sent;
  int64_t mtime;
  unsigned mode;
  unsigned reading : 1, opened : 1, finished : 1, conn_held : 1;
  int err;
  const char *msg;
  uint8_t *pool[GET_NBUF]; /* free blocks */
  int npool, nalloc, lent; /* lent: blocks the core still holds */
  block ready[GET_NBUF];   /* read, not yet queued, in file order */
  int rhead, rcount;
  block cur; /* the block the read job fills */
  double t0;
  uv_work_t open_w, read_w;
};

static void pump(sk__get *g);

static void get_free(sk__get *g) {
  for (int i = 0; i < g->npool; i++)
    free(g->pool[i]);
  for (int i = 0; i < g->rcount; i++)
    free(g->ready[(g->rhead + i) % GET_NBUF].data);
  free(g->cur.data);
  sk__hash_free(g->hash);
  free(g->name);
  free(g);
}

/* The request is over for the connection: let go of it. The object lives on
 * until the core has given back every block it was lent. */
static void release_conn(sk__get *g) {
  if (!g->conn_held || g->reading)
    return;
  g->conn_held = 0;
  if (g->fd >= 0)
    close(g->fd);
  g->fd = -1;
  sk_conn_unref(g->c);
  if (g->lent == 0)
    get_free(g);
}

static void give_back(void *ctx, void *data) {
  sk__get *g = ctx;
  g->lent--;
  g->pool[g->npool++] = data;
  if (g->conn_held)
    pump(g);
  else if (g->lent == 0)
    get_free(g);
}

static void log_get(sk__get *g, const char *result) {
  sk_conn_log(g->c, "get", "name", 's', g->name, "bytes", 'i', (int64_t)g->sent, "duration", 'f',
              sk__files_now() - g->t0, "result", 's', result, NULL);
}

/* Detach and let the next request run. */
static void finish(sk__get *g) {
  g->finished = 1;
  if (g->fc != NULL) {
    g->fc->get = NULL;
    g->fc = NULL;
    sk_conn_done(g->c);
  }
  release_conn(g);
}

static void send_end(sk__get *g) {
  char hex[SK_HASH_HEX_MAX];
  sk_head *h = sk_head_new("file_end");
  if (h != NULL && g->hash != NULL && sk__hash_final(g->hash, hex, sizeof(hex)) == 0)
    sk_head_set_str(h, "hash", hex);
  if (h == NULL || sk_conn_send(g->c, h, NULL, 0) < 0)
    sk_conn_close(g->c, 0);
  sk_head_free(h);
  log_get(g, "ok");
}

/* ---- reading blocks on the pool ---------------------------------------- */

static void read_work(uv_work_t *w) {
  sk__get *g = w->data;
  uint64_t left = g->total - g->read_off;
  size_t want = left < GET_BUF ? (size_t)left : GET_BUF;
  g->cur.len = 0;
  while (g->cur.len < want) {
    ssize_t n = pread(g->fd, g->cur.data + g->cur.len, want - g->cur.len,
                      (off_t)(g->read_off + g->cur.len));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) { /* an error, or the file shrank under us */
      g->err = SK_EIO;
      return;
    }
    g->cur.len += (size_t)n;
  }
  if (g->hash != NULL)
    sk__hash_update(g->hash, g->cur.data, g->cur.len);
}

static void read_after(uv_work_t *w, int status) {
  sk__get *g = w->data;
  g->reading = 0;
  if (g->err == 0) {
    g->ready[(g->rhead + g->rcount++) % GET_NBUF] = g->cur;
    g->read_off += g->cur.len;
  } else {
    g->pool[g->npool++] = g->cur.data;
  }
  g->cur.data = NULL;
  if (g->fc == NULL) {
    release_conn(g); /* the connection went away while we read */
    return;
  }
  if (g->err != 0) { /* the head promised bytes we cannot give: close */
    log_get(g, "io_error");
    sk_conn_close(g->c, 0);
    finish(g);
    return;
  }
  pump(g);
}

static int start_read(sk__get *g) {
  if (g->npool == 0 && g->nalloc < GET_NBUF) {
    if ((g->pool[g->npool] = malloc(GET_BUF)) == NULL)
      return -ENOMEM;
    g->npool++;
    g->nalloc++;
  }
  if (g->npool == 0)
    return 0; /* every block is ready or lent: wait for one to come back */
  g->cur.data = g->pool[--g->npool];
  g->read_w.data = g;
  if (uv_queue_work(&sk__conn_loop(g->c)->uv, &g->read_w, read_work, read_after) < 0) {
    g->pool[g->npool++] = g->cur.data;
    g->cur.data = NULL;
    return -ENOMEM;
  }
  g->reading = 1;
  return 0;
}

/* Queue ready blocks while the peer keeps up; read ahead; end when all
 * bytes are queued. */
static void pump(sk__get *g) {
  if (g->finished || g->fc == NULL)
    return;
  while (g->rcount > 0 && !sk_conn_congested(g->c)) {
    block b = g->ready[g->rhead];
    sk_buf *buf = sk_buf_wrap(b.data, b.len, give_back, g);
    if (buf == NULL)
      break; /* try again when a block comes back or the queue drains */
    g->rhead = (g->rhead + 1) % GET_NBUF;
    g->rcount--;
    g->lent++;
    sk_conn_send_more(g->c, buf, 0, b.len);
    sk_buf_unref(buf);
    g->sent += b.len;
  }
  if (g->sent == g->total - g->offset && !g->reading) {
    send_end(g);
    finish(g);
    return;
  }
  if (!g->reading && g->read_off < g->total && start_read(g) < 0) {
    log_get(g, "internal");
    sk_conn_close(g->c, 0);
    finish(g);
  }
}

void sk__get_drained(files_conn *fc) {
  if (fc->get != NULL)
    pump(fc->get);
}

/* ---- opening ------------------------------------------------------------ */

static void open_work(uv_work_t *w) {
  sk__get *g = w->data;
  const char *base;
  struct stat st;
  int dirfd = sk__name_open_parent(g->root_fd, g->name, 0, &base), rc = dirfd;
  if (dirfd >= 0) {
    g->fd = openat(dirfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    rc = g->fd < 0 || fstat(g->fd, &st) < 0 ? -errno : 0;
    close(dirfd);
  }
  if (rc < 0) {
    g->err = sk__name_err(rc);
    g->msg = g->err == SK_EFORBIDDEN ? "the name passes through a link or leaves the root"
                                     : "no such file";
  } else if (!S_ISREG(st.st_mode)) {
    g->err = SK_EBADREQ;
    g->msg = "not a regular file (use list for folders)";
  } else if ((uint64_t)st.st_size < g->offset) {
    g->err = SK_EBADREQ;
    g->msg = "offset is past the end of the file";
  } else {
    g->total = (uint64_t)st.st_size;
    g->read_off = g->offset;
    g->mode = (unsigned)st.st_mode & 07777;
    g->mtime = (int64_t)st.st_mtime;
    if (g->hash != NULL && (rc = sk__hash_fd_prefix(g->hash, g->fd, g->offset)) < 0) {
      g->err = SK_EIO;
      g->msg = "cannot read the file";
    }
  }
}

static int send_head(sk__get *g) {
  sk_head *h = sk_head_new("file");
  int rc = h == NULL ? -ENOMEM : 0;
  if (rc == 0) {
    sk_head_set_str(h, "name", g->name);
    sk_head_set_int(h, "total", (int64_t)g->total);
    sk_head_set_int(h, "offset", (int64_t)g->offset);
    sk_head_set_int(h, "size", (int64_t)(g->total - g->offset));
    sk_head_set_int(h, "mode", (int64_t)g->mode);
    sk_head_set_int(h, "mtime", g->mtime);
    rc = sk_conn_send_head(g->c, h, g->total - g->offset);
  }
  sk_head_free(h);
  return rc;
}

static void open_after(uv_work_t *w, int status) {
  sk__get *g = w->data;
  g->reading = 0;
  if (g->fc == NULL) {
    release_conn(g);
    return;
  }
  if (g->err != 0) {
    sk_conn_error(g->c, g->err, g->msg);
    log_get(g, sk_err_wire_name(g->err));
    finish(g);
    return;
  }
  g->opened = 1;
  if (send_head(g) < 0) {
    sk_conn_close(g->c, 0);
    finish(g);
    return;
  }
  pump(g);
}

int sk__get_handle(sk_conn *c, const sk_request *req) {
  files_conn *fc = req->state;
  const char *name, *msg, *alg = sk_head_str(req->head, "hash");
  int64_t offset = 0;
  sk__get *g;
  int rc = sk__files_name(req->head, 0, &name, &msg);

  if (rc == 0 && (rc = sk_head_int(req->head, "offset", &offset)) == -ENOENT)
    rc = 0;
  if (rc == 0 && (offset < 0 || (sk_head_has(req->head, "hash") && !sk__hash_known(alg)))) {
    rc = SK_EBADREQ;
    msg = "get needs a name, an offset >= 0 and a hash the hello lists";
  }
  if (rc < 0)
    return sk_conn_error(c, rc, rc == SK_EBADREQ || rc == SK_EFORBIDDEN ? msg : NULL), 0;
  g = calloc(1, sizeof(*g));
  if (g == NULL || (g->name = strdup(name)) == NULL ||
      (alg != NULL && (g->hash = sk__hash_new(alg)) == NULL)) {
    if (g != NULL)
      free(g->name);
    free(g);
    return -ENOMEM;
  }
  g->c = c;
  g->fc = fc;
  g->root_fd = sk_server_root_fd(sk_conn_server(c));
  g->fd = -1;
  g->offset = (uint64_t)offset;
  g->t0 = sk__files_now();
  g->open_w.data = g;
  if (uv_queue_work(&sk__conn_loop(c)->uv, &g->open_w, open_work, open_after) < 0) {
    get_free(g);
    return -ENOMEM;
  }
  sk_conn_ref(c);
  g->conn_held = 1;
  g->reading = 1; /* the open job counts as a read in flight */
  fc->get = g;
  return SK_ASYNC;
}

void sk__get_cancel(files_conn *fc) {
  sk__get *g = fc->get;
  if (g == NULL)
    return;
  fc->get = NULL;
  g->fc = NULL;
  if (!g->finished)
    log_get(g, "interrupted");
  g->finished = 1;
  release_conn(g);
}
