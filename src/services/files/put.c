/* put.c - uploads (SPEC 4.7): put + body + put_end -> put_ok.
 *
 * The loop only copies body bytes into a ring of large buffers; each full
 * buffer goes down two chains on libuv's pool, one write at a time in file
 * order (so the part file is always a clean prefix, even after SIGKILL) and
 * one hash update at a time, the two running side by side. When every
 * buffer is free again the sink takes bytes again (sk_conn_resume).
 * The part file is opened (and a resumed prefix hashed) before the first
 * body byte is taken, and is published only by the closing job: fsync,
 * mode, mtime, rename over the target, fsync of the folder. Every way out
 * (published, refused, failed, connection gone) passes through that one
 * closing job, which is where the fds are closed and the object freed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/core.h"
#include "services/files/files.h"
#include "services/files/hash.h"
#include "services/files/names.h"
#include "sockit/error.h"

#define PUT_BUF (1u << 20) /* large writes; ~4 loop wake-ups per MiB of socket reads */
#define PUT_NBUF 4         /* buffers per upload: fill one while others write/hash */

typedef struct put_buf {
  uint8_t *data;
  size_t len;
  uint64_t off, seq;
} put_buf;

enum put_how { HOW_PUBLISH, HOW_KEEP, HOW_REMOVE };

struct sk__put {
  sk_conn *c;
  files_conn *fc; /* NULL once answered or once the connection is gone */
  int root_fd, dirfd, fd;
  char *name; /* claimed in the busy set until freed */
  const char *base;
  char part[SK_PART_NAME_MAX];
  sk__hash *hash;
  char alg[16];
  uint64_t total, offset, taken;
  int64_t mtime;
  unsigned mode;
  unsigned has_mtime : 1, exclusive : 1, opened : 1, body_done : 1, end_seen : 1;
  unsigned writing : 1, hashing : 1, paused : 1, closing : 1, cancelled : 1;
  int jobs;
  int err; /* first failure: the answer, and the part file goes */
  const char *msg;
  enum put_how how;
  put_buf bufs[PUT_NBUF];
  uint64_t filled, written, hashed; /* buffers handed off / written / hashed */
  char client_hash[SK_HASH_HEX_MAX];
  char result_hash[SK_HASH_HEX_MAX];
  double t0;
  uv_work_t open_w, write_w, hash_w, close_w;
};

static void advance(sk__put *p);

uint64_t sk__put_limit(const sk_server *srv) {
  return (uint64_t)sk_server_opt_int(srv, "max-file");
}

static void fail(sk__put *p, int err, const char *msg) {
  if (p->err == 0) {
    p->err = err;
    p->msg = msg;
  }
}

/* ---- the closing job: publish or drop, close, answer, free --------------- */

static int publish(sk__put *p) {
  struct timespec ts[2] = {{0, UTIME_NOW}, {p->mtime, 0}};
  int flags = p->exclusive ? RENAME_NOREPLACE : 0;
  if (p->hash != NULL && sk__hash_final(p->hash, p->result_hash, sizeof(p->result_hash)) < 0)
    return -ENOMEM;
  if (p->client_hash[0] && strcasecmp(p->client_hash, p->result_hash) != 0)
    return SK_EHASHMISMATCH;
  if (fchmod(p->fd, p->mode) < 0 || (p->has_mtime && futimens(p->fd, ts) < 0) || fsync(p->fd) < 0)
    return -errno;
  if (renameat2(p->dirfd, p->part, p->dirfd, p->base, (unsigned)flags) < 0)
    return -errno;
  return fsync(p->dirfd) < 0 ? -errno : 0;
}

static void close_work(uv_work_t *w) {
  sk__put *p = w->data;
  int rc;
  if (p->how == HOW_PUBLISH && (rc = publish(p)) < 0) {
    fail(p, rc == SK_EHASHMISMATCH ? rc : sk__name_err(rc),
         rc == SK_EHASHMISMATCH ? "the file's hash differs from put_end's: nothing was published"
         : rc == -EEXIST        ? "the file exists and the put was exclusive"
                                : "cannot publish the file");
    p->how = HOW_REMOVE;
  }
  if (p->how == HOW_REMOVE && p->fd >= 0)
    unlinkat(p->dirfd, p->part, 0);
  if (p->fd >= 0)
    close(p->fd);
  if (p->dirfd >= 0)
    close(p->dirfd);
}

static int send_ok(sk__put *p) {
  sk_head *h = sk_head_new("put_ok");
  int rc = h == NULL ? -ENOMEM : 0;
  if (rc == 0) {
    sk_head_set_str(h, "name", p->name);
    sk_head_set_int(h, "total", (int64_t)p->total);
    if (p->hash != NULL)
      sk_head_set_str(h, "hash", p->result_hash);
    rc = sk_conn_send(p->c, h, NULL, 0);
  }
  sk_head_free(h);
  return rc;
}

