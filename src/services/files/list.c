/* list.c - stat, list, rm and mkdir (SPEC 4.7 and docs/protocol.md): small
 * requests whose disk work (name resolution, fstatat, readdir, unlink)
 * runs on libuv's pool; the answer is built and queued on the loop. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "service/service.h"
#include "services/files/files.h"
#include "common/names.h"
#include "sockit/error.h"

/* A list head must stay under SK_HEAD_MAX: entries past this estimate are
 * left out and the answer says "truncated". */
#define LIST_HEAD_BUDGET (SK_HEAD_MAX - 4096)
#define ENTRY_OVERHEAD 112 /* {"name":"","type":"partial","length":..,"mtime":..,"partial":..} */

typedef struct entry {
  char *name;
  const char *type; /* "file", "dir", "link", "other", or "partial" (an upload only) */
  uint64_t length;
  uint64_t partial; /* a file's upload in progress: its part file's length */
  int64_t mtime;
} entry;

typedef struct job {
  uv_work_t w;
  sk_conn *c;
  int root_fd, err;
  const char *msg;
  char *name;
  /* stat */
  int exists;
  struct stat st;
  uint64_t partial;
  /* list */
  entry *entries;
  size_t n, cap;
  int truncated;
  /* rm */
  int recursive, claimed;
  int detail; /* list: links as "link" and uploads in progress (sockit ls) */
} job;

static void job_free(job *j) {
  for (size_t i = 0; i < j->n; i++)
    free(j->entries[i].name);
  free(j->entries);
  free(j->name);
  free(j);
}

static job *job_new(sk_conn *c, const char *name) {
  job *j = calloc(1, sizeof(*j));
  if (j == NULL || (j->name = strdup(name)) == NULL) {
    free(j);
    return NULL;
  }
  j->c = c;
  return j;
}

static int job_queue(job *j, uv_work_cb work, uv_after_work_cb after) {
  sk_conn *c = j->c;
  j->root_fd = sk_server_root_fd(sk_conn_server(c));
  j->w.data = j;
  if (uv_queue_work(sk_conn_uv_loop(c), &j->w, work, after) < 0) {
    job_free(j);
    return -ENOMEM;
  }
  sk_conn_ref(c);
  return SK_ASYNC;
}

static int job_start(sk_conn *c, const char *name, uv_work_cb work, uv_after_work_cb after) {
  job *j = job_new(c, name);
  return j == NULL ? -ENOMEM : job_queue(j, work, after);
}

/* Send h (or the job's error), end the request, free the job. */
static void job_end(job *j, sk_head *h) {
  sk_conn *c = j->c;
  if (!sk_conn_is_closing(c)) {
    if (j->err != 0)
      sk_conn_error(c, j->err, j->msg);
    else if (h == NULL || sk_conn_send(c, h, NULL, 0) < 0)
      sk_conn_error(c, SK_EINTERNAL, NULL);
    sk_conn_done(c);
  }
  sk_head_free(h);
  job_free(j);
  sk_conn_unref(c);
}

/* ---- stat --------------------------------------------------------------- */

