/* files.c - the client side of SPEC 4.7: put, get, stat and list as library
 * calls. A helper thread takes the transfer's blocks as they pass: it
 * hashes them (put) or writes them to the part file and hashes them (get)
 * beside the network, so the disk and the hash overlap the transfer and
 * each byte is read from the file (put) or the socket (get) once. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/client_int.h"
#include "common/sock.h"
#include "common/hash.h"
#include "common/names.h"
#include "sockit/client.h"
#include "sockit/error.h"

#define XFER_BUF (1u << 20)
#define PATH_CAP 4096

/* ---- the helper thread: a ring of blocks ------------------------------- */

/* The transfer thread hands whole blocks, in file order, to one helper
 * thread, which writes each to the part file (get) and hashes it (put and
 * get) beside the network, from the same memory: no second read of the
 * file. A block returns to the ring when the helper is done with it; the
 * blocks are allocated once and reused (fresh pages cost faults here).
 * queued/done/stop/err are shared under mu; a block's bytes belong to the
 * transfer thread until queued and to the helper until done. */
#define RING_N 4

typedef struct ring_block {
  uint8_t *data;
  size_t len;
  uint64_t off;
} ring_block;

typedef struct ring {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  ring_block blk[RING_N];
  uint64_t queued, done; /* blocks handed over / finished by the helper */
  int stop, err, started;
  int wfd; /* get: the part file (or output) the helper writes; -1 for put */
  int seq; /* wfd takes its bytes in order, without offsets */
  int pfd; /* the file whose prefix [0, plen) is hashed first */
  uint64_t plen;
  sk__hash *h; /* NULL without a hash */
} ring;

static int ring_block_work(ring *r, const ring_block *b) {
  if (r->wfd >= 0) {
    /* seq: in order with write() (a pipe, FIFO or device has no offsets) */
    int rc = r->seq ? sk__write_all(r->wfd, b->data, b->len)
                    : sk__pwrite_all(r->wfd, b->data, b->len, b->off);
    if (rc < 0)
      return rc;
  }
  if (r->h != NULL)
    sk__hash_update(r->h, b->data, b->len);
  return 0;
}

static void *ring_main(void *arg) {
  ring *r = arg;
  int err = r->h != NULL ? sk__hash_fd_prefix(r->h, r->pfd, r->plen) : 0;
  for (;;) {
    pthread_mutex_lock(&r->mu);
    if (err != 0 && r->err == 0)
      r->err = err;
    while (r->done == r->queued && !r->stop && r->err == 0)
      pthread_cond_wait(&r->cv, &r->mu);
    int quit = r->err != 0 || r->done == r->queued;
    pthread_mutex_unlock(&r->mu);
    if (quit)
      return NULL;
    err = ring_block_work(r, &r->blk[r->done % RING_N]);
    pthread_mutex_lock(&r->mu);
    r->done++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
  }
}

/* Start the helper: wfd >= 0 makes it write blocks there (in order with
 * write() when seq); alg (or NULL)
 * the hash, which first covers pfd's bytes [0, plen) (a resumed prefix). */
static int ring_start(ring *r, int wfd, int seq, const char *alg, int pfd, uint64_t plen) {
  memset(r, 0, sizeof(*r));
  r->wfd = wfd;
  r->seq = seq;
  r->pfd = pfd;
  r->plen = plen;
  if (alg != NULL && (r->h = sk__hash_new(alg)) == NULL)
    return -ENOMEM;
  pthread_mutex_init(&r->mu, NULL);
  pthread_cond_init(&r->cv, NULL);
  if (pthread_create(&r->thread, NULL, ring_main, r) != 0) {
    sk__hash_free(r->h);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    return -EAGAIN;
  }
  r->started = 1;
  return 0;
}

/* The next free block to fill (waiting for the helper if the ring is
 * full), or NULL with *err set: the helper failed, or out of memory. */
static ring_block *ring_take(ring *r, int *err) {
  ring_block *b = &r->blk[r->queued % RING_N];
  pthread_mutex_lock(&r->mu);
  while (r->queued - r->done >= RING_N && r->err == 0)
    pthread_cond_wait(&r->cv, &r->mu);
  *err = r->err;
  pthread_mutex_unlock(&r->mu);
  if (*err == 0 && b->data == NULL && (b->data = malloc(XFER_BUF)) == NULL)
    *err = -ENOMEM;
  return *err == 0 ? b : NULL;
}