/* Answer a put still attached to its connection. A failed upload's unread
 * body is discarded (the detached sink takes it all) unless it is over the
 * core's discard limit: then the connection closes, as SPEC 4.2 says. */
static void answer(sk__put *p) {
  sk_conn *c = p->c;
  uint64_t left = p->total - p->offset - p->taken;
  p->fc->put = NULL;
  p->fc = NULL;
  if (p->err == 0) {
    send_ok(p);
  } else {
    sk_conn_error(c, p->err, p->msg);
    if (!p->body_done && left > SK_DISCARD_MAX)
      sk_conn_close(c, 0);
    else
      sk_conn_resume(c);
  }
  sk_conn_done(c);
}

static void close_after(uv_work_t *w, int status) {
  sk__put *p = w->data;
  const char *result = p->err ? sk_err_wire_name(p->err) : p->cancelled ? "interrupted" : "ok";
  sk_conn_log(p->c, "put", "name", 's', p->name, "bytes", 'i', (int64_t)p->taken, "duration", 'f',
              sk__files_now() - p->t0, "result", 's', result, NULL);
  if (p->fc != NULL && !sk_conn_is_closing(p->c))
    answer(p);
  else if (p->fc != NULL)
    p->fc->put = NULL;
  sk__files_release(sk_conn_server(p->c), p->name);
  for (int i = 0; i < PUT_NBUF; i++)
    free(p->bufs[i].data);
  sk__hash_free(p->hash);
  sk_conn_unref(p->c);
  free(p->name);
  free(p);
}

static void start_close(sk__put *p) {
  p->closing = 1;
  p->how = p->err ? HOW_REMOVE : p->cancelled ? HOW_KEEP : HOW_PUBLISH;
  if (!p->opened)
    p->how = HOW_KEEP; /* refused before the part file was touched */
  p->close_w.data = p;
  if (uv_queue_work(&sk__conn_loop(p->c)->uv, &p->close_w, close_work, close_after) < 0) {
    close_work(&p->close_w); /* cannot happen with a valid loop; never leak */
    close_after(&p->close_w, 0);
  }
}

/* ---- the write and hash chains ------------------------------------------- */

