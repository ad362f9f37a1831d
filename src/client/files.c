/* files.c - the client side of SPEC 4.7: put, get, stat and list as library
 * calls. The hash runs on a helper thread that reads the local file beside
 * the transfer (from the page cache), so hashing overlaps the network
 * instead of adding to it; for a download the helper follows the bytes
 * written so far. */
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

#include "services/files/hash.h"
#include "services/files/names.h"
#include "sockit/client.h"
#include "sockit/error.h"

#define XFER_BUF (1u << 20)
#define PATH_CAP 4096

/* ---- the hashing helper thread ------------------------------------------ */

typedef struct hasher {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int fd, err, started;
  uint64_t pos, limit, end; /* hashed / readable / whole length */
  sk__hash *h;
} hasher;

static void *hasher_main(void *arg) {
  hasher *hs = arg;
  uint8_t *buf = malloc(XFER_BUF);
  int err = buf == NULL ? -ENOMEM : 0;
  while (err == 0) {
    pthread_mutex_lock(&hs->mu);
    while (hs->pos == hs->limit && hs->pos < hs->end && hs->err == 0)
      pthread_cond_wait(&hs->cv, &hs->mu);
    uint64_t avail = hs->limit - hs->pos;
    int stop = hs->pos == hs->end || hs->err != 0;
    pthread_mutex_unlock(&hs->mu);
    if (stop)
      break;
    size_t want = avail < XFER_BUF ? (size_t)avail : XFER_BUF;
    ssize_t r = pread(hs->fd, buf, want, (off_t)hs->pos);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      err = r < 0 ? -errno : -EIO;
      break;
    }
    sk__hash_update(hs->h, buf, (size_t)r);
    pthread_mutex_lock(&hs->mu);
    hs->pos += (uint64_t)r;
    pthread_mutex_unlock(&hs->mu);
  }
  free(buf);
  pthread_mutex_lock(&hs->mu);
  if (hs->err == 0)
    hs->err = err;
  pthread_mutex_unlock(&hs->mu);
  return NULL;
}

/* Hash fd's bytes [0, end) as they become readable (limit). */
static int hasher_start(hasher *hs, const char *alg, int fd, uint64_t limit, uint64_t end) {
  memset(hs, 0, sizeof(*hs));
  if (alg == NULL)
    return 0;
  if ((hs->h = sk__hash_new(alg)) == NULL)
    return -ENOMEM;
  hs->fd = fd;
  hs->limit = limit;
  hs->end = end;
  pthread_mutex_init(&hs->mu, NULL);
  pthread_cond_init(&hs->cv, NULL);
  if (pthread_create(&hs->thread, NULL, hasher_main, hs) != 0) {
    sk__hash_free(hs->h);
    hs->h = NULL;
    return -EAGAIN;
  }
  hs->started = 1;
  return 0;
}

static void hasher_advance(hasher *hs, uint64_t limit) {
  if (!hs->started)
    return;
  pthread_mutex_lock(&hs->mu);
  hs->limit = limit;
  pthread_cond_signal(&hs->cv);
  pthread_mutex_unlock(&hs->mu);
}

/* Wait for the helper; out gets "ALG:HEX" (or "" without a hash). With
 * abort set, stop it early (the transfer failed). */