/* Hand the block from ring_take, filled with len bytes of file offset off. */
static void ring_push(ring *r, ring_block *b, size_t len, uint64_t off) {
  b->len = len;
  b->off = off;
  pthread_mutex_lock(&r->mu);
  r->queued++;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
}

/* Wait for the helper to finish every block; out gets "ALG:HEX" (or ""
 * without a hash). With abort set, stop it early (the transfer failed).
 * Returns the helper's first error, if any. Safe to call twice. */
static int ring_finish(ring *r, char *out, size_t cap, int abort) {
  int rc;
  if (!r->started)
    return 0;
  out[0] = '\0';
  pthread_mutex_lock(&r->mu);
  r->stop = 1;
  if (abort && r->err == 0)
    r->err = -ECANCELED;
  pthread_cond_broadcast(&r->cv);
  pthread_mutex_unlock(&r->mu);
  pthread_join(r->thread, NULL);
  rc = r->err;
  if (rc == 0 && r->h != NULL)
    rc = sk__hash_final(r->h, out, cap);
  sk__hash_free(r->h);
  for (int i = 0; i < RING_N; i++)
    free(r->blk[i].data);
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
  r->started = 0;
  return rc;
}

/* ---- small helpers ------------------------------------------------------ */

const char *sk_client_pick_hash(const sk_client *c, const char *want, int *err) {
  size_t n;
  const char *const *names = sk__hash_names(&n);
  *err = 0;
  if (want != NULL && strcmp(want, "none") == 0)
    return NULL;
  if (want != NULL) {
    if (sk__hash_known(want) && sk_client_has_hash(c, want))
      return want;
    *err = SK_EBADREQ;
    return NULL;
  }
  for (size_t i = 0; i < n; i++)
    if (sk_client_has_hash(c, names[i]))
      return names[i];
  return "sha256";
}

static void note_error(sk_xfer_result *res, const sk_head *h) {
  const char *msg = h ? sk_error_message(h) : NULL;
  if (res != NULL && msg != NULL)
    snprintf(res->message, sizeof(res->message), "%s", msg);
}

/* An error frame becomes its code (message noted); other types must be
 * want. */
static int expect(const sk_head *h, const char *want, sk_xfer_result *res) {
  const char *type = sk_head_type(h);
  if (strcmp(type, "error") == 0) {
    note_error(res, h);
    return sk_err_from_wire(sk_head_str(h, "code"));
  }
  return strcmp(type, want) == 0 ? 0 : SK_EPROTO;
}

static int recv_expect(sk_client *c, const char *want, sk_head **out, sk_xfer_result *res) {
  int rc = sk_client_recv_head(c, out);
  if (rc == 0 && sk_head_size(*out) > 0 && strcmp(want, "file") != 0) {
    sk_head_free(*out); /* no other answer of SPEC 4.7 carries a body */
    *out = NULL;
    return SK_EPROTO;
  }
  if (rc == 0 && (rc = expect(*out, want, res)) < 0) {
    sk_head_free(*out);
    *out = NULL;
  }
  return rc;
}

/* ---- stat and list ------------------------------------------------------ */

int sk_client_stat(sk_client *c, const char *name, sk_file_stat *out) {
  sk_head *req = sk_head_new("stat"), *resp = NULL;
  int64_t v;
  int rc = req == NULL ? -ENOMEM : sk_head_set_str(req, "name", name);
  if (rc == 0)
    rc = sk_client_send(c, req, NULL, 0);
  if (rc == 0)
    rc = recv_expect(c, "stat", &resp, NULL);
  if (rc == 0) {
    memset(out, 0, sizeof(*out));
    sk_head_bool(resp, "exists", &out->exists);
    if (sk_head_int(resp, "length", &v) == 0 && v >= 0)
      out->length = (uint64_t)v;
    if (sk_head_int(resp, "partial", &v) == 0 && v >= 0)
      out->partial = (uint64_t)v;
    if (sk_head_int(resp, "mode", &v) == 0)
      out->mode = (unsigned)v & 07777;
    sk_head_int(resp, "mtime", &out->mtime);
  }
  sk_head_free(req);
  sk_head_free(resp);
  return rc;
}

