/* upload.c - the upload job (upload.h): one file under the root, for the
 * files service's put and the seed wire's put.
 *
 * Body bytes land in a ring of large buffers (copied in by the owner, or
 * read into it straight from the socket); each full buffer goes down two
 * chains on libuv's pool, one write at a time in file order (so the part
 * file is always a clean prefix, even after SIGKILL) and one hash update at
 * a time, the two running side by side. When a buffer is free again after
 * a short take the owner hears resume. The part file is opened (and a
 * resumed prefix hashed) before any buffer is written, and is published
 * only by the closing job: fsync, mode, mtime, rename (numbered names tried
 * in turn), fsync of the folder. Every way out (published, refused,
 * failed, cancelled) passes through that one closing job, which is where
 * the fds are closed and the name's claim released (on the pool), and its
 * after callback reports and frees the job. */
#include "services/files/upload.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "services/files/files.h"
#include "common/names.h"
#include "common/sock.h"
#include "sockit/error.h"

#define UP_BUF (1u << 20)  /* large writes; ~4 loop wake-ups per MiB of socket reads */
#define UP_NBUF 4          /* buffers per upload: fill one while others write/hash */
#define UP_COPIES_MAX 9999 /* NUMBERED: "a (9999).txt" is the last name tried */
#define UP_SAVED_MAX (SK_NAME_COMP + 16)

typedef struct up_buf {
  uint8_t *data;
  size_t len;
  uint64_t off, seq;
} up_buf;

enum up_how { HOW_PUBLISH, HOW_KEEP, HOW_REMOVE };

/* One job on the pool. The loop fills the inputs before queueing it; the
 * worker writes only err/msg (and, for the close job, nothing the loop
 * reads before close_after); the after callback reads them on the loop, so
 * every hand-off is ordered by libuv's queue and no field has two writers. */
typedef struct up_job {
  uv_work_t w;
  sk__upload *u;
  up_buf *b;       /* write and hash: the buffer, left alone by the loop meanwhile */
  enum up_how how; /* close: what to do with the part file */
  int err;         /* out: 0 or the failure, read by the after callback */
  const char *msg;
} up_job;

/* The request, fixed before the first job is queued; read-only afterwards,
 * so any thread may read it. */
typedef struct up_cfg {
  char *name; /* claimed in the busy set until freed */
  int root_fd;
  uint64_t total, offset;
  int64_t mtime;
  unsigned mode;
  bool has_mtime;
  enum sk__upload_publish publish;
  char alg[16];
} up_cfg;

/* The part file, touched only by jobs: open, then the writes one at a time,
 * then close (each queued after the previous one's after callback), and
 * the running hash (prefix in open, updates one at a time, final in close).
 * The loop reads result_hash and saved only after the close job. */
typedef struct up_disk {
  int dirfd, fd;
  const char *base;
  char part[SK_PART_NAME_MAX];
  sk__hash *hash;
  char result_hash[SK_HASH_HEX_MAX];
  char saved[UP_SAVED_MAX]; /* NUMBERED: the name published */
  bool released;            /* the name's claim was let go before the close job's end */
} up_disk;

struct sk__upload {
  sk__upload_cfg owner; /* loop, callbacks (its name and alg are not kept) */
  up_cfg cfg;
  up_disk disk;
  char client_hash[SK_HASH_HEX_MAX]; /* set by commit before the close job */
  /* loop only, from here on */
  bool opened, body_done, committed, writing, hashing, paused, closing, cancelled;
  int jobs;
  int err; /* first failure: the answer, and the part file goes */
  const char *msg;
  uint64_t taken;
  up_buf bufs[UP_NBUF];
  uint64_t filled, written, hashed; /* buffers handed off / written / hashed */
  up_job open_j, write_j, hash_j, close_j;
};

static void advance(sk__upload *u);

/* Loop only: the first failure wins. */
static void fail(sk__upload *u, int err, const char *msg) {
  if (u->err == 0) {
    u->err = err;
    u->msg = msg;
  }
}

static void job_fail(up_job *j, int err, const char *msg) {
  j->err = err;
  j->msg = msg;
}

/* ---- the closing job: publish or drop, close, report, free --------------- */