static void write_work(uv_work_t *w) {
  sk__put *p = w->data;
  put_buf *b = &p->bufs[p->written % PUT_NBUF];
  size_t done = 0;
  while (done < b->len) {
    ssize_t n = pwrite(p->fd, b->data + done, b->len - done, (off_t)(b->off + done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      fail(p, SK_EIO,
           n < 0 && (errno == ENOSPC || errno == EDQUOT) ? "the server's disk is full"
                                                         : "cannot write the file");
      return;
    }
    done += (size_t)n;
  }
}

static void write_after(uv_work_t *w, int status) {
  sk__put *p = w->data;
  p->jobs--;
  p->writing = 0;
  p->written++;
  advance(p);
}

static void hash_work(uv_work_t *w) {
  sk__put *p = w->data;
  put_buf *b = &p->bufs[p->hashed % PUT_NBUF];
  sk__hash_update(p->hash, b->data, b->len);
}

static void hash_after(uv_work_t *w, int status) {
  sk__put *p = w->data;
  p->jobs--;
  p->hashing = 0;
  p->hashed++;
  advance(p);
}

static void queue(sk__put *p, uv_work_t *w, uv_work_cb work, uv_after_work_cb after) {
  w->data = p;
  if (uv_queue_work(&sk__conn_loop(p->c)->uv, w, work, after) == 0)
    p->jobs++;
  else
    fail(p, SK_EINTERNAL, "cannot queue disk work");
}

static int ring_full(const sk__put *p) {
  uint64_t low = p->written < p->hashed ? p->written : p->hashed;
  return p->filled - low >= PUT_NBUF;
}

/* Over when failed, when a dropped upload has written what it holds, or when
 * a whole upload is written, hashed and its put_end has come. Called with no
 * job in flight, so !opened means the open failed. */
static int complete(const sk__put *p) {
  if (p->err || !p->opened)
    return 1;
  if (p->cancelled)
    return p->written == p->filled;
  return p->body_done && p->end_seen && p->written == p->filled && p->hashed == p->filled;
}

/* Start what can start; close when everything is over. Re-entrant through
 * sk_conn_resume (the sink calls back in), so flags are set first. */
static void advance(sk__put *p) {
  if (p->closing)
    return;
  if (p->opened && !p->err) {
    if (!p->writing && p->written < p->filled) {
      p->writing = 1;
      queue(p, &p->write_w, write_work, write_after);
    }
    if (p->hash != NULL && !p->cancelled && !p->hashing && p->hashed < p->filled) {
      p->hashing = 1;
      queue(p, &p->hash_w, hash_work, hash_after);
    }
  }
  if ((p->hash == NULL || p->cancelled) && !p->hashing)
    p->hashed = p->filled;
  if (p->jobs == 0 && complete(p)) {
    start_close(p);
  } else if (p->paused && p->fc != NULL && p->opened && !p->err && !ring_full(p)) {
    p->paused = 0;
    sk_conn_resume(p->c);
  }
}

/* Hand the buffer being filled to the chains. */
static void handoff(sk__put *p) {
  put_buf *b = &p->bufs[p->filled % PUT_NBUF];
  if (b->seq == p->filled && b->len > 0)
    p->filled++;
}

static size_t fill(sk__put *p, const uint8_t *data, size_t n) {
  size_t took = 0;
  while (took < n && !ring_full(p)) {
    put_buf *b = &p->bufs[p->filled % PUT_NBUF];
    if (b->data == NULL && (b->data = malloc(PUT_BUF)) == NULL) {
      fail(p, -ENOMEM, NULL);
      break;
    }
    if (b->seq != p->filled || b->len == 0) { /* a slot whose last use is over */
      b->seq = p->filled;
      b->len = 0;
      b->off = p->offset + p->taken;
    }
    size_t k = n - took < PUT_BUF - b->len ? n - took : PUT_BUF - b->len;
    memcpy(b->data + b->len, data + took, k);
    b->len += k;
    took += k;
    p->taken += k;
    if (b->len == PUT_BUF)
      p->filled++;
  }
  return took;
}

ssize_t sk__put_body(sk_conn *c, void *state, const uint8_t *data, size_t n) {
  files_conn *fc = state;
  sk__put *p = fc->put;
  size_t took;
  if (p == NULL)
    return (ssize_t)n; /* answered already: the rest is discarded */
  if (data == NULL) {
    p->body_done = 1;
    handoff(p);
    advance(p);
    return 0;
  }
  took = p->opened && !p->err ? fill(p, data, n) : 0;
  if (took < n)
    p->paused = 1;
  advance(p);
  return (ssize_t)took;
}

/* ---- opening: parent folders, checks, the part file, a resumed prefix ---- */

static int open_target(sk__put *p) {
  struct stat st;
  p->dirfd = sk__name_open_parent(p->root_fd, p->name, 1, &p->base);
  if (p->dirfd < 0)
    return p->dirfd;
  if (fstatat(p->dirfd, p->base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode))
      return -ELOOP;
    if (!S_ISREG(st.st_mode) || p->exclusive)
      return -EEXIST;
  } else if (errno != ENOENT) {
    return -errno;
  }
  return 0;
}

