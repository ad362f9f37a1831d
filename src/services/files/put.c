/* put.c - uploads (SPEC 4.7): put + body + put_end -> put_ok.
 *
 * Body bytes land in a ring of large buffers (read into it straight from the
 * socket, or copied from the core's read buffer at the body's start); each full
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
#include <stdbool.h>
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

/* One job on the pool. The loop fills the inputs before queueing it; the
 * worker writes only err/msg (and, for the close job, nothing the loop
 * reads before close_after); the after callback reads them on the loop, so
 * every hand-off is ordered by libuv's queue and no field has two writers. */
typedef struct put_job {
  uv_work_t w;
  sk__put *p;
  put_buf *b;       /* write and hash: the buffer, left alone by the loop meanwhile */
  enum put_how how; /* close: what to do with the part file */
  int err;          /* out: 0 or the failure, read by the after callback */
  const char *msg;
} put_job;

/* The request, fixed before the first job is queued; read-only afterwards,
 * so any thread may read it. Plain fields: no bitfield is shared with the
 * loop's flags. */
typedef struct put_cfg {
  char *name; /* claimed in the busy set until freed */
  int root_fd;
  uint64_t total, offset;
  int64_t mtime;
  unsigned mode;
  bool has_mtime, exclusive;
  char alg[16];
} put_cfg;

/* The part file, touched only by jobs: open, then the writes one at a time,
 * then close (each queued after the previous one's after callback), and
 * the running hash (prefix in open, updates one at a time, final in close).
 * The loop reads result_hash only after the close job. */
typedef struct put_disk {
  int dirfd, fd;
  const char *base;
  char part[SK_PART_NAME_MAX];
  sk__hash *hash;
  char result_hash[SK_HASH_HEX_MAX];
} put_disk;

struct sk__put {
  sk_conn *c;
  files_conn *fc; /* NULL once answered or once the connection is gone */
  put_cfg cfg;
  put_disk disk;
  char client_hash[SK_HASH_HEX_MAX]; /* set by put_end before the close job */
  /* loop only, from here on */
  bool opened, body_done, end_seen, writing, hashing, paused, closing, cancelled;
  int jobs;
  int err; /* first failure: the answer, and the part file goes */
  const char *msg;
  uint64_t taken;
  put_buf bufs[PUT_NBUF];
  uint64_t filled, written, hashed; /* buffers handed off / written / hashed */
  double t0;
  put_job open_j, write_j, hash_j, close_j;
};

static void advance(sk__put *p);

uint64_t sk__put_limit(const sk_server *srv) {
  return (uint64_t)sk_server_opt_int(srv, "max-file");
}

/* Loop only: the first failure wins. */
static void fail(sk__put *p, int err, const char *msg) {
  if (p->err == 0) {
    p->err = err;
    p->msg = msg;
  }
}

static void job_fail(put_job *j, int err, const char *msg) {
  j->err = err;
  j->msg = msg;
}

/* ---- the closing job: publish or drop, close, answer, free --------------- */

static int publish(sk__put *p) {
  const put_cfg *cfg = &p->cfg;
  put_disk *d = &p->disk;
  struct timespec ts[2] = {{0, UTIME_NOW}, {cfg->mtime, 0}};
  int flags = cfg->exclusive ? RENAME_NOREPLACE : 0;
  if (d->hash != NULL && sk__hash_final(d->hash, d->result_hash, sizeof(d->result_hash)) < 0)
    return -ENOMEM;
  if (p->client_hash[0] && strcasecmp(p->client_hash, d->result_hash) != 0)
    return SK_EHASHMISMATCH;
  if (fchmod(d->fd, cfg->mode) < 0 || (cfg->has_mtime && futimens(d->fd, ts) < 0) ||
      fsync(d->fd) < 0)
    return -errno;
  if (renameat2(d->dirfd, d->part, d->dirfd, d->base, (unsigned)flags) < 0)
    return -errno;
  return fsync(d->dirfd) < 0 ? -errno : 0;
}