/* The name for copy n of base: "a.txt", then "a (n).txt" (the number goes
 * before the last dot, unless the name starts with its only dot:
 * ".profile (1)"). */
static void numbered_name(const char *base, unsigned n, char *out, size_t cap) {
  const char *dot = strrchr(base, '.');
  int stem = dot != NULL && dot != base ? (int)(dot - base) : (int)strlen(base);
  if (n == 0)
    snprintf(out, cap, "%s", base);
  else
    snprintf(out, cap, "%.*s (%u)%s", stem, base, n, base + stem);
}

/* Rename the part file to the first free name of base's numbered series:
 * never over anything (RENAME_NOREPLACE fails on any existing entry). */
static int rename_numbered(up_disk *d) {
  for (unsigned n = 0; n <= UP_COPIES_MAX; n++) {
    numbered_name(d->base, n, d->saved, sizeof(d->saved));
    if (renameat2(d->dirfd, d->part, d->dirfd, d->saved, RENAME_NOREPLACE) == 0)
      return 0;
    if (errno != EEXIST)
      return -errno;
  }
  return -EEXIST;
}

static int publish(sk__upload *u) {
  const up_cfg *cfg = &u->cfg;
  up_disk *d = &u->disk;
  struct timespec ts[2] = {{0, UTIME_NOW}, {cfg->mtime, 0}};
  int rc;
  if (d->hash != NULL && sk__hash_final(d->hash, d->result_hash, sizeof(d->result_hash)) < 0)
    return -ENOMEM;
  if (u->client_hash[0] && strcasecmp(u->client_hash, d->result_hash) != 0)
    return SK_EHASHMISMATCH;
  if (fchmod(d->fd, cfg->mode) < 0 || (cfg->has_mtime && futimens(d->fd, ts) < 0) ||
      fsync(d->fd) < 0)
    return -errno;
  if (cfg->publish == SK_UPLOAD_NUMBERED) {
    /* The part file is this job's own (open_part): the name is free before
     * the file appears, so a client that sees it may upload it again at
     * once and get the next number. */
    sk__files_release(u->owner.srv, cfg->name);
    d->released = true;
    rc = rename_numbered(d);
  } else
    rc = renameat2(d->dirfd, d->part, d->dirfd, d->base,
                   cfg->publish == SK_UPLOAD_EXCLUSIVE ? RENAME_NOREPLACE : 0) < 0
             ? -errno
             : 0;
  if (rc < 0)
    return rc;
  return fsync(d->dirfd) < 0 ? -errno : 0;
}