static int open_part(sk__put *p) {
  struct stat st;
  sk__name_part(p->base, p->part);
  p->fd = openat(p->dirfd, p->part, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (p->fd < 0 || fstat(p->fd, &st) < 0)
    return -errno;
  if (!S_ISREG(st.st_mode))
    return -ELOOP;
  if ((uint64_t)st.st_size < p->offset)
    return SK_EBADREQ;
  if (ftruncate(p->fd, (off_t)p->offset) < 0)
    return -errno;
  return p->hash != NULL ? sk__hash_fd_prefix(p->hash, p->fd, p->offset) : 0;
}

static void open_work(uv_work_t *w) {
  sk__put *p = w->data;
  int rc = open_target(p);
  if (rc == 0)
    rc = open_part(p);
  if (rc == SK_EBADREQ)
    fail(p, rc, "offset is past the part file's length: ask stat for \"partial\"");
  else if (rc == -EEXIST)
    fail(p, SK_EEXISTS,
         p->exclusive ? "the file exists and the put was exclusive" : "a folder has that name");
  else if (rc == -ELOOP || rc == -EXDEV)
    fail(p, SK_EFORBIDDEN, "the name passes through a link that leaves the root");
  else if (rc < 0)
    fail(p, sk__name_err(rc), "cannot open the upload's part file");
}

static void open_after(uv_work_t *w, int status) {
  sk__put *p = w->data;
  p->jobs--;
  p->opened = p->err == 0;
  advance(p);
}

/* ---- requests ----------------------------------------------------------- */

typedef struct put_args {
  const char *name, *alg, *msg;
  int64_t total, offset, mode, mtime;
  int exclusive, has_mtime;
} put_args;

static int int_member(const sk_head *h, const char *key, int64_t *v, int64_t lo, int64_t hi) {
  int rc = sk_head_int(h, key, v);
  if (rc == -ENOENT)
    return 0;
  return rc < 0 || *v < lo || *v > hi ? SK_EBADREQ : 0;
}

static int parse(const sk_request *req, put_args *a) {
  const sk_head *h = req->head;
  int rc = sk__files_name(h, 0, &a->name, &a->msg);
  a->total = -1;
  a->mode = 0644;
  a->has_mtime = sk_head_has(h, "mtime");
  if (rc < 0)
    return rc;
  a->msg = "put needs total (0..2^53-1), offset (0..total), size = total - offset, and "
           "integer mode and mtime";
  if (sk_head_int(h, "total", &a->total) < 0 || a->total < 0 || (uint64_t)a->total > SK_SIZE_MAX ||
      int_member(h, "offset", &a->offset, 0, a->total) < 0 ||
      req->size != (uint64_t)(a->total - a->offset) ||
      int_member(h, "mode", &a->mode, 0, 07777) < 0 ||
      int_member(h, "mtime", &a->mtime, INT32_MIN * 1024LL, INT32_MAX * 1024LL) < 0)
    return SK_EBADREQ;
  if (sk_head_has(h, "exclusive") && sk_head_bool(h, "exclusive", &a->exclusive) < 0)
    return SK_EBADREQ;
  a->alg = sk_head_str(h, "hash");
  if (sk_head_has(h, "hash") && !sk__hash_known(a->alg)) {
    a->msg = "unknown hash: use one the hello's \"hashes\" lists";
    return SK_EBADREQ;
  }
  return 0;
}

static sk__put *put_new(sk_conn *c, files_conn *fc, const put_args *a) {
  sk__put *p = calloc(1, sizeof(*p));
  if (p == NULL || (p->name = strdup(a->name)) == NULL ||
      (a->alg != NULL && (p->hash = sk__hash_new(a->alg)) == NULL)) {
    if (p != NULL)
      free(p->name);
    free(p);
    return NULL;
  }
  p->c = c;
  p->fc = fc;
  p->root_fd = sk_server_root_fd(sk_conn_server(c));
  p->dirfd = p->fd = -1;
  p->total = (uint64_t)a->total;
  p->offset = (uint64_t)a->offset;
  p->mode = (unsigned)a->mode & 0777; /* never setuid/setgid/sticky from the wire */
  p->mtime = a->mtime;
  p->has_mtime = a->has_mtime;
  p->exclusive = a->exclusive != 0;
  p->t0 = sk__files_now();
  if (a->alg != NULL)
    snprintf(p->alg, sizeof(p->alg), "%s", a->alg);
  return p;
}

int sk__put_handle(sk_conn *c, const sk_request *req) {
  files_conn *fc = req->state;
  const sk_server *srv = sk_conn_server(c);
  put_args a = {0};
  sk__put *p;
  int rc = parse(req, &a);

  if (rc == 0 && (uint64_t)a.total > sk__put_limit(srv)) {
    rc = SK_ETOOLARGE;
    a.msg = "the file is larger than the server's --max-file";
  }
  if (rc == 0 && (rc = sk__files_claim(srv, a.name)) == SK_EBUSY)
    a.msg = "another upload of this name is in progress";
  if (rc < 0) {
    sk_conn_error(c, rc, rc == -ENOMEM ? NULL : a.msg);
    return 0; /* the core discards the body; the put_end that follows is swallowed */
  }
  if ((p = put_new(c, fc, &a)) == NULL) {
    sk__files_release(srv, a.name);
    return -ENOMEM;
  }
  sk_conn_ref(c);
  fc->put = p;
  p->body_done = req->size == 0;
  p->paused = req->size > 0; /* the sink takes nothing until the part file is open */
  queue(p, &p->open_w, open_work, open_after);
  advance(p);
  return SK_ASYNC;
}

/* put_end: the client's hash for the whole file. With no upload in progress
 * (its put was refused, or failed) it is swallowed: SPEC 4.7 sends nothing
 * more for a refused put. */
int sk__put_end(sk_conn *c, const sk_request *req) {
  files_conn *fc = req->state;
  sk__put *p = fc->put;
  const char *hash = sk_head_str(req->head, "hash");
  size_t alen = strlen(p != NULL ? p->alg : "");

  if (p == NULL || p->end_seen || !p->body_done)
    return 0;
  p->end_seen = 1;
  if (sk_head_has(req->head, "hash")) {
    if (hash == NULL || p->hash == NULL || strncmp(hash, p->alg, alen) != 0 || hash[alen] != ':' ||
        strlen(hash) >= sizeof(p->client_hash))
      fail(p, SK_EBADREQ, "put_end's hash must be \"ALG:HEX\" with the put's hash algorithm");
    else
      memcpy(p->client_hash, hash, strlen(hash) + 1);
  }
  advance(p);
  return 0;
}

void sk__put_cancel(files_conn *fc) {
  sk__put *p = fc->put;
  if (p == NULL)
    return;
  fc->put = NULL;
  p->fc = NULL;
  p->cancelled = 1;
  handoff(p); /* what arrived is written: the part file keeps it for a resume */
  advance(p);
}