static void stat_work(uv_work_t *w) {
  job *j = w->data;
  char part[SK_PART_NAME_MAX];
  const char *base;
  struct stat pst;
  int dirfd = sk__name_open_parent(j->root_fd, j->name, 0, &base);
  if (dirfd < 0) {
    if (dirfd != -ENOENT && dirfd != -ENOTDIR)
      j->err = sk__name_err(dirfd);
    return; /* no folder: neither the file nor a part of it exists */
  }
  if (fstatat(dirfd, base, &j->st, AT_SYMLINK_NOFOLLOW) == 0)
    j->exists = 1;
  if (j->exists && S_ISLNK(j->st.st_mode))
    j->err = SK_EFORBIDDEN;
  sk__name_part(base, part);
  if (fstatat(dirfd, part, &pst, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(pst.st_mode))
    j->partial = (uint64_t)pst.st_size;
  close(dirfd);
}

static void stat_after(uv_work_t *w, int status) {
  job *j = w->data;
  sk_head *h = j->err ? NULL : sk_head_new("stat");
  if (h != NULL) {
    sk_head_set_str(h, "name", j->name);
    sk_head_set_bool(h, "exists", j->exists);
    sk_head_set_int(h, "length", j->exists ? (int64_t)j->st.st_size : 0);
    sk_head_set_int(h, "mode", j->exists ? (int64_t)(j->st.st_mode & 07777) : 0);
    sk_head_set_int(h, "mtime", j->exists ? (int64_t)j->st.st_mtime : 0);
    sk_head_set_int(h, "partial", (int64_t)j->partial);
  }
  if (j->err == SK_EFORBIDDEN)
    j->msg = "the name is a link: links are refused";
  job_end(j, h);
}

int sk__stat_handle(sk_conn *c, const sk_request *req) {
  const char *name, *msg = NULL;
  int rc = sk__files_name(req->head, 0, &name, &msg);
  if (rc < 0)
    return sk_conn_error(c, rc, msg), 0;
  return job_start(c, name, stat_work, stat_after);
}

/* ---- list --------------------------------------------------------------- */

/* What list calls a directory entry: SPEC 4.7's files and folders, and
 * "other" for what the service never opens (FIFOs, sockets, devices, and
 * links, never followed); with "detail", links are told apart as "link". */
static const char *entry_type(const struct stat *st, int detail) {
  return S_ISREG(st->st_mode)             ? "file"
         : S_ISDIR(st->st_mode)           ? "dir"
         : S_ISLNK(st->st_mode) && detail ? "link"
                                          : "other";
}

/* Bytes name takes in a JSON head, escapes included (a control byte becomes
 * \u00XX): hostile names must not push a listing past the head limit. */
static size_t json_len(const char *name) {
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    n += *p < 0x20 ? 6 : (*p == '"' || *p == '\\') ? 2 : 1;
  return n;
}

static int add_entry(job *j, const char *name, const char *type, const struct stat *st,
                     size_t *budget) {
  size_t need = ENTRY_OVERHEAD + json_len(name);
  entry *e;
  if (need > *budget) {
    j->truncated = 1;
    return 0;
  }
  if (j->n == j->cap) {
    size_t cap = j->cap ? j->cap * 2 : 32;
    entry *bigger = realloc(j->entries, cap * sizeof(*bigger));
    if (bigger == NULL)
      return -ENOMEM;
    j->entries = bigger;
    j->cap = cap;
  }
  e = &j->entries[j->n];
  memset(e, 0, sizeof(*e));
  if ((e->name = strdup(name)) == NULL)
    return -ENOMEM;
  e->type = type;
  e->length = S_ISREG(st->st_mode) ? (uint64_t)st->st_size : 0;
  e->mtime = (int64_t)st->st_mtime;
  j->n++;
  *budget -= need;
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

/* The upload a part file belongs to: ".BASE.sockit-part" -> BASE into out;
 * 0 for a shortened part name (its base is not recoverable). */
static int part_base(const char *part, char out[SK_PART_NAME_MAX]) {
  size_t n = strlen(part) - 1 - (sizeof(SK_PART_SUFFIX) - 1);
  char check[SK_PART_NAME_MAX];
  if (n == 0 || n >= SK_PART_NAME_MAX)
    return 0;
  memcpy(out, part + 1, n);
  out[n] = '\0';
  sk__name_part(out, check);
  return strcmp(check, part) == 0;
}

/* A part file shows on its file's entry ("partial": bytes so far), or, for
 * a first upload not published yet, as an entry of type "partial". */
static int add_part(job *j, const char *part, const struct stat *st, size_t *budget) {
  char base[SK_PART_NAME_MAX];
  if (!S_ISREG(st->st_mode) || !part_base(part, base))
    return 0;
  for (size_t i = 0; i < j->n; i++) {
    if (strcmp(j->entries[i].name, base) == 0) {
      if (strcmp(j->entries[i].type, "file") == 0)
        j->entries[i].partial = (uint64_t)st->st_size;
      return 0;
    }
  }
  return add_entry(j, base, "partial", st, budget);
}

/* Every entry but "." and ".."; with "detail", part files are folded into
 * their file's entry after the others are read (without, they stay hidden,
 * as SPEC 4.7's list has no place for them). */
static int read_dir(job *j, DIR *d) {
  size_t budget = LIST_HEAD_BUDGET - json_len(j->name), nparts = 0;
  struct dirent *de;
  struct stat st;
  int rc = 0;
  while (rc == 0 && (de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if (sk__name_is_part(de->d_name)) {
      nparts++;
      continue;
    }
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
      rc = add_entry(j, de->d_name, entry_type(&st, j->detail), &st, &budget);
  }
  if (rc == 0 && nparts > 0 && j->detail) {
    rewinddir(d);
    while (rc == 0 && (de = readdir(d)) != NULL)
      if (sk__name_is_part(de->d_name) &&
          fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
        rc = add_part(j, de->d_name, &st, &budget);
  }
  if (rc == 0 && j->n > 1)
    qsort(j->entries, j->n, sizeof(*j->entries), by_name);
  return rc;
}

static void list_work(uv_work_t *w) {
  job *j = w->data;
  int fd = sk__name_open_dir(j->root_fd, j->name), rc = fd;
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  if (fd >= 0 && d == NULL) {
    rc = -errno;
    close(fd);
  }
  if (d != NULL) {
    rc = read_dir(j, d);
    closedir(d);
  }
  if (rc < 0) {
    j->err = sk__name_err(rc);
    j->msg = j->err == SK_ENOTFOUND    ? "no such folder"
             : j->err == SK_EFORBIDDEN ? "the name passes through a link or leaves the root"
                                       : "cannot read the folder";
  }
}

static sk_head *list_head(job *j) {
  sk_head *h = sk_head_new("list");
  if (h == NULL || sk_head_set_str(h, "name", j->name) < 0 ||
      sk_head_set_strv(h, "entries", NULL, 0) < 0)
    goto fail;
  for (size_t i = 0; i < j->n; i++) {
    sk_head *e = sk_head_new(NULL);
    int rc = e == NULL ? -ENOMEM : sk_head_set_str(e, "name", j->entries[i].name);
    if (rc == -EINVAL) { /* not UTF-8: no client could name it in a head either */
      sk_head_free(e);
      continue;
    }
    if (rc < 0 || sk_head_set_str(e, "type", j->entries[i].type) < 0 ||
        sk_head_set_int(e, "length", (int64_t)j->entries[i].length) < 0 ||
        sk_head_set_int(e, "mtime", j->entries[i].mtime) < 0 ||
        (j->entries[i].partial > 0 &&
         sk_head_set_int(e, "partial", (int64_t)j->entries[i].partial) < 0)) {
      sk_head_free(e);
      goto fail;
    }
    if (sk_head_append(h, "entries", e) < 0)
      goto fail;
  }
  if (j->truncated && sk_head_set_bool(h, "truncated", 1) < 0)
    goto fail;
  return h;
fail:
  sk_head_free(h);
  return NULL;
}

static void list_after(uv_work_t *w, int status) {
  job *j = w->data;
  job_end(j, j->err ? NULL : list_head(j));
}

int sk__list_handle(sk_conn *c, const sk_request *req) {
  const char *name, *msg = NULL;
  int detail = 0, rc = sk__files_name(req->head, 1, &name, &msg);
  job *j;
  if (rc == 0 && sk_head_has(req->head, "detail") &&
      sk_head_bool(req->head, "detail", &detail) < 0) {
    rc = SK_EBADREQ;
    msg = "detail must be true or false";
  }
  if (rc < 0)
    return sk_conn_error(c, rc, msg), 0;
  if ((j = job_new(c, name)) == NULL)
    return -ENOMEM;
  j->detail = detail;
  return job_queue(j, list_work, list_after);
}

/* ---- rm ------------------------------------------------------------------ */

#define RM_DEPTH_MAX 128 /* folders within folders; each level holds one fd */

/* Remove the folder name (an entry of dirfd) and everything in it. Nothing
 * is followed: every level is opened O_NOFOLLOW relative to its parent, and
 * a link is removed as itself, so the walk never leaves the root. */
static int rm_tree(int dirfd, const char *name, int depth) {
  int fd, rc = 0;
  DIR *d;
  struct dirent *de;
  struct stat st;
  if (depth > RM_DEPTH_MAX)
    return -EMLINK;
  if ((fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
    return -errno;
  if ((d = fdopendir(fd)) == NULL) {
    rc = -errno;
    close(fd);
    return rc;
  }
  while (rc == 0 && (de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
      rc = errno == ENOENT ? 0 : -errno;
    else if (S_ISDIR(st.st_mode))
      rc = rm_tree(fd, de->d_name, depth + 1);
    else if (unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT)
      rc = -errno;
  }
  closedir(d);
  if (rc == 0 && unlinkat(dirfd, name, AT_REMOVEDIR) < 0)
    rc = -errno;
  return rc;
}

static void rm_fail(job *j, int rc) {
  j->err = rc == -EMLINK ? SK_EIO : sk__name_err(rc);
  j->msg = rc == -EMLINK             ? "the folder is nested too deep to remove"
           : j->err == SK_EFORBIDDEN ? "the name passes through a link or leaves the root"
           : j->err == SK_ENOTFOUND  ? "no such file or folder"
                                     : "cannot remove it";
}

/* The name (a folder only when recursive) and its upload's part file. */
static void rm_work(uv_work_t *w) {
  job *j = w->data;
  char part[SK_PART_NAME_MAX];
  const char *base;
  struct stat st;
  int found = 0, rc = 0, dirfd = sk__name_open_parent(j->root_fd, j->name, 0, &base);
  if (dirfd < 0) {
    rm_fail(j, dirfd);
    return;
  }
  if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0) {
    found = 1;
    if (S_ISDIR(st.st_mode) && !j->recursive) {
      j->err = SK_EBADREQ;
      j->msg = "a folder: remove it and everything in it with \"recursive\":true";
    } else if (S_ISDIR(st.st_mode)) {
      rc = rm_tree(dirfd, base, 0);
    } else if (unlinkat(dirfd, base, 0) < 0) {
      rc = -errno;
    }
  }
  sk__name_part(base, part);
  if (j->err == 0 && rc == 0 && unlinkat(dirfd, part, 0) == 0)
    found = 1;
  if (rc < 0)
    rm_fail(j, rc);
  else if (!found)
    rm_fail(j, -ENOENT);
  close(dirfd);
}

static void named_after(uv_work_t *w, const char *type) {
  job *j = w->data;
  sk_head *h = j->err ? NULL : sk_head_new(type);
  if (h != NULL)
    sk_head_set_str(h, "name", j->name);
  if (j->claimed)
    sk__files_release(sk_conn_server(j->c), j->name);
  job_end(j, h);
}

static void rm_after(uv_work_t *w, int status) {
  named_after(w, "rm_ok");
}

int sk__rm_handle(sk_conn *c, const sk_request *req) {
  const char *name, *msg = NULL;
  int recursive = 0, rc = sk__files_name(req->head, 0, &name, &msg);
  job *j;
  if (rc == 0 && sk_head_has(req->head, "recursive") &&
      sk_head_bool(req->head, "recursive", &recursive) < 0) {
    rc = SK_EBADREQ;
    msg = "recursive must be true or false";
  }
  if (rc == 0 && (rc = sk__files_claim(sk_conn_server(c), name)) == SK_EBUSY)
    msg = "an upload of this name is in progress";
  if (rc < 0)
    return sk_conn_error(c, rc, msg), 0;
  if ((j = job_new(c, name)) == NULL) {
    sk__files_release(sk_conn_server(c), name);
    return -ENOMEM;
  }
  j->recursive = recursive;
  j->claimed = 1;
  rc = job_queue(j, rm_work, rm_after);
  if (rc < 0)
    sk__files_release(sk_conn_server(c), name);
  return rc;
}

/* ---- mkdir ---------------------------------------------------------------- */

/* The folder and its missing parents (put -r sends empty folders so). */
static void mkdir_work(uv_work_t *w) {
  job *j = w->data;
  const char *base;
  struct stat st;
  int rc = 0, dirfd = sk__name_open_parent(j->root_fd, j->name, 1, &base);
  if (dirfd < 0)
    rc = dirfd;
  else if ((mkdirat(dirfd, base, 0755) < 0 && errno != EEXIST) ||
           fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
    rc = -errno;
  else if (!S_ISDIR(st.st_mode))
    rc = -EEXIST;
  if (rc < 0) {
    j->err = sk__name_err(rc);
    j->msg = j->err == SK_EEXISTS      ? "something that is not a folder has that name"
             : j->err == SK_EFORBIDDEN ? "the name passes through a link or leaves the root"
             : j->err == SK_ENOTFOUND  ? "a parent is not a folder"
                                       : "cannot make the folder";
  }
  if (dirfd >= 0)
    close(dirfd);
}

static void mkdir_after(uv_work_t *w, int status) {
  named_after(w, "mkdir_ok");
}

int sk__mkdir_handle(sk_conn *c, const sk_request *req) {
  const char *name, *msg = NULL;
  int rc = sk__files_name(req->head, 0, &name, &msg);
  if (rc < 0)
    return sk_conn_error(c, rc, msg), 0;
  return job_start(c, name, mkdir_work, mkdir_after);
}