static int hasher_finish(hasher *hs, char *out, size_t cap, int abort) {
  int rc = 0;
  if (!hs->started)
    return 0;
  out[0] = '\0';
  if (abort) {
    pthread_mutex_lock(&hs->mu);
    hs->err = -ECANCELED;
    pthread_cond_signal(&hs->cv);
    pthread_mutex_unlock(&hs->mu);
  }
  pthread_join(hs->thread, NULL);
  rc = hs->err;
  if (rc == 0)
    rc = sk__hash_final(hs->h, out, cap);
  sk__hash_free(hs->h);
  pthread_mutex_destroy(&hs->mu);
  pthread_cond_destroy(&hs->cv);
  hs->started = 0;
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

static int write_all(int fd, const uint8_t *p, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t w = pwrite(fd, p, n, (off_t)off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -errno;
    p += w;
    n -= (size_t)w;
    off += (uint64_t)w;
  }
  return 0;
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
    if (sk_head_int(o, "length", &v) == 0 && v >= 0)
      e[i].length = (uint64_t)v;
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

/* ---- put ---------------------------------------------------------------- */

typedef struct put_state {
  sk_client *c;
  const sk_put_opts *o;
  sk_xfer_result *res;
  int fd;
  struct stat st;
  const char *alg;
  uint64_t offset;
  hasher hs;
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

static int send_body(put_state *ps) {
  uint64_t total = (uint64_t)ps->st.st_size, off = ps->offset;
  uint8_t *buf = malloc(XFER_BUF);
  int rc = buf == NULL ? -ENOMEM : 0;
  if (ps->o->progress)
    ps->o->progress(ps->o->progress_ctx, off, total);
  while (rc == 0 && off < total) {
    size_t want = total - off < XFER_BUF ? (size_t)(total - off) : XFER_BUF;
    ssize_t r = pread(ps->fd, buf, want, (off_t)off);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      rc = r < 0 ? -errno : -EIO; /* the file shrank while we sent it */
      break;
    }
    if ((rc = refused_early(ps)) == 0 && (rc = sk_client_write(ps->c, buf, (size_t)r)) == 0) {
      off += (uint64_t)r;
      if (ps->o->progress)
        ps->o->progress(ps->o->progress_ctx, off, total);
    }
  }
  free(buf);
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
  int rc = end == NULL ? -ENOMEM : hasher_finish(&ps->hs, ps->hash, sizeof(ps->hash), 0);
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

static int put_resume_offset(put_state *ps, const char *name) {
  sk_file_stat st;
  int rc = sk_client_stat(ps->c, name, &st);
  if (rc == 0 && st.partial > 0 && st.partial <= (uint64_t)ps->st.st_size)
    ps->offset = st.partial;
  return rc;
}

int sk_client_put_file(sk_client *c, const char *path, const char *name, const sk_put_opts *opts) {
  static const sk_put_opts none = {0};
  put_state ps = {.c = c, .o = opts ? opts : &none, .fd = -1};
  int rc = 0;

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
    rc = put_resume_offset(&ps, name);
  if (rc == 0)
    rc = hasher_start(&ps.hs, ps.alg, ps.fd, (uint64_t)ps.st.st_size, (uint64_t)ps.st.st_size);
  if (rc == 0 && (rc = send_put_head(&ps, name)) == 0 && (rc = send_body(&ps)) == 0)
    rc = put_finish(&ps, name);
  hasher_finish(&ps.hs, ps.hash, sizeof(ps.hash), 1);
  if (ps.res != NULL) {
    ps.res->total = (uint64_t)ps.st.st_size;
    ps.res->offset = ps.offset;
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
  const sk_get_opts *o;
  sk_xfer_result *res;
  const char *alg;
  char part[PATH_CAP];
  int fd;
  uint64_t offset, total;
  int64_t mode, mtime;
  hasher hs;
  char hash[SK_HASH_HEX_MAX];
} get_state;

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

static int open_part(get_state *gs, const char *out) {
  struct stat st;
  int rc = part_path(out, gs->part);
  int flags = O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | (gs->o->resume ? 0 : O_TRUNC);
  if (rc < 0)
    return rc;
  if ((gs->fd = open(gs->part, flags, 0600)) < 0 || fstat(gs->fd, &st) < 0)
    return -errno;
  gs->offset = (uint64_t)st.st_size;
  return 0;
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

static int recv_body(get_state *gs) {
  uint8_t *buf = malloc(XFER_BUF);
  uint64_t done = gs->offset;
  int rc = buf == NULL ? -ENOMEM : 0;
  if (gs->o->progress)
    gs->o->progress(gs->o->progress_ctx, done, gs->total);
  while (rc == 0 && done < gs->total) {
    ssize_t r = sk_client_read_body(gs->c, buf, XFER_BUF);
    if (r <= 0) {
      rc = r < 0 ? (int)r : SK_ECLOSED;
      break;
    }
    if ((rc = write_all(gs->fd, buf, (size_t)r, done)) == 0) {
      done += (uint64_t)r;
      hasher_advance(&gs->hs, done);
      if (gs->o->progress)
        gs->o->progress(gs->o->progress_ctx, done, gs->total);
    }
  }
  free(buf);
  return rc;
}

/* file_end: the server's hash of the whole file must match ours. */
static int get_verify(get_state *gs) {
  sk_head *end = NULL;
  const char *theirs;
  int rc = recv_expect(gs->c, "file_end", &end, gs->res);
  if (rc == 0)
    rc = hasher_finish(&gs->hs, gs->hash, sizeof(gs->hash), 0);
  if (rc == 0 && gs->alg != NULL) {
    theirs = sk_head_str(end, "hash");
    if (theirs == NULL || strcasecmp(theirs, gs->hash) != 0)
      rc = SK_EHASHMISMATCH;
  }
  sk_head_free(end);
  return rc;
}

static int get_publish(get_state *gs, const char *out) {
  struct timespec ts[2] = {{0, UTIME_NOW}, {gs->mtime, 0}};
  if (fchmod(gs->fd, (mode_t)(gs->mode & 0777)) < 0 || futimens(gs->fd, ts) < 0 ||
      fsync(gs->fd) < 0 || rename(gs->part, out) < 0)
    return -errno;
  return 0;
}

int sk_client_get_file(sk_client *c, const char *name, const char *out_path,
                       const sk_get_opts *opts) {
  static const sk_get_opts none = {0};
  get_state gs = {.c = c, .o = opts ? opts : &none, .fd = -1};
  int rc = 0;

  gs.res = gs.o->result;
  if (gs.res != NULL)
    memset(gs.res, 0, sizeof(*gs.res));
  gs.alg = sk_client_pick_hash(c, gs.o->hash, &rc);
  if (rc == 0)
    rc = open_part(&gs, out_path);
  if (rc == 0)
    rc = get_request(&gs, name);
  if (rc == 0)
    rc = hasher_start(&gs.hs, gs.alg, gs.fd, gs.offset, gs.total);
  if (rc == 0 && (rc = recv_body(&gs)) == 0 && (rc = get_verify(&gs)) == 0)
    rc = get_publish(&gs, out_path);
  hasher_finish(&gs.hs, gs.hash, sizeof(gs.hash), 1);
  if (gs.res != NULL) {
    gs.res->total = gs.total;
    gs.res->offset = gs.offset;
    if (rc == 0)
      snprintf(gs.res->hash, sizeof(gs.res->hash), "%s", gs.hash);
  }
  if (gs.fd >= 0) {
    struct stat st;
    /* a wrong hash means wrong bytes: never keep them for a resume; an
     * empty part file (refused get) is not worth keeping either */
    if (rc < 0 && (rc == SK_EHASHMISMATCH || (fstat(gs.fd, &st) == 0 && st.st_size == 0)))
      unlink(gs.part);
    close(gs.fd);
  }
  return rc;
}