void sk_dir_entries_free(sk_dir_entry *e, size_t n) {
  for (size_t i = 0; e != NULL && i < n; i++)
    free(e[i].name);
  free(e);
}

static int parse_entries(const sk_head *resp, sk_dir_entry **out, size_t *n) {
  size_t count = sk_head_arr_len(resp, "entries");
  sk_dir_entry *e = calloc(count ? count : 1, sizeof(*e));
  int64_t v;
  if (e == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < count; i++) {
    const sk_head *o = sk_head_arr_obj(resp, "entries", i);
    const char *nm = o ? sk_head_str(o, "name") : NULL, *type = o ? sk_head_str(o, "type") : NULL;
    if (nm == NULL || (e[i].name = strdup(nm)) == NULL) {
      sk_dir_entries_free(e, i);
      return nm == NULL ? SK_EPROTO : -ENOMEM;
    }
    e[i].is_dir = type != NULL && strcmp(type, "dir") == 0;
    snprintf(e[i].type, sizeof(e[i].type), "%s",
             type != NULL && strlen(type) < sizeof(e[i].type) ? type : "other");
    if (sk_head_int(o, "length", &v) == 0 && v >= 0)
      e[i].length = (uint64_t)v;
    if (sk_head_int(o, "partial", &v) == 0 && v >= 0)
      e[i].partial = (uint64_t)v;
    sk_head_int(o, "mtime", &e[i].mtime);
  }
  *out = e;
  *n = count;
  return 0;
}

int sk_client_list(sk_client *c, const char *dir, sk_dir_entry **entries, size_t *n) {
  sk_head *req = sk_head_new("list"), *resp = NULL;
  int rc = req == NULL ? -ENOMEM : sk_head_set_str(req, "name", dir ? dir : "");
  *entries = NULL;
  *n = 0;
  if (rc == 0) /* links and uploads in progress too (docs/protocol.md) */
    rc = sk_head_set_bool(req, "detail", 1);
  if (rc == 0)
    rc = sk_client_send(c, req, NULL, 0);
  if (rc == 0)
    rc = recv_expect(c, "list", &resp, NULL);
  if (rc == 0)
    rc = parse_entries(resp, entries, n);
  sk_head_free(req);
  sk_head_free(resp);
  return rc;
}

/* One request naming a file, one answer of type want naming it back. */
static int named_request(sk_client *c, sk_head *req, const char *want, sk_xfer_result *res) {
  sk_head *resp = NULL;
  int rc = sk_client_send(c, req, NULL, 0);
  if (rc == 0)
    rc = recv_expect(c, want, &resp, res);
  sk_head_free(resp);
  return rc;
}

int sk_client_rm(sk_client *c, const char *name, int recursive) {
  sk_head *req = sk_head_new("rm");
  int rc = req == NULL ? -ENOMEM : sk_head_set_str(req, "name", name);
  if (rc == 0 && recursive)
    rc = sk_head_set_bool(req, "recursive", 1);
  if (rc == 0)
    rc = named_request(c, req, "rm_ok", NULL);
  sk_head_free(req);
  return rc;
}

int sk_client_mkdir(sk_client *c, const char *name) {
  sk_head *req = sk_head_new("mkdir");
  int rc = req == NULL ? -ENOMEM : sk_head_set_str(req, "name", name);
  if (rc == 0)
    rc = named_request(c, req, "mkdir_ok", NULL);
  sk_head_free(req);
  return rc;
}

/* ---- put ---------------------------------------------------------------- */

typedef struct put_state {
  sk_client *c;
  const sk_put_opts *o;
  sk_xfer_result *res;
  int fd;
  struct stat st;
  const char *alg;
  uint64_t offset;
  ring rg;
  char hash[SK_HASH_HEX_MAX];
} put_state;

/* An early answer while we send means the server refused the put. */
static int refused_early(put_state *ps) {
  struct pollfd p = {sk_client_fd(ps->c), POLLIN, 0};
  sk_head *h = NULL;
  int rc;
  if (!sk_client_pending(ps->c) && poll(&p, 1, 0) <= 0)
    return 0;
  rc = sk_client_recv_head(ps->c, &h);
  if (rc == 0 && (rc = expect(h, "put_ok", ps->res)) == 0)
    rc = SK_EPROTO; /* put_ok before the whole body was sent */
  sk_head_free(h);
  return rc;
}

