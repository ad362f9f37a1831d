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
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "service/service.h"
#include "services/files/files.h"
#include "common/hash.h"
#include "common/names.h"
#include "sockit/error.h"

#define GET_BUF (1u << 20)
#define GET_NBUF 4

typedef struct block {
  uint8_t *data;
  size_t len;
} block;

/* A job on the pool. The loop fills the inputs before queueing it; the
 * worker writes only the outputs; the after callback reads them on the
 * loop. The file and the running hash are touched only by jobs, which run
 * one at a time (open, then the reads in file order). */
typedef struct get_job {
  uv_work_t w;
  sk__get *g;
  block b;      /* read: in data, out len */
  uint64_t off; /* read: in */
  size_t want;  /* read: in */
  int err;      /* out: 0 or the failure */
  const char *msg;
  int fd;        /* open: out */
  uint64_t size; /* open: out, the file's length */
  unsigned mode; /* open: out */
  int64_t mtime; /* open: out */
} get_job;

struct sk__get {
  sk_conn *c;     /* referenced while the request runs (see release_conn) */
  files_conn *fc; /* NULL once finished or once the connection is gone */
  int root_fd, fd;
  char *name;
  sk__hash *hash; /* updated only by jobs; finished on the loop after the last */
  uint64_t total, offset, read_off, sent;
  bool reading, opened, finished, conn_held;
  uint8_t *pool[GET_NBUF]; /* free blocks */
  int npool, nalloc, lent; /* lent: blocks the core still holds */
  block ready[GET_NBUF];   /* read, not yet queued, in file order */
  int rhead, rcount;
  double t0;
  get_job open_j, read_j;
};

static void pump(sk__get *g);

static void get_free(sk__get *g) {
  for (int i = 0; i < g->npool; i++)
    free(g->pool[i]);
  for (int i = 0; i < g->rcount; i++)
    free(g->ready[(g->rhead + i) % GET_NBUF].data);
  free(g->read_j.b.data);
  sk__hash_free(g->hash);
  free(g->name);
  free(g);
}

/* The request is over for the connection: let go of it. The object lives on
 * until the core has given back every block it was lent. */
static void release_conn(sk__get *g) {
  if (!g->conn_held || g->reading)
    return;
  g->conn_held = false;
  if (g->fd >= 0)
    close(g->fd);
  g->fd = -1;
  /* The last reference frees the connection's write queue, which gives
   * back the blocks it still holds (give_back): hold g over that, or the
   * last give_back frees it under us. */
  g->lent++;
  sk_conn_unref(g->c);
  if (--g->lent == 0)
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
  sk__conn_metric(g->c, SK_M_BYTES_GET, (int64_t)g->sent);
  if (strcmp(result, "ok") == 0)
    sk__conn_metric(g->c, SK_M_FILES_GET, 1);
  sk_conn_log(g->c, "get", "name", 's', g->name, "bytes", 'i', (int64_t)g->sent, "duration", 'f',
              sk__files_now() - g->t0, "result", 's', result, NULL);
}

/* Detach and let the next request run. */
static void finish(sk__get *g) {
  g->finished = true;
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
  get_job *j = w->data;
  j->b.len = 0;
  while (j->b.len < j->want) {
    ssize_t n = pread(j->fd, j->b.data + j->b.len, j->want - j->b.len, (off_t)(j->off + j->b.len));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) { /* an error, or the file shrank under us */
      j->err = SK_EIO;
      return;
    }
    j->b.len += (size_t)n;
  }
  if (j->g->hash != NULL)
    sk__hash_update(j->g->hash, j->b.data, j->b.len);
}

static void read_after(uv_work_t *w, int status) {
  get_job *j = w->data;
  sk__get *g = j->g;
  g->reading = false;
  if (j->err == 0) {
    g->ready[(g->rhead + g->rcount++) % GET_NBUF] = j->b;
    g->read_off += j->b.len;
  } else {
    g->pool[g->npool++] = j->b.data;
  }
  j->b.data = NULL;
  if (g->fc == NULL) {
    release_conn(g); /* the connection went away while we read */
    return;
  }
  if (j->err != 0) { /* the head promised bytes we cannot give: close */
    log_get(g, "io_error");
    sk_conn_close(g->c, 0);
    finish(g);
    return;
  }
  pump(g);
}