static void close_work(uv_work_t *w) {
  up_job *j = w->data;
  up_disk *d = &j->u->disk;
  enum up_how how = j->how;
  int rc;
  if (how == HOW_PUBLISH && (rc = publish(j->u)) < 0) {
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
  /* The job's disk work is over: the name is free (before the answer, so
   * a client that has it may upload the name again at once). */
  if (!d->released)
    sk__files_release(j->u->owner.srv, j->u->cfg.name);
}

static void close_after(uv_work_t *w, int status) {
  up_job *j = w->data;
  sk__upload *u = j->u;
  sk__upload_result r = {0};
  if (j->err)
    fail(u, j->err, j->msg);
  r.err = u->err;
  r.msg = u->msg;
  r.taken = u->taken;
  r.cancelled = u->cancelled;
  r.published = u->err == 0 && !u->cancelled;
  r.saved = u->cfg.publish == SK_UPLOAD_NUMBERED && r.published ? u->disk.saved : u->cfg.name;
  r.hash = u->disk.hash != NULL && r.published ? u->disk.result_hash : NULL;
  u->owner.done(u->owner.owner, &r);
  for (int i = 0; i < UP_NBUF; i++)
    free(u->bufs[i].data);
  sk__hash_free(u->disk.hash);
  free(u->cfg.name);
  free(u);
}

static void start_close(sk__upload *u) {
  up_job *j = &u->close_j;
  u->closing = true;
  j->u = u;
  j->w.data = j;
  j->err = 0;
  j->how = u->err ? HOW_REMOVE : u->cancelled ? HOW_KEEP : HOW_PUBLISH;
  if (!u->opened)
    j->how = HOW_KEEP; /* refused before the part file was touched */
  if (j->how == HOW_KEEP) {
    /* Every write is done and the close job only closes the fds: the name
     * is free now, for a resume that follows a dropped connection at once. */
    sk__files_release(u->owner.srv, u->cfg.name);
    u->disk.released = true;
  }
  if (uv_queue_work(u->owner.loop, &j->w, close_work, close_after) < 0) {
    close_work(&j->w); /* cannot happen with a valid loop; never leak */
    close_after(&j->w, 0);
  }
}

/* ---- the write and hash chains ------------------------------------------- */

static void write_work(uv_work_t *w) {
  up_job *j = w->data;
  const up_buf *b = j->b;
  int rc = sk__pwrite_all(j->u->disk.fd, b->data, b->len, b->off);
  if (rc < 0)
    job_fail(j, SK_EIO,
             rc == -ENOSPC || rc == -EDQUOT ? "the server's disk is full"
                                            : "cannot write the file");
}

/* A job's after callback: its failure (if any) becomes the upload's, and
 * one job less is in flight. Returns the upload. */
static sk__upload *job_over(up_job *j) {
  sk__upload *u = j->u;
  if (j->err)
    fail(u, j->err, j->msg);
  u->jobs--;
  return u;
}

static void write_after(uv_work_t *w, int status) {
  sk__upload *u = job_over(w->data);
  u->writing = false;
  u->written++;
  advance(u);
}

static void hash_work(uv_work_t *w) {
  up_job *j = w->data;
  sk__hash_update(j->u->disk.hash, j->b->data, j->b->len);
}

static void hash_after(uv_work_t *w, int status) {
  sk__upload *u = job_over(w->data);
  u->hashing = false;
  u->hashed++;
  advance(u);
}

static int queue(sk__upload *u, up_job *j, up_buf *b, uv_work_cb work, uv_after_work_cb after) {
  j->u = u;
  j->b = b;
  j->err = 0;
  j->msg = NULL;
  j->w.data = j;
  if (uv_queue_work(u->owner.loop, &j->w, work, after) < 0) {
    fail(u, SK_EINTERNAL, "cannot queue disk work");
    return -1;
  }
  u->jobs++;
  return 0;
}

static int ring_full(const sk__upload *u) {
  uint64_t low = u->written < u->hashed ? u->written : u->hashed;
  return u->filled - low >= UP_NBUF;
}

/* Over when failed, when a cancelled upload has written what it holds, or
 * when a whole upload is written, hashed and committed. Called with no job
 * in flight, so !opened means the open failed. */
static int complete(const sk__upload *u) {
  if (u->err || !u->opened)
    return 1;
  if (u->cancelled)
    return u->written == u->filled;
  return u->body_done && u->committed && u->written == u->filled && u->hashed == u->filled;
}

/* Start what can start; close when everything is over. Re-entrant through
 * the resume callback (the owner may feed bytes in it), so flags are set
 * first. */
static void advance(sk__upload *u) {
  int hashed_here = u->disk.hash != NULL && !u->cancelled;
  if (u->closing)
    return;
  if (u->opened && !u->err) {
    if (!u->writing && u->written < u->filled) {
      u->writing = true;
      if (queue(u, &u->write_j, &u->bufs[u->written % UP_NBUF], write_work, write_after) < 0)
        u->writing = false;
    }
    if (hashed_here && !u->hashing && u->hashed < u->filled) {
      u->hashing = true;
      if (queue(u, &u->hash_j, &u->bufs[u->hashed % UP_NBUF], hash_work, hash_after) < 0)
        u->hashing = false;
    }
  }
  if (!hashed_here && !u->hashing)
    u->hashed = u->filled;
  if (u->jobs == 0 && complete(u)) {
    start_close(u);
  } else if (u->paused && !u->cancelled && u->opened && !u->err && !ring_full(u)) {
    u->paused = false;
    u->owner.resume(u->owner.owner);
  }
}

/* Hand the buffer being filled to the chains. */
static void handoff(sk__upload *u) {
  up_buf *b = &u->bufs[u->filled % UP_NBUF];
  if (b->seq == u->filled && b->len > 0)
    u->filled++;
}

/* The buffer the next body bytes go to, set up for them; NULL when the
 * ring is full or out of memory (then failed). */
static up_buf *fill_slot(sk__upload *u) {
  up_buf *b = &u->bufs[u->filled % UP_NBUF];
  if (ring_full(u))
    return NULL;
  if (b->data == NULL && (b->data = malloc(UP_BUF)) == NULL) {
    fail(u, -ENOMEM, NULL);
    return NULL;
  }
  if (b->seq != u->filled || b->len == 0) { /* a slot whose last use is over */
    b->seq = u->filled;
    b->len = 0;
    b->off = u->cfg.offset + u->taken;
  }
  return b;
}

/* k bytes were added at the end of b; a full buffer goes to the chains. */
static void filled(sk__upload *u, up_buf *b, size_t k) {
  b->len += k;
  u->taken += k;
  if (b->len == UP_BUF)
    u->filled++;
}

size_t sk__upload_room(const sk__upload *u) {
  uint64_t low = u->written < u->hashed ? u->written : u->hashed;
  const up_buf *b = &u->bufs[u->filled % UP_NBUF];
  size_t cur = b->seq == u->filled ? b->len : 0;
  if (u->err || u->closing || ring_full(u))
    return 0;
  return (UP_BUF - cur) + (size_t)(UP_NBUF - 1 - (u->filled - low)) * UP_BUF;
}

/* Bytes may be taken before the part file is open: they wait in the ring,
 * and the writes start once it is. */
size_t sk__upload_take(sk__upload *u, const uint8_t *data, size_t n) {
  size_t took = 0;
  up_buf *b;
  while (!u->err && took < n && (b = fill_slot(u)) != NULL) {
    size_t k = n - took < UP_BUF - b->len ? n - took : UP_BUF - b->len;
    memcpy(b->data + b->len, data + took, k);
    filled(u, b, k);
    took += k;
  }
  if (took < n)
    u->paused = true;
  advance(u);
  return took;
}

/* Zero-copy receive: the owner reads the socket straight into the free end
 * of the buffer being filled. No room (part file not open yet, ring full,
 * failed) pauses as a short take does; advance() resumes. */
ssize_t sk__upload_lend(sk__upload *u, uint8_t **buf) {
  up_buf *b = u->opened && !u->err ? fill_slot(u) : NULL;
  if (b == NULL) {
    u->paused = true;
    advance(u); /* a failed allocation closes; never resumes from here */
    return 0;
  }
  *buf = b->data + b->len;
  return (ssize_t)(UP_BUF - b->len);
}

void sk__upload_lent(sk__upload *u, size_t n) {
  filled(u, &u->bufs[u->filled % UP_NBUF], n);
  advance(u);
}

void sk__upload_wait(sk__upload *u) {
  u->paused = true;
}

void sk__upload_end(sk__upload *u) {
  u->body_done = true;
  handoff(u);
  advance(u);
}

void sk__upload_commit(sk__upload *u, const char *client_hash) {
  u->committed = true;
  if (client_hash != NULL)
    snprintf(u->client_hash, sizeof(u->client_hash), "%s", client_hash);
  advance(u);
}

void sk__upload_fail(sk__upload *u, int err, const char *msg) {
  if (u->closing)
    return; /* the outcome is being decided by the closing job */
  fail(u, err, msg);
  advance(u);
}

void sk__upload_cancel(sk__upload *u) {
  u->cancelled = true;
  handoff(u); /* what arrived is written: the part file keeps it for a resume */
  advance(u);
}

/* ---- opening: parent folders, checks, the part file, a resumed prefix ---- */

static int open_target(const up_cfg *cfg, up_disk *d) {
  struct stat st;
  d->dirfd = sk__name_open_parent(cfg->root_fd, cfg->name, 1, &d->base);
  if (d->dirfd < 0)
    return d->dirfd;
  if (cfg->publish == SK_UPLOAD_NUMBERED)
    return 0; /* a taken name is no obstacle: the next number is tried */
  if (fstatat(d->dirfd, d->base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISLNK(st.st_mode))
      return -ELOOP;
    if (!S_ISREG(st.st_mode) || cfg->publish == SK_UPLOAD_EXCLUSIVE)
      return -EEXIST;
  } else if (errno != ENOENT) {
    return -errno;
  }
  return 0;
}

/* NUMBERED: a part file no other upload uses, ".NAME.sockit-seed-XXXXXX"
 * (created, never opened again), so that the claim can go before the
 * rename. Returns the fd or a negative errno. */
static int open_own_part(up_disk *d) {
  for (int i = 0; i < 100; i++) {
    unsigned r;
    int fd;
    if (getrandom(&r, sizeof(r), 0) != sizeof(r))
      return -EIO;
    snprintf(d->part, sizeof(d->part), ".%.200s.sockit-seed-%06x", d->base, r & 0xffffffu);
    fd = openat(d->dirfd, d->part, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0 || errno != EEXIST)
      return fd >= 0 ? fd : -errno;
  }
  return -EEXIST;
}

static int open_part(const up_cfg *cfg, up_disk *d) {
  struct stat st;
  if (cfg->publish == SK_UPLOAD_NUMBERED) {
    d->fd = open_own_part(d);
    return d->fd < 0 ? d->fd : 0;
  }
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
  up_job *j = w->data;
  const up_cfg *cfg = &j->u->cfg;
  int rc = open_target(cfg, &j->u->disk);
  if (rc == 0)
    rc = open_part(cfg, &j->u->disk);
  if (rc == SK_EBADREQ)
    job_fail(j, rc, "offset is past the part file's length: ask stat for \"partial\"");
  else if (rc == -EEXIST)
    job_fail(j, SK_EEXISTS,
             cfg->publish == SK_UPLOAD_EXCLUSIVE ? "the file exists and the put was exclusive"
                                                 : "a folder has that name");
  else if (rc == -ELOOP || rc == -EXDEV)
    job_fail(j, SK_EFORBIDDEN, "the name passes through a link that leaves the root");
  else if (rc < 0)
    job_fail(j, sk__name_err(rc), "cannot open the upload's part file");
}

static void open_after(uv_work_t *w, int status) {
  up_job *j = w->data;
  sk__upload *u = job_over(j);
  u->opened = j->err == 0; /* a failure meanwhile still removes the part file */
  advance(u);
}

/* ---- starting ------------------------------------------------------------ */

int sk__upload_start(const sk__upload_cfg *cfg, sk__upload **out) {
  sk__upload *u = calloc(1, sizeof(*u));
  int rc;
  if (u == NULL || (u->cfg.name = strdup(cfg->name)) == NULL ||
      (cfg->hash_alg != NULL && (u->disk.hash = sk__hash_new(cfg->hash_alg)) == NULL)) {
    if (u != NULL)
      free(u->cfg.name);
    free(u);
    return -ENOMEM;
  }
  if ((rc = sk__files_claim(cfg->srv, cfg->name)) < 0) {
    sk__hash_free(u->disk.hash);
    free(u->cfg.name);
    free(u);
    return rc;
  }
  u->owner = *cfg;
  u->owner.name = u->owner.hash_alg = NULL; /* the caller's memory: not kept */
  u->cfg.root_fd = sk_server_root_fd(cfg->srv);
  u->cfg.total = cfg->total;
  u->cfg.offset = cfg->offset;
  u->cfg.mode = cfg->mode & 0777; /* never setuid/setgid/sticky from the wire */
  u->cfg.mtime = cfg->mtime;
  u->cfg.has_mtime = cfg->has_mtime;
  u->cfg.publish = cfg->publish;
  if (cfg->hash_alg != NULL)
    snprintf(u->cfg.alg, sizeof(u->cfg.alg), "%s", cfg->hash_alg);
  u->disk.dirfd = u->disk.fd = -1;
  if (queue(u, &u->open_j, NULL, open_work, open_after) < 0) {
    sk__files_release(cfg->srv, u->cfg.name);
    sk__hash_free(u->disk.hash);
    free(u->cfg.name);
    free(u);
    return SK_EINTERNAL;
  }
  *out = u;
  return 0;
}