/* Each block is read once: the helper hashes it while we send it. */
static int send_body(put_state *ps) {
  uint64_t total = (uint64_t)ps->st.st_size, off = ps->offset;
  int rc = 0;
  if (ps->o->progress)
    ps->o->progress(ps->o->progress_ctx, off, total);
  while (rc == 0 && off < total) {
    ring_block *b = ring_take(&ps->rg, &rc);
    size_t want = total - off < XFER_BUF ? (size_t)(total - off) : XFER_BUF;
    if (b == NULL)
      break;
    ssize_t r = pread(ps->fd, b->data, want, (off_t)off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      rc = r < 0 ? -errno : -EIO; /* the file shrank while we sent it */
      break;
    }
    ring_push(&ps->rg, b, (size_t)r, off);
    if ((rc = refused_early(ps)) == 0 && (rc = sk_client_write(ps->c, b->data, (size_t)r)) == 0) {
      off += (uint64_t)r;
      if (ps->o->progress)
        ps->o->progress(ps->o->progress_ctx, off, total);
    }
  }
  return rc;
}

static int send_put_head(put_state *ps, const char *name) {
  uint64_t total = (uint64_t)ps->st.st_size;
  sk_head *h = sk_head_new("put");
  int rc = h == NULL ? -ENOMEM : 0;
  if (rc == 0) {
    sk_head_set_str(h, "name", name);
    sk_head_set_int(h, "total", (int64_t)total);
    sk_head_set_int(h, "offset", (int64_t)ps->offset);
    sk_head_set_int(h, "mode", (int64_t)(ps->st.st_mode & 0777));
    sk_head_set_int(h, "mtime", (int64_t)ps->st.st_mtime);
    if (ps->alg != NULL)
      sk_head_set_str(h, "hash", ps->alg);
    if (ps->o->exclusive)
      sk_head_set_bool(h, "exclusive", 1);
    rc = sk_client_send_head(ps->c, h, total - ps->offset);
  }
  sk_head_free(h);
  return rc;
}

static int put_finish(put_state *ps, const char *name) {
  sk_head *end = sk_head_new("put_end"), *resp = NULL;
  const char *got;
  int rc = end == NULL ? -ENOMEM : ring_finish(&ps->rg, ps->hash, sizeof(ps->hash), 0);
  if (rc == 0 && ps->hash[0])
    rc = sk_head_set_str(end, "hash", ps->hash);
  if (rc == 0)
    rc = sk_client_send(ps->c, end, NULL, 0);
  if (rc == 0)
    rc = recv_expect(ps->c, "put_ok", &resp, ps->res);
  if (rc == 0 && ps->alg != NULL) {
    got = sk_head_str(resp, "hash");
    if (got == NULL || strcasecmp(got, ps->hash) != 0)
      rc = SK_EHASHMISMATCH; /* the server did not confirm our bytes */
  }
  sk_head_free(end);
  sk_head_free(resp);
  return rc;
}

/* The server's hash of its whole file: a get from the file's end sends no
 * bytes, and its file_end carries the hash of everything before. */
static int remote_hash(sk_client *c, const char *name, const char *alg, uint64_t len, char *out,
                       size_t cap) {
  sk_head *req = sk_head_new("get"), *resp = NULL;
  const char *hex = NULL;
  int rc = req == NULL ? -ENOMEM : 0, grew;
  if (rc == 0 && (rc = sk_head_set_str(req, "name", name)) == 0 &&
      (rc = sk_head_set_int(req, "offset", (int64_t)len)) == 0 &&
      (rc = sk_head_set_str(req, "hash", alg)) == 0)
    rc = sk_client_send(c, req, NULL, 0);
  if (rc == 0)
    rc = recv_expect(c, "file", &resp, NULL);
  for (uint64_t left = rc == 0 ? sk_head_size(resp) : 0; left > 0 && rc == 0;) {
    uint8_t skip[4096]; /* the file grew since stat: read past what it sends */
    ssize_t n = sk_client_read_body(c, skip, left < sizeof(skip) ? (size_t)left : sizeof(skip));
    rc = n > 0 ? 0 : n < 0 ? (int)n : SK_ECLOSED;
    left -= n > 0 ? (uint64_t)n : 0;
  }
  grew = rc == 0 && sk_head_size(resp) != 0;
  sk_head_free(resp);
  resp = NULL;
  if (rc == 0)
    rc = recv_expect(c, "file_end", &resp, NULL);
  if (rc == 0 && (grew || (hex = sk_head_str(resp, "hash")) == NULL || strlen(hex) >= cap))
    rc = SK_EPROTO; /* not the same file any more: the caller sends it */
  if (rc == 0)
    memcpy(out, hex, strlen(hex) + 1);
  sk_head_free(req);
  sk_head_free(resp);
  return rc;
}

