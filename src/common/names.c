/* names.c - name validation and resolution beneath --root.
 *
 * The fast path is openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS): the
 * kernel refuses any path, through links or "..", that would leave the root.
 * Where openat2 is missing (ENOSYS) and where folders must be created, the
 * path is walked one component at a time with O_NOFOLLOW, which refuses
 * every link on the way (stricter, never looser). The last component is
 * always opened by the caller relative to the parent with O_NOFOLLOW. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/names.h"
#include "sockit/error.h"

#define PART_SHORT 200 /* bytes of base kept in a shortened part name */

static int component_ok(const char *p, size_t n) {
  if (n == 0 || n > SK_NAME_COMP)
    return 0;
  return !(n == 1 && p[0] == '.') && !(n == 2 && p[0] == '.' && p[1] == '.');
}

int sk__name_check(const char *name, size_t len, int empty_ok) {
  const char *p, *end;
  if (name == NULL || strlen(name) != len || len > SK_NAME_MAX)
    return SK_EFORBIDDEN;
  if (len == 0)
    return empty_ok ? 0 : SK_EFORBIDDEN;
  for (p = name; p <= name + len; p = end + 1) {
    end = memchr(p, '/', (size_t)(name + len - p));
    if (end == NULL)
      end = name + len;
    if (!component_ok(p, (size_t)(end - p)))
      return SK_EFORBIDDEN;
    if (end == name + len && sk__name_is_part(p))
      return SK_EFORBIDDEN; /* nobody may read or replace a part file by name */
  }
  return 0;
}

int sk__name_is_part(const char *entry) {
  size_t n = strlen(entry), s = sizeof(SK_PART_SUFFIX) - 1;
  return entry[0] == '.' && n > s && strcmp(entry + n - s, SK_PART_SUFFIX) == 0;
}

static int open_beneath(int root_fd, const char *path) {
  struct open_how how = {.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                         .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
  long fd = syscall(SYS_openat2, root_fd, path, &how, sizeof(how));
  return fd < 0 ? -errno : (int)fd;
}

/* One component at a time, refusing links; mkdir first when create. */
static int walk(int root_fd, const char *path, size_t len, int create) {
  char comp[SK_NAME_COMP + 1];
  int fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  const char *p = path, *end;
  while (fd >= 0 && p < path + len) {
    end = memchr(p, '/', (size_t)(path + len - p));
    if (end == NULL)
      end = path + len;
    memcpy(comp, p, (size_t)(end - p));
    comp[end - p] = '\0';
    if (create && mkdirat(fd, comp, 0755) < 0 && errno != EEXIST) {
      int err = -errno;
      close(fd);
      return err;
    }
    int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int err = -errno;
    close(fd);
    if (next < 0)
      return err;
    fd = next;
    p = end + 1;
  }
  return fd < 0 ? -errno : fd;
}

static int open_path(int root_fd, const char *path, size_t len, int create) {
  char buf[SK_NAME_MAX + 1];
  int fd;
  if (len == 0)
    return walk(root_fd, path, 0, 0);
  if (len > SK_NAME_MAX)
    return -ENAMETOOLONG;
  memcpy(buf, path, len);
  buf[len] = '\0';
  fd = open_beneath(root_fd, buf);
  if (fd == -ENOSYS || (fd == -ENOENT && create))
    fd = walk(root_fd, path, len, create);
  return fd;
}

int sk__name_open_parent(int root_fd, const char *name, int create, const char **base) {
  const char *slash = strrchr(name, '/');
  *base = slash ? slash + 1 : name;
  return open_path(root_fd, name, slash ? (size_t)(slash - name) : 0, create);
}

int sk__name_open_dir(int root_fd, const char *name) {
  return open_path(root_fd, name, strlen(name), 0);
}

/* FNV-1a: enough to keep shortened part names of distinct bases apart. */
static uint64_t fnv1a(const char *s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (; *s; s++)
    h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
  return h;
}

void sk__name_part(const char *base, char out[SK_PART_NAME_MAX]) {
  size_t n = strlen(base);
  if (1 + n + sizeof(SK_PART_SUFFIX) <= SK_PART_NAME_MAX)
    snprintf(out, SK_PART_NAME_MAX, ".%s" SK_PART_SUFFIX, base);
  else
    snprintf(out, SK_PART_NAME_MAX, ".%.*s~%016llx" SK_PART_SUFFIX, PART_SHORT, base,
             (unsigned long long)fnv1a(base));
}

int sk__name_err(int err) {
  switch (err) {
  case -EXDEV: /* RESOLVE_BENEATH: the path would leave the root */
  case -ELOOP: /* a link where none may be */
  case -EACCES:
  case -EPERM:
  case -ENAMETOOLONG:
    return SK_EFORBIDDEN;
  case -ENOENT:
  case -ENOTDIR:
    return SK_ENOTFOUND;
  case -EEXIST:
  case -EISDIR:
  case -ENOTEMPTY:
    return SK_EEXISTS;
  case -ENOMEM:
    return -ENOMEM;
  default:
    return SK_EIO;
  }
}