static int start_read(sk__get *g) {
  get_job *j = &g->read_j;
  uint64_t left = g->total - g->read_off;
  if (g->npool == 0 && g->nalloc < GET_NBUF) {
    if ((g->pool[g->npool] = malloc(GET_BUF)) == NULL)
      return -ENOMEM;
    g->npool++;
    g->nalloc++;
  }
  if (g->npool == 0)
    return 0; /* every block is ready or lent: wait for one to come back */
  j->g = g;
  j->b.data = g->pool[--g->npool];
  j->off = g->read_off;
  j->want = left < GET_BUF ? (size_t)left : GET_BUF;
  j->fd = g->fd;
  j->err = 0;
  j->w.data = j;
  if (uv_queue_work(sk_conn_uv_loop(g->c), &j->w, read_work, read_after) < 0) {
    g->pool[g->npool++] = j->b.data;
    j->b.data = NULL;
    return -ENOMEM;
  }
  g->reading = true;
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

/* Resolve and open the file; hash a resumed prefix. Inputs are the
 * request's fixed fields (root_fd, name, offset, hash); outputs go to the
 * job. */
static void open_work(uv_work_t *w) {
  get_job *j = w->data;
  const sk__get *g = j->g;
  const char *base;
  struct stat st;
  int dirfd = sk__name_open_parent(g->root_fd, g->name, 0, &base), rc = dirfd, have_st = 0;
  /* Only a regular file is ever opened: a FIFO would block this pool
   * thread in open() (four of them stalled every client), and opening some
   * devices has side effects. Checked before the open, then again on the
   * fd (O_NONBLOCK so that a swap in between cannot block either). */
  if (dirfd >= 0) {
    rc = fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
    if (rc == 0 && S_ISREG(st.st_mode)) {
      j->fd = openat(dirfd, base, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
      rc = j->fd >= 0 && fstat(j->fd, &st) == 0 ? 0 : -errno;
    }
    have_st = rc == 0;
    close(dirfd);
  }
  if (!have_st) { /* st is read only below, where fstatat or fstat filled it */
    j->err = sk__name_err(rc);
    j->msg = j->err == SK_EFORBIDDEN ? "the name passes through a link or leaves the root"
                                     : "no such file";
  } else if (S_ISDIR(st.st_mode)) {
    j->err = SK_EBADREQ;
    j->msg = "a folder, not a file (use list for folders)";
  } else if (!S_ISREG(st.st_mode)) {
    j->err = SK_EFORBIDDEN;
    j->msg = S_ISLNK(st.st_mode) ? "the name is a link: links are refused"
                                 : "not a regular file: only files and folders are served";
  } else if ((uint64_t)st.st_size < g->offset) {
    j->err = SK_EBADREQ;
    j->msg = "offset is past the end of the file";
  } else {
    j->size = (uint64_t)st.st_size;
    j->mode = (unsigned)st.st_mode & 07777;
    j->mtime = (int64_t)st.st_mtime;
    if (g->hash != NULL && sk__hash_fd_prefix(g->hash, j->fd, g->offset) < 0) {
      j->err = SK_EIO;
      j->msg = "cannot read the file";
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
    sk_head_set_int(h, "mode", (int64_t)g->open_j.mode);
    sk_head_set_int(h, "mtime", g->open_j.mtime);
    rc = sk_conn_send_head(g->c, h, g->total - g->offset);
  }
  sk_head_free(h);
  return rc;
}

static void open_after(uv_work_t *w, int status) {
  get_job *j = w->data;
  sk__get *g = j->g;
  g->reading = false;
  g->fd = j->fd; /* -1 when the open failed */
  if (g->fc == NULL) {
    release_conn(g);
    return;
  }
  if (j->err != 0) {
    sk_conn_error(g->c, j->err, j->msg);
    log_get(g, sk_err_wire_name(j->err));
    finish(g);
    return;
  }
  g->opened = true;
  g->total = j->size;
  g->read_off = g->offset;
  if (send_head(g) < 0) {
    sk_conn_close(g->c, 0);
    finish(g);
    return;
  }
  pump(g);
}

int sk__get_handle(sk_conn *c, const sk_request *req) {
  files_conn *fc = req->state;
  const char *name, *msg = NULL, *alg = sk_head_str(req->head, "hash");
  int64_t offset = 0;
  sk__get *g;
  int rc = sk__files_name(req->head, 0, &name, &msg);

  /* Every refusal sets its own message: a wrongly typed member (offset 1.5
   * or "x") once reached sk_conn_error with msg unset. */
  if (rc == 0 && sk_head_has(req->head, "offset") &&
      (sk_head_int(req->head, "offset", &offset) < 0 || offset < 0)) {
    rc = SK_EBADREQ;
    msg = "offset must be an integer >= 0";
  }
  if (rc == 0 && sk_head_has(req->head, "hash") && !sk__hash_known(alg)) {
    rc = SK_EBADREQ;
    msg = "unknown hash: use one the hello's \"hashes\" lists";
  }
  if (rc < 0)
    return sk_conn_error(c, rc, msg), 0;
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
  g->open_j.g = g;
  g->open_j.fd = -1;
  g->open_j.w.data = &g->open_j;
  if (uv_queue_work(sk_conn_uv_loop(c), &g->open_j.w, open_work, open_after) < 0) {
    get_free(g);
    return -ENOMEM;
  }
  sk_conn_ref(c);
  g->conn_held = true;
  g->reading = true; /* the open job counts as a read in flight */
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
  g->finished = true;
  release_conn(g);
}