/* A resume of a file both sides have whole: the same length (the caller
 * checked) and the same hash of fd's len bytes and the server's file mean
 * there is nothing to send. hash gets "ALG:HEX" when they match. */
static int same_as_remote(sk_client *c, const char *name, const char *alg, int fd, uint64_t len,
                          char hash[SK_HASH_HEX_MAX]) {
  char local[SK_HASH_HEX_MAX], remote[SK_HASH_HEX_MAX];
  sk__hash *h = sk__hash_new(alg);
  int same = h != NULL && sk__hash_fd_prefix(h, fd, len) == 0 &&
             sk__hash_final(h, local, sizeof(local)) == 0 &&
             remote_hash(c, name, alg, len, remote, sizeof(remote)) == 0 &&
             strcasecmp(local, remote) == 0;
  sk__hash_free(h);
  if (same)
    memcpy(hash, local, sizeof(local));
  return same;
}

static int put_resume_offset(put_state *ps, const char *name, int *unchanged) {
  sk_file_stat st;
  int rc = sk_client_stat(ps->c, name, &st);
  if (rc == 0 && st.exists && st.length == (uint64_t)ps->st.st_size && ps->alg != NULL &&
      same_as_remote(ps->c, name, ps->alg, ps->fd, st.length, ps->hash))
    *unchanged = 1;
  else if (rc == 0 && st.partial > 0 && st.partial <= (uint64_t)ps->st.st_size)
    ps->offset = st.partial;
  return rc;
}