static void close_work(uv_work_t *w) {
  put_job *j = w->data;
  put_disk *d = &j->p->disk;
  enum put_how how = j->how;
  int rc;
  if (how == HOW_PUBLISH && (rc = publish(j->p)) < 0) {
    job_fail(j, rc == SK_EHASHMISMATCH ? rc : sk__name_err(rc),
             rc == SK_EHASHMISMATCH
                 ? "the file's hash differs from put_end's: nothing was published"
             : rc == -EEXIST ? "the file exists and the put was exclusive"
                             : "cannot publish the file");
    how = HOW_REMOVE;
  }
  if (how == HOW_REMOVE && d->fd >= 0)
    unlinkat(d->dirfd, d->part, 0);
  if (d->fd >= 0)
    close(d->fd);
  if (d->dirfd >= 0)
    close(d->dirfd);
}

static int send_ok(sk__put *p) {
  sk_head *h = sk_head_new("put_ok");
  int rc = h == NULL ? -ENOMEM : 0;
  if (rc == 0) {
    sk_head_set_str(h, "name", p->cfg.name);
    sk_head_set_int(h, "total", (int64_t)p->cfg.total);
    if (p->disk.hash != NULL)
      sk_head_set_str(h, "hash", p->disk.result_hash);
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
  uint64_t left = p->cfg.total - p->cfg.offset - p->taken;
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
  put_job *j = w->data;
  sk__put *p = j->p;
  const char *result;
  if (j->err)
    fail(p, j->err, j->msg);
  result = p->err ? sk_err_wire_name(p->err) : p->cancelled ? "interrupted" : "ok";
  sk__conn_metric(p->c, SK_M_BYTES_PUT, (int64_t)p->taken);
  if (p->err == 0 && !p->cancelled)
    sk__conn_metric(p->c, SK_M_FILES_PUT, 1);
  sk_conn_log(p->c, "put", "name", 's', p->cfg.name, "bytes", 'i', (int64_t)p->taken, "duration",
              'f', sk__files_now() - p->t0, "result", 's', result, NULL);
  if (p->fc != NULL && !sk_conn_is_closing(p->c))
    answer(p);
  else if (p->fc != NULL)
    p->fc->put = NULL;
  sk__files_release(sk_conn_server(p->c), p->cfg.name);
  for (int i = 0; i < PUT_NBUF; i++)
    free(p->bufs[i].data);
  sk__hash_free(p->disk.hash);
  sk_conn_unref(p->c);
  free(p->cfg.name);
  free(p);
}

static void start_close(sk__put *p) {
  put_job *j = &p->close_j;
  p->closing = true;
  j->p = p;
  j->w.data = j;
  j->err = 0;
  j->how = p->err ? HOW_REMOVE : p->cancelled ? HOW_KEEP : HOW_PUBLISH;
  if (!p->opened)
    j->how = HOW_KEEP; /* refused before the part file was touched */
  if (uv_queue_work(&sk__conn_loop(p->c)->uv, &j->w, close_work, close_after) < 0) {
    close_work(&j->w); /* cannot happen with a valid loop; never leak */
    close_after(&j->w, 0);
  }
}

/* ---- the write and hash chains ------------------------------------------- */

static void write_work(uv_work_t *w) {
  put_job *j = w->data;
  const put_buf *b = j->b;
  size_t done = 0;
  while (done < b->len) {
    ssize_t n = pwrite(j->p->disk.fd, b->data + done, b->len - done, (off_t)(b->off + done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      job_fail(j, SK_EIO,
               n < 0 && (errno == ENOSPC || errno == EDQUOT) ? "the server's disk is full"
                                                             : "cannot write the file");
      return;
    }
    done += (size_t)n;
  }
}

static void write_after(uv_work_t *w, int status) {
  put_job *j = w->data;
  sk__put *p = j->p;
  if (j->err)
    fail(p, j->err, j->msg);
  p->jobs--;
  p->writing = false;
  p->written++;
  advance(p);
}

static void hash_work(uv_work_t *w) {
  put_job *j = w->data;
  sk__hash_update(j->p->disk.hash, j->b->data, j->b->len);
}

static void hash_after(uv_work_t *w, int status) {
  put_job *j = w->data;
  sk__put *p = j->p;
  p->jobs--;
  p->hashing = false;
  p->hashed++;
  advance(p);
}

static void queue(sk__put *p, put_job *j, put_buf *b, uv_work_cb work, uv_after_work_cb after) {
  j->p = p;
  j->b = b;
  j->err = 0;
  j->msg = NULL;
  j->w.data = j;
  if (uv_queue_work(&sk__conn_loop(p->c)->uv, &j->w, work, after) == 0)
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
  int hashed_here = p->disk.hash != NULL && !p->cancelled;
  if (p->closing)
    return;
  if (p->opened && !p->err) {
    if (!p->writing && p->written < p->filled) {
      p->writing = true;
      queue(p, &p->write_j, &p->bufs[p->written % PUT_NBUF], write_work, write_after);
    }
    if (hashed_here && !p->hashing && p->hashed < p->filled) {
      p->hashing = true;
      queue(p, &p->hash_j, &p->bufs[p->hashed % PUT_NBUF], hash_work, hash_after);
    }
  }
  if (!hashed_here && !p->hashing)
    p->hashed = p->filled;
  if (p->jobs == 0 && complete(p)) {
    start_close(p);
  } else if (p->paused && p->fc != NULL && p->opened && !p->err && !ring_full(p)) {
    p->paused = false;
    sk_conn_resume(p->c);
  }
}

/* Hand the buffer being filled to the chains. */
static void handoff(sk__put *p) {
  put_buf *b = &p->bufs[p->filled % PUT_NBUF];
  if (b->seq == p->filled && b->len > 0)
    p->filled++;
}

/* The buffer the next body bytes go to, set up for them; NULL when the
 * ring is full or out of memory (then failed). */
static put_buf *fill_slot(sk__put *p) {
  put_buf *b = &p->bufs[p->filled % PUT_NBUF];
  if (ring_full(p))
    return NULL;
  if (b->data == NULL && (b->data = malloc(PUT_BUF)) == NULL) {
    fail(p, -ENOMEM, NULL);
    return NULL;
  }
  if (b->seq != p->filled || b->len == 0) { /* a slot whose last use is over */
    b->seq = p->filled;
    b->len = 0;
    b->off = p->cfg.offset + p->taken;
  }
  return b;
}

/* k bytes were added at the end of b; a full buffer goes to the chains. */
static void filled(sk__put *p, put_buf *b, size_t k) {
  b->len += k;
  p->taken += k;
  if (b->len == PUT_BUF)
    p->filled++;
}

static size_t fill(sk__put *p, const uint8_t *data, size_t n) {
  size_t took = 0;
  put_buf *b;
  while (took < n && (b = fill_slot(p)) != NULL) {
    size_t k = n - took < PUT_BUF - b->len ? n - took : PUT_BUF - b->len;
    memcpy(b->data + b->len, data + took, k);
    filled(p, b, k);
    took += k;
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
    p->body_done = true;
    handoff(p);
    advance(p);
    return 0;
  }
  took = p->opened && !p->err ? fill(p, data, n) : 0;
  if (took < n)
    p->paused = true;
  advance(p);
  return (ssize_t)took;
}

/* Zero-copy receive: the core reads the socket straight into the free end
 * of the buffer being filled, which saves the copy sk__put_body makes. No
 * room (part file not open yet, ring full, failed) pauses as a short take
 * does; advance() resumes. */
ssize_t sk__put_body_buf(sk_conn *c, void *state, uint8_t **buf) {
  files_conn *fc = state;
  sk__put *p = fc->put;
  put_buf *b;
  if (p == NULL)
    return -1; /* answered already: .body discards the rest */
  b = p->opened && !p->err ? fill_slot(p) : NULL;
  if (b == NULL) {
    p->paused = true;
    advance(p); /* a failed allocation closes; never resumes from here */
    return 0;
  }
  *buf = b->data + b->len;
  return (ssize_t)(PUT_BUF - b->len);
}

void sk__put_body_got(sk_conn *c, void *state, size_t n) {
  files_conn *fc = state;
  sk__put *p = fc->put;
  if (p == NULL) /* cannot happen: lent and told within one read */
    return;
  filled(p, &p->bufs[p->filled % PUT_NBUF], n);
  advance(p);
}

/* ---- opening: parent folders, checks, the part file, a resumed prefix ---- */

static int open_target(const put_cfg *cfg, put_disk *d) {
  struct stat st;
  d->dirfd = sk__name_open_parent(cfg->root_fd, cfg->name, 1, &d->base);
  if (d->dirfd < 0)
    return d->dirfd;
  if (fstatat(d->dirfd, d->base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode))
      return -ELOOP;
    if (!S_ISREG(st.st_mode) || cfg->exclusive)
      return -EEXIST;
  } else if (errno != ENOENT) {
    return -errno;
  }
  return 0;
}

static int open_part(const put_cfg *cfg, put_disk *d) {
  struct stat st;
  sk__name_part(d->base, d->part);
  d->fd = openat(d->dirfd, d->part, O_RDWR | O_CREAT | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (d->fd < 0 || fstat(d->fd, &st) < 0)
    return -errno;
  if (!S_ISREG(st.st_mode))
    return -ELOOP;
  if ((uint64_t)st.st_size < cfg->offset)
    return SK_EBADREQ;
  if (ftruncate(d->fd, (off_t)cfg->offset) < 0)
    return -errno;
  return d->hash != NULL ? sk__hash_fd_prefix(d->hash, d->fd, cfg->offset) : 0;
}

static void open_work(uv_work_t *w) {
  put_job *j = w->data;
  const put_cfg *cfg = &j->p->cfg;
  int rc = open_target(cfg, &j->p->disk);
  if (rc == 0)
    rc = open_part(cfg, &j->p->disk);
  if (rc == SK_EBADREQ)
    job_fail(j, rc, "offset is past the part file's length: ask stat for \"partial\"");
  else if (rc == -EEXIST)
    job_fail(j, SK_EEXISTS,
             cfg->exclusive ? "the file exists and the put was exclusive"
                            : "a folder has that name");
  else if (rc == -ELOOP || rc == -EXDEV)
    job_fail(j, SK_EFORBIDDEN, "the name passes through a link that leaves the root");
  else if (rc < 0)
    job_fail(j, sk__name_err(rc), "cannot open the upload's part file");
}

static void open_after(uv_work_t *w, int status) {
  put_job *j = w->data;
  sk__put *p = j->p;
  if (j->err)
    fail(p, j->err, j->msg);
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
  if (sk_head_has(h, "exclusive") && sk_head_bool(h, "exclusive", &a->exclusive) < 0) {
    a->msg = "exclusive must be true or false";
    return SK_EBADREQ;
  }
  a->alg = sk_head_str(h, "hash");
  if (sk_head_has(h, "hash") && !sk__hash_known(a->alg)) {
    a->msg = "unknown hash: use one the hello's \"hashes\" lists";
    return SK_EBADREQ;
  }
  return 0;
}

static sk__put *put_new(sk_conn *c, files_conn *fc, const put_args *a) {
  sk__put *p = calloc(1, sizeof(*p));
  if (p == NULL || (p->cfg.name = strdup(a->name)) == NULL ||
      (a->alg != NULL && (p->disk.hash = sk__hash_new(a->alg)) == NULL)) {
    if (p != NULL)
      free(p->cfg.name);
    free(p);
    return NULL;
  }
  p->c = c;
  p->fc = fc;
  p->cfg.root_fd = sk_server_root_fd(sk_conn_server(c));
  p->disk.dirfd = p->disk.fd = -1;
  p->cfg.total = (uint64_t)a->total;
  p->cfg.offset = (uint64_t)a->offset;
  p->cfg.mode = (unsigned)a->mode & 0777; /* never setuid/setgid/sticky from the wire */
  p->cfg.mtime = a->mtime;
  p->cfg.has_mtime = a->has_mtime;
  p->cfg.exclusive = a->exclusive != 0;
  p->t0 = sk__files_now();
  if (a->alg != NULL)
    snprintf(p->cfg.alg, sizeof(p->cfg.alg), "%s", a->alg);
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
  queue(p, &p->open_j, NULL, open_work, open_after);
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
  size_t alen = strlen(p != NULL ? p->cfg.alg : "");

  if (p == NULL || p->end_seen || !p->body_done)
    return 0;
  p->end_seen = true;
  if (sk_head_has(req->head, "hash")) {
    if (hash == NULL || p->disk.hash == NULL || strncmp(hash, p->cfg.alg, alen) != 0 ||
        hash[alen] != ':' || strlen(hash) >= sizeof(p->client_hash))
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
  p->cancelled = true;
  handoff(p); /* what arrived is written: the part file keeps it for a resume */
  advance(p);
}