int sk_client_put_file(sk_client *c, const char *path, const char *name, const sk_put_opts *given) {
  static const sk_put_opts none = {0};
  sk_put_opts whole;
  const sk_put_opts *opts = sk__sized_copy(&whole, sizeof(whole), given, SK__PUT_OPTS_V1);
  put_state ps = {.c = c, .o = opts ? opts : &none, .fd = -1};
  int rc = 0, unchanged = 0;

  ps.res = ps.o->result;
  if (ps.res != NULL)
    memset(ps.res, 0, sizeof(*ps.res));
  ps.alg = sk_client_pick_hash(c, ps.o->hash, &rc);
  if (rc < 0)
    return rc;
  if ((ps.fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(ps.fd, &ps.st) < 0)
    rc = -errno;
  else if (!S_ISREG(ps.st.st_mode))
    rc = -EISDIR;
  if (rc == 0 && ps.o->resume)
    rc = put_resume_offset(&ps, name, &unchanged);
  if (rc == 0 && !unchanged)
    rc = ring_start(&ps.rg, -1, 0, ps.alg, ps.fd, ps.offset);
  if (rc == 0 && !unchanged && (rc = send_put_head(&ps, name)) == 0 && (rc = send_body(&ps)) == 0)
    rc = put_finish(&ps, name);
  if (!unchanged)
    ring_finish(&ps.rg, ps.hash, sizeof(ps.hash), 1);
  if (ps.res != NULL) {
    ps.res->total = (uint64_t)ps.st.st_size;
    ps.res->offset = unchanged ? ps.res->total : ps.offset;
    ps.res->unchanged = unchanged;
    if (rc == 0)
      snprintf(ps.res->hash, sizeof(ps.res->hash), "%s", ps.hash);
  }
  if (ps.fd >= 0)
    close(ps.fd);
  return rc;
}

/* ---- get ---------------------------------------------------------------- */

typedef struct get_state {
  sk_client *c;
  sk_get_opts whole; /* the caller's options, whole (common/sized.h) */
  const sk_get_opts *o;
  sk_xfer_result *res;
  const char *alg;
  char out[PATH_CAP];  /* where the file goes, links followed */
  char part[PATH_CAP]; /* beside out; "" when writing through */
  int fd;
  int through; /* write in order straight into fd: no part file, no rename */
  int local;   /* the failure is the local file's, not the server's */
  uint64_t offset, total;
  int64_t mode, mtime;
  ring rg;
  char hash[SK_HASH_HEX_MAX];
} get_state;

static int local_fail(get_state *gs, int rc) {
  if (rc < 0)
    gs->local = 1;
  return rc;
}

/* ".BASE.sockit-part" beside out_path, named as the server names its own. */
static int part_path(const char *out, char *part) {
  const char *slash = strrchr(out, '/');
  char name[SK_PART_NAME_MAX];
  int dirlen = slash ? (int)(slash - out + 1) : 0;
  sk__name_part(slash ? slash + 1 : out, name);
  if (snprintf(part, PATH_CAP, "%.*s%s", dirlen, out, name) >= PATH_CAP)
    return -ENAMETOOLONG;
  return 0;
}

/* out_path names a folder (it ends in '/' or is one): the file goes into
 * it under name's last component, as scp and cp do. */
static int into_folder(const char *out_path, const char *name, char *out) {
  size_t n = strlen(out_path);
  const char *base = strrchr(name, '/');
  struct stat st;
  int is_dir = stat(out_path, &st) == 0 && S_ISDIR(st.st_mode);
  if (n > 0 && out_path[n - 1] == '/' && !is_dir)
    return access(out_path, F_OK) == 0 || errno != ENOENT ? -ENOTDIR : -ENOENT;
  base = base ? base + 1 : name;
  if (!is_dir)
    return snprintf(out, PATH_CAP, "%s", out_path) >= PATH_CAP ? -ENAMETOOLONG : 0;
  if (snprintf(out, PATH_CAP, "%s%s%s", out_path, n > 0 && out_path[n - 1] == '/' ? "" : "/",
               base) >= PATH_CAP)
    return -ENAMETOOLONG;
  return 0;
}

/* Follow out's links to what they name: a regular file or a new name keeps
 * the part-file-and-rename treatment at the link's target (the link stays a
 * link); a FIFO, device or socket, or an open file of this process
 * (/dev/stdout, /dev/fd/N, /proc/self/fd/N), is written through in order. */
static int resolve_out(get_state *gs) {
  char link[PATH_CAP], next[PATH_CAP];
  struct stat st;
  for (int hops = 0; hops < 40; hops++) {
    if (strncmp(gs->out, "/proc/", 6) == 0 || strncmp(gs->out, "/dev/fd/", 8) == 0) {
      gs->through = 1;
      return 0;
    }
    if (lstat(gs->out, &st) < 0)
      return errno == ENOENT ? 0 : -errno; /* a new name */
    if (S_ISREG(st.st_mode))
      return 0;
    if (S_ISDIR(st.st_mode))
      return -EISDIR;
    if (!S_ISLNK(st.st_mode)) {
      gs->through = 1;
      return 0;
    }
    ssize_t n = readlink(gs->out, link, sizeof(link) - 1);
    if (n < 0)
      return -errno;
    link[n] = '\0';
    const char *slash = strrchr(gs->out, '/');
    int dirlen = link[0] == '/' || slash == NULL ? 0 : (int)(slash - gs->out + 1);
    if (snprintf(next, sizeof(next), "%.*s%s", dirlen, gs->out, link) >= (int)sizeof(next))
      return -ENAMETOOLONG;
    memcpy(gs->out, next, sizeof(next));
  }
  return -ELOOP;
}

static int open_part(get_state *gs) {
  struct stat st;
  int rc = part_path(gs->out, gs->part);
  int flags = O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (gs->o->resume ? 0 : O_TRUNC);
  if (rc < 0)
    return rc;
  if ((gs->fd = open(gs->part, flags, 0600)) < 0 || fstat(gs->fd, &st) < 0) {
    gs->part[0] = '\0'; /* not ours: never unlinked */
    return -errno;
  }
  if (!S_ISREG(st.st_mode)) {
    gs->part[0] = '\0';
    return -EEXIST;
  }
  gs->offset = (uint64_t)st.st_size;
  return 0;
}

static int open_through(get_state *gs) {
  if (gs->o->resume)
    return -ESPIPE; /* no part file to continue: a FIFO or device is written in one go */
  gs->fd = open(gs->out, O_WRONLY | O_TRUNC | O_NOCTTY | O_CLOEXEC);
  return gs->fd < 0 ? -errno : 0;
}

static int get_request(get_state *gs, const char *name) {
  sk_head *req = sk_head_new("get"), *resp = NULL;
  int64_t total = -1, offset = -1;
  int rc = req == NULL ? -ENOMEM : 0;
  if (rc == 0) {
    sk_head_set_str(req, "name", name);
    sk_head_set_int(req, "offset", (int64_t)gs->offset);
    if (gs->alg != NULL)
      sk_head_set_str(req, "hash", gs->alg);
    rc = sk_client_send(gs->c, req, NULL, 0);
  }
  if (rc == 0)
    rc = recv_expect(gs->c, "file", &resp, gs->res);
  if (rc == 0 && (sk_head_int(resp, "total", &total) < 0 ||
                  sk_head_int(resp, "offset", &offset) < 0 || offset != (int64_t)gs->offset ||
                  total < offset || sk_head_size(resp) != (uint64_t)(total - offset)))
    rc = SK_EPROTO;
  if (rc == 0) {
    gs->total = (uint64_t)total;
    gs->mode = 0644;
    sk_head_int(resp, "mode", &gs->mode);
    sk_head_int(resp, "mtime", &gs->mtime);
  }
  sk_head_free(req);
  sk_head_free(resp);
  return rc;
}

/* Fill whole blocks from the socket; the helper writes each to the part
 * file and hashes it while the next one arrives. A block cut short by an
 * error is handed over too: what arrived is kept for a resume. */
static int recv_body(get_state *gs) {
  uint64_t done = gs->offset;
  int rc = 0;
  if (gs->o->progress)
    gs->o->progress(gs->o->progress_ctx, done, gs->total);
  while (rc == 0 && done < gs->total) {
    ring_block *b = ring_take(&gs->rg, &rc);
    size_t len = 0, want = gs->total - done < XFER_BUF ? (size_t)(gs->total - done) : XFER_BUF;
    if (b == NULL)
      return local_fail(gs, rc); /* the helper could not write, or no memory */
    while (rc == 0 && len < want) {
      ssize_t r = sk_client_read_body(gs->c, b->data + len, want - len);
      if (r <= 0)
        rc = r < 0 ? (int)r : SK_ECLOSED;
      else
        len += (size_t)r;
    }
    if (len > 0)
      ring_push(&gs->rg, b, len, done);
    done += len;
    if (gs->o->progress)
      gs->o->progress(gs->o->progress_ctx, done, gs->total);
  }
  return rc;
}

/* file_end: the server's hash of the whole file must match ours. */
static int get_verify(get_state *gs) {
  sk_head *end = NULL;
  const char *theirs;
  int rc = recv_expect(gs->c, "file_end", &end, gs->res);
  if (rc == 0)
    rc = local_fail(gs, ring_finish(&gs->rg, gs->hash, sizeof(gs->hash), 0));
  if (rc == 0 && gs->alg != NULL) {
    theirs = sk_head_str(end, "hash");
    if (theirs == NULL || strcasecmp(theirs, gs->hash) != 0)
      rc = SK_EHASHMISMATCH;
  }
  sk_head_free(end);
  return rc;
}

static int get_publish(get_state *gs) {
  struct timespec ts[2] = {{0, UTIME_NOW}, {gs->mtime, 0}};
  if (gs->through)
    return 0; /* the bytes are where they belong already */
  if (fchmod(gs->fd, (mode_t)(gs->mode & 0777)) < 0 || futimens(gs->fd, ts) < 0 ||
      fsync(gs->fd) < 0 || rename(gs->part, gs->out) < 0)
    return local_fail(gs, -errno);
  return 0;
}

/* The transfer into gs->fd (a part file, or a file written through). */
static int get_run(get_state *gs, const char *name) {
  int rc = get_request(gs, name);
  if (rc == 0)
    rc = local_fail(gs, ring_start(&gs->rg, gs->fd, gs->through, gs->alg, gs->fd, gs->offset));
  if (rc == 0 && (rc = recv_body(gs)) == 0 && (rc = get_verify(gs)) == 0)
    rc = get_publish(gs);
  ring_finish(&gs->rg, gs->hash, sizeof(gs->hash), 0); /* drain: the part file keeps what came */
  return rc;
}

static void get_result(get_state *gs, int rc) {
  if (gs->res == NULL)
    return;
  gs->res->total = gs->total;
  gs->res->offset = gs->offset;
  gs->res->local = rc < 0 && gs->local;
  gs->res->through = gs->through;
  snprintf(gs->res->path, sizeof(gs->res->path), "%s", gs->out);
  if (rc == 0)
    snprintf(gs->res->hash, sizeof(gs->res->hash), "%s", gs->hash);
}

static void get_init(get_state *gs, sk_client *c, const sk_get_opts *given) {
  static const sk_get_opts none = {0};
  const sk_get_opts *opts;
  memset(gs, 0, sizeof(*gs));
  opts = sk__sized_copy(&gs->whole, sizeof(gs->whole), given, SK__GET_OPTS_V1);
  gs->c = c;
  gs->o = opts ? opts : &none;
  gs->fd = -1;
  gs->res = gs->o->result;
  if (gs->res != NULL)
    memset(gs->res, 0, sizeof(*gs->res));
}

int sk_client_get_fd(sk_client *c, const char *name, int fd, const sk_get_opts *opts) {
  get_state gs;
  int rc = 0;
  get_init(&gs, c, opts);
  gs.fd = fd;
  gs.through = 1;
  gs.alg = sk_client_pick_hash(c, gs.o->hash, &rc);
  if (rc == 0)
    rc = gs.o->resume ? local_fail(&gs, -ESPIPE) : get_run(&gs, name);
  get_result(&gs, rc);
  return rc;
}

/* --resume with no part file beside a complete copy of the file (a rerun
 * of an interrupted get of several files): the same length and hash as the
 * server's mean there is nothing to fetch. */
static int have_already(get_state *gs, const char *name) {
  char part[PATH_CAP];
  struct stat st;
  sk_file_stat remote;
  int fd, same = 0;
  if (!gs->o->resume || gs->through || gs->alg == NULL || part_path(gs->out, part) < 0 ||
      access(part, F_OK) == 0 || (fd = open(gs->out, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
    return 0;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && sk_client_stat(gs->c, name, &remote) == 0 &&
      remote.exists && remote.length == (uint64_t)st.st_size &&
      same_as_remote(gs->c, name, gs->alg, fd, remote.length, gs->hash)) {
    gs->total = gs->offset = remote.length;
    same = 1;
  }
  close(fd);
  return same;
}

int sk_client_get_file(sk_client *c, const char *name, const char *out_path,
                       const sk_get_opts *opts) {
  get_state gs;
  int rc = 0;
  get_init(&gs, c, opts);
  gs.alg = sk_client_pick_hash(c, gs.o->hash, &rc);
  if (rc == 0)
    rc = local_fail(&gs, into_folder(out_path, name, gs.out));
  if (rc == 0)
    rc = local_fail(&gs, resolve_out(&gs));
  if (rc == 0 && have_already(&gs, name)) {
    get_result(&gs, 0);
    if (gs.res != NULL)
      gs.res->unchanged = 1;
    return 0;
  }
  if (rc == 0)
    rc = local_fail(&gs, gs.through ? open_through(&gs) : open_part(&gs));
  if (rc == 0)
    rc = get_run(&gs, name);
  get_result(&gs, rc);
  if (gs.fd >= 0 && gs.part[0] != '\0') {
    struct stat st;
    /* a wrong hash means wrong bytes: never keep them for a resume; an
     * empty part file (refused get) is not worth keeping either */
    if (rc < 0 && (rc == SK_EHASHMISMATCH || (fstat(gs.fd, &st) == 0 && st.st_size == 0)))
      unlink(gs.part);
  }
  if (gs.fd >= 0)
    close(gs.fd);
  return rc;
}
